/*
 * Head deadlines on kept-alive HTTP connections (see keepalive.h).
 *
 * Every libmicrohttpd connection has a record, found through its socket
 * context. A record is "busy" from a complete head to the end of its
 * request (the first request of a connection arrives complete: the front
 * checked it), and otherwise sits on the idle list, in the order its last
 * request ended. The watcher thread walks the idle list only; a connection
 * that closes takes its record with it (under the lock, before
 * libmicrohttpd closes the descriptor).
 */
#include "config.h"

#include "net/keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* Data seen this soon after a request ended may belong to it (TCP_INFO
 * counts in jiffies); only later data starts a next head. */
#define KEEPALIVE_SLACK_NS 10000000ull

typedef struct kconn {
    int fd;
    int busy;            /* a request is being handled */
    int cut;             /* shut down by us; waiting for libmicrohttpd to notice */
    unsigned requests;   /* requests started on it so far */
    uint64_t idle_since; /* when its last request ended, ns */
    uint64_t head_since; /* when bytes of a next head were first seen; 0: none */
    struct kconn *prev, *next; /* idle list (not busy) */
} kconn;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static pthread_t g_thread;
static int g_running;
static uint64_t g_timeout_ns, g_period_ns;
static unsigned g_max, g_n, g_nidle;
static kconn *g_first, *g_last;
static void (*g_on_timeout)(void);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void idle_unlink(kconn *k)
{
    if (k->busy) return;
    if (k->prev) k->prev->next = k->next;
    else g_first = k->next;
    if (k->next) k->next->prev = k->prev;
    else g_last = k->prev;
    k->prev = k->next = NULL;
    g_nidle--;
}

static void idle_append(kconn *k)
{
    k->next = NULL;
    k->prev = g_last;
    if (g_last) g_last->next = k;
    else g_first = k;
    g_last = k;
    g_nidle++;
}

/* End k's connection from our side; libmicrohttpd reads end-of-file and
 * closes it, calling keepalive_notify(CLOSED). Under the lock. */
static void cut(kconn *k)
{
    k->cut = 1;
    shutdown(k->fd, SHUT_RDWR);
}

/* Whether data arrived on k after its last request ended. */
static int next_head_begun(const kconn *k, uint64_t now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    uint64_t last;

    if (getsockopt(k->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return 0;
    last = now - (uint64_t)ti.tcpi_last_data_recv * 1000000ull;
    return last > k->idle_since + KEEPALIVE_SLACK_NS;
}

static void *watch(void *unused)
{
    pthread_setname_np(pthread_self(), "vx-keepalive"); /* for top -H, perf, gdb */
    (void)unused;
    pthread_mutex_lock(&g_lock);
    while (g_running) {
        struct timespec due;
        unsigned timeouts = 0;
        uint64_t now;

        clock_gettime(CLOCK_MONOTONIC, &due);
        due.tv_nsec += (long)g_period_ns;
        due.tv_sec += due.tv_nsec / 1000000000L;
        due.tv_nsec %= 1000000000L;
        while (g_running && pthread_cond_timedwait(&g_cond, &g_lock, &due) == 0) {
        }
        if (!g_running) break;
        now = now_ns();
        for (kconn *k = g_first; k; k = k->next) {
            if (k->cut) continue;
            if (!k->head_since && next_head_begun(k, now)) k->head_since = now;
            if (k->head_since && now - k->head_since >= g_timeout_ns) {
                cut(k);
                timeouts++;
            }
        }
        if (timeouts && g_on_timeout) {
            pthread_mutex_unlock(&g_lock);
            while (timeouts--) g_on_timeout();
            pthread_mutex_lock(&g_lock);
        }
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

int keepalive_start(long long header_timeout_ms, unsigned max_conns, void (*on_timeout)(void))
{
    pthread_condattr_t ca;
    uint64_t period;

    g_timeout_ns = (uint64_t)header_timeout_ms * 1000000ull;
    period = g_timeout_ns / 4;
    if (period > 250000000ull) period = 250000000ull;
    if (period < 20000000ull) period = 20000000ull;
    g_period_ns = period;
    g_max = max_conns;
    g_on_timeout = on_timeout;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &ca);
    pthread_condattr_destroy(&ca);
    g_running = 1;
    if (pthread_create(&g_thread, NULL, watch, NULL) != 0) {
        g_running = 0;
        pthread_cond_destroy(&g_cond);
        return -1;
    }
    return 0;
}

void keepalive_stop(void)
{
    pthread_mutex_lock(&g_lock);
    int was = g_running;
    g_running = 0;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_lock);
    if (was) {
        pthread_join(g_thread, NULL);
        pthread_cond_destroy(&g_cond);
    }
}

void keepalive_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        kconn *k = ci ? calloc(1, sizeof *k) : NULL;
        /* Without a record the connection is only under libmicrohttpd's
         * own timeouts, as before this module. */
        *socket_context = k;
        if (k == NULL) return;
        k->fd = ci->connect_fd;
        k->busy = 1;
        pthread_mutex_lock(&g_lock);
        g_n++;
        /* Room for this one: the connection idle longest gives way. */
        if (g_max && g_n + KEEPALIVE_RESERVE > g_max) {
            for (kconn *o = g_first; o; o = o->next)
                if (!o->cut) {
                    cut(o);
                    break;
                }
        }
        pthread_mutex_unlock(&g_lock);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        kconn *k = *socket_context;
        if (k == NULL) return;
        pthread_mutex_lock(&g_lock);
        idle_unlink(k);
        g_n--;
        pthread_mutex_unlock(&g_lock);
        free(k);
        *socket_context = NULL;
    }
}

static kconn *record_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void keepalive_request_started(struct MHD_Connection *c)
{
    kconn *k = record_of(c);
    if (k == NULL) return;
    pthread_mutex_lock(&g_lock);
    idle_unlink(k);
    k->busy = 1;
    k->head_since = 0;
    k->requests++;
    pthread_mutex_unlock(&g_lock);
}

unsigned keepalive_requests(struct MHD_Connection *c)
{
    kconn *k = record_of(c);
    unsigned n;
    if (k == NULL) return 0;
    pthread_mutex_lock(&g_lock);
    n = k->requests;
    pthread_mutex_unlock(&g_lock);
    return n;
}

void keepalive_request_done(struct MHD_Connection *c)
{
    kconn *k = record_of(c);
    if (k == NULL) return;
    pthread_mutex_lock(&g_lock);
    if (k->busy) {
        k->busy = 0;
        k->idle_since = now_ns();
        k->head_since = 0;
        idle_append(k);
    }
    pthread_mutex_unlock(&g_lock);
}

void keepalive_counts(unsigned *conns, unsigned *idle)
{
    pthread_mutex_lock(&g_lock);
    if (conns) *conns = g_n;
    if (idle) *idle = g_nidle;
    pthread_mutex_unlock(&g_lock);
}
