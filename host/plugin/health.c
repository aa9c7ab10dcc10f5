/*
 * Periodic health checks feeding /ready and /v1/health.
 */
#include "config.h"

#include "plugin/health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin/gate.h"
#include "plugin/services.h"
#include "base/log.h"
#include "pipeline/stage.h"

#define DETAIL 256

typedef struct status {
    int ok;
    char detail[DETAIL];
} status;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static pthread_t g_thread;
static int g_running;
static app *g_app;
static status g_store;
static int g_kick;

static void check_instances(const plug_set *ps)
{
    for (size_t i = 0; ps && i < ps->n_inst; i++) {
        plug_instance *pi = ps->inst[i];
        if (!pi->initialized) continue;
        status is;
        is.ok = gate_health(pi, is.detail, sizeof is.detail) == 0;
        pthread_mutex_lock(&g_lock);
        pi->health_ok = is.ok;
        snprintf(pi->health_detail, sizeof pi->health_detail, "%s", is.detail);
        pthread_mutex_unlock(&g_lock);
    }
}

static void check_round(void)
{
    /* The store and sink in service (a reload replaces them); the
     * reference keeps them alive through the round. */
    svc_gen *sg = svc_acquire();
    const plug_set *ps = svc_plugins(sg);
    vx_error err;
    status st;
    if (ps == NULL) return;
    int rc = gate_store_ping(ps->store, &err);
    st.ok = rc == 0;
    if (rc == 0) snprintf(st.detail, sizeof st.detail, "ok");
    else snprintf(st.detail, sizeof st.detail, "%s", err.msg);

    pthread_mutex_lock(&g_lock);
    if (st.ok != g_store.ok || g_store.detail[0] == '\0') {
        if (st.ok)
            log_info("session store is reachable", "store", ps->store->name);
        else
            log_error("session store check failed", "store", ps->store->name,
                      "error", st.detail);
    }
    g_store = st;
    pthread_mutex_unlock(&g_lock);

    check_instances(ps);
    svc_release(sg);
    /* The stage providers of the current generation (a reload replaces
     * them); the reference keeps them alive through the round. */
    stage_gen *g = stage_gen_acquire();
    check_instances(stage_gen_plugins(g));
    stage_gen_release(g);
}

static void *loop(void *unused)
{
    pthread_setname_np(pthread_self(), "vx-health"); /* for top -H, perf, gdb */
    (void)unused;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        struct timespec due;
        clock_gettime(CLOCK_MONOTONIC, &due);
        long long ms = settings_live_health_interval_ms();
        due.tv_sec += ms / 1000;
        due.tv_nsec += (ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        while (g_running && !g_kick && pthread_cond_timedwait(&g_cond, &g_lock, &due) == 0) {
        }
        g_kick = 0;
        if (!g_running) break;
        pthread_mutex_unlock(&g_lock);
        check_round();
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int health_start(app *a)
{
    pthread_condattr_t ca;
    g_app = a;
    check_round();
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &ca);
    pthread_condattr_destroy(&ca);
    g_running = 1;
    if (pthread_create(&g_thread, NULL, loop, NULL) != 0) {
        g_running = 0;
        return -1;
    }
    return 0;
}

void health_stop(void)
{
    pthread_mutex_lock(&g_lock);
    int was = g_running;
    g_running = 0;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (was) {
        pthread_join(g_thread, NULL);
        pthread_cond_destroy(&g_cond);
    }
}

void health_kick(void)
{
    pthread_mutex_lock(&g_lock);
    g_kick = 1;
    if (g_running) pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

void health_store_switched(void)
{
    pthread_mutex_lock(&g_lock);
    g_store.ok = 1;
    snprintf(g_store.detail, sizeof g_store.detail, "ok");
    g_kick = 1;
    if (g_running) pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

int health_store_ok(char *detail, size_t len)
{
    pthread_mutex_lock(&g_lock);
    int ok = g_store.ok;
    if (detail) snprintf(detail, len, "%s", g_store.detail[0] ? g_store.detail : "not checked yet");
    pthread_mutex_unlock(&g_lock);
    return ok;
}

int health_instance_ok(const plug_instance *pi, char *detail, size_t len)
{
    pthread_mutex_lock(&g_lock);
    int ok = pi->health_ok;
    if (detail) snprintf(detail, len, "%s", pi->health_detail[0] ? pi->health_detail : "not checked yet");
    pthread_mutex_unlock(&g_lock);
    return ok;
}
