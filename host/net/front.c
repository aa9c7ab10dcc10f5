/*
 * The single listening port: accept, peek at the request head, hand over.
 *
 * One thread runs an epoll loop over three kinds of descriptor: the listening
 * socket (level-triggered; accept4 until EAGAIN), an eventfd other threads
 * write to when they want the listener closed or the thread stopped, and every
 * accepted socket still waiting for its head ("pending").
 *
 * Pending sockets are registered edge-triggered. recv(MSG_PEEK) leaves the
 * bytes in the socket, so a level-triggered registration would report the
 * socket readable forever and the loop would spin on a half-sent head; with
 * EPOLLET the kernel reports each new arrival, which is exactly when a
 * re-peek can find something new. A head sent one byte at a time therefore
 * costs one peek per byte, never a busy loop.
 *
 * Every pending socket has an absolute deadline (accept time + head timeout).
 * Since the timeout is the same for all, accept order is deadline order: the
 * pending list is a FIFO whose head is the next to expire, and epoll_wait
 * sleeps exactly until then. The deadline is total, never extended by bytes
 * arriving: a head sent one byte a second is cut off like a silent one.
 *
 * Slow heads cannot lock others out. When max_pending heads wait in all,
 * the oldest of all gives way to the newcomer (503): a new connection is
 * always looked at, and a client that sends its head promptly (a liveness
 * probe) gets through however many slow ones hold the table, as it is the
 * slow ones that have waited longest. Pending sockets are also grouped by
 * client address (host/net/peers.c): an address may keep at most
 * max_pending_per_ip heads waiting; beyond that its oldest one goes (429).
 * The per-address cap spares a grace period (FRONT_GRACE_MS, or half the
 * head timeout if shorter): a client that opens a hundred connections at
 * once, each with its head on the way, is not refused; only heads that have
 * waited that long count against it. The heads in the grace period are the
 * tail of the pending list, from the `young` cursor on; the cursor moves as
 * they come of age, and each head coming of age in an address over its cap
 * costs that address its oldest head.
 *
 * A refused socket is answered and then "lingers": its write side is shut
 * and, level-triggered now, whatever the peer still sends is read and
 * discarded until it closes or FRONT_LINGER_MS pass. Closing a socket with
 * unread bytes, or with bytes still arriving, sends a reset, and a client
 * busy writing its body (Node's http client, for one) then reports the reset
 * instead of the answer waiting in its receive buffer.
 *
 * Descriptors closed while an epoll batch is being handled may still have
 * an event later in that batch, so their structures are only marked dead
 * and freed once the batch is done.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/front.h"
#include "net/peers.h"

#define FRONT_METHOD_MAX 32  /* longest method kept for `dropped`, with NUL */
#define FRONT_PATH_MAX 256   /* longest path kept for `dropped`, with NUL */
#define FRONT_DRAIN_MAX 65536 /* bytes discarded before closing a dropped socket */
#define FRONT_PAUSE_US 100000 /* accept pause when out of descriptors/memory */
#define FRONT_EVENTS 64
#define FRONT_LINGER_MS 2000 /* a refused socket is read and discarded this long at most */
#define FRONT_GRACE_MS 1000  /* a head this young does not count against max_pending_per_ip */

/* A socket waiting for its head, or a refused one lingering. Each kind has
 * its own list, linked in deadline order. */
typedef struct front_conn {
    int fd;
    int in_epoll;
    int lingering; /* answered: only read and discarded until closed */
    int dead;      /* closed; freed once the current epoll batch is done */
    size_t seen; /* bytes already searched for the end of the head */
    uint64_t deadline; /* CLOCK_MONOTONIC, microseconds */
    uint64_t since;    /* accepted (pending only) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    peers_link peer; /* in its client address's group (pending only) */
    struct front_conn *prev, *next;
} front_conn;

#define FRONT_CONN_OF(link) ((front_conn *)((char *)(link) - offsetof(front_conn, peer)))

struct front {
    front_callbacks cb;
    unsigned head_timeout_ms;
    unsigned max_pending;
    unsigned max_pending_per_ip; /* 0: no cap per address */
    uint64_t grace_us;           /* see FRONT_GRACE_MS */
    size_t max_head;
    int port;

    int lfd;   /* listener; -1 once closed. Front thread only while it runs. */
    int ep;    /* epoll */
    int wake;  /* eventfd: a stop request is waiting in the flags below */
    int spare; /* /dev/null, given up to accept-and-shed under EMFILE */
    pthread_t thread;
    char *buf; /* max_head bytes to peek into */

    front_conn *first, *last; /* pending */
    front_conn *young;        /* first pending head still in its grace period */
    atomic_uint npending;
    peers *peers;             /* pending, by client address */
    front_conn *lfirst, *llast; /* lingering */
    unsigned nlinger;
    front_conn *dead;         /* closed during this batch, linked by next */
    uint64_t paused_until; /* accept paused until then; 0: not paused */
    uint64_t last_log;     /* rate limit for cb.log */
    unsigned log_skipped;

    pthread_mutex_t mu; /* guards the four flags */
    pthread_cond_t cond;
    int want_unlisten, want_stop;
    int unlistened; /* listener closed */
    int exited;     /* front thread returned */
};

/* Distinct addresses marking the two non-connection descriptors in epoll. */
static char front_tag_listen, front_tag_wake;

static const char front_408[] =
    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
static const char front_431[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    "Content-Length: 0\r\n\r\n";
static const char front_400[] =
    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
static const char front_503[] =
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
    "Content-Length: 0\r\n\r\n";
static const char front_429[] =
    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n"
    "Content-Length: 0\r\n\r\n";

static uint64_t front_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void front_seterr(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    if (!err || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Report through cb.log, at most once a second; lines skipped in between are
 * counted in the next one. */
static void front_log(front *f, const char *fmt, ...) {
    char line[256];
    uint64_t now = front_now();
    va_list ap;
    int n;

    if (!f->cb.log) return;
    if (f->last_log && now - f->last_log < 1000000u) {
        f->log_skipped++;
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (f->log_skipped && n >= 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " (%u similar suppressed)", f->log_skipped);
    f->log_skipped = 0;
    f->last_log = now;
    f->cb.log(f->cb.user, line);
}

/* ---------------------------------------------------------------- parsing */

static int front_is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Method and path from the start of a possibly partial head. The method is
 * kept only once a space ends it (so "GE" is not reported as a method); the
 * path is whatever visible bytes follow, cut at FRONT_PATH_MAX - 1. */
static void front_request_line(const char *b, size_t n, char *method, char *path) {
    size_t i = 0, k = 0;

    method[0] = path[0] = '\0';
    while (i < n && i < FRONT_METHOD_MAX - 1 && front_is_tchar((unsigned char)b[i])) i++;
    if (i == 0 || i >= n || b[i] != ' ') return;
    memcpy(method, b, i);
    method[i] = '\0';
    for (i++; i < n && k < FRONT_PATH_MAX - 1; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c <= 0x20 || c >= 0x7f) break;
        path[k++] = (char)c;
    }
    path[k] = '\0';
}

/* Whether a comma-separated header value holds tok as one of its elements
 * (case-insensitive, surrounding blanks ignored): "keep-alive, Upgrade"
 * holds "upgrade", "upgrade-insecure" does not. */
static int front_has_token(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok), i = 0;

    while (i < n) {
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        s = i;
        while (i < n && v[i] != ',') i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0) return 1;
    }
    return 0;
}

/* Whether the first bytes are a TLS record carrying a handshake (a
 * ClientHello): content type 22, then protocol version 3.x. No HTTP request
 * starts with byte 0x16 (a method is made of token characters), so this never
 * mistakes a real request; fewer than three bytes are not judged yet. */
static int front_is_tls(const unsigned char *b, size_t n) {
    return n >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04;
}

/* Whether a complete head (request line, headers, blank line) asks for a
 * WebSocket: an Upgrade header naming "websocket" and a Connection header
 * naming "upgrade", in any case and any number of header lines. */
static int front_is_websocket(const char *h, size_t n) {
    const char *end = h + n, *p = memmem(h, n, "\r\n", 2);
    int up = 0, conn = 0;

    if (!p) return 0;
    for (p += 2; p < end;) { /* past the request line */
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2), *colon;
        if (!eol) eol = end;
        if (eol == p) break; /* the blank line */
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            size_t nl = (size_t)(colon - p), vl = (size_t)(eol - colon - 1);
            if (nl == 7 && strncasecmp(p, "upgrade", 7) == 0)
                up |= front_has_token(colon + 1, vl, "websocket");
            else if (nl == 10 && strncasecmp(p, "connection", 10) == 0)
                conn |= front_has_token(colon + 1, vl, "upgrade");
        }
        p = eol + 2;
    }
    return up && conn;
}

/* A line ending that is a bare LF in b[from..n): HTTP/1.1 heads end their
 * lines with CRLF; a peer that sends LF alone would otherwise wait for the
 * head deadline, and servers that accept it disagree with those that do not
 * (a smuggling vector). */
static int front_bare_lf(const char *b, size_t from, size_t n) {
    for (size_t i = from; i < n; i++)
        if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')) return 1;
    return 0;
}

/* Whether a complete head carries both Content-Length and Transfer-Encoding:
 * two framings, which two servers may read differently (RFC 9112 6.3 lets a
 * server refuse it; behind a proxy it smuggles a second request). */
static int front_two_framings(const char *h, size_t n) {
    const char *end = h + n, *p = memmem(h, n, "\r\n", 2);
    int cl = 0, te = 0;

    if (!p) return 0;
    for (p += 2; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if (eol == p) break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            size_t nl = (size_t)(colon - p);
            if (nl == 14 && strncasecmp(p, "content-length", 14) == 0) cl = 1;
            else if (nl == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) te = 1;
        }
        p = eol + 2;
    }
    return cl && te;
}

/* ------------------------------------------------------------ connections */

/* Out of the pending list and out of its address's group. */
static void front_unlink(front *f, front_conn *c) {
    if (f->young == c) f->young = c->next;
    if (c->prev) c->prev->next = c->next;
    else f->first = c->next;
    if (c->next) c->next->prev = c->prev;
    else f->last = c->prev;
    c->prev = c->next = NULL;
    atomic_fetch_sub(&f->npending, 1);
    if (f->peers) peers_remove(f->peers, &c->peer);
}

/* Forget c without closing its socket: out of epoll, out of the list. */
static void front_detach(front *f, front_conn *c) {
    if (c->in_epoll) epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->in_epoll = 0;
    front_unlink(f, c);
}

/* c (in no list any more) is done with: freed after the current batch. */
static void front_bury(front *f, front_conn *c) {
    c->dead = 1;
    c->next = f->dead;
    f->dead = c;
}

static void front_free_dead(front *f) {
    while (f->dead) {
        front_conn *c = f->dead;
        f->dead = c->next;
        free(c);
    }
}

/* Answer (if resp), then close at once, discarding only what the peer has
 * already sent (closing with unread bytes sends a reset that can destroy the
 * answer in flight). For sockets the front cannot afford to keep; others
 * linger (front_linger). */
static void front_reject(front *f, int fd, const char *resp, size_t len) {
    size_t drained = 0;
    ssize_t n;

    if (resp) {
        /* Best effort: the socket buffer of a fresh connection takes far more
         * than these few bytes; a failure means the peer is gone. */
        n = send(fd, resp, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
        shutdown(fd, SHUT_WR);
    }
    while (drained < FRONT_DRAIN_MAX) {
        n = recv(fd, f->buf, f->max_head, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        drained += (size_t)n;
    }
    close(fd);
}

/* Read and discard what a lingering socket has; 1 while it may send more,
 * 0 once it closed or failed. Level-triggered: one read per event keeps a
 * fast sender from holding the front thread. */
static int front_linger_read(front *f, front_conn *c) {
    ssize_t n;

    do n = recv(c->fd, f->buf, f->max_head, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Close a lingering socket and forget it. */
static void front_linger_end(front *f, front_conn *c) {
    if (c->prev) c->prev->next = c->next;
    else f->lfirst = c->next;
    if (c->next) c->next->prev = c->prev;
    else f->llast = c->prev;
    c->prev = c->next = NULL;
    f->nlinger--;
    /* Only unread bytes can remain (the peer sent more since the last read):
     * reading them keeps the close a FIN rather than a reset. */
    front_linger_read(f, c);
    close(c->fd); /* also takes it out of epoll */
    front_bury(f, c);
}

/* Answer c (detached), shut our side, and keep reading what the peer sends
 * until it closes or FRONT_LINGER_MS pass, so that the answer reaches a
 * client still sending. At most max_pending sockets linger; beyond that the
 * one lingering longest is closed first. */
static void front_linger(front *f, front_conn *c, const char *resp, size_t len) {
    struct epoll_event ev;
    ssize_t n = send(c->fd, resp, len, MSG_NOSIGNAL | MSG_DONTWAIT);

    (void)n; /* as in front_reject: fits; a failure means the peer is gone */
    shutdown(c->fd, SHUT_WR);
    if (!front_linger_read(f, c)) { /* closed already: nothing to wait for */
        if (c->in_epoll) epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        front_bury(f, c);
        return;
    }
    if (f->nlinger >= f->max_pending && f->lfirst) front_linger_end(f, f->lfirst);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLRDHUP; /* level-triggered: reading consumes */
    ev.data.ptr = c;
    if (epoll_ctl(f->ep, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        front_reject(f, c->fd, NULL, 0);
        front_bury(f, c);
        return;
    }
    c->in_epoll = 1;
    c->lingering = 1;
    c->deadline = front_now() + (uint64_t)FRONT_LINGER_MS * 1000u;
    c->prev = f->llast;
    c->next = NULL;
    if (f->llast) f->llast->next = c;
    else f->lfirst = c;
    f->llast = c;
    f->nlinger++;
}

/* The peer's address as text, for logs. */
static void front_addr_text(const struct sockaddr_storage *ss, char *out, size_t len) {
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)len);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)len);
}

/* Drop a pending connection: answer and linger, or close; report. */
static void front_drop_conn(front *f, front_conn *c, front_drop why) {
    char method[FRONT_METHOD_MAX], path[FRONT_PATH_MAX], head[FRONT_METHOD_MAX + FRONT_PATH_MAX];
    const char *resp = NULL;
    size_t len = 0;
    ssize_t n;

    /* The shared peek buffer may hold another socket's head by now. */
    do n = recv(c->fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    front_request_line(head, n > 0 ? (size_t)n : 0, method, path);

    switch (why) {
    case FRONT_DROP_TIMEOUT: resp = front_408; len = sizeof front_408 - 1; break;
    case FRONT_DROP_TOO_LARGE: resp = front_431; len = sizeof front_431 - 1; break;
    case FRONT_DROP_OVERLOAD: resp = front_503; len = sizeof front_503 - 1; break;
    case FRONT_DROP_BAD_REQUEST: resp = front_400; len = sizeof front_400 - 1; break;
    case FRONT_DROP_PER_IP: resp = front_429; len = sizeof front_429 - 1; break;
    case FRONT_DROP_CLOSED: break;
    case FRONT_DROP_TLS: {
        /* Plain text would only puzzle a TLS client; closing ends its
         * handshake at once instead of after the head timeout. */
        char host[INET6_ADDRSTRLEN] = "?";
        front_addr_text(&c->addr, host, sizeof host);
        front_log(f, "TLS handshake on the plain-HTTP port from %s: terminate TLS in front of voxray "
                     "(ingress, nginx) or connect with ws:// and http://", host);
        break;
    }
    }
    front_unlink(f, c);
    if (resp) {
        front_linger(f, c, resp, len);
    } else {
        if (c->in_epoll) epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->in_epoll = 0;
        front_reject(f, c->fd, NULL, 0);
        front_bury(f, c);
    }
    if (f->cb.dropped) f->cb.dropped(f->cb.user, why, method, path);
}

/* Hand c's socket over, head unread. The callback owns the fd on 0. */
static void front_dispatch(front *f, front_conn *c, size_t headlen) {
    int rc;

    front_detach(f, c);
    if (f->cb.upgrade && front_is_websocket(f->buf, headlen))
        rc = f->cb.upgrade(f->cb.user, c->fd, (struct sockaddr *)&c->addr, c->addrlen);
    else
        rc = f->cb.http(f->cb.user, c->fd, (struct sockaddr *)&c->addr, c->addrlen);
    if (rc != 0) close(c->fd);
    front_bury(f, c);
}

/* Peek at c's head and act on what is there. Returns 1 while c still waits,
 * 0 once it was handed over or dropped (c is freed). hup: epoll said the
 * peer shut down or the socket failed, so nothing more will come. */
static int front_peek(front *f, front_conn *c, int hup) {
    const char *end;
    size_t from;
    ssize_t n;

    do n = recv(c->fd, f->buf, f->max_head, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !hup) return 1;
    if (n <= 0) { /* orderly close with nothing sent, reset, or error */
        front_drop_conn(f, c, FRONT_DROP_CLOSED);
        return 0;
    }
    if (front_is_tls((const unsigned char *)f->buf, (size_t)n)) {
        front_drop_conn(f, c, FRONT_DROP_TLS);
        return 0;
    }
    /* The peeked bytes are always the same prefix, so only the new part (and
     * the three bytes before it, for a terminator split across sends) needs
     * searching. */
    from = c->seen > 3 ? c->seen - 3 : 0;
    end = (size_t)n > from ? memmem(f->buf + from, (size_t)n - from, "\r\n\r\n", 4) : NULL;
    /* A head ending in bare LFs ("\n\n") is refused once it is complete (the
     * peer has sent it all, so the answer is not lost to a reset); only the
     * head is judged, a body may hold anything. The terminator's own LFs are
     * judged too: after "\r\n" a second LF is bare. */
    {
        size_t lim = end ? (size_t)(end - f->buf) : (size_t)n;
        const char *lf_end = lim > from ? memmem(f->buf + from, lim - from, "\n\n", 2) : NULL;
        if (lf_end == NULL && lim > from) lf_end = memmem(f->buf + from, lim - from, "\n\r\n", 3);
        if ((lf_end && front_bare_lf(f->buf, 0, (size_t)(lf_end - f->buf) + 2)) ||
            (end && (front_bare_lf(f->buf, 0, (size_t)(end - f->buf) + 4) ||
                     front_two_framings(f->buf, (size_t)(end - f->buf) + 4)))) {
            front_drop_conn(f, c, FRONT_DROP_BAD_REQUEST);
            return 0;
        }
    }
    if (end) {
        front_dispatch(f, c, (size_t)(end - f->buf) + 4);
        return 0;
    }
    c->seen = (size_t)n;
    if ((size_t)n >= f->max_head) {
        front_drop_conn(f, c, FRONT_DROP_TOO_LARGE);
        return 0;
    }
    if (hup) {
        front_drop_conn(f, c, FRONT_DROP_CLOSED);
        return 0;
    }
    return 1;
}

/* An IPv4 peer of a dual-stack listener arrives as ::ffff:a.b.c.d; give it
 * to the callbacks as the AF_INET address it is, so that address checks and
 * logs need to know only one form. */
static void front_unmap(struct sockaddr_storage *ss, socklen_t *sl) {
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;

    if (ss->ss_family != AF_INET6 || *sl < sizeof a6) return;
    memcpy(&a6, ss, sizeof a6);
    if (!IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) return;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_port = a6.sin6_port;
    memcpy(&a4.sin_addr, &a6.sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof *ss);
    memcpy(ss, &a4, sizeof a4);
    *sl = sizeof a4;
}

/* c's address has more than max_pending_per_ip heads waiting, the oldest
 * past its grace period: that one goes. */
static void front_over_cap(front *f, front_conn *c) {
    char host[INET6_ADDRSTRLEN] = "?";

    front_addr_text(&c->addr, host, sizeof host);
    front_log(f, "front: %s has more than %u request heads waiting ([server] max_pending_per_ip); "
                 "the oldest is refused with 429", host, f->max_pending_per_ip);
    front_drop_conn(f, FRONT_CONN_OF(peers_oldest(&c->peer)), FRONT_DROP_PER_IP);
}

/* Heads leaving their grace period now count against their address's cap:
 * each costs an address over it its oldest head. */
static void front_mature(front *f, uint64_t now) {
    while (f->young && f->young->since + f->grace_us <= now) {
        front_conn *c = f->young;
        f->young = c->next;
        if (c->peer.group && peers_count(&c->peer) > f->max_pending_per_ip) front_over_cap(f, c);
    }
}

/* A new socket: queue it with its deadline and look at it right away, as the
 * head often arrives together with the connection. If it has to wait, make
 * room for it: its address's oldest waiting head goes when the address is
 * over max_pending_per_ip (and that head past its grace period), the oldest
 * of all when the table is over max_pending. The newcomer is never the one
 * refused: a slow head has had its chance, a new one has not. */
static void front_admit(front *f, int fd, const struct sockaddr_storage *ss, socklen_t sl) {
    struct epoll_event ev;
    unsigned char key[16];
    front_conn *c;

    if (!(c = calloc(1, sizeof *c))) {
        front_log(f, "front: out of memory, connection refused");
        front_reject(f, fd, front_503, sizeof front_503 - 1);
        if (f->cb.dropped) f->cb.dropped(f->cb.user, FRONT_DROP_OVERLOAD, "", "");
        return;
    }
    c->fd = fd;
    c->addr = *ss;
    c->addrlen = sl;
    front_unmap(&c->addr, &c->addrlen);
    c->since = front_now();
    c->deadline = c->since + (uint64_t)f->head_timeout_ms * 1000u;
    c->prev = f->last;
    if (f->last) f->last->next = c;
    else f->first = c;
    f->last = c;
    if (!f->young) f->young = c;
    atomic_fetch_add(&f->npending, 1);
    /* Out of memory for a new address's group: that head goes uncounted,
     * and the table-wide bound still holds. */
    if (f->peers && peers_key((struct sockaddr *)&c->addr, c->addrlen, key) == 0 &&
        !(f->cb.exempt && f->cb.exempt(f->cb.user, (struct sockaddr *)&c->addr, c->addrlen)))
        peers_add(f->peers, key, &c->peer);

    if (!front_peek(f, c, 0)) return;

    if (c->peer.group && peers_count(&c->peer) > f->max_pending_per_ip &&
        FRONT_CONN_OF(peers_oldest(&c->peer))->since + f->grace_us <= c->since)
        front_over_cap(f, c);
    if (atomic_load(&f->npending) > f->max_pending) {
        front_log(f, "front: %u request heads waiting ([server] max_pending); "
                     "the oldest is refused with 503 to admit a new connection", f->max_pending);
        front_drop_conn(f, f->first, FRONT_DROP_OVERLOAD);
    }
    /* Bytes arriving between that peek and this registration are reported:
     * EPOLL_CTL_ADD queues an event if the socket is already readable. */
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        front_log(f, "front: epoll_ctl: %s, connection refused", strerror(errno));
        front_drop_conn(f, c, FRONT_DROP_OVERLOAD);
        return;
    }
    c->in_epoll = 1;
}

static void front_pause_accept(front *f) {
    if (f->paused_until) return;
    epoll_ctl(f->ep, EPOLL_CTL_DEL, f->lfd, NULL);
    f->paused_until = front_now() + FRONT_PAUSE_US;
}

static void front_resume_accept(front *f) {
    struct epoll_event ev;

    f->paused_until = 0;
    if (f->lfd < 0) return;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &front_tag_listen;
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lfd, &ev) < 0) {
        front_log(f, "front: epoll_ctl on listener: %s, retrying", strerror(errno));
        front_pause_accept(f);
    }
}

/* Out of descriptors: give up the spare one so that the connection at the
 * head of the backlog can be accepted, answered 503 and closed, then take the
 * spare back. Without this the listener stays readable and accept fails
 * forever at full CPU. Returns 0 when one connection was shed, -1 when the
 * front must pause instead. */
static int front_shed(front *f) {
    int fd;

    if (f->spare < 0) return -1;
    close(f->spare);
    fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        front_reject(f, fd, front_503, sizeof front_503 - 1);
        if (f->cb.dropped) f->cb.dropped(f->cb.user, FRONT_DROP_OVERLOAD, "", "");
    }
    /* Another thread may take the freed slot first; then pause. */
    f->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 && f->spare >= 0 ? 0 : -1;
}

static void front_accept(front *f) {
    /* A callback run from front_admit may close the listener. */
    while (f->lfd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(f->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            front_admit(f, fd, &ss, sl);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        /* accept(2): errors already pending on the new connection are
         * reported by accept itself; the listener is fine, go on. */
        case EPROTO: case ENOPROTOOPT: case ENETDOWN: case ENONET: case EHOSTDOWN:
        case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH:
            continue;
        case EMFILE:
        case ENFILE:
            front_log(f, "front: accept: %s; refusing new connections with 503", strerror(errno));
            if (front_shed(f) == 0) continue;
            front_pause_accept(f);
            return;
        default: /* ENOBUFS, ENOMEM, ... */
            front_log(f, "front: accept: %s; pausing accept for 100 ms", strerror(errno));
            front_pause_accept(f);
            return;
        }
    }
}

/* Close the listening socket; front thread (or after it exited). */
static void front_close_listener(front *f) {
    if (f->lfd >= 0) {
        if (!f->paused_until) epoll_ctl(f->ep, EPOLL_CTL_DEL, f->lfd, NULL);
        close(f->lfd);
        f->lfd = -1;
    }
    pthread_mutex_lock(&f->mu);
    f->unlistened = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

/* Milliseconds epoll_wait may sleep: until the first deadline or the end of
 * an accept pause, rounded up so that the wake-up finds it expired. */
static int front_timeout(const front *f) {
    uint64_t now = front_now(), until = UINT64_MAX;

    if (f->first) until = f->first->deadline;
    if (f->lfirst && f->lfirst->deadline < until) until = f->lfirst->deadline;
    if (f->peers && f->young && f->young->since + f->grace_us < until) until = f->young->since + f->grace_us;
    if (f->paused_until && f->paused_until < until) until = f->paused_until;
    if (until == UINT64_MAX) return -1;
    if (until <= now) return 0;
    if (until - now > (uint64_t)INT32_MAX * 1000u) return INT32_MAX;
    return (int)((until - now + 999u) / 1000u);
}

static void *front_main(void *arg) {
    pthread_setname_np(pthread_self(), "vx-http"); /* for top -H, perf, gdb */
    front *f = arg;
    struct epoll_event ev[FRONT_EVENTS];

    for (;;) {
        uint64_t now;
        int i, n = epoll_wait(f->ep, ev, FRONT_EVENTS, front_timeout(f));

        if (n < 0) {
            if (errno == EINTR) continue;
            /* Only a broken epoll descriptor gets here; nothing to recover. */
            front_log(f, "front: epoll_wait: %s; front thread stopped", strerror(errno));
            break;
        }
        for (i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &front_tag_wake) {
                uint64_t v;
                int unlisten, stop;
                if (read(f->wake, &v, sizeof v) < 0) { /* EAGAIN: already read */ }
                pthread_mutex_lock(&f->mu);
                unlisten = f->want_unlisten;
                stop = f->want_stop;
                pthread_mutex_unlock(&f->mu);
                if (stop) goto out;
                if (unlisten) front_close_listener(f);
            } else if (p == &front_tag_listen) {
                /* A callback earlier in this batch may have closed it. */
                if (f->lfd >= 0 && !f->paused_until) front_accept(f);
            } else {
                front_conn *c = p;
                if (c->dead) continue; /* closed earlier in this batch */
                if (c->lingering) {
                    if (!front_linger_read(f, c)) front_linger_end(f, c);
                } else {
                    front_peek(f, c, (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
                }
            }
        }
        now = front_now();
        while (f->first && f->first->deadline <= now) {
            front_conn *c = f->first;
            /* A head completed just before its deadline still goes through. */
            if (front_peek(f, c, 0)) front_drop_conn(f, c, FRONT_DROP_TIMEOUT);
        }
        if (f->peers) front_mature(f, now);
        while (f->lfirst && f->lfirst->deadline <= now) front_linger_end(f, f->lfirst);
        if (f->paused_until && f->paused_until <= now) front_resume_accept(f);
        front_free_dead(f);
    }
out:
    pthread_mutex_lock(&f->mu);
    f->exited = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---------------------------------------------------------------- binding */

/* Parse "host:port", "[v6]:port" or ":port" (also "*:port") and bind+listen.
 * On failure writes one line into err and returns -1. */
static int front_listen(front *f, const char *addr, int backlog, char *err, size_t errlen) {
    char host[256], portstr[8];
    const char *port, *hp;
    size_t hl, i;
    struct addrinfo hints, *res = NULL, *ai;
    int rc, fd = -1, saved = 0, pass;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':') goto bad;
        hp = addr + 1;
        hl = (size_t)(rb - hp);
        port = rb + 2;
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
        if (hl == 0) goto bad;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon) goto bad;
        hp = addr;
        hl = (size_t)(colon - addr);
        port = colon + 1;
        if (memchr(addr, ':', hl)) {
            front_seterr(err, errlen, "listen %s: an IPv6 address needs brackets, as in [::1]:8080", addr);
            return -1;
        }
        hints.ai_family = AF_UNSPEC;
    }
    if (hl >= sizeof host) goto bad;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    for (i = 0; port[i]; i++)
        if (port[i] < '0' || port[i] > '9') break;
    if (i == 0 || port[i] || i > 5 || atoi(port) > 65535) {
        front_seterr(err, errlen, "listen %s: bad port \"%s\" (expected 0 to 65535)", addr, port);
        return -1;
    }
    snprintf(portstr, sizeof portstr, "%d", atoi(port));
    if (hl == 0 || strcmp(host, "*") == 0) hints.ai_flags |= AI_PASSIVE;

    rc = getaddrinfo((hints.ai_flags & AI_PASSIVE) ? NULL : host, portstr, &hints, &res);
    if (rc != 0) {
        front_seterr(err, errlen, "listen %s: %s", addr,
                     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    /* All interfaces: prefer the IPv6 wildcard, which with IPV6_V6ONLY off
     * takes IPv4 too; fall back to 0.0.0.0 where IPv6 is missing. */
    for (pass = 0; pass < 2 && fd < 0; pass++) {
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            int one = 1, zero = 0;
            if ((hints.ai_flags & AI_PASSIVE) && (ai->ai_family == AF_INET6) != (pass == 0)) continue;
            if (!(hints.ai_flags & AI_PASSIVE) && pass == 1) continue;
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) goto next;
            if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto next;
            if (ai->ai_family == AF_INET6 &&
                IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr) &&
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
                goto next;
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) goto next;
            if (listen(fd, backlog) < 0) goto next;
            break;
        next:
            /* Keep the most telling error: "in use" over "no IPv6 here". */
            if (!saved || saved == EAFNOSUPPORT || saved == EADDRNOTAVAIL) saved = errno;
            if (fd >= 0) close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        front_seterr(err, errlen, "listen %s: %s", addr, strerror(saved ? saved : EINVAL));
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        front_seterr(err, errlen, "listen %s: getsockname: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    f->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    f->lfd = fd;
    return 0;

bad:
    front_seterr(err, errlen, "listen %s: bad address (expected host:port, [ipv6]:port or :port)", addr);
    return -1;
}

/* ------------------------------------------------------------------ public */

int front_start(const front_options *opt, const front_callbacks *cb, front **out,
                char *err, size_t errlen) {
    front *f = NULL;
    struct epoll_event ev;
    sigset_t all, old;
    int rc, sync_ok = 0;

    *out = NULL;
    if (!opt || !opt->listen || !cb || !cb->http) {
        front_seterr(err, errlen, "front: a listen address and an http callback are required");
        return -1;
    }
    if (!(f = calloc(1, sizeof *f))) goto nomem;
    f->lfd = f->ep = f->wake = f->spare = -1;
    f->cb = *cb;
    f->head_timeout_ms = opt->head_timeout_ms ? opt->head_timeout_ms : 10000;
    f->max_pending = opt->max_pending ? opt->max_pending : 1024;
    f->max_pending_per_ip = opt->max_pending_per_ip;
    f->grace_us = (uint64_t)(f->head_timeout_ms / 2 < FRONT_GRACE_MS ? f->head_timeout_ms / 2 : FRONT_GRACE_MS) * 1000u;
    f->max_head = opt->max_head ? opt->max_head : 8192;
    atomic_init(&f->npending, 0);
    if (!(f->buf = malloc(f->max_head))) goto nomem;
    if (f->max_pending_per_ip && !(f->peers = peers_new(f->max_pending))) goto nomem;
    if (pthread_mutex_init(&f->mu, NULL) != 0) goto nomem;
    if (pthread_cond_init(&f->cond, NULL) != 0) {
        pthread_mutex_destroy(&f->mu);
        goto nomem;
    }
    sync_ok = 1;

    if (front_listen(f, opt->listen, opt->backlog > 0 ? opt->backlog : 511, err, errlen) < 0)
        goto fail;
    if ((f->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (f->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        front_seterr(err, errlen, "front: %s", strerror(errno));
        goto fail;
    }
    /* Without the spare descriptor the front still copes with EMFILE by
     * pausing, so failing to open it is not fatal. */
    f->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);

    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = &front_tag_wake;
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->wake, &ev) < 0) goto syserr;
    ev.data.ptr = &front_tag_listen;
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lfd, &ev) < 0) goto syserr;

    /* Signals belong to the daemon's main thread, not to this one. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&f->thread, NULL, front_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        front_seterr(err, errlen, "front: pthread_create: %s", strerror(rc));
        goto fail;
    }
    *out = f;
    return 0;

nomem:
    front_seterr(err, errlen, "front: out of memory");
    goto fail;
syserr:
    front_seterr(err, errlen, "front: epoll_ctl: %s", strerror(errno));
fail:
    if (f) {
        if (f->lfd >= 0) close(f->lfd);
        if (f->ep >= 0) close(f->ep);
        if (f->wake >= 0) close(f->wake);
        if (f->spare >= 0) close(f->spare);
        if (sync_ok) {
            pthread_cond_destroy(&f->cond);
            pthread_mutex_destroy(&f->mu);
        }
        peers_free(f->peers);
        free(f->buf);
        free(f);
    }
    return -1;
}

int front_port(const front *f) { return f->port; }

unsigned front_pending(const front *f) { return atomic_load(&((front *)f)->npending); }

static void front_poke(front *f) {
    uint64_t one = 1;
    /* Fails only with EAGAIN when the counter is about to overflow, which
     * means a wake-up is already waiting. */
    if (write(f->wake, &one, sizeof one) < 0) { /* nothing to do */ }
}

void front_stop_listening(front *f) {
    int orphaned;

    if (!f) return;
    if (pthread_equal(pthread_self(), f->thread)) { /* from a callback */
        if (f->lfd >= 0) front_close_listener(f);
        return;
    }
    pthread_mutex_lock(&f->mu);
    if (!f->unlistened && !f->exited) {
        f->want_unlisten = 1;
        front_poke(f);
        while (!f->unlistened && !f->exited) pthread_cond_wait(&f->cond, &f->mu);
    }
    orphaned = !f->unlistened && f->exited;
    pthread_mutex_unlock(&f->mu);
    /* The thread is gone (epoll broke): nothing else touches the listener. */
    if (orphaned) front_close_listener(f);
}

void front_stop(front *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->want_stop = 1;
    pthread_mutex_unlock(&f->mu);
    front_poke(f);
    pthread_join(f->thread, NULL);

    /* Drained first, so that the peers see an orderly close, not a reset. */
    while (f->first) {
        front_conn *c = f->first;
        front_unlink(f, c);
        front_reject(f, c->fd, NULL, 0);
        free(c);
    }
    while (f->lfirst) front_linger_end(f, f->lfirst);
    front_free_dead(f);
    peers_free(f->peers);
    if (f->lfd >= 0) close(f->lfd);
    close(f->ep);
    close(f->wake);
    if (f->spare >= 0) close(f->spare);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    free(f->buf);
    free(f);
}
