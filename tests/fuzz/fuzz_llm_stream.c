/*
 * libFuzzer target: what llm_openai reads out of an answer body
 * (plugins/llm_openai/chat.c, tools.c and sse.c): a streamed answer
 * (server-sent events of chat.completion.chunk JSON: text deltas,
 * tool-call deltas, usage, error objects, [DONE]) and the same bytes as a
 * non-streamed answer (one chat.completion).
 *
 * The stream is driven as llm_openai.c drives it: every event goes to
 * chat_event until [DONE] or a failure; at the end of the body a last
 * event without its blank line is read, and the answer is complete if it
 * had [DONE] or a finish_reason.
 *
 * Invariants checked:
 *   - text, tool-call fragments, the end and the usage are the same
 *     whether the body arrives at once, byte by byte or in pieces;
 *   - a tool call's first fragment, and only it, carries its id and name
 *     (both non-empty); later fragments carry arguments (never empty);
 *     an answer that completes has handed on calls numbered exactly
 *     0..n-1 (n the calls it had, at most TOOLS_MAX_CALLS): a call whose
 *     name comes late is handed on late, one that never gets a name fails
 *     the answer;
 *   - text pieces are non-empty valid UTF-8;
 *   - a failure has a code and a message naming the plugin.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "sse.h"

typedef struct rec {
    char *p; /* the events, in a canonical form */
    size_t len, cap;
    unsigned char started[TOOLS_MAX_CALLS]; /* calls handed on, by index */
    uint32_t calls;                         /* how many */
    int ended;
} rec;

static void put(rec *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 512;
        while (cap < r->len + n) cap *= 2;
        char *q = realloc(r->p, cap);
        if (q == NULL) abort();
        r->p = q;
        r->cap = cap;
    }
    memcpy(r->p + r->len, p, n);
    r->len += n;
}

/* tag, a number, then text ("-" for NULL) and a separator. */
static void putf(rec *r, const char *tag, size_t a, const char *s)
{
    char h[64];
    int n = snprintf(h, sizeof h, "%s%zu:", tag, a);
    put(r, h, (size_t)n);
    s = s ? s : "-";
    put(r, s, strlen(s) + 1);
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) need = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) need = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) need = 3, min = 0x10000, c &= 0x07;
        else return 0;
        if (i + need >= n) return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += need + 1;
    }
    return 1;
}

static void on_token(void *user, const char *text, size_t len)
{
    rec *r = user;
    if (len == 0 || !valid_utf8((const unsigned char *)text, len)) abort();
    putf(r, "T", len, NULL);
    put(r, text, len);
}

/* Made-up ids count across the process: compare them by shape. */
static const char *id_shape(const char *id)
{
    if (id && strncmp(id, "call_vx", 7) == 0 && id[7] && strspn(id + 7, "0123456789") == strlen(id + 7))
        return "call_vx#";
    return id;
}

static void on_tool(void *user, uint32_t index, const char *id, const char *name, const char *args, size_t len)
{
    rec *r = user;
    if (index >= TOOLS_MAX_CALLS) abort();
    if (!r->started[index]) { /* a call's first fragment */
        if (id == NULL || name == NULL || *id == '\0' || *name == '\0') abort();
        r->started[index] = 1;
        r->calls++;
    } else if (id != NULL || name != NULL || len == 0) {
        abort();
    }
    putf(r, "C", index, id_shape(id));
    putf(r, "A", len, name);
    put(r, args, len);
}

static void check_err(const vx_error *e, int rc)
{
    if (rc >= 0 || e->code != rc || memchr(e->msg, '\0', sizeof e->msg) == NULL ||
        strncmp(e->msg, "llm_openai: ", 12) != 0)
        abort();
}

typedef struct stream {
    chat_answer a;
    rec *r;
    vx_error err;
} stream;

/* A complete answer handed on calls 0..n-1, all it had. */
static void all_calls_out(const rec *r, const chat_answer *a)
{
    if (r->calls != tools_count(&a->tools)) abort();
    for (uint32_t i = 0; i < r->calls; i++)
        if (!r->started[i]) abort();
}

/* llm_event: [DONE] completes the answer; after the end nothing counts. */
static int on_event(void *ctx, const char *data, size_t len)
{
    stream *s = ctx;
    int rc;
    if (s->r->ended) return 0;
    if ((rc = chat_event(&s->a, data, len, &s->err)) == CHAT_DONE) {
        s->r->ended = 1;
        int fin = chat_finish(&s->a, &s->err);
        if (fin != 0) check_err(&s->err, fin);
        else all_calls_out(s->r, &s->a);
        putf(s->r, "DONE", (size_t)(fin != 0), NULL);
        return 0;
    }
    return rc;
}

static void run(const uint8_t *data, size_t size, size_t step, uint32_t seed, rec *r)
{
    stream s;
    sse_parser p;
    size_t i = 0;
    int rc = 0;

    memset(&s, 0, sizeof s);
    s.r = r;
    s.a.ev = (chat_events){r, on_token, on_tool};
    sse_init(&p, 4u << 20);
    while (i < size && rc == 0) {
        size_t n = size - i;
        if (step) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % step;
            if (want < n) n = want;
        }
        rc = sse_feed(&p, (const char *)data + i, n, on_event, &s);
        i += n;
    }
    if (rc == 0 && !r->ended) {
        rc = sse_finish(&p, on_event, &s);
        if (rc == 0 && !r->ended) {
            int fin = s.a.finished ? chat_finish(&s.a, &s.err) : 0;
            if (fin != 0) check_err(&s.err, fin);
            else if (s.a.finished) all_calls_out(r, &s.a);
            putf(r, s.a.finished ? "FINISHED" : "INCOMPLETE", (size_t)(fin != 0), NULL);
        }
    }
    if (rc != 0) {
        if (rc == SSE_ETOOBIG || rc == SSE_ENOMEM) abort(); /* not at these sizes */
        check_err(&s.err, rc);
        putf(r, "ERR", (size_t)-rc, s.err.msg);
    }
    if (s.a.has_usage) {
        putf(r, "U", s.a.usage.prompt_tokens, NULL);
        putf(r, "/", s.a.usage.completion_tokens, NULL);
    }
    if (tools_count(&s.a.tools) > TOOLS_MAX_CALLS) abort();
    sse_free(&p);
    chat_answer_free(&s.a);
}

static void whole(const uint8_t *data, size_t size)
{
    rec r = {0};
    chat_answer a = {.ev = {&r, on_token, on_tool}};
    vx_error err = {0};
    int rc = chat_whole(&a, (const char *)data, size, &err);
    if (rc != 0) check_err(&err, rc);
    else if (chat_finish(&a, &err) != 0) check_err(&err, err.code);
    else all_calls_out(&r, &a);
    chat_answer_free(&a);
    free(r.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rec a = {0}, b = {0}, c = {0};
    uint32_t seed = 2166136261u;

    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    run(data, size, 0, seed, &a);
    run(data, size, 1, seed, &b);
    run(data, size, 29, seed, &c);
    if (a.len != b.len || a.len != c.len || (a.len && (memcmp(a.p, b.p, a.len) || memcmp(a.p, c.p, a.len))))
        abort();
    whole(data, size);
    free(a.p);
    free(b.p);
    free(c.p);
    return 0;
}
