/*
 * /proc sampling of the server under load (see lt_proc.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliutil.h"
#include "lt_proc.h"

/* utime + stime in clock ticks. Fields are counted after the last ')': the
 * command name may hold spaces and parentheses. */
static int read_ticks(pid_t pid, uint64_t *ticks) {
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f) return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    /* After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt
     * cminflt majflt cmajflt utime(14) stime(15). */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    return 0;
}

static int read_status(pid_t pid, uint64_t *rss, int *threads) {
    char path[64], line[256];
    unsigned long long kb;
    int got = 0, t;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (!f) return -1;
    *rss = 0; /* a zombie has no VmRSS line */
    *threads = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
            *rss = kb * 1024;
        } else if (sscanf(line, "Threads: %d", &t) == 1) {
            *threads = t;
            got = 1;
        }
    }
    fclose(f);
    return got ? 0 : -1;
}

static int take(lt_proc *p, uint64_t *ticks) {
    uint64_t rss;
    int threads;
    if (read_ticks(p->pid, ticks) != 0 || read_status(p->pid, &rss, &threads) != 0) return -1;
    p->rss_now = rss;
    if (rss > p->rss_max) p->rss_max = rss;
    p->threads_now = threads;
    if (threads > p->threads_max) p->threads_max = threads;
    p->samples++;
    return 0;
}

int lt_proc_open(lt_proc *p, pid_t pid, char *err, size_t errlen) {
    uint64_t ticks;
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    if (take(p, &ticks) != 0) {
        snprintf(err, errlen, "cannot read /proc/%ld: %s", (long)pid,
                 errno ? strerror(errno) : "unexpected format");
        return -1;
    }
    p->alive = 1;
    p->t_first = p->t_last = cli_now_us();
    p->ticks_first = p->ticks_last = ticks;
    return 0;
}

int lt_proc_sample(lt_proc *p) {
    uint64_t ticks;
    int64_t now;
    long hz = sysconf(_SC_CLK_TCK);

    if (!p->alive) return -1;
    if (take(p, &ticks) != 0) {
        p->alive = 0;
        return -1;
    }
    now = cli_now_us();
    if (now > p->t_last && hz > 0) {
        p->cpu_now = (double)(ticks - p->ticks_last) / (double)hz * 1e8 / (double)(now - p->t_last);
        if (p->cpu_now > p->cpu_max) p->cpu_max = p->cpu_now;
    }
    p->t_last = now;
    p->ticks_last = ticks;
    return 0;
}

double lt_proc_cpu_mean(const lt_proc *p) {
    long hz = sysconf(_SC_CLK_TCK);
    if (p->t_last <= p->t_first || hz <= 0) return 0.0;
    return (double)(p->ticks_last - p->ticks_first) / (double)hz * 1e8 /
           (double)(p->t_last - p->t_first);
}
