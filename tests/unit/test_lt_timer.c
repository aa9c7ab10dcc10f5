/*
 * tools/lt_timer.c: the timer heap of voxray-loadtest fires every timer
 * once, earliest first, within its batch window, and never one that was
 * cancelled.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lt_timer.h"

#define N 2000

typedef struct item {
    lt_timer tm;
    int64_t want;       /* due it was last set to, -1: not set */
    int fired;
    int reset_by;       /* >0: on firing, set again this much later */
} item;

static item items[N];
static int64_t last_fired_due;
static int64_t run_now;
static lt_timers *g_ts;
static int order_ok;

static void on_fire(lt_timer *t) {
    item *it = (item *)((char *)t - offsetof(item, tm));
    if (it->want < last_fired_due) order_ok = 0;
    if (it->want > run_now + LT_TIMER_BATCH_US) order_ok = 0;
    last_fired_due = it->want;
    it->fired++;
    it->want = -1;
    if (it->reset_by) {
        int64_t d = t->due + it->reset_by;
        it->reset_by = 0;
        it->want = d;
        assert_int_equal(lt_timer_set(g_ts, t, d), 0);
    }
}

static void timers_fire_in_order_and_only_when_due(void **state) {
    (void)state;
    srand(7);
    memset(items, 0, sizeof(items));
    g_ts = lt_timers_new(on_fire);
    assert_non_null(g_ts);
    for (int i = 0; i < N; i++) {
        items[i].want = rand() % 1000000;
        assert_int_equal(lt_timer_set(g_ts, &items[i].tm, items[i].want), 0);
    }
    /* Move some, cancel some. */
    for (int i = 0; i < N; i += 3) {
        items[i].want = rand() % 1000000;
        assert_int_equal(lt_timer_set(g_ts, &items[i].tm, items[i].want), 0);
    }
    for (int i = 1; i < N; i += 7) {
        lt_timer_cancel(&items[i].tm);
        items[i].want = -1;
    }
    order_ok = 1;
    for (run_now = 0; run_now <= 1000000; run_now += 997) {
        int64_t next = lt_timers_next(g_ts);
        last_fired_due = -1;
        lt_timers_run(g_ts, run_now);
        if (next >= 0 && next > run_now + LT_TIMER_BATCH_US) assert_int_equal(last_fired_due, -1);
        /* Nothing left that was due. */
        next = lt_timers_next(g_ts);
        assert_true(next < 0 || next > run_now + LT_TIMER_BATCH_US);
    }
    assert_true(order_ok);
    assert_int_equal(lt_timers_next(g_ts), -1);
    for (int i = 0; i < N; i++) assert_int_equal(items[i].fired, i % 7 == 1 ? 0 : 1);
    lt_timers_free(g_ts);
}

static void a_timer_set_again_from_its_callback_fires_again(void **state) {
    (void)state;
    memset(items, 0, sizeof(items));
    g_ts = lt_timers_new(on_fire);
    items[0].want = 100;
    items[0].reset_by = 20000;
    assert_int_equal(lt_timer_set(g_ts, &items[0].tm, 100), 0);
    order_ok = 1;
    last_fired_due = -1;
    run_now = 100;
    assert_int_equal(lt_timers_run(g_ts, run_now), 1);
    assert_int_equal(lt_timers_next(g_ts), 20100);
    run_now = 20100;
    assert_int_equal(lt_timers_run(g_ts, run_now), 1);
    assert_int_equal(items[0].fired, 2);
    assert_int_equal(lt_timers_next(g_ts), -1);
    lt_timers_free(g_ts);
}

static void one_run_fires_every_timer_within_the_batch_window(void **state) {
    (void)state;
    memset(items, 0, sizeof(items));
    g_ts = lt_timers_new(on_fire);
    for (int i = 0; i < 10; i++) {
        items[i].want = 5000 + i * (LT_TIMER_BATCH_US / 10);
        assert_int_equal(lt_timer_set(g_ts, &items[i].tm, items[i].want), 0);
    }
    items[10].want = 5000 + LT_TIMER_BATCH_US + 1;
    assert_int_equal(lt_timer_set(g_ts, &items[10].tm, items[10].want), 0);
    order_ok = 1;
    last_fired_due = -1;
    run_now = 5000;
    assert_int_equal(lt_timers_run(g_ts, run_now), 10);
    assert_int_equal(items[10].fired, 0);
    lt_timer_cancel(&items[10].tm);
    lt_timer_cancel(&items[10].tm); /* twice: nothing happens */
    assert_int_equal(lt_timers_next(g_ts), -1);
    assert_true(order_ok);
    lt_timers_free(g_ts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_order_and_only_when_due),
        cmocka_unit_test(a_timer_set_again_from_its_callback_fires_again),
        cmocka_unit_test(one_run_fires_every_timer_within_the_batch_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
