/*
 * Deferred work: run fn(arg) after a delay on the host's timer thread.
 * Backs vx_host_api.defer. Jobs run one at a time; a job that blocks delays
 * the ones behind it, so plugins should only enqueue from them.
 */
#ifndef VOXRAY_DEFER_H
#define VOXRAY_DEFER_H

#include <stdint.h>

/* Start the thread. Returns 0 or -1. */
int defer_start(void);
/* Queue a job. Returns 0, or -1 when stopped or out of memory. */
int defer_run(uint32_t delay_ms, void (*fn)(void *arg), void *arg);
/* Same, returning the job's id in *id (never 0) for defer_cancel(). */
int defer_run_id(uint32_t delay_ms, void (*fn)(void *arg), void *arg, uint64_t *id);
/* Same, due at due_ns on defer_now_ns()'s clock (CLOCK_MONOTONIC), to the
 * nanosecond; a time already past is due at once. id may be NULL. */
int defer_run_at(uint64_t due_ns, void (*fn)(void *arg), void *arg, uint64_t *id);
/* The clock jobs are due on (CLOCK_MONOTONIC, ns). */
uint64_t defer_now_ns(void);
/* Remove a job that has not started. Returns 1 if it was removed (fn will
 * not run: the caller owns arg again), 0 if it already ran or is running. */
int defer_cancel(uint64_t id);
/* Same, but when the job is running, wait until its fn has returned, so
 * the caller may free what arg points to whatever the result. Called from
 * inside a job it does not wait (the running job could be the caller).
 * The caller must not hold a lock the job may take. */
int defer_cancel_wait(uint64_t id);
/* Stop: jobs not yet due run at once, in order (their owners release what
 * they hold; anything they post to a stopped worker pool fails cleanly),
 * then the thread ends. Later defer_run calls fail. */
void defer_stop(void);

#endif
