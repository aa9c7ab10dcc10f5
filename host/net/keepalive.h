/*
 * Head deadlines on kept-alive HTTP connections, and room for new ones.
 *
 * The front (front.h) sees only the first request head of a connection;
 * libmicrohttpd reads the heads of later requests on a kept-alive
 * connection itself, and its only timeout is an idle one that every byte
 * resets: a client that sends one request, then the next head a byte at a
 * time, would hold the connection for ever. This module gives those heads
 * the front's rule: once the first byte of a next head has arrived, the
 * whole head must follow within [server] header_timeout, however steadily
 * bytes trickle in, or the connection is closed (the client sees it end;
 * there is no answer, as in nginx). A connection waiting for a next request
 * without sending anything is left to libmicrohttpd's idle timeout.
 *
 * When libmicrohttpd holds nearly as many connections as it may
 * (KEEPALIVE_RESERVE short of the limit), the connection idle longest is
 * closed for each new one, so that kept-alive connections never make it
 * refuse a new request (a liveness probe).
 *
 * The first byte of a next head is seen through the kernel's TCP_INFO
 * (time of the last data received), sampled every header_timeout / 4 (at
 * most every 250 ms, at least every 20 ms): a head is given up to that
 * much longer than header_timeout. Connections are closed with
 * shutdown(2), which libmicrohttpd sees as the peer closing; it never
 * races with libmicrohttpd closing the descriptor, as that happens only
 * after its "connection closed" notification, which waits for this
 * module's lock.
 *
 * Thread safety: the notification functions may be called from any
 * libmicrohttpd thread.
 */
#ifndef VOXRAY_KEEPALIVE_H
#define VOXRAY_KEEPALIVE_H

#include <microhttpd.h>

#define KEEPALIVE_RESERVE 64

/* Start watching. header_timeout_ms: as [server] header_timeout;
 * max_conns: libmicrohttpd's MHD_OPTION_CONNECTION_LIMIT; on_timeout (may
 * be NULL) is called, on the watcher's thread, for each connection closed
 * for a late head. Returns 0, or -1 when the thread cannot start. */
int keepalive_start(long long header_timeout_ms, unsigned max_conns, void (*on_timeout)(void));
/* Stop the watcher thread. Connections still known are forgotten when
 * libmicrohttpd reports them closed (stop it after this). */
void keepalive_stop(void);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls unused). */
void keepalive_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
/* A request's head is complete (the access handler's first call). */
void keepalive_request_started(struct MHD_Connection *c);
/* A request ended (MHD_OPTION_NOTIFY_COMPLETED): the connection now waits
 * for its next head. */
void keepalive_request_done(struct MHD_Connection *c);
/* Requests started on c so far, the current one included (0: unknown). */
unsigned keepalive_requests(struct MHD_Connection *c);

/* Connections known right now, and of them those waiting for a next head
 * (tests, logs). */
void keepalive_counts(unsigned *conns, unsigned *idle);

#endif
