# plugins/tts_flite/local.mk: offline English TTS with CMU flite.
pkglib_LTLIBRARIES += plugins/tts_flite/tts_flite.la
plugins_tts_flite_tts_flite_la_SOURCES = plugins/tts_flite/tts_flite.c
plugins_tts_flite_tts_flite_la_CFLAGS = $(VX_PLUGIN_CC)
plugins_tts_flite_tts_flite_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_tts_flite_tts_flite_la_LIBADD = $(FLITE_LIBS) $(PTHREAD_LIBS) -lm
