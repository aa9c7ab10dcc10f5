/*
 * tests/bench/par.h: run a benchmark loop on one or two threads and say
 * whether the two really ran at the same time.
 *
 * On a shared machine two threads can be time-sliced on one core; their
 * wall time then looks like a contended figure but is a serial one. So each
 * thread runs its loop in chunks of PAR_CHUNK iterations and, after every
 * chunk, publishes how many chunks it has done and looks at its peer's
 * count: a chunk during which the peer finished between 1 and PAR_NEAR
 * chunks of its own ran alongside it. (None: the peer was off a CPU. Many:
 * this thread was, for a time slice, while the peer ran alone; such a chunk
 * takes milliseconds and would pass a time slice off as contention.) `overlap` is the fraction of chunks (both threads)
 * that did; time slices are milliseconds and a chunk is microseconds, so
 * threads sharing one core show an overlap near 0, threads on two cores
 * near 1. `cpu_par` is the threads' CPU time over the wall time (2.0 when
 * both were on a CPU the whole run). Each chunk is timed as well, so
 * `ns_overlapped` is the cost per operation counted over the overlapped
 * chunks only: the contended figure even when another tenant of the machine
 * kept the threads apart for part of the run (it is 0 without overlap).
 *
 * Header-only; the benchmarks that include it link -pthread.
 */
#ifndef VOXRAY_BENCH_PAR_H
#define VOXRAY_BENCH_PAR_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define PAR_CHUNK 1024
#define PAR_NEAR 4

/* One call runs n iterations of the measured operation with arg. */
typedef void (*par_body)(void *arg, long n);

typedef struct par_result {
    double ns_per_op; /* wall time (first start to last end) / iterations of one thread */
    double ns_overlapped; /* per operation, over the overlapped chunks; 0 if none */
    double overlap;   /* 0..1, see above; 1 for a single thread */
    double cpu_par;   /* CPU seconds of all threads / wall seconds */
} par_result;

typedef struct par_slot {
    alignas(64) _Atomic long chunks; /* own line: the peer polls it */
    par_body body;
    void *arg;
    long iters;
    long overlapped, total;
    double ov_s;  /* seconds spent in overlapped chunks */
    long ov_iters; /* iterations done in them */
    double cpu, t0, t1; /* CPU seconds; monotonic start and end of the loop */
    struct par_slot *peer;
    pthread_barrier_t *go;
} par_slot;

static double par_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *par_worker(void *p)
{
    par_slot *s = p;
    long done = 0, seen = -1;
    double c0, t;

    pthread_barrier_wait(s->go);
    s->t0 = par_clock(CLOCK_MONOTONIC);
    c0 = par_clock(CLOCK_THREAD_CPUTIME_ID);
    t = s->t0;
    while (done < s->iters) {
        long n = s->iters - done < PAR_CHUNK ? s->iters - done : PAR_CHUNK;
        double t1;
        s->body(s->arg, n);
        done += n;
        t1 = par_clock(CLOCK_MONOTONIC);
        atomic_store_explicit(&s->chunks, atomic_load_explicit(&s->chunks, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        if (s->peer) {
            long c = atomic_load_explicit(&s->peer->chunks, memory_order_relaxed);
            if (seen >= 0 && c - seen >= 1 && c - seen <= PAR_NEAR) {
                s->overlapped++;
                s->ov_s += t1 - t;
                s->ov_iters += n;
            }
            seen = c;
        }
        s->total++;
        t = t1;
    }
    s->cpu = par_clock(CLOCK_THREAD_CPUTIME_ID) - c0;
    s->t1 = par_clock(CLOCK_MONOTONIC);
    return NULL;
}

/* Run body on nthreads (1 or 2) threads, iters iterations each, thread i
 * with args[i]. Aborts if a thread cannot be created. */
static par_result par_run(int nthreads, par_body body, void *const *args, long iters)
{
    par_slot *s = aligned_alloc(64, 2 * sizeof *s);
    pthread_t t[2];
    pthread_barrier_t go;
    par_result r;
    double t0, t1, w, ov_s = 0;
    long ov = 0, tot = 0, ov_iters = 0;
    int i;

    if (s == NULL || nthreads < 1 || nthreads > 2) abort();
    pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
    for (i = 0; i < nthreads; i++) {
        s[i] = (par_slot){.body = body, .arg = args[i], .iters = iters, .go = &go,
                          .peer = nthreads == 2 ? &s[1 - i] : NULL};
        atomic_init(&s[i].chunks, 0);
    }
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, par_worker, &s[i]) != 0) abort();
    pthread_barrier_wait(&go);
    for (i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    /* Wall time from the first loop's start to the last one's end, as the
     * threads saw them (the main thread may wake up late). */
    t0 = s[0].t0;
    t1 = s[0].t1;
    for (i = 1; i < nthreads; i++) {
        if (s[i].t0 < t0) t0 = s[i].t0;
        if (s[i].t1 > t1) t1 = s[i].t1;
    }
    w = t1 - t0;
    r.ns_per_op = w * 1e9 / (double)iters;
    r.cpu_par = 0;
    for (i = 0; i < nthreads; i++) {
        r.cpu_par += s[i].cpu;
        ov += s[i].overlapped;
        tot += s[i].total;
        ov_s += s[i].ov_s;
        ov_iters += s[i].ov_iters;
    }
    r.cpu_par /= w;
    r.overlap = nthreads == 1 ? 1.0 : tot > 0 ? (double)ov / (double)tot : 0;
    r.ns_overlapped = nthreads == 1 ? r.ns_per_op
                      : ov_iters > 0 ? ov_s * 1e9 / (double)ov_iters : 0;
    free(s);
    return r;
}

#endif
