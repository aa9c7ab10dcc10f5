/*
 * Metrics benchmark: update cost on the hot path (one thread, two threads on
 * one series, two threads on two series), with whether the two threads
 * really ran at the same time, and exposition time for 1k and 10k series.
 * Prints a table; never fails on time.
 *
 *   tests/bench/bench_metrics [iterations per thread, default 20000000]
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "metrics.h"
#include "par.h"

static long n_iter = 20000000;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Observations spread over the default buckets (1 ms .. 3 s). */
static const uint64_t sample_ns[8] = {1000000,   7000000,   30000000,  120000000,
                                      400000000, 900000000, 2000000000, 3000000000u};

static void counter_body(void *s, long n)
{
    long i;
    for (i = 0; i < n; i++) metrics_counter_add(s, 1);
}

static void hist_body(void *s, long n)
{
    long i;
    for (i = 0; i < n; i++) metrics_histogram_observe_ns(s, sample_ns[i & 7]);
}

/* One row: counter and histogram cost per update per thread (equal to the
 * single-thread cost when there is no contention), counted over the part of
 * the run both threads really ran at once (see par.h), with that share and
 * the wall-clock figure beside it. */
static void row(const char *name, int n, metrics_series *const *c, metrics_series *const *h)
{
    par_result rc = par_run(n, counter_body, (void *const *)c, n_iter);
    par_result rh = par_run(n, hist_body, (void *const *)h, n_iter);

    printf("%-28s %8.2f %6.0f%% %7.2f   %8.2f %6.0f%% %7.2f\n", name, rc.ns_overlapped,
           rc.overlap * 100, rc.ns_per_op, rh.ns_overlapped, rh.overlap * 100, rh.ns_per_op);
}

static void bench_updates(void)
{
    static const char *const lbl[] = {"stage"};
    metrics_registry *r = metrics_registry_new();
    metrics_family *cf = metrics_counter_family(r, "bench_total", "b", 1, lbl);
    metrics_family *hf = metrics_histogram_family(r, "bench_seconds", "b", 1, lbl, NULL, 0);
    metrics_series *c[2], *h[2], *cs[2], *hs[2];
    int k;

    c[0] = metrics_series_get(cf, (const char *const[]){"a"});
    c[1] = metrics_series_get(cf, (const char *const[]){"b"});
    h[0] = metrics_series_get(hf, (const char *const[]){"a"});
    h[1] = metrics_series_get(hf, (const char *const[]){"b"});
    cs[0] = cs[1] = c[0];
    hs[0] = hs[1] = h[0];

    printf("update cost, ns per operation per thread: `ns` over the time both threads ran\n"
           "at once, `overlap` the share of the run they did, `wall` over the whole run\n");
    printf("%-28s %8s %7s %7s   %8s %7s %7s\n", "", "counter", "overlap", "wall", "histo",
           "overlap", "wall");
    row("1 thread", 1, c, h);
    row("2 threads, same series", 2, cs, hs);
    row("2 threads, different series", 2, c, h);
    for (k = 0; k < 2; k++) {
        metrics_series_release(c[k]);
        metrics_series_release(h[k]);
    }
    metrics_registry_free(r);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n series, half histograms (default 11 buckets) and half counters, each
 * with a session and a stage label, as a busy daemon would hold them. */
static void bench_render(int n)
{
    static const char *const lbl[] = {"session_id", "stage"};
    static const char *const stages[] = {"stt", "llm", "tts"};
    metrics_registry *r = metrics_registry_new();
    metrics_family *cf = metrics_counter_family(r, "bench_errors_total", "b", 2, lbl);
    metrics_family *hf = metrics_histogram_family(r, "bench_latency_seconds", "b", 2, lbl,
                                                  NULL, 0);
    double t[21];
    size_t len = 0;
    char id[32];
    int i;

    for (i = 0; i < n; i++) {
        metrics_series *s;
        snprintf(id, sizeof id, "%016x", (unsigned)i * 2654435761u);
        if (i % 2) {
            s = metrics_series_get(cf, (const char *const[]){id, stages[i % 3]});
            metrics_counter_add(s, (uint64_t)i);
        } else {
            s = metrics_series_get(hf, (const char *const[]){id, stages[i % 3]});
            metrics_histogram_observe_ns(s, sample_ns[i & 7]);
        }
        metrics_series_release(s);
    }
    for (i = 0; i < 21; i++) {
        char *out;
        double t0 = now();
        if (metrics_render(r, &out, &len) != 0) abort();
        t[i] = (now() - t0) * 1e3;
        free(out);
    }
    qsort(t, 21, sizeof *t, cmp_double);
    printf("%-14d %10.3f %10.3f %12zu\n", n, t[0], t[10], len);
    metrics_registry_free(r);
}

int main(int argc, char **argv)
{
    if (argc > 1) n_iter = atol(argv[1]);
    if (n_iter <= 0) n_iter = 20000000;
    printf("iterations per thread: %ld\n\n", n_iter);
    bench_updates();
    printf("\n%-14s %10s %10s %12s\n", "render series", "best ms", "median ms", "bytes");
    bench_render(1000);
    bench_render(10000);
    return 0;
}
