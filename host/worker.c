/*
 * Thread pool with strands (serial task queues).
 */
#include "config.h"

#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct task {
    void (*fn)(void *);
    void *arg;
    struct task *next;
} task;

struct strand {
    pthread_mutex_t lock;
    task *head, *tail;
    int scheduled; /* on the run queue or running */
    int refs;
    struct strand *next_ready;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_idle_cond = PTHREAD_COND_INITIALIZER;
static strand *g_ready_head, *g_ready_tail;
static int g_threads, g_idle, g_min, g_max, g_running, g_busy;
static int g_idle_ms = WORKERS_IDLE_MS;
/* Threads started and not yet joined: g_tids live ones, g_dead (at most
 * one, see retire_locked) ones that returned or are returning. */
static pthread_t *g_tids;
static int g_n_tids, g_cap_tids;
static pthread_t g_dead;
static int g_has_dead;
/* The grower: a thread that adds a worker when work waits and none of the
 * workers finished a task for WORKERS_STALL_MS, i.e. they are blocked, not
 * merely busy. Growing on "everyone busy" alone made a CPU-bound burst (200
 * sessions sending audio at once on 2 cores) start dozens of threads that
 * only competed for the same cores. */
static pthread_t g_grower;
static int g_has_grower;
static pthread_cond_t g_grow_cond = PTHREAD_COND_INITIALIZER;
static atomic_ulong g_finished; /* tasks run to completion */
static _Thread_local const strand *t_current;

static void strand_destroy(strand *s)
{
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Put s on the ready queue (g_lock held). */
static void ready_push(strand *s)
{
    s->next_ready = NULL;
    if (g_ready_tail) g_ready_tail->next_ready = s;
    else g_ready_head = s;
    g_ready_tail = s;
}

static void *worker_main(void *unused);

/* Join the worker that retired last, if any (g_lock held). It holds no
 * lock any more and only has to return, so this does not wait long. */
static void reap_locked(void)
{
    if (!g_has_dead) return;
    pthread_join(g_dead, NULL);
    g_has_dead = 0;
}

/* The calling worker leaves the pool (g_lock held): its entry moves from
 * g_tids to g_dead, after joining the one that left before, so exited
 * threads never pile up unjoined. */
static void retire_locked(void)
{
    pthread_t self = pthread_self();
    reap_locked();
    for (int i = 0; i < g_n_tids; i++)
        if (pthread_equal(g_tids[i], self)) {
            g_tids[i] = g_tids[--g_n_tids];
            break;
        }
    g_dead = self;
    g_has_dead = 1;
}

/* Start one more worker (g_lock held). */
static void spawn_locked(void)
{
    reap_locked();
    if (g_n_tids == g_cap_tids) {
        int cap = g_cap_tids ? g_cap_tids * 2 : 16;
        pthread_t *nt = realloc(g_tids, (size_t)cap * sizeof *nt);
        if (nt == NULL) return;
        g_tids = nt;
        g_cap_tids = cap;
    }
    if (pthread_create(&g_tids[g_n_tids], NULL, worker_main, NULL) == 0) {
        g_n_tids++;
        g_threads++;
    }
}

static void run_strand(strand *s)
{
    /* Run a bounded batch, then yield so one busy strand cannot starve the
     * others. */
    for (int i = 0; i < 64; i++) {
        pthread_mutex_lock(&s->lock);
        task *t = s->head;
        if (t == NULL) {
            s->scheduled = 0;
            int dead = s->refs == 0;
            pthread_mutex_unlock(&s->lock);
            if (dead) strand_destroy(s);
            return;
        }
        s->head = t->next;
        if (s->head == NULL) s->tail = NULL;
        pthread_mutex_unlock(&s->lock);
        t_current = s;
        t->fn(t->arg);
        t_current = NULL;
        free(t);
        atomic_fetch_add_explicit(&g_finished, 1, memory_order_relaxed);
    }
    pthread_mutex_lock(&s->lock);
    int more = s->head != NULL;
    if (!more) {
        s->scheduled = 0;
        int dead = s->refs == 0;
        pthread_mutex_unlock(&s->lock);
        if (dead) strand_destroy(s);
        return;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&g_lock);
    ready_push(s);
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

/* Wait for work (g_lock held). Returns 0 when there is some or the pool
 * stops, -1 when this worker has been idle for g_idle_ms and is one beyond
 * the minimum: it should exit. The deadline is on CLOCK_REALTIME (g_cond's
 * clock): a clock step only changes when a surplus worker leaves. */
static int wait_work(void)
{
    struct timespec due;
    int timed_out = 0;

    clock_gettime(CLOCK_REALTIME, &due);
    due.tv_sec += g_idle_ms / 1000;
    due.tv_nsec += (long)(g_idle_ms % 1000) * 1000000L;
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    while (g_ready_head == NULL && g_running) {
        if (timed_out && g_threads > g_min) return -1;
        g_idle++;
        if (g_threads > g_min) timed_out = pthread_cond_timedwait(&g_cond, &g_lock, &due) != 0;
        else pthread_cond_wait(&g_cond, &g_lock);
        g_idle--;
    }
    return 0;
}

static void *worker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        if (wait_work() != 0) {
            retire_locked();
            break;
        }
        if (g_ready_head == NULL && !g_running) break;
        strand *s = g_ready_head;
        g_ready_head = s->next_ready;
        if (g_ready_head == NULL) g_ready_tail = NULL;
        g_busy++;
        /* Everyone busy and work waiting: the grower checks whether they
         * are blocked. */
        if (g_idle == 0 && g_ready_head) pthread_cond_signal(&g_grow_cond);
        pthread_mutex_unlock(&g_lock);
        run_strand(s);
        pthread_mutex_lock(&g_lock);
        g_busy--;
        if (g_busy == 0 && g_ready_head == NULL) pthread_cond_broadcast(&g_idle_cond);
    }
    g_threads--;
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* Wait while there is nothing to decide; with work waiting and no idle
 * worker, look every WORKERS_STALL_MS and add a worker when no task
 * finished in between (one per period: a hung store adds threads at a
 * bounded rate). */
static void *grower_main(void *unused)
{
    unsigned long seen = 0;
    (void)unused;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        if (!(g_ready_head && g_idle == 0 && g_threads < g_max)) {
            pthread_cond_wait(&g_grow_cond, &g_lock);
            seen = atomic_load(&g_finished);
            continue;
        }
        struct timespec due;
        clock_gettime(CLOCK_REALTIME, &due);
        due.tv_nsec += WORKERS_STALL_MS * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        /* Only the deadline counts: signals in between are other posts. */
        while (g_running && pthread_cond_timedwait(&g_grow_cond, &g_lock, &due) == 0) {}
        unsigned long now = atomic_load(&g_finished);
        if (g_running && now == seen && g_ready_head && g_idle == 0 && g_threads < g_max)
            spawn_locked();
        seen = now;
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int workers_start(int min_threads, int max_threads)
{
    pthread_mutex_lock(&g_lock);
    g_running = 1;
    g_min = min_threads;
    g_max = max_threads < min_threads ? min_threads : max_threads;
    for (int i = 0; i < min_threads; i++) spawn_locked();
    g_has_grower = g_max > g_threads && pthread_create(&g_grower, NULL, grower_main, NULL) == 0;
    int ok = g_threads > 0;
    pthread_mutex_unlock(&g_lock);
    return ok ? 0 : -1;
}

int workers_stop(int timeout_ms)
{
    struct timespec due;
    clock_gettime(CLOCK_REALTIME, &due);
    due.tv_sec += timeout_ms / 1000;
    due.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (due.tv_nsec >= 1000000000L) {
        due.tv_sec++;
        due.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g_lock);
    /* Let queued work finish first. */
    while (g_ready_head != NULL || g_busy > 0) {
        if (pthread_cond_timedwait(&g_idle_cond, &g_lock, &due) != 0) {
            int busy = g_busy;
            pthread_mutex_unlock(&g_lock);
            return busy > 0 || g_ready_head ? -1 : 0;
        }
    }
    g_running = 0;
    pthread_cond_broadcast(&g_cond);
    pthread_cond_signal(&g_grow_cond);
    int grower = g_has_grower;
    g_has_grower = 0;
    reap_locked();
    int n = g_n_tids;
    pthread_t *tids = g_tids;
    g_tids = NULL;
    g_n_tids = g_cap_tids = 0;
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
    if (grower) pthread_join(g_grower, NULL);
    free(tids);
    return 0;
}

void workers_set_idle_ms(int ms)
{
    pthread_mutex_lock(&g_lock);
    g_idle_ms = ms > 0 ? ms : 1;
    pthread_cond_broadcast(&g_cond); /* idle workers re-arm with the new time */
    pthread_mutex_unlock(&g_lock);
}

int workers_count(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_threads;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int workers_busy(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_busy;
    pthread_mutex_unlock(&g_lock);
    return n;
}

strand *strand_new(void)
{
    strand *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    return s;
}

void strand_ref(strand *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
}

void strand_unref(strand *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->lock);
    int dead = --s->refs == 0 && !s->scheduled;
    pthread_mutex_unlock(&s->lock);
    if (dead) strand_destroy(s);
}

int strand_post(strand *s, void (*fn)(void *), void *arg)
{
    task *t = malloc(sizeof *t);
    if (t == NULL) return -1;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        free(t);
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    if (s->tail) s->tail->next = t;
    else s->head = t;
    s->tail = t;
    int schedule = !s->scheduled;
    s->scheduled = 1;
    pthread_mutex_unlock(&s->lock);
    if (schedule) {
        ready_push(s);
        if (g_idle > 0) pthread_cond_signal(&g_cond);
        else pthread_cond_signal(&g_grow_cond);
    }
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int strand_current(const strand *s) { return t_current == s; }
