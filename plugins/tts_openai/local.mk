# plugins/tts_openai/local.mk: streamed speech from OpenAI-compatible servers,
# on the oai_client convenience library of plugins/llm_openai.
pkglib_LTLIBRARIES += plugins/tts_openai/tts_openai.la
plugins_tts_openai_tts_openai_la_SOURCES = plugins/tts_openai/tts_openai.c \
	plugins/tts_openai/pcm.c plugins/tts_openai/pcm.h
plugins_tts_openai_tts_openai_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/llm_openai
plugins_tts_openai_tts_openai_la_CFLAGS = $(VX_PLUGIN_CC) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
plugins_tts_openai_tts_openai_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_tts_openai_tts_openai_la_LIBADD = plugins/llm_openai/liboai.la \
	$(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
