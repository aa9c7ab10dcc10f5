# plugins/sim/local.mk: deterministic fake STT/LLM/TTS for tests and load.
pkglib_LTLIBRARIES += plugins/sim/sim.la
plugins_sim_sim_la_SOURCES = plugins/sim/sim.c plugins/sim/sim.h \
	plugins/sim/sim_stt.c plugins/sim/sim_llm.c plugins/sim/sim_tts.c
plugins_sim_sim_la_CFLAGS = $(VX_PLUGIN_CC) $(JANSSON_CFLAGS)
plugins_sim_sim_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_sim_sim_la_LIBADD = $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
