/*
 * RIFF/WAVE files for the command-line tools: read 16-bit PCM (mono, or
 * stereo downmixed to mono) and write mono 16-bit PCM.
 *
 * Only what the tools exchange with voxray is accepted; every other encoding
 * (float, 8/24/32-bit, A-law, mu-law, ADPCM, RIFX, RF64, more than two
 * channels) is refused with a message that names it, never guessed at.
 */
#ifndef VOXRAY_TOOLS_WAV_H
#define VOXRAY_TOOLS_WAV_H

#include <stddef.h>
#include <stdint.h>

/* Decoded audio, always mono. pcm is malloc'd and owned by the struct
 * (wav_free releases it); it is never NULL after a successful read, even
 * when samples is 0. */
typedef struct wav_audio {
    int16_t *pcm;
    size_t samples;
    int rate;      /* Hz */
    int channels;  /* channels in the file before the downmix (1 or 2) */
} wav_audio;

/* Parse a whole WAV file image. Chunks other than "fmt " and "data" (LIST,
 * fact, cue, ...) are skipped, odd-sized chunks are followed by their pad
 * byte. A data chunk that claims more bytes than the image holds (a file
 * written to a pipe, or cut short) is read up to the end of the image.
 * Returns 0 and fills *out, or -1 with a one-line reason in err (*out is
 * left empty). */
int wav_parse(const unsigned char *buf, size_t len, wav_audio *out, char *err, size_t errlen);

/* wav_parse() on the contents of the file at path. Fails (-1, reason in err)
 * also when the file cannot be opened or read, or is over 1 GiB. */
int wav_read(const char *path, wav_audio *out, char *err, size_t errlen);

void wav_free(wav_audio *a);

/* The 44-byte header of a 16-bit PCM WAV with `channels` interleaved
 * channels and `bytes` of data (sizes past the 32-bit RIFF limit are
 * clamped). */
void wav_header(unsigned char h[44], int rate, int channels, uint64_t bytes);

/* A mono s16 WAV being written. The header is written at creation with zero
 * sizes and patched by wav_writer_close(), so an interrupted run leaves a
 * file that most readers still open. */
typedef struct wav_writer wav_writer;

/* Create (truncate) path. Returns NULL with the reason in err on failure. */
wav_writer *wav_writer_open(const char *path, int rate, char *err, size_t errlen);

/* Change the rate recorded in the header (before or after appending: the
 * header is rewritten on close). For a writer opened before the rate is
 * known. */
void wav_writer_set_rate(wav_writer *w, int rate);

/* Append `bytes` bytes of little-endian s16 samples (bytes must be even).
 * Returns 0, or -1 with the reason in err on a write error. */
int wav_writer_append(wav_writer *w, const void *le16, size_t bytes, char *err, size_t errlen);

/* Samples written so far. */
size_t wav_writer_samples(const wav_writer *w);

/* Patch the header sizes, close the file and free w (always, even on
 * failure). Returns 0, or -1 with the reason in err when the data could not
 * be flushed to disk. w may be NULL (returns 0). */
int wav_writer_close(wav_writer *w, char *err, size_t errlen);

#endif
