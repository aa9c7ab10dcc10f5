# Plugin loader tests: load every test plugin of tests/plugins and check what
# is accepted, what is refused and the one line that says why.
check_PROGRAMS += tests/unit/test_loader
TESTS += tests/unit/test_loader
tests_unit_test_loader_SOURCES = tests/unit/test_loader.c host/loader.c
tests_unit_test_loader_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTEST_PLUGIN_DIR='"$(abs_top_builddir)/tests/plugins/.libs"'
tests_unit_test_loader_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_loader_LDADD = $(CMOCKA_LIBS) -ldl
EXTRA_tests_unit_test_loader_DEPENDENCIES = $(VX_TEST_PLUGINS)
