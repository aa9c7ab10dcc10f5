/*
 * Streaming sample-rate conversion of mono s16 PCM on libspeexdsp.
 *
 * Time alignment. speexdsp's filter needs `latency` input samples of look-
 * ahead (speex_resampler_get_input_latency). Right after init we call
 * speex_resampler_skip_zeros, so output sample k is centred on input time
 * k * in_rate / out_rate: no leading run of filter zeros, and the output is
 * simply late by the look-ahead until flush. Output sample k exists once
 * input sample floor(k * in / out) + latency has arrived, so after N input
 * samples at most ceil(N * out / in) have come out; that is both the
 * capacity bound and what flush completes the stream to.
 *
 * speexdsp has no flush: resampler_flush feeds zeros until the output has
 * reached ceil(N * out / in), i.e. exactly the samples whose centre lies
 * inside the real input, then rewinds the filter for the next stream.
 */
#include "config.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <speex/speex_resampler.h>

#include "pipeline/resample.h"

#define RS_RATE_MIN 1000
#define RS_RATE_MAX 384000
#define RS_SCRATCH 256 /* samples; stack space for zeros and dropped output */

struct resampler {
    SpeexResamplerState *st; /* NULL when in_rate == out_rate (passthrough) */
    int in_rate;
    int out_rate;
    uint64_t in_total;  /* input samples since new/flush/reset */
    uint64_t out_total; /* output samples produced since then, dropped ones included */
};

/* ceil(n * out / in): output samples whose centre lies inside n input ones. */
static uint64_t rs_out_for(const resampler *r, uint64_t n)
{
    uint64_t num = n * (uint64_t)r->out_rate;
    return (num + (uint64_t)r->in_rate - 1) / (uint64_t)r->in_rate;
}

/* Rewind the filter to an empty history aligned on the next input sample. */
static void rs_rewind(resampler *r)
{
    if (r->st) {
        speex_resampler_reset_mem(r->st);
        speex_resampler_skip_zeros(r->st);
    }
    r->in_total = 0;
    r->out_total = 0;
}

resampler *resampler_new(int in_rate, int out_rate, int quality)
{
    resampler *r = NULL;
    int err = RESAMPLER_ERR_SUCCESS;

    if (in_rate < RS_RATE_MIN || in_rate > RS_RATE_MAX ||
        out_rate < RS_RATE_MIN || out_rate > RS_RATE_MAX)
        goto fail;
    if (quality < SPEEX_RESAMPLER_QUALITY_MIN) quality = SPEEX_RESAMPLER_QUALITY_MIN;
    if (quality > SPEEX_RESAMPLER_QUALITY_MAX) quality = SPEEX_RESAMPLER_QUALITY_MAX;

    r = calloc(1, sizeof *r);
    if (!r) goto fail;
    r->in_rate = in_rate;
    r->out_rate = out_rate;
    if (in_rate != out_rate) {
        /* Fails only on allocation (the arguments were checked above). */
        r->st = speex_resampler_init(1, (spx_uint32_t)in_rate, (spx_uint32_t)out_rate,
                                     quality, &err);
        if (!r->st || err != RESAMPLER_ERR_SUCCESS) goto fail;
    }
    rs_rewind(r);
    return r;

fail:
    resampler_free(r);
    return NULL;
}

void resampler_free(resampler *r)
{
    if (!r) return;
    if (r->st) speex_resampler_destroy(r->st);
    free(r);
}

int resampler_in_rate(const resampler *r) { return r->in_rate; }
int resampler_out_rate(const resampler *r) { return r->out_rate; }

size_t resampler_delay(const resampler *r)
{
    return r->st ? (size_t)speex_resampler_get_input_latency(r->st) : 0;
}

size_t resampler_out_capacity(const resampler *r, size_t n)
{
    if (!r->st) return n;
    /* Everything produced so far plus this call stays within the samples
     * centred inside the input; +1 keeps the bound safe against rounding. */
    return (size_t)(rs_out_for(r, r->in_total + n) - r->out_total) + 1;
}

size_t resampler_process(resampler *r, const int16_t *in, size_t n, int16_t *out, size_t cap)
{
    int16_t scratch[RS_SCRATCH];
    size_t done = 0, written = 0;

    if (!r->st) {
        size_t k = n < cap ? n : cap;
        if (k) memcpy(out, in, k * sizeof *out);
        return k;
    }

    while (done < n) {
        spx_uint32_t ilen = n - done > UINT32_MAX ? UINT32_MAX : (spx_uint32_t)(n - done);
        spx_uint32_t olen;
        int16_t *dst;

        /* Once out is full, keep consuming input into scratch so the
         * filter stays in step with the stream; that output is lost. */
        if (written < cap) {
            dst = out + written;
            olen = cap - written > UINT32_MAX ? UINT32_MAX : (spx_uint32_t)(cap - written);
        } else {
            dst = scratch;
            olen = RS_SCRATCH;
        }
        speex_resampler_process_int(r->st, 0, in + done, &ilen, dst, &olen);
        done += ilen;
        r->in_total += ilen;
        r->out_total += olen;
        if (dst != scratch) written += olen;
        if (ilen == 0 && olen == 0) break; /* cannot happen with olen > 0; never spin */
    }
    return written;
}

size_t resampler_flush(resampler *r, int16_t *out, size_t cap)
{
    static const int16_t zeros[RS_SCRATCH];
    size_t want, written = 0;
    int guard = 0;

    if (!r->st) return 0;

    want = (size_t)(rs_out_for(r, r->in_total) - r->out_total);
    if (want > cap) want = cap; /* the rest is dropped; the stream ends anyway */

    /* Each round consumes at least one zero while output is owed; the
     * filter releases everything after `latency` zeros, so the guard is a
     * generous ceiling, not a tuning knob. */
    while (written < want && guard++ < 1000) {
        spx_uint32_t ilen = RS_SCRATCH;
        spx_uint32_t olen = (spx_uint32_t)(want - written);
        speex_resampler_process_int(r->st, 0, zeros, &ilen, out + written, &olen);
        written += olen;
        if (ilen == 0 && olen == 0) break;
    }
    rs_rewind(r);
    return written;
}

void resampler_reset(resampler *r)
{
    rs_rewind(r);
}
