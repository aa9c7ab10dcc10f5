# tests/unit/openai.mk
