/*
 * The host's worker pool (host/base/worker.c) under load: tasks of one strand
 * run in order, one at a time; workers stuck in a blocking call are made up
 * for, so other strands keep running; busy workers are not (the pool does
 * not grow with the amount of CPU work); strands posted in a batch all run.
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
#include <time.h>

#include "base/worker.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll until *flag reaches want, at most ms. */
static int wait_for(atomic_int *flag, int want, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (atomic_load(flag) >= want) return 1;
        sleep_ms(1);
    }
    return atomic_load(flag) >= want;
}

static atomic_int g_release, g_blocked, g_ran;

static void block_task(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_blocked, 1);
    while (!atomic_load(&g_release)) sleep_ms(1);
}

static void count_task(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_ran, 1);
}

static void stuck_workers_are_made_up_for(void **state)
{
    (void)state;
    assert_int_equal(workers_start(2, 16), 0);
    strand *a = strand_new(), *b = strand_new(), *c = strand_new();
    atomic_store(&g_release, 0);
    atomic_store(&g_blocked, 0);
    atomic_store(&g_ran, 0);
    assert_int_equal(strand_post(a, block_task, NULL), 0);
    assert_int_equal(strand_post(b, block_task, NULL), 0);
    assert_true(wait_for(&g_blocked, 2, 10000)); /* both workers are stuck */
    assert_int_equal(strand_post(c, count_task, NULL), 0);
    /* a third worker comes for the waiting task */
    assert_true(wait_for(&g_ran, 1, 10000));
    assert_true(workers_count() >= 3);
    atomic_store(&g_release, 1);
    strand_unref(a);
    strand_unref(b);
    strand_unref(c);
    assert_int_equal(workers_stop(10000), 0);
}

static atomic_int g_order_bad, g_last[64];

static void spin_task(void *arg)
{
    intptr_t v = (intptr_t)arg;
    int s = (int)(v >> 16), n = (int)(v & 0xffff);
    if (atomic_load(&g_last[s]) != n - 1) atomic_store(&g_order_bad, 1);
    atomic_store(&g_last[s], n);
    /* a little CPU work, well under the pool's stall threshold */
    volatile unsigned x = 0;
    for (int i = 0; i < 20000; i++) x += (unsigned)i;
    atomic_fetch_add(&g_ran, 1);
}

static void busy_workers_do_not_grow_the_pool(void **state)
{
    (void)state;
    enum { STRANDS = 64, TASKS = 50 };
    assert_int_equal(workers_start(2, 256), 0);
    strand *st[STRANDS];
    atomic_store(&g_ran, 0);
    atomic_store(&g_order_bad, 0);
    for (int s = 0; s < STRANDS; s++) {
        st[s] = strand_new();
        atomic_store(&g_last[s], -1);
    }
    for (int n = 0; n < TASKS; n++)
        for (int s = 0; s < STRANDS; s++)
            assert_int_equal(strand_post(st[s], spin_task, (void *)(intptr_t)((s << 16) | n)), 0);
    assert_true(wait_for(&g_ran, STRANDS * TASKS, 60000));
    assert_int_equal(atomic_load(&g_order_bad), 0);
    /* a pool that grew whenever every worker was busy reached dozens here */
    assert_true(workers_count() < 12);
    for (int s = 0; s < STRANDS; s++) strand_unref(st[s]);
    assert_int_equal(workers_stop(10000), 0);
}

static void strands_posted_in_a_batch_all_run(void **state)
{
    (void)state;
    assert_int_equal(workers_start(2, 8), 0);
    enum { N = 100 };
    strand *st[N];
    atomic_store(&g_ran, 0);
    strand_batch_begin();
    for (int i = 0; i < N; i++) {
        st[i] = strand_new();
        assert_int_equal(strand_post(st[i], count_task, NULL), 0);
        assert_int_equal(strand_post(st[i], count_task, NULL), 0);
    }
    sleep_ms(20);
    assert_int_equal(atomic_load(&g_ran), 0); /* held until the batch ends */
    strand_batch_end();
    assert_true(wait_for(&g_ran, 2 * N, 10000));
    for (int i = 0; i < N; i++) strand_unref(st[i]);
    assert_int_equal(workers_stop(10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stuck_workers_are_made_up_for),
        cmocka_unit_test(busy_workers_do_not_grow_the_pool),
        cmocka_unit_test(strands_posted_in_a_batch_all_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
