/*
 * sse: an incremental parser of text/event-stream (the WHATWG "server-sent
 * events" format) as OpenAI-compatible servers stream chat completions.
 *
 * Bytes go in as they arrive, split anywhere (inside a line, a CR LF pair or
 * a UTF-8 sequence); out comes the data of each complete event. Lines end in
 * LF, CR LF or CR; a line starting with ':' is a comment (keep-alive); an
 * event's "data:" lines are joined with '\n'; other fields (event, id, retry)
 * are ignored; a blank line dispatches the event.
 */
#ifndef VX_SSE_H
#define VX_SSE_H

#include <stddef.h>

typedef struct sse_parser {
    char *line; /* the line being read, not terminated */
    size_t line_len, line_cap;
    char *data; /* the data of the event being read, NUL-terminated */
    size_t data_len, data_cap;
    int has_data;   /* a data field was seen since the last dispatch */
    int after_cr;   /* the previous byte ended a line with CR: skip one LF */
    size_t max;     /* bound on a line and on an event's data */
} sse_parser;

/* Called with the data of one event (NUL-terminated, len bytes). A nonzero
 * return stops the parse and is handed back by sse_feed. */
typedef int (*sse_event_fn)(void *ctx, const char *data, size_t len);

/* max bounds the memory one event may take. */
void sse_init(sse_parser *p, size_t max);
void sse_free(sse_parser *p);
/* Parse n more bytes. Returns 0, the callback's nonzero return, or
 * SSE_ETOOBIG / SSE_ENOMEM. */
int sse_feed(sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ctx);
/* The stream ended: dispatch an event whose closing blank line (or last line
 * ending) never came. Same returns as sse_feed. */
int sse_finish(sse_parser *p, sse_event_fn fn, void *ctx);

#define SSE_ETOOBIG (-1001)
#define SSE_ENOMEM (-1002)

#endif
