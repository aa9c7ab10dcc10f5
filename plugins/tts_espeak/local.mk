# plugins/tts_espeak/local.mk
