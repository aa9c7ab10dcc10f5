/*
 * Worker threads and strands.
 *
 * A strand is a serial queue: tasks posted to one strand run one at a time,
 * in order, on whichever worker is free; different strands run in parallel.
 * Each session has a strand for its state machine (which never calls a
 * plugin), and each plugin stream has its own strand for the calls the ABI
 * serializes per stream (open/feed/finish, generate, synthesize, close), so a
 * plugin that blocks stalls only its own stream, never the session.
 *
 * The pool grows (up to max_threads) when work waits and fewer than
 * min_threads workers are free of a task that has run for WORKERS_STALL_MS
 * (blocked, not busy: more threads would not help CPU-bound work), so a few
 * hung plugin calls cannot starve the other sessions, and shrinks back: a
 * worker beyond min_threads that found no work for WORKERS_IDLE_MS exits.
 * Threads follow blocked calls, not sessions.
 */
#ifndef VOXRAY_WORKER_H
#define VOXRAY_WORKER_H

#include <stddef.h>

typedef struct strand strand;

/* How long a worker beyond the minimum waits for work before it exits. */
#define WORKERS_IDLE_MS 30000
/* How long a worker may be in one task before it counts as stuck (and
 * queued work gets another worker). */
#define WORKERS_STALL_MS 50

/* Start min_threads workers, growing up to max_threads. 0 or -1. */
int workers_start(int min_threads, int max_threads);
/* Run every task still queued, then stop and join the workers. Waits at most
 * timeout_ms for the queue to drain; returns -1 if a task is still running
 * then (a plugin call that never returns): the threads are left alone and
 * the caller must not unload plugins. */
int workers_stop(int timeout_ms);
/* Workers alive (started and not exited) / busy right now (for tests and
 * metrics). */
int workers_count(void);
int workers_busy(void);
/* Set the idle time after which a surplus worker exits (tests; default
 * WORKERS_IDLE_MS). */
void workers_set_idle_ms(int ms);

/* A new strand with one reference (NULL on OOM). */
strand *strand_new(void);
void strand_ref(strand *s);
/* Drop a reference; the strand is freed once unreferenced AND idle. Tasks
 * still queued run first. */
void strand_unref(strand *s);

/* Queue fn(arg) on s. Returns 0, or -1 if out of memory or the pool is
 * stopped (fn will not run; the caller cleans up arg). Any thread. */
int strand_post(strand *s, void (*fn)(void *arg), void *arg);

/* Batching for a thread that posts many tasks in a burst (the WebSocket
 * thread, one poll's worth of messages): between begin and end, strands
 * this thread makes runnable are handed to the pool together at end, with
 * one lock and one wake-up per idle worker needed, instead of one each. */
void strand_batch_begin(void);
void strand_batch_end(void);

/* Run fn(arg) as a task of s right here, on the calling thread, when s has
 * nothing queued or running (1); otherwise do nothing (0: post instead).
 * For short tasks of threads that must not block (the WebSocket thread):
 * no hand-off, no wake-up. Tasks posted to s meanwhile run after it, on
 * the pool. */
int strand_try_run(strand *s, void (*fn)(void *), void *arg);

/* 1 when called from a task currently running on s. */
int strand_current(const strand *s);

#endif
