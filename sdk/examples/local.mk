# sdk/examples/local.mk: the example plugin authors copy. Built in the tree
# as a check module (sdk/examples/.libs/tts_tone.so) so tests run the
# conformance checker on it; installed as source next to the docs.
check_LTLIBRARIES += sdk/examples/tts_tone.la
sdk_examples_tts_tone_la_SOURCES = sdk/examples/tts_tone.c
sdk_examples_tts_tone_la_CFLAGS = $(VX_PLUGIN_CC)
sdk_examples_tts_tone_la_LDFLAGS = $(VX_PLUGIN_LINK)
sdk_examples_tts_tone_la_LIBADD = $(PTHREAD_LIBS)

vxexampledir = $(docdir)/examples
dist_vxexample_DATA = sdk/examples/tts_tone.c sdk/examples/Makefile
