# sdk/examples/local.mk: the example plugins authors copy, a TTS (tts_tone)
# and an STT (stt_level). Built in the tree as check modules
# (sdk/examples/.libs/NAME.so) so tests run the conformance checker on them;
# installed as source next to the docs, with the author Makefile, and built
# out of tree against the installed SDK by tests/integration/sdk.sh.
check_LTLIBRARIES += sdk/examples/tts_tone.la sdk/examples/stt_level.la
sdk_examples_tts_tone_la_SOURCES = sdk/examples/tts_tone.c
sdk_examples_tts_tone_la_CFLAGS = $(VX_PLUGIN_CC)
sdk_examples_tts_tone_la_LDFLAGS = $(VX_PLUGIN_LINK)
sdk_examples_tts_tone_la_LIBADD = $(PTHREAD_LIBS)

sdk_examples_stt_level_la_SOURCES = sdk/examples/stt_level.c
sdk_examples_stt_level_la_CFLAGS = $(VX_PLUGIN_CC)
sdk_examples_stt_level_la_LDFLAGS = $(VX_PLUGIN_LINK)
sdk_examples_stt_level_la_LIBADD = $(PTHREAD_LIBS) -lm

vxexampledir = $(docdir)/examples
dist_vxexample_DATA = sdk/examples/tts_tone.c sdk/examples/stt_level.c sdk/examples/Makefile
