/*
 * Many one-shot timers for one event loop thread.
 *
 * The timers live in a binary heap (O(log n) to set or cancel): with 5,000
 * sessions pacing audio every 20 ms that is 250,000 sets a second. The
 * loop asks lt_timers_next() how long it may sleep and calls
 * lt_timers_run() when it wakes; one wake-up fires every timer due within
 * LT_TIMER_BATCH_US, so however many sessions are due in the same
 * millisecond they cost one wake-up.
 *
 * Not thread-safe: every call happens on the loop's thread.
 */
#ifndef VOXRAY_TOOLS_LT_TIMER_H
#define VOXRAY_TOOLS_LT_TIMER_H

#include <stddef.h>
#include <stdint.h>

/* Timers due within this much after a wake-up fire in the same pass: at
 * most about 1,000 wake-ups a second however many timers there are, and no
 * timer fires more than this early. */
#define LT_TIMER_BATCH_US 1000

typedef struct lt_timers lt_timers;

typedef struct lt_timer {
    int64_t due;                /* cli_now_us() clock */
    size_t idx;                 /* position in the heap + 1; 0: not set */
    lt_timers *owner;
} lt_timer;

typedef void (*lt_timer_fn)(lt_timer *t);

/* A set of timers firing fn. Returns NULL when out of memory. */
lt_timers *lt_timers_new(lt_timer_fn fn);

/* Fire t at due (a past time fires on the next lt_timers_run()); setting a
 * set timer moves it. Returns 0, or -1 when out of memory (t is not set). */
int lt_timer_set(lt_timers *ts, lt_timer *t, int64_t due);

/* Unset t; nothing happens when it is not set. */
void lt_timer_cancel(lt_timer *t);

/* The earliest due time, or -1 when no timer is set. */
int64_t lt_timers_next(const lt_timers *ts);

/* Fire, earliest first, every timer due by now + LT_TIMER_BATCH_US. A
 * callback may set or cancel any timer, itself included; a timer set again
 * for a time already due fires in the same pass. Returns how many fired. */
size_t lt_timers_run(lt_timers *ts, int64_t now);

/* Unset every timer and free the set. NULL is ignored. */
void lt_timers_free(lt_timers *ts);

#endif
