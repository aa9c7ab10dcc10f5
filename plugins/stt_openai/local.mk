# plugins/stt_openai/local.mk: utterance transcription by OpenAI-compatible
# servers, on the oai_client convenience library of plugins/llm_openai.
pkglib_LTLIBRARIES += plugins/stt_openai/stt_openai.la
plugins_stt_openai_stt_openai_la_SOURCES = plugins/stt_openai/stt_openai.c \
	plugins/stt_openai/transcript.c plugins/stt_openai/transcript.h
plugins_stt_openai_stt_openai_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/llm_openai
plugins_stt_openai_stt_openai_la_CFLAGS = $(VX_PLUGIN_CC) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
plugins_stt_openai_stt_openai_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_stt_openai_stt_openai_la_LIBADD = plugins/llm_openai/liboai.la \
	$(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
