# tests/unit/tts_local.mk: the offline TTS plugins, loaded from their built .so.
check_PROGRAMS += tests/unit/test_tts_flite tests/unit/test_tts_espeak
TESTS += tests/unit/test_tts_flite tests/unit/test_tts_espeak

tests_unit_test_tts_flite_SOURCES = tests/unit/test_tts_flite.c
tests_unit_test_tts_flite_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTTS_SO='"$(abs_top_builddir)/plugins/tts_flite/.libs/tts_flite.so"'
tests_unit_test_tts_flite_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tts_flite_LDADD = $(VX_HARNESS_LIBS) -lm
EXTRA_tests_unit_test_tts_flite_DEPENDENCIES = plugins/tts_flite/tts_flite.la

tests_unit_test_tts_espeak_SOURCES = tests/unit/test_tts_espeak.c
tests_unit_test_tts_espeak_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTTS_SO='"$(abs_top_builddir)/plugins/tts_espeak/.libs/tts_espeak.so"'
tests_unit_test_tts_espeak_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_tts_espeak_LDADD = $(VX_HARNESS_LIBS) -lm
EXTRA_tests_unit_test_tts_espeak_DEPENDENCIES = plugins/tts_espeak/tts_espeak.la
