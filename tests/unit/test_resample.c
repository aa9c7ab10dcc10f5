/*
 * Streaming resampler (host/pipeline/resample.c on libspeexdsp): a tone keeps its
 * frequency, level and timing across 16k <-> 24k, the stream length comes
 * out exact, and splitting the input or resetting changes nothing it
 * should not.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/resample.h"

#define QUALITY 5

/* ------------------------------------------------------------ helpers */

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int16_t *sine(size_t n, int rate, double freq, double amp)
{
    int16_t *x = malloc(n * sizeof *x);
    size_t i;
    assert_non_null(x);
    for (i = 0; i < n; i++) x[i] = (int16_t)lrint(amp * sin(2.0 * M_PI * freq * (double)i / rate));
    return x;
}

static int16_t *noise(size_t n)
{
    int16_t *x = malloc(n * sizeof *x);
    size_t i;
    assert_non_null(x);
    for (i = 0; i < n; i++) x[i] = (int16_t)((int)(rng() % 20001) - 10000);
    return x;
}

static double rms(const int16_t *x, size_t n)
{
    double acc = 0;
    size_t i;
    for (i = 0; i < n; i++) acc += (double)x[i] * x[i];
    return sqrt(acc / (double)n);
}

/* Power of x at one frequency (Goertzel). */
static double goertzel(const int16_t *x, size_t n, int rate, double freq)
{
    double w = 2.0 * M_PI * freq / rate, coeff = 2.0 * cos(w), s1 = 0, s2 = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double s0 = x[i] + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

/* ceil(n * out / in) */
static size_t expected_len(size_t n, int in, int out)
{
    return (size_t)(((uint64_t)n * (uint64_t)out + (uint64_t)in - 1) / (uint64_t)in);
}

/* Resample a whole stream: in chunks of random size 1..max_chunk (0 = one
 * call), each given exactly resampler_out_capacity, then flush. Returns a
 * malloc'd buffer and its length in *out_n. */
static int16_t *run_stream(resampler *r, const int16_t *in, size_t n, size_t max_chunk,
                           int flush, size_t *out_n)
{
    size_t cap_total = resampler_out_capacity(r, n) + 16, done = 0, got = 0;
    int16_t *out = malloc(cap_total * sizeof *out);
    assert_non_null(out);

    while (done < n) {
        size_t k = max_chunk ? 1 + rng() % max_chunk : n;
        size_t cap, w;
        if (k > n - done) k = n - done;
        cap = resampler_out_capacity(r, k);
        assert_true(got + cap <= cap_total);
        w = resampler_process(r, in + done, k, out + got, cap);
        assert_true(w <= cap);
        got += w;
        done += k;
    }
    if (flush) {
        size_t cap = resampler_out_capacity(r, 0);
        size_t w = resampler_flush(r, out + got, cap);
        assert_true(w <= cap);
        got += w;
    }
    *out_n = got;
    return out;
}

/* A 440 Hz tone converted in_rate -> out_rate: same frequency, same level,
 * exact stream length. */
static void check_tone(int in_rate, int out_rate)
{
    size_t n = (size_t)in_rate, m, skip, span;
    int16_t *in = sine(n, in_rate, 440.0, 10000.0);
    resampler *r = resampler_new(in_rate, out_rate, QUALITY);
    int16_t *out;
    double p440, p1k, lvl_in, lvl_out;

    assert_non_null(r);
    out = run_stream(r, in, n, 0, 1, &m);
    assert_int_equal(m, expected_len(n, in_rate, out_rate));

    /* Steady part only: the first and last 50 ms see the stream edges. */
    skip = (size_t)out_rate / 20;
    span = m - 2 * skip;
    p440 = goertzel(out + skip, span, out_rate, 440.0);
    p1k = goertzel(out + skip, span, out_rate, 1000.0);
    assert_true(p440 > 1e6 * p1k); /* 60 dB */

    lvl_in = 20.0 * log10(rms(in + (size_t)in_rate / 20, n - (size_t)in_rate / 10));
    lvl_out = 20.0 * log10(rms(out + skip, span));
    if (fabs(lvl_in - lvl_out) >= 1.0)
        fprintf(stderr, "# level in %.2f dB, out %.2f dB\n", lvl_in, lvl_out);
    assert_true(fabs(lvl_in - lvl_out) < 1.0);

    free(out);
    free(in);
    resampler_free(r);
}

/* ------------------------------------------------------------ tests */

static void upsampling_16k_to_24k_keeps_a_440hz_tone(void **state)
{
    (void)state;
    check_tone(16000, 24000);
}

static void downsampling_24k_to_16k_keeps_a_440hz_tone(void **state)
{
    (void)state;
    check_tone(24000, 16000);
}

/* Output sample k sits at input time k * in / out: compared with the ideal
 * tone at the output rate, the error is far below the signal (about -86 dB
 * at quality 5; -60 dB asserted). One sample of skew would leave it near
 * -19 dB. */
static void output_is_time_aligned_with_input(void **state)
{
    static const int pairs[][2] = {{16000, 24000}, {24000, 16000}, {8000, 48000}, {48000, 16000}};
    size_t p;
    (void)state;

    for (p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        int ir = pairs[p][0], orate = pairs[p][1];
        size_t n = (size_t)ir / 2, m, i, skip;
        int16_t *in = sine(n, ir, 440.0, 10000.0);
        resampler *r = resampler_new(ir, orate, QUALITY);
        int16_t *out = run_stream(r, in, n, 0, 1, &m);
        double err = 0, sig = 0, db;

        skip = (size_t)orate / 20;
        for (i = skip; i < m - skip; i++) {
            double ideal = 10000.0 * sin(2.0 * M_PI * 440.0 * (double)i / orate);
            err += (out[i] - ideal) * (out[i] - ideal);
            sig += ideal * ideal;
        }
        db = 10.0 * log10(err / sig);
        if (db >= -60.0) fprintf(stderr, "# %d->%d: error %.1f dB\n", ir, orate, db);
        assert_true(db < -60.0);
        free(out);
        free(in);
        resampler_free(r);
    }
}

/* Before the flush the filter holds back exactly its look-ahead. */
static void output_lags_input_by_the_filter_delay_until_flush(void **state)
{
    static const int pairs[][2] = {{16000, 24000}, {24000, 16000}, {16000, 44100}};
    size_t p;
    (void)state;

    for (p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        int ir = pairs[p][0], orate = pairs[p][1];
        size_t n = 4801, m, d;
        int16_t *in = noise(n);
        resampler *r = resampler_new(ir, orate, QUALITY);
        int16_t *out;

        assert_non_null(r);
        d = resampler_delay(r);
        assert_true(d > 0 && d < 200);
        out = run_stream(r, in, n, 0, 0, &m);
        assert_int_equal(m, expected_len(n - d, ir, orate));
        free(out);
        free(in);
        resampler_free(r);
    }
}

/* speexdsp computes each output sample from the same history and phase
 * however the input was split, so chunked output is bit-exact. */
static void chunked_processing_equals_one_shot_sample_for_sample(void **state)
{
    static const int pairs[][2] = {{16000, 24000}, {24000, 16000}, {16000, 44100}, {48000, 8000}};
    size_t p;
    int trial;
    (void)state;

    for (p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        for (trial = 0; trial < 5; trial++) {
            int ir = pairs[p][0], orate = pairs[p][1];
            size_t n = 20000 + rng() % 1000, m1, m2;
            int16_t *in = noise(n);
            resampler *r1 = resampler_new(ir, orate, QUALITY);
            resampler *r2 = resampler_new(ir, orate, QUALITY);
            int16_t *one = run_stream(r1, in, n, 0, 1, &m1);
            int16_t *chunked = run_stream(r2, in, n, 500, 1, &m2);

            assert_int_equal(m1, m2);
            assert_memory_equal(one, chunked, m1 * sizeof *one);
            free(one);
            free(chunked);
            free(in);
            resampler_free(r1);
            resampler_free(r2);
        }
    }
}

static void equal_rates_pass_samples_through_bit_exact(void **state)
{
    size_t n = 3000, m;
    int16_t *in = noise(n);
    resampler *r = resampler_new(16000, 16000, QUALITY);
    int16_t *out;
    (void)state;

    assert_non_null(r);
    assert_int_equal(resampler_delay(r), 0);
    assert_int_equal(resampler_out_capacity(r, 123), 123);
    out = run_stream(r, in, n, 200, 1, &m);
    assert_int_equal(m, n);
    assert_memory_equal(out, in, n * sizeof *in);
    free(out);
    free(in);
    resampler_free(r);
}

/* The flush emits the held-back tail and nothing more: N input samples
 * always make ceil(N * out / in) output samples, even streams shorter than
 * the filter delay. */
static void flush_completes_the_stream_to_its_input_duration(void **state)
{
    static const int pairs[][2] = {{16000, 24000}, {24000, 16000}, {16000, 44100},
                                   {44100, 16000}, {8000, 48000}, {48000, 8000}};
    static const size_t lens[] = {0, 1, 2, 7, 30, 160, 161, 479, 1000, 24001};
    size_t p, l;
    (void)state;

    for (p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        for (l = 0; l < sizeof lens / sizeof *lens; l++) {
            int ir = pairs[p][0], orate = pairs[p][1];
            size_t n = lens[l], m;
            int16_t *in = noise(n + 1);
            resampler *r = resampler_new(ir, orate, QUALITY);
            int16_t *out = run_stream(r, in, n, 97, 1, &m);

            if (m != expected_len(n, ir, orate))
                fprintf(stderr, "# %d->%d, %zu in: %zu out\n", ir, orate, n, m);
            assert_int_equal(m, expected_len(n, ir, orate));
            free(out);
            free(in);
            resampler_free(r);
        }
    }
}

/* After a flush the next stream starts from a clean filter. */
static void flush_leaves_the_resampler_ready_for_a_new_stream(void **state)
{
    size_t n = 5000, m1, m2;
    int16_t *in = noise(n);
    resampler *r = resampler_new(24000, 16000, QUALITY);
    int16_t *first = run_stream(r, in, n, 0, 1, &m1);
    int16_t *second = run_stream(r, in, n, 0, 1, &m2);
    (void)state;

    assert_int_equal(m1, m2);
    assert_memory_equal(first, second, m1 * sizeof *first);
    free(first);
    free(second);
    free(in);
    resampler_free(r);
}

static void reset_forgets_previous_input(void **state)
{
    size_t n = 4000, m1, m2, junk_n;
    int16_t *junk = noise(n), *in = noise(n), *discard;
    resampler *used = resampler_new(16000, 24000, QUALITY);
    resampler *fresh = resampler_new(16000, 24000, QUALITY);
    int16_t *a, *b;
    (void)state;

    discard = run_stream(used, junk, n, 0, 0, &junk_n);
    assert_true(junk_n > 0);
    resampler_reset(used);
    a = run_stream(used, in, n, 0, 1, &m1);
    b = run_stream(fresh, in, n, 0, 1, &m2);
    assert_int_equal(m1, m2);
    assert_memory_equal(a, b, m1 * sizeof *a);

    free(discard);
    free(a);
    free(b);
    free(junk);
    free(in);
    resampler_free(used);
    resampler_free(fresh);
}

static void bad_rates_are_refused(void **state)
{
    resampler *r;
    (void)state;

    assert_null(resampler_new(0, 16000, QUALITY));
    assert_null(resampler_new(-16000, 16000, QUALITY));
    assert_null(resampler_new(999, 16000, QUALITY));
    assert_null(resampler_new(16000, 384001, QUALITY));
    assert_null(resampler_new(16000, 999, QUALITY));

    r = resampler_new(1000, 384000, QUALITY);
    assert_non_null(r);
    assert_int_equal(resampler_in_rate(r), 1000);
    assert_int_equal(resampler_out_rate(r), 384000);
    resampler_free(r);
}

static void out_of_range_quality_is_clamped(void **state)
{
    resampler *lo = resampler_new(16000, 24000, -3);
    resampler *hi = resampler_new(16000, 24000, 42);
    (void)state;

    assert_non_null(lo);
    assert_non_null(hi);
    resampler_free(lo);
    resampler_free(hi);
}

/* Over many random chunk sizes the output of a call never exceeds the
 * advertised capacity; neither does the flush. */
static void capacity_bound_is_never_exceeded(void **state)
{
    static const int pairs[][2] = {{16000, 24000}, {24000, 16000}, {16000, 44100},
                                   {44100, 16000}, {8000, 48000}, {48000, 8000},
                                   {11025, 22050}, {8000, 96000}};
    size_t p;
    (void)state;

    for (p = 0; p < sizeof pairs / sizeof *pairs; p++) {
        int ir = pairs[p][0], orate = pairs[p][1];
        resampler *r = resampler_new(ir, orate, QUALITY);
        int16_t *in = noise(500);
        int16_t *out = malloc(resampler_out_capacity(r, 500) * 2 * sizeof *out);
        size_t call, slack_min = (size_t)-1;

        for (call = 0; call < 1000; call++) {
            size_t k = 1 + rng() % 500;
            size_t cap = resampler_out_capacity(r, k);
            size_t w = resampler_process(r, in, k, out, cap);
            assert_true(w <= cap);
            if (cap - w < slack_min) slack_min = cap - w;
            if (call % 250 == 249) {
                cap = resampler_out_capacity(r, 0);
                assert_true(resampler_flush(r, out, cap) <= cap);
            }
        }
        /* The bound is not wasteful either: beyond what the call can
         * produce it only reserves the held-back filter tail. */
        if (slack_min > expected_len(resampler_delay(r), ir, orate) + 1)
            fprintf(stderr, "# %d->%d: slack %zu\n", ir, orate, slack_min);
        assert_true(slack_min <= expected_len(resampler_delay(r), ir, orate) + 1);
        free(out);
        free(in);
        resampler_free(r);
    }
}

/* A cap below the capacity drops the excess output, but the input is
 * consumed and the stream stays aligned. */
static void short_cap_drops_output_but_keeps_the_stream_aligned(void **state)
{
    size_t n = 3000, m, w1, w2, cap2;
    int16_t *in = noise(n);
    resampler *ref = resampler_new(16000, 24000, QUALITY);
    resampler *r = resampler_new(16000, 24000, QUALITY);
    int16_t *full = run_stream(ref, in, n, 0, 0, &m);
    int16_t out[8000];
    (void)state;

    w1 = resampler_process(r, in, 1000, out, 10);
    assert_int_equal(w1, 10);
    assert_memory_equal(out, full, 10 * sizeof *out);

    /* The next call picks up where the reference stream is. */
    cap2 = resampler_out_capacity(r, n - 1000);
    w2 = resampler_process(r, in + 1000, n - 1000, out, cap2);
    assert_int_equal(w2, m - expected_len(1000 - resampler_delay(r), 16000, 24000));
    assert_memory_equal(out, full + (m - w2), w2 * sizeof *out);

    free(full);
    free(in);
    resampler_free(ref);
    resampler_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upsampling_16k_to_24k_keeps_a_440hz_tone),
        cmocka_unit_test(downsampling_24k_to_16k_keeps_a_440hz_tone),
        cmocka_unit_test(output_is_time_aligned_with_input),
        cmocka_unit_test(output_lags_input_by_the_filter_delay_until_flush),
        cmocka_unit_test(chunked_processing_equals_one_shot_sample_for_sample),
        cmocka_unit_test(equal_rates_pass_samples_through_bit_exact),
        cmocka_unit_test(flush_completes_the_stream_to_its_input_duration),
        cmocka_unit_test(flush_leaves_the_resampler_ready_for_a_new_stream),
        cmocka_unit_test(reset_forgets_previous_input),
        cmocka_unit_test(bad_rates_are_refused),
        cmocka_unit_test(out_of_range_quality_is_clamped),
        cmocka_unit_test(capacity_bound_is_never_exceeded),
        cmocka_unit_test(short_cap_drops_output_but_keeps_the_stream_aligned),
    };
    return cmocka_run_group_tests_name("resample", tests, NULL, NULL);
}
