/*
 * A realtime session: one client speaking the OpenAI Realtime protocol,
 * its conversation, and the STT -> LLM -> TTS pipeline serving it. The
 * connection that carries it (WebSocket, WebRTC) is a transport_ops table
 * and an opaque pointer: nothing here knows which.
 *
 * Each session runs on its own strand: every client message, plugin event
 * and timer becomes a task on it, so session state needs no locks and the
 * event-loop threads never wait for it.
 */
#ifndef VOXRAY_SESSION_H
#define VOXRAY_SESSION_H

#include <stddef.h>

#include "app.h"
#include "session/transport.h"

typedef struct session session;
typedef struct metrics_registry metrics_registry;

/* Register the session metric families. */
int session_metrics_init(metrics_registry *reg, const settings *s);

/* Create a session for a fresh connection (the transport's thread): sends
 * session.created. With resume_id, the session's state is first loaded from
 * the session store (an `error` event session_not_found if it is not there,
 * and a fresh session). Holds a reference on conn (tp->ref) until it is freed. NULL on OOM. */
session *session_new(app *a, const transport_ops *tp, void *conn, int beta, const char *resume_id);
/* A complete text message (takes ownership of the malloc'd text). */
void session_on_message(session *s, char *text, size_t len);
/* Audio from the transport's own audio track (WebRTC): n mono samples at
 * rate, copied. The same input path as input_audio_buffer.append (VAD,
 * turn detection, STT), resampled to the session's input rate if needed.
 * Any thread. */
void session_on_audio(session *s, const int16_t *pcm, size_t n, int rate);
/* A binary message: answered with an error event. */
void session_on_binary(session *s);
/* The connection is going (any thread): client messages still queued for
 * the session are dropped unread from now on. */
void session_abandon(session *s);
/* The connection is gone (the transport's thread). The session winds down: plugin calls
 * are cancelled, metrics recorded; the caller's reference is dropped. */
void session_on_closed(session *s);

/* Sessions alive right now. */
int session_count(void);

/* A reference that keeps a session's memory (not its connection) alive. */
void session_ref(session *s);
void session_unref(session *s);

/*
 * Control connections: a server attached to a live call (GET
 * /v1/realtime?call_id=, the API's "sideband" connection to a WebRTC call)
 * gets every server event the session sends, and its client events are the
 * session's own, as if the call's client had sent them; the call keeps its
 * media. At most SESSION_MAX_CONTROL at once.
 *
 * session_attach (any thread): the session takes a reference on conn
 * (tp->ref) and sends it a session.created describing the session as it
 * is; when the session ends it closes conn (tp->close) and lets it go. A
 * session that has ended or has no room closes conn at once.
 * session_detach (any thread): conn is gone; the session lets it go.
 * session_on_control_message: a client event from conn; the session reports
 * it done to conn (tp->input_done).
 */
#define SESSION_MAX_CONTROL 4
void session_attach(session *s, const transport_ops *tp, void *conn);
void session_detach(session *s, void *conn);
void session_on_control_message(session *s, const transport_ops *tp, void *conn, char *text, size_t len);
/* An event the transport sent its client itself (WebRTC's
 * output_audio_buffer.*): the control connections get a copy (any thread;
 * json is copied). */
void session_mirror(session *s, const char *json);

#endif
