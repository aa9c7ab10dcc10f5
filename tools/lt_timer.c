/*
 * A heap of timers for one event loop (see lt_timer.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lt_timer.h"

/* The due time is kept beside the pointer: sifting compares without
 * touching the timers themselves (each in its own session, all over
 * memory). */
typedef struct slot {
    int64_t due;
    lt_timer *t;
} slot;

struct lt_timers {
    lt_timer_fn fn;
    slot *heap;
    size_t n, cap;
};

/* Both sifts move the hole, not the slot: one write per level. */
static void sift_up(lt_timers *ts, size_t i) {
    slot x = ts->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (ts->heap[p].due <= x.due) break;
        ts->heap[i] = ts->heap[p];
        ts->heap[i].t->idx = i + 1;
        i = p;
    }
    ts->heap[i] = x;
    x.t->idx = i + 1;
}

static void sift_down(lt_timers *ts, size_t i) {
    slot x = ts->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m;
        if (l >= ts->n) break;
        m = r < ts->n && ts->heap[r].due < ts->heap[l].due ? r : l;
        if (x.due <= ts->heap[m].due) break;
        ts->heap[i] = ts->heap[m];
        ts->heap[i].t->idx = i + 1;
        i = m;
    }
    ts->heap[i] = x;
    x.t->idx = i + 1;
}

static void heap_remove(lt_timers *ts, lt_timer *t) {
    size_t i = t->idx - 1;
    t->idx = 0;
    ts->n--;
    if (i == ts->n) return;
    ts->heap[i] = ts->heap[ts->n];
    ts->heap[i].t->idx = i + 1;
    if (i > 0 && ts->heap[(i - 1) / 2].due > ts->heap[i].due)
        sift_up(ts, i);
    else
        sift_down(ts, i);
}

lt_timers *lt_timers_new(lt_timer_fn fn) {
    lt_timers *ts = calloc(1, sizeof(*ts));
    if (!ts) return NULL;
    ts->fn = fn;
    return ts;
}

int lt_timer_set(lt_timers *ts, lt_timer *t, int64_t due) {
    t->owner = ts;
    if (t->idx) {
        int64_t old = t->due;
        t->due = due;
        ts->heap[t->idx - 1].due = due;
        if (due < old)
            sift_up(ts, t->idx - 1);
        else
            sift_down(ts, t->idx - 1);
        return 0;
    }
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        slot *h = realloc(ts->heap, cap * sizeof(*h));
        if (!h) return -1;
        ts->heap = h;
        ts->cap = cap;
    }
    t->due = due;
    ts->heap[ts->n].due = due;
    ts->heap[ts->n].t = t;
    ts->n++;
    t->idx = ts->n;
    sift_up(ts, ts->n - 1);
    return 0;
}

void lt_timer_cancel(lt_timer *t) {
    if (!t->owner || !t->idx) return;
    heap_remove(t->owner, t);
}

int64_t lt_timers_next(const lt_timers *ts) {
    return ts->n ? ts->heap[0].due : -1;
}

size_t lt_timers_run(lt_timers *ts, int64_t now) {
    size_t fired = 0;
    while (ts->n && ts->heap[0].due <= now + LT_TIMER_BATCH_US) {
        lt_timer *t = ts->heap[0].t;
        heap_remove(ts, t);
        fired++;
        ts->fn(t); /* may set t, or others, again */
    }
    return fired;
}

void lt_timers_free(lt_timers *ts) {
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) ts->heap[i].t->idx = 0;
    free(ts->heap);
    free(ts);
}
