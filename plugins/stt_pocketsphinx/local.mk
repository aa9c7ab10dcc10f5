# plugins/stt_pocketsphinx/local.mk
