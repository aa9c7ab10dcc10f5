# plugins/tts_espeak/local.mk: offline multilingual TTS with espeak-ng.
pkglib_LTLIBRARIES += plugins/tts_espeak/tts_espeak.la
plugins_tts_espeak_tts_espeak_la_SOURCES = plugins/tts_espeak/tts_espeak.c
plugins_tts_espeak_tts_espeak_la_CFLAGS = $(VX_PLUGIN_CC) $(ESPEAK_CFLAGS)
plugins_tts_espeak_tts_espeak_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_tts_espeak_tts_espeak_la_LIBADD = $(ESPEAK_LIBS) $(PTHREAD_LIBS)
