/*
 * sse: incremental text/event-stream parser (see sse.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sse.h"

void sse_init(sse_parser *p, size_t max) {
    memset(p, 0, sizeof(*p));
    p->max = max;
}

void sse_free(sse_parser *p) {
    free(p->line);
    free(p->data);
    p->line = p->data = NULL;
}

/* Make room for n more bytes (and a NUL) in *buf. */
static int sse_reserve(char **buf, size_t *cap, size_t len, size_t n, size_t max) {
    size_t want = len + n + 1, c = *cap ? *cap : 256;
    char *b;

    if (len + n > max) return SSE_ETOOBIG;
    if (want <= *cap) return 0;
    while (c < want) c *= 2;
    if (!(b = realloc(*buf, c))) return SSE_ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

static int sse_dispatch(sse_parser *p, sse_event_fn fn, void *ctx) {
    int rc = 0;

    if (p->has_data) {
        p->data[p->data_len] = '\0';
        rc = fn(ctx, p->data, p->data_len);
    }
    p->has_data = 0;
    p->data_len = 0;
    return rc;
}

/* One complete line (without its ending). */
static int sse_line(sse_parser *p, sse_event_fn fn, void *ctx) {
    const char *l = p->line, *colon, *v;
    size_t n = p->line_len, name_len, vlen;
    int rc;

    p->line_len = 0;
    if (n == 0) return sse_dispatch(p, fn, ctx);
    if (l[0] == ':') return 0; /* comment: ": ping" keep-alives */
    colon = memchr(l, ':', n);
    name_len = colon ? (size_t)(colon - l) : n;
    if (name_len != 4 || memcmp(l, "data", 4) != 0) return 0;
    v = colon ? colon + 1 : l + n;
    vlen = (size_t)(l + n - v);
    if (vlen && *v == ' ') v++, vlen--; /* "data: x" and "data:x" carry the same x */
    if ((rc = sse_reserve(&p->data, &p->data_cap, p->data_len, vlen + 1, p->max)) != 0)
        return rc;
    if (p->has_data) p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, v, vlen);
    p->data_len += vlen;
    p->data[p->data_len] = '\0';
    p->has_data = 1;
    return 0;
}

int sse_feed(sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ctx) {
    size_t i = 0;
    int rc;

    while (i < n) {
        const char *s = buf + i;
        size_t left = n - i, run;

        if (p->after_cr) {
            p->after_cr = 0;
            if (*s == '\n') { /* the LF of a CR LF split across reads */
                i++;
                continue;
            }
        }
        /* The run of ordinary bytes up to the next CR or LF. */
        for (run = 0; run < left && s[run] != '\n' && s[run] != '\r'; run++)
            ;
        if (run) {
            if ((rc = sse_reserve(&p->line, &p->line_cap, p->line_len, run, p->max)) != 0)
                return rc;
            memcpy(p->line + p->line_len, s, run);
            p->line_len += run;
            i += run;
        }
        if (run == left) break; /* the line continues in a later read */
        p->after_cr = s[run] == '\r';
        i++;
        if ((rc = sse_line(p, fn, ctx)) != 0) return rc;
    }
    return 0;
}

int sse_finish(sse_parser *p, sse_event_fn fn, void *ctx) {
    int rc;

    if (p->line_len && (rc = sse_line(p, fn, ctx)) != 0) return rc;
    return sse_dispatch(p, fn, ctx);
}
