# tests/bench/local.mk: benchmarks. Built with the tree, never run by
# `make check`; they print figures and do not fail on time.
noinst_PROGRAMS += tests/bench/bench_metrics
tests_bench_bench_metrics_SOURCES = tests/bench/bench_metrics.c
tests_bench_bench_metrics_LDADD = metrics/libvxmetrics.a $(PTHREAD_LIBS)
EXTRA_DIST += tests/bench/latency.sh tests/bench/load.sh tests/bench/slowloris.sh \
	tests/bench/abuse.sh tests/bench/abuse.mjs
