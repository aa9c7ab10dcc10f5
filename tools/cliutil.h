/*
 * Small helpers shared by the command-line tools (voxray-client,
 * voxray-loadtest): strict number parsing for options, the monotonic clock,
 * splitting a ws:// or wss:// URL for libwebsockets, and a growable string.
 */
#ifndef VOXRAY_TOOLS_CLIUTIL_H
#define VOXRAY_TOOLS_CLIUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse all of s as a finite number in [lo, hi]. Returns 0 and sets *out,
 * or -1 (out untouched) on trailing junk, overflow or a value out of range. */
int cli_parse_double(const char *s, double lo, double hi, double *out);

/* Parse all of s as a base-10 integer in [lo, hi]; -1 as above. */
int cli_parse_int(const char *s, long lo, long hi, int *out);

/* CLOCK_MONOTONIC in microseconds (the clock lws_sul timers use). */
int64_t cli_now_us(void);

/* A WebSocket URL split for lws_client_connect_via_info(). host points into
 * buf, path is "/..." (at least "/"). */
typedef struct cli_ws_url {
    const char *host;
    int port;
    int tls;            /* wss:// */
    char path[1024];
    char buf[1024];     /* keeps host alive */
} cli_ws_url;

/* Split ws://HOST[:PORT][/PATH] or wss://... (default ports 80 and 443).
 * Returns 0, or -1 on anything else (another scheme, no host, too long). */
int cli_split_ws_url(const char *url, cli_ws_url *out);

/* A growable NUL-terminated string; zero-initialised it is empty. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

/* Append n bytes. Returns 0, or -1 (buffer unchanged) when out of memory. */
int sbuf_add(sbuf *b, const char *s, size_t n);
/* The text so far ("" when nothing was added). */
const char *sbuf_str(const sbuf *b);
/* Empty it, keeping the allocation. */
void sbuf_reset(sbuf *b);
/* Free it; it is empty again. */
void sbuf_free(sbuf *b);

#endif
