# tests/unit/protocol.mk
