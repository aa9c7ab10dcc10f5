/*
 * Header fields out of a raw HTTP/1.1 request head, as the front hands it
 * over unread (request line, header lines, blank line). Used where no HTTP
 * library has parsed the request yet: the WebSocket upgrade checks in ws.c.
 */
#ifndef VOXRAY_HEAD_H
#define VOXRAY_HEAD_H

#include <stddef.h>

/* Every header line named `name` (case-insensitive) among the first n bytes
 * of head, up to the blank line: the values, blanks trimmed, joined with
 * ", " in order of appearance (RFC 9110 5.3: list fields may be split over
 * lines), written NUL-terminated into out.
 *
 * Returns how many lines were found (0: none, out is ""), or -1 when the
 * joined value does not fit in len bytes (out is "" then too: a cut list
 * could lose exactly the element that matters, such as the right-most
 * X-Forwarded-For hop). */
int head_values(const char *head, size_t n, const char *name, char *out, size_t len);

#endif
