/*
 * The single listening port. One thread accepts connections, peeks
 * (recv MSG_PEEK, nothing consumed) at the request head until "\r\n\r\n",
 * and hands the socket, with all its bytes still unread, to the HTTP server
 * or, for a WebSocket upgrade, to the WebSocket server.
 *
 * A head must arrive within head_timeout_ms of accept (a total deadline:
 * bytes trickling in do not extend it) and fit in max_head bytes. At most
 * max_pending connections wait for their head, and a new connection is
 * always admitted: the one waiting longest is refused to make room. One
 * client address (IPv4 address or IPv6 /64) may keep at most
 * max_pending_per_ip heads waiting longer than a grace period (1 s, or half
 * head_timeout_ms if shorter); beyond that its oldest is refused, so that
 * many connections opened at once, their heads on the way, all pass. A refused connection is answered by
 * the front itself (400, 408, 429, 431 or 503, "Connection: close"), its
 * write side is shut, and it is read and discarded until the peer closes or
 * two seconds pass (a lingering close, so that a client still sending reads
 * the answer rather than a reset); the drop is reported through the
 * `dropped` callback.
 * A client starting a TLS handshake on this plain port (an SDK dialing
 * wss:// or https://) is closed as soon as its ClientHello shows, without
 * waiting for the head timeout.
 */
#ifndef VOXRAY_FRONT_H
#define VOXRAY_FRONT_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct front front;

typedef enum front_drop {
    FRONT_DROP_TIMEOUT = 1, /* head incomplete at the deadline: 408 sent */
    FRONT_DROP_TOO_LARGE,   /* no end of head within max_head: 431 sent */
    FRONT_DROP_OVERLOAD,    /* the oldest waiting head when max_pending were
                             * waiting and another came, or a connection the
                             * front had no memory or descriptor for: 503 */
    FRONT_DROP_CLOSED,      /* peer closed or reset before the head ended */
    FRONT_DROP_TLS,         /* a TLS ClientHello instead of a head: closed at
                             * once without an answer, one log line */
    FRONT_DROP_BAD_REQUEST, /* a head no careful server may pass on: bare LF
                             * line ends, or Content-Length together with
                             * Transfer-Encoding (request smuggling): 400 sent */
    FRONT_DROP_PER_IP       /* the oldest waiting head of an address with
                             * more than max_pending_per_ip waiting past the
                             * grace period: 429 sent */
} front_drop;

typedef struct front_callbacks {
    void *user;
    /* Take ownership of fd (non-blocking, O_CLOEXEC, no byte consumed: the
     * taker reads the whole request itself; both libmicrohttpd and
     * libwebsockets work on non-blocking sockets). addr is the peer, valid
     * only during the call; an IPv4 peer of a dual-stack listener ("[::]:port"
     * or ":port") comes as AF_INET, not as ::ffff:a.b.c.d. Return 0, or -1 if
     * fd could not be taken (the front then closes it). Called on the front
     * thread; must not block and must not call front_stop(). */
    int (*http)(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen);
    /* Same for a head carrying "Upgrade: websocket" (case-insensitive, and
     * "Connection: upgrade"). NULL: upgrades go to http too. */
    int (*upgrade)(void *user, int fd, const struct sockaddr *addr, socklen_t addrlen);
    /* A connection dropped by the front. method and path are what could be
     * parsed from the partial head ("" when nothing; the method only once a
     * space ends it, the path cut at 255 bytes). May be NULL. */
    void (*dropped)(void *user, front_drop why, const char *method, const char *path);
    /* Trouble the front handles by itself but an operator should see: accept
     * failing for lack of descriptors or memory (the front then sheds the
     * connection with a 503 or pauses accepting for 100 ms, never spinning),
     * a TLS handshake on this plain port. One line without a newline, at
     * most one a second (later ones say how many were suppressed). May be
     * NULL. */
    void (*log)(void *user, const char *line);
    /* Whether a client address is left out of max_pending_per_ip (return
     * non-zero), e.g. a load balancer all clients come through. Called on
     * the front thread for every new connection when max_pending_per_ip is
     * set; must be quick and must not block. May be NULL: none is. */
    int (*exempt)(void *user, const struct sockaddr *addr, socklen_t addrlen);
} front_callbacks;

typedef struct front_options {
    /* "0.0.0.0:8080", "[::1]:0", "localhost:8080", ":8080" (or "*:8080": all
     * interfaces, IPv6 and IPv4 on one dual-stack socket where IPv6 exists).
     * Port 0: the kernel picks one, see front_port(). */
    const char *listen;
    int backlog;               /* listen(2) backlog; <= 0: 511 */
    unsigned head_timeout_ms;  /* 0: 10000 */
    unsigned max_pending;      /* 0: 1024 */
    size_t max_head;           /* 0: 8192 */
    unsigned max_pending_per_ip; /* 0: no cap per client address */
} front_options;

/* Bind, listen and start the front thread. On failure returns -1 and writes
 * one line into err, e.g. "listen 0.0.0.0:8080: Address already in use". */
int front_start(const front_options *opt, const front_callbacks *cb, front **out,
                char *err, size_t errlen);
/* The bound port (useful with port 0). */
int front_port(const front *f);
/* Number of connections waiting for their head right now. */
unsigned front_pending(const front *f);
/* Stop accepting: closes the listening socket (so the port is free for a new
 * process) but leaves already handed-over connections alone; connections
 * still waiting for their head are dispatched or dropped as usual. The port
 * is free when this returns. Idempotent; callable from any thread, callbacks
 * included. */
void front_stop_listening(front *f);
/* Stop the thread, close the listener, every pending socket (without the
 * dropped callback) and every lingering one, free. Not from a callback.
 * NULL is a no-op. */
void front_stop(front *f);

#endif
