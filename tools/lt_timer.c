/*
 * A heap of timers for one event loop (see lt_timer.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lt_timer.h"

struct lt_timers {
    lt_timer_fn fn;
    lt_timer **heap;
    size_t n, cap;
};

static void heap_swap(lt_timers *ts, size_t a, size_t b) {
    lt_timer *t = ts->heap[a];
    ts->heap[a] = ts->heap[b];
    ts->heap[b] = t;
    ts->heap[a]->idx = a + 1;
    ts->heap[b]->idx = b + 1;
}

static void sift_up(lt_timers *ts, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (ts->heap[p]->due <= ts->heap[i]->due) break;
        heap_swap(ts, p, i);
        i = p;
    }
}

static void sift_down(lt_timers *ts, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ts->n && ts->heap[l]->due < ts->heap[m]->due) m = l;
        if (r < ts->n && ts->heap[r]->due < ts->heap[m]->due) m = r;
        if (m == i) break;
        heap_swap(ts, i, m);
        i = m;
    }
}

static void heap_remove(lt_timers *ts, lt_timer *t) {
    size_t i = t->idx - 1;
    t->idx = 0;
    ts->n--;
    if (i == ts->n) return;
    ts->heap[i] = ts->heap[ts->n];
    ts->heap[i]->idx = i + 1;
    sift_down(ts, i);
    sift_up(ts, i);
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
        if (due < old)
            sift_up(ts, t->idx - 1);
        else
            sift_down(ts, t->idx - 1);
        return 0;
    }
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        lt_timer **h = realloc(ts->heap, cap * sizeof(*h));
        if (!h) return -1;
        ts->heap = h;
        ts->cap = cap;
    }
    t->due = due;
    ts->heap[ts->n++] = t;
    t->idx = ts->n;
    sift_up(ts, ts->n - 1);
    return 0;
}

void lt_timer_cancel(lt_timer *t) {
    if (!t->owner || !t->idx) return;
    heap_remove(t->owner, t);
}

int64_t lt_timers_next(const lt_timers *ts) {
    return ts->n ? ts->heap[0]->due : -1;
}

size_t lt_timers_run(lt_timers *ts, int64_t now) {
    size_t fired = 0;
    while (ts->n && ts->heap[0]->due <= now + LT_TIMER_BATCH_US) {
        lt_timer *t = ts->heap[0];
        heap_remove(ts, t);
        fired++;
        ts->fn(t); /* may set t, or others, again */
    }
    return fired;
}

void lt_timers_free(lt_timers *ts) {
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) ts->heap[i]->idx = 0;
    free(ts->heap);
    free(ts);
}
