/*
 * Streaming sample-rate conversion of mono s16 PCM (libspeexdsp).
 *
 * One resampler per direction per session; not thread-safe (one stream, one
 * user at a time). Equal rates pass samples through unchanged.
 */
#ifndef VOXRAY_RESAMPLE_H
#define VOXRAY_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct resampler resampler;

/* quality 0..10 (speexdsp; 3 is cheap and fine for speech, 5 default);
 * values outside are clamped. NULL on a bad rate (< 1000 or > 384000) or
 * allocation failure.
 *
 * Output is time-aligned with the input: output sample k is centred on
 * input time k * in_rate / out_rate (no leading filter delay); the filter's
 * look-ahead is held back until more input or resampler_flush arrives. A
 * stream of N input samples, flushed, yields exactly
 * ceil(N * out_rate / in_rate) output samples. */
resampler *resampler_new(int in_rate, int out_rate, int quality);
void resampler_free(resampler *r);
int resampler_in_rate(const resampler *r);
int resampler_out_rate(const resampler *r);
/* Input samples the filter holds back (its look-ahead; 0 when passing
 * through): after N input samples, ceil((N - delay) * out / in) output
 * samples have come out, the rest waits for more input or the flush. */
size_t resampler_delay(const resampler *r);

/* Output capacity enough for n more input samples (plus what is buffered):
 * a true upper bound for resampler_process(r, .., n, ..); with n = 0 it
 * bounds resampler_flush. */
size_t resampler_out_capacity(const resampler *r, size_t n);

/* Convert n input samples; writes at most cap samples into out and returns
 * how many were written. All input is consumed (the resampler buffers what
 * it cannot emit yet); cap >= resampler_out_capacity(r, n) guarantees no
 * output is dropped. With a smaller cap the excess output is discarded
 * (the stream stays aligned). Passthrough copies min(n, cap) samples. */
size_t resampler_process(resampler *r, const int16_t *in, size_t n, int16_t *out, size_t cap);

/* End of stream: emit what the filter still holds (about its latency in
 * samples). Returns samples written (at most cap; the rest is discarded),
 * never a tail of filter zeros beyond the real input. The resampler can
 * then be reused for a new stream. */
size_t resampler_flush(resampler *r, int16_t *out, size_t cap);

/* Forget buffered state (e.g. after a barge-in drops queued audio). */
void resampler_reset(resampler *r);

#endif
