# tests/unit/loader.mk
