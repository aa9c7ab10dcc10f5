/*
 * The call gate: timing and counting around every plugin call.
 */
#include "config.h"

#include "plugin/gate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin/loader.h"
#include "metrics.h"
#include "plugin/plugins.h"

static const char *const op_names[GATE_OP_COUNT] = {"get", "put", "del", "ping",
                                                    "transcribe", "generate", "synthesize", "upload"};
static const char *const op_kind[GATE_OP_COUNT] = {"store", "store", "store", "store",
                                                   "stt", "llm", "tts", "sink"};
enum { K_STORE, K_STT, K_LLM, K_TTS, K_SINK, K_COUNT };
static const int op_kidx[GATE_OP_COUNT] = {K_STORE, K_STORE, K_STORE, K_STORE, K_STT, K_LLM, K_TTS, K_SINK};
static const char *const kind_names[K_COUNT] = {"store", "stt", "llm", "tts", "sink"};

/* status index 0 is "ok", i is the error -i (1..11), 12 "unknown" */
#define N_STATUS 13

static metrics_family *f_calls, *f_duration, *f_inflight, *f_info;

/* Live instances: after a reload an old and a new instance of one name may
 * be alive together, and when both have the same voxray_plugin_info labels
 * (an unchanged version) the series must stay until the last one goes. */
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static gate_instance *g_live;

struct gate_instance {
    plug_instance *pi;
    gate_instance *next; /* every live one (g_live), under g_live_lock */
    metrics_series *info;
    _Atomic(metrics_series *) inflight[K_COUNT];
    _Atomic(metrics_series *) duration[GATE_OP_COUNT];
    _Atomic(metrics_series *) calls[GATE_OP_COUNT][N_STATUS];
};

const char *gate_error_name(int code) { return loader_error_name(code); }

int gate_metrics_init(metrics_registry *reg)
{
    /* `provider` repeats the instance name under the label the stage
     * families carry too (stage.c), so {provider="x"} selects every series
     * of one provider instance. */
    static const char *const l_calls[] = {"kind", "plugin", "provider", "op", "status"};
    static const char *const l_dur[] = {"kind", "plugin", "provider", "op"};
    static const char *const l_inflight[] = {"kind", "plugin", "provider"};
    static const char *const l_info[] = {"plugin", "provider", "module", "version", "abi"};
    static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    f_calls = metrics_counter_family(reg, "voxray_plugin_calls_total",
                                     "Plugin calls through the call gate, by outcome.", 5, l_calls);
    f_duration = metrics_histogram_family(reg, "voxray_plugin_call_duration_seconds",
                                          "Duration of plugin calls (whole streams for stt/llm/tts).", 4,
                                          l_dur, buckets, sizeof buckets / sizeof buckets[0]);
    f_inflight = metrics_gauge_family(reg, "voxray_plugin_inflight",
                                      "Plugin calls (or streams) currently running.", 3, l_inflight);
    f_info = metrics_gauge_family(reg, "voxray_plugin_info",
                                  "Loaded plugin instances (always 1).", 5, l_info);
    return f_calls && f_duration && f_inflight && f_info ? 0 : -1;
}

static void info_labels(const plug_instance *pi, char *abi, size_t len, const char *lv[5])
{
    snprintf(abi, len, "%u.%u", pi->lp->info.abi_major, pi->lp->info.abi_minor);
    lv[0] = pi->name;
    lv[1] = pi->name;
    lv[2] = pi->module;
    lv[3] = pi->lp->info.version ? pi->lp->info.version : "";
    lv[4] = abi;
}

gate_instance *gate_instance_new(metrics_registry *reg, plug_instance *pi)
{
    (void)reg;
    gate_instance *g = calloc(1, sizeof *g);
    char abi[16];
    const char *lv[5];
    if (g == NULL) return NULL;
    g->pi = pi;
    info_labels(pi, abi, sizeof abi, lv);
    g->info = metrics_series_get(f_info, lv);
    if (g->info == NULL) {
        free(g);
        return NULL;
    }
    metrics_gauge_set(g->info, 1);
    pthread_mutex_lock(&g_live_lock);
    g->next = g_live;
    g_live = g;
    pthread_mutex_unlock(&g_live_lock);
    return g;
}

static int same_info(const plug_instance *a, const plug_instance *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->module, b->module) == 0 &&
           strcmp(a->lp->info.version ? a->lp->info.version : "", b->lp->info.version ? b->lp->info.version : "") == 0 &&
           a->lp->info.abi_major == b->lp->info.abi_major && a->lp->info.abi_minor == b->lp->info.abi_minor;
}

void gate_instance_free(gate_instance *g)
{
    if (g == NULL) return;
    char abi[16];
    const char *lv[5];
    info_labels(g->pi, abi, sizeof abi, lv);
    int shared = 0;
    pthread_mutex_lock(&g_live_lock);
    for (gate_instance **pp = &g_live; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    for (gate_instance *o = g_live; o; o = o->next)
        if (same_info(o->pi, g->pi)) shared = 1;
    if (!shared) metrics_series_remove(f_info, lv);
    pthread_mutex_unlock(&g_live_lock);
    metrics_series_release(g->info);
    for (int k = 0; k < K_COUNT; k++) metrics_series_release(atomic_load(&g->inflight[k]));
    for (int op = 0; op < GATE_OP_COUNT; op++) {
        metrics_series_release(atomic_load(&g->duration[op]));
        for (int s = 0; s < N_STATUS; s++) metrics_series_release(atomic_load(&g->calls[op][s]));
    }
    free(g);
}

/* Resolve a series and publish it in *slot; the first call for a slot (per
 * instance, op and status) comes here, every later one finds the slot
 * filled (see slot_get). Out of line so the label strings stay off the hot
 * path. NULL when the registry is out of memory (the call goes uncounted). */
static __attribute__((noinline)) metrics_series *
resolve(_Atomic(metrics_series *) *slot, metrics_family *f, const char *const *lv)
{
    metrics_series *fresh = metrics_series_get(f, lv);
    if (fresh == NULL) return NULL;
    metrics_series *expected = NULL;
    if (!atomic_compare_exchange_strong(slot, &expected, fresh)) {
        metrics_series_release(fresh);
        return expected;
    }
    return fresh;
}

static inline metrics_series *slot_get(_Atomic(metrics_series *) *slot)
{
    return atomic_load_explicit(slot, memory_order_acquire);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static metrics_series *inflight_series(plug_instance *pi, gate_op op)
{
    gate_instance *g = pi->gate;
    int k = op_kidx[op];
    metrics_series *s = slot_get(&g->inflight[k]);
    if (s == NULL) s = resolve(&g->inflight[k], f_inflight, (const char *const[]){kind_names[k], pi->name, pi->name});
    return s;
}

/* The metric updates are per-CPU shards (metrics.h), so two threads calling
 * one plugin at once write no common cache line here. */
void gate_call_begin(plug_instance *pi, gate_op op)
{
    if (pi->gate == NULL) return;
    metrics_gauge_add(inflight_series(pi, op), 1);
}

void gate_call_end(plug_instance *pi, gate_op op, int rc, uint64_t duration_ns)
{
    gate_instance *g = pi->gate;
    if (g == NULL) return;
    metrics_gauge_add(inflight_series(pi, op), -1);
    metrics_series *s = slot_get(&g->duration[op]);
    if (s == NULL)
        s = resolve(&g->duration[op], f_duration,
                    (const char *const[]){op_kind[op], pi->name, pi->name, op_names[op]});
    metrics_histogram_observe_ns(s, duration_ns);
    int idx = rc == 0 ? 0 : (rc < 0 && rc >= -11 ? -rc : 12);
    s = slot_get(&g->calls[op][idx]);
    if (s == NULL)
        s = resolve(&g->calls[op][idx], f_calls,
                    (const char *const[]){op_kind[op], pi->name, pi->name, op_names[op],
                                          rc == 0 ? "ok" : rc == VX_ECANCELED ? "canceled"
                                                                              : gate_error_name(rc)});
    metrics_counter_inc(s);
}

/* What the plugin ABI promises a plugin about the vx_error it is handed
 * (sdk/voxray/plugin.h, "Ownership"): code, retryable and upstream_status
 * zero, msg empty and its last byte zero. Clearing those instead of the
 * whole 268 bytes is a measurable share of a store call. */
static inline void err_clear(vx_error *err)
{
    err->code = 0;
    err->retryable = 0;
    err->upstream_status = 0;
    err->msg[0] = '\0';
    err->msg[sizeof err->msg - 1] = '\0';
}

static int finish(plug_instance *pi, gate_op op, uint64_t t0, int rc, vx_error *err)
{
    uint64_t t1 = now_ns();
    if (rc != 0 && err->code == 0) err->code = rc;
    if (rc != 0 && err->msg[0] == '\0') {
        /* A store's "not found" is routine: no formatting for it. The
         * names are a few bytes, far below sizeof msg. */
        const char *name = gate_error_name(rc);
        memcpy(err->msg, name, strlen(name) + 1);
    }
    gate_call_end(pi, op, rc, t1 - t0);
    return rc;
}

int gate_store_get(plug_instance *pi, const char *key, void **val, size_t *len, vx_error *err)
{
    err_clear(err);
    *val = NULL;
    *len = 0;
    uint64_t t0 = now_ns();
    gate_call_begin(pi, GATE_OP_GET);
    return finish(pi, GATE_OP_GET, t0, pi->lp->store.get(pi->inst, key, val, len, err), err);
}

int gate_store_put(plug_instance *pi, const char *key, const void *val, size_t len,
                   uint32_t ttl_s, vx_error *err)
{
    err_clear(err);
    uint64_t t0 = now_ns();
    gate_call_begin(pi, GATE_OP_PUT);
    return finish(pi, GATE_OP_PUT, t0, pi->lp->store.put(pi->inst, key, val, len, ttl_s, err), err);
}

int gate_store_del(plug_instance *pi, const char *key, vx_error *err)
{
    err_clear(err);
    uint64_t t0 = now_ns();
    gate_call_begin(pi, GATE_OP_DEL);
    return finish(pi, GATE_OP_DEL, t0, pi->lp->store.del(pi->inst, key, err), err);
}

int gate_store_ping(plug_instance *pi, vx_error *err)
{
    err_clear(err);
    uint64_t t0 = now_ns();
    gate_call_begin(pi, GATE_OP_PING);
    return finish(pi, GATE_OP_PING, t0, pi->lp->store.ping(pi->inst, err), err);
}

int gate_sink_upload(plug_instance *pi, const vx_recording *rec, vx_error *err)
{
    err_clear(err);
    uint64_t t0 = now_ns();
    gate_call_begin(pi, GATE_OP_UPLOAD);
    int rc = pi->lp->sink.upload(pi->inst, rec, err);
    if (rc > 0) rc = VX_EINTERNAL; /* a positive return is a plugin bug, not success */
    return finish(pi, GATE_OP_UPLOAD, t0, rc, err);
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
