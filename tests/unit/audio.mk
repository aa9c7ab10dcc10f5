# tests/unit/audio.mk
