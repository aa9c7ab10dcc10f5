/*
 * libFuzzer target: the WAV reader of the command-line tools (tools/wav.c)
 * on arbitrary file images.
 *
 * Invariants checked:
 *   - success: pcm is set, 1 or 2 channels, a plausible rate, and no more
 *     samples than the image can hold after the smallest possible header;
 *   - failure: *out is left empty and the reason is a non-empty line, also
 *     when the caller's buffer for it is tiny;
 *   - the audio read, written back with wav_header() (mono, and as stereo
 *     with both channels equal), reads back identical;
 *   - wav_read() on the same bytes in a file agrees with wav_parse().
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wav.h"

static int memfd = -1;

static void check_roundtrip(const wav_audio *a, int channels)
{
    size_t bytes = a->samples * 2 * (size_t)channels;
    unsigned char *img = malloc(44 + bytes);
    wav_audio b;
    char err[128];

    if (img == NULL) abort();
    wav_header(img, a->rate, channels, bytes);
    for (size_t i = 0; i < a->samples; i++)
        for (int c = 0; c < channels; c++) {
            uint16_t v = (uint16_t)a->pcm[i];
            img[44 + (i * (size_t)channels + (size_t)c) * 2] = (unsigned char)(v & 0xff);
            img[44 + (i * (size_t)channels + (size_t)c) * 2 + 1] = (unsigned char)(v >> 8);
        }
    if (wav_parse(img, 44 + bytes, &b, err, sizeof err) != 0) abort();
    if (b.samples != a->samples || b.rate != a->rate || b.channels != channels ||
        (a->samples && memcmp(a->pcm, b.pcm, a->samples * sizeof *a->pcm) != 0))
        abort();
    wav_free(&b);
    free(img);
}

/* wav_read() of the same bytes, through a memory file. */
static void check_read(const uint8_t *data, size_t size, int parsed, const wav_audio *a, const char *perr)
{
    char path[64], err[256];
    wav_audio b;

    if (memfd < 0 && (memfd = memfd_create("fuzz_wav", 0)) < 0) return;
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    int rc = wav_read(path, &b, err, sizeof err);
    if ((rc == 0) != (parsed == 0)) abort();
    if (rc == 0) {
        if (b.samples != a->samples || b.rate != a->rate || b.channels != a->channels ||
            (a->samples && memcmp(a->pcm, b.pcm, a->samples * sizeof *a->pcm) != 0))
            abort();
        wav_free(&b);
    } else if (strcmp(err, perr) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wav_audio a;
    char err[256], tiny[6];

    memset(err, 'x', sizeof err);
    int rc = wav_parse(data, size, &a, err, sizeof err);
    if (rc == 0) {
        if (a.pcm == NULL || (a.channels != 1 && a.channels != 2) || a.rate <= 0 || a.rate > 768000)
            abort();
        if (size < 44 || a.samples * 2 * (size_t)a.channels > size - 44) abort();
        check_roundtrip(&a, 1);
        check_roundtrip(&a, 2);
    } else {
        if (rc != -1 || a.pcm != NULL || a.samples != 0) abort();
        if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0' || strchr(err, '\n')) abort();
        memset(tiny, 'x', sizeof tiny);
        if (wav_parse(data, size, &a, tiny, sizeof tiny) != -1 || memchr(tiny, '\0', sizeof tiny) == NULL ||
            strncmp(tiny, err, sizeof tiny - 1) != 0)
            abort();
    }
    check_read(data, size, rc, &a, err);
    wav_free(&a);
    return 0;
}
