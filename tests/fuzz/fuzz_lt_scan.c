/*
 * libFuzzer target: how voxray-loadtest reads the event type at the head of
 * a server message (tools/lt_scan.c) on arbitrary bytes.
 *
 * Invariants checked:
 *   - it never reads past the end (the input is copied into an exact-size
 *     buffer, so ASan sees any overread);
 *   - 1: the type is NUL-terminated, shorter than the buffer, has no quote
 *     or backslash, and appears in the input as "type" ... "<type>";
 *   - 0 (needs more bytes) never comes back for a prefix when the whole
 *     input already gave an answer, unless the prefix is shorter: feeding a
 *     prefix then the whole gives the whole's answer (the scan starts over).
 *   - a tiny output buffer never overflows.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lt_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    char out[64], small[2];
    int r;

    if (p == NULL) abort();
    memcpy(p, data, size);
    memset(out, 'x', sizeof out);
    r = lt_scan_type(p, size, out, sizeof out);
    if (r < -1 || r > 1) abort();
    if (r == 1) {
        size_t len = strnlen(out, sizeof out);
        if (len >= sizeof out) abort();
        if (strchr(out, '"') || strchr(out, '\\')) abort();
        if (memmem(p, size, "\"type\"", 6) == NULL) abort();
        if (len > 0 && memmem(p, size, out, len) == NULL) abort();
    }
    /* Every prefix answers 0, or the same as the whole when it is final. */
    if (size > 0) {
        char pre[64];
        int rp = lt_scan_type(p, size / 2, pre, sizeof pre);
        if (rp == 1 && (r != 1 || strcmp(pre, out) != 0)) abort();
        if (rp == -1 && r != -1) abort();
    }
    r = lt_scan_type(p, size, small, sizeof small);
    if (r == 1 && strnlen(small, sizeof small) >= sizeof small) abort();
    free(p);
    return 0;
}
