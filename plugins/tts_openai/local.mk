# plugins/tts_openai/local.mk
