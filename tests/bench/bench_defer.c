/*
 * Cost of re-arming a timer (defer_cancel + defer_run_id, what a session
 * does on every stage output) with 100 to 100,000 other timers pending, as
 * many sessions hold. Prints ns per re-arm; never fails on time.
 *   tests/bench/bench_defer [REARMS]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/defer.h"

static void nop(void *arg) { (void)arg; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const int pending[] = {100, 1000, 10000, 100000};
    int rearms = argc > 1 ? atoi(argv[1]) : 200000;
    uint32_t seed = 1;

    if (rearms <= 0 || defer_start() != 0) return 2;
    printf("%10s %14s\n", "pending", "ns per re-arm");
    for (size_t p = 0; p < sizeof pending / sizeof pending[0]; p++) {
        int n = pending[p];
        uint64_t *ids = malloc((size_t)n * sizeof *ids);
        if (ids == NULL) return 2;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            if (defer_run_id(60000 + seed % 60000, nop, NULL, &ids[i]) != 0) return 2;
        }
        int reps = n >= 100000 ? rearms / 20 : rearms;
        double t0 = now_s();
        for (int r = 0; r < reps; r++) {
            int i = (int)((unsigned)r * 2654435761u % (unsigned)n);
            defer_cancel(ids[i]);
            seed = seed * 1103515245u + 12345u;
            if (defer_run_id(60000 + seed % 60000, nop, NULL, &ids[i]) != 0) return 2;
        }
        double dt = now_s() - t0;
        printf("%10d %14.0f\n", n, dt * 1e9 / reps);
        for (int i = 0; i < n; i++) defer_cancel(ids[i]);
        free(ids);
    }
    defer_stop();
    return 0;
}
