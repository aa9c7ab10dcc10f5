/*
 * libFuzzer target: the first look at a WebRTC SDP offer that
 * POST /v1/realtime/calls takes before the WebRTC stack sees it
 * (host/net/sdp_check.c), on arbitrary bytes.
 *
 * Invariants checked:
 *   - it never reads past the end (the input is copied into an exact-size
 *     buffer without a NUL, so ASan sees any overread);
 *   - 0 or -1, and the same answer with or without an sdp_info to fill;
 *   - -1: the reason is a non-empty line (no newline), also when the
 *     caller's buffer for it is tiny, and nothing is written past it;
 *   - 0: the offer starts with "v=0", holds an m=audio line, offers Opus
 *     with a payload type 0..127 in an existing audio m-line, and has a data
 *     channel; an offer larger than SDP_MAX_BYTES is never accepted.
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/sdp_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    char err[200], tiny[9];
    sdp_info info;

    if (p == NULL) abort();
    memcpy(p, data, size);
    memset(err, 'x', sizeof err);
    memset(&info, 0x55, sizeof info);
    int r = sdp_check_offer(p, size, &info, err, sizeof err);
    if (r != 0 && r != -1) abort();
    if (sdp_check_offer(p, size, NULL, err, sizeof err) != r) abort();
    if (r == -1) {
        size_t n = strnlen(err, sizeof err);
        if (n == 0 || n >= sizeof err || strchr(err, '\n')) abort();
        memset(tiny, 'y', sizeof tiny);
        if (sdp_check_offer(p, size, NULL, tiny, 8) != -1) abort();
        if (strnlen(tiny, 8) >= 8 || tiny[8] != 'y') abort();
    } else {
        if (size > SDP_MAX_BYTES || size < 3 || memcmp(p, "v=0", 3) != 0) abort();
        if (memmem(p, size, "m=audio", 7) == NULL) abort();
        if (info.opus_pt < 0 || info.opus_pt > 127 || info.audio_index < 0 || !info.has_datachannel) abort();
        if (info.legacy_sctp != 0 && info.legacy_sctp != 1) abort();
        /* the audio m-line of audio_index exists */
        int m = -1;
        for (size_t i = 0; i + 1 < size; i++)
            if ((i == 0 || p[i - 1] == '\n') && p[i] == 'm' && p[i + 1] == '=') m++;
        if (info.audio_index > m) abort();
    }
    free(p);
    return 0;
}
