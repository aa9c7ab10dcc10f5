/*
 * The tts_flite plugin, tested through its built .so exactly as the host
 * loads it: dlopen, vx_plugin_entry, init with a config, then the TTS
 * vtable. Audio arrives on the plugin's threads and is recorded under a
 * mutex; assertions run on the main thread only. Nothing is timed: where
 * a test needs "in the middle of a synthesis" it holds the plugin's thread
 * inside the first on_audio callback until it has acted.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#ifndef TTS_SO
#error "TTS_SO must name the built tts_flite.so"
#endif

#define WAIT_MS 30000 /* generous: valgrind and sanitizers are slow */

static const char *const hello = "Hello, how are you today?";
static const char *const long_text =
    "The quick brown fox jumps over the lazy dog, and then it runs all the way back "
    "home through the long grass of the meadow, while the sun goes down behind the hills.";

typedef ph_seen seen;
typedef ph_rec rec;
typedef ph_fixture fixture;

/* ---------------------------------------------------------------- fixture */

static void *tts_dl;
static const vx_plugin_info *tts;

static int fx_setup(void **state) {
    return (*state = ph_fx_new(tts)) ? 0 : -1;
}

static int fx_teardown(void **state) {
    ph_fx_free(*state);
    return 0;
}

/* Init an instance the way the host does (every schema key, the given value
 * or the default). Pairs of key, value end with NULL. Returns init's code;
 * the instance is f->inst[f->n_inst - 1]. */
static int fx_try_inst(fixture *f, vx_error *err, va_list ap) {
    return ph_fx_vinit(f, "flite", err, ap);
}

static size_t fx_inst(fixture *f, ...) {
    va_list ap;
    size_t in;

    va_start(ap, f);
    in = ph_fx_vinst(f, "flite", ap);
    va_end(ap);
    return in;
}

static rec *fx_rec(fixture *f) {
    return ph_fx_rec(f);
}

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    ph_fx_close(f, s, r);
}

static int tts_start(fixture *f, size_t inst, const char *text, const char *voice,
                     vx_audio_format *fmt, rec *r, vx_stream **s) {
    vx_tts_events ev = ph_tts_events(r);
    vx_error err = {0};
    int rc;

    *s = NULL;
    rc = tts->tts->synthesize(f->inst[inst], text, voice, fmt, &ev, s, &err);
    if (*s) ph_fx_track(f, VX_KIND_TTS, *s);
    return rc;
}

static double rms(const int16_t *pcm, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
    return n ? sqrt(sum / (double)n) : 0;
}

/* Pearson correlation of two signals of n samples. */
static double correlation(const int16_t *a, const int16_t *b, size_t n) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;

    for (size_t i = 0; i < n; i++) {
        sa += a[i], sb += b[i];
        saa += (double)a[i] * a[i], sbb += (double)b[i] * b[i], sab += (double)a[i] * b[i];
    }
    if (n == 0) return 0;
    double cov = sab - sa * sb / (double)n;
    double va = saa - sa * sa / (double)n, vb = sbb - sb * sb / (double)n;
    return va > 0 && vb > 0 ? cov / sqrt(va * vb) : 0;
}

/* Speak text to the end; the recorder holds the result. */
static rec *speak(fixture *f, size_t inst, const char *text, const char *voice,
                  vx_audio_format *fmt) {
    rec *r = fx_rec(f);
    vx_stream *s;

    assert_int_equal(tts_start(f, inst, text, voice, fmt, r, &s), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    return r;
}

static size_t frames_of(fixture *f, size_t inst, const char *text, const char *voice) {
    vx_audio_format fmt = {0};
    rec *r = speak(f, inst, text, voice, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
    return d.frames;
}

/* Init an instance that must be refused; returns init's code. */
static int fx_inst_refused(fixture *f, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = fx_try_inst(f, err, ap);
    va_end(ap);
        return rc;
}

/* ================================================================ descriptor */

static void test_descriptor_is_a_streaming_tts_named_tts_flite(void **state) {
    assert_int_equal(tts->magic, VX_PLUGIN_MAGIC);
    assert_int_equal(tts->abi_major, VX_ABI_MAJOR);
    assert_string_equal(tts->name, "tts_flite");
    assert_int_equal(tts->kinds, VX_KIND_TTS);
    assert_true(tts->caps & VX_CAP_STREAMING_OUTPUT);
    assert_non_null(tts->tts);
    assert_null(tts->stt);
    assert_null(tts->llm);
}

static void test_schema_declares_voice_rate_and_chunk_ms_with_defaults(void **state) {
    static const char *const keys[][2] = {{"voice", "slt"}, {"rate", "1.0"}, {"chunk_ms", "100ms"}};

    for (size_t i = 0; i < 3; i++) {
        const vx_config_key *k = tts->config;
        while (k->key && strcmp(k->key, keys[i][0]) != 0) k++;
        assert_non_null(k->key);
        assert_string_equal(k->def, keys[i][1]);
    }
}

/* ================================================================ audio */

static void test_hello_is_16khz_speech_between_1_and_4_seconds(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 16000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
    assert_in_range(d.frames, 16000, 4 * 16000);
    assert_true(d.frames <= d.pcm_cap);
    /* Speech, not silence: silence is 0, quiet noise a few tens. */
    assert_true(rms(d.pcm, d.frames) > 500);
}

static void test_chunks_are_chunk_ms_long_except_the_last(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "chunk_ms", "40ms", NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_true(d.n_chunks > 1);
    for (size_t i = 0; i + 1 < d.n_chunks; i++) assert_int_equal(d.chunks[i], 640);
    assert_in_range(d.chunks[d.n_chunks - 1], 1, 640);
}

static void test_audio_comes_in_several_chunks_before_on_done(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_true(d.n_chunks > 1);
    for (size_t i = 0; i < d.n_chunks; i++) assert_in_range(d.chunks[i], 1, 1600);
    assert_int_equal(d.first_audio_at, 1);
    assert_int_equal(d.done_at, d.events); /* on_done is the last event */
    assert_int_equal(d.events, d.n_chunks + 1);
}

static void test_same_text_gives_the_same_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *a = speak(f, in, hello, NULL, &fmt);
    rec *b = speak(f, in, hello, NULL, &fmt);
    seen da, db;

    ph_rec_snap(a, &da);
    ph_rec_snap(b, &db);
    /* Unvoiced sounds are excited with rand() noise, so the samples are
     * not bit-identical; the waveform is. */
    assert_int_equal(da.frames, db.frames);
    assert_true(correlation(da.pcm, db.pcm, da.frames) > 0.95);
}

static void test_longer_sentence_gives_longer_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t short_frames = frames_of(f, in, "Hello there.", NULL);
    size_t long_frames = frames_of(f, in, long_text, NULL);

    assert_true(short_frames > 0);
    assert_true(long_frames > 3 * short_frames);
}

static void test_rate_two_speaks_in_about_half_the_time(void **state) {
    fixture *f = *state;
    size_t normal = fx_inst(f, NULL);
    size_t fast = fx_inst(f, "rate", "2.0", NULL);
    size_t slow = fx_inst(f, "rate", "0.5", NULL);
    size_t n = frames_of(f, normal, long_text, NULL);

    assert_in_range(frames_of(f, fast, long_text, NULL), n * 4 / 10, n * 6 / 10);
    assert_in_range(frames_of(f, slow, long_text, NULL), n * 17 / 10, n * 23 / 10);
}

static void test_empty_text_gives_on_done_without_audio(void **state) {
    static const char *const texts[] = {"", "   ", "\t\n", "...?!",
                                        "\xF0\x9F\x98\x80 \xF0\x9F\x91\x8D"};
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        vx_audio_format fmt = {0};
        rec *r = speak(f, in, texts[i], NULL, &fmt);
        seen d;

        ph_rec_snap(r, &d);
        assert_int_equal(fmt.sample_rate, 16000);
        assert_int_equal(d.done, 1);
        assert_int_equal(d.errors, 0);
        assert_int_equal(d.n_chunks, 0);
        assert_int_equal(d.events, 1);
    }
}

static void test_emoji_and_control_characters_are_not_read(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t plain = frames_of(f, in, "Hello there, my friend.", NULL);

    /* U+1F600, a thumbs up with skin tone, BEL, a zero-width joiner. */
    assert_int_equal(frames_of(f, in,
                               "Hello \xF0\x9F\x98\x80 there,\a my \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"
                               "\xE2\x80\x8D friend.",
                               NULL),
                     plain);
}

static void test_accents_and_curly_quotes_read_as_plain_ascii(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_int_equal(frames_of(f, in, "The caf\xC3\xA9 isn\xE2\x80\x99t open.", NULL),
                     frames_of(f, in, "The cafe isn't open.", NULL));
}

/* ================================================================ voices */

static void test_voice_kal_speaks_at_8khz(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "kal", NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 8000);
    assert_int_equal(d.done, 1);
    assert_in_range(d.frames, 8000, 4 * 8000);
    for (size_t i = 0; i < d.n_chunks; i++) assert_in_range(d.chunks[i], 1, 800);
}

static void test_every_voice_speaks_at_its_own_rate(void **state) {
    static const struct {
        const char *voice;
        uint32_t rate;
    } voices[] = {{"slt", 16000}, {"kal16", 16000}, {"kal", 8000}, {"awb", 16000}, {"rms", 16000}};
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    for (size_t i = 0; i < sizeof(voices) / sizeof(voices[0]); i++) {
        vx_audio_format fmt = {0};
        rec *r = speak(f, in, hello, voices[i].voice, &fmt);
        seen d;

        ph_rec_snap(r, &d);
        assert_int_equal(fmt.sample_rate, voices[i].rate);
        assert_int_equal(d.done, 1);
        assert_in_range(d.frames, voices[i].rate, 4 * voices[i].rate);
        assert_true(rms(d.pcm, d.frames) > 300);
    }
}

static void test_voice_argument_overrides_the_instance_default(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "slt", NULL);
    vx_audio_format fmt = {0};

    speak(f, in, hello, "kal", &fmt);
    assert_int_equal(fmt.sample_rate, 8000);
    speak(f, in, hello, "cmu_us_KAL", &fmt);
    assert_int_equal(fmt.sample_rate, 8000);
}

static void test_unknown_voice_falls_back_to_the_default_with_a_debug_log(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "kal", NULL);
    size_t want = frames_of(f, in, hello, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, "alloy", &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 8000);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.frames, want);
    assert_true(ph_logged(&f->hosts[in], "alloy"));
    assert_int_equal(frames_of(f, in, hello, ""), want);
}

/* ================================================================ cancel, close */

static void test_cancel_after_the_first_chunk_stops_the_synthesis(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t full = frames_of(f, in, long_text, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen d;

    r->hold = 1; /* park the plugin inside the first on_audio */
    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_chunks, 1));
    tts->tts->cancel(s);
    ph_rec_release(r);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.done + d.errors, 1);
    if (d.errors) assert_int_equal(d.err.code, VX_ECANCELED);
    assert_true(d.frames < full / 2);
}

static void test_cancel_is_idempotent_and_ends_with_one_event(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen d;

    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
    tts->tts->cancel(s);
    tts->tts->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    tts->tts->cancel(s);
    ph_sleep_ms(50);
    fx_close(f, s, r);
    ph_rec_snap(r, &d);
    assert_int_equal(d.done + d.errors, 1);
    if (d.errors) assert_int_equal(d.err.code, VX_ECANCELED);
}

static void test_cancel_after_done_sends_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen before, after;

    assert_int_equal(tts_start(f, in, hello, NULL, &fmt, r, &s), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &before);
    tts->tts->cancel(s);
    ph_sleep_ms(50);
    fx_close(f, s, r);
    ph_rec_snap(r, &after);
    assert_int_equal(after.events, before.events);
    assert_int_equal(after.done, 1);
    assert_int_equal(after.errors, 0);
}

static void test_close_without_waiting_is_safe_and_silences_the_stream(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    for (int i = 0; i < 20; i++) {
        vx_audio_format fmt = {0};
        rec *r = fx_rec(f);
        vx_stream *s;
        seen d;

        assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
        if (i % 2) ph_sleep_ms(1);
        fx_close(f, s, r);
        ph_sleep_ms(5);
        ph_rec_snap(r, &d);
        assert_int_equal(d.after_close, 0);
        assert_true(d.done + d.errors <= 1);
    }
}

static void test_close_while_the_host_holds_on_audio_waits_for_it(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen d;

    r->hold = 1;
    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_chunks, 1));
    ph_rec_release(r);
    fx_close(f, s, r);
    ph_sleep_ms(20);
    ph_rec_snap(r, &d);
    assert_int_equal(d.after_close, 0);
}

/* ================================================================ concurrency */

/* flite after voice registration is thread-safe: streams running at once
 * on one instance each get the whole sentence, undisturbed. */
static void test_eight_concurrent_streams_give_the_same_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *ref = speak(f, in, long_text, NULL, &fmt);
    size_t want = ref->d.frames;
    rec *rs[8];
    vx_stream *ss[8];

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++) {
            rs[i] = fx_rec(f);
            assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, rs[i], &ss[i]), VX_OK);
        }
        for (int i = 0; i < 8; i++) {
            seen d;
            assert_true(ph_rec_wait(rs[i], ph_has_ended, 1));
            ph_rec_snap(rs[i], &d);
            assert_int_equal(d.done, 1);
            assert_int_equal(d.errors, 0);
            assert_int_equal(d.frames, want);
            assert_true(correlation(d.pcm, ref->d.pcm, want) > 0.95);
        }
        for (int i = 0; i < 8; i++) fx_close(f, ss[i], rs[i]);
    }
}

static void test_two_instances_share_the_voices(void **state) {
    fixture *f = *state;
    size_t a = fx_inst(f, NULL);
    size_t b = fx_inst(f, "voice", "awb", NULL);
    size_t want = frames_of(f, a, hello, NULL);

    /* Shutting one down must leave the other's voices registered. */
    tts->shutdown(f->inst[b]);
    f->inst[b] = NULL;
    assert_int_equal(frames_of(f, a, hello, NULL), want);
}

/* ================================================================ errors */

static void test_synthesize_without_events_is_einval(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_tts_events ev = ph_tts_events(NULL);
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s = (vx_stream *)&fmt;

    ev.on_done = NULL; /* the one callback missing */
    assert_int_equal(tts->tts->synthesize(f->inst[in], hello, NULL, &fmt, &ev, &s, &err),
                     VX_EINVAL);
    assert_null(s);
    assert_int_equal(err.code, VX_EINVAL);
}

static void test_values_outside_the_schema_are_refused_at_init(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_inst_refused(f, &err, "voice", "alloy", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "voice"));
    assert_int_equal(fx_inst_refused(f, &err, "rate", "3", NULL), VX_EINVAL);
    assert_int_equal(fx_inst_refused(f, &err, "chunk_ms", "1h", NULL), VX_EINVAL);
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_streaming_tts_named_tts_flite),
        cmocka_unit_test(test_schema_declares_voice_rate_and_chunk_ms_with_defaults),

        T(test_hello_is_16khz_speech_between_1_and_4_seconds),
        T(test_chunks_are_chunk_ms_long_except_the_last),
        T(test_audio_comes_in_several_chunks_before_on_done),
        T(test_same_text_gives_the_same_audio),
        T(test_longer_sentence_gives_longer_audio),
        T(test_rate_two_speaks_in_about_half_the_time),
        T(test_empty_text_gives_on_done_without_audio),
        T(test_emoji_and_control_characters_are_not_read),
        T(test_accents_and_curly_quotes_read_as_plain_ascii),

        T(test_voice_kal_speaks_at_8khz),
        T(test_every_voice_speaks_at_its_own_rate),
        T(test_voice_argument_overrides_the_instance_default),
        T(test_unknown_voice_falls_back_to_the_default_with_a_debug_log),

        T(test_cancel_after_the_first_chunk_stops_the_synthesis),
        T(test_cancel_is_idempotent_and_ends_with_one_event),
        T(test_cancel_after_done_sends_nothing),
        T(test_close_without_waiting_is_safe_and_silences_the_stream),
        T(test_close_while_the_host_holds_on_audio_waits_for_it),

        T(test_eight_concurrent_streams_give_the_same_audio),
        T(test_two_instances_share_the_voices),

        T(test_synthesize_without_events_is_einval),
        T(test_values_outside_the_schema_are_refused_at_init),
    };
#undef T
    int failed;

    ph_wait_ms = WAIT_MS;
    tts = ph_plugin_load(TTS_SO, &tts_dl);
    if (!tts) return 1;
    failed = cmocka_run_group_tests_name("tts_flite", tests, NULL, NULL);
    ph_plugin_unload(tts_dl);
    return failed;
}
