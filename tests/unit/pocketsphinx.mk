# tests/unit/pocketsphinx.mk: the stt_pocketsphinx provider, loaded from its
# built .so, on speech flite makes at test time (flite must be installed).
check_PROGRAMS += tests/unit/test_pocketsphinx
TESTS += tests/unit/test_pocketsphinx
tests_unit_test_pocketsphinx_SOURCES = tests/unit/test_pocketsphinx.c \
	host/pipeline/resample.c host/pipeline/resample.h
tests_unit_test_pocketsphinx_CPPFLAGS = $(AM_CPPFLAGS) \
	-DPS_SO='"$(abs_top_builddir)/plugins/stt_pocketsphinx/.libs/stt_pocketsphinx.so"'
tests_unit_test_pocketsphinx_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SPEEXDSP_CFLAGS)
tests_unit_test_pocketsphinx_LDADD = $(VX_HARNESS_LIBS) $(SPEEXDSP_LIBS) -lm
EXTRA_tests_unit_test_pocketsphinx_DEPENDENCIES = \
	plugins/stt_pocketsphinx/stt_pocketsphinx.la
