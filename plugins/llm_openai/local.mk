# plugins/llm_openai/local.mk: streamed chat completions from OpenAI-compatible
# servers. oai_client (libcurl driver, common keys, error mapping) is shared
# with stt_openai and tts_openai as a convenience library, so each of the
# three modules links its own copy and exports nothing but its entry.
noinst_LTLIBRARIES += plugins/llm_openai/liboai.la
plugins_llm_openai_liboai_la_SOURCES = plugins/llm_openai/oai_client.c \
	plugins/llm_openai/oai_client.h
plugins_llm_openai_liboai_la_CFLAGS = $(VX_PLUGIN_CC) $(CURL_CFLAGS) $(JANSSON_CFLAGS)

pkglib_LTLIBRARIES += plugins/llm_openai/llm_openai.la
plugins_llm_openai_llm_openai_la_SOURCES = plugins/llm_openai/llm_openai.c \
	plugins/llm_openai/sse.c plugins/llm_openai/sse.h \
	plugins/llm_openai/chat.c plugins/llm_openai/chat.h \
	plugins/llm_openai/tools.c plugins/llm_openai/tools.h
plugins_llm_openai_llm_openai_la_CFLAGS = $(VX_PLUGIN_CC) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
plugins_llm_openai_llm_openai_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_llm_openai_llm_openai_la_LIBADD = plugins/llm_openai/liboai.la \
	$(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
