/*
 * WebRTC calls on GStreamer webrtcbin (see webrtc.h).
 *
 * One pipeline per call:
 *
 *   appsrc (reply PCM) ! audioconvert ! audioresample ! 24 kHz ! opusenc ! rtpopuspay ! webrtcbin
 *   webrtcbin src pad (the client's Opus RTP) ! rtpopusdepay ! opusdec (24 kHz)
 *       ! audioconvert ! audioresample ! S16LE mono ! appsink -> session_on_audio
 *
 * Opus encodes and decodes at 24 kHz itself (the RTP clock stays at 48 kHz),
 * the session's rate, so the resamplers pass the audio through; the
 * encoder runs at complexity 5, which costs about half the CPU of the
 * default 10 on speech.
 *
 * Threads. The "rtc" thread runs a GLib main loop: call set-up and
 * tear-down, timers (the watchdog, the 10 ms output tick), the data
 * channel's outgoing events. webrtcbin's own threads (ICE, DTLS, SCTP,
 * streaming) only forward to it, except for the hot paths: decoded audio
 * goes from the appsink's streaming thread to the session, client events
 * from the SCTP thread to the session.
 *
 * Output pacing. The session releases reply audio at real time plus its
 * audio lead (send_audio); the call queues it and the tick pushes 20 ms
 * frames into the appsrc as the media clock reaches them, with silence
 * between replies so the RTP clock runs on. Nothing beyond a frame or two
 * waits past the queue, so a barge-in (clear_audio) that empties the queue
 * stops the voice at once.
 *
 * A call's life: created by an offer (peer count +1), connected when ICE
 * connects, the session made when "oai-events" opens; it ends on DELETE,
 * the peer closing its connection (DTLS close_notify), the data channel or
 * ICE closing or failing, the watchdog (no ICE in
 * connect_timeout, no RTP for rtp_timeout), the session closing it, or
 * shutdown.
 */
#include "config.h"

#include "net/webrtc.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "metrics.h"
#include "net/sdp_check.h"
#include "session/persist.h"
#include "session/protocol.h"
#include "session/session.h"

#define FRAME_MS 20
#define TICK_MS 10
#define LEAD_FRAMES 2          /* frames pushed ahead of the media clock */
#define TRACK_RATE 24000       /* decoded client audio handed to the session */
#define ENCODE_RATE 24000      /* reply audio into opusenc (the RTP clock stays 48 kHz) */
#define GATHER_WAIT_MS 3000    /* longest wait for ICE gathering before answering */
#define ANSWER_WAIT_MS 10000   /* longest an offer waits for its answer */
#define QUEUE_MAX_S 60         /* reply audio queued at most */
#define WATCHDOG_MS 250
#define TEARDOWN_DELAY_MS 300  /* a call we hang up keeps its pipeline this long */
/* A call we hang up right after sending events closes its data channel
 * only this long after the last one: closing releases the channel's SCTP
 * stream, and what still waits in the encoder's queue for that stream
 * (under load, the last events: the error saying why) would be dropped. */
#define DC_LINGER_MS 250

typedef struct evmsg {
    struct evmsg *next;
    size_t len;
    char text[];
} evmsg;

typedef struct rtc_call rtc_call;
struct rtc_call {
    atomic_int refs;
    char id[48];
    rtc_call *next_all;          /* g_calls, under g_lock */
    rtc_call *next_grace;        /* g_grace (rtc thread) */
    gint64 last_send_us;         /* the last event handed to the data channel (rtc thread) */
    limits_client client;
    char *update;                /* session.update to apply first, or NULL */
    char resume[72];             /* session id to resume, "" for a new session */
    int beta;                    /* the session speaks the beta event names */
    int opus_pt;
    char *offer;                 /* the offer's text (until set-up) */

    /* rtc thread */
    GstElement *pipe, *wb, *src;
    GstWebRTCDataChannel *dc;
    GObject *dtls;               /* the (bundled) DTLS transport, watched for the peer's close */
    int connected, ended, dc_open, answered;
    gint64 t_created_us, t_connected_us, t_answered_us;
    GSource *tick, *watchdog, *gather_timer;
    _Atomic(session *) sess;
    atomic_llong t_last_rtp_us;

    /* answer hand-over to the offering thread */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answer_done;
    int answer_status;
    char *answer;
    char answer_err[200];
    GPtrArray *cands;            /* "mline\tcandidate" strings, under lock */

    /* outgoing events and reply audio, under lock */
    evmsg *ev_head, *ev_tail;
    int ev_scheduled;
    int16_t *q;
    size_t q_len, q_cap;
    int q_rate, src_rate;
    char resp_id[48];
    int playing, cleared;
    gint64 out_start_us;
    guint64 frames;
    int close_requested;
    char close_reason[96];

    /* data channel input (SCTP thread) */
    gint64 win_start_us;
    int win_count;
};

static app *g_app;
static GMainContext *g_ctx;
static GMainLoop *g_loop;
static pthread_t g_thread;
static int g_started;
static int g_stopping; /* rtc thread: shutting down, no deferred work */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static rtc_call *g_calls;
/* rtc thread: ended calls whose pipeline waits out TEARDOWN_DELAY_MS (each
 * with a reference); shutdown tears them down at once. */
static rtc_call *g_grace;
static atomic_int g_active, g_without_session;

static metrics_family *f_total, *f_failures;
static metrics_series *s_active, *s_sent, *s_received, *s_reconnect;
static metrics_series *s_connected, *s_failed, *s_closed;

int webrtc_metrics_init(metrics_registry *reg)
{
    static const char *const l_state[] = {"state"};
    static const char *const l_reason[] = {"reason"};
    f_total = metrics_counter_family(reg, "webrtc_peer_connections_total",
                                     "Total peer connections by state (connected, failed, closed).", 1, l_state);
    metrics_family *f_active = metrics_gauge_family(reg, "webrtc_peer_connections_active",
                                                    "Current active peer connections.", 0, NULL);
    metrics_family *f_sent = metrics_counter_family(reg, "webrtc_bytes_sent_total",
                                                    "Total bytes sent over WebRTC (RTP and data channel payloads).", 0, NULL);
    metrics_family *f_recv = metrics_counter_family(reg, "webrtc_bytes_received_total",
                                                    "Total bytes received over WebRTC (RTP and data channel payloads).", 0, NULL);
    f_failures = metrics_counter_family(reg, "webrtc_connection_failures_total",
                                        "Connection failures by reason (ice_timeout, ice_failed, dtls_failed, rtp_timeout, setup_failed).",
                                        1, l_reason);
    metrics_family *f_reconn = metrics_counter_family(reg, "webrtc_reconnection_attempts_total",
                                                      "Reconnection attempts: offers that resume an earlier session (POST /v1/realtime/calls?session_id=, a client reconnecting after its call dropped), and ICE connectivity lost and checked again on a live call.",
                                                      0, NULL);
    if (!f_total || !f_active || !f_sent || !f_recv || !f_failures || !f_reconn) return -1;
    const char *c[] = {"connected"}, *fl[] = {"failed"}, *cl[] = {"closed"};
    s_connected = metrics_series_get(f_total, c);
    s_failed = metrics_series_get(f_total, fl);
    s_closed = metrics_series_get(f_total, cl);
    s_active = metrics_series_get(f_active, NULL);
    s_sent = metrics_series_get(f_sent, NULL);
    s_received = metrics_series_get(f_recv, NULL);
    s_reconnect = metrics_series_get(f_reconn, NULL);
    if (!s_connected || !s_failed || !s_closed || !s_active || !s_sent || !s_received || !s_reconnect) return -1;
    return 0;
}

static void count_failure(const char *reason)
{
    const char *lv[] = {reason};
    metrics_series *s = metrics_series_get(f_failures, lv);
    if (s) {
        metrics_counter_inc(s);
        metrics_series_release(s);
    }
}

/* ------------------------------------------------------------ references */

static void call_ref(rtc_call *c) { atomic_fetch_add(&c->refs, 1); }

static void call_unref(rtc_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    evmsg *m = c->ev_head;
    while (m) {
        evmsg *n = m->next;
        free(m);
        m = n;
    }
    if (c->cands) g_ptr_array_free(c->cands, TRUE);
    free(c->q);
    free(c->answer);
    free(c->update);
    free(c->offer);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

static void unref_notify(gpointer p) { call_unref(p); }

/* Run fn(c) on the rtc thread, with a reference held for it. */
static void on_rtc(GSourceFunc fn, rtc_call *c)
{
    GSource *src = g_idle_source_new();
    call_ref(c);
    g_source_set_callback(src, fn, c, unref_notify);
    g_source_attach(src, g_ctx);
    g_source_unref(src);
}

static GSource *rtc_timer(guint ms, GSourceFunc fn, rtc_call *c)
{
    GSource *src = g_timeout_source_new(ms);
    call_ref(c);
    g_source_set_callback(src, fn, c, unref_notify);
    g_source_attach(src, g_ctx);
    return src;
}

static void drop_timer(GSource **s)
{
    if (*s) {
        g_source_destroy(*s);
        g_source_unref(*s);
        *s = NULL;
    }
}

/* ------------------------------------------------------------ events out */

static gboolean flush_events(gpointer p);

/* Queue a server event for the data channel (any thread). */
static int queue_event(rtc_call *c, char *json)
{
    size_t n = strlen(json);
    evmsg *m = malloc(sizeof *m + n + 1);
    if (m == NULL) {
        free(json);
        return -1;
    }
    m->next = NULL;
    m->len = n;
    memcpy(m->text, json, n + 1);
    free(json);
    int schedule = 0;
    pthread_mutex_lock(&c->lock);
    if (c->close_requested && c->ended) {
        pthread_mutex_unlock(&c->lock);
        free(m);
        return -1;
    }
    if (c->ev_tail) c->ev_tail->next = m;
    else c->ev_head = m;
    c->ev_tail = m;
    if (!c->ev_scheduled) {
        c->ev_scheduled = 1;
        schedule = 1;
    }
    pthread_mutex_unlock(&c->lock);
    if (schedule) on_rtc(flush_events, c);
    return 0;
}

/* rtc thread: send what is queued, if the channel is open. */
static gboolean flush_events(gpointer p)
{
    rtc_call *c = p;
    pthread_mutex_lock(&c->lock);
    c->ev_scheduled = 0;
    if (!c->dc_open || c->ended) {
        pthread_mutex_unlock(&c->lock);
        return G_SOURCE_REMOVE;
    }
    evmsg *m = c->ev_head;
    c->ev_head = c->ev_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (m) {
        evmsg *n = m->next;
        GError *err = NULL;
        if (gst_webrtc_data_channel_send_string_full(c->dc, m->text, &err)) {
            metrics_counter_add(s_sent, (double)m->len);
            c->last_send_us = g_get_monotonic_time();
        } else {
            log_warn("webrtc: an event could not be sent on oai-events", "call_id", c->id, "detail",
                     err ? err->message : "?");
            g_clear_error(&err);
        }
        free(m);
        m = n;
    }
    return G_SOURCE_REMOVE;
}

static char *buffer_event(const char *type, const char *response_id)
{
    char eid[40];
    proto_new_id("event_", eid, sizeof eid);
    json_t *o = json_pack("{s:s,s:s,s:s}", "type", type, "event_id", eid, "response_id", response_id);
    if (o == NULL) return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ------------------------------------------------------------ ending */

/* rtc thread: the pipeline goes. */
static void teardown(rtc_call *c)
{
    int graced = 0;
    for (rtc_call **pp = &g_grace; *pp; pp = &(*pp)->next_grace)
        if (*pp == c) {
            *pp = c->next_grace;
            c->next_grace = NULL;
            graced = 1;
            break;
        }
    if (c->pipe) {
        gst_element_set_state(c->pipe, GST_STATE_NULL);
        gst_object_unref(c->pipe);
        c->pipe = NULL;
        c->wb = c->src = NULL;
    }
    if (c->dc) {
        g_signal_handlers_disconnect_by_data(c->dc, c);
        g_object_unref(c->dc);
        c->dc = NULL;
    }
    if (c->dtls) {
        g_signal_handlers_disconnect_by_data(c->dtls, c);
        g_object_unref(c->dtls);
        c->dtls = NULL;
    }
    if (graced) call_unref(c); /* the grace list's reference */
}

static gboolean teardown_due(gpointer p)
{
    teardown(p);
    return G_SOURCE_REMOVE;
}

/* rtc thread: our side hangs up: the channel's close reaches the peer,
 * then the pipeline goes. */
static gboolean dc_close_due(gpointer p)
{
    rtc_call *c = p;
    if (c->dc) gst_webrtc_data_channel_close(c->dc);
    GSource *tm = rtc_timer(TEARDOWN_DELAY_MS, teardown_due, c);
    g_source_unref(tm);
    return G_SOURCE_REMOVE;
}

/* rtc thread: the call is over. state: "closed" or "failed" (with
 * reason). */
static void call_end(rtc_call *c, const char *state, const char *reason)
{
    if (c->ended) return;
    flush_events(c);
    pthread_mutex_lock(&c->lock);
    c->ended = 1;
    pthread_mutex_unlock(&c->lock);
    drop_timer(&c->tick);
    drop_timer(&c->watchdog);
    drop_timer(&c->gather_timer);
    pthread_mutex_lock(&g_lock); /* (webrtc_call_session) */
    session *s = atomic_exchange(&c->sess, NULL);
    pthread_mutex_unlock(&g_lock);
    if (s) {
        session_abandon(s);
        session_on_closed(s);
    } else {
        atomic_fetch_sub(&g_without_session, 1);
    }
    if (c->dtls) g_signal_handlers_disconnect_by_data(c->dtls, c);
    if (c->dc && c->dc_open && !g_stopping && strcmp(reason, "data_channel_closed") != 0 &&
        strcmp(reason, "peer_closed") != 0) {
        /* Our side hangs up: the last events, then the channel's close
         * reach the peer before the pipeline goes. */
        gint64 since_ms = (g_get_monotonic_time() - c->last_send_us) / 1000;
        call_ref(c);
        c->next_grace = g_grace;
        g_grace = c;
        if (c->last_send_us && since_ms < DC_LINGER_MS) {
            GSource *tm = rtc_timer((guint)(DC_LINGER_MS - since_ms), dc_close_due, c);
            g_source_unref(tm);
        } else {
            dc_close_due(c);
        }
    } else {
        teardown(c);
    }
    int failed = strcmp(state, "failed") == 0;
    metrics_counter_inc(failed ? s_failed : s_closed);
    if (failed) count_failure(reason);
    metrics_gauge_add(s_active, -1);
    atomic_fetch_sub(&g_active, 1);
    limits_release(&c->client);
    if (failed) log_warn("webrtc call failed", "call_id", c->id, "reason", reason);
    else log_info("webrtc call ended", "call_id", c->id, "reason", reason);
    pthread_mutex_lock(&g_lock);
    for (rtc_call **pp = &g_calls; *pp; pp = &(*pp)->next_all)
        if (*pp == c) {
            *pp = c->next_all;
            break;
        }
    pthread_mutex_unlock(&g_lock);
    /* An offer still waiting learns it failed. */
    pthread_mutex_lock(&c->lock);
    if (!c->answer_done) {
        c->answer_done = 1;
        c->answer_status = 500;
        if (!c->answer_err[0])
            snprintf(c->answer_err, sizeof c->answer_err, "the call ended before its answer was ready (%s)", reason);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
    call_unref(c); /* the list's reference */
}

static gboolean fail_requested(gpointer p)
{
    call_end(p, "failed", "setup_failed");
    return G_SOURCE_REMOVE;
}

static gboolean end_requested(gpointer p)
{
    rtc_call *c = p;
    char reason[96];
    pthread_mutex_lock(&c->lock);
    snprintf(reason, sizeof reason, "%s", c->close_reason[0] ? c->close_reason : "hangup");
    pthread_mutex_unlock(&c->lock);
    call_end(c, "closed", reason);
    return G_SOURCE_REMOVE;
}

/* Any thread: end the call on the rtc thread after the queued events. */
static void request_end(rtc_call *c, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    int first = !c->close_requested;
    c->close_requested = 1;
    if (first) snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    pthread_mutex_unlock(&c->lock);
    if (first) on_rtc(end_requested, c);
}

/* ------------------------------------------------------------ transport */

static int tp_send_event(void *conn, char *json) { return queue_event(conn, json); }

static void tp_close(void *conn, int code, const char *reason)
{
    (void)code;
    request_end(conn, reason && *reason ? reason : "closed by the session");
}

static void tp_input_done(void *conn, size_t len)
{
    (void)conn;
    (void)len;
}

static void tp_input_hold(void *conn, uint32_t ms)
{
    /* Track audio arrives at real time; nothing runs ahead to hold. */
    (void)conn;
    (void)ms;
}

static void tp_ref(void *conn) { call_ref(conn); }
static void tp_unref(void *conn) { call_unref(conn); }

static void tp_send_audio(void *conn, const int16_t *pcm, size_t n, int rate, const char *response_id)
{
    rtc_call *c = conn;
    pthread_mutex_lock(&c->lock);
    if (c->ended || rate <= 0) goto out;
    if (c->q_rate != rate) {
        c->q_len = 0; /* a new rate: what is queued was at the old one */
        c->q_rate = rate;
    }
    if (c->q_len + n > (size_t)rate * QUEUE_MAX_S) goto out;
    if (c->q_len + n > c->q_cap) {
        size_t cap = c->q_cap ? c->q_cap : (size_t)rate;
        while (cap < c->q_len + n) cap *= 2;
        int16_t *nq = realloc(c->q, cap * sizeof *nq);
        if (nq == NULL) goto out;
        c->q = nq;
        c->q_cap = cap;
    }
    memcpy(c->q + c->q_len, pcm, n * sizeof *pcm);
    c->q_len += n;
    if (response_id) snprintf(c->resp_id, sizeof c->resp_id, "%s", response_id);
out:
    pthread_mutex_unlock(&c->lock);
}

static void tp_clear_audio(void *conn, int report)
{
    rtc_call *c = conn;
    pthread_mutex_lock(&c->lock);
    if (report || c->q_len || c->playing) c->cleared = 1;
    c->q_len = 0;
    pthread_mutex_unlock(&c->lock);
}

static const transport_ops rtc_transport = {
    .name = "webrtc",
    .send_event = tp_send_event,
    .close = tp_close,
    .input_done = tp_input_done,
    .input_hold = tp_input_hold,
    .ref = tp_ref,
    .unref = tp_unref,
    .send_audio = tp_send_audio,
    .clear_audio = tp_clear_audio,
};

/* ------------------------------------------------------------ audio out */

static void set_src_caps(rtc_call *c, int rate)
{
    GstCaps *caps = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "layout", G_TYPE_STRING,
                                        "interleaved", "rate", G_TYPE_INT, rate, "channels", G_TYPE_INT, 1, NULL);
    g_object_set(c->src, "caps", caps, NULL);
    gst_caps_unref(caps);
    c->src_rate = rate;
}

/* rtc thread, every TICK_MS: push the frames the media clock has reached
 * (reply audio, or silence between replies). */
static gboolean tick(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->src == NULL) return G_SOURCE_CONTINUE;
    gint64 now = g_get_monotonic_time();
    if (c->out_start_us == 0) c->out_start_us = now;
    guint64 due = (guint64)((now - c->out_start_us) / (FRAME_MS * 1000)) + LEAD_FRAMES;
    while (c->frames < due) {
        char *started = NULL, *stopped = NULL, *cleared = NULL;
        pthread_mutex_lock(&c->lock);
        int rate = c->q_rate > 0 ? c->q_rate : c->src_rate;
        size_t fn = (size_t)rate * FRAME_MS / 1000;
        if (c->cleared) {
            c->cleared = 0;
            c->playing = 0;
            cleared = buffer_event("output_audio_buffer.cleared", c->resp_id);
        }
        if (c->q_len > 0 && !c->playing) {
            c->playing = 1;
            started = buffer_event("output_audio_buffer.started", c->resp_id);
        }
        GstBuffer *buf = gst_buffer_new_allocate(NULL, fn * 2, NULL);
        GstMapInfo mi;
        size_t take = 0;
        if (buf && gst_buffer_map(buf, &mi, GST_MAP_WRITE)) {
            take = c->q_len < fn ? c->q_len : fn;
            if (take > 0) memcpy(mi.data, c->q, take * 2); /* (c->q is NULL until audio came) */
            memset(mi.data + take * 2, 0, (fn - take) * 2);
            gst_buffer_unmap(buf, &mi);
            if (take > 0) memmove(c->q, c->q + take, (c->q_len - take) * 2);
            c->q_len -= take;
        }
        if (c->playing && c->q_len == 0) {
            c->playing = 0;
            stopped = buffer_event("output_audio_buffer.stopped", c->resp_id);
        }
        pthread_mutex_unlock(&c->lock);
        session *s = atomic_load(&c->sess);
        if (cleared && s) session_mirror(s, cleared);
        if (started && s) session_mirror(s, started);
        if (stopped && s) session_mirror(s, stopped);
        if (cleared) queue_event(c, cleared);
        if (started) queue_event(c, started);
        if (buf == NULL) break;
        if (rate != c->src_rate) set_src_caps(c, rate);
        GST_BUFFER_PTS(buf) = c->frames * FRAME_MS * GST_MSECOND;
        GST_BUFFER_DURATION(buf) = FRAME_MS * GST_MSECOND;
        gst_app_src_push_buffer(GST_APP_SRC(c->src), buf);
        c->frames++;
        if (stopped) queue_event(c, stopped);
    }
    return G_SOURCE_CONTINUE;
}

static GstPadProbeReturn count_sent(GstPad *pad, GstPadProbeInfo *info, gpointer p)
{
    (void)pad;
    (void)p;
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (b) metrics_counter_add(s_sent, (double)gst_buffer_get_size(b));
    return GST_PAD_PROBE_OK;
}

/* ------------------------------------------------------------ audio in */

static GstFlowReturn on_sample(GstAppSink *sink, gpointer p)
{
    rtc_call *c = p;
    GstSample *smp = gst_app_sink_pull_sample(sink);
    if (smp == NULL) return GST_FLOW_OK;
    GstBuffer *b = gst_sample_get_buffer(smp);
    GstMapInfo mi;
    session *s = atomic_load(&c->sess);
    if (b && s && gst_buffer_map(b, &mi, GST_MAP_READ)) {
        session_on_audio(s, (const int16_t *)mi.data, mi.size / 2, TRACK_RATE);
        gst_buffer_unmap(b, &mi);
    }
    gst_sample_unref(smp);
    return GST_FLOW_OK;
}

static GstPadProbeReturn count_received(GstPad *pad, GstPadProbeInfo *info, gpointer p)
{
    (void)pad;
    rtc_call *c = p;
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    if (b) {
        metrics_counter_add(s_received, (double)gst_buffer_get_size(b));
        atomic_store(&c->t_last_rtp_us, (long long)g_get_monotonic_time());
    }
    return GST_PAD_PROBE_OK;
}

/* webrtcbin's streaming thread: the client's track. */
static void on_pad_added(GstElement *wb, GstPad *pad, gpointer p)
{
    rtc_call *c = p;
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstElement *bin = gst_parse_bin_from_description(
        "rtpopusdepay ! opusdec plc=true ! audio/x-raw,rate=" G_STRINGIFY(TRACK_RATE) " ! audioconvert ! audioresample ! "
        "audio/x-raw,format=S16LE,channels=1,rate=" G_STRINGIFY(TRACK_RATE) " ! "
        "appsink name=sink emit-signals=true sync=false max-buffers=50 drop=false",
        TRUE, NULL);
    if (bin == NULL) {
        log_error("webrtc: cannot build the audio receive chain", "call_id", c->id);
        return;
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(bin), "sink");
    g_signal_connect(sink, "new-sample", G_CALLBACK(on_sample), c);
    gst_object_unref(sink);
    gst_bin_add(GST_BIN(GST_ELEMENT_PARENT(wb)), bin);
    gst_element_sync_state_with_parent(bin);
    GstPad *sinkpad = gst_element_get_static_pad(bin, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_received, c, NULL);
    if (gst_pad_link(pad, sinkpad) != GST_PAD_LINK_OK) log_warn("webrtc: cannot link the client's track", "call_id", c->id);
    gst_object_unref(sinkpad);
}

/* ------------------------------------------------------------ data channel */

static gboolean dc_opened(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->dc_open) return G_SOURCE_REMOVE;
    pthread_mutex_lock(&c->lock);
    c->dc_open = 1;
    pthread_mutex_unlock(&c->lock);
    session *s = session_new(g_app, &rtc_transport, c, c->beta, c->resume[0] ? c->resume : NULL);
    if (s == NULL) {
        call_end(c, "failed", "setup_failed");
        return G_SOURCE_REMOVE;
    }
    atomic_store(&c->sess, s);
    atomic_fetch_sub(&g_without_session, 1);
    if (c->update) {
        /* One session.update per line, in order. */
        char *save = NULL;
        for (char *l = strtok_r(c->update, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            char *u = strdup(l);
            if (u) session_on_message(s, u, strlen(u));
        }
        free(c->update);
        c->update = NULL;
    }
    flush_events(c);
    return G_SOURCE_REMOVE;
}

static gboolean dc_closed(gpointer p)
{
    call_end(p, "closed", "data_channel_closed");
    return G_SOURCE_REMOVE;
}

static void on_dc_open(GstWebRTCDataChannel *dc, gpointer p)
{
    (void)dc;
    on_rtc(dc_opened, p);
}

static void on_dc_close(GstWebRTCDataChannel *dc, gpointer p)
{
    (void)dc;
    on_rtc(dc_closed, p);
}

static void on_dc_error(GstWebRTCDataChannel *dc, GError *e, gpointer p)
{
    (void)dc;
    log_warn("webrtc: data channel error", "call_id", ((rtc_call *)p)->id, "detail", e ? e->message : "?");
    on_rtc(dc_closed, p);
}

/* SCTP thread: one client event. */
static void on_dc_message(GstWebRTCDataChannel *dc, const gchar *str, gpointer p)
{
    (void)dc;
    rtc_call *c = p;
    session *s = atomic_load(&c->sess);
    if (str == NULL || s == NULL) return;
    size_t n = strlen(str);
    metrics_counter_add(s_received, (double)n);
    if (n > (size_t)g_app->s.max_message_size) {
        log_warn("webrtc: closing a call: message too large", "call_id", c->id, "limit", "max_message_size");
        request_end(c, "message too large");
        return;
    }
    gint64 t = g_get_monotonic_time();
    if (t - c->win_start_us > 1000000) {
        c->win_start_us = t;
        c->win_count = 0;
    }
    if (++c->win_count > g_app->s.max_messages_per_second) {
        if (c->win_count == g_app->s.max_messages_per_second + 1) {
            log_warn("webrtc: closing a call: message flood", "call_id", c->id, "limit", "max_messages_per_second");
            session_abandon(s);
            char *e = NULL;
            if (asprintf(&e, "{\"type\":\"error\",\"event_id\":\"event_flood%lld\",\"error\":{\"type\":"
                             "\"invalid_request_error\",\"code\":\"rate_limit_exceeded\",\"message\":"
                             "\"too many messages per second on oai-events ([server] max_messages_per_second)\","
                             "\"param\":null,\"event_id\":null}}", (long long)t) >= 0)
                queue_event(c, e);
            request_end(c, "too many messages per second");
        }
        return;
    }
    char *text = malloc(n + 1);
    if (text == NULL) return;
    memcpy(text, str, n + 1);
    session_on_message(s, text, n);
}

static void on_dc_message_data(GstWebRTCDataChannel *dc, GBytes *data, gpointer p)
{
    (void)dc;
    (void)data;
    session *s = atomic_load(&((rtc_call *)p)->sess);
    if (s) session_on_binary(s);
}

static gboolean dc_adopt(gpointer p);

typedef struct dc_arg {
    rtc_call *c;
    GstWebRTCDataChannel *dc;
} dc_arg;

/* Any thread: a data channel the client opened. */
static void on_data_channel(GstElement *wb, GstWebRTCDataChannel *dc, gpointer p)
{
    (void)wb;
    rtc_call *c = p;
    gchar *label = NULL;
    g_object_get(dc, "label", &label, NULL);
    int ours = label && strcmp(label, "oai-events") == 0;
    if (!ours) log_info("webrtc: ignoring a data channel not named oai-events", "call_id", c->id, "label",
                        label ? label : "");
    g_free(label);
    if (!ours) return;
    g_signal_connect(dc, "on-open", G_CALLBACK(on_dc_open), c);
    g_signal_connect(dc, "on-close", G_CALLBACK(on_dc_close), c);
    g_signal_connect(dc, "on-error", G_CALLBACK(on_dc_error), c);
    g_signal_connect(dc, "on-message-string", G_CALLBACK(on_dc_message), c);
    g_signal_connect(dc, "on-message-data", G_CALLBACK(on_dc_message_data), c);
    dc_arg *a = malloc(sizeof *a);
    if (a == NULL) return;
    a->c = c;
    a->dc = g_object_ref(dc);
    call_ref(c);
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, dc_adopt, a, NULL);
    g_source_attach(src, g_ctx);
    g_source_unref(src);
}

static gboolean dc_adopt(gpointer p)
{
    dc_arg *a = p;
    rtc_call *c = a->c;
    if (c->ended || c->dc) {
        g_signal_handlers_disconnect_by_data(a->dc, c);
        g_object_unref(a->dc);
    } else {
        c->dc = a->dc;
        GstWebRTCDataChannelState st;
        g_object_get(c->dc, "ready-state", &st, NULL);
        if (st == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) dc_opened(c);
    }
    call_unref(c);
    free(a);
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------ ICE */

static gboolean ice_changed(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->wb == NULL) return G_SOURCE_REMOVE;
    GstWebRTCICEConnectionState st;
    g_object_get(c->wb, "ice-connection-state", &st, NULL);
    if ((st == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED || st == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED) &&
        !c->connected) {
        c->connected = 1;
        c->t_connected_us = g_get_monotonic_time();
        atomic_store(&c->t_last_rtp_us, (long long)c->t_connected_us);
        metrics_counter_inc(s_connected);
        char ms[32];
        snprintf(ms, sizeof ms, "%.1f", (double)(c->t_connected_us - c->t_created_us) / 1000.0);
        log_info("webrtc call connected", "call_id", c->id, "offer_to_connected_ms", ms);
    } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED && c->connected) {
        metrics_counter_inc(s_reconnect);
        log_info("webrtc: ICE connectivity lost; checking again", "call_id", c->id);
    } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
        call_end(c, "failed", "ice_failed");
    } else if (st == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED) {
        call_end(c, "closed", "ice_closed");
    }
    return G_SOURCE_REMOVE;
}

/* rtc thread: the peer connection's state (DTLS included): a peer that
 * closes its RTCPeerConnection sends a DTLS close_notify. */
static gboolean pc_changed(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->wb == NULL) return G_SOURCE_REMOVE;
    GstWebRTCPeerConnectionState st;
    g_object_get(c->wb, "connection-state", &st, NULL);
    if (st == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED) call_end(c, "closed", "peer_closed");
    else if (st == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) call_end(c, "failed", c->connected ? "dtls_failed" : "ice_failed");
    return G_SOURCE_REMOVE;
}

static void on_pc_state(GObject *o, GParamSpec *ps, gpointer p)
{
    (void)o;
    (void)ps;
    on_rtc(pc_changed, p);
}

static void on_ice_state(GObject *o, GParamSpec *ps, gpointer p)
{
    (void)o;
    (void)ps;
    on_rtc(ice_changed, p);
}

/* rtc thread, every WATCHDOG_MS: peers that never connect or went silent. */
static gboolean watchdog(gpointer p)
{
    rtc_call *c = p;
    if (c->ended) return G_SOURCE_CONTINUE;
    gint64 now = g_get_monotonic_time();
    /* connect_timeout runs from the answer: the peer cannot connect before
     * it has one (an offer waits ANSWER_WAIT_MS at most for it). */
    if (!c->connected && c->answered && now - c->t_answered_us > g_app->s.webrtc_connect_timeout_ms * 1000) {
        call_end(c, "failed", "ice_timeout");
        return G_SOURCE_CONTINUE;
    }
    if (c->connected && now - atomic_load(&c->t_last_rtp_us) > g_app->s.webrtc_rtp_timeout_ms * 1000) {
        call_end(c, "failed", "rtp_timeout");
        return G_SOURCE_CONTINUE;
    }
    return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ answer */

/* Any thread: a local candidate ("candidate:..." without "a="). */
static void on_ice_candidate(GstElement *wb, guint mline, gchar *cand, gpointer p)
{
    (void)wb;
    rtc_call *c = p;
    pthread_mutex_lock(&c->lock);
    if (c->cands) g_ptr_array_add(c->cands, g_strdup_printf("%u\t%s", mline, cand));
    pthread_mutex_unlock(&c->lock);
}

/* The candidate attribute value as advertised: host candidates carry
 * [webrtc] public_address when one is set. */
static char *advertised(const char *cand)
{
    const char *pub = g_app->s.webrtc_public_address;
    const char *v = strncmp(cand, "candidate:", 10) == 0 ? cand + 10 : cand;
    if (pub == NULL || *pub == '\0' || strstr(v, " typ host") == NULL) return g_strdup(v);
    gchar **f = g_strsplit(v, " ", -1);
    if (g_strv_length(f) < 8) {
        g_strfreev(f);
        return g_strdup(v);
    }
    g_free(f[4]);
    f[4] = g_strdup(pub);
    char *out = g_strjoinv(" ", f);
    g_strfreev(f);
    return out;
}

/* rtc thread: ICE gathering is done (or took too long): the answer goes
 * out with every candidate in it (no trickle in this signalling). */
static gboolean finish_answer(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->answered || c->wb == NULL) return G_SOURCE_REMOVE;
    GstWebRTCSessionDescription *local = NULL;
    g_object_get(c->wb, "local-description", &local, NULL);
    if (local == NULL) {
        log_debug("webrtc: no local description yet", "call_id", c->id);
        return G_SOURCE_REMOVE; /* not yet: the gather timer or state change comes back */
    }
    c->answered = 1;
    c->t_answered_us = g_get_monotonic_time();
    drop_timer(&c->gather_timer);
    GstSDPMessage *sdp = NULL;
    gst_sdp_message_copy(local->sdp, &sdp);
    gst_webrtc_session_description_free(local);
    pthread_mutex_lock(&c->lock);
    GPtrArray *cands = c->cands;
    c->cands = NULL;
    pthread_mutex_unlock(&c->lock);
    guint nmedia = gst_sdp_message_medias_len(sdp);
    for (guint m = 0; m < nmedia; m++) {
        GstSDPMedia *media = (GstSDPMedia *)gst_sdp_message_get_media(sdp, m);
        /* What webrtcbin already wrote goes: the list is rewritten whole. */
        for (gint i = (gint)gst_sdp_media_attributes_len(media) - 1; i >= 0; i--) {
            const GstSDPAttribute *a = gst_sdp_media_get_attribute(media, (guint)i);
            if (strcmp(a->key, "candidate") == 0 || strcmp(a->key, "end-of-candidates") == 0)
                gst_sdp_media_remove_attribute(media, (guint)i);
        }
        for (guint i = 0; cands && i < cands->len; i++) {
            const char *e = g_ptr_array_index(cands, i);
            if ((guint)strtoul(e, NULL, 10) != m && !(m > 0 && (guint)strtoul(e, NULL, 10) == 0)) continue;
            char *v = advertised(strchr(e, '\t') + 1);
            gst_sdp_media_add_attribute(media, "candidate", v);
            g_free(v);
        }
        gst_sdp_media_add_attribute(media, "end-of-candidates", NULL);
    }
    if (cands) g_ptr_array_free(cands, TRUE);
    gchar *text = gst_sdp_message_as_text(sdp);
    gst_sdp_message_free(sdp);
    pthread_mutex_lock(&c->lock);
    c->answer = text ? strdup(text) : NULL;
    c->answer_status = c->answer ? 201 : 500;
    if (!c->answer) snprintf(c->answer_err, sizeof c->answer_err, "out of memory");
    c->answer_done = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    g_free(text);
    return G_SOURCE_REMOVE;
}

static void on_gathering(GObject *o, GParamSpec *ps, gpointer p)
{
    (void)ps;
    GstWebRTCICEGatheringState st;
    g_object_get(o, "ice-gathering-state", &st, NULL);
    if (st == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) on_rtc(finish_answer, p);
}

static gboolean gather_timeout(gpointer p)
{
    rtc_call *c = p;
    finish_answer(c);
    return c->answered || c->ended ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static void setup_failed(rtc_call *c, const char *why)
{
    log_warn("webrtc: call set-up failed", "call_id", c->id, "detail", why);
    call_end(c, "failed", "setup_failed");
}

/* rtc thread: the DTLS transport's state. A peer that closes its
 * RTCPeerConnection (Chromium's pc.close(), aiortc's close()) sends a DTLS
 * close_notify: webrtcbin 1.22 reports it only here (the transport goes
 * "closed"; neither the peer connection, ICE, SCTP nor the data channel
 * changes state), so this is where a hang-up by the peer is seen. */
static gboolean dtls_changed(gpointer p)
{
    rtc_call *c = p;
    if (c->ended || c->dtls == NULL) return G_SOURCE_REMOVE;
    GstWebRTCDTLSTransportState st;
    g_object_get(c->dtls, "state", &st, NULL);
    if (st == GST_WEBRTC_DTLS_TRANSPORT_STATE_CLOSED && c->connected) call_end(c, "closed", "peer_closed");
    else if (st == GST_WEBRTC_DTLS_TRANSPORT_STATE_FAILED) call_end(c, "failed", "dtls_failed");
    return G_SOURCE_REMOVE;
}

static void on_dtls_state(GObject *o, GParamSpec *ps, gpointer p)
{
    (void)o;
    (void)ps;
    on_rtc(dtls_changed, p);
}

/* rtc thread: watch the DTLS transport the call runs on (one: the offer's
 * sections are bundled, and it carries the data channel). */
static void watch_dtls(rtc_call *c)
{
    GObject *sctp = NULL, *dtls = NULL;
    g_object_get(c->wb, "sctp-transport", &sctp, NULL);
    if (sctp) {
        g_object_get(sctp, "transport", &dtls, NULL);
        g_object_unref(sctp);
    }
    if (dtls == NULL) {
        log_warn("webrtc: no DTLS transport to watch; a peer's hang-up is seen by rtp_timeout only", "call_id", c->id);
        return;
    }
    c->dtls = dtls;
    g_signal_connect(dtls, "notify::state", G_CALLBACK(on_dtls_state), c);
}

static gboolean answer_set(gpointer p)
{
    rtc_call *c = p;
    if (c->ended) return G_SOURCE_REMOVE;
    if (c->dtls == NULL) watch_dtls(c);
    GstWebRTCICEGatheringState st;
    g_object_get(c->wb, "ice-gathering-state", &st, NULL);
    if (st == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) finish_answer(c);
    return G_SOURCE_REMOVE;
}

/* webrtcbin's thread: the answer is our local description. */
static void on_local_set(GstPromise *promise, gpointer p)
{
    rtc_call *c = p;
    gst_promise_unref(promise);
    on_rtc(answer_set, c);
    call_unref(c);
}

/* webrtcbin's thread: the answer is made. */
static void on_answer_created(GstPromise *promise, gpointer p)
{
    rtc_call *c = p;
    const GstStructure *reply = gst_promise_get_reply(promise);
    GstWebRTCSessionDescription *answer = NULL;
    if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED && reply)
        gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL);
    gst_promise_unref(promise);
    if (answer == NULL) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->answer_err, sizeof c->answer_err, "the WebRTC stack could not answer the offer");
        pthread_mutex_unlock(&c->lock);
        on_rtc(fail_requested, c);
        call_unref(c);
        return;
    }
    log_debug("webrtc: answer created", "call_id", c->id);
    /* This runs on webrtcbin's own thread, which also sets the
     * description: waiting for it here would deadlock. */
    GstPromise *done = gst_promise_new_with_change_func(on_local_set, c, NULL); /* keeps our ref */
    g_signal_emit_by_name(c->wb, "set-local-description", answer, done);
    gst_webrtc_session_description_free(answer);
}

static void on_offer_set(GstPromise *promise, gpointer p)
{
    rtc_call *c = p;
    const GstStructure *reply = NULL;
    GstPromiseResult r = gst_promise_wait(promise);
    reply = gst_promise_get_reply(promise);
    GError *err = NULL;
    if (reply) gst_structure_get(reply, "error", G_TYPE_ERROR, &err, NULL);
    gst_promise_unref(promise);
    if (r != GST_PROMISE_RESULT_REPLIED || err) {
        pthread_mutex_lock(&c->lock);
        snprintf(c->answer_err, sizeof c->answer_err, "the offer was refused by the WebRTC stack: %s",
                 err ? err->message : "no reply");
        pthread_mutex_unlock(&c->lock);
        g_clear_error(&err);
        on_rtc(fail_requested, c);
        call_unref(c);
        return;
    }
    log_debug("webrtc: offer set", "call_id", c->id);
    GstPromise *pr = gst_promise_new_with_change_func(on_answer_created, c, NULL); /* keeps our ref */
    g_signal_emit_by_name(c->wb, "create-answer", NULL, pr);
}

/* A data channel offered in the older form ("m=application P DTLS/SCTP
 * 5000" with "a=sctpmap:5000 webrtc-datachannel N", as aiortc sends it) is
 * rewritten to the RFC 8841 form webrtcbin reads ("UDP/DTLS/SCTP
 * webrtc-datachannel" with "a=sctp-port:5000"); the answer is in that form,
 * which such clients also read. */
static void modern_sctp(GstSDPMessage *sdp)
{
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
        GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media(sdp, i);
        if (g_strcmp0(gst_sdp_media_get_media(m), "application") != 0 || gst_sdp_media_formats_len(m) != 1 ||
            g_strcmp0(gst_sdp_media_get_format(m, 0), "webrtc-datachannel") == 0)
            continue;
        for (guint a = 0; a < gst_sdp_media_attributes_len(m); a++) {
            const GstSDPAttribute *at = gst_sdp_media_get_attribute(m, a);
            if (g_strcmp0(at->key, "sctpmap") != 0 || at->value == NULL || !strstr(at->value, " webrtc-datachannel"))
                continue;
            char port[16];
            snprintf(port, sizeof port, "%u", (unsigned)strtoul(at->value, NULL, 10));
            gst_sdp_media_remove_attribute(m, a);
            gst_sdp_media_add_attribute(m, "sctp-port", port);
            gst_sdp_media_replace_format(m, 0, "webrtc-datachannel");
            gst_sdp_media_set_proto(m, "UDP/DTLS/SCTP");
            break;
        }
    }
}

static const char *media_attr(const GstSDPMedia *m, const char *key)
{
    for (guint a = 0; a < gst_sdp_media_attributes_len(m); a++) {
        const GstSDPAttribute *at = gst_sdp_media_get_attribute(m, a);
        if (g_strcmp0(at->key, key) == 0) return at->value;
    }
    return NULL;
}

static void media_drop_attrs(GstSDPMedia *m, const char *key)
{
    for (guint a = gst_sdp_media_attributes_len(m); a-- > 0;)
        if (g_strcmp0(gst_sdp_media_get_attribute(m, a)->key, key) == 0) gst_sdp_media_remove_attribute(m, a);
}

/* A BUNDLE group whose m-sections each carry their own ICE credentials (as
 * aiortc offers it): once the answer accepts BUNDLE, only the first
 * ("tagged") section's transport carries the group (RFC 8843), so the
 * others get its credentials and lose their own candidates; webrtcbin
 * refuses differing credentials inside a bundle. */
static void bundle_credentials(GstSDPMessage *sdp)
{
    const char *group = gst_sdp_message_get_attribute_val(sdp, "group");
    if (group == NULL || strncmp(group, "BUNDLE ", 7) != 0) return;
    gchar **mids = g_strsplit(group + 7, " ", -1);
    GstSDPMedia *tagged = NULL;
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
        GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media(sdp, i);
        const char *mid = media_attr(m, "mid");
        if (mid == NULL || !g_strv_contains((const gchar *const *)mids, mid)) continue;
        if (tagged == NULL) {
            if (g_strcmp0(mid, mids[0]) == 0) tagged = m;
            if (tagged == NULL || media_attr(m, "ice-ufrag") == NULL || media_attr(m, "ice-pwd") == NULL) break;
            continue;
        }
        const char *uf = media_attr(m, "ice-ufrag");
        if (uf == NULL || g_strcmp0(uf, media_attr(tagged, "ice-ufrag")) == 0) continue;
        gchar *tuf = g_strdup(media_attr(tagged, "ice-ufrag")), *tpwd = g_strdup(media_attr(tagged, "ice-pwd"));
        media_drop_attrs(m, "ice-ufrag");
        media_drop_attrs(m, "ice-pwd");
        media_drop_attrs(m, "candidate");
        media_drop_attrs(m, "end-of-candidates");
        gst_sdp_media_add_attribute(m, "ice-ufrag", tuf);
        gst_sdp_media_add_attribute(m, "ice-pwd", tpwd);
        g_free(tuf);
        g_free(tpwd);
    }
    g_strfreev(mids);
}

/* What webrtcbin needs of an offer that other stacks accept. */
static void normalize_offer(GstSDPMessage *sdp)
{
    modern_sctp(sdp);
    bundle_credentials(sdp);
}

/* rtc thread: build the call's pipeline and take its offer. */
static gboolean setup(gpointer p)
{
    rtc_call *c = p;
    char desc[512];
    snprintf(desc, sizeof desc,
             "webrtcbin name=wb bundle-policy=max-bundle "
             "appsrc name=src is-live=true format=time do-timestamp=false ! audioconvert ! audioresample ! "
             "audio/x-raw,rate=" G_STRINGIFY(ENCODE_RATE) ",channels=1 ! opusenc bitrate=32000 frame-size=20 complexity=5 ! "
             "rtpopuspay name=pay pt=%d ! application/x-rtp,media=audio,encoding-name=OPUS,payload=%d,clock-rate=48000 ! wb.",
             c->opus_pt, c->opus_pt);
    GError *err = NULL;
    c->pipe = gst_parse_launch(desc, &err);
    if (c->pipe == NULL || err) {
        char why[200];
        snprintf(why, sizeof why, "%s", err ? err->message : "gst_parse_launch failed");
        g_clear_error(&err);
        if (c->pipe) {
            gst_object_unref(c->pipe);
            c->pipe = NULL;
        }
        setup_failed(c, why);
        return G_SOURCE_REMOVE;
    }
    c->wb = gst_bin_get_by_name(GST_BIN(c->pipe), "wb");
    c->src = gst_bin_get_by_name(GST_BIN(c->pipe), "src");
    gst_object_unref(c->wb); /* the pipeline holds them while it lives */
    gst_object_unref(c->src);
    set_src_caps(c, 24000);
    GstElement *pay = gst_bin_get_by_name(GST_BIN(c->pipe), "pay");
    GstPad *paysrc = gst_element_get_static_pad(pay, "src");
    gst_pad_add_probe(paysrc, GST_PAD_PROBE_TYPE_BUFFER, count_sent, c, NULL);
    gst_object_unref(paysrc);
    gst_object_unref(pay);

    const settings *st = &g_app->s;
    if (*st->webrtc_stun_server) g_object_set(c->wb, "stun-server", st->webrtc_stun_server, NULL);
    if (*st->webrtc_turn_server) g_object_set(c->wb, "turn-server", st->webrtc_turn_server, NULL);
    GObject *ice = NULL;
    g_object_get(c->wb, "ice-agent", &ice, NULL);
    if (ice) {
        if (st->webrtc_port_min > 0)
            g_object_set(ice, "min-rtp-port", (guint)st->webrtc_port_min, "max-rtp-port", (guint)st->webrtc_port_max,
                         NULL);
        if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "ice-tcp"))
            g_object_set(ice, "ice-tcp", FALSE, NULL);
        g_object_unref(ice);
    }
    g_signal_connect(c->wb, "on-ice-candidate", G_CALLBACK(on_ice_candidate), c);
    g_signal_connect(c->wb, "notify::ice-gathering-state", G_CALLBACK(on_gathering), c);
    g_signal_connect(c->wb, "notify::ice-connection-state", G_CALLBACK(on_ice_state), c);
    g_signal_connect(c->wb, "notify::connection-state", G_CALLBACK(on_pc_state), c);
    g_signal_connect(c->wb, "pad-added", G_CALLBACK(on_pad_added), c);
    g_signal_connect(c->wb, "on-data-channel", G_CALLBACK(on_data_channel), c);

    if (gst_element_set_state(c->pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        setup_failed(c, "the pipeline would not start");
        return G_SOURCE_REMOVE;
    }
    /* The transceiver of our send branch answers the offer's audio. */
    GArray *trs = NULL;
    g_signal_emit_by_name(c->wb, "get-transceivers", &trs);
    for (guint i = 0; trs && i < trs->len; i++) {
        GstWebRTCRTPTransceiver *t = g_array_index(trs, GstWebRTCRTPTransceiver *, i);
        g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV, NULL);
    }
    if (trs) g_array_unref(trs);

    GstSDPMessage *sdp = NULL;
    gst_sdp_message_new_from_text(c->offer, &sdp);
    free(c->offer);
    c->offer = NULL;
    if (sdp == NULL) {
        setup_failed(c, "the offer could not be parsed");
        return G_SOURCE_REMOVE;
    }
    normalize_offer(sdp);
    GstWebRTCSessionDescription *offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
    call_ref(c);
    GstPromise *pr = gst_promise_new_with_change_func(on_offer_set, c, NULL);
    g_signal_emit_by_name(c->wb, "set-remote-description", offer, pr);
    gst_webrtc_session_description_free(offer);

    c->gather_timer = rtc_timer(GATHER_WAIT_MS, gather_timeout, c);
    c->watchdog = rtc_timer(WATCHDOG_MS, watchdog, c);
    c->tick = rtc_timer(TICK_MS, tick, c);
    return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------ API */

static void refuse(webrtc_answer *out, int status, const char *type, const char *code, const char *msg)
{
    out->status = status;
    out->type = type;
    out->code = code;
    snprintf(out->message, sizeof out->message, "%s", msg);
}

void webrtc_offer(const char *sdp, size_t len, const char *update, const char *resume_id, int beta,
                  const limits_client *client, webrtc_answer *out)
{
    memset(out, 0, sizeof *out);
    limits_client cl = *client;
    char err[200];
    sdp_info info;
    if (!g_started) {
        limits_release(&cl);
        refuse(out, 404, "invalid_request_error", "webrtc_disabled", "WebRTC calls are not enabled ([webrtc] enabled)");
        return;
    }
    if (sdp_check_offer(sdp, len, &info, err, sizeof err) != 0) {
        limits_release(&cl);
        refuse(out, 400, "invalid_request_error", "invalid_offer", err);
        return;
    }
    if (atomic_load(&g_active) >= g_app->s.webrtc_max_peers) {
        limits_release(&cl);
        refuse(out, 503, "server_error", "unavailable", "max_peers reached ([webrtc] max_peers)");
        log_warn("webrtc offer refused: max_peers reached");
        return;
    }
    if (session_count() + atomic_load(&g_without_session) >= settings_live_max_sessions()) {
        limits_release(&cl);
        refuse(out, 503, "server_error", "unavailable", "max_sessions reached");
        return;
    }
    rtc_call *c = calloc(1, sizeof *c);
    if (c == NULL || (c->offer = malloc(len + 1)) == NULL || (update && (c->update = strdup(update)) == NULL) ||
        (c->cands = g_ptr_array_new_with_free_func(g_free)) == NULL) {
        if (c) {
            free(c->offer);
            free(c->update);
            free(c);
        }
        limits_release(&cl);
        refuse(out, 503, "server_error", "unavailable", "out of memory");
        return;
    }
    memcpy(c->offer, sdp, len);
    c->offer[len] = '\0';
    atomic_init(&c->refs, 2); /* the list's, and ours until the answer */
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->client = cl;
    c->opus_pt = info.opus_pt;
    c->t_created_us = g_get_monotonic_time();
    proto_new_id("rtc_", c->id, sizeof c->id);
    c->beta = beta;
    if (resume_id) {
        /* An id that is not one is looked up as "invalid": not found, a
         * fresh session (as on the WebSocket). */
        if (!persist_valid_id(resume_id)) resume_id = "invalid";
        snprintf(c->resume, sizeof c->resume, "%s", resume_id);
        metrics_counter_inc(s_reconnect);
        log_info("webrtc: an offer resumes a session", "call_id", c->id, "session_id", resume_id);
    }
    atomic_fetch_add(&g_active, 1);
    atomic_fetch_add(&g_without_session, 1);
    metrics_gauge_add(s_active, 1);
    pthread_mutex_lock(&g_lock);
    c->next_all = g_calls;
    g_calls = c;
    pthread_mutex_unlock(&g_lock);
    on_rtc(setup, c);

    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ANSWER_WAIT_MS / 1000;
    pthread_mutex_lock(&c->lock);
    while (!c->answer_done)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &dl) != 0) break;
    int done = c->answer_done, status = c->answer_status;
    char *answer = c->answer;
    c->answer = NULL;
    snprintf(err, sizeof err, "%s", c->answer_err[0] ? c->answer_err : "the WebRTC stack made no answer");
    pthread_mutex_unlock(&c->lock);
    if (done && status == 201 && answer) {
        out->status = 201;
        out->sdp = answer;
        snprintf(out->call_id, sizeof out->call_id, "%s", c->id);
    } else {
        free(answer);
        if (!done) request_end(c, "setup_timeout");
        refuse(out, done ? 500 : 504, "server_error", done ? "webrtc_setup_failed" : "webrtc_setup_timeout", err);
    }
    call_unref(c);
}

int webrtc_hangup(const char *call_id)
{
    rtc_call *found = NULL;
    pthread_mutex_lock(&g_lock);
    for (rtc_call *c = g_calls; c; c = c->next_all)
        if (strcmp(c->id, call_id) == 0) {
            found = c;
            call_ref(c);
            break;
        }
    pthread_mutex_unlock(&g_lock);
    if (found == NULL) return -1;
    request_end(found, "hangup");
    call_unref(found);
    return 0;
}

session *webrtc_call_session(const char *call_id, int *exists)
{
    session *s = NULL;
    if (exists) *exists = 0;
    pthread_mutex_lock(&g_lock);
    for (rtc_call *c = g_calls; c; c = c->next_all)
        if (strcmp(c->id, call_id) == 0) {
            if (exists) *exists = 1;
            /* call_end takes the session under this lock: a session seen
             * here is still alive. */
            if ((s = atomic_load(&c->sess)) != NULL) session_ref(s);
            break;
        }
    pthread_mutex_unlock(&g_lock);
    return s;
}

int webrtc_active(void) { return atomic_load(&g_active); }
int webrtc_enabled(void) { return g_started; }

static void *rtc_main(void *arg)
{
    (void)arg;
    g_main_context_push_thread_default(g_ctx);
    g_main_loop_run(g_loop);
    g_main_context_pop_thread_default(g_ctx);
    return NULL;
}

/* One pipeline made and dropped before the first call: loading the
 * plugins and DTLS certificate generation then do not fall on it. */
static int warm_up(char *err, size_t errlen)
{
    static const char *const need[] = {"webrtcbin", "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay",
                                       "appsrc", "appsink", "audioresample", "audioconvert", "nicesrc", "dtlssrtpenc",
                                       "sctpenc"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        GstElementFactory *f = gst_element_factory_find(need[i]);
        if (f == NULL) {
            snprintf(err, errlen, "GStreamer element %s is missing (install gstreamer1.0-plugins-bad, -good, -base "
                                  "and gstreamer1.0-nice, or set [webrtc] enabled = false)", need[i]);
            return -1;
        }
        gst_object_unref(f);
    }
    GstElement *wb = gst_element_factory_make("webrtcbin", NULL);
    if (wb == NULL) {
        snprintf(err, errlen, "cannot create a webrtcbin element");
        return -1;
    }
    GstElement *pipe = gst_pipeline_new(NULL);
    gst_bin_add(GST_BIN(pipe), wb);
    gst_element_set_state(pipe, GST_STATE_READY);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    return 0;
}

int webrtc_start(app *a, char *err, size_t errlen)
{
    g_app = a;
    if (!a->s.webrtc_enabled) return 0;
    GError *ge = NULL;
    if (!gst_init_check(NULL, NULL, &ge)) {
        snprintf(err, errlen, "cannot initialise GStreamer: %s", ge ? ge->message : "?");
        g_clear_error(&ge);
        return -1;
    }
    if (warm_up(err, errlen) != 0) return -1;
    g_ctx = g_main_context_new();
    g_loop = g_main_loop_new(g_ctx, FALSE);
    if (pthread_create(&g_thread, NULL, rtc_main, NULL) != 0) {
        g_main_loop_unref(g_loop);
        g_main_context_unref(g_ctx);
        snprintf(err, errlen, "cannot start the WebRTC thread");
        return -1;
    }
    pthread_setname_np(g_thread, "rtc");
    g_started = 1;
    return 0;
}

static gboolean end_all(gpointer p)
{
    (void)p;
    g_stopping = 1;
    for (;;) {
        pthread_mutex_lock(&g_lock);
        rtc_call *c = g_calls;
        if (c) call_ref(c);
        pthread_mutex_unlock(&g_lock);
        if (c == NULL) break;
        call_end(c, "closed", "server_shutdown");
        call_unref(c);
    }
    /* Calls hung up just before: their pipelines go now, not after the
     * loop has stopped. */
    while (g_grace) {
        rtc_call *c = g_grace;
        call_ref(c);
        teardown(c);
        call_unref(c);
    }
    g_main_loop_quit(g_loop);
    return G_SOURCE_REMOVE;
}

void webrtc_stop(void)
{
    if (!g_started) return;
    g_started = 0;
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, end_all, NULL, NULL);
    g_source_attach(src, g_ctx);
    g_source_unref(src);
    pthread_join(g_thread, NULL);
    /* Sources still attached (timers of ended calls) hold references. */
    g_main_loop_unref(g_loop);
    g_main_context_unref(g_ctx);
    g_loop = NULL;
    g_ctx = NULL;
}
