/*
 * Energy VAD (host/pipeline/vad.c) on synthetic signals at 16 kHz: where a turn
 * starts and ends, to the sample, and when the callback reports it; what is
 * not speech (silence, clicks, steady noise); and that splitting the input
 * never changes the answer.
 *
 * Levels are RMS dBFS, as the VAD measures them (a sine at -20 dBFS RMS
 * peaks at -17 dBFS). With the defaults: onset -45 dBFS, frames of 160
 * samples, 6 frames to start, 50 frames to end.
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

#include "pipeline/vad.h"

#define RATE 16000
#define FRAME 160
#define MS(x) ((size_t)(x) * RATE / 1000)

/* ------------------------------------------------------------ signals */

typedef struct sig {
    double *x;
    size_t n;
} sig;

static uint32_t rng_state = 88172645u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static sig sig_new(size_t n)
{
    sig s;
    s.x = calloc(n, sizeof *s.x);
    assert_non_null(s.x);
    s.n = n;
    return s;
}

/* A 440 Hz sine of RMS level db over [from, to). */
static void add_tone(sig *s, size_t from, size_t to, double db)
{
    double amp = 32768.0 * pow(10.0, db / 20.0) * sqrt(2.0);
    size_t i;
    for (i = from; i < to && i < s->n; i++)
        s->x[i] += amp * sin(2.0 * M_PI * 440.0 * (double)(i - from) / RATE);
}

/* Uniform white noise of RMS level db over [from, to). */
static void add_noise(sig *s, size_t from, size_t to, double db)
{
    double amp = 32768.0 * pow(10.0, db / 20.0) * sqrt(3.0);
    size_t i;
    for (i = from; i < to && i < s->n; i++)
        s->x[i] += amp * ((double)(rng() % 2000001) / 1000000.0 - 1.0);
}

static int16_t *sig_pcm(const sig *s)
{
    int16_t *p = malloc(s->n * sizeof *p);
    size_t i;
    assert_non_null(p);
    for (i = 0; i < s->n; i++) {
        double v = nearbyint(s->x[i]);
        p[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    return p;
}

/* ------------------------------------------------------------ events */

#define MAX_EV 32

typedef struct rec {
    int n;
    vad_event ev[MAX_EV];
    uint64_t pos[MAX_EV];
    uint64_t at[MAX_EV]; /* samples fed when reported (feed_each only) */
    uint64_t fed;
} rec;

static void on_event(void *user, vad_event ev, uint64_t pos)
{
    rec *r = user;
    assert_true(r->n < MAX_EV);
    r->ev[r->n] = ev;
    r->pos[r->n] = pos;
    r->at[r->n] = r->fed;
    r->n++;
}

static void feed_whole(vad *v, const int16_t *p, size_t n, rec *r)
{
    r->fed += n;
    vad_feed(v, p, n, on_event, r);
}

/* One sample per call, so each event's `at` is exact. */
static void feed_each(vad *v, const int16_t *p, size_t n, rec *r)
{
    size_t i;
    for (i = 0; i < n; i++) {
        r->fed++;
        vad_feed(v, p + i, 1, on_event, r);
    }
}

static void feed_random(vad *v, const int16_t *p, size_t n, rec *r)
{
    size_t i = 0;
    while (i < n) {
        size_t k = 1 + rng() % 700;
        if (k > n - i) k = n - i;
        r->fed += k;
        vad_feed(v, p + i, k, on_event, r);
        i += k;
    }
}

static void dump(const char *what, const rec *r)
{
    int i;
    fprintf(stderr, "# %s: %d events\n", what, r->n);
    for (i = 0; i < r->n; i++)
        fprintf(stderr, "#   %s pos %llu at %llu\n", r->ev[i] == VAD_SPEECH_START ? "START" : "END",
                (unsigned long long)r->pos[i], (unsigned long long)r->at[i]);
}

static void expect_event(const rec *r, int i, vad_event ev, uint64_t pos, uint64_t at)
{
    if (i >= r->n || r->ev[i] != ev || r->pos[i] != pos || (at && r->at[i] != at)) {
        fprintf(stderr, "# expected event %d: %s pos %llu at %llu\n", i,
                ev == VAD_SPEECH_START ? "START" : "END", (unsigned long long)pos,
                (unsigned long long)at);
        dump("got", r);
    }
    assert_true(i < r->n);
    assert_int_equal(r->ev[i], ev);
    assert_int_equal(r->pos[i], pos);
    if (at) assert_int_equal(r->at[i], at);
}

/* Run a signal through a fresh VAD (params NULL = defaults), sample by
 * sample. */
static rec run(const sig *s, const vad_params *p)
{
    rec r;
    vad *v = vad_new(RATE, p);
    int16_t *pcm = sig_pcm(s);
    memset(&r, 0, sizeof r);
    assert_non_null(v);
    feed_each(v, pcm, s->n, &r);
    free(pcm);
    vad_free(v);
    return r;
}

/* ------------------------------------------------------------ tests */

static void silence_gives_no_events(void **state)
{
    sig s = sig_new(MS(3000));
    rec r = run(&s, NULL);
    (void)state;
    assert_int_equal(r.n, 0);
    free(s.x);
}

/* START is the tone's first sample (frame-aligned here), reported after
 * min_speech_ms; END is the first silent sample, reported after
 * silence_duration_ms. */
static void tone_between_silences_is_one_turn_at_exact_positions(void **state)
{
    sig s = sig_new(MS(3000));
    rec r;
    (void)state;

    add_tone(&s, MS(1000), MS(2000), -20.0);
    r = run(&s, NULL);
    if (r.n != 2) dump("tone", &r);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(1000), MS(1000) + MS(60));
    expect_event(&r, 1, VAD_SPEECH_END, MS(2000), MS(2000) + MS(500));
    free(s.x);
}

/* Positions are frame starts: a tone that begins and ends inside a frame
 * starts at that frame and ends after the frame holding its last sample. */
static void tone_off_the_frame_grid_snaps_to_its_frames(void **state)
{
    sig s = sig_new(MS(3000));
    rec r;
    (void)state;

    add_tone(&s, MS(1000) + 37, MS(2000) + 37, -20.0);
    r = run(&s, NULL);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(1000), MS(1000) + MS(60));
    expect_event(&r, 1, VAD_SPEECH_END, MS(2000) + FRAME, MS(2000) + FRAME + MS(500));
    free(s.x);
}

static void click_shorter_than_min_speech_is_ignored(void **state)
{
    sig s = sig_new(MS(2000));
    rec r;
    (void)state;

    add_tone(&s, MS(1000), MS(1030), -20.0);
    r = run(&s, NULL);
    assert_int_equal(r.n, 0);
    free(s.x);
}

static void burst_of_exactly_min_speech_starts_speech(void **state)
{
    sig s = sig_new(MS(2000));
    rec r;
    (void)state;

    add_tone(&s, MS(1000), MS(1060), -20.0);
    r = run(&s, NULL);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(1000), MS(1060));
    expect_event(&r, 1, VAD_SPEECH_END, MS(1060), MS(1560));
    free(s.x);
}

static void pause_shorter_than_silence_duration_keeps_one_turn(void **state)
{
    sig s = sig_new(MS(3000));
    rec r;
    (void)state;

    add_tone(&s, MS(500), MS(1000), -20.0);
    add_tone(&s, MS(1490), MS(2000), -20.0); /* 490 ms pause */
    r = run(&s, NULL);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(500), 0);
    expect_event(&r, 1, VAD_SPEECH_END, MS(2000), MS(2500));
    free(s.x);
}

/* The pause so far inside speech, frame by frame: what a speculative turn
 * waits for (min_silence) before the VAD's own silence_duration. */
static void silence_ms_counts_the_pause_inside_speech(void **state)
{
    sig s = sig_new(MS(2500));
    rec r;
    vad *v = vad_new(RATE, NULL);
    int16_t *p;
    (void)state;

    assert_non_null(v);
    memset(&r, 0, sizeof r);
    add_tone(&s, MS(500), MS(1000), -20.0);
    add_tone(&s, MS(1300), MS(1600), -20.0); /* 300 ms pause */
    p = sig_pcm(&s);
    assert_int_equal(vad_silence_ms(v), 0);
    feed_whole(v, p, MS(990), &r);
    assert_true(vad_in_speech(v));
    assert_int_equal(vad_silence_ms(v), 0);
    feed_whole(v, p + MS(990), MS(1200) - MS(990), &r); /* 200 ms into the pause */
    assert_int_equal(vad_silence_ms(v), 200);
    feed_whole(v, p + MS(1200), MS(1310) - MS(1200), &r); /* the tone is back */
    assert_int_equal(vad_silence_ms(v), 0);
    feed_whole(v, p + MS(1310), MS(2500) - MS(1310), &r); /* the turn ended */
    assert_false(vad_in_speech(v));
    assert_int_equal(vad_silence_ms(v), 0);
    vad_free(v);
    free(p);
    free(s.x);
}

static void pause_of_silence_duration_ends_the_turn(void **state)
{
    sig s = sig_new(MS(3000));
    rec r;
    (void)state;

    add_tone(&s, MS(500), MS(1000), -20.0);
    add_tone(&s, MS(1500), MS(2000), -20.0); /* 500 ms pause */
    r = run(&s, NULL);
    assert_int_equal(r.n, 4);
    expect_event(&r, 0, VAD_SPEECH_START, MS(500), 0);
    expect_event(&r, 1, VAD_SPEECH_END, MS(1000), MS(1500));
    expect_event(&r, 2, VAD_SPEECH_START, MS(1500), MS(1560));
    expect_event(&r, 3, VAD_SPEECH_END, MS(2000), MS(2500));
    free(s.x);
}

static void steady_noise_below_onset_is_not_speech_but_a_tone_over_it_is(void **state)
{
    sig s = sig_new(MS(5000));
    rec r;
    (void)state;

    add_noise(&s, 0, s.n, -50.0);
    add_tone(&s, MS(3000), MS(4000), -20.0);
    r = run(&s, NULL);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(3000), MS(3060));
    expect_event(&r, 1, VAD_SPEECH_END, MS(4000), MS(4500));
    free(s.x);
}

/* -35 dBFS is above the -45 dBFS onset of threshold 0.5, but it is there
 * from the start: the floor learns it and the onset moves 12 dB above. */
static void steady_noise_above_onset_from_the_start_is_background(void **state)
{
    sig s = sig_new(MS(5000));
    rec r;
    (void)state;

    add_noise(&s, 0, s.n, -35.0);
    add_tone(&s, MS(3000), MS(4000), -15.0);
    r = run(&s, NULL);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(3000), MS(3060));
    expect_event(&r, 1, VAD_SPEECH_END, MS(4000), MS(4500));
    free(s.x);
}

/* A -42 dBFS tone clears the -45 dBFS onset in silence, but not over
 * -50 dBFS noise the floor has learnt (onset about -38 dBFS there). */
static void learnt_noise_floor_raises_the_onset(void **state)
{
    sig quiet = sig_new(MS(3000)), noisy = sig_new(MS(7000));
    rec r;
    (void)state;

    add_tone(&quiet, MS(1000), MS(2000), -42.0);
    r = run(&quiet, NULL);
    assert_int_equal(r.n, 2);

    add_noise(&noisy, MS(500), noisy.n, -50.0);
    add_tone(&noisy, MS(5500), MS(6500), -42.0);
    r = run(&noisy, NULL);
    if (r.n) dump("noisy", &r);
    assert_int_equal(r.n, 0);

    free(quiet.x);
    free(noisy.x);
}

/* If the floor rose during speech it would reach the voice and end the
 * turn in the middle of it. */
static void noise_floor_does_not_rise_during_a_long_turn(void **state)
{
    sig s = sig_new(MS(8000));
    rec r;
    (void)state;

    add_tone(&s, MS(500), MS(6500), -20.0);
    r = run(&s, NULL);
    if (r.n != 2) dump("long turn", &r);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(500), MS(560));
    expect_event(&r, 1, VAD_SPEECH_END, MS(6500), MS(7000));
    free(s.x);
}

/* threshold 0.9 puts the onset at -25 dBFS, 0.5 at -45 dBFS. */
static void higher_threshold_ignores_a_quieter_tone(void **state)
{
    sig s = sig_new(MS(3000));
    vad_params p;
    rec r;
    (void)state;

    add_tone(&s, MS(1000), MS(2000), -40.0);
    vad_params_default(&p);
    p.threshold = 0.9;
    r = run(&s, &p);
    assert_int_equal(r.n, 0);

    p.threshold = 0.5;
    r = run(&s, &p);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(1000), MS(1060));
    expect_event(&r, 1, VAD_SPEECH_END, MS(2000), MS(2500));
    free(s.x);
}

static void feeding_sample_by_sample_equals_whole_buffer(void **state)
{
    sig s = sig_new(MS(12000));
    int16_t *pcm;
    rec whole, each, chunks;
    vad *v;
    int i;
    (void)state;

    /* Noise, clicks, a turn with a short pause, a turn off the grid, a
     * quiet turn. */
    add_noise(&s, 0, s.n, -55.0);
    add_tone(&s, MS(700), MS(730), -15.0);
    add_tone(&s, MS(1000) + 11, MS(2300) + 3, -25.0);
    add_tone(&s, MS(2600) + 99, MS(3500), -30.0);
    add_tone(&s, MS(5000) + 1, MS(5070) + 7, -10.0);
    add_tone(&s, MS(8000) + 123, MS(10000) + 45, -41.0);
    pcm = sig_pcm(&s);

    memset(&whole, 0, sizeof whole);
    memset(&each, 0, sizeof each);
    memset(&chunks, 0, sizeof chunks);
    v = vad_new(RATE, NULL);
    feed_whole(v, pcm, s.n, &whole);
    vad_free(v);
    v = vad_new(RATE, NULL);
    feed_each(v, pcm, s.n, &each);
    vad_free(v);
    v = vad_new(RATE, NULL);
    feed_random(v, pcm, s.n, &chunks);
    vad_free(v);

    assert_true(whole.n >= 6);
    assert_int_equal(each.n, whole.n);
    assert_int_equal(chunks.n, whole.n);
    for (i = 0; i < whole.n; i++) {
        assert_int_equal(each.ev[i], whole.ev[i]);
        assert_int_equal(each.pos[i], whole.pos[i]);
        assert_int_equal(chunks.ev[i], whole.ev[i]);
        assert_int_equal(chunks.pos[i], whole.pos[i]);
    }
    free(pcm);
    free(s.x);
}

/* After a reset the VAD is in silence, positions count from 0 again and
 * a partial frame from before is gone. */
static void reset_returns_to_silence_and_restarts_positions(void **state)
{
    sig before = sig_new(MS(1500) + 80), after = sig_new(MS(3000));
    int16_t *a, *b;
    rec r, fresh;
    vad *v = vad_new(RATE, NULL);
    (void)state;

    add_tone(&before, MS(1000), before.n, -20.0);
    add_tone(&after, MS(1000), MS(2000), -20.0);
    a = sig_pcm(&before);
    b = sig_pcm(&after);

    memset(&r, 0, sizeof r);
    feed_whole(v, a, before.n, &r);
    assert_true(vad_in_speech(v));
    vad_reset(v);
    assert_false(vad_in_speech(v));

    memset(&r, 0, sizeof r);
    feed_each(v, b, after.n, &r);
    fresh = run(&after, NULL);
    assert_int_equal(r.n, 2);
    assert_int_equal(fresh.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, fresh.pos[0], fresh.at[0]);
    expect_event(&r, 1, VAD_SPEECH_END, fresh.pos[1], fresh.at[1]);

    free(a);
    free(b);
    free(before.x);
    free(after.x);
    vad_free(v);
}

/* A shorter silence_duration set inside a turn ends that same turn sooner;
 * the turn itself is not restarted. */
static void set_params_mid_turn_keeps_the_turn_and_applies_new_silence(void **state)
{
    sig s = sig_new(MS(3000));
    int16_t *pcm;
    vad_params p;
    rec r;
    vad *v = vad_new(RATE, NULL);
    (void)state;

    add_tone(&s, MS(500), MS(1500), -20.0);
    pcm = sig_pcm(&s);
    memset(&r, 0, sizeof r);
    feed_each(v, pcm, MS(1000), &r);
    assert_true(vad_in_speech(v));
    assert_int_equal(r.n, 1);

    vad_params_default(&p);
    p.silence_duration_ms = 200;
    vad_set_params(v, &p);
    assert_true(vad_in_speech(v));
    feed_each(v, pcm + MS(1000), s.n - MS(1000), &r);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(500), MS(560));
    expect_event(&r, 1, VAD_SPEECH_END, MS(1500), MS(1700));

    free(pcm);
    free(s.x);
    vad_free(v);
}

static void set_params_threshold_applies_to_following_frames(void **state)
{
    sig s = sig_new(MS(5000));
    int16_t *pcm;
    vad_params p;
    rec r;
    vad *v = vad_new(RATE, NULL);
    (void)state;

    add_tone(&s, MS(1000), MS(2000), -40.0);
    add_tone(&s, MS(3000), MS(4000), -40.0);
    pcm = sig_pcm(&s);
    memset(&r, 0, sizeof r);

    vad_params_default(&p);
    p.threshold = 0.9;
    vad_set_params(v, &p);
    feed_each(v, pcm, MS(2500), &r);
    assert_int_equal(r.n, 0);

    p.threshold = 0.5;
    vad_set_params(v, &p);
    feed_each(v, pcm + MS(2500), s.n - MS(2500), &r);
    assert_int_equal(r.n, 2);
    expect_event(&r, 0, VAD_SPEECH_START, MS(3000), MS(3060));
    expect_event(&r, 1, VAD_SPEECH_END, MS(4000), MS(4500));

    free(pcm);
    free(s.x);
    vad_free(v);
}

static void level_of_digital_silence_is_minus_100_dbfs(void **state)
{
    int16_t zeros[480] = {0};
    (void)state;
    assert_true(vad_level_dbfs(zeros, 480) == -100.0);
    assert_true(vad_level_dbfs(zeros, 0) == -100.0);
}

static void level_of_full_scale_square_wave_is_0_dbfs(void **state)
{
    int16_t sq[480];
    size_t i;
    (void)state;
    for (i = 0; i < 480; i++) sq[i] = (i / 20) % 2 ? -32768 : 32767;
    assert_true(fabs(vad_level_dbfs(sq, 480)) < 0.01);
}

/* 40 whole cycles of 400 Hz: the RMS is the level it was made at. */
static void level_of_a_sine_is_its_rms_dbfs(void **state)
{
    int16_t x[1600];
    double amp = 32768.0 * pow(10.0, -20.0 / 20.0) * sqrt(2.0);
    size_t i;
    (void)state;
    for (i = 0; i < 1600; i++) x[i] = (int16_t)lrint(amp * sin(2.0 * M_PI * 400.0 * (double)i / RATE));
    assert_true(fabs(vad_level_dbfs(x, 1600) + 20.0) < 0.01);
}

static void bad_sample_rate_is_refused(void **state)
{
    vad *v;
    (void)state;
    assert_null(vad_new(0, NULL));
    assert_null(vad_new(999, NULL));
    assert_null(vad_new(384001, NULL));
    v = vad_new(48000, NULL);
    assert_non_null(v);
    assert_false(vad_in_speech(v));
    vad_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(silence_gives_no_events),
        cmocka_unit_test(tone_between_silences_is_one_turn_at_exact_positions),
        cmocka_unit_test(tone_off_the_frame_grid_snaps_to_its_frames),
        cmocka_unit_test(click_shorter_than_min_speech_is_ignored),
        cmocka_unit_test(burst_of_exactly_min_speech_starts_speech),
        cmocka_unit_test(pause_shorter_than_silence_duration_keeps_one_turn),
        cmocka_unit_test(silence_ms_counts_the_pause_inside_speech),
        cmocka_unit_test(pause_of_silence_duration_ends_the_turn),
        cmocka_unit_test(steady_noise_below_onset_is_not_speech_but_a_tone_over_it_is),
        cmocka_unit_test(steady_noise_above_onset_from_the_start_is_background),
        cmocka_unit_test(learnt_noise_floor_raises_the_onset),
        cmocka_unit_test(noise_floor_does_not_rise_during_a_long_turn),
        cmocka_unit_test(higher_threshold_ignores_a_quieter_tone),
        cmocka_unit_test(feeding_sample_by_sample_equals_whole_buffer),
        cmocka_unit_test(reset_returns_to_silence_and_restarts_positions),
        cmocka_unit_test(set_params_mid_turn_keeps_the_turn_and_applies_new_silence),
        cmocka_unit_test(set_params_threshold_applies_to_following_frames),
        cmocka_unit_test(level_of_digital_silence_is_minus_100_dbfs),
        cmocka_unit_test(level_of_full_scale_square_wave_is_0_dbfs),
        cmocka_unit_test(level_of_a_sine_is_its_rms_dbfs),
        cmocka_unit_test(bad_sample_rate_is_refused),
    };
    return cmocka_run_group_tests_name("vad", tests, NULL, NULL);
}
