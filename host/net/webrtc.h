/*
 * WebRTC calls, as the OpenAI Realtime API takes them: the client POSTs an
 * SDP offer to /v1/realtime/calls and gets the SDP answer; client and
 * server events then flow as JSON over the data channel "oai-events" (the
 * same session protocol as the WebSocket) and audio as Opus over RTP.
 *
 * The WebRTC stack is GStreamer's webrtcbin (ICE by libnice, DTLS-SRTP,
 * SCTP data channels), one pipeline per call, driven from one thread
 * running a GLib main loop ("rtc"). A call is a transport of its session
 * (session/transport.h): reply audio is paced by the media clock on its way
 * to the Opus encoder, and a barge-in drops what is queued.
 */
#ifndef VOXRAY_WEBRTC_H
#define VOXRAY_WEBRTC_H

#include <stddef.h>

#include "app.h"
#include "net/client_limits.h"
#include "session/session.h"

typedef struct metrics_registry metrics_registry;

int webrtc_metrics_init(metrics_registry *reg);

/* Start the rtc thread (and warm the WebRTC stack up with one throw-away
 * pipeline) when [webrtc] enabled. 0, or -1 with a reason in err. */
int webrtc_start(app *a, char *err, size_t errlen);
/* Hang up every call and stop the thread. */
void webrtc_stop(void);
/* Whether calls are served ([webrtc] enabled and started). */
int webrtc_enabled(void);

/* The outcome of an offer. */
typedef struct webrtc_answer {
    int status;        /* 201, or the HTTP status of the refusal */
    char *sdp;         /* 201: the SDP answer (malloc'd; the caller frees) */
    char call_id[48];  /* 201: the call's id, for Location */
    const char *type;  /* refusal: OpenAI error type and code */
    const char *code;
    char message[256]; /* refusal: for the client */
} webrtc_answer;

/* Take an offer (any thread but rtc; blocks until the answer is ready, a
 * few ms to the ICE gathering time). update is a session.update event text
 * applied first (NULL: none; copied). resume_id names an earlier session to
 * resume (a client reconnecting after its call dropped; counted in
 * webrtc_reconnection_attempts_total), NULL for a new one. client holds a
 * per-client session slot (limits_admit) that the call gives back when it
 * ends, whatever the outcome. beta: the session speaks the beta API's event
 * names (an offer to the beta endpoint, POST /v1/realtime). */
void webrtc_offer(const char *sdp, size_t len, const char *update, const char *resume_id, int beta,
                  const limits_client *client, webrtc_answer *out);

/* Hang up a call (DELETE /v1/realtime/calls/{id}). 0, or -1 if there is
 * no such call. */
int webrtc_hangup(const char *call_id);

/* The session of a live call, with a reference the caller drops
 * (session_unref); NULL when there is no such call (*exists 0) or its
 * session has not started yet, the peer not connected (*exists 1). exists
 * may be NULL. */
session *webrtc_call_session(const char *call_id, int *exists);

/* Peer connections alive right now. */
int webrtc_active(void);

#endif
