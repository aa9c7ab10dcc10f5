/*
 * The host's timer thread (host/base/defer.c): jobs run once, in due order and
 * in queueing order among equals; a cancelled job never runs; stop runs
 * what is left at once, in order; and none of it depends on how many jobs
 * are queued (many timers, most of them cancelled, as sessions do).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/defer.h"

#define MAX_RUNS 20000

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_order[MAX_RUNS];
static int g_runs;

static void record(void *arg)
{
    pthread_mutex_lock(&g_mu);
    if (g_runs < MAX_RUNS) g_order[g_runs] = (int)(intptr_t)arg;
    g_runs++;
    pthread_mutex_unlock(&g_mu);
}

static int runs(void)
{
    pthread_mutex_lock(&g_mu);
    int n = g_runs;
    pthread_mutex_unlock(&g_mu);
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (up to 10 s) until n jobs ran. */
static void wait_runs(int n)
{
    for (int i = 0; i < 10000 && runs() < n; i++) sleep_ms(1);
    assert_int_equal(runs(), n);
}

static int setup(void **state)
{
    (void)state;
    g_runs = 0;
    memset(g_order, 0, sizeof g_order);
    return defer_start();
}

static int teardown(void **state)
{
    (void)state;
    defer_stop();
    return 0;
}

static void test_jobs_run_in_due_order_and_fifo_among_equals(void **state)
{
    (void)state;
    assert_int_equal(defer_run(60, record, (void *)(intptr_t)3), 0);
    assert_int_equal(defer_run(20, record, (void *)(intptr_t)1), 0);
    assert_int_equal(defer_run(40, record, (void *)(intptr_t)2), 0);
    wait_runs(3);
    assert_int_equal(g_order[0], 1);
    assert_int_equal(g_order[1], 2);
    assert_int_equal(g_order[2], 3);
    /* Due at once, several at a time: in the order queued. */
    g_runs = 0;
    for (int i = 0; i < 50; i++) assert_int_equal(defer_run(0, record, (void *)(intptr_t)i), 0);
    wait_runs(50);
    for (int i = 0; i < 50; i++) assert_int_equal(g_order[i], i);
}

/* defer_run_at keeps the nanoseconds: jobs a fraction of a millisecond
 * apart run in that order, not in the order queued, and none runs before
 * its time. A time already past is due at once. */
static uint64_t g_ran_at[8];

static void record_time(void *arg)
{
    int i = (int)(intptr_t)arg;
    g_ran_at[i] = defer_now_ns();
    record(arg);
}

static void test_run_at_keeps_sub_millisecond_times(void **state)
{
    (void)state;
    uint64_t t0 = defer_now_ns() + 20000000ull, due[4];
    /* queued latest first; 300 us apart, all within one millisecond */
    for (int i = 3; i >= 0; i--) {
        due[i] = t0 + (uint64_t)i * 300000ull;
        assert_int_equal(defer_run_at(due[i], record_time, (void *)(intptr_t)i, NULL), 0);
    }
    wait_runs(4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g_order[i], i);
        assert_true(g_ran_at[i] >= due[i]);
    }
    g_runs = 0;
    assert_int_equal(defer_run_at(defer_now_ns() - 1000000000ull, record, (void *)(intptr_t)7, NULL), 0);
    wait_runs(1);
    assert_int_equal(g_order[0], 7);
}

static void test_cancel_removes_a_pending_job_only(void **state)
{
    uint64_t a = 0, b = 0;
    (void)state;
    assert_int_equal(defer_run_id(50, record, (void *)(intptr_t)1, &a), 0);
    assert_int_equal(defer_run_id(50, record, (void *)(intptr_t)2, &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
    assert_int_equal(defer_cancel(a), 1);
    assert_int_equal(defer_cancel(a), 0); /* already gone */
    assert_int_equal(defer_cancel(0), 0);
    assert_int_equal(defer_cancel(b + 1000), 0); /* never queued */
    wait_runs(1);
    assert_int_equal(g_order[0], 2);
    assert_int_equal(defer_cancel(b), 0); /* already ran */
    sleep_ms(80);
    assert_int_equal(runs(), 1);
}

/* A later job that becomes the earliest wakes the thread early. */
static void test_an_earlier_job_is_not_held_behind_a_later_one(void **state)
{
    (void)state;
    assert_int_equal(defer_run(5000, record, (void *)(intptr_t)9), 0);
    assert_int_equal(defer_run(10, record, (void *)(intptr_t)1), 0);
    wait_runs(1);
    assert_int_equal(g_order[0], 1);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* 10,000 timers with random delays, every other one cancelled (a session
 * re-arming its timeout): the others run once each, in due order. */
static void test_many_timers_half_cancelled(void **state)
{
    enum { N = 10000 };
    static uint64_t ids[N];
    static uint32_t delay[N];
    static uint64_t due[N];
    uint32_t seed = 12345;
    (void)state;
    for (int i = 0; i < N; i++) {
        struct timespec ts;
        delay[i] = rnd(&seed) % 300;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        due[i] = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + delay[i] * 1000000ull;
        assert_int_equal(defer_run_id(delay[i], record, (void *)(intptr_t)i, &ids[i]), 0);
    }
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            int r = defer_cancel(ids[i]);
            if (r == 0) kept++; /* ran already: the thread is quick */
        } else {
            kept++;
        }
    }
    wait_runs(kept);
    sleep_ms(350);
    assert_int_equal(runs(), kept);
    /* Each ran once. */
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < kept; k++) {
        int i = g_order[k];
        assert_true(i >= 0 && i < N);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
    }
    /* Run order never goes back in due time (a job queued after another
     * ran is due after it ran); 20 ms allows for the test reading the clock
     * a little before defer does. */
    for (int k = 1; k < kept; k++) {
        int p = g_order[k - 1], i = g_order[k];
        assert_true(due[p] <= due[i] + 20000000ull);
    }
}

static atomic_int g_slow_state; /* 1 running, 2 returned */

static void slow(void *arg)
{
    (void)arg;
    atomic_store(&g_slow_state, 1);
    sleep_ms(100);
    atomic_store(&g_slow_state, 2);
}

/* Cancel with wait: a queued job is removed; a running one is waited for,
 * so its argument can be freed as soon as the call returns. */
static void test_cancel_wait_removes_a_queued_job_or_waits_for_a_running_one(void **state)
{
    uint64_t id = 0;
    (void)state;
    atomic_store(&g_slow_state, 0);
    assert_int_equal(defer_run_id(5000, slow, NULL, &id), 0);
    assert_int_equal(defer_cancel_wait(id), 1);
    assert_int_equal(defer_run_id(0, slow, NULL, &id), 0);
    for (int i = 0; i < 10000 && atomic_load(&g_slow_state) == 0; i++) sleep_ms(1);
    assert_int_equal(atomic_load(&g_slow_state), 1);
    assert_int_equal(defer_cancel_wait(id), 0);
    assert_int_equal(atomic_load(&g_slow_state), 2);
    assert_int_equal(defer_cancel_wait(id), 0); /* ran: returns at once */
}

/* Stop runs what is left at once, in due order; later queueing fails. */
static void test_stop_runs_the_rest_in_order(void **state)
{
    (void)state;
    assert_int_equal(defer_run(60000, record, (void *)(intptr_t)2), 0);
    assert_int_equal(defer_run(30000, record, (void *)(intptr_t)1), 0);
    assert_int_equal(defer_run(90000, record, (void *)(intptr_t)3), 0);
    defer_stop();
    assert_int_equal(runs(), 3);
    assert_int_equal(g_order[0], 1);
    assert_int_equal(g_order[1], 2);
    assert_int_equal(g_order[2], 3);
    assert_int_equal(defer_run(0, record, NULL), -1);
    /* It starts again cleanly. */
    assert_int_equal(defer_start(), 0);
    assert_int_equal(defer_run(0, record, (void *)(intptr_t)4), 0);
    wait_runs(4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_run_in_due_order_and_fifo_among_equals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_at_keeps_sub_millisecond_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_removes_a_pending_job_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_earlier_job_is_not_held_behind_a_later_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_timers_half_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_wait_removes_a_queued_job_or_waits_for_a_running_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_runs_the_rest_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
