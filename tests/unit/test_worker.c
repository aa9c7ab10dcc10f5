/*
 * The host's worker pool (host/base/worker.c): it grows while every worker is
 * blocked, shrinks back to its minimum once the surplus has been idle, never
 * below it, keeps working after shrinking, and stop joins every thread it
 * started, those that already exited included.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/worker.h"

#define MIN_THREADS 2
#define BLOCKERS 8

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_open; /* blocked tasks may return */
static int g_done; /* tasks that returned */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A plugin call that blocks until the test lets it go. */
static void blocked_task(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    while (!g_open) pthread_cond_wait(&g_cv, &g_mu);
    g_done++;
    pthread_mutex_unlock(&g_mu);
}

static void quick_task(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    g_done++;
    pthread_mutex_unlock(&g_mu);
}

static int done(void)
{
    pthread_mutex_lock(&g_mu);
    int n = g_done;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* Poll (up to 10 s: the machine may be busy) until f() == want. */
static int wait_for(int (*f)(void), int want)
{
    for (int i = 0; i < 10000 && f() != want; i++) sleep_ms(1);
    return f();
}

static int setup(void **state)
{
    (void)state;
    g_open = 0;
    g_done = 0;
    if (workers_start(MIN_THREADS, 64) != 0) return -1;
    workers_set_idle_ms(50);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return workers_stop(5000);
}

/* BLOCKERS tasks on their own strands, all blocked: the pool grows to hold
 * them. Returns once every one is running. */
static void block_many(strand **st)
{
    for (int i = 0; i < BLOCKERS; i++) {
        st[i] = strand_new();
        assert_non_null(st[i]);
        assert_int_equal(strand_post(st[i], blocked_task, NULL), 0);
    }
    assert_int_equal(wait_for(workers_busy, BLOCKERS), BLOCKERS);
    assert_true(workers_count() >= BLOCKERS);
}

static void release(strand **st, int want_done)
{
    pthread_mutex_lock(&g_mu);
    g_open = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(wait_for(done, want_done), want_done);
    for (int i = 0; i < BLOCKERS; i++) strand_unref(st[i]);
}

static void test_surplus_workers_exit_after_the_idle_time(void **state)
{
    strand *st[BLOCKERS];
    (void)state;
    block_many(st);
    release(st, BLOCKERS);
    assert_int_equal(wait_for(workers_count, MIN_THREADS), MIN_THREADS);
}

static void test_the_minimum_stays_however_long_the_pool_idles(void **state)
{
    (void)state;
    sleep_ms(300); /* six idle times */
    assert_int_equal(workers_count(), MIN_THREADS);
}

/* Grow and shrink three times: each time back to the minimum, and the
 * shrunk pool still runs work. */
static void test_a_shrunk_pool_grows_again_and_still_runs_work(void **state)
{
    strand *st[BLOCKERS];
    (void)state;
    for (int round = 1; round <= 3; round++) {
        pthread_mutex_lock(&g_mu);
        g_open = 0;
        pthread_mutex_unlock(&g_mu);
        block_many(st);
        release(st, round * BLOCKERS);
        assert_int_equal(wait_for(workers_count, MIN_THREADS), MIN_THREADS);
    }
    strand *s = strand_new();
    assert_non_null(s);
    assert_int_equal(strand_post(s, quick_task, NULL), 0);
    assert_int_equal(wait_for(done, 3 * BLOCKERS + 1), 3 * BLOCKERS + 1);
    strand_unref(s);
}

/* Stop while surplus workers are exiting: it returns (joining each thread
 * once, the exited ones too) and leaves no worker behind. */
static void test_stop_joins_workers_that_already_exited(void **state)
{
    strand *st[BLOCKERS];
    (void)state;
    block_many(st);
    release(st, BLOCKERS);
    sleep_ms(55); /* about when the surplus leaves */
    assert_int_equal(workers_stop(5000), 0);
    assert_int_equal(workers_count(), 0);
    /* teardown stops again: a stopped pool stops cleanly. */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_surplus_workers_exit_after_the_idle_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_minimum_stays_however_long_the_pool_idles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_shrunk_pool_grows_again_and_still_runs_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_joins_workers_that_already_exited, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
