/*
 * The tts_espeak plugin, tested through its built .so exactly as the host
 * loads it: dlopen, vx_plugin_entry, init with a config, then the TTS
 * vtable. Audio arrives on the plugin's threads and is recorded under a
 * mutex; assertions run on the main thread only. Nothing is timed: where
 * a test needs "in the middle of a synthesis" it holds the plugin's thread
 * inside the first on_audio callback until it has acted.
 *
 * espeak-ng varies its output slightly from one call to the next, so
 * lengths are compared with margins, never for equality.
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
#error "TTS_SO must name the built tts_espeak.so"
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
    return ph_fx_vinit(f, "espeak", err, ap);
}

static size_t fx_inst(fixture *f, ...) {
    va_list ap;
    size_t in;

    va_start(ap, f);
    in = ph_fx_vinst(f, "espeak", ap);
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

static void test_descriptor_is_a_multilingual_streaming_tts_named_tts_espeak(void **state) {
    assert_int_equal(tts->magic, VX_PLUGIN_MAGIC);
    assert_int_equal(tts->abi_major, VX_ABI_MAJOR);
    assert_string_equal(tts->name, "tts_espeak");
    assert_int_equal(tts->kinds, VX_KIND_TTS);
    assert_true(tts->caps & VX_CAP_STREAMING_OUTPUT);
    assert_true(tts->caps & VX_CAP_MULTILINGUAL);
    assert_non_null(tts->tts);
    assert_null(tts->stt);
    assert_null(tts->llm);
}

static void test_schema_declares_voice_rate_pitch_and_data_path_with_defaults(void **state) {
    static const char *const keys[][2] = {
        {"voice", "en-us"}, {"rate", "175"}, {"pitch", "50"}, {"data_path", ""}};

    for (size_t i = 0; i < 4; i++) {
        const vx_config_key *k = tts->config;
        while (k->key && strcmp(k->key, keys[i][0]) != 0) k++;
        assert_non_null(k->key);
        assert_string_equal(k->def, keys[i][1]);
    }
}

/* ================================================================ audio */

static void test_hello_is_22050hz_speech_of_a_sane_length(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 22050);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
    assert_in_range(d.frames, 22050 / 2, 4 * 22050);
    assert_true(d.frames <= d.pcm_cap);
    assert_true(rms(d.pcm, d.frames) > 500);
}

static void test_audio_comes_in_several_chunks_before_on_done(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_true(d.n_chunks > 1);
    /* One espeak-ng buffer of about 100 ms each (it rounds up a little). */
    for (size_t i = 0; i < d.n_chunks; i++) assert_in_range(d.chunks[i], 1, 22050 / 10 + 16);
    assert_int_equal(d.first_audio_at, 1);
    assert_int_equal(d.done_at, d.events);
    assert_int_equal(d.events, d.n_chunks + 1);
}

static void test_longer_sentence_gives_longer_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t short_frames = frames_of(f, in, "Hello there.", NULL);
    size_t long_frames = frames_of(f, in, long_text, NULL);

    assert_true(short_frames > 0);
    assert_true(long_frames > 3 * short_frames);
}

static void test_rate_80_is_longer_than_rate_300(void **state) {
    fixture *f = *state;
    size_t slow = fx_inst(f, "rate", "80", NULL);
    size_t fast = fx_inst(f, "rate", "300", NULL);

    assert_true(frames_of(f, slow, long_text, NULL) > 2 * frames_of(f, fast, long_text, NULL));
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
        assert_int_equal(fmt.sample_rate, 22050);
        assert_int_equal(d.done, 1);
        assert_int_equal(d.errors, 0);
        assert_int_equal(d.n_chunks, 0);
        assert_int_equal(d.events, 1);
    }
}

static void test_emoji_are_not_read_out(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t plain = frames_of(f, in, "Hello there, my friend.", NULL);
    size_t with = frames_of(f, in,
                            "Hello \xF0\x9F\x98\x80 there, my \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"
                            " friend.",
                            NULL);

    /* "grinning face" and "thumbs up" would add about a second. */
    assert_in_range(with, plain * 9 / 10, plain * 11 / 10);
}

/* ================================================================ voices */

static void test_french_voice_speaks_french(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "fr", NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, "Bonjour, comment allez-vous aujourd'hui ?", NULL, &fmt);
    seen d;

    ph_rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 22050);
    assert_int_equal(d.done, 1);
    assert_in_range(d.frames, 22050 / 2, 5 * 22050);
    assert_true(rms(d.pcm, d.frames) > 500);
}

static void test_voice_argument_selects_another_language(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t in_fr = fx_inst(f, "voice", "fr", NULL);
    /* French reads it as three syllables, English spells out about four. */
    const char *word = "Cinquante";
    size_t en = frames_of(f, in, word, NULL);
    size_t fr = frames_of(f, in_fr, word, NULL);
    size_t fr_arg = frames_of(f, in, word, "fr");

    assert_in_range(fr_arg, fr * 95 / 100, fr * 105 / 100);
    assert_true(fr_arg < en * 85 / 100);
    assert_true(frames_of(f, in, word, "de") > 0);
    assert_true(frames_of(f, in, word, "es") > 0);
    /* And back: the instance default is selected again after another voice. */
    assert_in_range(frames_of(f, in, word, NULL), en * 95 / 100, en * 105 / 100);
}

static void test_unknown_voice_falls_back_to_the_default_with_a_debug_log(void **state) {
    static const char *const names[] = {"alloy", "../../../etc/passwd", "en us", "", NULL};
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t want = frames_of(f, in, hello, NULL);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        vx_audio_format fmt = {0};
        rec *r = speak(f, in, hello, names[i], &fmt);
        seen d;

        ph_rec_snap(r, &d);
        assert_int_equal(fmt.sample_rate, 22050);
        assert_int_equal(d.done, 1);
        assert_int_equal(d.errors, 0);
        assert_in_range(d.frames, want * 9 / 10, want * 11 / 10);
    }
    assert_true(ph_logged(&f->hosts[in], "alloy"));
}

static void test_unknown_configured_voice_is_refused_at_init(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_inst_refused(f, &err, "voice", "xx-nowhere", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "xx-nowhere"));
    assert_int_equal(fx_inst_refused(f, &err, "voice", "../fr", NULL), VX_EINVAL);
}

static void test_data_path_that_is_not_a_directory_is_refused_at_init(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_inst_refused(f, &err, "data_path", "/nonexistent/espeak", NULL),
                     VX_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/espeak"));
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
    /* The engine is free again for the next stream. */
    assert_true(frames_of(f, in, hello, NULL) > 22050 / 2);
}

static void test_cancel_of_a_stream_waiting_for_the_engine_ends_it_without_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *busy = fx_rec(f), *queued = fx_rec(f);
    vx_stream *a, *b;
    seen d;

    busy->hold = 1; /* holds the engine: every other stream waits */
    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, busy, &a), VX_OK);
    assert_true(ph_rec_wait(busy, ph_has_chunks, 1));
    assert_int_equal(tts_start(f, in, hello, NULL, &fmt, queued, &b), VX_OK);
    tts->tts->cancel(b);
    ph_rec_release(busy);
    assert_true(ph_rec_wait(queued, ph_has_ended, 1));
    assert_true(ph_rec_wait(busy, ph_has_ended, 1));
    ph_rec_snap(queued, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.n_chunks, 0);
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

/* ================================================================ concurrency */

/* espeak-ng crashes when two threads synthesize at once: the plugin must
 * serialize. Several rounds, two instances with different voices, so the
 * voice switches between streams too. */
static void test_eight_concurrent_streams_all_complete(void **state) {
    fixture *f = *state;
    size_t en = fx_inst(f, NULL);
    size_t fr = fx_inst(f, "voice", "fr", "rate", "220", NULL);
    rec *rs[8];
    vx_stream *ss[8];

    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 8; i++) {
            vx_audio_format fmt = {0};
            rs[i] = fx_rec(f);
            assert_int_equal(tts_start(f, i % 2 ? fr : en, i % 4 < 2 ? hello : long_text, NULL,
                                       &fmt, rs[i], &ss[i]),
                             VX_OK);
        }
        for (int i = 0; i < 8; i++) {
            seen d;
            assert_true(ph_rec_wait(rs[i], ph_has_ended, 1));
            ph_rec_snap(rs[i], &d);
            assert_int_equal(d.done, 1);
            assert_int_equal(d.errors, 0);
            assert_in_range(d.frames, 22050 / 2, 20 * 22050);
        }
        for (int i = 0; i < 8; i++) fx_close(f, ss[i], rs[i]);
    }
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

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_multilingual_streaming_tts_named_tts_espeak),
        cmocka_unit_test(test_schema_declares_voice_rate_pitch_and_data_path_with_defaults),

        T(test_hello_is_22050hz_speech_of_a_sane_length),
        T(test_audio_comes_in_several_chunks_before_on_done),
        T(test_longer_sentence_gives_longer_audio),
        T(test_rate_80_is_longer_than_rate_300),
        T(test_empty_text_gives_on_done_without_audio),
        T(test_emoji_are_not_read_out),

        T(test_french_voice_speaks_french),
        T(test_voice_argument_selects_another_language),
        T(test_unknown_voice_falls_back_to_the_default_with_a_debug_log),
        T(test_unknown_configured_voice_is_refused_at_init),
        T(test_data_path_that_is_not_a_directory_is_refused_at_init),

        T(test_cancel_after_the_first_chunk_stops_the_synthesis),
        T(test_cancel_of_a_stream_waiting_for_the_engine_ends_it_without_audio),
        T(test_cancel_is_idempotent_and_ends_with_one_event),
        T(test_cancel_after_done_sends_nothing),
        T(test_close_without_waiting_is_safe_and_silences_the_stream),

        T(test_eight_concurrent_streams_all_complete),

        T(test_synthesize_without_events_is_einval),
    };
#undef T
    int failed;

    ph_wait_ms = WAIT_MS;
    tts = ph_plugin_load(TTS_SO, &tts_dl);
    if (!tts) return 1;
    failed = cmocka_run_group_tests_name("tts_espeak", tests, NULL, NULL);
    /* No dlclose: libespeak-ng keeps buffers in its globals that
     * espeak_ng_Terminate() does not free; unmapping the library with the
     * plugin would turn them into "definitely lost" blocks under valgrind.
     * The plugin's destructor still terminates espeak-ng at exit. */
    return failed;
}
