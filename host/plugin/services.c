/*
 * The session store and the recording sink in service: refcounted
 * generations a reload replaces (see services.h).
 */
#include "plugin/services.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

struct svc_gen {
    atomic_int refs;
    unsigned long id;
    plug_set *ps;
    svc_gen *next; /* in g_done */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static svc_gen *g_cur;  /* under g_lock; holds a reference */
static svc_gen *g_done; /* released generations waiting for svc_collect */
static unsigned long g_ids;
static atomic_int g_live;

int svc_reload(plug_set *ps)
{
    svc_gen *g = calloc(1, sizeof *g);
    if (g == NULL) return -1;
    atomic_init(&g->refs, 1);
    g->ps = ps;
    pthread_mutex_lock(&g_lock);
    svc_gen *old = g_cur;
    g->id = ++g_ids;
    g_cur = g;
    atomic_fetch_add(&g_live, 1);
    pthread_mutex_unlock(&g_lock);
    if (old) {
        old->ps->retired = 1;
        svc_release(old);
    }
    return 0;
}

int svc_init(plug_set *ps) { return svc_reload(ps); }

svc_gen *svc_acquire(void)
{
    pthread_mutex_lock(&g_lock);
    svc_gen *g = g_cur;
    if (g) atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&g_lock);
    return g;
}

void svc_release(svc_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1) return;
    pthread_mutex_lock(&g_lock);
    g->next = g_done;
    g_done = g;
    pthread_mutex_unlock(&g_lock);
}

plug_instance *svc_store(const svc_gen *g) { return g ? g->ps->store : NULL; }
plug_instance *svc_sink(const svc_gen *g) { return g ? g->ps->sink : NULL; }
const plug_set *svc_plugins(const svc_gen *g) { return g ? g->ps : NULL; }
unsigned long svc_id(const svc_gen *g) { return g ? g->id : 0; }

int svc_collect(void)
{
    pthread_mutex_lock(&g_lock);
    svc_gen *list = g_done;
    g_done = NULL;
    pthread_mutex_unlock(&g_lock);
    int n = 0;
    while (list) {
        svc_gen *next = list->next;
        if (list->ps->retired) {
            char id[24];
            snprintf(id, sizeof id, "%lu", list->id);
            log_info("no call uses the session store and recording sink a reload replaced; releasing them",
                     "generation", id);
        }
        plug_set_free(list->ps);
        free(list);
        atomic_fetch_sub(&g_live, 1);
        list = next;
        n++;
    }
    return n;
}

int svc_generations(void) { return atomic_load(&g_live); }

void svc_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    svc_gen *g = g_cur;
    g_cur = NULL;
    pthread_mutex_unlock(&g_lock);
    svc_release(g);
    svc_collect();
}
