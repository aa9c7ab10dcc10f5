/*
 * The sim provider plugin, tested through its built .so exactly as the host
 * loads it: dlopen, vx_plugin_entry, init with a config, then the STT, LLM
 * and TTS vtables. Events arrive on the plugin's threads and are recorded
 * under a mutex (plugin_harness); assertions run on the main thread only.
 * Timing is checked with lower bounds only.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"
#include "tool_rec.h"

#ifndef SIM_SO
#error "SIM_SO must name the built sim.so"
#endif


typedef ph_seen seen;
typedef ph_rec rec;
typedef ph_fixture fixture;

/* ---------------------------------------------------------------- fixture */

static void *sim_dl;
static const vx_plugin_info *sim;

typedef enum { K_STT = VX_KIND_STT, K_LLM = VX_KIND_LLM, K_TTS = VX_KIND_TTS } kind;

static int fx_setup(void **state) {
    return (*state = ph_fx_new(sim)) ? 0 : -1;
}

/* The fixture closes every stream before the tool recorders go. */
static int fx_teardown(void **state) {
    ph_fx_free(*state);
    tr_free_all();
    return 0;
}

/* Init an instance the way the host does (every schema key, the given value
 * or the default). Pairs of key, value end with NULL. Returns its index. */
static size_t fx_inst(fixture *f, ...) {
    va_list ap;
    size_t in;

    va_start(ap, f);
    in = ph_fx_vinst(f, "sim", ap);
    va_end(ap);
    return in;
}

/* Init an instance as fx_inst does and return init's code. */
static int fx_init_rc(fixture *f, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = ph_fx_vinit(f, "sim", err, ap);
    va_end(ap);
    return rc;
}

static rec *fx_rec(fixture *f) {
    return ph_fx_rec(f);
}

static void fx_track(fixture *f, kind k, vx_stream *s) {
    ph_fx_track(f, (vx_kind)k, s);
}

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    ph_fx_close(f, s, r);
}

static int stt_open(fixture *f, size_t inst, uint32_t rate, rec *r, vx_stream **s,
                    vx_error *err) {
    vx_audio_format fmt = {rate, 1, VX_PCM_S16LE};
    vx_stt_events ev = ph_stt_events(r);
    int rc;

    *s = NULL;
    rc = sim->stt->open(f->inst[inst], &fmt, &ev, s, err);
    if (*s) fx_track(f, K_STT, *s);
    return rc;
}

/* Feed ms of silence at rate, in pieces of piece_ms. */
static void stt_feed_ms(vx_stream *s, uint32_t rate, unsigned ms, unsigned piece_ms) {
    static const int16_t zeros[192000 / 10];
    vx_error err = {0};

    for (unsigned done = 0; done < ms; done += piece_ms) {
        size_t frames = (size_t)rate * piece_ms / 1000;
        assert_true(frames <= sizeof(zeros) / sizeof(zeros[0]));
        assert_int_equal(sim->stt->feed(s, zeros, frames, &err), VX_OK);
    }
}

static int llm_start(fixture *f, size_t inst, const vx_message *msgs, size_t n, int max_tokens,
                     rec *r, vx_stream **s, vx_error *err) {
    vx_llm_params p = {.struct_size = sizeof(p),
                       .temperature = -1,
                       .max_tokens = max_tokens,
                       .session_id = "session-1"};
    vx_llm_events ev = ph_llm_events(r);
    int rc;

    *s = NULL;
    rc = sim->llm->generate(f->inst[inst], msgs, n, &p, &ev, s, err);
    if (*s) fx_track(f, K_LLM, *s);
    return rc;
}

static const vx_message hi[] = {{"user", "hi"}};

static int tts_start(fixture *f, size_t inst, const char *text, const char *voice,
                     vx_audio_format *fmt, rec *r, vx_stream **s, vx_error *err) {
    vx_tts_events ev = ph_tts_events(r);
    int rc;

    *s = NULL;
    rc = sim->tts->synthesize(f->inst[inst], text, voice, fmt, &ev, s, err);
    if (*s) fx_track(f, K_TTS, *s);
    return rc;
}

/* ================================================================ descriptor */

static void test_descriptor_offers_stt_llm_and_tts(void **state) {
    assert_int_equal(sim->magic, VX_PLUGIN_MAGIC);
    assert_int_equal(sim->abi_major, VX_ABI_MAJOR);
    assert_string_equal(sim->name, "sim");
    assert_int_equal(sim->kinds, VX_KIND_STT | VX_KIND_LLM | VX_KIND_TTS);
    assert_non_null(sim->stt);
    assert_non_null(sim->llm);
    assert_non_null(sim->tts);
    assert_null(sim->store);
    assert_null(sim->sink);
}

static void test_schema_declares_every_documented_key(void **state) {
    static const char *const keys[] = {
        "seed", "latency", "jitter", "failure_rate", "fail_first", "fail_calls", "error", "fail_at",
        "hang", "transcript", "transcripts", "partial_every", "reply", "token_delay",
        "tool_call", "tool_trigger", "sample_rate", "ms_per_char", "chunk_ms", "realtime",
        NULL};

    for (size_t i = 0; keys[i]; i++) {
        const vx_config_key *k = sim->config;
        while (k->key && strcmp(k->key, keys[i]) != 0) k++;
        assert_non_null(k->key);
        assert_non_null(k->def);
    }
}

/* ================================================================ STT */

static void test_stt_input_format_is_16k_mono_s16le(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};

    assert_int_equal(sim->stt->input_format(f->inst[in], &fmt), VX_OK);
    assert_int_equal(fmt.sample_rate, 16000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
}

static void test_stt_partials_grow_one_word_per_partial_every_of_audio(void **state) {
    static const char *const want[] = {"one", "one two", "one two three", "one two three four"};
    fixture *f = *state;
    size_t in = fx_inst(f, "transcript", "one two three four", "partial_every", "100ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    for (size_t i = 0; i < 4; i++) {
        stt_feed_ms(s, 16000, 100, 100);
        assert_true(ph_rec_wait(r, ph_has_partials, i + 1));
    }
    stt_feed_ms(s, 16000, 300, 100); /* no fifth word: no more partials */
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.n_partials, 4);
    for (size_t i = 0; i < 4; i++) assert_string_equal(snap.partials[i], want[i]);
}

static void test_stt_partials_count_audio_time_at_the_stream_rate(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "transcript", "one two three", "partial_every", "100ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    /* 8 kHz: 200 ms of audio is 1600 frames, which at 16 kHz would be 100 ms. */
    assert_int_equal(stt_open(f, in, 8000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 8000, 200, 10);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.n_partials, 2);
    assert_string_equal(snap.partials[0], "one");
    assert_string_equal(snap.partials[1], "one two");
}

static void test_stt_final_is_the_transcript_with_confidence_0_9(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "transcript", "turn the lights on", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 100, 20);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &snap);
    assert_string_equal(snap.finals[0], "turn the lights on");
    assert_float_equal(snap.confidence[0], 0.9f, 1e-6);
}

static void test_stt_transcripts_cycle_per_utterance(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "transcripts", "alpha beta | gamma", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    for (size_t i = 0; i < 3; i++) {
        stt_feed_ms(s, 16000, 40, 20);
        assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    }
    assert_true(ph_rec_wait(r, ph_has_finals, 3));
    ph_rec_snap(r, &snap);
    assert_string_equal(snap.finals[0], "alpha beta");
    assert_string_equal(snap.finals[1], "gamma");
    assert_string_equal(snap.finals[2], "alpha beta");
}

static void test_stt_empty_utterance_gives_empty_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &snap);
    assert_string_equal(snap.finals[0], "");
    assert_int_equal(snap.n_partials, 0);
}

static void test_stt_empty_utterance_does_not_advance_the_cycle(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "transcripts", "first|second", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    stt_feed_ms(s, 16000, 40, 20);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 2));
    ph_rec_snap(r, &snap);
    assert_string_equal(snap.finals[0], "");
    assert_string_equal(snap.finals[1], "first");
}

/* ================================================================ LLM */

static void test_llm_echo_repeats_the_last_user_message(void **state) {
    static const vx_message msgs[] = {{"system", "be brief"}, {"user", "hi there"},
                                      {"assistant", "hello"}, {"user", " what time is it "}};
    static const char *const want[] = {"You ", "said: ", "what ", "time ", "is ", "it."};
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, msgs, 4, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_string_equal(snap.text, "You said: what time is it.");
    assert_int_equal(snap.n_tokens, 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(snap.tokens[i], want[i]);
}

static void test_llm_echo_without_user_message_says_hello(void **state) {
    static const vx_message msgs[] = {{"system", "be brief"}};
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, msgs, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_string_equal(snap.text, "Hello.");
}

static void test_llm_reply_is_sent_one_word_per_token(void **state) {
    static const char *const want[] = {"The ", "quick  ", "brown ", "fox."};
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "The quick  brown fox.", "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_int_equal(snap.n_tokens, 4);
    for (size_t i = 0; i < 4; i++) assert_string_equal(snap.tokens[i], want[i]);
    assert_string_equal(snap.text, "The quick  brown fox.");
}

static void test_llm_usage_counts_prompt_words_and_sent_tokens(void **state) {
    static const vx_message msgs[] = {{"system", "you are a bot"}, {"user", "tell me a joke"},
                                      {"assistant", "no"}};
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "a b c", "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, msgs, 3, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_true(snap.got_usage);
    assert_int_equal(snap.usage.prompt_tokens, 4 + 4 + 1);
    assert_int_equal(snap.usage.completion_tokens, 3);
}

static void test_llm_max_tokens_stops_early_with_on_done(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "one two three four five", "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 2, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_int_equal(snap.n_tokens, 2);
    assert_string_equal(snap.text, "one two ");
    assert_int_equal(snap.usage.completion_tokens, 2);
}

/* ================================================================ LLM tools */

/* A third of the arguments' bytes ends inside the "ã": the sim must cut
 * its fragments at a character boundary (tool_rec counts bad UTF-8). */
#define WEATHER_CALL "get_weather {\"city\":\"São Paulo\",\"unit\":\"°C\"}"
#define WEATHER_ARGS "{\"city\":\"São Paulo\",\"unit\":\"°C\"}"
#define TOOLS                                                                                  \
    "[{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}},"  \
    "{\"type\":\"function\",\"name\":\"get_time\",\"parameters\":{\"type\":\"object\"}}]"
/* A conversation whose last message is the result of a call. */
#define CONVO_RESULT                                                                           \
    "[{\"role\":\"user\",\"content\":\"Weather in São Paulo?\"},"                             \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_sim0\",\"type\":" \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"            \
    "{\"role\":\"tool\",\"tool_call_id\":\"call_sim0\",\"content\":\" 24 degrees and sunny \"}]"

static const vx_message weather_q[] = {{"user", "What is the WEATHER like?"}};

static vx_llm_params tool_params(const char *tools, const char *choice, const char *messages) {
    vx_llm_params p = {.struct_size = sizeof(p),
                       .temperature = -1,
                       .session_id = "session-1",
                       .tools_json = tools,
                       .tool_choice = choice,
                       .messages_json = messages};
    return p;
}

/* Generate msgs on instance in with p and ev; returns generate's code and,
 * when VX_OK, waits for the end. */
static int tool_gen(fixture *f, size_t in, const vx_message *msgs, size_t n,
                    const vx_llm_params *p, const vx_llm_events *ev, tool_rec *t,
                    vx_error *err) {
    vx_stream *s = NULL;
    int rc = sim->llm->generate(f->inst[in], msgs, n, p, ev, &s, err);

    if (s) fx_track(f, K_LLM, s);
    if (rc == VX_OK) assert_true(ph_rec_wait(t->r, ph_has_ended, 1));
    return rc;
}

/* Offer TOOLS with choice (and messages) to msgs; the calls in *t, the
 * rest in *d. */
static void tool_run(fixture *f, size_t in, const vx_message *msgs, size_t n,
                     const char *choice, const char *messages, tool_rec *t, seen *d) {
    vx_llm_params p = tool_params(TOOLS, choice, messages);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};

    assert_int_equal(tool_gen(f, in, msgs, n, &p, &ev, t, &err), VX_OK);
    ph_sleep_ms(20); /* nothing may follow the end */
    ph_rec_snap(t->r, d);
    *t = tr_snap(t);
}

static tool_rec *tr(fixture *f) {
    return tr_new(fx_rec(f));
}

static void assert_one_call(const seen *d, const tool_rec *t, const char *name,
                            const char *args) {
    assert_int_equal(d->errors, 0);
    assert_int_equal(d->done, 1);
    assert_int_equal(d->n_tokens, 0);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 1);
    assert_string_equal(t->calls[0].name, name);
    assert_string_equal(t->calls[0].args, args);
}

static void test_llm_tool_call_is_made_in_3_fragments_then_done(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, NULL, t, &d);
    assert_one_call(&d, t, "get_weather", WEATHER_ARGS);
    assert_string_equal(t->calls[0].id, "call_sim0");
    assert_int_equal(t->calls[0].fragments, 3);
    assert_true(d.got_usage);
    assert_int_equal(d.usage.completion_tokens, 3);
}

static void test_llm_tool_call_ids_follow_the_instance_call_numbers(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *a = tr(f), *b = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, NULL, a, &d);
    tool_run(f, in, hi, 1, "auto", NULL, b, &d);
    assert_string_equal(a->calls[0].id, "call_sim0");
    assert_string_equal(b->calls[0].id, "call_sim1");
}

static void test_llm_tool_call_of_a_function_not_offered_is_text(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", "get_stock {}", "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, NULL, t, &d);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.text, "You said: hi.");
    assert_int_equal(t->fragments, 0);
}

static void test_llm_tool_choice_none_never_calls(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, "none", NULL, t, &d);
    assert_string_equal(d.text, "You said: hi.");
    assert_int_equal(t->fragments, 0);
}

static void test_llm_tool_trigger_limits_the_call_to_turns_that_ask(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "tool_trigger", "weather", "token_delay",
                        "1ms", NULL);
    tool_rec *a = tr(f), *b = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, NULL, a, &d);
    assert_string_equal(d.text, "You said: hi.");
    assert_int_equal(a->fragments, 0);
    tool_run(f, in, weather_q, 1, NULL, NULL, b, &d);
    assert_one_call(&d, b, "get_weather", WEATHER_ARGS);
}

static void test_llm_tool_trigger_reads_the_last_user_message_of_messages_json(void **state) {
    static const char convo[] = "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                                "\"and the weather?\"}]}]";
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "tool_trigger", "weather", "token_delay",
                        "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, convo, t, &d);
    assert_one_call(&d, t, "get_weather", WEATHER_ARGS);
}

static void test_llm_tool_choice_required_forces_the_configured_function(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "tool_trigger", "weather", "token_delay",
                        "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, "required", NULL, t, &d); /* "hi" does not ask */
    assert_one_call(&d, t, "get_weather", WEATHER_ARGS);
}

static void test_llm_tool_choice_required_without_tool_call_calls_the_first_tool(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, "required", NULL, t, &d);
    assert_one_call(&d, t, "get_weather", "{}");
}

static void test_llm_tool_choice_naming_a_function_forces_that_one(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, "get_time", NULL, t, &d);
    assert_one_call(&d, t, "get_time", "{}");
}

static void test_llm_forced_call_is_made_even_after_a_tool_result(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, weather_q, 1, "get_weather", CONVO_RESULT, t, &d);
    assert_one_call(&d, t, "get_weather", WEATHER_ARGS);
}

static void test_llm_tool_choice_naming_a_function_not_offered_is_refused(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params(TOOLS, "get_stock", NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};

    assert_int_equal(tool_gen(f, in, hi, 1, &p, &ev, t, &err), VX_EINVAL);
    assert_non_null(strstr(err.msg, "get_stock"));
}

static void test_llm_tools_json_that_is_not_an_array_is_refused(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params("{\"name\":\"get_weather\"}", NULL, NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};

    assert_int_equal(tool_gen(f, in, hi, 1, &p, &ev, t, &err), VX_EINVAL);
    assert_non_null(strstr(err.msg, "tools_json"));
}

static void test_llm_tool_result_is_answered_tool_said(void **state) {
    static const char *const want[] = {"Tool ", "said: ", "24 ", "degrees ", "and ", "sunny."};
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, weather_q, 1, NULL, CONVO_RESULT, t, &d);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.text, "Tool said: 24 degrees and sunny.");
    assert_int_equal(d.n_tokens, 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(d.tokens[i], want[i]);
    assert_int_equal(t->fragments, 0); /* no second call: the turn is over */
}

static void test_llm_tool_result_wins_over_the_configured_reply(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "Fixed answer.", "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params(NULL, NULL, CONVO_RESULT);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    seen d;

    assert_int_equal(tool_gen(f, in, weather_q, 1, &p, &ev, t, &err), VX_OK);
    assert_string_equal(ph_rec_snap(t->r, &d)->text, "Tool said: 24 degrees and sunny.");
}

static void test_llm_without_tools_tool_call_changes_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params(NULL, "required", NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    seen d;

    assert_int_equal(tool_gen(f, in, weather_q, 1, &p, &ev, t, &err), VX_OK);
    ph_rec_snap(t->r, &d);
    assert_string_equal(d.text, "You said: What is the WEATHER like?.");
    assert_int_equal(d.n_tokens, 7);
    assert_int_equal(tr_snap(t).fragments, 0);
}

static void test_llm_an_empty_tools_array_offers_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params("[]", "required", NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    seen d;

    assert_int_equal(tool_gen(f, in, hi, 1, &p, &ev, t, &err), VX_OK);
    assert_string_equal(ph_rec_snap(t->r, &d)->text, "You said: hi.");
    assert_int_equal(tr_snap(t).fragments, 0);
}

static void test_llm_params_older_than_1_3_mean_no_tools(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params(TOOLS, "required", CONVO_RESULT);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    seen d;

    p.struct_size = (uint32_t)(VX_LLM_PARAMS_SIZE_1_3 - 3 * sizeof(char *));
    assert_int_equal(tool_gen(f, in, hi, 1, &p, &ev, t, &err), VX_OK);
    assert_string_equal(ph_rec_snap(t->r, &d)->text, "You said: hi.");
    assert_int_equal(tr_snap(t).fragments, 0);
}

/* Documented choice: events without on_tool_call are never offered a
 * call; the answer is the text one. */
static void test_llm_events_older_than_1_3_never_get_a_call(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    vx_llm_params p = tool_params(TOOLS, "required", NULL);
    vx_llm_events ev = tr_events_1_2(t);
    vx_error err = {0};
    seen d;

    assert_int_equal(tool_gen(f, in, hi, 1, &p, &ev, t, &err), VX_OK);
    ph_rec_snap(t->r, &d);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.text, "You said: hi.");
    assert_int_equal(tr_snap(t).fragments, 0);
}

static void test_llm_tool_call_fails_mid_stream_like_tokens(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "tool_call", WEATHER_CALL, "fail_first", "1", "fail_at",
                        "mid_stream", "token_delay", "1ms", NULL);
    tool_rec *t = tr(f);
    seen d;

    tool_run(f, in, hi, 1, NULL, NULL, t, &d);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.errors, 1);
    assert_int_equal(t->fragments, 1); /* half of 3, at least one */
    assert_int_equal(t->bad, 0);
}

static void test_llm_malformed_tool_call_refuses_init(void **state) {
    static const char *const bad[] = {"get weather", "get_weather [1]", "get.weather {}",
                                      "get_weather {\"city\":"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture *f = ph_fx_new(sim);
        vx_error err = {0};
        assert_non_null(f);
        assert_int_equal(fx_init_rc(f, &err, "tool_call", bad[i], NULL), VX_EINVAL);
        assert_non_null(strstr(err.msg, "tool_call"));
        ph_fx_free(f);
    }
}

/* ================================================================ TTS */

static void test_tts_reports_mono_s16le_at_the_configured_rate(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "sample_rate", "24000", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(tts_start(f, in, "hi", NULL, &fmt, r, &s, &err), VX_OK);
    assert_int_equal(fmt.sample_rate, 24000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
}

static void test_tts_length_is_chars_times_ms_per_char(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "ms_per_char", "30", "sample_rate", "16000", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    /* 11 characters, one of them two bytes of UTF-8: 11 x 30 ms at 16 kHz. */
    assert_int_equal(tts_start(f, in, "h\xc3\xa9llo world", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_int_equal(snap.frames, 11 * 30 * 16000 / 1000);
}

static void test_tts_chunks_are_chunk_ms_long(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "chunk_ms", "20ms", "ms_per_char", "50", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(tts_start(f, in, "abc", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    /* 150 ms in 20 ms chunks of 320 frames: 7 full ones and 160 frames. */
    assert_int_equal(snap.n_chunks, 8);
    for (size_t i = 0; i < 7; i++) assert_int_equal(snap.chunks[i], 320);
    assert_int_equal(snap.chunks[7], 160);
}

static void test_tts_audio_is_a_faded_tone_near_minus_12_dbfs(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;
    int peak = 0;

    assert_int_equal(tts_start(f, in, "hello", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.frames, 4000);
    for (size_t i = 0; i < snap.frames; i++)
        if (abs(snap.pcm[i]) > peak) peak = abs(snap.pcm[i]);
    /* -12 dBFS is 8231; a little lower is fine (samples miss the crest). */
    assert_in_range(peak, 7800, 8300);
    assert_in_range(abs(snap.pcm[0]), 0, 200);
    assert_in_range(abs(snap.pcm[snap.frames - 1]), 0, 200);
}

/* Zero crossings of one second of tone: two per period. */
static size_t crossings(fixture *f, const char *voice) {
    size_t in = fx_inst(f, "ms_per_char", "100", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;
    size_t n = 0;

    assert_int_equal(tts_start(f, in, "0123456789", voice, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    pthread_mutex_lock(&r->mu);
    for (size_t i = 1; i < r->d.frames; i++) n += (r->d.pcm[i - 1] < 0) != (r->d.pcm[i] < 0);
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void test_tts_voice_selects_the_frequency(void **state) {
    fixture *f = *state;

    assert_in_range(crossings(f, "alto"), 436, 444);  /* 220 Hz */
    assert_in_range(crossings(f, "tenor"), 326, 334); /* 165 Hz */
    assert_in_range(crossings(f, NULL), 436, 444);    /* the default voice is alto */
}

static void test_tts_realtime_paces_chunks_at_real_time(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "realtime", "true", "chunk_ms", "40ms", "ms_per_char", "50", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0 = ph_now_ns();

    /* 200 ms in five 40 ms chunks: the last one is due 160 ms after the
     * first, which is due at once. */
    assert_int_equal(tts_start(f, in, "abcd", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.n_chunks, 5);
    assert_true((snap.last_ns - t0) / 1000000 >= 159);
}

/* ================================================================ timing */

static void test_latency_delays_the_first_llm_token(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "latency", "200ms", "token_delay", "0", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0 = ph_now_ns();

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_true((snap.first_ns - t0) / 1000000 >= 199);
}

static void test_token_delay_spaces_the_tokens(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "a b c d e", "token_delay", "50ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0 = ph_now_ns();

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.n_tokens, 5);
    assert_true((snap.last_ns - t0) / 1000000 >= 199); /* four gaps of 50 ms */
}

static void test_latency_delays_the_stt_final_after_finish(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "latency", "200ms", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 100, 20);
    t0 = ph_now_ns();
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    assert_true(ph_ms_since(t0) >= 199);
}

static void test_latency_delays_the_first_stt_partial_after_audio_starts(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "latency", "200ms", "partial_every", "20ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0 = ph_now_ns();

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 40, 20);
    assert_true(ph_rec_wait(r, ph_has_partials, 1));
    ph_rec_snap(r, &snap);
    assert_true((snap.first_ns - t0) / 1000000 >= 199);
}

static void test_latency_delays_the_first_tts_chunk(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "latency", "200ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;
    uint64_t t0 = ph_now_ns();

    assert_int_equal(tts_start(f, in, "hi", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_true((snap.first_ns - t0) / 1000000 >= 199);
}

/* A host of ABI 1.5 gets absolute due times (defer_at); an older table,
 * without the field, still works through defer_id (rounded up to whole
 * milliseconds, never early). */
static atomic_int g_at_calls, g_id_calls;

static int count_defer_at(vx_host *h, uint64_t due, void (*fn)(void *), void *arg, uint64_t *id) {
    atomic_fetch_add(&g_at_calls, 1);
    return ph_api.defer_at(h, due, fn, arg, id);
}

static int count_defer_id(vx_host *h, uint32_t ms, void (*fn)(void *), void *arg, uint64_t *id) {
    atomic_fetch_add(&g_id_calls, 1);
    return ph_api.defer_id(h, ms, fn, arg, id);
}

static void test_timers_use_defer_at_when_the_host_has_it(void **state) {
    fixture *f = *state;

    for (int old = 0; old < 2; old++) {
        vx_host_api api = ph_api;
        vx_host h = {0};
        vx_kv kv[] = {{"latency", "30ms"}, {"token_delay", "0"}};
        vx_error err = {0};
        void *inst = NULL;
        vx_stream *s = NULL;
        rec *r = fx_rec(f);
        vx_llm_events ev = ph_llm_events(r);
        seen snap;
        uint64_t t0 = ph_now_ns();

        api.defer_at = count_defer_at;
        api.defer_id = count_defer_id;
        if (old) api.struct_size = offsetof(vx_host_api, defer_at); /* a 1.4 host */
        atomic_store(&g_at_calls, 0);
        atomic_store(&g_id_calls, 0);
        pthread_mutex_init(&h.mu, NULL);
        h.cfg = (vx_config){sizeof(vx_config), "sim", kv, 2};
        assert_int_equal(sim->init(&api, &h, &h.cfg, &inst, &err), VX_OK);
        assert_int_equal(sim->llm->generate(inst, hi, 1, NULL, &ev, &s, &err), VX_OK);
        assert_true(ph_rec_wait(r, ph_has_ended, 1));
        ph_rec_snap(r, &snap);
        assert_true(snap.first_ns - t0 >= 30000000ull);
        assert_int_equal(snap.errors, 0);
        sim->llm->close(s);
        sim->shutdown(inst);
        pthread_mutex_destroy(&h.mu);
        if (old) {
            assert_int_equal(atomic_load(&g_at_calls), 0);
            assert_true(atomic_load(&g_id_calls) > 0);
        } else {
            assert_true(atomic_load(&g_at_calls) > 0);
            assert_int_equal(atomic_load(&g_id_calls), 0);
        }
    }
}

/* ================================================================ failures */

static void test_fail_first_fails_exactly_the_first_two_calls(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "2", "error", "ratelimit", "token_delay", "0", NULL);
    vx_stream *s;
    seen snap;

    for (int i = 0; i < 5; i++) {
        rec *r = fx_rec(f);
        vx_error err = {0};
        int rc = llm_start(f, in, hi, 1, 0, r, &s, &err);
        if (i < 2) {
            assert_int_equal(rc, VX_ERATELIMIT);
            assert_null(s);
            assert_int_equal(err.code, VX_ERATELIMIT);
            assert_int_equal(err.retryable, 1);
            assert_int_equal(err.upstream_status, 429);
        } else {
            assert_int_equal(rc, VX_OK);
            assert_true(ph_rec_wait(r, ph_has_ended, 1));
            assert_int_equal(ph_rec_snap(r, &snap)->done, 1);
        }
    }
}

static void test_fail_calls_fails_exactly_the_listed_calls(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_calls", "2, 4", "token_delay", "0", NULL);
    vx_stream *s;

    for (int i = 1; i <= 5; i++) {
        rec *r = fx_rec(f);
        vx_error err = {0};
        int rc = llm_start(f, in, hi, 1, 0, r, &s, &err);
        if (i == 2 || i == 4) {
            assert_int_equal(rc, VX_EUNAVAIL);
            assert_null(s);
        } else {
            assert_int_equal(rc, VX_OK);
            assert_true(ph_rec_wait(r, ph_has_ended, 1));
        }
    }
}

static void test_fail_calls_refuses_what_is_not_a_call_number(void **state) {
    static const char *const bad[] = {"0", "65", "2;3"};
    fixture *f = *state;
    vx_error err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(fx_init_rc(f, &err, "fail_calls", bad[i], NULL), VX_EINVAL);
    }
}

static void test_error_kind_sets_code_retryable_and_upstream_status(void **state) {
    static const struct {
        const char *name;
        int code, retryable, status;
    } kinds[] = {{"unavailable", VX_EUNAVAIL, 1, 503}, {"timeout", VX_ETIMEDOUT, 1, 504},
                 {"ratelimit", VX_ERATELIMIT, 1, 429}, {"auth", VX_EAUTH, 0, 401},
                 {"internal", VX_EINTERNAL, 0, 500},   {"protocol", VX_EPROTO, 0, 502}};
    fixture *f = *state;

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        vx_host h = {0};
        vx_kv kv[] = {{"fail_first", "1"}, {"error", kinds[i].name}};
        vx_error err = {0};
        void *inst = NULL;
        vx_stream *s = NULL;
        rec *r = fx_rec(f);
        vx_llm_events ev = ph_llm_events(r);

        pthread_mutex_init(&h.mu, NULL);
        h.cfg = (vx_config){sizeof(vx_config), "sim", kv, 2};
        assert_int_equal(sim->init(&ph_api, &h, &h.cfg, &inst, &err), VX_OK);
        assert_int_equal(sim->llm->generate(inst, hi, 1, NULL, &ev, &s, &err), kinds[i].code);
        sim->shutdown(inst);
        pthread_mutex_destroy(&h.mu);
        assert_null(s);
        assert_int_equal(err.code, kinds[i].code);
        assert_int_equal(err.retryable, kinds[i].retryable);
        assert_int_equal(err.upstream_status, kinds[i].status);
        assert_true(err.msg[0] != '\0');
    }
}

static void test_fail_at_start_fails_stt_open_and_tts_synthesize_too(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "2", "error", "auth", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error e1 = {0}, e2 = {0}, e3 = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &e1), VX_EAUTH);
    assert_null(s);
    assert_int_equal(tts_start(f, in, "hi", NULL, &fmt, r, &s, &e2), VX_EAUTH);
    assert_null(s);
    assert_int_equal(e2.retryable, 0);
    assert_int_equal(e2.upstream_status, 401);
    assert_int_equal(tts_start(f, in, "hi", NULL, &fmt, r, &s, &e3), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    assert_int_equal(ph_rec_snap(r, &snap)->errors, 0);
}

/* The pass/fail pattern of 64 calls on a fresh instance; calls that
 * succeed are closed at once. */
static uint64_t fail_pattern(fixture *f, const char *seed) {
    size_t in = fx_inst(f, "seed", seed, "failure_rate", "0.5", NULL);
    rec *r = fx_rec(f);
    uint64_t bits = 0;

    for (int i = 0; i < 64; i++) {
        vx_error err = {0};
        vx_stream *s;
        int rc = llm_start(f, in, hi, 1, 0, r, &s, &err);
        bits = bits << 1 | (rc != VX_OK);
        if (rc == VX_OK) fx_close(f, s, r);
        else assert_int_equal(rc, VX_EUNAVAIL);
    }
    return bits;
}

static int popcount64(uint64_t v) {
    int n = 0;
    for (; v; v &= v - 1) n++;
    return n;
}

static void test_failure_rate_pattern_repeats_for_the_same_seed(void **state) {
    fixture *f = *state;
    uint64_t a = fail_pattern(f, "42"), b = fail_pattern(f, "42"), c = fail_pattern(f, "43");

    assert_true(a == b);
    assert_true(a != c);
    assert_in_range(popcount64(a), 16, 48); /* about half of 64 */
}

static void test_fail_at_first_output_sends_on_error_instead_of_the_first_token(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", "fail_at", "first_output", "error", "timeout", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.errors, 1);
    assert_int_equal(snap.err.code, VX_ETIMEDOUT);
    assert_int_equal(snap.err.retryable, 1);
    assert_int_equal(snap.err.upstream_status, 504);
    assert_int_equal(snap.n_tokens, 0);
    assert_int_equal(snap.done, 0);
}

static void test_fail_at_mid_stream_sends_some_tokens_then_on_error(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", "fail_at", "mid_stream", "reply",
                        "one two three four five six", "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.errors, 1);
    assert_int_equal(snap.err.code, VX_EUNAVAIL);
    assert_in_range(snap.n_tokens, 1, 5);
    assert_int_equal(snap.done, 0);
}

static void test_fail_at_mid_stream_sends_some_audio_then_on_error(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", "fail_at", "mid_stream", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(tts_start(f, in, "hello there", NULL, &fmt, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.errors, 1);
    assert_true(snap.n_chunks >= 1);
    assert_true(snap.frames < 11 * 50 * 16);
    assert_int_equal(snap.done, 0);
}

static void test_stt_fail_at_first_output_replaces_the_first_partial(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", "fail_at", "first_output", "error", "protocol",
                        NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 200, 200); /* one partial_every: the first partial */
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.err.code, VX_EPROTO);
    assert_int_equal(snap.n_partials + snap.n_finals, 0);
    /* The stream is dead: more audio is refused with the same error. */
    assert_int_equal(sim->stt->feed(s, snap.pcm, 0, &err), VX_EPROTO);
    assert_int_equal(sim->stt->finish(s, &err), VX_EPROTO);
}

static void test_stt_fail_at_mid_stream_replaces_the_final_after_a_partial(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", "fail_at", "mid_stream", "partial_every", "100ms",
                        NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 100, 20);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.n_partials, 1);
    assert_int_equal(snap.n_finals, 0);
    assert_int_equal(snap.errors, 1);
}

static void test_simulated_failures_feed_sim_failures_total(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "3", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 5; i++)
        if (llm_start(f, in, hi, 1, 0, r, &s, &err) == VX_OK) fx_close(f, s, r);
    assert_true(ph_metric_value(&f->hosts[in], "sim_failures_total") == 3.0);
}

/* ================================================================ hang */

static void test_hang_silent_llm_sends_nothing_until_cancel(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "hang", "silent", "token_delay", "0", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    ph_sleep_ms(150);
    assert_int_equal(ph_rec_events(r), 0);
    sim->llm->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.events, 1);
    assert_int_equal(snap.err.code, VX_ECANCELED);
}

static void test_hang_stall_llm_sends_some_tokens_then_nothing_until_cancel(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "hang", "stall", "fail_first", "1", "fail_at", "mid_stream", "reply",
                        "one two three four five six", "token_delay", "1ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    ph_sleep_ms(150);
    ph_rec_snap(r, &snap);
    assert_in_range(snap.n_tokens, 1, 5);
    assert_int_equal(snap.errors, 0);
    assert_int_equal(snap.done, 0);
    sim->llm->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.err.code, VX_ECANCELED);
    assert_int_equal(snap.done, 0);
}

static void test_hang_silent_stt_accepts_audio_but_sends_nothing_until_cancel(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "hang", "silent", "partial_every", "20ms", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    stt_feed_ms(s, 16000, 200, 20);
    assert_int_equal(sim->stt->finish(s, &err), VX_OK);
    ph_sleep_ms(150);
    assert_int_equal(ph_rec_events(r), 0);
    sim->stt->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.events, 1);
    assert_int_equal(snap.err.code, VX_ECANCELED);
}

typedef struct blocked_call {
    fixture *f;
    size_t in;
    kind k;
    rec *r;
    vx_stream *out; /* published by the plugin before it blocks */
    vx_error err;
    int rc;
    atomic_int returned;
} blocked_call;

static void *blocked_call_run(void *arg) {
    blocked_call *b = arg;
    void *inst = b->f->inst[b->in];

    if (b->k == K_LLM) {
        vx_llm_events ev = ph_llm_events(b->r);
        b->rc = sim->llm->generate(inst, hi, 1, NULL, &ev, &b->out, &b->err);
    } else if (b->k == K_STT) {
        vx_audio_format fmt = {16000, 1, VX_PCM_S16LE};
        vx_stt_events ev = ph_stt_events(b->r);
        b->rc = sim->stt->open(inst, &fmt, &ev, &b->out, &b->err);
    } else {
        vx_audio_format fmt = {0};
        vx_tts_events ev = ph_tts_events(b->r);
        b->rc = sim->tts->synthesize(inst, "hi", NULL, &fmt, &ev, &b->out, &b->err);
    }
    atomic_store(&b->returned, 1);
    return NULL;
}

/* Start the call on its own thread, check it is still blocked later, cancel
 * it through the stream it published, and check how it returned. The
 * thread is joined before any assertion can end the test. */
static void check_blocks_until_cancel(fixture *f, kind k) {
    blocked_call b = {.f = f, .in = fx_inst(f, "hang", "block", NULL), .k = k, .r = fx_rec(f)};
    int logged, returned_early;
    vx_stream *s;
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, blocked_call_run, &b), 0);
    logged = ph_log_wait(&f->hosts[b.in], "blocks until cancelled");
    ph_sleep_ms(200);
    returned_early = atomic_load(&b.returned);
    s = __atomic_load_n(&b.out, __ATOMIC_ACQUIRE);
    if (!s) fail_msg("the blocked call did not publish its stream");
    if (k == K_LLM) sim->llm->cancel(s);
    else if (k == K_STT) sim->stt->cancel(s);
    else sim->tts->cancel(s);
    pthread_join(t, NULL);
    if (b.out) fx_track(f, k, b.out); /* a blocked call leaves its stream to be closed */
    assert_true(logged);
    assert_false(returned_early);
    assert_int_equal(b.rc, VX_ECANCELED);
    assert_int_equal(b.err.code, VX_ECANCELED);
    assert_ptr_equal(b.out, s);
    ph_sleep_ms(50);
    assert_int_equal(ph_rec_events(b.r), 0);
}

static void test_hang_block_blocks_generate_until_cancel(void **state) {
    check_blocks_until_cancel(*state, K_LLM);
}

static void test_hang_block_blocks_open_until_cancel(void **state) {
    check_blocks_until_cancel(*state, K_STT);
}

static void test_hang_block_blocks_synthesize_until_cancel(void **state) {
    check_blocks_until_cancel(*state, K_TTS);
}

/* ================================================================ cancel and close */

typedef struct canceller {
    vx_stream *s;
} canceller;

static void *cancel_run(void *arg) {
    sim->llm->cancel(((canceller *)arg)->s);
    return NULL;
}

static void test_cancel_is_idempotent_and_ends_with_one_canceled_error(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "a b c d", "token_delay", "10s", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;
    pthread_t t[4];
    canceller c;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_tokens, 1));
    c.s = s;
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, cancel_run, &c), 0);
    sim->llm->cancel(s);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    sim->llm->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    sim->llm->cancel(s);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.errors, 1);
    assert_int_equal(snap.err.code, VX_ECANCELED);
    assert_int_equal(snap.done, 0);
    assert_int_equal(snap.n_tokens, 1);
}

static void test_cancel_after_done_sends_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "0", NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    sim->llm->cancel(s);
    ph_sleep_ms(50);
    ph_rec_snap(r, &snap);
    assert_int_equal(snap.done, 1);
    assert_int_equal(snap.errors, 0);
}

static void test_stt_cancel_refuses_more_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    rec *r = fx_rec(f);
    seen snap;
    vx_error err = {0};
    vx_stream *s;
    int16_t pcm[160] = {0};

    assert_int_equal(stt_open(f, in, 16000, r, &s, &err), VX_OK);
    sim->stt->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    assert_int_equal(ph_rec_snap(r, &snap)->err.code, VX_ECANCELED);
    assert_int_equal(sim->stt->feed(s, pcm, 160, &err), VX_ECANCELED);
    assert_int_equal(sim->stt->finish(s, &err), VX_ECANCELED);
}

/* Start many streams with events due at once, close each right away, and
 * check no recorder saw an event after its close returned. */
static void test_no_llm_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "reply", "a b c d e f g h i j k l m n o p", "token_delay", "0", NULL);
    rec *r[40];
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 40; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(llm_start(f, in, hi, 1, 0, r[i], &s, &err), VX_OK);
        if (i % 2) ph_sleep_ms(1); /* some close mid-stream, some before the first token */
        fx_close(f, s, r[i]);
    }
    ph_sleep_ms(50);
    for (int i = 0; i < 40; i++) assert_int_equal(ph_rec_snap(r[i], &snap)->after_close, 0);
}

static void test_no_tts_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "chunk_ms", "1ms", NULL);
    rec *r[20];
    seen snap;
    vx_audio_format fmt;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 20; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(tts_start(f, in, "a long sentence to speak", NULL, &fmt, r[i], &s, &err),
                         VX_OK);
        if (i % 2) ph_sleep_ms(1);
        fx_close(f, s, r[i]);
    }
    ph_sleep_ms(50);
    for (int i = 0; i < 20; i++) assert_int_equal(ph_rec_snap(r[i], &snap)->after_close, 0);
}

static void test_no_stt_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "partial_every", "10ms", NULL);
    rec *r[20];
    seen snap;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 20; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(stt_open(f, in, 16000, r[i], &s, &err), VX_OK);
        stt_feed_ms(s, 16000, 100, 10);
        assert_int_equal(sim->stt->finish(s, &err), VX_OK);
        fx_close(f, s, r[i]);
    }
    ph_sleep_ms(50);
    for (int i = 0; i < 20; i++) assert_int_equal(ph_rec_snap(r[i], &snap)->after_close, 0);
}

/* ================================================================ concurrency */

typedef struct session {
    fixture *f;
    size_t in;
    int n;
    rec *r;
    int rc, ok;
    char want[64];
} session;

/* One user turn: generate, wait for on_done, close. No cmocka calls here:
 * the main thread checks the result. */
static void *session_run(void *arg) {
    session *x = arg;
    char text[32];
    vx_message msg = {"user", text};
    vx_llm_events ev = ph_llm_events(x->r);
    vx_error err = {0};
    vx_stream *s = NULL;

    snprintf(text, sizeof(text), "message %d", x->n);
    snprintf(x->want, sizeof(x->want), "You said: message %d.", x->n);
    x->rc = sim->llm->generate(x->f->inst[x->in], &msg, 1, NULL, &ev, &s, &err);
    if (x->rc != VX_OK) return NULL;
    x->ok = ph_rec_wait(x->r, ph_has_ended, 1);
    sim->llm->close(s);
    return NULL;
}

static void test_twenty_concurrent_llm_streams_all_complete(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "latency", "20ms", "jitter", "10ms", "token_delay", "2ms", NULL);
    session x[24];
    pthread_t t[24];
    seen snap;

    for (int i = 0; i < 24; i++) {
        x[i] = (session){.f = f, .in = in, .n = i, .r = fx_rec(f)};
        assert_int_equal(pthread_create(&t[i], NULL, session_run, &x[i]), 0);
    }
    for (int i = 0; i < 24; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 24; i++) {
        assert_int_equal(x[i].rc, VX_OK);
        assert_true(x[i].ok);
        ph_rec_snap(x[i].r, &snap);
        assert_int_equal(snap.done, 1);
        assert_int_equal(snap.errors, 0);
        assert_string_equal(snap.text, x[i].want);
        assert_int_equal(snap.usage.completion_tokens, 4);
    }
}

typedef struct voice_session {
    fixture *f;
    size_t in;
    rec *stt, *llm, *tts;
    int ok; /* every step returned VX_OK and every wait succeeded */
} voice_session;

/* One voice turn on one instance serving all three stages: hear "what is
 * the weather", answer it, speak the answer. */
static void *voice_session_run(void *arg) {
    static const int16_t pcm[1600];
    voice_session *x = arg;
    void *inst = x->f->inst[x->in];
    vx_audio_format in_fmt = {16000, 1, VX_PCM_S16LE}, out_fmt;
    vx_stt_events se = ph_stt_events(x->stt);
    vx_llm_events le = ph_llm_events(x->llm);
    vx_tts_events te = ph_tts_events(x->tts);
    vx_message msg = {"user", NULL};
    vx_stream *s = NULL, *l = NULL, *t = NULL;
    vx_error err = {0};
    char heard[PH_REC_TEXT], said[sizeof(x->llm->d.text)];

    x->ok = sim->stt->open(inst, &in_fmt, &se, &s, &err) == VX_OK;
    for (int i = 0; x->ok && i < 5; i++) x->ok = sim->stt->feed(s, pcm, 1600, &err) == VX_OK;
    x->ok = x->ok && sim->stt->finish(s, &err) == VX_OK && ph_rec_wait(x->stt, ph_has_finals, 1);
    if (s) sim->stt->close(s);
    if (!x->ok) return NULL;
    pthread_mutex_lock(&x->stt->mu);
    snprintf(heard, sizeof(heard), "%s", x->stt->d.finals[0]);
    pthread_mutex_unlock(&x->stt->mu);
    msg.content = heard;
    x->ok = sim->llm->generate(inst, &msg, 1, NULL, &le, &l, &err) == VX_OK &&
            ph_rec_wait(x->llm, ph_has_ended, 1);
    if (l) sim->llm->close(l);
    if (!x->ok) return NULL;
    pthread_mutex_lock(&x->llm->mu);
    snprintf(said, sizeof(said), "%s", x->llm->d.text);
    pthread_mutex_unlock(&x->llm->mu);
    x->ok = sim->tts->synthesize(inst, said, NULL, &out_fmt, &te, &t, &err) == VX_OK &&
            ph_rec_wait(x->tts, ph_has_ended, 1);
    if (t) sim->tts->close(t);
    return NULL;
}

static void test_twenty_voice_sessions_share_one_instance_for_all_stages(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "transcript", "what is the weather", "latency", "5ms", "jitter", "5ms",
                        "token_delay", "1ms", "ms_per_char", "2", NULL);
    voice_session x[20];
    pthread_t t[20];
    seen snap;

    for (int i = 0; i < 20; i++) {
        x[i] = (voice_session){f, in, fx_rec(f), fx_rec(f), fx_rec(f), 0};
        assert_int_equal(pthread_create(&t[i], NULL, voice_session_run, &x[i]), 0);
    }
    for (int i = 0; i < 20; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 20; i++) {
        assert_true(x[i].ok);
        assert_string_equal(ph_rec_snap(x[i].stt, &snap)->finals[0], "what is the weather");
        assert_string_equal(ph_rec_snap(x[i].llm, &snap)->text, "You said: what is the weather.");
        /* 30 characters x 2 ms at 16 kHz */
        assert_int_equal(ph_rec_snap(x[i].tts, &snap)->frames, 30 * 2 * 16);
        assert_int_equal(snap.done, 1);
    }
}

static void test_health_reports_calls_and_failures(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "fail_first", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    char buf[128];

    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_EUNAVAIL);
    assert_int_equal(llm_start(f, in, hi, 1, 0, r, &s, &err), VX_OK);
    assert_int_equal(sim->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "2 calls"));
    assert_non_null(strstr(buf, "1 failures"));
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_offers_stt_llm_and_tts),
        cmocka_unit_test(test_schema_declares_every_documented_key),

        T(test_stt_input_format_is_16k_mono_s16le),
        T(test_stt_partials_grow_one_word_per_partial_every_of_audio),
        T(test_stt_partials_count_audio_time_at_the_stream_rate),
        T(test_stt_final_is_the_transcript_with_confidence_0_9),
        T(test_stt_transcripts_cycle_per_utterance),
        T(test_stt_empty_utterance_gives_empty_final),
        T(test_stt_empty_utterance_does_not_advance_the_cycle),

        T(test_llm_echo_repeats_the_last_user_message),
        T(test_llm_echo_without_user_message_says_hello),
        T(test_llm_reply_is_sent_one_word_per_token),
        T(test_llm_usage_counts_prompt_words_and_sent_tokens),
        T(test_llm_max_tokens_stops_early_with_on_done),

        T(test_llm_tool_call_is_made_in_3_fragments_then_done),
        T(test_llm_tool_call_ids_follow_the_instance_call_numbers),
        T(test_llm_tool_call_of_a_function_not_offered_is_text),
        T(test_llm_tool_choice_none_never_calls),
        T(test_llm_tool_trigger_limits_the_call_to_turns_that_ask),
        T(test_llm_tool_trigger_reads_the_last_user_message_of_messages_json),
        T(test_llm_tool_choice_required_forces_the_configured_function),
        T(test_llm_tool_choice_required_without_tool_call_calls_the_first_tool),
        T(test_llm_tool_choice_naming_a_function_forces_that_one),
        T(test_llm_forced_call_is_made_even_after_a_tool_result),
        T(test_llm_tool_choice_naming_a_function_not_offered_is_refused),
        T(test_llm_tools_json_that_is_not_an_array_is_refused),
        T(test_llm_tool_result_is_answered_tool_said),
        T(test_llm_tool_result_wins_over_the_configured_reply),
        T(test_llm_without_tools_tool_call_changes_nothing),
        T(test_llm_an_empty_tools_array_offers_nothing),
        T(test_llm_params_older_than_1_3_mean_no_tools),
        T(test_llm_events_older_than_1_3_never_get_a_call),
        T(test_llm_tool_call_fails_mid_stream_like_tokens),
        cmocka_unit_test(test_llm_malformed_tool_call_refuses_init),

        T(test_tts_reports_mono_s16le_at_the_configured_rate),
        T(test_tts_length_is_chars_times_ms_per_char),
        T(test_tts_chunks_are_chunk_ms_long),
        T(test_tts_audio_is_a_faded_tone_near_minus_12_dbfs),
        T(test_tts_voice_selects_the_frequency),
        T(test_tts_realtime_paces_chunks_at_real_time),

        T(test_latency_delays_the_first_llm_token),
        T(test_token_delay_spaces_the_tokens),
        T(test_latency_delays_the_stt_final_after_finish),
        T(test_latency_delays_the_first_stt_partial_after_audio_starts),
        T(test_latency_delays_the_first_tts_chunk),
        T(test_timers_use_defer_at_when_the_host_has_it),

        T(test_fail_first_fails_exactly_the_first_two_calls),
        T(test_fail_calls_fails_exactly_the_listed_calls),
        T(test_fail_calls_refuses_what_is_not_a_call_number),
        T(test_error_kind_sets_code_retryable_and_upstream_status),
        T(test_fail_at_start_fails_stt_open_and_tts_synthesize_too),
        T(test_failure_rate_pattern_repeats_for_the_same_seed),
        T(test_fail_at_first_output_sends_on_error_instead_of_the_first_token),
        T(test_fail_at_mid_stream_sends_some_tokens_then_on_error),
        T(test_fail_at_mid_stream_sends_some_audio_then_on_error),
        T(test_stt_fail_at_first_output_replaces_the_first_partial),
        T(test_stt_fail_at_mid_stream_replaces_the_final_after_a_partial),
        T(test_simulated_failures_feed_sim_failures_total),

        T(test_hang_silent_llm_sends_nothing_until_cancel),
        T(test_hang_stall_llm_sends_some_tokens_then_nothing_until_cancel),
        T(test_hang_silent_stt_accepts_audio_but_sends_nothing_until_cancel),
        T(test_hang_block_blocks_generate_until_cancel),
        T(test_hang_block_blocks_open_until_cancel),
        T(test_hang_block_blocks_synthesize_until_cancel),

        T(test_cancel_is_idempotent_and_ends_with_one_canceled_error),
        T(test_cancel_after_done_sends_nothing),
        T(test_stt_cancel_refuses_more_audio),
        T(test_no_llm_event_after_close),
        T(test_no_tts_event_after_close),
        T(test_no_stt_event_after_close),

        T(test_twenty_concurrent_llm_streams_all_complete),
        T(test_twenty_voice_sessions_share_one_instance_for_all_stages),
        T(test_health_reports_calls_and_failures),
    };
#undef T
    int failed;

    sim = ph_plugin_load(SIM_SO, &sim_dl);
    if (!sim) return 1;
    /* SIM_TEST_FILTER=test_hang* runs a subset (e.g. under valgrind). */
    if (getenv("SIM_TEST_FILTER")) cmocka_set_test_filter(getenv("SIM_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    ph_plugin_unload(sim_dl);
    return failed ? 1 : 0;
}
