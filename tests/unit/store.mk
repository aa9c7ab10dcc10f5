# tests/unit/store.mk
