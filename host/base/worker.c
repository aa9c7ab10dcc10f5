/*
 * Thread pool with strands (serial task queues).
 *
 * Threads: the pool starts with min_threads workers, grows only when work
 * waits while workers are stuck in one task (a plugin call that blocks: a
 * store call on a dead server, a provider that hangs) and shrinks back when
 * the extra workers idle. The grower keeps min_threads workers that are not
 * stuck (in one task for more than WORKERS_STALL_MS) for the work that
 * waits. Busy workers alone are no reason to grow: the work is CPU work,
 * and more threads than cores only add hand-offs and lock traffic (a pool
 * that grew on every busy moment ran ~250 threads at 200 sessions, half its
 * CPU in futex calls).
 *
 * Posting to a strand that is already queued or running touches only the
 * strand's lock; the pool lock is taken when a strand becomes runnable, and
 * a thread that posts in bursts (the WebSocket thread) hands its runnable
 * strands over in one batch (strand_batch_begin/end), or runs a short task
 * of an idle strand itself (strand_try_run).
 */
#include "config.h"

#include "base/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
/* Each worker's slot: when its current task started (CLOCK_MONOTONIC_COARSE
 * ns, odd; 0 between tasks), for the grower to count stuck workers. Linked
 * in g_slots under g_lock while the worker lives. */
typedef struct wslot {
    _Atomic uint64_t t0;
    struct wslot *next;
} wslot;
static wslot *g_slots;
static _Thread_local wslot *t_slot;
/* a thread's batch (strand_batch_begin/end): strands it made runnable,
 * handed to the pool together */
static _Thread_local int t_batching;
static _Thread_local strand *t_batch_head, *t_batch_tail;
static _Thread_local int t_batch_n;

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

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Work waits and no worker is idle: the grower checks whether the busy
 * ones are stuck (g_lock held). */
static void watch_locked(void) { pthread_cond_signal(&g_grow_cond); }

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
        if (t_slot) atomic_store_explicit(&t_slot->t0, coarse_ns() | 1, memory_order_relaxed);
        t->fn(t->arg);
        if (t_slot) atomic_store_explicit(&t_slot->t0, 0, memory_order_relaxed);
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
    if (g_idle > 0) pthread_cond_signal(&g_cond);
    else watch_locked();
    pthread_mutex_unlock(&g_lock);
}

/* *ts = now + ms on CLOCK_REALTIME (the clock of the pool's conditions). */
static void deadline_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait for work (g_lock held). Returns 0 when there is some or the pool
 * stops, -1 when this worker has been idle for g_idle_ms and is one beyond
 * the minimum: it should exit. The deadline is on CLOCK_REALTIME (g_cond's
 * clock): a clock step only changes when a surplus worker leaves. */
static int wait_work(void)
{
    struct timespec due;
    int timed_out = 0;

    deadline_ms(&due, g_idle_ms);
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
    pthread_setname_np(pthread_self(), "vx-worker"); /* for top -H, perf, gdb */
    wslot *slot = calloc(1, sizeof *slot); /* NULL: this worker is never counted stuck */
    pthread_mutex_lock(&g_lock);
    if (slot) {
        slot->next = g_slots;
        g_slots = slot;
        t_slot = slot;
    }
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
        if (g_idle == 0 && g_ready_head) watch_locked();
        pthread_mutex_unlock(&g_lock);
        run_strand(s);
        pthread_mutex_lock(&g_lock);
        g_busy--;
        if (g_busy == 0 && g_ready_head == NULL) pthread_cond_broadcast(&g_idle_cond);
    }
    g_threads--;
    for (wslot **pp = &g_slots; *pp; pp = &(*pp)->next)
        if (*pp == slot) {
            *pp = slot->next;
            break;
        }
    pthread_mutex_unlock(&g_lock);
    free(slot);
    t_slot = NULL;
    return NULL;
}

/* Wait while there is nothing to decide; with work waiting and no idle
 * worker, look every WORKERS_STALL_MS, count the workers stuck in one task
 * since before then, and add workers so that min_threads are not stuck (a
 * hung store adds threads at a bounded rate: one period each). Progress of
 * one worker is no reason to leave the others' work waiting. */
static void *grower_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "vx-pool-grower");
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        if (!(g_ready_head && g_idle == 0 && g_threads < g_max)) {
            pthread_cond_wait(&g_grow_cond, &g_lock);
            continue;
        }
        struct timespec due;
        deadline_ms(&due, WORKERS_STALL_MS);
        /* Only the deadline counts: signals in between are other posts. */
        while (g_running && pthread_cond_timedwait(&g_grow_cond, &g_lock, &due) == 0) {}
        if (!g_running || g_ready_head == NULL || g_idle > 0) continue;
        uint64_t now = coarse_ns(), stall = (uint64_t)WORKERS_STALL_MS * 1000000ull;
        int stuck = 0;
        for (wslot *w = g_slots; w; w = w->next) {
            uint64_t t0 = atomic_load_explicit(&w->t0, memory_order_relaxed);
            if (t0 && now > t0 && now - t0 > stall) stuck++;
        }
        if (g_threads - stuck < g_min && g_threads < g_max) spawn_locked();
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
    deadline_ms(&due, timeout_ms);
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
    /* Already queued or running: the worker that has it runs this too
     * (run_strand looks for more under the strand's lock before it lets
     * go), and the pool cannot stop before it has. */
    pthread_mutex_lock(&s->lock);
    if (s->scheduled) {
        if (s->tail) s->tail->next = t;
        else s->head = t;
        s->tail = t;
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    if (t_batching) {
        /* the strand is handed to the pool at strand_batch_end() */
        if (s->tail) s->tail->next = t;
        else s->head = t;
        s->tail = t;
        s->scheduled = 1;
        pthread_mutex_unlock(&s->lock);
        s->next_ready = NULL;
        if (t_batch_tail) t_batch_tail->next_ready = s;
        else t_batch_head = s;
        t_batch_tail = s;
        t_batch_n++;
        return 0;
    }
    pthread_mutex_unlock(&s->lock);
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
        else watch_locked();
    }
    pthread_mutex_unlock(&g_lock);
    return 0;
}

int strand_current(const strand *s) { return t_current == s; }

int strand_try_run(strand *s, void (*fn)(void *), void *arg)
{
    if (t_current != NULL) return 0; /* never inside another strand's task */
    pthread_mutex_lock(&s->lock);
    if (s->scheduled) {
        pthread_mutex_unlock(&s->lock);
        return 0;
    }
    s->scheduled = 1; /* the strand is ours: nothing else runs it now */
    pthread_mutex_unlock(&s->lock);
    t_current = s;
    fn(arg);
    t_current = NULL;
    atomic_fetch_add_explicit(&g_finished, 1, memory_order_relaxed);
    pthread_mutex_lock(&s->lock);
    if (s->head == NULL) {
        s->scheduled = 0;
        int dead = s->refs == 0;
        pthread_mutex_unlock(&s->lock);
        if (dead) strand_destroy(s);
        return 1;
    }
    pthread_mutex_unlock(&s->lock);
    /* tasks were posted meanwhile: the strand goes to the pool (still
     * marked scheduled, so they wait their turn) */
    if (t_batching) {
        s->next_ready = NULL;
        if (t_batch_tail) t_batch_tail->next_ready = s;
        else t_batch_head = s;
        t_batch_tail = s;
        t_batch_n++;
        return 1;
    }
    pthread_mutex_lock(&g_lock);
    ready_push(s);
    if (g_idle > 0) pthread_cond_signal(&g_cond);
    else watch_locked();
    pthread_mutex_unlock(&g_lock);
    return 1;
}

void strand_batch_begin(void) { t_batching = 1; }

void strand_batch_end(void)
{
    t_batching = 0;
    if (t_batch_head == NULL) return;
    strand *list = t_batch_head;
    int n = t_batch_n;
    t_batch_head = t_batch_tail = NULL;
    t_batch_n = 0;
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        /* the pool is gone: run them here rather than drop them */
        pthread_mutex_unlock(&g_lock);
        while (list) {
            strand *next = list->next_ready;
            run_strand(list);
            list = next;
        }
        return;
    }
    while (list) {
        strand *next = list->next_ready;
        ready_push(list);
        list = next;
    }
    int wake = n < g_idle ? n : g_idle;
    for (int i = 0; i < wake; i++) pthread_cond_signal(&g_cond);
    if (g_idle < n) watch_locked();
    pthread_mutex_unlock(&g_lock);
}
