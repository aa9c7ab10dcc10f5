/*
 * Slow-client traffic against a voxray port on 127.0.0.1, for
 * tests/integration/slowloris.sh and for measuring by hand.
 *
 *   slowloris hold PORT N FIRST LAST HOLD_MS PROBES [DRIP_MS]
 *       Open N connections that never finish their request head, their
 *       source addresses cycling through 127.0.0.FIRST .. 127.0.0.LAST
 *       (every 127/8 address is this host). With DRIP_MS, each sends one
 *       more byte of its head every DRIP_MS. After HOLD_MS, send PROBES
 *       times GET /health and GET /ready from 127.0.0.1, each on a new
 *       connection, then report what became of the slow connections.
 *       N = 0 measures the probes alone.
 *   slowloris linger PORT BODY_BYTES
 *       Send a head too large for the server (9000 bytes) and keep sending
 *       BODY_BYTES of body in paced 16 KiB pieces, then read the answer.
 *   slowloris burst PORT N [SRC]
 *       Connect N times from 127.0.0.SRC (default 4), and only then send a
 *       complete GET /health on each; report the answers ("answered CODE
 *       COUNT"), as a client opening many connections at once sees them.
 *   slowloris drip PORT DRIP_MS MAX_MS [keepalive]
 *       Send a head one byte every DRIP_MS until the server closes the
 *       connection or MAX_MS pass. With "keepalive", first send a complete
 *       GET /health on the same connection and read its answer, so that the
 *       dripped head is the second request of a keep-alive connection.
 *
 * Output is "key value" lines (see each mode). Exit status 0 unless the
 * tool itself failed (bad arguments, no descriptors, cannot connect).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int g_port;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* A blocking socket from 127.0.0.src (0: any) connected to the port. */
static int dial(int src)
{
    struct sockaddr_in to = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (src > 0) {
        from.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
        if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) goto fail;
    }
    to.sin_port = htons((uint16_t)g_port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

/* The status code at the start of buf ("HTTP/1.1 200 ..."), or 0. */
static int status_of(const char *buf, size_t n)
{
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return 0;
    return atoi(buf + 9);
}

/* One GET on a new connection; its status (0: none) and time in ms. */
static int probe(const char *path, double *ms)
{
    char req[256], buf[4096];
    size_t len = 0;
    double t0 = now_ms();
    int fd = dial(0), n;

    *ms = 0;
    if (fd < 0) return 0;
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return 0;
    }
    for (;;) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) break;
    }
    *ms = now_ms() - t0;
    close(fd);
    return status_of(buf, len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void probes(const char *path, int count)
{
    double *t = calloc((size_t)count, sizeof *t), ms;
    int ok = 0, i;

    if (t == NULL) exit(2);
    for (i = 0; i < count; i++) {
        int st = probe(path, &ms);
        if (st == 200) ok++;
        else printf("probe_failed %s %d\n", path, st);
        t[i] = ms;
    }
    qsort(t, (size_t)count, sizeof *t, cmp_double);
    printf("probes %s ok %d of %d min_ms %.3f median_ms %.3f p90_ms %.3f max_ms %.3f\n", path, ok, count,
           t[0], t[count / 2], t[(count * 9) / 10], t[count - 1]);
    free(t);
}

/* Allow as many descriptors as the hard limit does. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static const char slow_head[] = "GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: ";

static int cmd_hold(int argc, char **argv)
{
    int n, first, last, nprobes, i, nopen = 0, nreset = 0, nclosed = 0, codes[600] = {0};
    double hold, drip, t_end, next_drip;
    int *fd;

    if (argc < 8) return 2;
    n = atoi(argv[3]);
    first = atoi(argv[4]);
    last = atoi(argv[5]);
    hold = atof(argv[6]);
    nprobes = atoi(argv[7]);
    drip = argc > 8 ? atof(argv[8]) : 0;
    if (n < 0 || first < 1 || last > 254 || first > last || nprobes < 1) return 2;
    if ((fd = calloc((size_t)n + 1, sizeof *fd)) == NULL) return 2;

    for (i = 0; i < n; i++) {
        fd[i] = dial(first + i % (last - first + 1));
        if (fd[i] < 0) {
            fprintf(stderr, "slowloris: connection %d: %s\n", i, strerror(errno));
            return 1;
        }
        if (send(fd[i], slow_head, sizeof slow_head - 1, MSG_NOSIGNAL) < 0) {}
    }
    printf("opened %d from %d addresses\n", n, n ? (n < last - first + 1 ? n : last - first + 1) : 0);
    fflush(stdout);
    t_end = now_ms() + hold;
    next_drip = drip > 0 ? now_ms() + drip : t_end;
    while (now_ms() < t_end) {
        double until = next_drip < t_end ? next_drip : t_end;
        sleep_ms(until - now_ms() > 0 ? until - now_ms() : 0);
        if (drip > 0 && now_ms() >= next_drip) {
            for (i = 0; i < n; i++)
                if (fd[i] >= 0 && send(fd[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {}
            next_drip += drip;
        }
    }
    probes("/health", nprobes);
    probes("/ready", nprobes);

    for (i = 0; i < n; i++) {
        struct pollfd p = {fd[i], POLLIN, 0};
        char buf[512];
        ssize_t r;
        if (poll(&p, 1, 0) == 0) {
            nopen++;
        } else if ((r = recv(fd[i], buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            int st = status_of(buf, (size_t)r);
            codes[st >= 0 && st < 600 ? st : 0]++;
        } else if (r == 0) {
            nclosed++;
        } else {
            nreset++;
        }
        close(fd[i]);
    }
    printf("still_waiting %d\n", nopen);
    for (i = 0; i < 600; i++)
        if (codes[i]) printf("answered %d %d\n", i, codes[i]);
    printf("closed_silently %d\nreset %d\n", nclosed, nreset);
    free(fd);
    return 0;
}

static int cmd_linger(int argc, char **argv)
{
    char head[9000], chunk[16384], buf[512];
    long body, sent = 0;
    int fd, ok = 1;
    ssize_t r;
    size_t len = 0;

    if (argc < 4) return 2;
    body = atol(argv[3]);
    if ((fd = dial(0)) < 0) return 1;
    memset(head, 'h', sizeof head);
    memcpy(head, "POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nX-Big: ", 59);
    memset(chunk, 'b', sizeof chunk);
    if (send(fd, head, sizeof head, MSG_NOSIGNAL) != (ssize_t)sizeof head) ok = 0;
    while (ok && sent < body) {
        size_t k = body - sent < (long)sizeof chunk ? (size_t)(body - sent) : sizeof chunk;
        if ((r = send(fd, chunk, k, MSG_NOSIGNAL)) < 0) {
            printf("send_error %s after %ld body bytes\n", strerror(errno), sent);
            ok = 0;
            break;
        }
        sent += r;
        sleep_ms(1);
    }
    shutdown(fd, SHUT_WR);
    while (len < sizeof buf - 1 && (r = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0) len += (size_t)r;
    buf[len] = '\0';
    if (strchr(buf, '\r')) *strchr(buf, '\r') = '\0';
    printf("sent_all %d\nstatus_line %s\n", ok, len ? buf : "(none)");
    close(fd);
    return 0;
}

static int cmd_burst(int argc, char **argv)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: burst\r\nConnection: close\r\n\r\n";
    int n, src, i, codes[600] = {0};
    int *fd;

    if (argc < 4) return 2;
    n = atoi(argv[3]);
    src = argc > 4 ? atoi(argv[4]) : 4;
    if (n < 1 || src < 1 || src > 254 || (fd = calloc((size_t)n, sizeof *fd)) == NULL) return 2;
    for (i = 0; i < n; i++)
        if ((fd[i] = dial(src)) < 0) {
            fprintf(stderr, "slowloris: connection %d: %s\n", i, strerror(errno));
            return 1;
        }
    for (i = 0; i < n; i++)
        if (send(fd[i], req, sizeof req - 1, MSG_NOSIGNAL) < 0) {}
    for (i = 0; i < n; i++) {
        char buf[512];
        ssize_t r = recv(fd[i], buf, sizeof buf, 0);
        int st = r > 0 ? status_of(buf, (size_t)r) : 0;
        codes[st >= 0 && st < 600 ? st : 0]++;
        close(fd[i]);
    }
    for (i = 0; i < 600; i++)
        if (codes[i]) printf("answered %d %d\n", i, codes[i]);
    free(fd);
    return 0;
}

static int cmd_drip(int argc, char **argv)
{
    static const char head[] = "GET /health HTTP/1.1\r\nHost: drip\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    double drip, max, t0;
    size_t i = 0;
    int fd, keepalive;
    char buf[1024];

    if (argc < 5) return 2;
    drip = atof(argv[3]);
    max = atof(argv[4]);
    keepalive = argc > 5 && strcmp(argv[5], "keepalive") == 0;
    if ((fd = dial(0)) < 0) return 1;
    if (keepalive) {
        static const char req[] = "GET /health HTTP/1.1\r\nHost: drip\r\n\r\n";
        size_t len = 0;
        ssize_t r;
        const char *cl;
        if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) < 0) return 1;
        /* Read the whole answer: head, then Content-Length bytes. */
        for (;;) {
            char *end;
            if ((r = recv(fd, buf + len, sizeof buf - 1 - len, 0)) <= 0) break;
            len += (size_t)r;
            buf[len] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) == NULL) continue;
            cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl == NULL || (size_t)(end + 4 - buf) + (size_t)atol(cl + 17) <= len) break;
        }
        printf("first_status %d\n", status_of(buf, len));
    }
    t0 = now_ms();
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int ready;
        if (i < sizeof head - 1 && send(fd, head + i, 1, MSG_NOSIGNAL) != 1) break;
        i++;
        ready = poll(&p, 1, (int)drip);
        if (ready != 0 || now_ms() - t0 >= max) break;
    }
    if (now_ms() - t0 >= max) {
        printf("closed_after_ms never (gave up after %.0f ms, %zu bytes sent)\n", now_ms() - t0, i);
    } else {
        ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
        printf("closed_after_ms %.0f\nbytes_sent %zu\nanswer %d\n", now_ms() - t0, i,
               r > 0 ? status_of(buf, (size_t)r) : 0);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;

    if (argc >= 3) {
        g_port = atoi(argv[2]);
        raise_nofile();
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(argv[1], "hold") == 0) rc = cmd_hold(argc, argv);
        else if (strcmp(argv[1], "linger") == 0) rc = cmd_linger(argc, argv);
        else if (strcmp(argv[1], "drip") == 0) rc = cmd_drip(argc, argv);
        else if (strcmp(argv[1], "burst") == 0) rc = cmd_burst(argc, argv);
    }
    if (rc == 2)
        fprintf(stderr, "usage: slowloris hold PORT N FIRST LAST HOLD_MS PROBES [DRIP_MS]\n"
                        "       slowloris linger PORT BODY_BYTES\n"
                        "       slowloris burst PORT N [SRC]\n"
                        "       slowloris drip PORT DRIP_MS MAX_MS [keepalive]\n");
    return rc;
}
