/*
 * tts_openai, loaded from its built .so, against tests/tools/mock_openai.
 * The mock answers 1200 samples (50 ms at 24 kHz) per character of input,
 * sample i being ((i * 37) % 20000) - 10000, written in odd-sized pieces
 * (1001 bytes; model "slow": 4801 bytes every 100 ms), so samples arrive
 * split across reads.
 */
#include "mock_openai.h"

#define FRAMES_PER_CHAR 1200

static int speak(fixture *f, size_t in, const char *text, const char *voice, rec *r,
                 vx_audio_format *fmt, vx_stream **s, vx_error *err) {
    vx_tts_events ev = ph_tts_events(r);
    int rc;

    *s = NULL;
    rc = plug->tts->synthesize(f->inst[in], text, voice, fmt, &ev, s, err);
    if (*s) fx_track(f, *s);
    return rc;
}

/* Speak text with model and wait for the end. */
static seen *run(fixture *f, const char *model, const char *text, seen *d) {
    size_t in = fx_inst(f, "model", model, NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, text, NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(20);
    return ph_rec_snap(r, d);
}

static vx_error run_error(fixture *f, const char *model) {
    seen d;

    run(f, model, "Hello.", &d);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.errors, 1);
    return d.err;
}

static int16_t mock_sample(size_t i) {
    return (int16_t)((int)((i * 37) % 20000) - 10000);
}

/* ================================================================ descriptor */

static void test_descriptor_is_a_streaming_tts(void **state) {
    assert_string_equal(plug->name, "tts_openai");
    assert_int_equal(plug->kinds, VX_KIND_TTS);
    assert_non_null(plug->tts);
    assert_true(plug->caps & VX_CAP_STREAMING_OUTPUT);
}

static void test_format_is_24k_mono_s16le_by_default(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "Hi.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_int_equal(fmt.sample_rate, 24000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
}

static void test_sample_rate_key_sets_the_format(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "sample_rate", "22050", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "Hi.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_int_equal(fmt.sample_rate, 22050);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
}

/* ================================================================ audio */

static void test_audio_is_every_sample_the_server_sent(void **state) {
    seen d;
    size_t n = strlen("Hello, world.") * FRAMES_PER_CHAR;

    run(*state, "tts-1", "Hello, world.", &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.frames, n); /* bytes / 2 */
    for (size_t i = 0; i < n; i++)
        if (d.pcm[i] != mock_sample(i)) fail_msg("sample %zu is %d, sent %d", i, d.pcm[i], mock_sample(i));
}

static void test_chunks_are_at_least_20ms_but_the_last(void **state) {
    seen d;

    run(*state, "tts-1", "A longer sentence to speak.", &d);
    assert_true(d.n_chunks >= 2);
    for (size_t i = 0; i + 1 < d.n_chunks; i++) assert_true(d.chunks[i] >= 480);
}

static void test_a_slow_answer_streams_in_several_chunks(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "Streaming!", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_chunks, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.done, 0); /* audio before the answer is complete */
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.done, 1);
    assert_true(d.n_chunks >= 3);
    assert_int_equal(d.frames, 10 * FRAMES_PER_CHAR);
    assert_true(d.first_ns < d.end_ns);
}

static void test_blank_text_is_done_at_once_without_a_request(void **state) {
    seen d;

    run(*state, "tts-1", "  \n", &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.frames, 0);
    assert_int_equal(mock_count(), 0);
}

/* ================================================================ request */

static void test_request_asks_for_pcm_with_the_default_voice(void **state) {
    seen d;
    json_t *q, *b;

    run(*state, "tts-1", "Hello.", &d);
    q = mock_last();
    assert_string_equal(jstr(q, "path", NULL), "/v1/audio/speech");
    assert_string_equal(jstr(q, "headers", "content-type", NULL), "application/json");
    b = json_object_get(q, "json");
    assert_string_equal(jstr(b, "model", NULL), "tts-1");
    assert_string_equal(jstr(b, "input", NULL), "Hello.");
    assert_string_equal(jstr(b, "voice", NULL), "alloy");
    assert_string_equal(jstr(b, "response_format", NULL), "pcm");
    assert_null(json_object_get(b, "speed"));
    json_decref(q);
}

static void test_voice_argument_overrides_the_configured_voice(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "nova", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(speak(f, in, "One.", "af_heart", r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_string_equal(jstr(q, "json", "voice", NULL), "af_heart");
    json_decref(q);
    mock_reset();
    assert_int_equal(speak(f, in, "Two.", "", r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 2));
    q = mock_last();
    assert_string_equal(jstr(q, "json", "voice", NULL), "nova");
    json_decref(q);
}

static void test_speed_is_sent_when_configured(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "speed", "1.25", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(speak(f, in, "Faster.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_true(json_number_value(json_object_get(json_object_get(q, "json"), "speed")) == 1.25);
    json_decref(q);
}

static void test_authorization_is_the_bearer_key_from_the_environment(void **state) {
    seen d;
    json_t *q;

    setenv(KEY_ENV, "sk-tts-key-5678", 1);
    run(*state, "tts-1", "Hi.", &d);
    q = mock_last();
    assert_string_equal(jstr(q, "headers", "authorization", NULL), "Bearer sk-tts-key-5678");
    json_decref(q);
}

static void test_consecutive_requests_reuse_one_connection(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(speak(f, in, "First.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    assert_int_equal(speak(f, in, "Second.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 2));
    q = mock_requests();
    assert_int_equal(json_array_size(q), 2);
    assert_true(json_integer_value(json_object_get(json_array_get(q, 0), "peer_port")) > 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(q, 0), "peer_port")),
                     json_integer_value(json_object_get(json_array_get(q, 1), "peer_port")));
    json_decref(q);
}

/* ================================================================ errors */

static void test_http_500_is_retryable_unavailable(void **state) {
    vx_error e = run_error(*state, "e500");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 500);
    assert_non_null(strstr(e.msg, "The server had an error"));
}

static void test_http_401_is_an_auth_error_without_the_key(void **state) {
    vx_error e;

    setenv(KEY_ENV, "sk-tts-secret-9999", 1);
    e = run_error(*state, "e401");
    assert_int_equal(e.code, VX_EAUTH);
    assert_false(e.retryable);
    assert_int_equal(e.upstream_status, 401);
    assert_null(strstr(e.msg, "sk-tts-secret-9999"));
}

static void test_json_instead_of_audio_is_a_protocol_error(void **state) {
    seen d;

    run(*state, "jsonbody", "Hello.", &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_EPROTO);
    assert_int_equal(d.frames, 0);
}

static void test_connection_refused_is_retryable_unavailable(void **state) {
    fixture *f = *state;
    char url[96];
    size_t in;
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    seen d;
    vx_error err = {0};
    vx_stream *s;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", closed_port());
    in = fx_inst(f, "base_url", url, NULL);
    assert_int_equal(speak(f, in, "Hi.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.err.code, VX_EUNAVAIL);
    assert_true(d.err.retryable);
}

static void test_a_silent_server_times_out_retryably(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "hang", "timeout", "500ms", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "Hi.", NULL, r, &fmt, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.err.code, VX_ETIMEDOUT);
    assert_true(d.err.retryable);
}

/* ================================================================ cancel and close */

static void test_cancel_mid_stream_ends_with_canceled(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "A sentence long enough to cancel.", NULL, r, &fmt, &s, &err),
                     VX_OK);
    assert_true(ph_rec_wait(r, ph_has_chunks, 1));
    plug->tts->cancel(s);
    plug->tts->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(200);
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_true(d.frames < 33 * FRAMES_PER_CHAR);
    assert_int_equal(d.events, d.n_chunks + 1); /* nothing after the error */
}

static void test_no_audio_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt;
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(speak(f, in, "Closing in the middle of this.", NULL, r, &fmt, &s, &err),
                     VX_OK);
    assert_true(ph_rec_wait(r, ph_has_chunks, 1));
    fx_close(f, s, r);
    ph_sleep_ms(300);
    assert_int_equal(ph_rec_snap(r, &d)->after_close, 0);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_streaming_tts),
        T(test_format_is_24k_mono_s16le_by_default),
        T(test_sample_rate_key_sets_the_format),

        T(test_audio_is_every_sample_the_server_sent),
        T(test_chunks_are_at_least_20ms_but_the_last),
        T(test_a_slow_answer_streams_in_several_chunks),
        T(test_blank_text_is_done_at_once_without_a_request),

        T(test_request_asks_for_pcm_with_the_default_voice),
        T(test_voice_argument_overrides_the_configured_voice),
        T(test_speed_is_sent_when_configured),
        T(test_authorization_is_the_bearer_key_from_the_environment),
        T(test_consecutive_requests_reuse_one_connection),

        T(test_http_500_is_retryable_unavailable),
        T(test_http_401_is_an_auth_error_without_the_key),
        T(test_json_instead_of_audio_is_a_protocol_error),
        T(test_connection_refused_is_retryable_unavailable),
        T(test_a_silent_server_times_out_retryably),

        T(test_cancel_mid_stream_ends_with_canceled),
        T(test_no_audio_after_close),
    };
#undef T
    return oai_test_main(tests, sizeof(tests) / sizeof(tests[0]), "tts_openai");
}
