/*
 * Call gate benchmark: what the gate adds to a plugin call. A trivial
 * in-process store (get returns VX_OK with no value) is called bare, through
 * its vtable pointer, and through gate_store_get(), which times the call
 * (two clock reads), clears the error, and updates the in-flight gauge, the
 * duration histogram and the calls counter. One thread, then two threads on
 * the same plugin instance (the same series), with whether the two threads
 * really ran at the same time (tests/bench/par.h). Also the two clock reads
 * alone, the floor under any timed call. Prints a table; never fails on
 * time.
 *
 *   tests/bench/bench_gate [iterations per thread, default 10000000]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin/gate.h"
#include "plugin/loader.h"
#include "metrics.h"
#include "par.h"
#include "plugin/plugins.h"

static long n_iter = 10000000;

static int fake_get(void *inst, const char *key, void **val, size_t *len, vx_error *err)
{
    (void)inst;
    (void)key;
    (void)err;
    *val = NULL;
    *len = 0;
    return VX_OK;
}

/* Read through a volatile pointer so the compiler cannot inline the
 * plugin: a real one lives behind dlopen. */
static int (*volatile get_fn)(void *, const char *, void **, size_t *, vx_error *) = fake_get;

static void bare_body(void *arg, long n)
{
    plug_instance *pi = arg;
    vx_error err;
    void *val;
    size_t len;
    long i;

    for (i = 0; i < n; i++) {
        err.code = 0;
        if (get_fn(pi->inst, "k", &val, &len, &err) != 0) abort();
    }
}

static void gated_body(void *arg, long n)
{
    plug_instance *pi = arg;
    vx_error err;
    void *val;
    size_t len;
    long i;

    for (i = 0; i < n; i++)
        if (gate_store_get(pi, "k", &val, &len, &err) != 0) abort();
}

static void clock_body(void *arg, long n)
{
    struct timespec a, b;
    long i;
    volatile long sink = 0;

    (void)arg;
    for (i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_MONOTONIC, &b);
        sink += b.tv_nsec - a.tv_nsec;
    }
}

/* 1 and 2 threads; the 2-thread figure counts only the time both threads
 * really ran at once (see par.h), the wall figure the whole run. */
static void row(const char *name, par_body body, plug_instance *pi)
{
    void *args[2] = {pi, pi};
    par_result r1 = par_run(1, body, args, n_iter);
    par_result r2 = par_run(2, body, args, n_iter);

    printf("%-28s %9.2f %10.2f %8.0f%% %8.2f\n", name, r1.ns_per_op, r2.ns_overlapped,
           r2.overlap * 100, r2.ns_per_op);
}

int main(int argc, char **argv)
{
    metrics_registry *reg;
    loader_plugin lp;
    plug_instance pi, nometrics;
    char *out;
    size_t len;

    if (argc > 1) n_iter = atol(argv[1]);
    if (n_iter <= 0) n_iter = 10000000;
    memset(&lp, 0, sizeof lp);
    lp.info.abi_major = VX_ABI_MAJOR;
    lp.info.version = "bench";
    lp.store.struct_size = sizeof lp.store;
    lp.store.get = fake_get;
    memset(&pi, 0, sizeof pi);
    pi.name = "bench";
    pi.module = "bench_store";
    pi.lp = &lp;
    pi.roles = VX_KIND_STORE;
    if ((reg = metrics_registry_new()) == NULL || gate_metrics_init(reg) != 0 ||
        (pi.gate = gate_instance_new(reg, &pi)) == NULL) {
        fprintf(stderr, "bench_gate: cannot set up the gate\n");
        return 2;
    }

    printf("iterations per thread: %ld\n", n_iter);
    printf("ns per call per thread; 2 threads: over the time both ran at once (overlap:\n"
           "the share of the run they did; wall: over the whole run, see par.h)\n\n");
    printf("%-28s %9s %10s %9s %8s\n", "", "1 thread", "2 threads", "overlap", "wall");
    row("bare indirect call", bare_body, &pi);
    row("two clock_gettime", clock_body, &pi);
    row("gate_store_get", gated_body, &pi);
    /* The same call with the instance's metrics cache absent: what is left
     * is the clock reads, the error clearing and the call itself. */
    nometrics = pi;
    nometrics.gate = NULL;
    row("gate_store_get, no metrics", gated_body, &nometrics);

    /* The gated calls were really counted. */
    if (metrics_render(reg, &out, &len) != 0) return 2;
    if (strstr(out, "voxray_plugin_calls_total{kind=\"store\",plugin=\"bench\",provider=\"bench\",op=\"get\",status=\"ok\"}") ==
        NULL) {
        fprintf(stderr, "bench_gate: calls were not counted\n");
        free(out);
        return 2;
    }
    free(out);
    gate_instance_free(pi.gate);
    metrics_registry_free(reg);
    return 0;
}
