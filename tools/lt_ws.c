/*
 * WebSocket client connections on one epoll loop (see lt_ws.h).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>

#include "cliutil.h"
#include "lt_ws.h"

#define RX_SIZE 65536           /* one read, shared by every connection */
#define MASK_POOL 4096          /* random bytes fetched at once for masks */
#define MAX_EVENTS 512
#define OUT_KEEP 65536          /* an emptied output buffer larger than this is freed */

enum { C_TCP, C_TLS, C_UPGRADE, C_OPEN, C_CLOSING };

struct lt_ws {
    lt_ws_env *env;
    void *user;
    lt_ws *prev, *next;         /* every connection, or the dead list */
    int fd;
    int state;
    int dead;                   /* on the dead list: callback and free pending */
    unsigned events;            /* registered with epoll */
    SSL *ssl;

    /* output: framed bytes not written yet, from out[off] to out[len] */
    unsigned char *out;
    size_t off, len, cap;
    int want_writable;          /* lt_ws_flush() returned 1 */

    /* upgrade */
    http_parser hp;
    char accept[32];            /* expected Sec-WebSocket-Accept */
    char hname[24];             /* header field being read (truncated) */
    size_t hname_len;
    char hval[40];              /* value of Sec-WebSocket-Accept */
    size_t hval_len;
    int hp_in_value, hp_is_accept, hp_done;

    /* input */
    wslay_frame_context_ptr fr;
    const unsigned char *in;    /* bytes read, not yet given to wslay */
    size_t in_len;
    int in_frame;               /* inside a frame's payload */
    uint64_t frame_left;
    int msg_active, msg_binary; /* a data message is under way */
    unsigned char ctl[125];     /* control frame payload */
    size_t ctl_len;
    int close_sent, peer_code;

    /* failure */
    unsigned fail_status;
    char why[160];
};

struct lt_ws_env {
    lt_ws_handlers h;
    int ep;
    int tls, insecure;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int family;
    char host[256];             /* for SNI and the certificate check */
    int host_is_ip;
    char *req_head, *req_tail;  /* the upgrade request around the key */
    SSL_CTX *ssl_ctx;
    unsigned char rx[RX_SIZE];
    unsigned char masks[MASK_POOL];
    size_t mask_off;
    lt_ws *all, *dead;
    size_t live;
};

/* ------------------------------------------------------------ lists */

static void list_remove(lt_ws **head, lt_ws *c) {
    if (c->prev) c->prev->next = c->next;
    else *head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(lt_ws **head, lt_ws *c) {
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

/* The connection is over: its descriptor goes now, its callback and its
 * memory at the end of the current lt_ws_wait() (or the next one). why is
 * kept for on_fail; the first reason given wins. */
static void kill_conn(lt_ws *c, const char *why) {
    if (c->dead) return;
    c->dead = 1;
    if (why && !c->why[0]) snprintf(c->why, sizeof(c->why), "%s", why);
    if (c->fd >= 0) {
        epoll_ctl(c->env->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    list_remove(&c->env->all, c);
    list_push(&c->env->dead, c);
}

static void free_conn(lt_ws *c) {
    if (c->fd >= 0) close(c->fd);
    SSL_free(c->ssl);
    if (c->fr) wslay_frame_context_free(c->fr);
    free(c->out);
    free(c);
}

static void set_events(lt_ws *c, unsigned ev) {
    struct epoll_event e;
    if (c->dead || ev == c->events) return;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = c;
    if (epoll_ctl(c->env->ep, EPOLL_CTL_MOD, c->fd, &e) == 0) c->events = ev;
}

static void tls_why(lt_ws *c, const char *what) {
    unsigned long e = ERR_get_error();
    char buf[120];
    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(c->why, sizeof(c->why), "%s: %s", what, buf);
    } else {
        snprintf(c->why, sizeof(c->why), "%s: %s", what, errno ? strerror(errno) : "connection closed");
    }
    ERR_clear_error();
}

/* ------------------------------------------------------------ output */

static int out_reserve(lt_ws *c, size_t n) {
    if (c->off && c->off == c->len) c->off = c->len = 0;
    if (c->len + n <= c->cap) return 0;
    if (c->off) { /* move what is left to the front first */
        memmove(c->out, c->out + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
        if (c->len + n <= c->cap) return 0;
    }
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n) cap *= 2;
    unsigned char *p = realloc(c->out, cap);
    if (!p) return -1;
    c->out = p;
    c->cap = cap;
    return 0;
}

/* wslay hands the framed bytes here; room was reserved beforehand. */
static ssize_t on_wslay_send(const uint8_t *data, size_t len, int flags, void *user) {
    lt_ws *c = user;
    (void)flags;
    if (out_reserve(c, len) != 0) return -1;
    memcpy(c->out + c->len, data, len);
    c->len += len;
    return (ssize_t)len;
}

static int on_wslay_genmask(uint8_t *buf, size_t len, void *user) {
    lt_ws_env *e = ((lt_ws *)user)->env;
    if (e->mask_off + len > MASK_POOL) {
        if (RAND_bytes(e->masks, MASK_POOL) != 1) return -1;
        e->mask_off = 0;
    }
    memcpy(buf, e->masks + e->mask_off, len);
    e->mask_off += len;
    return 0;
}

static ssize_t on_wslay_recv(uint8_t *buf, size_t len, int flags, void *user) {
    lt_ws *c = user;
    (void)flags;
    if (len > c->in_len) len = c->in_len;
    if (len == 0) return 0; /* wslay: want more */
    memcpy(buf, c->in, len);
    c->in += len;
    c->in_len -= len;
    return (ssize_t)len;
}

static int send_frame(lt_ws *c, int opcode, const void *p, size_t n) {
    struct wslay_frame_iocb io;
    ssize_t r;
    /* Header (at most 14 bytes) and payload fit: the callback takes all. */
    if (out_reserve(c, n + 14) != 0) return -1;
    memset(&io, 0, sizeof(io));
    io.fin = 1;
    io.opcode = (uint8_t)opcode;
    io.mask = 1;
    io.payload_length = n;
    io.data = p;
    io.data_length = n;
    r = wslay_frame_send(c->fr, &io);
    return r == (ssize_t)n ? 0 : -1;
}

/* Write what is buffered. Returns 0 all written, 1 some left, -1 failed
 * (the connection is killed). */
static int write_out(lt_ws *c) {
    while (c->off < c->len) {
        size_t n = c->len - c->off;
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, c->out + c->off, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0) {
                int err = SSL_get_error(c->ssl, r);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) break;
                tls_why(c, "TLS write");
                kill_conn(c, NULL);
                return -1;
            }
            w = r;
        } else {
            w = send(c->fd, c->out + c->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                snprintf(c->why, sizeof(c->why), "write: %s", strerror(errno));
                kill_conn(c, NULL);
                return -1;
            }
        }
        c->off += (size_t)w;
    }
    if (c->off < c->len) {
        set_events(c, EPOLLIN | EPOLLOUT);
        return 1;
    }
    c->off = c->len = 0;
    if (c->cap > OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->cap = 0;
    }
    set_events(c, EPOLLIN);
    return 0;
}

/* ------------------------------------------------------------ upgrade */

static int hp_on_field(http_parser *p, const char *at, size_t n) {
    lt_ws *c = p->data;
    if (c->hp_in_value) {
        c->hp_in_value = 0;
        c->hname_len = 0;
    }
    if (c->hname_len + n < sizeof(c->hname)) memcpy(c->hname + c->hname_len, at, n);
    c->hname_len += n;
    return 0;
}

static int hp_on_value(http_parser *p, const char *at, size_t n) {
    lt_ws *c = p->data;
    if (!c->hp_in_value) {
        c->hp_in_value = 1;
        c->hp_is_accept = c->hname_len == 20 && strncasecmp(c->hname, "Sec-WebSocket-Accept", 20) == 0;
        if (c->hp_is_accept) c->hval_len = 0;
    }
    if (c->hp_is_accept) {
        if (c->hval_len + n < sizeof(c->hval)) memcpy(c->hval + c->hval_len, at, n);
        c->hval_len += n;
    }
    return 0;
}

static int hp_on_headers_complete(http_parser *p) {
    lt_ws *c = p->data;
    c->hp_done = 1;
    return 1; /* no body: a 101 has none, and a refusal is enough as it is */
}

static const http_parser_settings hp_settings = {
    .on_header_field = hp_on_field,
    .on_header_value = hp_on_value,
    .on_headers_complete = hp_on_headers_complete,
};

static void send_upgrade(lt_ws *c) {
    lt_ws_env *e = c->env;
    unsigned char raw[16], sha[SHA_DIGEST_LENGTH];
    char key[32], cat[80];
    size_t hl, kl, tl;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        kill_conn(c, "no random bytes for the WebSocket key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
    snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((const unsigned char *)cat, strlen(cat), sha);
    EVP_EncodeBlock((unsigned char *)c->accept, sha, sizeof(sha));

    hl = strlen(e->req_head);
    kl = strlen(key);
    tl = strlen(e->req_tail);
    if (out_reserve(c, hl + kl + tl) != 0) {
        kill_conn(c, "out of memory");
        return;
    }
    memcpy(c->out + c->len, e->req_head, hl);
    memcpy(c->out + c->len + hl, key, kl);
    memcpy(c->out + c->len + hl + kl, e->req_tail, tl);
    c->len += hl + kl + tl;
    http_parser_init(&c->hp, HTTP_RESPONSE);
    c->hp.data = c;
    c->state = C_UPGRADE;
    write_out(c);
}

static void feed_frames(lt_ws *c, const unsigned char *p, size_t n);

static void feed_upgrade(lt_ws *c, const unsigned char *p, size_t n) {
    lt_ws_env *e = c->env;
    size_t used = http_parser_execute(&c->hp, &hp_settings, (const char *)p, n);

    if (!c->hp_done) {
        if (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK) {
            snprintf(c->why, sizeof(c->why), "bad upgrade response: %s",
                     http_errno_description(HTTP_PARSER_ERRNO(&c->hp)));
            kill_conn(c, NULL);
        }
        return; /* more of the head to come */
    }
    if (c->hp.status_code != 101) {
        c->fail_status = c->hp.status_code;
        snprintf(c->why, sizeof(c->why), "the server refused the upgrade");
        kill_conn(c, NULL);
        return;
    }
    if (c->hval_len != strlen(c->accept) || memcmp(c->hval, c->accept, c->hval_len) != 0) {
        kill_conn(c, "bad Sec-WebSocket-Accept in the upgrade response");
        return;
    }
    c->state = C_OPEN;
    e->h.on_open(c, c->user);
    if (!c->dead && used < n) feed_frames(c, p + used, n - used);
}

/* ------------------------------------------------------------ input */

static void on_control(lt_ws *c, int opcode) {
    if (opcode == WSLAY_PING) {
        if (!c->close_sent && send_frame(c, WSLAY_PONG, c->ctl, c->ctl_len) == 0) write_out(c);
        return;
    }
    if (opcode != WSLAY_CONNECTION_CLOSE) return; /* a pong */
    c->peer_code = c->ctl_len >= 2 ? (c->ctl[0] << 8) | c->ctl[1] : 0;
    if (!c->close_sent) { /* answer with the same code, then end */
        send_frame(c, WSLAY_CONNECTION_CLOSE, c->ctl, c->ctl_len >= 2 ? 2 : 0);
        c->close_sent = 1;
        write_out(c);
    }
    kill_conn(c, NULL);
}

static void feed_frames(lt_ws *c, const unsigned char *p, size_t n) {
    lt_ws_env *e = c->env;
    c->in = p;
    c->in_len = n;
    while (!c->dead) {
        struct wslay_frame_iocb io;
        ssize_t r;
        int start, end;

        memset(&io, 0, sizeof(io));
        r = wslay_frame_recv(c->fr, &io);
        if (r == WSLAY_ERR_WANT_READ) break;
        if (r < 0) {
            kill_conn(c, "WebSocket protocol error from the server");
            break;
        }
        start = !c->in_frame;
        if (start) {
            c->in_frame = 1;
            c->frame_left = io.payload_length;
            c->ctl_len = 0;
        }
        c->frame_left -= io.data_length;
        end = c->frame_left == 0;
        if (end) c->in_frame = 0;
        if (io.mask || io.rsv) {
            kill_conn(c, "WebSocket protocol error from the server");
            break;
        }
        if (wslay_is_ctrl_frame(io.opcode)) {
            memcpy(c->ctl + c->ctl_len, io.data, io.data_length); /* wslay: <= 125 */
            c->ctl_len += io.data_length;
            if (end) on_control(c, io.opcode);
            continue;
        }
        if (io.opcode == WSLAY_CONTINUATION_FRAME) {
            if (!c->msg_active) {
                kill_conn(c, "WebSocket protocol error from the server");
                break;
            }
        } else if (io.opcode == WSLAY_TEXT_FRAME || io.opcode == WSLAY_BINARY_FRAME) {
            if (start && c->msg_active) {
                kill_conn(c, "WebSocket protocol error from the server");
                break;
            }
            if (start) {
                c->msg_active = 1;
                c->msg_binary = io.opcode == WSLAY_BINARY_FRAME;
                start = 2; /* the message's first piece */
            }
        } else {
            kill_conn(c, "WebSocket protocol error from the server");
            break;
        }
        if (end && io.fin) c->msg_active = 0;
        if (c->state == C_OPEN)
            e->h.on_data(c, c->user, (const char *)io.data, io.data_length, start == 2,
                         end && io.fin, c->msg_binary);
    }
    c->in = NULL;
    c->in_len = 0;
}

/* Read what the socket has. */
static void on_readable(lt_ws *c) {
    lt_ws_env *e = c->env;
    for (int rounds = 0; rounds < 8 && !c->dead; rounds++) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_read(c->ssl, e->rx, RX_SIZE);
            if (r <= 0) {
                int err = SSL_get_error(c->ssl, r);
                if (err == SSL_ERROR_WANT_READ) return;
                if (err == SSL_ERROR_WANT_WRITE) {
                    set_events(c, EPOLLIN | EPOLLOUT);
                    return;
                }
                if (err == SSL_ERROR_ZERO_RETURN) {
                    kill_conn(c, "the server closed the connection");
                    return;
                }
                tls_why(c, "TLS read");
                kill_conn(c, NULL);
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, e->rx, RX_SIZE, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                if (errno == EINTR) continue;
                snprintf(c->why, sizeof(c->why), "read: %s", strerror(errno));
                kill_conn(c, NULL);
                return;
            }
            if (n == 0) {
                kill_conn(c, "the server closed the connection");
                return;
            }
        }
        if (c->state == C_UPGRADE)
            feed_upgrade(c, e->rx, (size_t)n);
        else if (c->state == C_OPEN || c->state == C_CLOSING)
            feed_frames(c, e->rx, (size_t)n);
        /* A short read emptied the socket; TLS reads a record at a time
         * and loops until it would block. */
        if (!c->ssl && (size_t)n < RX_SIZE) return;
    }
}

/* ------------------------------------------------------------ connecting */

static void tls_step(lt_ws *c) {
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        send_upgrade(c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: set_events(c, EPOLLIN); break;
    case SSL_ERROR_WANT_WRITE: set_events(c, EPOLLIN | EPOLLOUT); break;
    default: {
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK) {
            snprintf(c->why, sizeof(c->why), "TLS: server certificate: %s",
                     X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            tls_why(c, "TLS handshake");
        }
        kill_conn(c, NULL);
    }
    }
}

static void tcp_connected(lt_ws *c) {
    lt_ws_env *e = c->env;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) {
        snprintf(c->why, sizeof(c->why), "connect: %s", strerror(err));
        kill_conn(c, NULL);
        return;
    }
    if (!e->tls) {
        send_upgrade(c);
        return;
    }
    c->ssl = SSL_new(e->ssl_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        tls_why(c, "TLS");
        kill_conn(c, NULL);
        return;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!e->host_is_ip) SSL_set_tlsext_host_name(c->ssl, e->host);
    if (!e->insecure) SSL_set1_host(c->ssl, e->host);
    c->state = C_TLS;
    tls_step(c);
}

lt_ws *lt_ws_connect(lt_ws_env *e, void *user, char *err, size_t errlen) {
    static const struct wslay_frame_callbacks fcb = {on_wslay_send, on_wslay_recv,
                                                    on_wslay_genmask};
    struct epoll_event ev;
    lt_ws *c = calloc(1, sizeof(*c));
    int one = 1;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->env = e;
    c->user = user;
    c->fd = socket(e->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    if (wslay_frame_context_init(&c->fr, &fcb, c) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Each write goes out at once, as an interactive client's would. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    c->events = ev.events;
    c->state = C_TCP;
    list_push(&e->all, c);
    e->live++;
    if (connect(c->fd, (struct sockaddr *)&e->addr, e->addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(c->why, sizeof(c->why), "connect: %s", strerror(errno));
        kill_conn(c, NULL); /* reported from lt_ws_wait() */
    }
    return c;

fail:
    free_conn(c);
    return NULL;
}

/* ------------------------------------------------------------ calls */

int lt_ws_send_text(lt_ws *c, const void *p, size_t n) {
    if (c->dead || c->state != C_OPEN) return -1;
    return send_frame(c, WSLAY_TEXT_FRAME, p, n);
}

int lt_ws_flush(lt_ws *c) {
    int r;
    if (c->dead) return -1;
    r = write_out(c);
    c->want_writable = r == 1;
    return r;
}

size_t lt_ws_pending(const lt_ws *c) {
    return c->len - c->off;
}

void lt_ws_close(lt_ws *c, int code, const char *reason) {
    unsigned char b[125];
    size_t n = reason ? strlen(reason) : 0;
    if (c->dead) return;
    if (c->state != C_OPEN) {
        lt_ws_abort(c, "closed before the upgrade");
        return;
    }
    if (n > sizeof(b) - 2) n = sizeof(b) - 2;
    b[0] = (unsigned char)(code >> 8);
    b[1] = (unsigned char)code;
    if (n) memcpy(b + 2, reason, n);
    c->state = C_CLOSING;
    if (send_frame(c, WSLAY_CONNECTION_CLOSE, b, n + 2) != 0) {
        kill_conn(c, NULL);
        return;
    }
    c->close_sent = 1;
    write_out(c);
}

void lt_ws_abort(lt_ws *c, const char *why) {
    kill_conn(c, why);
}

static void on_event(lt_ws *c, unsigned ev) {
    if (c->state == C_TCP) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) tcp_connected(c);
        return;
    }
    if (c->state == C_TLS) {
        tls_step(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
    if (c->dead) return;
    if (c->off < c->len || (ev & EPOLLOUT)) {
        int r = write_out(c);
        if (r == 0 && c->want_writable && c->state == C_OPEN) {
            c->want_writable = 0;
            c->env->h.on_writable(c, c->user);
        }
    }
}

int lt_ws_wait(lt_ws_env *e, int timeout_ms) {
    struct epoll_event evs[MAX_EVENTS];
    /* With no descriptor registered this only sleeps. */
    int n = epoll_wait(e->ep, evs, MAX_EVENTS, e->dead ? 0 : timeout_ms);

    if (n < 0 && errno != EINTR) n = 0;
    for (int i = 0; i < n; i++) {
        lt_ws *c = evs[i].data.ptr;
        if (!c->dead) on_event(c, evs[i].events);
    }
    /* Callbacks of the connections that ended, then their memory. A
     * callback may end others: they join the list. */
    while (e->dead) {
        lt_ws *c = e->dead;
        list_remove(&e->dead, c);
        e->live--;
        if (c->state == C_OPEN || c->state == C_CLOSING)
            e->h.on_closed(c, c->user, c->peer_code);
        else
            e->h.on_fail(c, c->user, c->fail_status, c->why[0] ? c->why : "connection failed");
        free_conn(c);
    }
    return n < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ env */

lt_ws_env *lt_ws_env_new(const char *url, int insecure, const char *authorization,
                         const lt_ws_handlers *h, char *err, size_t errlen) {
    cli_ws_url u;
    struct addrinfo hints, *ai = NULL;
    char port[16], hosthdr[300];
    lt_ws_env *e;
    int rc, n;

    if (cli_split_ws_url(url, &u) != 0) {
        snprintf(err, errlen, "cannot use the URL \"%s\"", url);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->h = *h;
    e->ep = -1;
    e->tls = u.tls;
    e->insecure = insecure;
    e->mask_off = MASK_POOL; /* fill on first use */
    snprintf(e->host, sizeof(e->host), "%s", u.host);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", u.port);
    rc = getaddrinfo(u.host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve %s: %s", u.host, gai_strerror(rc));
        goto fail;
    }
    memcpy(&e->addr, ai->ai_addr, ai->ai_addrlen);
    e->addrlen = ai->ai_addrlen;
    e->family = ai->ai_family;
    freeaddrinfo(ai);
    {
        struct addrinfo nh, *na = NULL;
        memset(&nh, 0, sizeof(nh));
        nh.ai_flags = AI_NUMERICHOST;
        e->host_is_ip = getaddrinfo(u.host, NULL, &nh, &na) == 0;
        if (na) freeaddrinfo(na);
    }

    snprintf(hosthdr, sizeof(hosthdr), "%s%s%s:%d", strchr(u.host, ':') ? "[" : "", u.host,
             strchr(u.host, ':') ? "]" : "", u.port);
    n = snprintf(NULL, 0, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: ", u.path, hosthdr);
    e->req_head = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (e->req_head) {
        snprintf(e->req_head, (size_t)n + 1, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: ", u.path, hosthdr);
        n = snprintf(NULL, 0, "\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     authorization ? "Authorization: " : "", authorization ? authorization : "",
                     authorization ? "\r\n" : "");
        e->req_tail = n > 0 ? malloc((size_t)n + 1) : NULL;
    }
    if (!e->req_tail) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(e->req_tail, (size_t)n + 1, "\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
             authorization ? "Authorization: " : "", authorization ? authorization : "",
             authorization ? "\r\n" : "");

    if (e->tls) {
        e->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (!e->ssl_ctx) {
            snprintf(err, errlen, "cannot create a TLS context");
            goto fail;
        }
        SSL_CTX_set_default_verify_paths(e->ssl_ctx);
        SSL_CTX_set_verify(e->ssl_ctx, insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    }
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    if (e->ep < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    return e;

fail:
    lt_ws_env_free(e);
    return NULL;
}

void lt_ws_env_free(lt_ws_env *e) {
    if (!e) return;
    while (e->all) {
        lt_ws *c = e->all;
        list_remove(&e->all, c);
        free_conn(c);
    }
    while (e->dead) {
        lt_ws *c = e->dead;
        list_remove(&e->dead, c);
        free_conn(c);
    }
    if (e->ep >= 0) close(e->ep);
    SSL_CTX_free(e->ssl_ctx);
    free(e->req_head);
    free(e->req_tail);
    free(e);
}
