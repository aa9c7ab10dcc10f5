# tests/unit/sim.mk: the sim provider plugin, loaded from its built .so.
check_PROGRAMS += tests/unit/test_sim
TESTS += tests/unit/test_sim
tests_unit_test_sim_SOURCES = tests/unit/test_sim.c tests/unit/tool_rec.h
tests_unit_test_sim_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSIM_SO='"$(abs_top_builddir)/plugins/sim/.libs/sim.so"'
tests_unit_test_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_sim_LDADD = $(VX_HARNESS_LIBS) -lm
EXTRA_tests_unit_test_sim_DEPENDENCIES = plugins/sim/sim.la
