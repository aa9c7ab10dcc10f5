/*
 * The one-port front: real sockets on loopback, a real front thread.
 *
 * The http/upgrade callbacks hand the socket to a small thread that reads the
 * request itself and answers "200 ok"; what it read is compared byte for byte
 * with what the client sent, which proves the front consumed nothing. Every
 * test ends by checking that the process holds exactly the descriptors it
 * held before (teardown), so a leaked socket fails the test that leaked it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "net/front.h"

#define OK_RESPONSE "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define MAX_HANDLERS 32

/* ------------------------------------------------------------- recorder */

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int http, upgrade, dropped, logs;
    int refuse; /* http callback returns -1 */
    front_drop why;
    char method[64], path[300], log[256];
    char peer[INET6_ADDRSTRLEN]; /* address given to the last http/upgrade */
    int family;
    int nonblock, cloexec; /* flags of the last socket handed over */
    char got[16384]; /* what the last handler read from its socket */
    size_t gotlen;
    int handled; /* handlers that finished reading and answering */
    pthread_t threads[MAX_HANDLERS];
    int nthreads;
} rec;

typedef struct handler_arg {
    rec *r;
    int fd;
} handler_arg;

typedef struct state {
    rec r;
    front *f;
    int fds_before;
} state;

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* Reads the request the way a real server would (blocking, until the blank
 * line), keeps it for the test, answers, closes. */
static void *handler_main(void *arg) {
    handler_arg *a = arg;
    rec *r = a->r;
    char buf[sizeof r->got];
    size_t len = 0;
    struct timeval tv = {5, 0};

    fcntl(a->fd, F_SETFL, fcntl(a->fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(a->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (len < sizeof buf) {
        ssize_t n = recv(a->fd, buf + len, sizeof buf - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        if (memmem(buf, len, "\r\n\r\n", 4)) break;
    }
    if (send(a->fd, OK_RESPONSE, strlen(OK_RESPONSE), MSG_NOSIGNAL) < 0) {}
    close(a->fd);

    pthread_mutex_lock(&r->mu);
    memcpy(r->got, buf, len);
    r->gotlen = len;
    r->handled++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    free(a);
    return NULL;
}

static int take(rec *r, int fd, const struct sockaddr *addr, int *counter) {
    handler_arg *a = malloc(sizeof *a);
    int rc = -1;

    pthread_mutex_lock(&r->mu);
    (*counter)++;
    r->nonblock = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
    r->cloexec = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
    r->family = addr->sa_family;
    if (addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, r->peer, sizeof r->peer);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, r->peer, sizeof r->peer);
    pthread_cond_broadcast(&r->cond);
    if (a && !r->refuse && r->nthreads < MAX_HANDLERS) {
        a->r = r;
        a->fd = fd;
        if (pthread_create(&r->threads[r->nthreads], NULL, handler_main, a) == 0) {
            r->nthreads++;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc != 0) free(a);
    return rc;
}

static int on_http(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen) {
    rec *r = user;
    (void)addrlen;
    return take(r, fd, addr, &r->http);
}

static int on_upgrade(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen) {
    rec *r = user;
    (void)addrlen;
    return take(r, fd, addr, &r->upgrade);
}

static void on_dropped(void *user, front_drop why, const char *method, const char *path) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    r->dropped++;
    r->why = why;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", path);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_log(void *user, const char *line) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    r->logs++;
    snprintf(r->log, sizeof r->log, "%s", line);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

/* What the callbacks recorded so far, read under the lock. */
typedef struct seen_t {
    int http, upgrade, dropped, family, nonblock, cloexec;
    front_drop why;
    char method[64], path[300], log[256], peer[INET6_ADDRSTRLEN];
} seen_t;

static seen_t seen(rec *r) {
    seen_t v;
    pthread_mutex_lock(&r->mu);
    v.http = r->http;
    v.upgrade = r->upgrade;
    v.dropped = r->dropped;
    v.why = r->why;
    v.family = r->family;
    v.nonblock = r->nonblock;
    v.cloexec = r->cloexec;
    memcpy(v.peer, r->peer, sizeof v.peer);
    memcpy(v.method, r->method, sizeof v.method);
    memcpy(v.path, r->path, sizeof v.path);
    memcpy(v.log, r->log, sizeof v.log);
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* Wait (at most 5 s) until *counter reaches target. */
static void wait_count(rec *r, const int *counter, int target) {
    struct timespec dl;
    int reached;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&r->mu);
    while (*counter < target)
        if (pthread_cond_timedwait(&r->cond, &r->mu, &dl) == ETIMEDOUT) break;
    reached = *counter >= target;
    pthread_mutex_unlock(&r->mu);
    assert_true(reached);
}

static void wait_pending(front *f, unsigned n) {
    uint64_t end = now_ms() + 5000;
    while (front_pending(f) != n && now_ms() < end) sleep_ms(2);
    assert_int_equal(front_pending(f), n);
}

static front_callbacks callbacks(rec *r) {
    front_callbacks cb = {r, on_http, on_upgrade, on_dropped, on_log, NULL};
    return cb;
}

static void start(state *s, const char *listen, unsigned timeout_ms, unsigned max_pending,
                  size_t max_head) {
    front_options o = {listen, 0, timeout_ms, max_pending, max_head, 0};
    front_callbacks cb = callbacks(&s->r);
    char err[256] = "";
    int rc = front_start(&o, &cb, &s->f, err, sizeof err);

    if (rc != 0) print_error("front_start: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(s->f);
}

static int setup(void **st) {
    state *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->r.mu, NULL);
    pthread_cond_init(&s->r.cond, NULL);
    s->fds_before = count_fds();
    *st = s;
    return 0;
}

static int teardown(void **st) {
    state *s = *st;
    int i, fds;

    front_stop(s->f);
    for (i = 0; i < s->r.nthreads; i++) pthread_join(s->r.threads[i], NULL);
    pthread_cond_destroy(&s->r.cond);
    pthread_mutex_destroy(&s->r.mu);
    fds = count_fds();
    if (fds != s->fds_before) {
        print_error("descriptors: %d before, %d after\n", s->fds_before, fds);
        fds = -1;
    }
    free(s);
    return fds < 0 ? -1 : 0;
}

/* --------------------------------------------------------------- client */

static int client_to(int family, const char *ip, int port) {
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct timeval tv = {5, 0};
    struct sockaddr_storage ss;
    socklen_t sl;

    assert_true(fd >= 0);
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        sl = sizeof *a;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    return fd;
}

static int client(front *f) { return client_to(AF_INET, "127.0.0.1", front_port(f)); }

static void send_str(int fd, const char *s) {
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Everything until the server closes (or 5 s pass), NUL-terminated. */
static size_t read_all(int fd, char *buf, size_t cap) {
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* Send head on a new connection and expect the handler's "200 ok". */
static void roundtrip(state *s, int fd, const char *head) {
    char resp[256];

    send_str(fd, head);
    read_all(fd, resp, sizeof resp);
    assert_string_equal(resp, OK_RESPONSE);
    close(fd);
    wait_count(&s->r, &s->r.handled, 1);
}

/* The handler read exactly the head the client sent, from its first byte. */
static void assert_head_unconsumed(state *s, const char *head) {
    size_t len;
    int same;

    pthread_mutex_lock(&s->r.mu);
    len = s->r.gotlen;
    same = len == strlen(head) && memcmp(s->r.got, head, len) == 0;
    if (!same) print_error("handler read %zu bytes: \"%.*s\"\n", len, (int)len, s->r.got);
    pthread_mutex_unlock(&s->r.mu);
    assert_true(same);
}

/* ---------------------------------------------------------------- tests */

static void test_plain_get_reaches_http_with_head_unconsumed(void **st) {
    state *s = *st;
    const char *head = "GET /hello?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&s->r).upgrade, 0);
    assert_int_equal(seen(&s->r).dropped, 0);
    assert_head_unconsumed(s, head);
}

static void test_handed_over_socket_is_nonblocking_and_cloexec(void **st) {
    state *s = *st;

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), "GET / HTTP/1.1\r\n\r\n");
    assert_true(seen(&s->r).nonblock);
    assert_true(seen(&s->r).cloexec);
}

static void test_head_in_three_slow_pieces_is_dispatched(void **st) {
    state *s = *st;
    const char *head = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    char resp[256];
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET /sl");
    sleep_ms(100);
    send_str(fd, "ow HTTP/1.1\r\nHost: x\r");
    sleep_ms(100);
    assert_int_equal(seen(&s->r).http, 0);
    assert_int_equal(front_pending(s->f), 1);
    send_str(fd, "\n\r\n");
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_string_equal(resp, OK_RESPONSE);
    wait_count(&s->r, &s->r.handled, 1);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(front_pending(s->f), 0);
    assert_head_unconsumed(s, head);
}

static void test_websocket_upgrade_reaches_upgrade(void **st) {
    state *s = *st;
    const char *head = "GET /v1/realtime HTTP/1.1\r\nHost: x\r\nupgrade: WebSocket\r\n"
                       "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).upgrade, 1);
    assert_int_equal(seen(&s->r).http, 0);
    assert_head_unconsumed(s, head);
}

static void test_h2c_upgrade_goes_to_http(void **st) {
    state *s = *st;
    const char *head = "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&s->r).upgrade, 0);
}

static void test_websocket_without_connection_upgrade_goes_to_http(void **st) {
    state *s = *st;
    const char *head = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: upgrade-insecure\r\n\r\n";

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&s->r).upgrade, 0);
}

static void test_upgrade_without_upgrade_callback_goes_to_http(void **st) {
    state *s = *st;
    const char *head = "GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n\r\n";
    front_options o = {"127.0.0.1:0", 0, 0, 0, 0, 0};
    front_callbacks cb = callbacks(&s->r);
    char err[256];

    cb.upgrade = NULL;
    assert_int_equal(front_start(&o, &cb, &s->f, err, sizeof err), 0);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&s->r).upgrade, 0);
    assert_head_unconsumed(s, head);
}

static void test_incomplete_head_times_out_with_408(void **st) {
    state *s = *st;
    char resp[512];
    uint64_t t0, ms;
    int fd;

    start(s, "127.0.0.1:0", 200, 0, 0);
    fd = client(s->f);
    t0 = now_ms();
    send_str(fd, "GET /slow HTTP/1.1\r\nHost:");
    read_all(fd, resp, sizeof resp);
    ms = now_ms() - t0;
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 408 Request Timeout\r\n"));
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    assert_true(ms >= 150 && ms < 2000);
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_TIMEOUT);
    assert_string_equal(seen(&s->r).method, "GET");
    assert_string_equal(seen(&s->r).path, "/slow");
    assert_int_equal(seen(&s->r).http, 0);
    assert_int_equal(front_pending(s->f), 0);
}

static void test_deadline_is_not_extended_by_trickled_bytes(void **st) {
    state *s = *st;
    char head[400], resp[512];
    uint64_t t0, ms;
    size_t i;
    int fd;

    start(s, "127.0.0.1:0", 300, 0, 0);
    memset(head, 'x', sizeof head);
    memcpy(head, "GET /slowloris HTTP/1.1\r\nX-Slow: ", 34);
    fd = client(s->f);
    t0 = now_ms();
    /* One byte every 20 ms, until the front answers: it must do so 0.3 s
     * after accept, however recently the last byte came. */
    for (i = 0; i < sizeof head; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (send(fd, head + i, 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, 20) != 0) break;
    }
    read_all(fd, resp, sizeof resp);
    ms = now_ms() - t0;
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 408 "));
    if (ms >= 700) print_error("answered after %llu ms\n", (unsigned long long)ms);
    assert_true(ms < 700);
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_TIMEOUT);
}

static void test_partial_head_does_not_spin_the_cpu(void **st) {
    state *s = *st;
    struct timespec a, b;
    long cpu_ms;
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
    wait_pending(s->f, 1);
    sleep_ms(20);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    sleep_ms(500);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    cpu_ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    close(fd);
    if (cpu_ms >= 100) print_error("%ld ms of CPU in 500 ms idle\n", cpu_ms);
    assert_true(cpu_ms < 100);
}

static void test_oversize_head_gets_431(void **st) {
    state *s = *st;
    char big[2001], resp[512];
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 1024);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "GET /big HTTP/1.1\r\nX-Fill: ", 27);
    fd = client(s->f);
    send_str(fd, big);
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    assert_non_null(strstr(resp, "Content-Length: 0\r\n"));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_TOO_LARGE);
    assert_string_equal(seen(&s->r).method, "GET");
    assert_string_equal(seen(&s->r).path, "/big");
    assert_int_equal(seen(&s->r).http, 0);
}

/* A head ended by CR LF and then a bare LF is complete for a lenient
 * server: it is refused at once like any bare-LF head, not left to time
 * out (the second LF was not looked at). */
static void test_head_ending_in_crlf_and_bare_lf_gets_400(void **st) {
    state *s = *st;
    char resp[512];
    int fd;

    start(s, "127.0.0.1:0", 5000, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET /lf HTTP/1.1\r\nHost: a\r\n\n");
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\n"));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_BAD_REQUEST);
    assert_string_equal(seen(&s->r).path, "/lf");
    assert_int_equal(seen(&s->r).http, 0);
}

static void test_head_filling_max_head_exactly_is_dispatched(void **st) {
    state *s = *st;
    char head[1025];
    const char *start_line = "GET /fits HTTP/1.1\r\nX-Fill: ";

    start(s, "127.0.0.1:0", 0, 0, 1024);
    memset(head, 'b', sizeof head - 1);
    head[sizeof head - 1] = '\0';
    memcpy(head, start_line, strlen(start_line));
    memcpy(head + 1024 - 4, "\r\n\r\n", 4);
    roundtrip(s, client(s->f), head);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&s->r).dropped, 0);
    assert_head_unconsumed(s, head);
}

/* A full table gives way: the head that has waited longest is refused with
 * 503 and the newcomer is looked at. */
static void test_full_table_refuses_its_oldest_head_with_503(void **st) {
    state *s = *st;
    char resp[512];
    int a, b, c;

    start(s, "127.0.0.1:0", 0, 2, 0);
    a = client(s->f);
    send_str(a, "GET /oldest HTTP/1.1\r\n");
    wait_pending(s->f, 1);
    b = client(s->f);
    send_str(b, "GET /second HTTP/1.1\r\n");
    wait_pending(s->f, 2);
    c = client(s->f);
    read_all(a, resp, sizeof resp);
    close(a);
    assert_non_null(strstr(resp, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(resp, "Retry-After: 1\r\n"));
    assert_non_null(strstr(resp, "Connection: close\r\n"));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_OVERLOAD);
    assert_string_equal(seen(&s->r).path, "/oldest");
    assert_int_equal(front_pending(s->f), 2);
    roundtrip(s, c, "GET /health HTTP/1.1\r\n\r\n");
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(front_pending(s->f), 1);
    close(b);
    wait_pending(s->f, 0);
}

/* However many slow heads fill the table, a request sent at once (a
 * liveness probe) is handed over. */
static void test_prompt_request_gets_through_a_table_full_of_slow_heads(void **st) {
    state *s = *st;
    int slow[48], i, refused = 0;
    char resp[512];

    start(s, "127.0.0.1:0", 0, 16, 0);
    for (i = 0; i < 48; i++) {
        slow[i] = client(s->f);
        send_str(slow[i], "GET /slow HTTP/1.1\r\nX-Slow: ");
    }
    wait_count(&s->r, &s->r.dropped, 48 - 16);
    assert_int_equal(front_pending(s->f), 16);
    roundtrip(s, client(s->f), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_head_unconsumed(s, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    /* The 32 refused are the oldest, in order. */
    for (i = 0; i < 48; i++) {
        struct pollfd p = {slow[i], POLLIN, 0};
        if (i < 32 || poll(&p, 1, 0) == 1) {
            read_all(slow[i], resp, sizeof resp);
            assert_non_null(strstr(resp, "HTTP/1.1 503 "));
            refused++;
        }
        close(slow[i]);
    }
    /* and the 33rd too if the probe had to wait for its head */
    assert_true(refused == 32 || refused == 33);
    wait_pending(s->f, 0);
}

/* A client socket with source address src (any 127/8 address is this host). */
static int client_from(const char *src, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    struct timeval tv = {5, 0};

    assert_true(fd >= 0);
    assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    return fd;
}

/* Heads count against the per-address cap after half the head timeout
 * (below 2 s; 1 s above). */
static void start_per_ip(state *s, unsigned timeout_ms, unsigned per_ip,
                         int (*exempt)(void *, const struct sockaddr *, socklen_t)) {
    front_options o = {"127.0.0.1:0", 0, timeout_ms, 0, 0, per_ip};
    front_callbacks cb = callbacks(&s->r);
    char err[256] = "";

    cb.exempt = exempt;
    assert_int_equal(front_start(&o, &cb, &s->f, err, sizeof err), 0);
}

/* Whether the front has closed fd (an answer or EOF is waiting). */
static int answered(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

static void test_address_over_its_cap_loses_its_oldest_head_with_429(void **st) {
    state *s = *st;
    char resp[512];
    int a, b, c, other;

    start_per_ip(s, 1000, 2, NULL);
    a = client_from("127.0.0.2", front_port(s->f));
    send_str(a, "GET /first HTTP/1.1\r\n");
    wait_pending(s->f, 1);
    b = client_from("127.0.0.2", front_port(s->f));
    send_str(b, "GET /second HTTP/1.1\r\n");
    other = client_from("127.0.0.3", front_port(s->f));
    send_str(other, "GET /other HTTP/1.1\r\n");
    wait_pending(s->f, 3);
    sleep_ms(600); /* past the grace period, before the deadline */
    c = client_from("127.0.0.2", front_port(s->f));
    read_all(a, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 429 Too Many Requests\r\n"));
    assert_non_null(strstr(resp, "Retry-After: 1\r\n"));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_PER_IP);
    assert_string_equal(seen(&s->r).path, "/first");
    wait_pending(s->f, 3);
    assert_false(answered(b));
    assert_false(answered(other)); /* another address is not touched */
    roundtrip(s, c, "GET /third HTTP/1.1\r\n\r\n");
    assert_int_equal(seen(&s->r).dropped, 1);
    close(a);
    close(b);
    close(other);
    wait_pending(s->f, 0);
}

/* Many connections at once from one address, their heads on the way, are
 * not refused; those whose heads never come are cut down to the cap once
 * they have waited out the grace period. */
static void test_burst_from_one_address_is_spared_for_the_grace_period(void **st) {
    state *s = *st;
    int c[10], i, refused = 0;
    char resp[512];

    start_per_ip(s, 4000, 2, NULL);
    for (i = 0; i < 10; i++) c[i] = client_from("127.0.0.2", front_port(s->f));
    wait_pending(s->f, 10);
    for (i = 0; i < 5; i++) send_str(c[i], "GET /burst HTTP/1.1\r\n\r\n"); /* in time */
    wait_count(&s->r, &s->r.handled, 5);
    assert_int_equal(seen(&s->r).dropped, 0);
    wait_count(&s->r, &s->r.dropped, 3); /* the 5 silent ones, cut to 2 */
    wait_pending(s->f, 2);
    /* Before the client closes the last two: their closing is a drop too. */
    assert_int_equal(seen(&s->r).why, FRONT_DROP_PER_IP);
    for (i = 5; i < 10; i++) {
        if (answered(c[i])) {
            read_all(c[i], resp, sizeof resp);
            assert_non_null(strstr(resp, "HTTP/1.1 429 "));
            refused++;
            assert_true(i < 8); /* the oldest ones */
        }
        close(c[i]);
    }
    for (i = 0; i < 5; i++) close(c[i]);
    assert_int_equal(refused, 3);
    wait_pending(s->f, 0);
}

static int exempt_127_0_0_2(void *user, const struct sockaddr *addr, socklen_t len) {
    (void)user;
    (void)len;
    return addr->sa_family == AF_INET &&
           ((const struct sockaddr_in *)addr)->sin_addr.s_addr == htonl(0x7f000002);
}

static void test_exempt_address_is_not_held_to_the_per_address_cap(void **st) {
    state *s = *st;
    int c[4], i;

    start_per_ip(s, 2000, 2, exempt_127_0_0_2);
    for (i = 0; i < 4; i++) {
        c[i] = client_from("127.0.0.2", front_port(s->f));
        send_str(c[i], "GET /proxied HTTP/1.1\r\n");
        wait_pending(s->f, (unsigned)i + 1);
    }
    sleep_ms(1200); /* past the grace period, before the deadline */
    for (i = 0; i < 4; i++) assert_false(answered(c[i]));
    assert_int_equal(seen(&s->r).dropped, 0);
    for (i = 0; i < 4; i++) close(c[i]);
    wait_pending(s->f, 0);
}

/* A refused client still sending (a body behind a head too large) reads
 * its answer: the front keeps reading instead of resetting the connection
 * under it, and every byte it sends is taken. */
static void test_refused_client_still_sending_reads_the_answer(void **st) {
    state *s = *st;
    char head[2000], chunk[16384], resp[512];
    int fd, i, sent_all = 1;

    start(s, "127.0.0.1:0", 0, 0, 1024);
    memset(head, 'h', sizeof head);
    memcpy(head, "POST /upload HTTP/1.1\r\nX-Big: ", 30);
    memset(chunk, 'b', sizeof chunk);
    fd = client(s->f);
    assert_int_equal(send(fd, head, sizeof head, MSG_NOSIGNAL), (ssize_t)sizeof head);
    for (i = 0; i < 64 && sent_all; i++) { /* 1 MiB, paced past the first answer */
        if (send(fd, chunk, sizeof chunk, MSG_NOSIGNAL) != (ssize_t)sizeof chunk) {
            print_error("send %d: %s\n", i, strerror(errno));
            sent_all = 0;
        }
        sleep_ms(1);
    }
    shutdown(fd, SHUT_WR);
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_true(sent_all);
    assert_non_null(strstr(resp, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_TOO_LARGE);
}

/* Lingering is bounded: a refused client that never stops sending is cut
 * off about two seconds later. */
static void test_refused_client_that_keeps_sending_is_cut_off(void **st) {
    state *s = *st;
    char resp[512];
    uint64_t t0, ms = 0;
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET /a HTTP/1.1\nHost: x\n\n"); /* bare LF: 400 */
    t0 = now_ms();
    while ((ms = now_ms() - t0) < 6000) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) break;
        sleep_ms(50);
    }
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\n"));
    if (ms < 1500 || ms >= 5000) print_error("cut off after %llu ms\n", (unsigned long long)ms);
    assert_true(ms >= 1500 && ms < 5000);
}

static void test_peer_closing_early_is_reported_closed(void **st) {
    state *s = *st;
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET /gone HT");
    wait_pending(s->f, 1);
    close(fd);
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_CLOSED);
    assert_string_equal(seen(&s->r).method, "GET");
    assert_string_equal(seen(&s->r).path, "/gone");
    assert_int_equal(front_pending(s->f), 0);
}

static void test_peer_closing_before_sending_is_reported_closed(void **st) {
    state *s = *st;

    start(s, "127.0.0.1:0", 0, 0, 0);
    close(client(s->f));
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_CLOSED);
    assert_string_equal(seen(&s->r).method, "");
    assert_string_equal(seen(&s->r).path, "");
}

static void test_peer_reset_is_reported_closed(void **st) {
    state *s = *st;
    struct linger lg = {1, 0};
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "POST /x HTTP/1.1\r\n");
    wait_pending(s->f, 1);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd); /* RST */
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_CLOSED);
    assert_int_equal(front_pending(s->f), 0);
}

static void test_tls_client_hello_is_closed_at_once_and_logged(void **st) {
    state *s = *st;
    /* The start of a TLS 1.2 record carrying a ClientHello, as an SDK
     * dialing wss:// sends it. */
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03};
    char resp[64];
    uint64_t t0;
    int fd;

    start(s, "127.0.0.1:0", 5000, 0, 0);
    fd = client(s->f);
    t0 = now_ms();
    assert_int_equal(send(fd, hello, sizeof hello, MSG_NOSIGNAL), (ssize_t)sizeof hello);
    assert_int_equal(read_all(fd, resp, sizeof resp), 0); /* closed, no plain-text answer */
    assert_true(now_ms() - t0 < 1000);
    close(fd);
    wait_count(&s->r, &s->r.dropped, 1);
    assert_int_equal(seen(&s->r).why, FRONT_DROP_TLS);
    assert_int_equal(seen(&s->r).http, 0);
    assert_non_null(strstr(seen(&s->r).log, "TLS handshake on the plain-HTTP port from 127.0.0.1"));
    assert_int_equal(front_pending(s->f), 0);
}

static void test_refused_handover_closes_the_socket(void **st) {
    state *s = *st;
    char resp[64];
    int fd;

    s->r.refuse = 1;
    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_all(fd, resp, sizeof resp), 0); /* EOF, not a timeout */
    close(fd);
    assert_int_equal(seen(&s->r).http, 1);
}

static void test_port_in_use_fails_with_address_already_in_use(void **st) {
    state *s = *st;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    char addr[64], want[128], err[256] = "";
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    front_options o = {addr, 0, 0, 0, 0, 0};
    front_callbacks cb = callbacks(&s->r);

    assert_int_equal(bind(busy, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(busy, 1), 0);
    assert_int_equal(getsockname(busy, (struct sockaddr *)&a, &al), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(want, sizeof want, "listen %s: Address already in use", addr);
    assert_int_equal(front_start(&o, &cb, &s->f, err, sizeof err), -1);
    assert_null(s->f);
    assert_string_equal(err, want);
    close(busy);
}

static void test_bad_addresses_are_rejected(void **st) {
    state *s = *st;
    static const char *bad[] = {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
                                "127.0.0.1:70000", "127.0.0.1:-1", "[::1]", "[::1]8080",
                                "[::1:8080", "::1:8080", "[]:80", "[not-an-ip]:80",
                                "[127.0.0.1]:80", "127.0.0.1:80:80"};
    front_callbacks cb = callbacks(&s->r);
    size_t i;

    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        front_options o = {bad[i], 0, 0, 0, 0, 0};
        char err[256] = "", prefix[64];
        front *f = NULL;

        snprintf(prefix, sizeof prefix, "listen %s: ", bad[i]);
        if (front_start(&o, &cb, &f, err, sizeof err) != -1) {
            front_stop(f);
            fail_msg("\"%s\" was accepted", bad[i]);
        }
        assert_null(f);
        assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
        assert_true(strlen(err) > strlen(prefix));
        assert_null(strchr(err, '\n'));
    }
}

static void test_address_forms_are_accepted(void **st) {
    state *s = *st;
    static const char *forms[] = {"127.0.0.1:0", "0.0.0.0:0", ":0", "*:0"};
    size_t i;

    for (i = 0; i < sizeof forms / sizeof *forms; i++) {
        start(s, forms[i], 0, 0, 0);
        assert_true(front_port(s->f) > 0);
        roundtrip(s, client(s->f), "GET / HTTP/1.1\r\n\r\n"); /* IPv4 reaches it */
        front_stop(s->f);
        s->f = NULL;
        pthread_mutex_lock(&s->r.mu);
        s->r.handled = 0;
        pthread_mutex_unlock(&s->r.mu);
    }
    start(s, "localhost:0", 0, 0, 0); /* ::1 or 127.0.0.1, as the resolver says */
    assert_true(front_port(s->f) > 0);
}

static void test_ipv6_loopback_listens(void **st) {
    state *s = *st;

    start(s, "[::1]:0", 0, 0, 0);
    assert_true(front_port(s->f) > 0);
    roundtrip(s, client_to(AF_INET6, "::1", front_port(s->f)), "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(seen(&s->r).family, AF_INET6);
    assert_string_equal(seen(&s->r).peer, "::1");
}

static void test_ipv6_wildcard_takes_ipv4_too(void **st) {
    state *s = *st;

    start(s, "[::]:0", 0, 0, 0);
    roundtrip(s, client(s->f), "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(seen(&s->r).family, AF_INET); /* not ::ffff:127.0.0.1 */
    assert_string_equal(seen(&s->r).peer, "127.0.0.1");
}

static void test_stop_with_pending_connections_leaks_no_fds(void **st) {
    state *s = *st;
    int c[3], i, before = count_fds();
    char buf[16];

    start(s, "127.0.0.1:0", 0, 0, 0);
    for (i = 0; i < 3; i++) {
        c[i] = client(s->f);
        send_str(c[i], "GET /pending HTTP/1.1\r\n");
    }
    wait_pending(s->f, 3);
    front_stop(s->f);
    s->f = NULL;
    assert_int_equal(count_fds(), before + 3); /* only the clients remain */
    for (i = 0; i < 3; i++) {
        assert_int_equal(recv(c[i], buf, sizeof buf, 0), 0); /* closed by the front */
        close(c[i]);
    }
}

static void test_stop_listening_frees_the_port(void **st) {
    state *s = *st;
    state other;
    char addr[64];

    start(s, "127.0.0.1:0", 0, 0, 0);
    roundtrip(s, client(s->f), "GET /first HTTP/1.1\r\n\r\n");
    front_stop_listening(s->f);
    front_stop_listening(s->f); /* idempotent */

    memset(&other, 0, sizeof other);
    pthread_mutex_init(&other.r.mu, NULL);
    pthread_cond_init(&other.r.cond, NULL);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", front_port(s->f));
    start(&other, addr, 0, 0, 0);
    roundtrip(&other, client(other.f), "GET /second HTTP/1.1\r\n\r\n");
    front_stop(other.f);
    pthread_join(other.r.threads[0], NULL);
    assert_int_equal(seen(&s->r).http, 1);
    assert_int_equal(seen(&other.r).http, 1);
    pthread_cond_destroy(&other.r.cond);
    pthread_mutex_destroy(&other.r.mu);
}

static void test_stop_listening_keeps_waiting_connections(void **st) {
    state *s = *st;
    const char *head = "GET /late HTTP/1.1\r\nHost: x\r\n\r\n";
    char resp[256];
    int fd;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = client(s->f);
    send_str(fd, "GET /late HTTP/1.1\r\n");
    wait_pending(s->f, 1);
    front_stop_listening(s->f);
    send_str(fd, head + strlen("GET /late HTTP/1.1\r\n"));
    read_all(fd, resp, sizeof resp);
    close(fd);
    assert_string_equal(resp, OK_RESPONSE);
    wait_count(&s->r, &s->r.handled, 1);
    assert_head_unconsumed(s, head);
}

/* With the descriptor table full, accept fails with EMFILE while the
 * listener stays readable: the front must shed the connection (503) and log,
 * not retry at full speed. */
static void test_out_of_descriptors_sheds_without_spinning(void **st) {
    state *s = *st;
    struct rlimit old, low;
    int *fill, nfill = 0, maxfd = 0, fd, i;
    char resp[512];
    struct timespec a, b;
    long cpu_ms;
    DIR *d;
    struct dirent *e;

    start(s, "127.0.0.1:0", 0, 0, 0);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* Under valgrind its own descriptors sit at or above the limit it
     * reports; they do not count. */
    d = opendir("/proc/self/fd");
    while ((e = readdir(d)))
        if (atoi(e->d_name) > maxfd && (rlim_t)atoi(e->d_name) < old.rlim_cur) maxfd = atoi(e->d_name);
    closedir(d);
    /* Inherited descriptors can leave holes anywhere below maxfd. */
    fill = malloc(((size_t)maxfd + 16) * sizeof *fill);
    assert_non_null(fill);
    low = old;
    low.rlim_cur = (rlim_t)maxfd + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < maxfd + 16 && (fill[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) nfill++;
    assert_true(nfill < maxfd + 16); /* the table is full */

    {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)front_port(s->f)),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    }
    read_all(fd, resp, sizeof resp);
    wait_count(&s->r, &s->r.logs, 1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    sleep_ms(300);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    cpu_ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;

    for (i = 0; i < nfill; i++) close(fill[i]);
    free(fill);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(fd);
    /* valgrind emulates the limit by closing, itself, what the kernel let
     * accept4 take; then the front only sees EMFILE and never the socket. */
    if (!RUNNING_ON_VALGRIND || resp[0]) {
        assert_non_null(strstr(resp, "HTTP/1.1 503 Service Unavailable\r\n"));
        wait_count(&s->r, &s->r.dropped, 1);
        assert_int_equal(seen(&s->r).why, FRONT_DROP_OVERLOAD);
    }
    assert_non_null(strstr(seen(&s->r).log, strerror(EMFILE)));
    assert_true(cpu_ms < 100);

    /* And it serves again once descriptors are back. */
    roundtrip(s, client(s->f), "GET / HTTP/1.1\r\n\r\n");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        T(test_plain_get_reaches_http_with_head_unconsumed),
        T(test_handed_over_socket_is_nonblocking_and_cloexec),
        T(test_head_in_three_slow_pieces_is_dispatched),
        T(test_websocket_upgrade_reaches_upgrade),
        T(test_h2c_upgrade_goes_to_http),
        T(test_websocket_without_connection_upgrade_goes_to_http),
        T(test_upgrade_without_upgrade_callback_goes_to_http),
        T(test_incomplete_head_times_out_with_408),
        T(test_deadline_is_not_extended_by_trickled_bytes),
        T(test_partial_head_does_not_spin_the_cpu),
        T(test_oversize_head_gets_431),
        T(test_head_filling_max_head_exactly_is_dispatched),
        T(test_full_table_refuses_its_oldest_head_with_503),
        T(test_prompt_request_gets_through_a_table_full_of_slow_heads),
        T(test_address_over_its_cap_loses_its_oldest_head_with_429),
        T(test_burst_from_one_address_is_spared_for_the_grace_period),
        T(test_exempt_address_is_not_held_to_the_per_address_cap),
        T(test_refused_client_still_sending_reads_the_answer),
        T(test_refused_client_that_keeps_sending_is_cut_off),
        T(test_peer_closing_early_is_reported_closed),
        T(test_peer_closing_before_sending_is_reported_closed),
        T(test_peer_reset_is_reported_closed),
        T(test_tls_client_hello_is_closed_at_once_and_logged),
        T(test_refused_handover_closes_the_socket),
        T(test_port_in_use_fails_with_address_already_in_use),
        T(test_bad_addresses_are_rejected),
        T(test_address_forms_are_accepted),
        T(test_ipv6_loopback_listens),
        T(test_ipv6_wildcard_takes_ipv4_too),
        T(test_stop_with_pending_connections_leaks_no_fds),
        T(test_stop_listening_frees_the_port),
        T(test_stop_listening_keeps_waiting_connections),
        T(test_out_of_descriptors_sheds_without_spinning),
        T(test_head_ending_in_crlf_and_bare_lf_gets_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
