/*
 * A single timer thread with a deadline-ordered list of jobs.
 */
#include "config.h"

#include "defer.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct job {
    struct timespec due;
    void (*fn)(void *);
    void *arg;
    uint64_t id;
    struct job *next;
} job;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static job *g_head;
static int g_running;
static pthread_t g_thread;
static uint64_t g_next_id = 1;

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *loop(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (g_head == NULL) {
            pthread_cond_wait(&g_cond, &g_lock);
        } else if (ts_before(&now, &g_head->due)) {
            pthread_cond_timedwait(&g_cond, &g_lock, &g_head->due);
        } else {
            job *j = g_head;
            g_head = j->next;
            pthread_mutex_unlock(&g_lock);
            j->fn(j->arg);
            free(j);
            pthread_mutex_lock(&g_lock);
        }
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int defer_start(void)
{
    pthread_condattr_t ca;
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

int defer_run(uint32_t delay_ms, void (*fn)(void *arg), void *arg)
{
    return defer_run_id(delay_ms, fn, arg, NULL);
}

int defer_cancel(uint64_t id)
{
    int removed = 0;
    pthread_mutex_lock(&g_lock);
    for (job **pp = &g_head; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            job *j = *pp;
            *pp = j->next;
            free(j);
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return removed;
}

int defer_run_id(uint32_t delay_ms, void (*fn)(void *arg), void *arg, uint64_t *id)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL) return -1;
    clock_gettime(CLOCK_MONOTONIC, &j->due);
    j->due.tv_sec += delay_ms / 1000;
    j->due.tv_nsec += (long)(delay_ms % 1000) * 1000000L;
    if (j->due.tv_nsec >= 1000000000L) {
        j->due.tv_sec++;
        j->due.tv_nsec -= 1000000000L;
    }
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        free(j);
        return -1;
    }
    j->id = g_next_id++;
    if (id) *id = j->id;
    job **pp = &g_head;
    while (*pp && !ts_before(&j->due, &(*pp)->due)) pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void defer_stop(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    g_running = 0;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
    pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_lock);
    while (g_head) {
        job *j = g_head;
        g_head = j->next;
        pthread_mutex_unlock(&g_lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&g_lock);
    }
    pthread_mutex_unlock(&g_lock);
    pthread_cond_destroy(&g_cond);
}
