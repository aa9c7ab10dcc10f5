# tests/unit/metrics.mk: unit tests of the metrics library, including a
# byte-for-byte comparison with the checked-in exposition golden file.
check_PROGRAMS += tests/unit/test_metrics
TESTS += tests/unit/test_metrics
tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CPPFLAGS = $(AM_CPPFLAGS) $(CMOCKA_CFLAGS) \
	-DGOLDEN_DIR='"$(abs_top_srcdir)/tests/unit/golden"'
tests_unit_test_metrics_LDADD = metrics/libvxmetrics.a $(CMOCKA_LIBS) $(PTHREAD_LIBS)
dist_noinst_DATA += tests/unit/golden/metrics.prom
