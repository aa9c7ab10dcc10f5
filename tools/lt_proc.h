/*
 * Resource use of another process, sampled from /proc (Linux): CPU time
 * (utime + stime of /proc/PID/stat), resident memory (VmRSS) and threads
 * (Threads:) of /proc/PID/status.
 */
#ifndef VOXRAY_TOOLS_LT_PROC_H
#define VOXRAY_TOOLS_LT_PROC_H

#include <stdint.h>
#include <sys/types.h>

typedef struct lt_proc {
    pid_t pid;
    int alive;                  /* 0 once a read failed (process gone) */
    int64_t t_first, t_last;    /* monotonic us of the first and last sample */
    uint64_t ticks_first, ticks_last;
    double cpu_now;             /* percent of one core over the last interval */
    double cpu_max;             /* highest cpu_now */
    uint64_t rss_now, rss_max;  /* bytes */
    int threads_now, threads_max;
    unsigned samples;
} lt_proc;

/* Take the first sample of pid. Returns 0, or -1 with a reason in err when
 * the process cannot be read (no such process, not Linux, no permission). */
int lt_proc_open(lt_proc *p, pid_t pid, char *err, size_t errlen);

/* Take one more sample. Returns 0, or -1 (and alive = 0) when the process
 * can no longer be read; the figures so far stay. */
int lt_proc_sample(lt_proc *p);

/* Average CPU percent of one core between the first and last sample, 0 with
 * fewer than two samples. */
double lt_proc_cpu_mean(const lt_proc *p);

#endif
