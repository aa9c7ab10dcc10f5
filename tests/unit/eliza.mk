# tests/unit/eliza.mk
