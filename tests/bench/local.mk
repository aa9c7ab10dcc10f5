# tests/bench/local.mk: benchmarks. Built with the tree, never run by
# `make check`; they print figures and do not fail on time.
noinst_PROGRAMS += tests/bench/bench_metrics
tests_bench_bench_metrics_SOURCES = tests/bench/bench_metrics.c tests/bench/par.h
tests_bench_bench_metrics_LDADD = metrics/libvxmetrics.a $(PTHREAD_LIBS)
EXTRA_DIST += tests/bench/latency.sh tests/bench/turns.mjs tests/bench/load.sh tests/bench/slowloris.sh \
	tests/bench/abuse.sh tests/bench/abuse.mjs
EXTRA_DIST += tests/bench/soak.sh tests/bench/idle.sh tests/bench/idle.mjs tests/bench/lib.sh \
	tests/bench/capacity.sh tests/bench/threads.sh tests/bench/webrtc.sh

# `make bench`: the long runs, one after the other; they print figures (the
# ones quoted in BENCHMARKS.md) and never fail on time. BENCH_SOAK_MINUTES
# and BENCH_SESSIONS shorten or grow them.
BENCH_SOAK_MINUTES = 10
BENCH_SESSIONS = 100
BENCH_CAPACITY_STEPS = 250 500 1000 2000 4000
.PHONY: bench
bench: all plugins-built tools/voxray-loadtest$(EXEEXT) tests/bench/bench_defer$(EXEEXT) tests/tools/freeport$(EXEEXT) tests/tools/slowloris$(EXEEXT) \
	tests/bench/bench_metrics$(EXEEXT) tests/bench/bench_gate$(EXEEXT) \
	tests/bench/bench_http$(EXEEXT) tests/bench/bare_health$(EXEEXT) tests/bench/wer$(EXEEXT)
	@echo "== word error rate of stt_pocketsphinx on flite speech (tests/bench/wer)"
	@$(top_builddir)/tests/bench/wer -q
	@echo "== metric updates and rendering (tests/bench/bench_metrics)"
	@$(top_builddir)/tests/bench/bench_metrics
	@echo "== the call gate against a bare call (tests/bench/bench_gate)"
	@$(top_builddir)/tests/bench/bench_gate
	@echo "== /health: voxray against bare libmicrohttpd (tests/bench/bench_http.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/bench_http.sh $(top_builddir)
	@echo "== timers (tests/bench/bench_defer)"
	@$(top_builddir)/tests/bench/bench_defer
	@echo "== idle sessions (tests/bench/idle.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/idle.sh $(top_builddir)
	@echo "== latency (tests/bench/latency.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/latency.sh $(top_builddir)
	@echo "== capacity ladder (tests/bench/capacity.sh: voxray-loadtest, $(BENCH_CAPACITY_STEPS) sessions)"
	@$(SHELL) $(top_srcdir)/tests/bench/capacity.sh $(top_builddir) 3 $(BENCH_CAPACITY_STEPS)
	@echo "== load (tests/bench/load.sh, $(BENCH_SESSIONS) sessions)"
	@$(SHELL) $(top_srcdir)/tests/bench/load.sh $(top_builddir) $(BENCH_SESSIONS) 3
	@echo "== threads at 100 and 1,000 talking sessions (tests/bench/threads.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/threads.sh $(top_builddir) 100 100 20
	@$(SHELL) $(top_srcdir)/tests/bench/threads.sh $(top_builddir) 1000 100 40
	@echo "== WebRTC: offer to connected, reply latency against the WebSocket, CPU per call (tests/bench/webrtc.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/webrtc.sh $(top_builddir) 5 4 20
	@echo "== one abusive client (tests/bench/abuse.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/abuse.sh $(top_builddir)
	@echo "== slow clients (tests/bench/slowloris.sh)"
	@$(SHELL) $(top_srcdir)/tests/bench/slowloris.sh $(top_builddir)
	@echo "== soak (tests/bench/soak.sh, $(BENCH_SOAK_MINUTES) min, $(BENCH_SESSIONS) sessions)"
	@$(SHELL) $(top_srcdir)/tests/bench/soak.sh $(top_builddir) $(BENCH_SOAK_MINUTES) $(BENCH_SESSIONS)

noinst_PROGRAMS += tests/bench/bench_defer
tests_bench_bench_defer_SOURCES = tests/bench/bench_defer.c host/base/defer.c host/base/defer.h
tests_bench_bench_defer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/host
tests_bench_bench_defer_LDADD = $(PTHREAD_LIBS)

# The call gate against a bare indirect call, on a trivial in-process store.
noinst_PROGRAMS += tests/bench/bench_gate
tests_bench_bench_gate_SOURCES = tests/bench/bench_gate.c tests/bench/par.h \
	host/plugin/gate.c host/plugin/gate.h host/plugin/loader.c host/plugin/loader.h
tests_bench_bench_gate_LDADD = metrics/libvxmetrics.a $(PTHREAD_LIBS) -ldl

# /health of voxray against a bare libmicrohttpd server sending the same
# bytes (tests/bench/bench_http.sh drives both with bench_http).
noinst_PROGRAMS += tests/bench/bench_http tests/bench/bare_health
tests_bench_bench_http_SOURCES = tests/bench/bench_http.c
tests_bench_bench_http_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
tests_bench_bench_http_LDADD = $(CURL_LIBS) $(PTHREAD_LIBS)
tests_bench_bare_health_SOURCES = tests/bench/bare_health.c
tests_bench_bare_health_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS)
tests_bench_bare_health_LDADD = $(MHD_LIBS) $(PTHREAD_LIBS)
EXTRA_DIST += tests/bench/bench_http.sh

# Word error rate of stt_pocketsphinx on flite speech, per voice, first
# utterance of a fresh decoder and later ones (needs flite).
noinst_PROGRAMS += tests/bench/wer
tests_bench_wer_SOURCES = tests/bench/wer.c host/pipeline/resample.c host/pipeline/resample.h
tests_bench_wer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/unit \
	-DPS_SO='"$(abs_top_builddir)/plugins/stt_pocketsphinx/.libs/stt_pocketsphinx.so"'
tests_bench_wer_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SPEEXDSP_CFLAGS)
tests_bench_wer_LDADD = $(VX_HARNESS_LIBS) $(SPEEXDSP_LIBS) -lm
