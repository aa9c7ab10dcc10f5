# plugins/stt_pocketsphinx/local.mk: offline streaming STT on CMU pocketsphinx
# (libpocketsphinx-dev; the model comes from pocketsphinx-en-us).
pkglib_LTLIBRARIES += plugins/stt_pocketsphinx/stt_pocketsphinx.la
plugins_stt_pocketsphinx_stt_pocketsphinx_la_SOURCES = \
	plugins/stt_pocketsphinx/stt_pocketsphinx.c \
	plugins/stt_pocketsphinx/sphx_stream.c plugins/stt_pocketsphinx/sphx.h
plugins_stt_pocketsphinx_stt_pocketsphinx_la_CPPFLAGS = $(AM_CPPFLAGS) $(POCKETSPHINX_CFLAGS)
plugins_stt_pocketsphinx_stt_pocketsphinx_la_CFLAGS = $(VX_PLUGIN_CC)
plugins_stt_pocketsphinx_stt_pocketsphinx_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_stt_pocketsphinx_stt_pocketsphinx_la_LIBADD = $(POCKETSPHINX_LIBS) $(PTHREAD_LIBS) -lm
