/*
 * voxray-loadtest reads most server messages only as far as their "type":
 * audio deltas are counted, not parsed. This finds that type.
 */
#ifndef VOXRAY_TOOLS_LT_SCAN_H
#define VOXRAY_TOOLS_LT_SCAN_H

#include <stddef.h>

/* How far into a message the top-level "type" member may start. */
#define LT_SCAN_HEAD_MAX 512

/* Find the top-level "type" string of the JSON object starting in p[0..n).
 * Returns 1 with the type in out (NUL-terminated, shorter than outlen), 0
 * when more bytes are needed, -1 when it cannot be read this way (not an
 * object, nested value before "type", escapes, too long): the message is
 * then parsed whole. Never reads past p[n - 1]. */
int lt_scan_type(const char *p, size_t n, char *out, size_t outlen);

#endif
