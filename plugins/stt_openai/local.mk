# plugins/stt_openai/local.mk
