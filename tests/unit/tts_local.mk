# tests/unit/tts_local.mk
