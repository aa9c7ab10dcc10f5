/*
 * A single timer thread over a binary min-heap of jobs, ordered by due time
 * and then by id (jobs due at the same time run in the order they were
 * queued). A hash table by id finds a job to cancel. Queueing and cancelling
 * cost O(log n) however many sessions hold a timer; the thread wakes only
 * for the earliest job.
 */
#include "config.h"

#include "base/defer.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct job {
    uint64_t due_ns; /* CLOCK_MONOTONIC */
    uint64_t id;
    void (*fn)(void *);
    void *arg;
    size_t slot;       /* index in g_heap */
    struct job *hnext; /* chain in g_table */
} job;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static job **g_heap;
static size_t g_n, g_cap;
static job **g_table; /* by id; g_tsize buckets, a power of two */
static size_t g_tsize;
static int g_running;
static pthread_t g_thread;
static uint64_t g_next_id = 1;
static uint64_t g_current;         /* id of the job whose fn is running, 0 none */
static pthread_cond_t g_done_cond; /* a running job returned */
static int g_waiters;              /* defer_cancel_wait callers waiting on it */
static _Thread_local int t_in_job; /* this thread is running a job's fn */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ heap */

static int before(const job *a, const job *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->id < b->id);
}

static void put_at(size_t i, job *j)
{
    g_heap[i] = j;
    j->slot = i;
}

static void sift_up(size_t i)
{
    job *j = g_heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(j, g_heap[p])) break;
        put_at(i, g_heap[p]);
        i = p;
    }
    put_at(i, j);
}

static void sift_down(size_t i)
{
    job *j = g_heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g_n) break;
        if (c + 1 < g_n && before(g_heap[c + 1], g_heap[c])) c++;
        if (!before(g_heap[c], j)) break;
        put_at(i, g_heap[c]);
        i = c;
    }
    put_at(i, j);
}

/* Take j out of the heap (not the table). */
static void heap_remove(job *j)
{
    size_t i = j->slot;
    job *last = g_heap[--g_n];
    if (last == j) return;
    put_at(i, last);
    if (i > 0 && before(last, g_heap[(i - 1) / 2])) sift_up(i);
    else sift_down(i);
}

/* ------------------------------------------------------------ table */

static size_t bucket(uint64_t id) { return (size_t)(id * 0x9e3779b97f4a7c15ull >> 32) & (g_tsize - 1); }

/* Rehash into twice the buckets; on allocation failure chains just get
 * longer. */
static void table_grow(void)
{
    size_t n = g_tsize ? g_tsize * 2 : 64, old = g_tsize;
    job **t = calloc(n, sizeof *t), **prev = g_table;
    if (t == NULL) return;
    g_table = t;
    g_tsize = n;
    for (size_t i = 0; i < old; i++)
        for (job *j = prev[i], *next; j; j = next) {
            next = j->hnext;
            j->hnext = g_table[bucket(j->id)];
            g_table[bucket(j->id)] = j;
        }
    free(prev);
}

static void table_remove(job *j)
{
    for (job **pp = &g_table[bucket(j->id)]; *pp; pp = &(*pp)->hnext)
        if (*pp == j) {
            *pp = j->hnext;
            return;
        }
}

/* Remove and return the earliest job (g_n > 0). */
static job *pop_first(void)
{
    job *j = g_heap[0];
    heap_remove(j);
    table_remove(j);
    return j;
}

/* ------------------------------------------------------------ thread */

/* Run j with g_lock held on entry and exit; cancel-waiters learn when it
 * returned. */
static void run_job(job *j)
{
    g_current = j->id;
    pthread_mutex_unlock(&g_lock);
    t_in_job = 1;
    j->fn(j->arg);
    t_in_job = 0;
    free(j);
    pthread_mutex_lock(&g_lock);
    g_current = 0;
    if (g_waiters > 0) pthread_cond_broadcast(&g_done_cond);
}

static void *loop(void *unused)
{
    pthread_setname_np(pthread_self(), "vx-timer"); /* for top -H, perf, gdb */
    (void)unused;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        if (g_n == 0) {
            pthread_cond_wait(&g_cond, &g_lock);
            continue;
        }
        uint64_t due = g_heap[0]->due_ns;
        if (now_ns() < due) {
            struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
            pthread_cond_timedwait(&g_cond, &g_lock, &ts);
            continue;
        }
        run_job(pop_first());
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
    pthread_cond_init(&g_done_cond, NULL);
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

/* Remove job id if queued (g_lock held); 1 when it was. */
static int cancel_locked(uint64_t id)
{
    if (g_tsize == 0) return 0;
    for (job *j = g_table[bucket(id)]; j; j = j->hnext)
        if (j->id == id) {
            table_remove(j);
            heap_remove(j);
            free(j);
            return 1;
        }
    return 0;
}

int defer_cancel(uint64_t id)
{
    pthread_mutex_lock(&g_lock);
    int removed = cancel_locked(id);
    pthread_mutex_unlock(&g_lock);
    return removed;
}

int defer_cancel_wait(uint64_t id)
{
    pthread_mutex_lock(&g_lock);
    int removed = cancel_locked(id);
    /* A job cannot wait for itself, nor for one behind it on its thread. */
    if (!removed && !t_in_job) {
        g_waiters++;
        while (id != 0 && g_current == id) pthread_cond_wait(&g_done_cond, &g_lock);
        g_waiters--;
    }
    pthread_mutex_unlock(&g_lock);
    return removed;
}

int defer_run_at(uint64_t due_ns, void (*fn)(void *arg), void *arg, uint64_t *id)
{
    job *j = malloc(sizeof *j);
    if (j == NULL) return -1;
    j->due_ns = due_ns;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&g_lock);
    if (!g_running) goto fail;
    if (g_n == g_cap) {
        size_t cap = g_cap ? g_cap * 2 : 64;
        job **h = realloc(g_heap, cap * sizeof *h);
        if (h == NULL) goto fail;
        g_heap = h;
        g_cap = cap;
    }
    if (g_n >= g_tsize) table_grow();
    if (g_tsize == 0) goto fail;
    j->id = g_next_id++;
    if (id) *id = j->id;
    j->hnext = g_table[bucket(j->id)];
    g_table[bucket(j->id)] = j;
    g_heap[g_n] = j;
    sift_up(g_n++);
    /* Only a new earliest job changes when the thread must wake. */
    if (j->slot == 0) pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
    return 0;
fail:
    pthread_mutex_unlock(&g_lock);
    free(j);
    return -1;
}

int defer_run_id(uint32_t delay_ms, void (*fn)(void *arg), void *arg, uint64_t *id)
{
    return defer_run_at(now_ns() + (uint64_t)delay_ms * 1000000ull, fn, arg, id);
}

uint64_t defer_now_ns(void) { return now_ns(); }

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
    while (g_n > 0) run_job(pop_first());
    free(g_heap);
    free(g_table);
    g_heap = NULL;
    g_table = NULL;
    g_n = g_cap = g_tsize = 0;
    pthread_mutex_unlock(&g_lock);
    pthread_cond_destroy(&g_cond);
    pthread_cond_destroy(&g_done_cond);
}
