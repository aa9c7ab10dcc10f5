/*
 * Many one-shot timers on the libwebsockets service thread.
 *
 * lws keeps its timers (lws_sorted_usec_list_t) in one list sorted by
 * walking it from the head, so a timer set 20 ms ahead while thousands of
 * others are due sooner costs a walk over all of them: with 5,000 sessions
 * pacing audio every 20 ms that is 250,000 walks of 5,000 nodes a second.
 * Here the timers live in a binary heap (O(log n) to set or cancel) and one
 * lws timer is armed for the earliest of them. LT_TIMER_SUL mode instead
 * gives each timer its own lws timer, for comparison.
 *
 * Not thread-safe: every call happens on the lws service thread.
 */
#ifndef VOXRAY_TOOLS_LT_TIMER_H
#define VOXRAY_TOOLS_LT_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

typedef struct lt_timers lt_timers;

typedef struct lt_timer {
    int64_t due;                /* cli_now_us() clock */
    size_t idx;                 /* position in the heap + 1; 0: not set */
    lt_timers *owner;
    lws_sorted_usec_list_t sul; /* LT_TIMER_SUL mode only */
} lt_timer;

typedef void (*lt_timer_fn)(lt_timer *t);

enum { LT_TIMER_HEAP, LT_TIMER_SUL };

/* A set of timers firing fn on ctx's service thread. Returns NULL when out
 * of memory. */
lt_timers *lt_timers_new(struct lws_context *ctx, int mode, lt_timer_fn fn);

/* Fire t at due (a past time fires on the next service pass); setting a set
 * timer moves it. Returns 0, or -1 when out of memory (t is not set). */
int lt_timer_set(lt_timers *ts, lt_timer *t, int64_t due);

/* Unset t; nothing happens when it is not set. */
void lt_timer_cancel(lt_timer *t);

/* Cancel every timer and free the set (before lws_context_destroy). */
void lt_timers_free(lt_timers *ts);

#endif
