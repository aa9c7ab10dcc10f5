# metrics/local.mk: the metric registry and Prometheus exposition, a static
# library linked by the daemon, plugins' test harnesses and the unit tests.
noinst_LIBRARIES += metrics/libvxmetrics.a
metrics_libvxmetrics_a_SOURCES = metrics/metrics.c metrics/metrics.h
