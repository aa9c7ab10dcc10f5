/*
 * pcm: raw s16le audio from a speech endpoint (see pcm.h).
 */
#include <strings.h>

#include "pcm.h"

size_t pcm16_take(pcm16 *p, const unsigned char *b, size_t n, int16_t *out) {
    size_t i = 0, k = 0;

    if (p->has_odd && n) {
        out[k++] = (int16_t)(uint16_t)(p->odd | b[0] << 8);
        p->has_odd = 0;
        i = 1;
    }
    for (; i + 1 < n; i += 2) out[k++] = (int16_t)(uint16_t)(b[i] | b[i + 1] << 8);
    if (i < n) {
        p->odd = b[i];
        p->has_odd = 1;
    }
    return k;
}

int pcm16_playable(const char *ct) {
    return !(strncasecmp(ct, "application/json", 16) == 0 || strncasecmp(ct, "text/", 5) == 0);
}
