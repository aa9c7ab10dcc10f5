/*
 * libFuzzer target: the request-head peek of the front (host/net/front.c), on
 * arbitrary bytes sent by a client.
 *
 * front.c is compiled into this file, so its own front_peek() runs on a
 * real socket (one end of a socketpair) with a front that has no thread,
 * listener or epoll: the bytes are written to the other end, all at once
 * and then cut into pieces, and front_peek() is called after each write,
 * then once more as the peer hangs up, as the front thread would.
 *
 * Invariants checked:
 *   - the outcome (handed to HTTP, handed to WebSocket, dropped and why,
 *     the method and path reported) does not depend on how the bytes were
 *     cut;
 *   - a connection is handed over only with a complete head ("\r\n\r\n"
 *     within max_head) without bare LF line ends and without both
 *     Content-Length and Transfer-Encoding; it goes to WebSocket exactly
 *     when the head's Upgrade and Connection headers, read with head.c,
 *     name "websocket" and "upgrade";
 *   - each drop reason matches the bytes (no end of head within max_head
 *     for 431, a bare LF or two framings for 400, a TLS record header for
 *     TLS, a hang-up before the end of the head), and the client receives
 *     exactly the answer for it;
 *   - the reported method is the first token of the bytes and the path the
 *     visible bytes after it, within their bounds.
 */
#include "../../host/net/front.c"

#include "net/head.h"

#define FUZZ_MAX_HEAD 2048

typedef struct outcome {
    int kind; /* 0 pending, 1 http, 2 upgrade, 3 dropped */
    front_drop why;
    char method[FRONT_METHOD_MAX], path[FRONT_PATH_MAX];
    char answer[512];
    size_t answer_len;
} outcome;

static outcome *cur;

static int on_http(void *user, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)user, (void)fd, (void)addr, (void)len;
    cur->kind = 1;
    return -1; /* the front closes fd */
}

static int on_upgrade(void *user, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)user, (void)fd, (void)addr, (void)len;
    cur->kind = 2;
    return -1;
}

static void on_dropped(void *user, front_drop why, const char *method, const char *path)
{
    (void)user;
    cur->kind = 3;
    cur->why = why;
    if (strlen(method) >= sizeof cur->method || strlen(path) >= sizeof cur->path) abort();
    strcpy(cur->method, method);
    strcpy(cur->path, path);
}

static void on_log(void *user, const char *line)
{
    (void)user, (void)line;
}

/* Send data in pieces (step 0: one piece) and peek after each, as the front
 * thread does on every arrival; then hang up and peek once more. */
static void run(const uint8_t *data, size_t size, size_t step, uint32_t seed, outcome *o)
{
    static front f;
    int sv[2];
    size_t i = 0;

    memset(o, 0, sizeof *o);
    cur = o;
    if (f.buf == NULL) {
        f.cb = (front_callbacks){.http = on_http, .upgrade = on_upgrade, .dropped = on_dropped, .log = on_log};
        f.max_head = FUZZ_MAX_HEAD;
        f.head_timeout_ms = 10000;
        f.max_pending = 1;
        f.ep = -1;
        f.lfd = -1;
        if ((f.buf = malloc(f.max_head)) == NULL) abort();
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("socketpair");
        abort();
    }
    /* Every send is queued as a buffer of its own: room for a few hundred. */
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    front_conn *c = calloc(1, sizeof *c);
    if (c == NULL) abort();
    c->fd = sv[0];
    f.first = f.last = c;
    atomic_store(&f.npending, 1);

    int waiting = 1;
    while (waiting && i < size) {
        size_t n = size - i;
        if (step) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % step;
            if (want < n) n = want;
        }
        if (send(sv[1], data + i, n, MSG_NOSIGNAL) != (ssize_t)n) abort();
        i += n;
        waiting = front_peek(&f, c, 0);
    }
    if (waiting) {
        shutdown(sv[1], SHUT_WR);
        if (front_peek(&f, c, 1) != 0) abort(); /* a hang-up always ends it */
    }
    if (f.first != NULL || atomic_load(&f.npending) != 0) abort();
    ssize_t r;
    while ((r = recv(sv[1], o->answer + o->answer_len, sizeof o->answer - o->answer_len, MSG_DONTWAIT)) > 0)
        o->answer_len += (size_t)r;
    close(sv[1]);
}

static void same(const outcome *a, const outcome *b)
{
    if (a->kind != b->kind || a->why != b->why || strcmp(a->method, b->method) != 0 ||
        strcmp(a->path, b->path) != 0 || a->answer_len != b->answer_len ||
        memcmp(a->answer, b->answer, a->answer_len) != 0)
        abort();
}

/* Whether a comma-separated list holds tok (case-insensitive, blanks
 * around elements ignored), written apart from front.c's own. */
static int list_has(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *q = end;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t')) q--;
        if ((size_t)(q - p) == tl && strncasecmp(p, tok, tl) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int has_bare_lf(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r')) return 1;
    return 0;
}

/* Whether a header line (after the request line) is named `name`. */
static int has_header(const char *h, size_t n, const char *name)
{
    static char out[FUZZ_MAX_HEAD + 8];
    return head_values(h, n, name, out, sizeof out) > 0;
}

static void check(const uint8_t *data, size_t size, const outcome *o)
{
    size_t seen = size < FUZZ_MAX_HEAD ? size : FUZZ_MAX_HEAD;
    const uint8_t *end = memmem(data, seen, "\r\n\r\n", 4);
    static const char *const answers[] = {
        [FRONT_DROP_TIMEOUT] = front_408, [FRONT_DROP_TOO_LARGE] = front_431,
        [FRONT_DROP_OVERLOAD] = front_503, [FRONT_DROP_BAD_REQUEST] = front_400,
        [FRONT_DROP_CLOSED] = "", [FRONT_DROP_TLS] = ""};

    if (o->kind == 1 || o->kind == 2) {
        if (end == NULL || o->answer_len != 0) abort();
        size_t hl = (size_t)(end - data) + 4;
        const char *h = (const char *)data;
        if (has_bare_lf(data, hl)) abort();
        if (has_header(h, hl, "Content-Length") && has_header(h, hl, "Transfer-Encoding")) abort();
        if (memchr(data, '\0', hl) == NULL) {
            static char up[FUZZ_MAX_HEAD + 8], conn[FUZZ_MAX_HEAD + 8];
            int ws = head_values(h, hl, "Upgrade", up, sizeof up) > 0 && list_has(up, "websocket") &&
                     head_values(h, hl, "Connection", conn, sizeof conn) > 0 && list_has(conn, "upgrade");
            if (ws != (o->kind == 2)) abort();
        }
        return;
    }
    if (o->kind != 3) abort();
    switch (o->why) {
    case FRONT_DROP_TOO_LARGE:
        if (end != NULL || size < FUZZ_MAX_HEAD) abort();
        break;
    case FRONT_DROP_CLOSED:
        if (end != NULL || size >= FUZZ_MAX_HEAD) abort();
        break;
    case FRONT_DROP_BAD_REQUEST: {
        size_t hl = end ? (size_t)(end - data) + 4 : seen;
        if (!has_bare_lf(data, hl) &&
            !(end && has_header((const char *)data, hl, "Content-Length") &&
              has_header((const char *)data, hl, "Transfer-Encoding")))
            abort();
        break;
    }
    case FRONT_DROP_TLS:
        if (size < 3 || data[0] != 0x16 || data[1] != 3 || data[2] > 4) abort();
        break;
    default:
        abort(); /* no deadline or overload here */
    }
    const char *want = answers[o->why];
    if (o->answer_len != strlen(want) || memcmp(o->answer, want, o->answer_len) != 0) abort();

    size_t ml = strlen(o->method), pl = strlen(o->path);
    if (ml) {
        if (ml >= FRONT_METHOD_MAX || size <= ml || memcmp(data, o->method, ml) != 0 || data[ml] != ' ') abort();
        for (size_t i = 0; i < ml; i++)
            if (!front_is_tchar((unsigned char)o->method[i])) abort();
        if (pl >= FRONT_PATH_MAX || size < ml + 1 + pl || memcmp(data + ml + 1, o->path, pl) != 0) abort();
        for (size_t i = 0; i < pl; i++)
            if ((unsigned char)o->path[i] <= 0x20 || (unsigned char)o->path[i] >= 0x7f) abort();
    } else if (pl) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole, pieces, bytes;
    uint32_t seed = 2166136261u;

    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    run(data, size, 0, seed, &whole);
    check(data, size, &whole);
    run(data, size, 24, seed, &pieces);
    same(&whole, &pieces);
    if (size <= 256) {
        run(data, size, 1, seed, &bytes);
        same(&whole, &bytes);
    }
    return 0;
}
