/*
 * libFuzzer target: the WebSocket upgrade head as /v1/realtime reads it
 * (ws_upgrade in host/net/ws.c: request line and session_id, Origin,
 * X-Forwarded-For, Sec-WebSocket-Protocol, OpenAI-Beta, Authorization,
 * through host/net/head.c, host/net/auth.c and host/net/client_limits.c).
 *
 * ws.c is compiled into this file so that ws_upgrade itself runs, on one
 * end of a socketpair holding the head, with the daemon around it reduced
 * to stubs (the HTTP server and the sessions) and real auth and client
 * limits configured from an INI text: two API keys, trusted proxies,
 * allowed origins. A head that holds "ek_fuzz_secret" has it replaced by a
 * client secret minted for this run, so that secrets are redeemed too.
 *
 * Invariants checked:
 *   - every head ends one way: handed to HTTP (not a GET of /v1/realtime,
 *     by an independent reading of the request line), refused with a
 *     well-formed answer (status line, JSON error body of the announced
 *     length), or queued for the WebSocket server;
 *   - a queued upgrade presented a credential: an API key or the minted
 *     secret occurs in its head; a secret's session.update is JSON; its
 *     resume id is empty, "invalid" or a valid id taken from the query;
 *     the client address is an address;
 *   - no refusal is for a limit that is not configured (429, 503);
 *   - what is logged about it (at debug level) stays one record per line,
 *     whatever the client sent, and never shows an API key.
 */
#define lws_cancel_service fuzz_cancel_service
#include "../../host/net/ws.c"
#undef lws_cancel_service

#include <arpa/inet.h>
#include <ctype.h>
#include <sys/mman.h>
#include <netinet/in.h>

#include "base/cfg.h"

#define KEY1 "sk-test-1234567890"
#define KEY2 "sk-fuzz-second-key-0001"
#define SECRET_MARK "ek_fuzz_secret"

/* ------------------------------------------------------------ the daemon around ws.c */

static int g_http_calls;
static int g_log_fd = -1;

void fuzz_cancel_service(struct lws_context *context)
{
    (void)context;
}

int http_add_connection(void *user, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)user, (void)addr, (void)len;
    g_http_calls++;
    close(fd);
    return 0;
}

void http_count_realtime(int status, uint64_t ns)
{
    (void)status, (void)ns;
}

void http_realtime_active(int delta)
{
    (void)delta;
}

int session_count(void) { return 0; }

session *session_new(app *a, const transport_ops *tp, void *conn, int beta, const char *resume_id)
{
    (void)a, (void)tp, (void)conn, (void)beta, (void)resume_id;
    return NULL;
}

void session_on_message(session *s, char *text, size_t len)
{
    (void)s, (void)text, (void)len;
}

void session_on_binary(session *s) { (void)s; }

void session_on_closed(session *s) { (void)s; }

void session_abandon(session *s) { (void)s; }

/* One live call, rtc_fuzzcall, whose session is a counter of references:
 * every reference webrtc_call_session hands out is given back. */
#define FUZZ_CALL "rtc_fuzzcall"
#define FUZZ_CONNECTING "rtc_fuzzconnecting" /* a call whose peer has not connected */
static int g_call_refs;
static int g_call_session;

session *webrtc_call_session(const char *call_id, int *exists)
{
    if (exists) *exists = strcmp(call_id, FUZZ_CONNECTING) == 0 || strcmp(call_id, FUZZ_CALL) == 0;
    if (strcmp(call_id, FUZZ_CALL) != 0) return NULL;
    g_call_refs++;
    return (session *)&g_call_session;
}

void session_ref(session *s)
{
    if (s != (session *)&g_call_session) abort();
    g_call_refs++;
}

void session_unref(session *s)
{
    if (s != (session *)&g_call_session || --g_call_refs < 0) abort();
}

void session_attach(session *s, const transport_ops *tp, void *conn) { (void)s, (void)tp, (void)conn; }
void session_detach(session *s, void *conn) { (void)s, (void)conn; }
void session_on_control_message(session *s, const transport_ops *tp, void *conn, char *text, size_t len)
{
    (void)s, (void)tp, (void)conn, (void)text, (void)len;
}

/* host/base/worker.c is not linked: the lws thread's batching is a no-op. */
void strand_batch_begin(void) {}
void strand_batch_end(void) {}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static app a;
    static const char conf[] =
        "[server]\n"
        "trusted_proxies = 127.0.0.0/8, 10.0.0.0/8\n"
        "allowed_origins = https://app.example.com, http://localhost:8080\n"
        "[auth]\n"
        "api_keys = " KEY1 ", " KEY2 "\n";
    cfg_file *c = NULL;
    char err[512];
    (void)argc, (void)argv;

    /* Everything logged goes to a memory file, checked after each head. */
    if ((g_log_fd = memfd_create("fuzz_upgrade_log", 0)) < 0) abort();
    log_set_fd(g_log_fd);
    log_set_level(VX_LOG_DEBUG);
    if (cfg_parse_string(conf, "fuzz.ini", &c, err, sizeof err) != 0 || settings_load(c, &a.s, err, sizeof err) != 0 ||
        auth_load(&a.s, err, sizeof err) != 0 || limits_configure(&a.s, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_upgrade: %s\n", err);
        abort();
    }
    cfg_free(c);
    atomic_store(&a.phase, APP_RUNNING);
    g_app = &a;
    return 0;
}

/* ------------------------------------------------------------ checks */

/* An independent reading of what ws_upgrade takes from the request line
 * (sscanf "GET %511s HTTP/": "GET", blanks, a token): 1 when the token, up
 * to '?' or '#', is /v1/realtime. */
static int asks_for_realtime(const char *h)
{
    char tok[512];
    size_t n = 0;
    if (strncmp(h, "GET", 3) != 0) return 0;
    h += 3;
    while (isspace((unsigned char)*h)) h++;
    while (*h && !isspace((unsigned char)*h) && n < sizeof tok - 1) tok[n++] = *h++;
    tok[n] = '\0';
    tok[strcspn(tok, "?#")] = '\0';
    return strcmp(tok, "/v1/realtime") == 0;
}

/* Every line a log record of the text format ("2024/01/31 12:00:00 WARN
 * ..."), no API key in any. Empties the log. */
static void check_log(void)
{
    off_t n = lseek(g_log_fd, 0, SEEK_END);
    if (n <= 0) return;
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL || pread(g_log_fd, buf, (size_t)n, 0) != n) abort();
    buf[n] = '\0';
    if (buf[n - 1] != '\n' || strstr(buf, KEY1) || strstr(buf, KEY2)) abort();
    for (char *l = buf; *l; l = strchr(l, '\n') + 1) {
        int y, mo, d, h, mi, sec, off = 0;
        char level[8];
        if (sscanf(l, "%4d/%2d/%2d %2d:%2d:%2d %7s %n", &y, &mo, &d, &h, &mi, &sec, level, &off) != 7 || off == 0 ||
            (strcmp(level, "DEBUG") && strcmp(level, "INFO") && strcmp(level, "WARN") && strcmp(level, "ERROR")))
            abort();
    }
    free(buf);
    if (ftruncate(g_log_fd, 0) != 0 || lseek(g_log_fd, 0, SEEK_SET) != 0) abort();
}

/* The answer of a refusal: status line, headers, JSON body. Its status. */
static int check_answer(const char *r, size_t n)
{
    int status = 0, off = 0;
    if (sscanf(r, "HTTP/1.1 %3d %*[A-Za-z ]%n", &status, &off) != 1 || off == 0) abort();
    const char *eoh = memmem(r, n, "\r\n\r\n", 4);
    if (eoh == NULL || memmem(r, (size_t)(eoh - r), "\r\nContent-Type: application/json\r\n", 34) == NULL) abort();
    const char *cl = memmem(r, (size_t)(eoh - r), "\r\nContent-Length: ", 18);
    if (cl == NULL) abort();
    size_t len = strtoul(cl + 18, NULL, 10), body = n - (size_t)(eoh + 4 - r);
    if (len != body) abort();
    json_t *o = json_loadb(eoh + 4, body, 0, NULL);
    json_t *e = json_object_get(o, "error");
    if (!json_is_string(json_object_get(e, "message")) || !json_is_string(json_object_get(e, "type")) ||
        !json_is_string(json_object_get(e, "code")))
        abort();
    json_decref(o);
    return status;
}

static void check_queued(const pending *p, const char *h, size_t hl, const char *secret)
{
    int has_key = memmem(h, hl, KEY1, strlen(KEY1)) || memmem(h, hl, KEY2, strlen(KEY2)) ||
                  (secret && memmem(h, hl, secret, strlen(secret)));
    if (!has_key) abort();
    if (p->update) {
        json_t *o = json_loads(p->update, 0, NULL);
        if (!json_is_object(o) || strcmp(json_string_value(json_object_get(o, "type")), "session.update") != 0)
            abort();
        json_decref(o);
        if (secret == NULL || memmem(h, hl, secret, strlen(secret)) == NULL) abort();
    }
    if (p->control) {
        /* Only the live call's id, and only with an API key (never a secret). */
        if (memmem(h, hl, "call_id=" FUZZ_CALL, strlen("call_id=" FUZZ_CALL)) == NULL) abort();
        if (!memmem(h, hl, KEY1, strlen(KEY1)) && !memmem(h, hl, KEY2, strlen(KEY2))) abort();
        if (p->update) abort();
    }
    if (p->resume[0] && strcmp(p->resume, "invalid") != 0) {
        char q[96];
        snprintf(q, sizeof q, "session_id=%s", p->resume);
        if (!persist_valid_id(p->resume) || memmem(h, hl, q, strlen(q)) == NULL) abort();
    }
    unsigned char a[16];
    if (inet_pton(AF_INET, p->client.text, a) != 1 && inet_pton(AF_INET6, p->client.text, a) != 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char secret[AUTH_SECRET_LEN + 1], *head = NULL;
    const char *use = NULL;
    size_t hl = size;
    int sv[2];

    /* The head, with a live client secret in place of the mark. */
    const uint8_t *mark = memmem(data, size, SECRET_MARK, strlen(SECRET_MARK));
    long long exp;
    if (mark && auth_mint(1, "{\"instructions\":\"from a client secret\"}", secret, sizeof secret, &exp) == 0) {
        size_t pre = (size_t)(mark - data), ml = strlen(SECRET_MARK);
        hl = size - ml + AUTH_SECRET_LEN;
        if ((head = malloc(hl)) == NULL) abort();
        memcpy(head, data, pre);
        memcpy(head + pre, secret, AUTH_SECRET_LEN);
        memcpy(head + pre + AUTH_SECRET_LEN, mark + ml, size - pre - ml);
        use = secret;
    } else {
        if ((head = malloc(size ? size : 1)) == NULL) abort();
        memcpy(head, data, size);
    }

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
    if (hl && send(sv[1], head, hl, MSG_NOSIGNAL) != (ssize_t)hl) abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    peer.sin_addr.s_addr = htonl(0x7f000001);

    int http_before = g_http_calls;
    ws_upgrade(NULL, sv[0], (struct sockaddr *)&peer, sizeof peer);

    /* What came of it. */
    pending *p = g_pend_head;
    g_pend_head = g_pend_tail = NULL;
    char answer[2048];
    size_t an = 0;
    ssize_t r;
    while (an < sizeof answer - 1 && (r = recv(sv[1], answer + an, sizeof answer - 1 - an, MSG_DONTWAIT)) > 0)
        an += (size_t)r;
    answer[an] = '\0';

    size_t seen = hl < 8191 ? hl : 8191;
    char *text = malloc(seen + 1);
    if (text == NULL) abort();
    memcpy(text, head, seen);
    text[seen] = '\0';
    int plain = memchr(text, '\0', seen) == NULL;
    int outcomes = (g_http_calls != http_before) + (p != NULL) + (an > 0);
    if (outcomes > 1 || (outcomes == 0 && hl > 0)) abort();
    if (plain && hl > 0 && (g_http_calls != http_before) == asks_for_realtime(text)) abort();
    if (an > 0) {
        int status = check_answer(answer, an);
        if (status != 400 && status != 401 && status != 403 && status != 404 && status != 409) abort();
        if ((status == 404 || status == 409) && memmem(text, seen, "call_id=", 8) == NULL) abort();
        if (status == 409 && memmem(text, seen, FUZZ_CONNECTING, strlen(FUZZ_CONNECTING)) == NULL) abort();
    }
    if (p != NULL) {
        if (p->next != NULL) abort();
        check_queued(p, text, seen, use);
        atomic_fetch_sub(&g_pending_count, 1);
        close(p->fd);
        pending_free(p);
    }
    if (atomic_load(&g_pending_count) != 0) abort();
    if (g_call_refs != 0) abort(); /* what a refused or queued upgrade took is given back */
    check_log();
    close(sv[1]);
    free(text);
    free(head);
    return 0;
}
