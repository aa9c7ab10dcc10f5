/*
 * pcm: raw 16-bit little-endian audio as it arrives from a speech endpoint
 * (response_format=pcm), for tts_openai. A read may end inside a sample.
 */
#ifndef VX_TTS_PCM_H
#define VX_TTS_PCM_H

#include <stddef.h>
#include <stdint.h>

/* The byte of a sample split across reads. Zero it to start. */
typedef struct pcm16 {
    int has_odd; /* odd holds the low byte of a sample split across reads */
    unsigned char odd;
} pcm16;

/* Decode n more bytes into out, which has room for n / 2 + 1 samples;
 * returns the samples written. A last lone byte is kept for the next
 * call. */
size_t pcm16_take(pcm16 *p, const unsigned char *b, size_t n, int16_t *out);

/* Whether a response of this Content-Type may be played: not JSON and not
 * text (an error disguised as a 200, or a server that ignored
 * response_format, must not be played as noise). */
int pcm16_playable(const char *content_type);

#endif
