/*
 * stt_openai, loaded from its built .so, against tests/tools/mock_openai.
 * The configured model picks the mock's answer (see mock_openai.c); model
 * "count" answers "<samples> samples at <rate> Hz" from the WAV it got.
 */
#include "mock_openai.h"

#define MOCK_TEXT "Hello from the mock transcriber." /* the mock says it with a leading space */

/* A final or an error: what finish must end in. */
static int has_result(const seen *d, size_t n) {
    return d->n_finals + (size_t)d->errors >= n;
}

static int open_stream(fixture *f, size_t in, uint32_t rate, rec *r, vx_stream **s,
                       vx_error *err) {
    vx_audio_format fmt = {rate, 1, VX_PCM_S16LE};
    vx_stt_events ev = ph_stt_events(r);
    int rc;

    *s = NULL;
    rc = plug->stt->open(f->inst[in], &fmt, &ev, s, err);
    if (*s) fx_track(f, *s);
    return rc;
}

/* Feed n samples of a ramp, in 10 ms blocks as the host does; returns the
 * sum of the samples fed. */
static long long feed_ramp(vx_stream *s, uint32_t rate, size_t n) {
    int16_t block[480];
    size_t per = rate / 100, done = 0;
    long long sum = 0;
    vx_error err = {0};

    while (done < n) {
        size_t k = n - done < per ? n - done : per;
        for (size_t i = 0; i < k; i++) {
            block[i] = (int16_t)(((done + i) * 113) % 30000 - 15000);
            sum += block[i];
        }
        assert_int_equal(plug->stt->feed(s, block, k, &err), VX_OK);
        done += k;
    }
    return sum;
}

/* One utterance of n samples at 16 kHz with model; returns what was seen. */
static seen *utterance(fixture *f, const char *model, size_t n, seen *d) {
    size_t in = fx_inst(f, "model", model, NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, n);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, has_result, 1));
    ph_sleep_ms(20);
    return ph_rec_snap(r, d);
}

static vx_error utterance_error(fixture *f, const char *model) {
    seen d;

    utterance(f, model, 8000, &d);
    assert_int_equal(d.n_finals, 0);
    assert_int_equal(d.errors, 1);
    return d.err;
}

/* ================================================================ descriptor */

static void test_descriptor_is_an_stt_without_partials(void **state) {
    assert_string_equal(plug->name, "stt_openai");
    assert_int_equal(plug->kinds, VX_KIND_STT);
    assert_non_null(plug->stt);
    assert_false(plug->caps & VX_CAP_PARTIALS);
    assert_true(plug->caps & VX_CAP_NETWORK);
}

static void test_input_format_is_16k_mono_s16le(void **state) {
    vx_audio_format fmt = {0};

    assert_non_null(plug->stt->input_format);
    assert_int_equal(plug->stt->input_format(NULL, &fmt), VX_OK);
    assert_int_equal(fmt.sample_rate, 16000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
}

static void test_stereo_is_not_supported(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {16000, 2, VX_PCM_S16LE};
    rec *r = fx_rec(f);
    vx_stt_events ev = ph_stt_events(r);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->stt->open(f->inst[in], &fmt, &ev, &s, &err), VX_ENOTSUP);
    assert_null(s);
}

/* ================================================================ transcripts */

static void test_final_is_the_trimmed_transcript_with_unknown_confidence(void **state) {
    seen d;

    utterance(*state, "whisper-1", 16000, &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.n_finals, 1);
    assert_string_equal(d.finals[0], MOCK_TEXT);
    assert_true(d.confidence[0] < 0);
    assert_int_equal(d.n_partials, 0);
}

static void test_posted_wav_is_16k_mono_s16_with_every_fed_sample(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "count", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;
    long long sum;
    json_t *q, *wav;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    sum = feed_ramp(s, 16000, 12345);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    assert_string_equal(ph_rec_snap(r, &d)->finals[0], "12345 samples at 16000 Hz");
    q = mock_last();
    wav = json_object_get(q, "wav");
    assert_true(json_is_true(json_object_get(wav, "valid")));
    assert_int_equal(json_integer_value(json_object_get(wav, "rate")), 16000);
    assert_int_equal(json_integer_value(json_object_get(wav, "channels")), 1);
    assert_int_equal(json_integer_value(json_object_get(wav, "bits")), 16);
    assert_int_equal(json_integer_value(json_object_get(wav, "samples")), 12345);
    assert_int_equal(json_integer_value(json_object_get(wav, "sum")), sum);
    json_decref(q);
}

static void test_form_names_the_file_model_and_json_format(void **state) {
    seen d;
    json_t *q, *form;

    utterance(*state, "whisper-1", 1600, &d);
    q = mock_last();
    assert_string_equal(jstr(q, "path", NULL), "/v1/audio/transcriptions");
    form = json_object_get(q, "form");
    assert_string_equal(jstr(form, "file", "filename", NULL), "audio.wav");
    assert_string_equal(jstr(form, "file", "content_type", NULL), "audio/wav");
    assert_string_equal(jstr(form, "model", "value", NULL), "whisper-1");
    assert_string_equal(jstr(form, "response_format", "value", NULL), "json");
    assert_null(json_object_get(form, "language"));
    assert_null(json_object_get(form, "prompt"));
    json_decref(q);
}

static void test_language_and_prompt_are_sent_when_configured(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "language", "fr", "prompt", "Voxray, café", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 1600);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    q = mock_last();
    assert_string_equal(jstr(q, "form", "language", "value", NULL), "fr");
    assert_string_equal(jstr(q, "form", "prompt", "value", NULL), "Voxray, café");
    json_decref(q);
}

static void test_a_stream_at_8k_posts_an_8k_wav(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "count", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 8000, r, &s, &err), VX_OK);
    feed_ramp(s, 8000, 4000);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    assert_string_equal(ph_rec_snap(r, &d)->finals[0], "4000 samples at 8000 Hz");
}

static void test_empty_utterance_gives_an_empty_final_without_a_request(void **state) {
    seen d;

    utterance(*state, "whisper-1", 0, &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.n_finals, 1);
    assert_string_equal(d.finals[0], "");
    assert_int_equal(mock_count(), 0);
}

static void test_utterances_of_one_stream_get_finals_in_order(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "count", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    /* Finished back to back: the second waits for the first's request. */
    feed_ramp(s, 16000, 1000);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK); /* nothing heard */
    feed_ramp(s, 16000, 3000);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 3));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 0);
    assert_string_equal(d.finals[0], "1000 samples at 16000 Hz");
    assert_string_equal(d.finals[1], "");
    assert_string_equal(d.finals[2], "3000 samples at 16000 Hz");
    assert_int_equal(mock_count(), 2);
}

static void test_audio_beyond_max_seconds_fails_the_stream_with_einval(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "max_seconds", "1", NULL);
    rec *r = fx_rec(f);
    int16_t block[160] = {0};
    vx_error err = {0};
    vx_stream *s;
    int rc = VX_OK;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    for (int i = 0; i < 100; i++) assert_int_equal(plug->stt->feed(s, block, 160, &err), VX_OK);
    rc = plug->stt->feed(s, block, 160, &err); /* 1.01 s */
    assert_int_equal(rc, VX_EINVAL);
    assert_int_equal(err.code, VX_EINVAL);
    assert_false(err.retryable);
    memset(&err, 0, sizeof(err));
    assert_int_equal(plug->stt->finish(s, &err), VX_EINVAL);
    assert_int_equal(mock_count(), 0);
}

/* ================================================================ errors */

static void test_http_500_is_retryable_unavailable(void **state) {
    vx_error e = utterance_error(*state, "e500");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 500);
}

static void test_http_429_is_a_retryable_rate_limit(void **state) {
    vx_error e = utterance_error(*state, "e429");
    assert_int_equal(e.code, VX_ERATELIMIT);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 429);
}

static void test_http_401_is_an_auth_error_without_the_key(void **state) {
    vx_error e;
    json_t *q;

    setenv(KEY_ENV, "sk-stt-secret-key-1234", 1);
    e = utterance_error(*state, "e401");
    assert_int_equal(e.code, VX_EAUTH);
    assert_false(e.retryable);
    assert_int_equal(e.upstream_status, 401);
    assert_non_null(strstr(e.msg, "Incorrect API key provided"));
    assert_null(strstr(e.msg, "sk-stt-secret-key-1234"));
    q = mock_last();
    assert_string_equal(jstr(q, "headers", "authorization", NULL), "Bearer sk-stt-secret-key-1234");
    json_decref(q);
}

static void test_unparseable_answer_is_a_protocol_error(void **state) {
    vx_error e = utterance_error(*state, "badjson");
    assert_int_equal(e.code, VX_EPROTO);
    assert_false(e.retryable);
}

static void test_answer_without_text_is_a_protocol_error(void **state) {
    vx_error e = utterance_error(*state, "notext");
    assert_int_equal(e.code, VX_EPROTO);
}

static void test_connection_refused_is_retryable_unavailable(void **state) {
    fixture *f = *state;
    char url[96];
    size_t in;
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", closed_port());
    in = fx_inst(f, "base_url", url, NULL);
    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 1600);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.err.code, VX_EUNAVAIL);
    assert_true(d.err.retryable);
}

static void test_a_silent_server_times_out_retryably(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "hang", "timeout", "500ms", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 1600);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.err.code, VX_ETIMEDOUT);
    assert_true(d.err.retryable);
}

static void test_a_failed_stream_refuses_more_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "e500", NULL);
    rec *r = fx_rec(f);
    int16_t block[160] = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 1600);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    assert_int_equal(plug->stt->feed(s, block, 160, &err), VX_EUNAVAIL);
}

/* ================================================================ cancel and close */

static void test_cancel_during_the_request_ends_with_canceled(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "hang", NULL);
    rec *r = fx_rec(f);
    int16_t block[160] = {0};
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 1600);
    assert_int_equal(plug->stt->finish(s, &err), VX_OK);
    for (int i = 0; i < WAIT_MS && mock_count() == 0; i += 5) ph_sleep_ms(5); /* in flight */
    plug->stt->cancel(s);
    plug->stt->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.n_finals, 0);
    assert_int_equal(plug->stt->feed(s, block, 160, &err), VX_ECANCELED);
    assert_int_equal(plug->stt->finish(s, &err), VX_ECANCELED);
}

static void test_cancel_of_an_idle_stream_ends_with_canceled(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(open_stream(f, in, 16000, r, &s, &err), VX_OK);
    feed_ramp(s, 16000, 800);
    plug->stt->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(mock_count(), 0);
}

static void test_no_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r[4];
    seen d;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 4; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(open_stream(f, in, 16000, r[i], &s, &err), VX_OK);
        feed_ramp(s, 16000, 1600);
        assert_int_equal(plug->stt->finish(s, &err), VX_OK);
        assert_int_equal(plug->stt->finish(s, &err), VX_OK); /* an empty one queued behind */
        if (i % 2) ph_sleep_ms(20);
        fx_close(f, s, r[i]);
    }
    ph_sleep_ms(100);
    for (int i = 0; i < 4; i++) assert_int_equal(ph_rec_snap(r[i], &d)->after_close, 0);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_an_stt_without_partials),
        cmocka_unit_test(test_input_format_is_16k_mono_s16le),
        T(test_stereo_is_not_supported),

        T(test_final_is_the_trimmed_transcript_with_unknown_confidence),
        T(test_posted_wav_is_16k_mono_s16_with_every_fed_sample),
        T(test_form_names_the_file_model_and_json_format),
        T(test_language_and_prompt_are_sent_when_configured),
        T(test_a_stream_at_8k_posts_an_8k_wav),
        T(test_empty_utterance_gives_an_empty_final_without_a_request),
        T(test_utterances_of_one_stream_get_finals_in_order),
        T(test_audio_beyond_max_seconds_fails_the_stream_with_einval),

        T(test_http_500_is_retryable_unavailable),
        T(test_http_429_is_a_retryable_rate_limit),
        T(test_http_401_is_an_auth_error_without_the_key),
        T(test_unparseable_answer_is_a_protocol_error),
        T(test_answer_without_text_is_a_protocol_error),
        T(test_connection_refused_is_retryable_unavailable),
        T(test_a_silent_server_times_out_retryably),
        T(test_a_failed_stream_refuses_more_audio),

        T(test_cancel_during_the_request_ends_with_canceled),
        T(test_cancel_of_an_idle_stream_ends_with_canceled),
        T(test_no_event_after_close),
    };
#undef T
    return oai_test_main(tests, sizeof(tests) / sizeof(tests[0]), "stt_openai");
}
