/*
 * WebSocket client connections for voxray-loadtest, thousands of them on
 * one thread and one epoll descriptor.
 *
 * The libraries do the protocol work: OpenSSL the TLS (wss://), http_parser
 * reads the upgrade response, wslay's frame layer writes and reads frames.
 * What this file adds is what a load generator needs from them:
 *
 * - Output is framed into a buffer of the connection and written by
 *   lt_ws_flush() in one system call, however many messages are queued; a
 *   frame is never split by another, and what the socket did not take is
 *   written when it can be.
 * - Frame masks come from a pool refilled 4 KiB at a time from OpenSSL's
 *   random generator, not from a read of /dev/urandom per frame.
 * - Input is read 64 KiB at a time into one buffer shared by every
 *   connection and handed to the caller a frame piece at a time, without
 *   copies or checks per byte (no UTF-8 validation: the caller reads a
 *   few bytes of most messages and skips the rest).
 *
 * Callbacks run only from lt_ws_wait(), never from inside another lt_ws
 * call: a connection that fails while the caller sends is reported from
 * the next lt_ws_wait(). After on_fail or on_closed the connection is
 * freed and its pointer must not be used.
 *
 * Not thread-safe: one thread makes every call.
 */
#ifndef VOXRAY_TOOLS_LT_WS_H
#define VOXRAY_TOOLS_LT_WS_H

#include <stddef.h>

typedef struct lt_ws_env lt_ws_env;
typedef struct lt_ws lt_ws;

typedef struct lt_ws_handlers {
    /* The server accepted the upgrade: messages may be sent. */
    void (*on_open)(lt_ws *c, void *user);
    /* The connection failed before on_open. http_status is the status of
     * a refused upgrade (0 when none came); why says what happened. */
    void (*on_fail)(lt_ws *c, void *user, unsigned http_status, const char *why);
    /* A piece of a data message: first and final mark its first and last
     * piece (a message may come in one piece with both set, or in many;
     * a piece may be empty). p is valid during the call only. */
    void (*on_data)(lt_ws *c, void *user, const char *p, size_t n, int first, int final,
                    int binary);
    /* Everything lt_ws_flush() had left is written. */
    void (*on_writable)(lt_ws *c, void *user);
    /* After on_open: the connection is gone. code is the close code the
     * server sent (0: none, the connection just ended). */
    void (*on_closed)(lt_ws *c, void *user, int code);
} lt_ws_handlers;

/* The environment for connections to url (ws://HOST[:PORT]/PATH or
 * wss://...). insecure accepts any server certificate; authorization, when
 * not NULL, is sent as the Authorization header ("Bearer KEY"). Resolves
 * the host now. Returns NULL with err filled (cannot resolve, no memory,
 * no TLS context). The handlers are copied. */
lt_ws_env *lt_ws_env_new(const char *url, int insecure, const char *authorization,
                         const lt_ws_handlers *h, char *err, size_t errlen);

/* Start a connection; user is handed to every callback. Returns NULL with
 * err filled when it cannot even start (no descriptor, no memory): no
 * callback follows. Otherwise on_open or on_fail follows. */
lt_ws *lt_ws_connect(lt_ws_env *e, void *user, char *err, size_t errlen);

/* Frame a text message into c's output buffer (no I/O; lt_ws_flush()
 * writes it). Returns 0, or -1 when c is not open or out of memory. */
int lt_ws_send_text(lt_ws *c, const void *p, size_t n);

/* Write c's output buffer. Returns 0 when all of it was written, 1 when
 * some waits for the socket (on_writable follows once it is written), -1
 * when the connection failed (on_closed follows). */
int lt_ws_flush(lt_ws *c);

/* Bytes in c's output buffer not written yet. */
size_t lt_ws_pending(const lt_ws *c);

/* Start the closing handshake with code and reason (at most 123 bytes):
 * the connection ends when the server answers or closes, on_closed
 * follows. Before on_open it is lt_ws_abort(). */
void lt_ws_close(lt_ws *c, int code, const char *reason);

/* Drop c now, without a closing handshake: on_fail (before on_open, with
 * why) or on_closed (code 0) follows. */
void lt_ws_abort(lt_ws *c, const char *why);

/* Wait up to timeout_ms (-1: no limit) for socket events and handle them,
 * callbacks included. Returns 0, or -1 when interrupted by a signal. */
int lt_ws_wait(lt_ws_env *e, int timeout_ms);

/* Close every connection without callbacks and free e. NULL is ignored. */
void lt_ws_env_free(lt_ws_env *e);

#endif
