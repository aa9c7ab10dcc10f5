# plugins/tts_flite/local.mk
