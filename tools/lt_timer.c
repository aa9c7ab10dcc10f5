/*
 * A heap of timers behind one lws timer (see lt_timer.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cliutil.h"
#include "lt_timer.h"

/* Timers due within this much after a wake-up fire in the same pass: one
 * wake-up serves a batch (at most about 1,000 wake-ups a second however
 * many timers there are), and no timer fires more than this early. */
#define LT_BATCH_US 1000

struct lt_timers {
    struct lws_context *ctx;
    int mode;
    lt_timer_fn fn;
    lt_timer **heap;
    size_t n, cap;
    lws_sorted_usec_list_t sul;
    int64_t armed;      /* due of the armed lws timer, 0: none */
    int running;        /* inside on_sul: it re-arms at the end */
};

static int64_t now_us(void) {
    return cli_now_us();
}

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

static void on_sul(lws_sorted_usec_list_t *sul);

static void arm(lt_timers *ts) {
    int64_t now;
    if (ts->running) return;
    if (ts->n == 0) {
        lws_sul_cancel(&ts->sul);
        ts->armed = 0;
        return;
    }
    if (ts->armed && ts->armed == ts->heap[0]->due) return;
    now = now_us();
    ts->armed = ts->heap[0]->due;
    lws_sul_schedule(ts->ctx, 0, &ts->sul, on_sul,
                     ts->armed > now ? (lws_usec_t)(ts->armed - now) : 0);
}

static void on_sul(lws_sorted_usec_list_t *sul) {
    lt_timers *ts = lws_container_of(sul, lt_timers, sul);
    int64_t now = now_us();

    ts->armed = 0;
    ts->running = 1;
    while (ts->n && ts->heap[0]->due <= now + LT_BATCH_US) {
        lt_timer *t = ts->heap[0];
        heap_remove(ts, t);
        ts->fn(t); /* may set t, or others, again */
    }
    ts->running = 0;
    arm(ts);
}

static void on_own_sul(lws_sorted_usec_list_t *sul) {
    lt_timer *t = lws_container_of(sul, lt_timer, sul);
    t->idx = 0;
    t->owner->fn(t);
}

lt_timers *lt_timers_new(struct lws_context *ctx, int mode, lt_timer_fn fn) {
    lt_timers *ts = calloc(1, sizeof(*ts));
    if (!ts) return NULL;
    ts->ctx = ctx;
    ts->mode = mode;
    ts->fn = fn;
    return ts;
}

int lt_timer_set(lt_timers *ts, lt_timer *t, int64_t due) {
    t->owner = ts;
    if (ts->mode == LT_TIMER_SUL) {
        int64_t now = now_us();
        t->due = due;
        t->idx = 1;
        lws_sul_schedule(ts->ctx, 0, &t->sul, on_own_sul, due > now ? (lws_usec_t)(due - now) : 0);
        return 0;
    }
    if (t->idx) {
        int64_t old = t->due;
        t->due = due;
        if (due < old)
            sift_up(ts, t->idx - 1);
        else
            sift_down(ts, t->idx - 1);
    } else {
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
    }
    /* Re-arm only when the earliest timer moved earlier. */
    if (!ts->armed || ts->heap[0]->due < ts->armed) arm(ts);
    return 0;
}

void lt_timer_cancel(lt_timer *t) {
    lt_timers *ts = t->owner;
    if (!ts || !t->idx) return;
    if (ts->mode == LT_TIMER_SUL) {
        lws_sul_cancel(&t->sul);
        t->idx = 0;
        return;
    }
    heap_remove(ts, t);
    /* A later fire than needed does no harm: on_sul finds nothing due and
     * re-arms for the new earliest. */
}

void lt_timers_free(lt_timers *ts) {
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) ts->heap[i]->idx = 0;
    lws_sul_cancel(&ts->sul);
    free(ts->heap);
    free(ts);
}
