# tests/unit/eliza.mk: the llm_eliza provider plugin, loaded from its built
# .so, checked against the conversation published in Weizenbaum's paper.
check_PROGRAMS += tests/unit/test_eliza
TESTS += tests/unit/test_eliza
tests_unit_test_eliza_SOURCES = tests/unit/test_eliza.c
tests_unit_test_eliza_CPPFLAGS = $(AM_CPPFLAGS) \
	-DELIZA_SO='"$(abs_top_builddir)/plugins/llm_eliza/.libs/llm_eliza.so"' \
	-DDOCTOR_TXT='"$(abs_top_srcdir)/plugins/llm_eliza/doctor.txt"'
tests_unit_test_eliza_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_eliza_LDADD = $(VX_HARNESS_LIBS)
EXTRA_tests_unit_test_eliza_DEPENDENCIES = plugins/llm_eliza/llm_eliza.la
