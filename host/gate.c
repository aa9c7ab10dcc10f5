/*
 * The call gate: timing and counting around every plugin call.
 */
#include "config.h"

#include "gate.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader.h"
#include "metrics.h"
#include "plugins.h"

enum { OP_GET, OP_PUT, OP_DEL, OP_PING, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"get", "put", "del", "ping"};

/* status index 0 is "ok", i is the error -i (1..11), 12 "unknown" */
#define N_STATUS 13

static metrics_family *f_calls, *f_duration, *f_inflight, *f_info;

struct gate_instance {
    plug_instance *pi;
    metrics_series *info;
    metrics_series *duration[OP_COUNT];
    metrics_series *inflight; /* kind "store" (the only kind with gated calls so far) */
    _Atomic(metrics_series *) calls[OP_COUNT][N_STATUS];
};

const char *gate_error_name(int code) { return loader_error_name(code); }

int gate_metrics_init(metrics_registry *reg)
{
    static const char *const l_calls[] = {"kind", "plugin", "op", "status"};
    static const char *const l_dur[] = {"kind", "plugin", "op"};
    static const char *const l_inflight[] = {"kind", "plugin"};
    static const char *const l_info[] = {"plugin", "module", "version", "abi"};
    static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    f_calls = metrics_counter_family(reg, "voxray_plugin_calls_total",
                                     "Plugin calls through the call gate, by outcome.", 4, l_calls);
    f_duration = metrics_histogram_family(reg, "voxray_plugin_call_duration_seconds",
                                          "Duration of plugin calls through the call gate.", 3,
                                          l_dur, buckets, sizeof buckets / sizeof buckets[0]);
    f_inflight = metrics_gauge_family(reg, "voxray_plugin_inflight",
                                      "Plugin calls currently running.", 2, l_inflight);
    f_info = metrics_gauge_family(reg, "voxray_plugin_info",
                                  "Loaded plugin instances (always 1).", 4, l_info);
    return f_calls && f_duration && f_inflight && f_info ? 0 : -1;
}

gate_instance *gate_instance_new(metrics_registry *reg, plug_instance *pi)
{
    (void)reg;
    gate_instance *g = calloc(1, sizeof *g);
    char abi[16];
    if (g == NULL) return NULL;
    g->pi = pi;
    snprintf(abi, sizeof abi, "%u.%u", pi->lp->info.abi_major, pi->lp->info.abi_minor);
    const char *iv[] = {pi->name, pi->module, pi->lp->info.version ? pi->lp->info.version : "", abi};
    g->info = metrics_series_get(f_info, iv);
    if (g->info == NULL) goto fail;
    metrics_gauge_set(g->info, 1);
    if (pi->roles & VX_KIND_STORE) {
        const char *lv[] = {"store", pi->name};
        g->inflight = metrics_series_get(f_inflight, lv);
        if (g->inflight == NULL) goto fail;
        for (int op = 0; op < OP_COUNT; op++) {
            const char *dv[] = {"store", pi->name, op_names[op]};
            g->duration[op] = metrics_series_get(f_duration, dv);
            if (g->duration[op] == NULL) goto fail;
        }
    }
    return g;
fail:
    gate_instance_free(g);
    return NULL;
}

void gate_instance_free(gate_instance *g)
{
    if (g == NULL) return;
    if (g->info) {
        char abi[16];
        snprintf(abi, sizeof abi, "%u.%u", g->pi->lp->info.abi_major, g->pi->lp->info.abi_minor);
        const char *iv[] = {g->pi->name, g->pi->module,
                            g->pi->lp->info.version ? g->pi->lp->info.version : "", abi};
        metrics_series_remove(f_info, iv);
    }
    metrics_series_release(g->info);
    metrics_series_release(g->inflight);
    for (int op = 0; op < OP_COUNT; op++) {
        metrics_series_release(g->duration[op]);
        for (int s = 0; s < N_STATUS; s++) metrics_series_release(atomic_load(&g->calls[op][s]));
    }
    free(g);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The calls_total series for (op, status), resolved on first use. */
static metrics_series *calls_series(gate_instance *g, int op, int rc)
{
    int idx = rc == 0 ? 0 : (rc < 0 && rc >= -11 ? -rc : 12);
    metrics_series *s = atomic_load_explicit(&g->calls[op][idx], memory_order_acquire);
    if (s) return s;
    const char *lv[] = {"store", g->pi->name, op_names[op], rc == 0 ? "ok" : gate_error_name(rc)};
    metrics_series *fresh = metrics_series_get(f_calls, lv);
    if (fresh == NULL) return NULL;
    metrics_series *expected = NULL;
    if (!atomic_compare_exchange_strong(&g->calls[op][idx], &expected, fresh)) {
        metrics_series_release(fresh);
        return expected;
    }
    return fresh;
}

typedef struct call {
    gate_instance *g;
    int op;
    uint64_t t0;
} call;

static void call_begin(call *c, plug_instance *pi, int op)
{
    c->g = pi->gate;
    c->op = op;
    c->t0 = now_ns();
    if (c->g && c->g->inflight) metrics_gauge_add(c->g->inflight, 1);
}

static int call_end(call *c, int rc, vx_error *err)
{
    if (rc != 0 && err->code == 0) err->code = rc;
    if (rc != 0 && err->msg[0] == '\0')
        snprintf(err->msg, sizeof err->msg, "%s", gate_error_name(rc));
    if (c->g == NULL) return rc;
    uint64_t dt = now_ns() - c->t0;
    if (c->g->inflight) metrics_gauge_add(c->g->inflight, -1);
    if (c->g->duration[c->op]) metrics_histogram_observe_ns(c->g->duration[c->op], dt);
    metrics_series *s = calls_series(c->g, c->op, rc);
    if (s) metrics_counter_inc(s);
    return rc;
}

int gate_store_get(plug_instance *pi, const char *key, void **val, size_t *len, vx_error *err)
{
    call c;
    memset(err, 0, sizeof *err);
    *val = NULL;
    *len = 0;
    call_begin(&c, pi, OP_GET);
    int rc = pi->lp->store.get(pi->inst, key, val, len, err);
    return call_end(&c, rc, err);
}

int gate_store_put(plug_instance *pi, const char *key, const void *val, size_t len,
                   uint32_t ttl_s, vx_error *err)
{
    call c;
    memset(err, 0, sizeof *err);
    call_begin(&c, pi, OP_PUT);
    int rc = pi->lp->store.put(pi->inst, key, val, len, ttl_s, err);
    return call_end(&c, rc, err);
}

int gate_store_del(plug_instance *pi, const char *key, vx_error *err)
{
    call c;
    memset(err, 0, sizeof *err);
    call_begin(&c, pi, OP_DEL);
    int rc = pi->lp->store.del(pi->inst, key, err);
    return call_end(&c, rc, err);
}

int gate_store_ping(plug_instance *pi, vx_error *err)
{
    call c;
    memset(err, 0, sizeof *err);
    call_begin(&c, pi, OP_PING);
    int rc = pi->lp->store.ping(pi->inst, err);
    return call_end(&c, rc, err);
}

int gate_health(plug_instance *pi, char *buf, size_t len)
{
    if (pi->lp->info.health == NULL) {
        snprintf(buf, len, "available");
        return 0;
    }
    buf[0] = '\0';
    int rc = pi->lp->info.health(pi->inst, buf, len);
    buf[len - 1] = '\0';
    if (buf[0] == '\0') snprintf(buf, len, "%s", rc == 0 ? "available" : gate_error_name(rc));
    return rc;
}
