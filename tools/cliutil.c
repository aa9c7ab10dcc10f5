/*
 * Helpers shared by the command-line tools (see cliutil.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "cliutil.h"

int cli_parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, long lo, long hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int64_t cli_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int cli_split_ws_url(const char *url, cli_ws_url *out) {
    const char *proto, *addr, *p;
    size_t n = strlen(url);

    memset(out, 0, sizeof(*out));
    if (n >= sizeof(out->buf)) return -1;
    memcpy(out->buf, url, n + 1);
    /* lws_parse_uri() edits buf in place and defaults the port from the
     * scheme (80, or 443 for wss and https). */
    if (lws_parse_uri(out->buf, &proto, &addr, &out->port, &p) != 0) return -1;
    if (strcmp(proto, "ws") == 0)
        out->tls = 0;
    else if (strcmp(proto, "wss") == 0)
        out->tls = 1;
    else
        return -1;
    if (!*addr || out->port <= 0 || out->port > 65535) return -1;
    if (snprintf(out->path, sizeof(out->path), "/%s", p) >= (int)sizeof(out->path)) return -1;
    out->host = addr;
    return 0;
}

int sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + n + 1) cap *= 2;
        p = realloc(b->s, cap);
        if (!p) return -1;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

const char *sbuf_str(const sbuf *b) {
    return b->s ? b->s : "";
}

void sbuf_reset(sbuf *b) {
    b->len = 0;
    if (b->s) b->s[0] = '\0';
}

void sbuf_free(sbuf *b) {
    free(b->s);
    memset(b, 0, sizeof(*b));
}
