/*
 * libFuzzer target: the text/event-stream parser of llm_openai
 * (plugins/llm_openai/sse.c) on arbitrary bytes.
 *
 * Invariants checked:
 *   - the events and the result are the same whether the bytes arrive in
 *     one read, one byte per read, or in reads of random sizes (a server's
 *     stream is cut anywhere by TCP);
 *   - they are what a plain line-by-line reading of the same bytes gives
 *     (the oracle below follows the rules sse.h states: LF, CR LF or CR end
 *     a line, ':' starts a comment, "data" values joined with '\n', one
 *     space after the colon dropped, a blank line or the end dispatches),
 *     including where SSE_ETOOBIG stops the parse;
 *   - event data is NUL-terminated at len and never holds a CR.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

#define MAX_EVENT 2048 /* small, so that the size limit is reached */

typedef struct events {
    char *buf; /* every event's data, each followed by a 0xff marker */
    size_t len, cap;
    size_t n;
} events;

static void ev_put(events *e, const char *p, size_t n)
{
    if (e->len + n + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n + 1) cap *= 2;
        char *b = realloc(e->buf, cap);
        if (b == NULL) abort();
        e->buf = b;
        e->cap = cap;
    }
    if (n) memcpy(e->buf + e->len, p, n);
    e->len += n;
    e->buf[e->len++] = (char)0xff;
    e->n++;
}

static int on_event(void *ctx, const char *data, size_t len)
{
    if (data[len] != '\0' || memchr(data, '\r', len) != NULL) abort();
    ev_put(ctx, data, len);
    return 0;
}

/* The parser with the bytes cut into reads; step 0: one read, 1: one byte
 * per read, else reads of pseudo-random sizes 1..step. */
static int run(const uint8_t *data, size_t size, size_t step, uint32_t seed, events *out)
{
    sse_parser p;
    size_t i = 0;
    int rc = 0;

    sse_init(&p, MAX_EVENT);
    while (i < size && rc == 0) {
        size_t n = size - i;
        if (step == 1) n = 1;
        else if (step > 1) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % step;
            if (want < n) n = want;
        }
        rc = sse_feed(&p, (const char *)data + i, n, on_event, out);
        i += n;
    }
    if (rc == 0) rc = sse_finish(&p, on_event, out);
    sse_free(&p);
    return rc;
}

/* The oracle: whole lines first, then fields. */
static int oracle(const uint8_t *d, size_t size, events *out)
{
    char *acc = malloc(size + 1);
    size_t acc_len = 0, i = 0;
    int has = 0;

    if (acc == NULL) abort();
    while (i < size) {
        size_t s = i, e;
        while (i < size && d[i] != '\r' && d[i] != '\n') i++;
        e = i;
        if (e - s > MAX_EVENT) {
            free(acc);
            return SSE_ETOOBIG;
        }
        if (i < size && d[i] == '\r' && i + 1 < size && d[i + 1] == '\n') i++;
        if (i < size) i++;
        const char *l = (const char *)d + s;
        size_t n = e - s;
        if (n == 0) {
            if (has) ev_put(out, acc, acc_len);
            has = 0;
            acc_len = 0;
        } else if (l[0] != ':') {
            const char *colon = memchr(l, ':', n);
            size_t name = colon ? (size_t)(colon - l) : n;
            if (name == 4 && memcmp(l, "data", 4) == 0) {
                const char *v = colon ? colon + 1 : l + n;
                size_t vl = (size_t)(l + n - v);
                if (vl && *v == ' ') v++, vl--;
                if (acc_len + vl + 1 > MAX_EVENT) {
                    free(acc);
                    return SSE_ETOOBIG;
                }
                if (has) acc[acc_len++] = '\n';
                memcpy(acc + acc_len, v, vl);
                acc_len += vl;
                has = 1;
            }
        }
    }
    if (has) ev_put(out, acc, acc_len);
    free(acc);
    return 0;
}

static void same(const events *a, int ra, const events *b, int rb)
{
    if (ra != rb || a->n != b->n || a->len != b->len || (a->len && memcmp(a->buf, b->buf, a->len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    events whole = {0}, bytes = {0}, chunks = {0}, ref = {0};
    uint32_t seed = 2166136261u;

    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    int rw = run(data, size, 0, seed, &whole);
    int rb = run(data, size, 1, seed, &bytes);
    int rc = run(data, size, 37, seed, &chunks);
    int rr = oracle(data, size, &ref);
    if (rw != 0 && rw != SSE_ETOOBIG) abort(); /* SSE_ENOMEM: not at these sizes */
    same(&whole, rw, &bytes, rb);
    same(&whole, rw, &chunks, rc);
    same(&whole, rw, &ref, rr);
    free(whole.buf);
    free(bytes.buf);
    free(chunks.buf);
    free(ref.buf);
    return 0;
}
