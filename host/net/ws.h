/*
 * The WebSocket server for GET /v1/realtime (libwebsockets).
 *
 * libwebsockets has no listening socket of its own: the front hands it
 * connections whose request head asks for a WebSocket upgrade. The front
 * thread only peeks at the head and answers by itself, with an OpenAI-shaped
 * JSON error, what must not become a session, in this order: 503 while
 * starting or draining, 403 for an Origin outside [server] allowed_origins,
 * 429 over a per-client limit (client_limits.h), 503 at max_sessions, 400
 * when the offered subprotocols hold none of ours, 401 without a valid API
 * key or client secret (auth.h; the secret is used up only here, last).
 * It then queues the socket; the lws service thread adopts it in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED. A client secret's session configuration
 * reaches the session as its first message. lws calls are not
 * thread-safe, so every other thread talks to a connection only through
 * ws_send()/ws_close(), which queue and wake the lws thread.
 *
 * Limits on the lws thread: a message over [session] max_message_size closes
 * the socket with 1009, more than max_messages_per_second with 1008, a
 * client that lets more than max_output_buffer bytes pile up with 1008.
 * A client that sends faster than its session works is not closed but slowed
 * down: reading pauses (see ws_input_done). A server-side close sends the
 * close frame, half-closes and drains the client's input before the socket
 * is closed, so that the client reads the close code.
 */
#ifndef VOXRAY_WS_H
#define VOXRAY_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "app.h"

typedef struct ws_conn ws_conn;

int ws_start(app *a, char *err, size_t errlen);
/* Front callback for upgrade heads. Always takes fd. */
int ws_upgrade(void *user, int fd, const struct sockaddr *addr, socklen_t len);
/* Close every connection with 1001 (going away) and stop the lws thread. */
void ws_stop(void);
/* Close every live session with `code` (drain deadline). */
void ws_close_all(int code, const char *reason);

/* Queue a text message (takes ownership of the malloc'd NUL-terminated
 * text). Returns 0, or -1 when the connection is closing (text freed). */
int ws_send(ws_conn *c, char *text);
/* Input backpressure (any thread). The session calls ws_input_done() for
 * every message it was handed once it has dealt with it: while more than
 * [session] max_input_buffer bytes wait, the socket is not read (until half
 * of that is left). ws_input_hold() stops reading for ms (audio far ahead
 * of real time). */
void ws_input_done(ws_conn *c, size_t len);
void ws_input_hold(ws_conn *c, uint32_t ms);
/* Close with a WebSocket close code after the queued messages. */
void ws_close(ws_conn *c, int code, const char *reason);
void ws_conn_ref(ws_conn *c);
void ws_conn_unref(ws_conn *c);

#endif
