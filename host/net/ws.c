/*
 * libwebsockets server for /v1/realtime, fed by the front.
 */
#include "config.h"

#include "net/ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#ifdef HAVE_LIBEV
#include <ev.h>
#endif

#include "net/auth.h"
#include "net/head.h"
#include "net/http.h"
#include "net/webrtc.h"
#include "net/client_limits.h"
#include "base/log.h"
#include "metrics.h"
#include "session/protocol.h"
#include "session/persist.h"
#include "session/session.h"
#include "base/worker.h"

typedef struct msg {
    struct msg *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the text */
} msg;

struct ws_conn {
    atomic_int refs;
    atomic_int dead;        /* lws closed it: sends are dropped */
    struct lws *wsi;        /* lws thread only */
    session *sess;          /* lws thread only */
    int control;            /* a control connection to sess (a call's), not its own session */
    pthread_mutex_t lock;   /* output queue and close request */
    msg *head, *tail;
    size_t queued;
    int close_code;         /* nonzero: close after the queue drains */
    char close_reason[120];
    int flagged;            /* on the wake list (g_wake_lock) */
    ws_conn *next_wake;
    ws_conn *prev_all, *next_all; /* registry (g_all_lock) */
    /* receive side: input queued for the session and not yet handled
     * (bytes), and a hold asked by the session (audio far ahead of real
     * time); the lws thread stops reading while either is over its mark */
    atomic_size_t in_queued;
    _Atomic uint64_t hold_until_ns;
    int rx_paused;          /* lws thread only */
    /* closing: the close frame goes out by hand, then what the client still
     * sends is read and dropped until it closes too (lws thread only) */
    int closing;
    unsigned char close_frame[2 + 125];
    size_t close_len, close_sent;
    /* receive side, lws thread only */
    int doomed;             /* closing for abuse: input is discarded */
    char *rx;
    size_t rx_len, rx_cap;
    uint64_t win_start_ns;
    int win_count;
    uint64_t t_open;
    limits_client client;   /* its per-IP session slot, given back in CLOSED */
};

typedef struct pending {
    int fd;
    int beta;
    char resume[72];  /* ?session_id= to resume, "" for a new session */
    uint64_t t0;
    limits_client client;
    char *update;     /* session.update of a client secret's session, or NULL */
    session *control; /* ?call_id=: the call's session to attach to (a reference), or NULL */
    struct pending *next;
} pending;

/* An upgrade that did not become a session: its slot and memory go. */
static void pending_free(pending *p)
{
    limits_release(&p->client);
    free(p->update);
    if (p->control) session_unref(p->control);
    free(p);
}

static app *g_app;
/* voxray_client_input_paused_total{reason}: reading a client's socket was
 * paused (backpressure) */
static metrics_series *s_paused_buffer, *s_paused_ahead;
static struct lws_context *g_ctx;
static struct lws_vhost *g_vh;
static pthread_t g_thread;
static atomic_int g_running;
#ifdef HAVE_LIBEV
/*
 * The lws thread's loop: libev (epoll) where lws can use it, since lws' own
 * loop is poll(), which scans every socket on every wake-up (O(sessions)
 * each time). The loop is ours ("foreign" to lws): lws then installs no
 * SIGINT watcher, and signals stay with the main thread's sigwait.
 *
 * libwebsockets 4.1.6 arms its libev timer for the earliest lws timer only
 * when that timer is not running yet, so a timer set after a later one
 * (a read hold after lws' own 10 s timeouts) waited for the later one. lws
 * works its due timers off after any I/O event it sees, so g_kick makes
 * one every KICK_MS: lws timers (holds, close lingers) run at most that
 * late.
 */
#define KICK_MS 50
static struct ev_loop *g_loop; /* NULL: lws' poll() loop */
static ev_timer g_kick;

/* Batching (strand_batch_begin/end) around the callbacks of one wake-up:
 * check watchers run right after the loop wakes, prepare watchers right
 * before it sleeps again. */
static ev_prepare g_batch_end;
static ev_check g_batch_begin;

static void batch_begin(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    strand_batch_begin();
}

static void batch_end(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    strand_batch_end();
}

static void kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    lws_cancel_service(g_ctx);
}
#endif
static atomic_int g_pending_count;

static pthread_mutex_t g_pend_lock = PTHREAD_MUTEX_INITIALIZER;
static pending *g_pend_head, *g_pend_tail;
static pthread_mutex_t g_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static ws_conn *g_wake;
static pthread_mutex_t g_all_lock = PTHREAD_MUTEX_INITIALIZER;
static ws_conn *g_all;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ connections */

void ws_conn_ref(ws_conn *c) { atomic_fetch_add(&c->refs, 1); }

void ws_conn_unref(ws_conn *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1) return;
    msg *m = c->head;
    while (m) {
        msg *n = m->next;
        free(m);
        m = n;
    }
    free(c->rx);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Queue c for the lws thread. Only the first connection queued since the
 * lws thread last took the list interrupts its poll (a pipe write and a
 * wake-up each): the others ride along. */
static void wake(ws_conn *c)
{
    int first = 0;
    pthread_mutex_lock(&g_wake_lock);
    if (!c->flagged) {
        c->flagged = 1;
        ws_conn_ref(c);
        first = g_wake == NULL;
        c->next_wake = g_wake;
        g_wake = c;
    }
    pthread_mutex_unlock(&g_wake_lock);
    if (first && g_ctx) lws_cancel_service(g_ctx);
}

int ws_send(ws_conn *c, char *text)
{
    size_t len = strlen(text);
    msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (m == NULL) {
        free(text);
        return -1;
    }
    memcpy(m->buf + LWS_PRE, text, len);
    free(text);
    m->len = len;
    m->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (atomic_load(&c->dead) || c->close_code) {
        pthread_mutex_unlock(&c->lock);
        free(m);
        return -1;
    }
    if (c->queued + len > (size_t)g_app->s.max_output_buffer) {
        /* The client does not read: stop queueing and close. */
        c->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
        snprintf(c->close_reason, sizeof c->close_reason, "client too slow: output buffer full");
        pthread_mutex_unlock(&c->lock);
        free(m);
        log_warn("closing a session whose client does not read", "queued_bytes", "over max_output_buffer");
        wake(c);
        return -1;
    }
    if (c->tail) c->tail->next = m;
    else c->head = m;
    c->tail = m;
    c->queued += len;
    pthread_mutex_unlock(&c->lock);
    wake(c);
    return 0;
}

void ws_close(ws_conn *c, int code, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    if (!c->close_code) {
        c->close_code = code;
        snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
    }
    pthread_mutex_unlock(&c->lock);
    wake(c);
}

void ws_close_all(int code, const char *reason)
{
    pthread_mutex_lock(&g_all_lock);
    for (ws_conn *c = g_all; c; c = c->next_all) ws_close(c, code, reason);
    pthread_mutex_unlock(&g_all_lock);
}

/* ------------------------------------------------------------ lws thread */

static void adopt_pending(void)
{
    pthread_mutex_lock(&g_pend_lock);
    pending *p = g_pend_head;
    g_pend_head = g_pend_tail = NULL;
    pthread_mutex_unlock(&g_pend_lock);
    while (p) {
        pending *next = p->next;
        lws_adopt_desc_t info;
        memset(&info, 0, sizeof info);
        info.vh = g_vh;
        info.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
        info.fd.sockfd = p->fd;
        info.opaque = p;
        if (lws_adopt_descriptor_vhost_via_info(&info) == NULL) {
            /* lws closed the fd */
            atomic_fetch_sub(&g_pending_count, 1);
            log_warn("websocket adoption failed");
            http_count_realtime(500, now_ns() - p->t0);
            pending_free(p);
        }
        p = next;
    }
}

static void maybe_hold(ws_conn *c);
static void maybe_resume(ws_conn *c);

static void drain_wakeups(void)
{
    pthread_mutex_lock(&g_wake_lock);
    ws_conn *c = g_wake;
    g_wake = NULL;
    pthread_mutex_unlock(&g_wake_lock);
    while (c) {
        /* Read the link before clearing the flag: once it is clear, another
         * thread may queue the connection again and reuse next_wake. */
        pthread_mutex_lock(&g_wake_lock);
        ws_conn *next = c->next_wake;
        c->flagged = 0;
        pthread_mutex_unlock(&g_wake_lock);
        if (c->wsi && !atomic_load(&c->dead)) {
            lws_callback_on_writable(c->wsi);
            maybe_hold(c);
            maybe_resume(c);
        }
        ws_conn_unref(c);
        c = next;
    }
}

static int close_now(struct lws *wsi, int code, const char *reason)
{
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

/* Close the way a client can read: send the close frame by hand (lws
 * would close the socket right after its own), half-close, then read and
 * drop what the client still sends until it closes its side or
 * WS_LINGER_SECONDS pass. Closing a socket with unread input makes the
 * kernel send a reset, which can destroy the close frame before the client
 * read it (a flooding client then saw 1006 instead of 1008). */
#define WS_LINGER_SECONDS 3
static int linger_close(ws_conn *c, struct lws *wsi, int code, const char *reason)
{
    if (!c->closing) {
        size_t rl = strlen(reason);
        if (rl > 123) rl = 123;
        c->close_frame[0] = 0x88; /* FIN, close */
        c->close_frame[1] = (unsigned char)(2 + rl);
        c->close_frame[2] = (unsigned char)((code >> 8) & 0xff);
        c->close_frame[3] = (unsigned char)(code & 0xff);
        memcpy(c->close_frame + 4, reason, rl);
        c->close_len = 4 + rl;
        c->close_sent = 0;
        c->closing = 1;
        c->doomed = 1; /* input from now on is dropped */
        free(c->rx);
        c->rx = NULL;
        c->rx_len = c->rx_cap = 0;
        if (c->rx_paused) {
            lws_rx_flow_control(wsi, 1); /* read (and drop) to the end */
            c->rx_paused = 0;
        }
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, WS_LINGER_SECONDS);
    }
    if (lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi); /* lws still owes bytes of the last message */
        return 0;
    }
    int fd = lws_get_socket_fd(wsi);
    while (c->close_sent < c->close_len) {
        ssize_t w = send(fd, c->close_frame + c->close_sent, c->close_len - c->close_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (w <= 0) return -1; /* the peer is gone */
        c->close_sent += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    return 0;
}

static int on_writeable(ws_conn *c)
{
    if (c->closing) return linger_close(c, c->wsi, c->close_code, c->close_reason);
    pthread_mutex_lock(&c->lock);
    msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (c->head == NULL) c->tail = NULL;
        c->queued -= m->len;
    }
    int more = c->head != NULL;
    int code = c->close_code;
    char reason[120];
    snprintf(reason, sizeof reason, "%s", c->close_reason);
    pthread_mutex_unlock(&c->lock);

    if (m) {
        int w = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
        if (w < 0) return -1;
        if (more || code) lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (code) return linger_close(c, c->wsi, code, reason);
    return 0;
}

/* Close for abuse. Closing the socket while the peer's data is still unread
 * would make the kernel send a reset that can destroy our close frame, so
 * the connection keeps reading (and discarding) until the close frame has
 * gone out through the normal writable path. */
static int doom(ws_conn *c, struct lws *wsi, int code, const char *reason)
{
    c->doomed = 1;
    if (c->sess) session_abandon(c->sess); /* its queued input is dropped now */
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    pthread_mutex_lock(&c->lock);
    msg *m = c->head;
    c->head = c->tail = NULL;
    c->queued = 0;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    pthread_mutex_unlock(&c->lock);
    while (m) {
        msg *n = m->next;
        free(m);
        m = n;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static const transport_ops ws_transport;

static int on_receive(ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
    size_t max = (size_t)g_app->s.max_message_size;
    if (c->doomed) return 0;
    if (c->rx_len + len > max) {
        char reason[96];
        snprintf(reason, sizeof reason, "message larger than %zu bytes", max);
        log_warn("closing a session: message too large", "limit", "max_message_size");
        return doom(c, wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, reason);
    }
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len + 1) cap *= 2;
        char *nb = realloc(c->rx, cap);
        if (nb == NULL) return close_now(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        c->rx = nb;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) return 0;

    /* A whole message: flood control over a one-second window. */
    uint64_t t = now_ns();
    if (t - c->win_start_ns > 1000000000ull) {
        c->win_start_ns = t;
        c->win_count = 0;
    }
    if (++c->win_count > g_app->s.max_messages_per_second) {
        log_warn("closing a session: message flood", "limit", "max_messages_per_second");
        return doom(c, wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many messages per second");
    }
    if (lws_frame_is_binary(wsi)) {
        c->rx_len = 0;
        if (!c->control) session_on_binary(c->sess);
        return 0;
    }
    c->rx[c->rx_len] = '\0';
    char *text = c->rx;
    size_t n = c->rx_len;
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    /* Backpressure: while the session has more than max_input_buffer bytes
     * to work through, stop reading; TCP then slows the client down. */
    size_t queued = atomic_fetch_add(&c->in_queued, n) + n;
    if (c->control) session_on_control_message(c->sess, &ws_transport, c, text, n);
    else session_on_message(c->sess, text, n);
    if (queued > (size_t)g_app->s.max_input_buffer && !c->rx_paused) {
        lws_rx_flow_control(wsi, 0);
        c->rx_paused = 1;
        metrics_counter_inc(s_paused_buffer);
    }
    return 0;
}

/* lws thread: read again once the session caught up and no hold runs. */
static void maybe_resume(ws_conn *c)
{
    if (!c->rx_paused || c->closing || c->wsi == NULL) return;
    if (atomic_load(&c->in_queued) > (size_t)g_app->s.max_input_buffer / 2) return;
    uint64_t hold = atomic_load(&c->hold_until_ns), t = now_ns();
    if (hold > t) {
        lws_set_timer_usecs(c->wsi, (lws_usec_t)((hold - t) / 1000 + 1));
        return;
    }
    lws_rx_flow_control(c->wsi, 1);
    c->rx_paused = 0;
}

/* lws thread: a hold asked by the session starts now. */
static void maybe_hold(ws_conn *c)
{
    if (c->closing || c->wsi == NULL) return;
    uint64_t hold = atomic_load(&c->hold_until_ns), t = now_ns();
    if (hold <= t) return;
    if (!c->rx_paused) {
        lws_rx_flow_control(c->wsi, 0);
        c->rx_paused = 1;
        metrics_counter_inc(s_paused_ahead);
    }
    lws_set_timer_usecs(c->wsi, (lws_usec_t)((hold - t) / 1000 + 1));
}

void ws_input_done(ws_conn *c, size_t len)
{
    size_t was = atomic_fetch_sub(&c->in_queued, len);
    size_t low = (size_t)g_app->s.max_input_buffer / 2;
    if (was > low && was - len <= low) wake(c); /* the lws thread may read again */
}

void ws_input_hold(ws_conn *c, uint32_t ms)
{
    uint64_t until = now_ns() + (uint64_t)ms * 1000000ull;
    uint64_t cur = atomic_load(&c->hold_until_ns);
    while (cur < until && !atomic_compare_exchange_weak(&c->hold_until_ns, &cur, until)) {
    }
    wake(c);
}

/* The session's view of a WebSocket connection (session/transport.h):
 * events are text messages, reply audio goes out as delta events. */
static int tp_send_event(void *c, char *json) { return ws_send(c, json); }
static void tp_close(void *c, int code, const char *reason) { ws_close(c, code, reason); }
static void tp_input_done(void *c, size_t len) { ws_input_done(c, len); }
static void tp_input_hold(void *c, uint32_t ms) { ws_input_hold(c, ms); }
static void tp_ref(void *c) { ws_conn_ref(c); }
static void tp_unref(void *c) { ws_conn_unref(c); }

static const transport_ops ws_transport = {
    .name = "websocket",
    .send_event = tp_send_event,
    .close = tp_close,
    .input_done = tp_input_done,
    .input_hold = tp_input_hold,
    .ref = tp_ref,
    .unref = tp_unref,
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    ws_conn **slot = user;
    ws_conn *c = slot ? *slot : NULL;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
#ifdef HAVE_LIBEV
        if (g_loop && !atomic_load(&g_running)) {
            ev_break(g_loop, EVBREAK_ALL);
            return 0;
        }
#endif
        adopt_pending();
        drain_wakeups();
        return 0;

    case LWS_CALLBACK_ESTABLISHED: {
        pending *p = lws_get_opaque_user_data(wsi);
        lws_set_opaque_user_data(wsi, NULL);
        int beta = p ? p->beta : 0;
        uint64_t t0 = p ? p->t0 : now_ns();
        char resume[72] = "";
        char *update = NULL;
        session *control = NULL;
        limits_client client = {0};
        if (p) {
            snprintf(resume, sizeof resume, "%s", p->resume);
            client = p->client;
            update = p->update;
            control = p->control;
            free(p);
        }
        atomic_fetch_sub(&g_pending_count, 1);
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            limits_release(&client);
            free(update);
            if (control) session_unref(control);
            return -1;
        }
        c->client = client;
        atomic_init(&c->refs, 1); /* lws's reference, dropped in CLOSED */
        pthread_mutex_init(&c->lock, NULL);
        c->wsi = wsi;
        c->t_open = t0;
        c->win_start_ns = now_ns();
        *slot = c;
        pthread_mutex_lock(&g_all_lock);
        c->next_all = g_all;
        if (g_all) g_all->prev_all = c;
        g_all = c;
        pthread_mutex_unlock(&g_all_lock);
        http_count_realtime(101, now_ns() - t0);
        http_realtime_active(1);
        if (control) {
            /* A server's control connection to a call: the call's session,
             * attached; this connection's reference on it is dropped in
             * CLOSED. */
            c->sess = control;
            c->control = 1;
            session_attach(control, &ws_transport, c);
            return 0;
        }
        c->sess = session_new(g_app, &ws_transport, c, beta, resume[0] ? resume : NULL);
        if (c->sess == NULL) {
            free(update);
            return close_now(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        }
        /* A client secret's session configuration: applied as the first
         * client message, before anything the client sends (this thread
         * delivers those, and the session's strand keeps the order). */
        if (update) {
            size_t n = strlen(update);
            atomic_fetch_add(&c->in_queued, n); /* given back by the session like any message */
            session_on_message(c->sess, update, n);
        }
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        if (c == NULL || c->sess == NULL) return -1;
        return on_receive(c, wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c == NULL) return 0;
        return on_writeable(c);

    case LWS_CALLBACK_TIMER:
        if (c) maybe_resume(c);
        return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* Our close frame is out and our side shut: just close. */
        return c && c->closing ? -1 : 0;

    case LWS_CALLBACK_CLOSED:
        if (c == NULL) return 0;
        atomic_store(&c->dead, 1);
        c->wsi = NULL;
        *slot = NULL;
        pthread_mutex_lock(&g_all_lock);
        if (c->prev_all) c->prev_all->next_all = c->next_all;
        else g_all = c->next_all;
        if (c->next_all) c->next_all->prev_all = c->prev_all;
        pthread_mutex_unlock(&g_all_lock);
        http_realtime_active(-1);
        limits_release(&c->client);
        if (c->sess && c->control) {
            session_detach(c->sess, c);
            session_unref(c->sess);
        } else if (c->sess) {
            session_abandon(c->sess);
            session_on_closed(c->sess);
        }
        c->sess = NULL;
        ws_conn_unref(c);
        return 0;

    case LWS_CALLBACK_WSI_DESTROY: {
        /* A connection that never became a WebSocket (bad handshake). */
        pending *p = lws_get_opaque_user_data(wsi);
        if (p) {
            lws_set_opaque_user_data(wsi, NULL);
            atomic_fetch_sub(&g_pending_count, 1);
            http_count_realtime(400, now_ns() - p->t0);
            pending_free(p);
        }
        return 0;
    }

    case LWS_CALLBACK_HTTP:
        /* Only upgrade heads reach lws; anything else is a bad handshake. */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, "expected a WebSocket upgrade");
        return -1;

    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    /* First is the default when the client asks for no subprotocol;
     * browsers using the OpenAI SDK ask for "realtime". */
    {"realtime", callback, sizeof(ws_conn *), 65536, 0, NULL, 0},
    {"voxray", callback, sizeof(ws_conn *), 65536, 0, NULL, 0},
    /* Offered with openai-insecure-api-key.KEY by beta browser clients;
     * a browser needs the answer to name one of the subprotocols it
     * offered, and the key itself is never echoed. */
    {"openai-beta.realtime-v1", callback, sizeof(ws_conn *), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_logger(int level, const char *line)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", line);
    size_t l = strlen(buf);
    while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = '\0';
    /* lws prefixes its own timestamp: keep only the text after "] ". */
    const char *p = strstr(buf, "] ");
    log_kv(level == LLL_ERR ? VX_LOG_WARN : VX_LOG_DEBUG, "websocket library", "detail", p ? p + 2 : buf,
           (const char *)NULL);
}

static void *service(void *unused)
{
    pthread_setname_np(pthread_self(), "vx-ws"); /* for top -H, perf, gdb */
    (void)unused;
#ifdef HAVE_LIBEV
    if (g_loop) {
        ev_run(g_loop, 0); /* until ws_stop: ev_break in EVENT_WAIT_CANCELLED */
        strand_batch_end();
        return NULL;
    }
#endif
    while (atomic_load(&g_running)) {
        strand_batch_begin();
        int rc = lws_service(g_ctx, 0);
        strand_batch_end();
        if (rc < 0) break;
    }
    return NULL;
}

/* After lws_context_destroy: the loop goes too. */
static void drop_loop(void)
{
#ifdef HAVE_LIBEV
    if (g_loop == NULL) return;
    ev_timer_stop(g_loop, &g_kick);
    ev_prepare_stop(g_loop, &g_batch_end);
    ev_check_stop(g_loop, &g_batch_begin);
    ev_loop_destroy(g_loop);
    g_loop = NULL;
#endif
}

int ws_start(app *a, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    g_app = a;
    if (s_paused_buffer == NULL) {
        static const char *const l_reason[] = {"reason"};
        metrics_family *f = metrics_counter_family(
            a->reg, "voxray_client_input_paused_total",
            "Times reading a client's socket was paused (backpressure): reason input_buffer (more than [session] max_input_buffer bytes waiting for its session) or audio_ahead (audio more than [session] max_audio_ahead ahead of real time).",
            1, l_reason);
        const char *lb[] = {"input_buffer"}, *la[] = {"audio_ahead"};
        s_paused_buffer = f ? metrics_series_get(f, lb) : NULL;
        s_paused_ahead = f ? metrics_series_get(f, la) : NULL;
        if (s_paused_buffer == NULL || s_paused_ahead == NULL) {
            snprintf(err, errlen, "cannot register the WebSocket metrics");
            return -1;
        }
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_logger);
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.timeout_secs = 10;
#ifdef HAVE_LIBEV
    void *loops[1];
    g_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (g_loop) {
        loops[0] = g_loop;
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        g_ctx = lws_create_context(&info);
        if (g_ctx == NULL) {
            log_warn("libwebsockets cannot use libev here (package libwebsockets-evlib-ev missing?): "
                     "polling every socket on each wake-up instead");
            ev_loop_destroy(g_loop);
            g_loop = NULL;
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        } else {
            ev_timer_init(&g_kick, kick, KICK_MS / 1000.0, KICK_MS / 1000.0);
            ev_timer_start(g_loop, &g_kick);
            ev_prepare_init(&g_batch_end, batch_end);
            ev_prepare_start(g_loop, &g_batch_end);
            ev_check_init(&g_batch_begin, batch_begin);
            ev_check_start(g_loop, &g_batch_begin);
        }
    }
    if (g_ctx == NULL)
#endif
        g_ctx = lws_create_context(&info);
    if (g_ctx == NULL) {
        snprintf(err, errlen, "cannot start the WebSocket server (libwebsockets)");
        return -1;
    }
    g_vh = lws_get_vhost_by_name(g_ctx, "default");
    if (g_vh == NULL) {
        lws_context_destroy(g_ctx);
        g_ctx = NULL;
        drop_loop();
        snprintf(err, errlen, "libwebsockets created no default vhost");
        return -1;
    }
    atomic_store(&g_running, 1);
    if (pthread_create(&g_thread, NULL, service, NULL) != 0) {
        lws_context_destroy(g_ctx);
        g_ctx = NULL;
        drop_loop();
        snprintf(err, errlen, "cannot start the WebSocket thread");
        return -1;
    }
    return 0;
}

void ws_stop(void)
{
    if (g_ctx == NULL) return;
    ws_close_all(LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    /* Give the close frames a moment to leave. */
    for (int i = 0; i < 40; i++) {
        pthread_mutex_lock(&g_all_lock);
        int any = g_all != NULL;
        pthread_mutex_unlock(&g_all_lock);
        if (!any) break;
        struct timespec nap = {0, 25 * 1000000L};
        nanosleep(&nap, NULL);
    }
    atomic_store(&g_running, 0);
    lws_cancel_service(g_ctx);
    pthread_join(g_thread, NULL);
    lws_context_destroy(g_ctx);
    g_ctx = NULL;
    drop_loop();
    pthread_mutex_lock(&g_pend_lock);
    pending *p = g_pend_head;
    g_pend_head = g_pend_tail = NULL;
    pthread_mutex_unlock(&g_pend_lock);
    while (p) {
        pending *n = p->next;
        close(p->fd);
        pending_free(p);
        p = n;
    }
    pthread_mutex_lock(&g_wake_lock);
    ws_conn *c = g_wake;
    g_wake = NULL;
    pthread_mutex_unlock(&g_wake_lock);
    while (c) {
        ws_conn *n = c->next_wake;
        ws_conn_unref(c);
        c = n;
    }
}

/* ------------------------------------------------------------ front thread */

/* Answer an upgrade ourselves and close: an OpenAI-shaped JSON error
 * ({"error":{"message","type","code","param"}}), `extra` header lines
 * ("Name: value\r\n" each, may be ""). The head (headlen bytes, only peeked
 * so far) is read first: closing a socket with unread bytes sends a reset
 * that can destroy the answer in flight. Callers count the refusal before
 * calling this: a client that has read the answer may read /metrics next. */
static void refuse(int fd, size_t headlen, int status, const char *type, const char *code,
                   const char *message, const char *extra)
{
    static const struct { int status; const char *text; } reasons[] = {
        {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"},
        {429, "Too Many Requests"}, {503, "Service Unavailable"},
    };
    const char *text = "Error";
    char head[8192], resp[1024];
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status) text = reasons[i].text;
    json_t *o = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", message, "type", type, "code", code,
                          "param");
    char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n%s\n",
                     status, text, body ? strlen(body) + 1 : 1, extra, body ? body : "");
    free(body);
    while (headlen > 0) {
        ssize_t r = recv(fd, head, headlen < sizeof head ? headlen : sizeof head, MSG_DONTWAIT);
        if (r <= 0) break;
        headlen -= (size_t)r;
    }
    if (n > 0) {
        ssize_t w = send(fd, resp, (size_t)n < sizeof resp ? (size_t)n : sizeof resp - 1, MSG_NOSIGNAL);
        (void)w;
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Whether a Sec-WebSocket-Protocol list names a subprotocol we answer. */
static int offers_ours(const char *list)
{
    for (size_t i = 0; protocols[i].name; i++) {
        size_t n = strlen(protocols[i].name);
        for (const char *p = list; (p = strcasestr(p, protocols[i].name)) != NULL; p += n) {
            int starts = p == list || p[-1] == ',' || p[-1] == ' ' || p[-1] == '\t';
            int ends = p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t';
            if (starts && ends) return 1;
        }
    }
    return 0;
}

int ws_upgrade(void *user, int fd, const struct sockaddr *addr, socklen_t alen)
{
    char head[8192], path[512], value[512], authz[1024], protos[2048], xff[2048], origin[512], cred[600];
    uint64_t t0 = now_ns();
    ssize_t n = recv(fd, head, sizeof head - 1, MSG_PEEK);
    if (n <= 0) {
        close(fd);
        return 0;
    }
    head[n] = '\0';
    const char *eoh = strstr(head, "\r\n\r\n");
    size_t hl = eoh ? (size_t)(eoh - head) + 4 : (size_t)n;
    /* "GET /v1/realtime?model=x&session_id=y HTTP/1.1" */
    if (sscanf(head, "GET %511s HTTP/", path) != 1) return http_add_connection(user, fd, addr, alen);
    char resume[72] = "", call_id[72] = "";
    int has_call_id = 0;
    const char *q = strchr(path, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, "session_id=", 11) == 0) {
            size_t l = strcspn(p + 12, "&#");
            if (l < sizeof resume) {
                memcpy(resume, p + 12, l);
                resume[l] = '\0';
            }
        } else if (strncmp(p + 1, "call_id=", 8) == 0) {
            size_t l = strcspn(p + 9, "&#");
            has_call_id = 1;
            if (l < sizeof call_id) {
                memcpy(call_id, p + 9, l);
                call_id[l] = '\0';
            }
        }
    }
    path[strcspn(path, "?#")] = '\0';
    if (strcmp(path, "/v1/realtime") != 0) return http_add_connection(user, fd, addr, alen);

    int has_protos = head_values(head, hl, "Sec-WebSocket-Protocol", protos, sizeof protos) != 0;
    int beta = 0;
    if (head_values(head, hl, "OpenAI-Beta", value, sizeof value) > 0 && strcasestr(value, "realtime=v1")) beta = 1;
    if (has_protos && strcasestr(protos, "openai-beta.realtime-v1")) beta = 1;

    int phase = atomic_load(&g_app->phase);
    if (phase != APP_RUNNING) {
        http_count_realtime(503, now_ns() - t0);
        refuse(fd, hl, 503, "server_error", "unavailable",
               phase == APP_DRAINING ? "server is draining" : "server is starting", "Retry-After: 1\r\n");
        return 0;
    }

    /* Who is asking: the peer, or the client behind a trusted proxy. */
    limits_client client;
    int nx = head_values(head, hl, "X-Forwarded-For", xff, sizeof xff);
    limits_identify(addr, nx > 0 ? xff : NULL, &client);

    /* Browsers send one Origin; two, or one too long to read, match nothing. */
    int no = head_values(head, hl, "Origin", origin, sizeof origin);
    if (no != 0 && !limits_origin_allowed(no == 1 ? origin : "")) {
        http_count_realtime(403, now_ns() - t0);
        refuse(fd, hl, 403, "invalid_request_error", "origin_not_allowed",
               "this Origin may not open /v1/realtime (see [server] allowed_origins)", "");
        log_warn("websocket refused: origin not allowed", "origin", no == 1 ? origin : "(unreadable)", "client",
                 client.text);
        return 0;
    }

    limits_verdict lv = limits_admit(&client);
    if (lv != LIMITS_OK) {
        http_count_realtime(429, now_ns() - t0);
        refuse(fd, hl, 429, "invalid_request_error", "rate_limit_exceeded",
               lv == LIMITS_RATE ? "too many connections per second from this address"
                                 : "too many open sessions from this address",
               "Retry-After: 1\r\n");
        log_debug("websocket refused: per-client limit", "limit",
                  lv == LIMITS_RATE ? "max_upgrades_per_second_per_ip" : "max_sessions_per_ip", "client", client.text);
        return 0;
    }

    int busy = session_count() + atomic_load(&g_pending_count);
    if (!has_call_id && busy >= settings_live_max_sessions()) {
        limits_release(&client);
        http_count_realtime(503, now_ns() - t0);
        refuse(fd, hl, 503, "server_error", "unavailable", "max_sessions reached", "Retry-After: 1\r\n");
        log_warn("websocket refused: max_sessions reached");
        return 0;
    }

    /* A browser needs the server to pick one of the subprotocols it
     * offered; without one of ours lws would just hang up. */
    if (has_protos && !offers_ours(protos)) {
        limits_release(&client);
        http_count_realtime(400, now_ns() - t0);
        refuse(fd, hl, 400, "invalid_request_error", "invalid_subprotocol",
               "Sec-WebSocket-Protocol must include realtime (with openai-insecure-api-key.KEY for a key)", "");
        return 0;
    }

    /* The credential, last: a client secret is used up only by an upgrade
     * that is otherwise accepted. */
    int na = head_values(head, hl, "Authorization", authz, sizeof authz);
    int found = auth_credential(na != 0 ? authz : NULL, has_protos ? protos : NULL, cred, sizeof cred);
    char *bound = NULL;
    /* A control connection to a call (?call_id=) is a server's: an API
     * key, never a client secret (which stays unused). */
    auth_result ar = !found ? AUTH_MISSING : has_call_id ? auth_check_key(cred) : auth_redeem(cred, &bound);
    explicit_bzero(cred, sizeof cred);
    explicit_bzero(authz, sizeof authz);
    if (ar != AUTH_OK && auth_enabled()) {
        limits_release(&client);
        static const char *const why[] = {
            "", "missing API key: send Authorization: Bearer KEY or the subprotocol openai-insecure-api-key.KEY",
            "invalid API key", "client secret expired", "client secret already used"};
        http_count_realtime(401, now_ns() - t0);
        auth_refused(ar, "/v1/realtime", client.text);
        refuse(fd, hl, 401, "invalid_request_error", "invalid_api_key",
               has_call_id && ar == AUTH_INVALID ? "a call's control connection needs an API key (not a client secret)"
                                                : why[ar],
               "WWW-Authenticate: Bearer realm=\"voxray\"\r\n");
        return 0;
    }
    session *control = NULL;
    int exists = 0;
    if (has_call_id && (control = webrtc_call_session(call_id, &exists)) == NULL) {
        limits_release(&client);
        http_count_realtime(exists ? 409 : 404, now_ns() - t0);
        if (exists)
            refuse(fd, hl, 409, "invalid_request_error", "call_not_connected",
                   "the call's peer has not connected yet (its session starts when the data channel opens): "
                   "retry in a moment", "Retry-After: 1\r\n");
        else
            refuse(fd, hl, 404, "invalid_request_error", "call_not_found",
                   "no live WebRTC call has this call_id (the id from the Location of POST /v1/realtime/calls)", "");
        return 0;
    }

    if (beta && bound) {
        /* A secret keeps its configuration in the GA dialect. */
        proto_error pe;
        char *b = proto_session_restate(bound, PROTO_GA, PROTO_BETA, &pe);
        free(bound);
        bound = b;
    }
    pending *p = calloc(1, sizeof *p);
    char *update = NULL;
    int has_bound = bound != NULL;
    if (has_bound && asprintf(&update, "{\"type\":\"session.update\",\"session\":%s}", bound) < 0) update = NULL;
    free(bound);
    if (p == NULL || (has_bound && update == NULL)) {
        free(p);
        free(update);
        if (control) session_unref(control);
        limits_release(&client);
        http_count_realtime(503, now_ns() - t0);
        refuse(fd, hl, 503, "server_error", "unavailable", "out of memory", "Retry-After: 1\r\n");
        return 0;
    }
    p->fd = fd;
    p->beta = beta;
    p->client = client;
    p->update = update;
    p->control = control;
    if (resume[0] && persist_valid_id(resume)) snprintf(p->resume, sizeof p->resume, "%s", resume);
    else if (resume[0]) snprintf(p->resume, sizeof p->resume, "invalid");
    p->t0 = t0;
    atomic_fetch_add(&g_pending_count, 1);
    pthread_mutex_lock(&g_pend_lock);
    if (g_pend_tail) g_pend_tail->next = p;
    else g_pend_head = p;
    g_pend_tail = p;
    pthread_mutex_unlock(&g_pend_lock);
    lws_cancel_service(g_ctx);
    return 0;
}
