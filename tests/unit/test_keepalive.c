/*
 * Head deadlines on kept-alive HTTP connections (host/net/keepalive.c), with
 * real TCP connections on loopback standing in for libmicrohttpd's: the
 * test plays libmicrohttpd's part (connection started, request started and
 * done, connection closed) and answers MHD_get_connection_info itself.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/keepalive.h"

/* What libmicrohttpd would know of a connection. */
struct MHD_Connection {
    int fd;     /* the server's side */
    int client; /* the test's side */
    void *ctx;  /* socket context */
    union MHD_ConnectionInfo info;
};

const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType type, ...)
{
    if (type == MHD_CONNECTION_INFO_CONNECTION_FD) c->info.connect_fd = c->fd;
    else if (type == MHD_CONNECTION_INFO_SOCKET_CONTEXT) c->info.socket_context = c->ctx;
    else return NULL;
    return &c->info;
}

static int g_timeouts;
static void on_timeout(void) { __atomic_add_fetch(&g_timeouts, 1, __ATOMIC_SEQ_CST); }

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A connected pair on loopback, announced as a new connection. */
static struct MHD_Connection *open_conn(void)
{
    struct MHD_Connection *c = calloc(1, sizeof *c);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    assert_non_null(c);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    c->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* Each byte leaves when sent, not when Nagle's algorithm lets it. */
    assert_int_equal(setsockopt(c->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    assert_int_equal(connect(c->client, (struct sockaddr *)&a, sizeof a), 0);
    c->fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c->fd >= 0);
    close(l);
    keepalive_notify(NULL, c, &c->ctx, MHD_CONNECTION_NOTIFY_STARTED);
    assert_non_null(c->ctx);
    return c;
}

static void close_conn(struct MHD_Connection *c)
{
    keepalive_notify(NULL, c, &c->ctx, MHD_CONNECTION_NOTIFY_CLOSED);
    assert_null(c->ctx);
    close(c->fd);
    close(c->client);
    free(c);
}

/* One request, head to end, as libmicrohttpd reports it. */
static void serve_one(struct MHD_Connection *c)
{
    keepalive_request_started(c);
    keepalive_request_done(c);
}

/* Whether the server side was shut down: the client reads end-of-file. */
static int was_cut(const struct MHD_Connection *c)
{
    struct pollfd p = {c->client, POLLIN, 0};
    char b;
    return poll(&p, 1, 0) == 1 && recv(c->client, &b, 1, MSG_DONTWAIT) == 0;
}

/* Send a byte every step ms for ms in all; stop early when cut. Returns
 * the ms it took to be cut, or 0. */
static unsigned trickle(struct MHD_Connection *c, unsigned step, unsigned ms)
{
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < ms) {
        if (was_cut(c)) return (unsigned)(now_ms() - t0);
        if (send(c->client, "G", 1, MSG_NOSIGNAL) != 1) return (unsigned)(now_ms() - t0);
        sleep_ms(step);
    }
    return 0;
}

static int setup(void **st)
{
    (void)st;
    g_timeouts = 0;
    return 0;
}

static int teardown(void **st)
{
    unsigned n = 1;
    (void)st;
    keepalive_stop();
    keepalive_counts(&n, NULL);
    assert_int_equal(n, 0); /* every record went with its connection */
    return 0;
}

static void a_next_head_sent_byte_by_byte_is_cut_after_header_timeout(void **st)
{
    (void)st;
    struct MHD_Connection *c;
    unsigned ms;

    assert_int_equal(keepalive_start(200, 10000, on_timeout), 0);
    c = open_conn();
    serve_one(c);
    ms = trickle(c, 20, 3000);
    if (ms < 200 || ms > 1500) print_error("cut after %u ms\n", ms);
    assert_true(ms >= 200 && ms <= 1500); /* 200 ms, plus at most two samples */
    assert_int_equal(g_timeouts, 1);
    close_conn(c);
}

static void an_idle_kept_alive_connection_is_left_to_the_idle_timeout(void **st)
{
    (void)st;
    struct MHD_Connection *c;
    unsigned idle = 0;

    assert_int_equal(keepalive_start(100, 10000, on_timeout), 0);
    c = open_conn();
    serve_one(c);
    keepalive_counts(NULL, &idle);
    assert_int_equal(idle, 1);
    sleep_ms(600);
    assert_false(was_cut(c));
    assert_int_equal(g_timeouts, 0);
    close_conn(c);
}

static void a_request_being_served_is_not_cut(void **st)
{
    (void)st;
    struct MHD_Connection *c;

    assert_int_equal(keepalive_start(100, 10000, on_timeout), 0);
    c = open_conn(); /* its first head came complete through the front */
    assert_int_equal(trickle(c, 20, 500), 0); /* a body, slow but allowed */
    serve_one(c);
    keepalive_request_started(c); /* the next head, complete at once */
    assert_int_equal(trickle(c, 20, 500), 0);
    keepalive_request_done(c);
    assert_int_equal(g_timeouts, 0);
    close_conn(c);
}

static void a_head_completed_in_time_resets_the_deadline(void **st)
{
    (void)st;
    struct MHD_Connection *c;

    assert_int_equal(keepalive_start(300, 10000, on_timeout), 0);
    c = open_conn();
    serve_one(c);
    for (int i = 0; i < 4; i++) { /* four heads, each 200 ms of trickle */
        assert_int_equal(trickle(c, 20, 200), 0);
        serve_one(c);
    }
    sleep_ms(400);
    assert_false(was_cut(c));
    close_conn(c);
}

static void near_the_connection_limit_the_longest_idle_gives_way(void **st)
{
    (void)st;
    struct MHD_Connection *a, *b, *c, *d;

    assert_int_equal(keepalive_start(10000, KEEPALIVE_RESERVE + 3, on_timeout), 0);
    a = open_conn();
    b = open_conn();
    serve_one(a);
    serve_one(b); /* a idle longest, then b */
    c = open_conn(); /* 3 + reserve: still room */
    sleep_ms(50);
    assert_false(was_cut(a));
    d = open_conn(); /* 4 + reserve: over */
    sleep_ms(50);
    assert_true(was_cut(a));
    assert_false(was_cut(b));
    assert_false(was_cut(c));
    assert_false(was_cut(d));
    assert_int_equal(g_timeouts, 0); /* not a late head */
    close_conn(a);
    close_conn(b);
    close_conn(c);
    close_conn(d);
}

/* The HTTP server tells a connection's first request from a later one (an
 * upgrade may only be the first). */
static void requests_are_counted_per_connection(void **st)
{
    (void)st;
    struct MHD_Connection *a, *b;

    assert_int_equal(keepalive_start(10000, 10000, on_timeout), 0);
    a = open_conn();
    b = open_conn();
    assert_int_equal(keepalive_requests(a), 0);
    keepalive_request_started(a);
    assert_int_equal(keepalive_requests(a), 1);
    keepalive_request_done(a);
    assert_int_equal(keepalive_requests(a), 1);
    serve_one(a);
    keepalive_request_started(a);
    assert_int_equal(keepalive_requests(a), 3);
    keepalive_request_done(a);
    serve_one(b);
    assert_int_equal(keepalive_requests(b), 1);
    close_conn(a);
    close_conn(b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(a_next_head_sent_byte_by_byte_is_cut_after_header_timeout),
        T(an_idle_kept_alive_connection_is_left_to_the_idle_timeout),
        T(a_request_being_served_is_not_cut),
        T(a_head_completed_in_time_resets_the_deadline),
        T(near_the_connection_limit_the_longest_idle_gives_way),
        T(requests_are_counted_per_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
