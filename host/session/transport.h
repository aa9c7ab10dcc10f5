/*
 * What a session needs from the connection that carries it, whatever that
 * is (a WebSocket, a WebRTC data channel with its audio tracks): the
 * session code knows these operations and nothing of the transport behind
 * them. A transport fills a transport_ops table once and hands the session
 * its connection as an opaque pointer.
 *
 * Every operation may be called from any thread and must not block: it
 * queues and wakes the transport's own thread.
 */
#ifndef VOXRAY_TRANSPORT_H
#define VOXRAY_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

/* Close codes the session uses, in WebSocket numbering (RFC 6455); a
 * transport without close codes maps them to its own way of hanging up. */
#define TRANSPORT_CLOSE_NORMAL 1000
#define TRANSPORT_CLOSE_GOING_AWAY 1001
#define TRANSPORT_CLOSE_POLICY 1008
#define TRANSPORT_CLOSE_TRY_AGAIN 1013

typedef struct transport_ops {
    const char *name; /* "websocket", "webrtc": for logs and labels */
    /* Queue one server event (takes ownership of the malloc'd NUL-
     * terminated JSON text). 0, or -1 when the connection is closing (the
     * text is freed). */
    int (*send_event)(void *conn, char *json);
    /* Close after the queued events, with a close code above and a reason. */
    void (*close)(void *conn, int code, const char *reason);
    /* Input backpressure: the session reports every message it was handed
     * once it dealt with it (len bytes), and asks the transport to stop
     * reading for ms when the client's audio runs too far ahead of real
     * time. */
    void (*input_done)(void *conn, size_t len);
    void (*input_hold)(void *conn, uint32_t ms);
    /* The session holds a reference on the connection while it lives. */
    void (*ref)(void *conn);
    void (*unref)(void *conn);
    /* Optional (NULL: reply audio goes out as response.output_audio.delta
     * events). A transport with its own audio track takes the reply audio
     * here: n mono samples at rate, released by the session at real time
     * plus [session] audio_lead; the transport plays them out at the pace
     * of its media clock. response_id names the response they belong to. */
    void (*send_audio)(void *conn, const int16_t *pcm, size_t n, int rate, const char *response_id);
    /* Optional: drop the reply audio queued and not yet played (a barge-in,
     * a cancelled response, the client's output_audio_buffer.clear). The
     * transport reports it with output_audio_buffer.cleared when audio was
     * queued or playing, and always when report is set (the client asked). */
    void (*clear_audio)(void *conn, int report);
} transport_ops;

#endif
