# Plugin loader tests: load every test plugin of tests/plugins and check what
# is accepted, what is refused and the one line that says why.
check_PROGRAMS += tests/unit/test_loader
TESTS += tests/unit/test_loader
tests_unit_test_loader_SOURCES = tests/unit/test_loader.c host/plugin/loader.c
tests_unit_test_loader_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTEST_PLUGIN_DIR='"$(abs_top_builddir)/tests/plugins/.libs"'
tests_unit_test_loader_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_loader_LDADD = $(VX_HARNESS_LIBS)
EXTRA_tests_unit_test_loader_DEPENDENCIES = $(VX_TEST_PLUGINS)

# The harness every test program that loads a real provider .so links:
# test host API, config builder, fixture, event recorders, WAV/flite and
# child-process helpers (tests/unit/plugin_harness.h).
noinst_LIBRARIES += tests/unit/libharness.a
tests_unit_libharness_a_SOURCES = tests/unit/plugin_harness.c tests/unit/plugin_harness.h \
	host/base/defer.c host/base/defer.h host/base/cfg.c host/base/cfg.h
tests_unit_libharness_a_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS)
VX_HARNESS_LIBS = tests/unit/libharness.a $(CMOCKA_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS) -ldl -lm
