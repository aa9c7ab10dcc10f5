/*
 * libwebsockets server for /v1/realtime, fed by the front.
 */
#include "config.h"

#include "ws.h"

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

#include "http.h"
#include "log.h"
#include "persist.h"
#include "session.h"

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
    pthread_mutex_t lock;   /* output queue and close request */
    msg *head, *tail;
    size_t queued;
    int close_code;         /* nonzero: close after the queue drains */
    char close_reason[120];
    int flagged;            /* on the wake list (g_wake_lock) */
    ws_conn *next_wake;
    ws_conn *prev_all, *next_all; /* registry (g_all_lock) */
    /* receive side, lws thread only */
    int doomed;             /* closing for abuse: input is discarded */
    char *rx;
    size_t rx_len, rx_cap;
    uint64_t win_start_ns;
    int win_count;
    uint64_t t_open;
};

typedef struct pending {
    int fd;
    int beta;
    char resume[72];  /* ?session_id= to resume, "" for a new session */
    uint64_t t0;
    struct pending *next;
} pending;

static app *g_app;
static struct lws_context *g_ctx;
static struct lws_vhost *g_vh;
static pthread_t g_thread;
static atomic_int g_running;
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

static void wake(ws_conn *c)
{
    pthread_mutex_lock(&g_wake_lock);
    if (!c->flagged) {
        c->flagged = 1;
        ws_conn_ref(c);
        c->next_wake = g_wake;
        g_wake = c;
    }
    pthread_mutex_unlock(&g_wake_lock);
    if (g_ctx) lws_cancel_service(g_ctx);
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
            free(p);
        }
        p = next;
    }
}

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
        if (c->wsi && !atomic_load(&c->dead)) lws_callback_on_writable(c->wsi);
        ws_conn_unref(c);
        c = next;
    }
}

static int close_now(struct lws *wsi, int code, const char *reason)
{
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

static int on_writeable(ws_conn *c)
{
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
    if (code) return close_now(c->wsi, code, reason);
    return 0;
}

/* Close for abuse. Closing the socket while the peer's data is still unread
 * would make the kernel send a reset that can destroy our close frame, so
 * the connection keeps reading (and discarding) until the close frame has
 * gone out through the normal writable path. */
static int doom(ws_conn *c, struct lws *wsi, int code, const char *reason)
{
    c->doomed = 1;
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
        session_on_binary(c->sess);
        return 0;
    }
    c->rx[c->rx_len] = '\0';
    char *text = c->rx;
    size_t n = c->rx_len;
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    session_on_message(c->sess, text, n);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    ws_conn **slot = user;
    ws_conn *c = slot ? *slot : NULL;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        adopt_pending();
        drain_wakeups();
        return 0;

    case LWS_CALLBACK_ESTABLISHED: {
        pending *p = lws_get_opaque_user_data(wsi);
        lws_set_opaque_user_data(wsi, NULL);
        int beta = p ? p->beta : 0;
        uint64_t t0 = p ? p->t0 : now_ns();
        char resume[72] = "";
        if (p) snprintf(resume, sizeof resume, "%s", p->resume);
        free(p);
        atomic_fetch_sub(&g_pending_count, 1);
        c = calloc(1, sizeof *c);
        if (c == NULL) return -1;
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
        c->sess = session_new(g_app, c, beta, resume[0] ? resume : NULL);
        if (c->sess == NULL) return close_now(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        if (c == NULL || c->sess == NULL) return -1;
        return on_receive(c, wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c == NULL) return 0;
        return on_writeable(c);

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
        if (c->sess) session_on_closed(c->sess);
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
            free(p);
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
    (void)unused;
    while (atomic_load(&g_running)) {
        if (lws_service(g_ctx, 0) < 0) break;
    }
    return NULL;
}

int ws_start(app *a, char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    g_app = a;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_logger);
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.timeout_secs = 10;
    g_ctx = lws_create_context(&info);
    if (g_ctx == NULL) {
        snprintf(err, errlen, "cannot start the WebSocket server (libwebsockets)");
        return -1;
    }
    g_vh = lws_get_vhost_by_name(g_ctx, "default");
    if (g_vh == NULL) {
        lws_context_destroy(g_ctx);
        g_ctx = NULL;
        snprintf(err, errlen, "libwebsockets created no default vhost");
        return -1;
    }
    atomic_store(&g_running, 1);
    if (pthread_create(&g_thread, NULL, service, NULL) != 0) {
        lws_context_destroy(g_ctx);
        g_ctx = NULL;
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
    pthread_mutex_lock(&g_pend_lock);
    pending *p = g_pend_head;
    g_pend_head = g_pend_tail = NULL;
    pthread_mutex_unlock(&g_pend_lock);
    while (p) {
        pending *n = p->next;
        close(p->fd);
        free(p);
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

/* Header value (case-insensitive name) in a raw head, into out. */
static int head_header(const char *head, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p && p[2] != '\r' && p[2] != '\0') {
        const char *line = p + 2;
        const char *eol = strstr(line, "\r\n");
        if (eol == NULL) break;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= len) vl = len - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

static void refuse(int fd, int code, const char *text, const char *detail)
{
    char body[256], resp[512];
    snprintf(body, sizeof body, "{\"error\":{\"type\":\"server_error\",\"code\":\"%s\",\"message\":\"%s\"}}\n",
             code == 503 ? "unavailable" : "bad_request", detail);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Retry-After: 1\r\nConnection: close\r\n\r\n%s",
                     code, text, strlen(body), body);
    ssize_t w = send(fd, resp, (size_t)n, MSG_NOSIGNAL);
    (void)w;
    shutdown(fd, SHUT_WR);
    close(fd);
}

int ws_upgrade(void *user, int fd, const struct sockaddr *addr, socklen_t alen)
{
    char head[8192], path[512], value[512];
    uint64_t t0 = now_ns();
    ssize_t n = recv(fd, head, sizeof head - 1, MSG_PEEK);
    if (n <= 0) {
        close(fd);
        return 0;
    }
    head[n] = '\0';
    /* "GET /v1/realtime?model=x&session_id=y HTTP/1.1" */
    if (sscanf(head, "GET %511s HTTP/", path) != 1) return http_add_connection(user, fd, addr, alen);
    char resume[72] = "";
    const char *q = strchr(path, '?');
    for (const char *p = q; p; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, "session_id=", 11) == 0) {
            size_t l = strcspn(p + 12, "&#");
            if (l < sizeof resume) {
                memcpy(resume, p + 12, l);
                resume[l] = '\0';
            }
        }
    }
    path[strcspn(path, "?#")] = '\0';
    if (strcmp(path, "/v1/realtime") != 0) return http_add_connection(user, fd, addr, alen);

    int beta = 0;
    if (head_header(head, "OpenAI-Beta", value, sizeof value) && strcasestr(value, "realtime=v1")) beta = 1;
    if (head_header(head, "Sec-WebSocket-Protocol", value, sizeof value) &&
        strcasestr(value, "openai-beta.realtime-v1"))
        beta = 1;

    int phase = atomic_load(&g_app->phase);
    if (phase != APP_RUNNING) {
        refuse(fd, 503, "Service Unavailable", phase == APP_DRAINING ? "server is draining" : "server is starting");
        http_count_realtime(503, now_ns() - t0);
        return 0;
    }
    int busy = session_count() + atomic_load(&g_pending_count);
    if (busy >= g_app->s.max_sessions) {
        refuse(fd, 503, "Service Unavailable", "max_sessions reached");
        http_count_realtime(503, now_ns() - t0);
        log_warn("websocket refused: max_sessions reached");
        return 0;
    }
    pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        refuse(fd, 503, "Service Unavailable", "out of memory");
        http_count_realtime(503, now_ns() - t0);
        return 0;
    }
    p->fd = fd;
    p->beta = beta;
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
