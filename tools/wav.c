/*
 * RIFF/WAVE reading and writing for the command-line tools (see wav.h).
 *
 * The reader walks the chunk list of a little-endian RIFF/WAVE image held in
 * memory; every length read from the file is checked against the bytes that
 * are really there before it is used.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wav.h"

#define WAV_MAX_FILE (1024u * 1024u * 1024u)

#define WAVE_FORMAT_PCM 0x0001
#define WAVE_FORMAT_ADPCM 0x0002
#define WAVE_FORMAT_IEEE_FLOAT 0x0003
#define WAVE_FORMAT_ALAW 0x0006
#define WAVE_FORMAT_MULAW 0x0007
#define WAVE_FORMAT_IMA_ADPCM 0x0011
#define WAVE_FORMAT_MPEGLAYER3 0x0055
#define WAVE_FORMAT_EXTENSIBLE 0xFFFE

/* Bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID whose first two bytes
 * are a WAVE_FORMAT_* tag (00000001-0000-0010-8000-00aa00389b71 for PCM). */
static const unsigned char wav_guid_tail[14] = {
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71
};

static void wav_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wav_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint16_t rd16(const unsigned char *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void wr16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}

static void wr32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)(v >> 24);
}

/* A printable rendering of a four-character chunk id for messages. */
static void wav_fourcc(const unsigned char *p, char out[5]) {
    for (int i = 0; i < 4; i++) out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[4] = '\0';
}

static const char *wav_encoding_name(unsigned tag) {
    switch (tag) {
    case WAVE_FORMAT_ADPCM: return "MS ADPCM";
    case WAVE_FORMAT_IEEE_FLOAT: return "IEEE float";
    case WAVE_FORMAT_ALAW: return "A-law";
    case WAVE_FORMAT_MULAW: return "mu-law";
    case WAVE_FORMAT_IMA_ADPCM: return "IMA ADPCM";
    case WAVE_FORMAT_MPEGLAYER3: return "MP3";
    default: return NULL;
    }
}

int wav_parse(const unsigned char *buf, size_t len, wav_audio *out, char *err, size_t errlen) {
    const unsigned char *fmt = NULL, *data = NULL;
    size_t fmt_len = 0, data_len = 0, end, pos;
    unsigned tag, channels, block, bits;
    uint32_t rate, riff_len;
    size_t frames;
    int16_t *pcm = NULL;

    memset(out, 0, sizeof(*out));
    if (len < 12) {
        wav_err(err, errlen, "not a WAV file (only %zu bytes)", len);
        goto fail;
    }
    if (memcmp(buf, "RIFX", 4) == 0) {
        wav_err(err, errlen, "big-endian RIFX WAV is not supported");
        goto fail;
    }
    if (memcmp(buf, "RF64", 4) == 0) {
        wav_err(err, errlen, "RF64 WAV is not supported");
        goto fail;
    }
    if (memcmp(buf, "RIFF", 4) != 0) {
        wav_err(err, errlen, "not a WAV file (no RIFF header)");
        goto fail;
    }
    if (memcmp(buf + 8, "WAVE", 4) != 0) {
        wav_err(err, errlen, "RIFF file but not WAVE");
        goto fail;
    }
    /* Writers that stream to a pipe leave 0 or 0xFFFFFFFF here; any size
     * that does not fit the image is ignored rather than trusted. A smaller
     * one means trailing bytes after the RIFF form, which are not ours. */
    riff_len = rd32(buf + 4);
    end = len;
    if (riff_len >= 4 && (size_t)riff_len <= len - 8) end = 8 + (size_t)riff_len;

    pos = 12;
    while (pos + 8 <= end) {
        const unsigned char *id = buf + pos;
        size_t sz = rd32(buf + pos + 4);
        size_t body = pos + 8;
        size_t avail = end - body;

        if (memcmp(id, "data", 4) == 0) {
            if (!data) {
                if (sz > avail) sz = avail; /* cut short or streamed */
                data = buf + body;
                data_len = sz;
            }
        } else if (sz > avail) {
            char cc[5];
            /* Junk after the audio does no harm; before it, the file is
             * damaged and whatever follows cannot be located. */
            if (fmt && data) break;
            wav_fourcc(id, cc);
            wav_err(err, errlen, "chunk '%s' (%zu bytes) runs past the end of the file", cc, sz);
            goto fail;
        } else if (memcmp(id, "fmt ", 4) == 0 && !fmt) {
            fmt = buf + body;
            fmt_len = sz;
        }
        if (sz > avail) sz = avail;
        pos = body + sz;
        if ((sz & 1) && pos < end) pos++; /* RIFF pads odd chunks to even */
    }
    if (!fmt) {
        wav_err(err, errlen, "no 'fmt ' chunk");
        goto fail;
    }
    if (!data) {
        wav_err(err, errlen, "no 'data' chunk");
        goto fail;
    }
    if (fmt_len < 16) {
        wav_err(err, errlen, "'fmt ' chunk too short (%zu bytes)", fmt_len);
        goto fail;
    }
    tag = rd16(fmt);
    channels = rd16(fmt + 2);
    rate = rd32(fmt + 4);
    block = rd16(fmt + 12);
    bits = rd16(fmt + 14);
    if (tag == WAVE_FORMAT_EXTENSIBLE) {
        if (fmt_len < 40) {
            wav_err(err, errlen, "WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too short (%zu bytes)",
                    fmt_len);
            goto fail;
        }
        if (memcmp(fmt + 26, wav_guid_tail, sizeof(wav_guid_tail)) != 0) {
            wav_err(err, errlen, "WAVE_FORMAT_EXTENSIBLE with an unknown sub-format");
            goto fail;
        }
        tag = rd16(fmt + 24);
    }
    if (tag != WAVE_FORMAT_PCM) {
        const char *name = wav_encoding_name(tag);
        if (name)
            wav_err(err, errlen, "%s encoding is not supported: use 16-bit PCM", name);
        else
            wav_err(err, errlen, "encoding 0x%04x is not supported: use 16-bit PCM", tag);
        goto fail;
    }
    if (bits != 16) {
        wav_err(err, errlen, "%u-bit PCM is not supported: use 16-bit PCM", bits);
        goto fail;
    }
    if (channels != 1 && channels != 2) {
        wav_err(err, errlen, "%u channels: only mono or stereo is supported", channels);
        goto fail;
    }
    if (block != channels * 2) {
        wav_err(err, errlen, "block align %u does not match %u channel(s) of 16 bits", block,
                channels);
        goto fail;
    }
    if (rate == 0 || rate > 768000) {
        wav_err(err, errlen, "implausible sample rate %u Hz", (unsigned)rate);
        goto fail;
    }

    frames = data_len / block; /* a trailing partial frame is dropped */
    pcm = malloc((frames ? frames : 1) * sizeof(*pcm));
    if (!pcm) {
        wav_err(err, errlen, "out of memory for %zu samples", frames);
        goto fail;
    }
    for (size_t i = 0; i < frames; i++) {
        const unsigned char *p = data + i * block;
        if (channels == 1) {
            pcm[i] = (int16_t)rd16(p);
        } else {
            int l = (int16_t)rd16(p), r = (int16_t)rd16(p + 2);
            pcm[i] = (int16_t)((l + r) / 2);
        }
    }
    out->pcm = pcm;
    out->samples = frames;
    out->rate = (int)rate;
    out->channels = (int)channels;
    return 0;

fail:
    free(pcm);
    return -1;
}

int wav_read(const char *path, wav_audio *out, char *err, size_t errlen) {
    FILE *f = NULL;
    unsigned char *buf = NULL;
    struct stat st;
    size_t len;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    f = fopen(path, "rb");
    if (!f) {
        wav_err(err, errlen, "cannot open: %s", strerror(errno));
        goto done;
    }
    if (fstat(fileno(f), &st) != 0) {
        wav_err(err, errlen, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        wav_err(err, errlen, "not a regular file");
        goto done;
    }
    if ((unsigned long long)st.st_size > WAV_MAX_FILE) {
        wav_err(err, errlen, "file too large (over 1 GiB)");
        goto done;
    }
    len = (size_t)st.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) {
        wav_err(err, errlen, "out of memory reading %zu bytes", len);
        goto done;
    }
    if (fread(buf, 1, len, f) != len) {
        wav_err(err, errlen, "read error: %s", ferror(f) ? strerror(errno) : "file shrank");
        goto done;
    }
    rc = wav_parse(buf, len, out, err, errlen);

done:
    free(buf);
    if (f) fclose(f);
    return rc;
}

void wav_free(wav_audio *a) {
    if (!a) return;
    free(a->pcm);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------ writer */

struct wav_writer {
    FILE *f;
    size_t bytes; /* data bytes written */
    int rate;
};

void wav_header(unsigned char h[44], int rate, int channels, uint64_t bytes) {
    /* Sizes above the 32-bit RIFF limit cannot be expressed; clamp so the
     * header stays self-consistent (4 GiB of 24 kHz audio is 24 hours). */
    uint32_t data = bytes > 0xFFFFFFFFu - 36 ? 0xFFFFFFFFu - 37 : (uint32_t)bytes;
    memcpy(h, "RIFF", 4);
    wr32(h + 4, 36 + data);
    memcpy(h + 8, "WAVE", 4);
    memcpy(h + 12, "fmt ", 4);
    wr32(h + 16, 16);
    wr16(h + 20, WAVE_FORMAT_PCM);
    wr16(h + 22, (uint16_t)channels);
    wr32(h + 24, (uint32_t)rate);
    wr32(h + 28, (uint32_t)rate * 2u * (uint32_t)channels);
    wr16(h + 32, (uint16_t)(2 * channels));
    wr16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    wr32(h + 40, data);
}

wav_writer *wav_writer_open(const char *path, int rate, char *err, size_t errlen) {
    wav_writer *w = NULL;
    unsigned char h[44];

    if (rate <= 0) {
        wav_err(err, errlen, "invalid sample rate %d", rate);
        goto fail;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        wav_err(err, errlen, "out of memory");
        goto fail;
    }
    w->rate = rate;
    w->f = fopen(path, "wb");
    if (!w->f) {
        wav_err(err, errlen, "cannot create: %s", strerror(errno));
        goto fail;
    }
    wav_header(h, rate, 1, 0);
    if (fwrite(h, 1, sizeof(h), w->f) != sizeof(h)) {
        wav_err(err, errlen, "write error: %s", strerror(errno));
        goto fail;
    }
    return w;

fail:
    if (w && w->f) fclose(w->f);
    free(w);
    return NULL;
}

void wav_writer_set_rate(wav_writer *w, int rate) {
    if (rate > 0) w->rate = rate;
}

int wav_writer_append(wav_writer *w, const void *le16, size_t bytes, char *err, size_t errlen) {
    if (bytes & 1) {
        wav_err(err, errlen, "odd number of bytes (%zu) for 16-bit samples", bytes);
        return -1;
    }
    if (bytes && fwrite(le16, 1, bytes, w->f) != bytes) {
        wav_err(err, errlen, "write error: %s", strerror(errno));
        return -1;
    }
    w->bytes += bytes;
    return 0;
}

size_t wav_writer_samples(const wav_writer *w) {
    return w ? w->bytes / 2 : 0;
}

int wav_writer_close(wav_writer *w, char *err, size_t errlen) {
    unsigned char h[44];
    int rc = 0;

    if (!w) return 0;
    wav_header(h, w->rate, 1, w->bytes);
    if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof(h), w->f) != sizeof(h)) {
        wav_err(err, errlen, "cannot update the header: %s", strerror(errno));
        rc = -1;
    }
    /* fclose() reports a delayed write error (disk full) of buffered data. */
    if (fclose(w->f) != 0 && rc == 0) {
        wav_err(err, errlen, "write error: %s", strerror(errno));
        rc = -1;
    }
    free(w);
    return rc;
}
