/*
 * llm_openai, loaded from its built .so, against tests/tools/mock_openai.
 * The configured model picks the mock's script (see mock_openai.c).
 */
#include "mock_openai.h"
#include "tool_rec.h"

/* What every chat script of the mock streams. */
#define REPLY "Hello there! The café opens at 8 — see you soon."
#define REPLY_TOKENS 13
#define PROMPT_TOKENS 42

static const vx_message convo[] = {
    {"system", "You are a helpful voice assistant."},
    {"user", "When does the café open?"},
    {"assistant", "Which café?"},
    {"user", "The one on the corner."},
};
#define N_CONVO (sizeof(convo) / sizeof(convo[0]))

/* Start a generation with the default params (temperature and max_tokens
 * left to the plugin) unless p is given. */
static int gen(fixture *f, size_t in, const vx_llm_params *p, rec *r, vx_stream **s,
               vx_error *err) {
    vx_llm_params dp = {
        .struct_size = sizeof(dp), .temperature = -1, .session_id = "session-1"};
    vx_llm_events ev = ph_llm_events(r);
    int rc;

    *s = NULL;
    rc = plug->llm->generate(f->inst[in], convo, N_CONVO, p ? p : &dp, &ev, s, err);
    if (*s) fx_track(f, *s);
    return rc;
}

/* Generate with model and wait for the end; returns what was seen. */
static seen *run(fixture *f, const char *model, seen *d) {
    size_t in = fx_inst(f, "model", model, NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(20); /* nothing may follow the end */
    return ph_rec_snap(r, d);
}

static void assert_whole_reply(const seen *d) {
    assert_int_equal(d->errors, 0);
    assert_int_equal(d->done, 1);
    assert_string_equal(d->text, REPLY);
}

/* The error a model's script ends in. */
static vx_error run_error(fixture *f, const char *model) {
    seen d;

    run(f, model, &d);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.errors, 1);
    return d.err;
}

/* ================================================================ descriptor */

static void test_descriptor_is_a_streaming_llm_named_after_its_file(void **state) {
    assert_string_equal(plug->name, "llm_openai");
    assert_int_equal(plug->kinds, VX_KIND_LLM);
    assert_non_null(plug->llm);
    assert_true(plug->caps & VX_CAP_STREAMING_OUTPUT);
    assert_true(plug->caps & VX_CAP_NETWORK);
}

static void test_schema_declares_the_common_keys_and_a_secret_api_key(void **state) {
    static const char *const keys[] = {"base_url", "api_key_env", "api_key", "model", "timeout",
                                       "connect_timeout", "temperature", "max_tokens",
                                       "system_prompt"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const vx_config_key *k;
        for (k = plug->config; k->key && strcmp(k->key, keys[i]) != 0; k++)
            ;
        if (!k->key) fail_msg("no key %s", keys[i]);
        if (strcmp(keys[i], "api_key") == 0) assert_true(k->flags & VX_CFG_SECRET);
        if (strcmp(keys[i], "base_url") == 0) assert_string_equal(k->def, "https://api.openai.com/v1");
        if (strcmp(keys[i], "api_key_env") == 0) assert_string_equal(k->def, "OPENAI_API_KEY");
        if (strcmp(keys[i], "connect_timeout") == 0) assert_string_equal(k->def, "3s");
        if (strcmp(keys[i], "temperature") == 0) assert_string_equal(k->def, "0.7");
        if (strcmp(keys[i], "max_tokens") == 0) assert_string_equal(k->def, "0");
    }
}

/* ================================================================ stream shapes */

static void test_tokens_concatenate_to_the_reply(void **state) {
    seen d;
    assert_whole_reply(run(*state, "ok", &d));
    assert_int_equal(d.n_tokens, REPLY_TOKENS); /* one per content delta, none for role/finish */
}

static void test_usage_from_the_usage_chunk_reaches_on_done(void **state) {
    seen d;
    run(*state, "ok", &d);
    assert_true(d.got_usage);
    assert_int_equal(d.usage.prompt_tokens, PROMPT_TOKENS);
    assert_int_equal(d.usage.completion_tokens, REPLY_TOKENS);
}

static void test_events_split_at_any_byte_give_the_same_reply(void **state) {
    seen d;
    assert_whole_reply(run(*state, "split", &d));
    assert_true(d.got_usage);
}

static void test_keepalive_comments_are_ignored(void **state) {
    seen d;
    assert_whole_reply(run(*state, "keepalive", &d));
}

static void test_crlf_line_endings_are_accepted(void **state) {
    seen d;
    assert_whole_reply(run(*state, "crlf", &d));
    assert_true(d.got_usage);
}

static void test_multiline_data_fields_are_joined(void **state) {
    seen d;
    assert_whole_reply(run(*state, "multiline", &d));
}

static void test_stream_without_done_ends_after_its_finish_reason(void **state) {
    seen d;
    assert_whole_reply(run(*state, "nodone", &d));
    assert_true(d.got_usage);
}

static void test_ollama_stream_with_role_in_every_delta(void **state) {
    seen d;
    assert_whole_reply(run(*state, "ollama", &d));
    assert_int_equal(d.usage.completion_tokens, REPLY_TOKENS);
}

static void test_llamacpp_stream_with_null_content_and_usage_in_the_finish_chunk(void **state) {
    seen d;
    assert_whole_reply(run(*state, "llamacpp", &d));
    assert_true(d.got_usage);
    assert_int_equal(d.usage.prompt_tokens, PROMPT_TOKENS);
}

static void test_a_whole_json_answer_is_one_token(void **state) {
    seen d;
    assert_whole_reply(run(*state, "nonstream", &d));
    assert_int_equal(d.n_tokens, 1);
    assert_true(d.got_usage);
}

/* ================================================================ request */

static void test_request_asks_for_a_stream_with_usage(void **state) {
    seen d;
    json_t *q;

    run(*state, "ok", &d);
    q = mock_last();
    assert_string_equal(jstr(q, "method", NULL), "POST");
    assert_string_equal(jstr(q, "path", NULL), "/v1/chat/completions");
    assert_string_equal(jstr(q, "headers", "content-type", NULL), "application/json");
    assert_string_equal(jstr(q, "headers", "accept", NULL), "text/event-stream");
    assert_string_equal(jstr(q, "json", "model", NULL), "ok");
    assert_true(json_is_true(json_object_get(json_object_get(q, "json"), "stream")));
    assert_true(json_is_true(
        json_object_get(json_object_get(json_object_get(q, "json"), "stream_options"),
                        "include_usage")));
    json_decref(q);
}

static void test_request_carries_the_messages_in_order(void **state) {
    seen d;
    json_t *q, *m;

    run(*state, "ok", &d);
    q = mock_last();
    m = json_object_get(json_object_get(q, "json"), "messages");
    assert_int_equal(json_array_size(m), N_CONVO);
    for (size_t i = 0; i < N_CONVO; i++) {
        assert_string_equal(jstr(json_array_get(m, i), "role", NULL), convo[i].role);
        assert_string_equal(jstr(json_array_get(m, i), "content", NULL), convo[i].content);
    }
    json_decref(q);
}

static void test_configured_temperature_and_max_tokens_are_sent(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "temperature", "0.2", "max_tokens", "150", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q, *b;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    b = json_object_get(q, "json");
    assert_true(json_number_value(json_object_get(b, "temperature")) > 0.199 &&
                json_number_value(json_object_get(b, "temperature")) < 0.201);
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 150);
    json_decref(q);
}

static void test_default_temperature_is_0_7_and_no_max_tokens(void **state) {
    seen d;
    json_t *q, *b;

    run(*state, "ok", &d);
    q = mock_last();
    b = json_object_get(q, "json");
    assert_true(json_number_value(json_object_get(b, "temperature")) > 0.699 &&
                json_number_value(json_object_get(b, "temperature")) < 0.701);
    assert_null(json_object_get(b, "max_tokens"));
    json_decref(q);
}

static void test_request_params_override_the_configured_ones(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "temperature", "0.2", "max_tokens", "150", NULL);
    vx_llm_params p = {.struct_size = sizeof(p),
                       .temperature = 0.0,
                       .max_tokens = 7,
                       .session_id = "session-1"};
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q, *b;

    assert_int_equal(gen(f, in, &p, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    b = json_object_get(q, "json");
    assert_true(json_is_number(json_object_get(b, "temperature")));
    assert_true(json_number_value(json_object_get(b, "temperature")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 7);
    json_decref(q);
}

static void test_negative_temperature_sends_none(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "temperature", "-1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_null(json_object_get(json_object_get(q, "json"), "temperature"));
    json_decref(q);
}

static void test_system_prompt_replaces_the_system_message(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "system_prompt", "Answer in one sentence.", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q, *m;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    m = json_object_get(json_object_get(q, "json"), "messages");
    assert_int_equal(json_array_size(m), N_CONVO);
    assert_string_equal(jstr(json_array_get(m, 0), "role", NULL), "system");
    assert_string_equal(jstr(json_array_get(m, 0), "content", NULL), "Answer in one sentence.");
    assert_string_equal(jstr(json_array_get(m, 1), "content", NULL), convo[1].content);
    json_decref(q);
}

static void test_system_prompt_is_added_first_when_there_is_none(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "system_prompt", "Be brief.", NULL);
    vx_llm_events ev;
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s = NULL;
    json_t *q, *m;

    ev = ph_llm_events(r);
    assert_int_equal(plug->llm->generate(f->inst[in], convo + 1, 1, NULL, &ev, &s, &err), VX_OK);
    fx_track(f, s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    m = json_object_get(json_object_get(q, "json"), "messages");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(jstr(json_array_get(m, 0), "role", NULL), "system");
    assert_string_equal(jstr(json_array_get(m, 0), "content", NULL), "Be brief.");
    assert_string_equal(jstr(json_array_get(m, 1), "role", NULL), "user");
    json_decref(q);
}

static void test_trailing_slash_of_base_url_is_ignored(void **state) {
    fixture *f = *state;
    char url[96];
    size_t in;
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    snprintf(url, sizeof(url), "%s/", srv.url);
    in = fx_inst(f, "model", "ok", "base_url", url, NULL);
    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_string_equal(jstr(q, "path", NULL), "/v1/chat/completions");
    json_decref(q);
}

/* ================================================================ key */

static void test_authorization_is_the_bearer_key_from_the_environment(void **state) {
    seen d;
    json_t *q;

    setenv(KEY_ENV, "sk-test-env-0123456789", 1);
    run(*state, "ok", &d);
    q = mock_last();
    assert_string_equal(jstr(q, "headers", "authorization", NULL), "Bearer sk-test-env-0123456789");
    json_decref(q);
}

static void test_no_authorization_header_without_a_key(void **state) {
    seen d;
    json_t *q;

    run(*state, "ok", &d);
    assert_whole_reply(&d);
    q = mock_last();
    assert_null(jstr(q, "headers", "authorization", NULL));
    json_decref(q);
}

static void test_api_key_is_used_when_the_environment_has_none(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "api_key", "sk-literal-key-42", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_string_equal(jstr(q, "headers", "authorization", NULL), "Bearer sk-literal-key-42");
    json_decref(q);
}

static void test_environment_key_wins_over_api_key(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", "api_key", "sk-literal-key-42", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    json_t *q;

    setenv(KEY_ENV, "sk-from-env-77", 1);
    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    q = mock_last();
    assert_string_equal(jstr(q, "headers", "authorization", NULL), "Bearer sk-from-env-77");
    json_decref(q);
}

static void test_the_key_is_never_logged(void **state) {
    fixture *f = *state;
    seen d;

    setenv(KEY_ENV, "sk-secret-do-not-log", 1);
    run(f, "e401", &d);
    assert_false(ph_logged(&f->hosts[0], "sk-secret-do-not-log"));
    assert_true(ph_logged(&f->hosts[0], "$" KEY_ENV));
}

/* ================================================================ errors */

static void test_http_429_is_a_retryable_rate_limit(void **state) {
    vx_error e = run_error(*state, "e429");
    assert_int_equal(e.code, VX_ERATELIMIT);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 429);
    assert_non_null(strstr(e.msg, "Rate limit reached"));
}

static void test_http_500_is_retryable_unavailable(void **state) {
    vx_error e = run_error(*state, "e500");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 500);
}

static void test_http_401_is_an_auth_error_with_the_server_text_but_not_the_key(void **state) {
    vx_error e;

    setenv(KEY_ENV, "sk-test-very-secret-key", 1);
    e = run_error(*state, "e401");
    assert_int_equal(e.code, VX_EAUTH);
    assert_false(e.retryable);
    assert_int_equal(e.upstream_status, 401);
    assert_non_null(strstr(e.msg, "Incorrect API key provided"));
    assert_null(strstr(e.msg, "sk-test-very-secret-key"));
}

static void test_a_message_cut_inside_a_long_key_shows_none_of_it(void **state) {
    char key[301], prefix[17];
    vx_error e;

    memcpy(key, "sk-", 3);
    for (size_t i = 3; i < sizeof(key) - 1; i++) key[i] = (char)('a' + i % 26);
    key[sizeof(key) - 1] = '\0';
    setenv(KEY_ENV, key, 1);
    e = run_error(*state, "e401");
    assert_int_equal(e.code, VX_EAUTH);
    assert_non_null(strstr(e.msg, "Incorrect API key provided"));
    snprintf(prefix, sizeof(prefix), "%s", key);
    assert_null(strstr(e.msg, prefix));
}

static void test_html_error_page_is_unavailable_with_its_text(void **state) {
    vx_error e = run_error(*state, "e502html");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
    assert_int_equal(e.upstream_status, 502);
    assert_non_null(strstr(e.msg, "502 Bad Gateway"));
}

static void test_unknown_model_is_invalid_and_not_retryable(void **state) {
    vx_error e = run_error(*state, "no-such-model");
    assert_int_equal(e.code, VX_EINVAL);
    assert_false(e.retryable);
    assert_int_equal(e.upstream_status, 404);
    assert_non_null(strstr(e.msg, "does not exist"));
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
    in = fx_inst(f, "model", "ok", "base_url", url, NULL);
    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_EUNAVAIL);
    assert_true(d.err.retryable);
    assert_int_equal(d.err.upstream_status, 0);
}

static void test_a_silent_server_times_out_retryably(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "hang", "timeout", "500ms", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ETIMEDOUT);
    assert_true(d.err.retryable);
}

static void test_unparseable_event_is_a_protocol_error(void **state) {
    seen d;

    run(*state, "badjson", &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.err.code, VX_EPROTO);
    assert_false(d.err.retryable);
    assert_int_equal(d.n_tokens, 2); /* what came before the bad event */
}

static void test_stream_cut_before_the_end_is_retryable_unavailable(void **state) {
    vx_error e = run_error(*state, "truncated");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
}

static void test_error_event_in_the_stream_is_reported(void **state) {
    vx_error e = run_error(*state, "streamerror");
    assert_int_equal(e.code, VX_EUNAVAIL);
    assert_true(e.retryable);
    assert_non_null(strstr(e.msg, "crashed"));
}

static void test_message_without_role_is_refused_at_once(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_message bad[] = {{NULL, "hi"}};
    rec *r = fx_rec(f);
    vx_llm_events ev = ph_llm_events(r);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->llm->generate(f->inst[in], bad, 1, NULL, &ev, &s, &err), VX_EINVAL);
    assert_null(s);
    assert_int_equal(err.code, VX_EINVAL);
    assert_int_equal(mock_count(), 0);
}

/* ================================================================ tools */

/* Two functions in the Realtime shape the host offers. */
#define TOOLS_RT                                                                               \
    "[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Current weather in a " \
    "city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"           \
    "\"string\"}},\"required\":[\"city\"]}},"                                                  \
    "{\"type\":\"function\",\"name\":\"get_time\",\"parameters\":{\"type\":\"object\","        \
    "\"properties\":{}}}]"
/* The same in the chat-completions shape. */
#define TOOLS_CC                                                                               \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"          \
    "\"Current weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":"        \
    "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"                             \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":"     \
    "\"object\",\"properties\":{}}}}]"
/* A conversation with a call and its result (msgs[] holds its text turns). */
#define CONVO_JSON                                                                             \
    "[{\"role\":\"system\",\"content\":\"You are a helpful voice assistant.\"},"               \
    "{\"role\":\"user\",\"content\":\"Weather in São Paulo?\"},"                              \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"    \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"                       \
    "\"{\\\"city\\\":\\\"São Paulo\\\"}\"}}]},"                                               \
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp_c\\\":24}\"}]"
/* What every tool script of the mock calls with (TOOL_ARGS there). */
#define TOOL_ARGS "{\"city\":\"São Paulo\",\"unit\":\"celsius\"}"
#define TOOL_COMPLETION_TOKENS 17

static const vx_message convo_text[] = {
    {"system", "You are a helpful voice assistant."},
    {"user", "Weather in São Paulo?"},
};

static vx_llm_params tool_params(const char *tools, const char *choice, const char *messages) {
    vx_llm_params p = {.struct_size = sizeof(p),
                       .temperature = -1,
                       .session_id = "session-1",
                       .tools_json = tools,
                       .tool_choice = choice,
                       .messages_json = messages};
    return p;
}

/* Generate on instance in with p and ev (convo as msgs[]) and wait for the
 * end. */
static void tgen_wait(fixture *f, size_t in, const vx_llm_params *p, const vx_llm_events *ev,
                      rec *r) {
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->llm->generate(f->inst[in], convo, N_CONVO, p, ev, &s, &err), VX_OK);
    fx_track(f, s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(20); /* nothing may follow the end */
}

/* Offer TOOLS_RT to model's script and wait for the end; the calls in *t. */
static seen *trun(fixture *f, const char *model, tool_rec *t, seen *d) {
    size_t in = fx_inst(f, "model", model, NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, NULL);
    vx_llm_events ev;

    ev = tr_events(t);
    tgen_wait(f, in, &p, &ev, t->r);
    *t = tr_snap(t);
    return ph_rec_snap(t->r, d);
}

/* The JSON body of the last request, a new reference. */
static json_t *last_body(void) {
    json_t *q = mock_last(), *b = json_incref(json_object_get(q, "json"));

    json_decref(q);
    if (!b) fail_msg("the last request has no JSON body");
    return b;
}

static void assert_json_equal(const json_t *got, const char *want) {
    json_t *w = json_loads(want, 0, NULL);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);

    assert_non_null(w);
    if (!json_equal((json_t *)got, w)) fail_msg("got %s\nwant %s", g ? g : "(nothing)", want);
    free(g);
    json_decref(w);
}

static tool_rec *tr(fixture *f) {
    return tr_new(fx_rec(f));
}

static void test_tools_are_sent_in_the_chat_completions_shape(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, NULL);
    vx_llm_events ev = tr_events(t);
    json_t *b;

    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    assert_json_equal(json_object_get(b, "tools"), TOOLS_CC);
    assert_null(json_object_get(b, "tool_choice")); /* the server's default: auto */
    json_decref(b);
}

static void test_tool_choice_keywords_are_sent_as_strings(void **state) {
    static const char *const kw[] = {"auto", "none", "required"};
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", NULL);

    for (size_t i = 0; i < 3; i++) {
        tool_rec *t = tr(f);
        vx_llm_params p = tool_params(TOOLS_RT, kw[i], NULL);
        vx_llm_events ev = tr_events(t);
        json_t *b;

        tgen_wait(f, in, &p, &ev, t->r);
        b = last_body();
        assert_string_equal(jstr(b, "tool_choice", NULL), kw[i]);
        json_decref(b);
    }
}

static void test_tool_choice_naming_a_function_is_sent_as_an_object(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, "get_time", NULL);
    vx_llm_events ev = tr_events(t);
    json_t *b;

    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    assert_json_equal(json_object_get(b, "tool_choice"),
                      "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}");
    json_decref(b);
}

static void test_tools_already_in_the_chat_completions_shape_pass_unchanged(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_CC, NULL, NULL);
    vx_llm_events ev = tr_events(t);
    json_t *b;

    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    assert_json_equal(json_object_get(b, "tools"), TOOLS_CC);
    json_decref(b);
}

static void test_messages_json_is_sent_as_the_conversation(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, CONVO_JSON);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    vx_stream *s = NULL;
    seen d;
    json_t *b;

    assert_int_equal(plug->llm->generate(f->inst[in], convo_text, 2, &p, &ev, &s, &err), VX_OK);
    fx_track(f, s);
    assert_true(ph_rec_wait(t->r, ph_has_ended, 1));
    assert_whole_reply(ph_rec_snap(t->r, &d)); /* the mock accepted the tool turns */
    b = last_body();
    assert_json_equal(json_object_get(b, "messages"), CONVO_JSON);
    json_decref(b);
}

static void test_system_prompt_replaces_the_system_message_of_messages_json(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", "system_prompt", "Answer in one sentence.", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, CONVO_JSON);
    vx_llm_events ev = tr_events(t);
    json_t *b, *m;

    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    m = json_object_get(b, "messages");
    assert_int_equal(json_array_size(m), 4);
    assert_string_equal(jstr(json_array_get(m, 0), "role", NULL), "system");
    assert_string_equal(jstr(json_array_get(m, 0), "content", NULL), "Answer in one sentence.");
    assert_string_equal(jstr(json_array_get(m, 3), "tool_call_id", NULL), "call_1");
    json_decref(b);
}

static void test_system_prompt_comes_first_in_messages_json_without_one(void **state) {
    static const char convo_json[] =
        "[{\"role\":\"user\",\"content\":\"Weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"sunny\"}]";
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", "system_prompt", "Be brief.", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, convo_json);
    vx_llm_events ev = tr_events(t);
    json_t *b, *m;

    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    m = json_object_get(b, "messages");
    assert_int_equal(json_array_size(m), 4);
    assert_json_equal(json_array_get(m, 0), "{\"role\":\"system\",\"content\":\"Be brief.\"}");
    assert_string_equal(jstr(json_array_get(m, 1), "content", NULL), "Weather?");
    json_decref(b);
}

static void test_split_arguments_reassemble_to_the_exact_json(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_openai", t, &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.n_tokens, 0);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 1);
    assert_string_equal(t->calls[0].id, "call_w8L2");
    assert_string_equal(t->calls[0].name, "get_weather");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
    assert_int_equal(t->calls[0].fragments, 13); /* the named one with "", then 12 pieces */
}

static void test_parallel_calls_keep_their_indexes_ids_and_names(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_parallel", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 2);
    assert_string_equal(t->calls[0].id, "call_p0");
    assert_string_equal(t->calls[0].name, "get_weather");
    assert_string_equal(t->calls[0].args, "{\"city\":\"Paris\"}");
    assert_string_equal(t->calls[1].id, "call_p1");
    assert_string_equal(t->calls[1].name, "get_time");
    assert_string_equal(t->calls[1].args, "{\"zone\":\"Europe/Paris\"}");
}

static void test_ollama_whole_call_in_one_chunk_is_one_fragment(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_ollama", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.n_tokens, 0); /* its content "" is no token */
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 1);
    assert_int_equal(t->fragments, 1);
    assert_string_equal(t->calls[0].id, "call_ol1");
    assert_string_equal(t->calls[0].name, "get_weather");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
}

static void test_llamacpp_whole_call_with_usage_in_the_finish_chunk(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_llamacpp", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->fragments, 1);
    assert_string_equal(t->calls[0].id, "call_lc1");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
    assert_true(d.got_usage);
    assert_int_equal(d.usage.completion_tokens, TOOL_COMPLETION_TOKENS);
}

static void test_calls_without_index_or_id_get_their_own_index_and_a_made_up_id(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_noindex", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 2);
    assert_string_equal(t->calls[0].name, "get_weather");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
    assert_string_equal(t->calls[1].name, "get_time");
    assert_string_equal(t->calls[1].args, "{}");
    assert_true(strncmp(t->calls[0].id, "call_", 5) == 0);
    assert_string_not_equal(t->calls[0].id, t->calls[1].id);
}

static void test_calls_sharing_index_0_with_their_own_ids_are_told_apart(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_index0", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 2);
    assert_string_equal(t->calls[0].id, "call_o0");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
    assert_string_equal(t->calls[1].id, "call_o1");
    assert_string_equal(t->calls[1].name, "get_time");
    assert_string_equal(t->calls[1].args, "{}");
}

static void test_text_then_a_call_gives_tokens_then_fragments(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_text", t, &d);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.text, "Let me check the weather.");
    assert_int_equal(t->tokens_before, 3);
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 1);
    assert_string_equal(t->calls[0].id, "call_t1");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
}

static void test_a_whole_json_answer_with_a_call(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_nonstream", t, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.n_tokens, 0); /* content null */
    assert_int_equal(t->bad, 0);
    assert_int_equal(t->n_calls, 1);
    assert_string_equal(t->calls[0].id, "call_ns1");
    assert_string_equal(t->calls[0].args, TOOL_ARGS);
}

static void test_a_call_that_never_names_its_function_is_a_protocol_error(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_noname", t, &d);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_EPROTO);
    assert_int_equal(t->fragments, 0); /* nothing of a call the host could not run */
}

static void test_usage_of_a_tool_answer_reaches_on_done(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    seen d;

    trun(f, "tools_openai", t, &d);
    assert_true(d.got_usage);
    assert_int_equal(d.usage.prompt_tokens, PROMPT_TOKENS);
    assert_int_equal(d.usage.completion_tokens, TOOL_COMPLETION_TOKENS);
}

static void test_without_tools_the_request_is_byte_identical_to_abi_1_2(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p13 = tool_params(NULL, "auto", NULL);
    vx_llm_params p12 = {
        .struct_size = sizeof(p12), .temperature = -1, .session_id = "session-1"};
    tool_rec *a = tr(f), *b = tr(f);
    vx_llm_events ea = tr_events(a), eb = tr_events(b);
    json_t *q;
    char *body13;

    p12.struct_size = (uint32_t)(VX_LLM_PARAMS_SIZE_1_3 - 3 * sizeof(char *));
    tgen_wait(f, in, &p13, &ea, a->r);
    q = mock_last();
    body13 = strdup(jstr(q, "body", NULL));
    json_decref(q);
    tgen_wait(f, in, &p12, &eb, b->r);
    q = mock_last();
    assert_string_equal(jstr(q, "body", NULL), body13);
    assert_null(strstr(body13, "tool"));
    free(body13);
    json_decref(q);
}

static void test_without_tools_no_tool_call_event(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(NULL, NULL, NULL);
    vx_llm_events ev = tr_events(t);
    seen d;

    tgen_wait(f, in, &p, &ev, t->r);
    assert_whole_reply(ph_rec_snap(t->r, &d));
    assert_int_equal(tr_snap(t).fragments, 0);
}

static void test_an_empty_tools_array_offers_nothing(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params("[]", "auto", NULL);
    vx_llm_events ev = tr_events(t);
    seen d;
    json_t *b;

    tgen_wait(f, in, &p, &ev, t->r);
    assert_whole_reply(ph_rec_snap(t->r, &d)); /* OpenAI refuses "tools": [] */
    b = last_body();
    assert_null(json_object_get(b, "tools"));
    assert_null(json_object_get(b, "tool_choice"));
    json_decref(b);
}

static void test_params_older_than_1_3_are_treated_as_no_tools(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, "required", CONVO_JSON);
    vx_llm_events ev = tr_events(t);
    json_t *b, *m;

    p.struct_size = (uint32_t)(VX_LLM_PARAMS_SIZE_1_3 - 3 * sizeof(char *));
    tgen_wait(f, in, &p, &ev, t->r);
    b = last_body();
    assert_null(json_object_get(b, "tools"));
    assert_null(json_object_get(b, "tool_choice"));
    m = json_object_get(b, "messages");
    assert_int_equal(json_array_size(m), N_CONVO); /* msgs[], not messages_json */
    assert_string_equal(jstr(json_array_get(m, 3), "content", NULL), convo[3].content);
    json_decref(b);
}

/* Documented choice: events without on_tool_call are never offered tools,
 * and a call a server sends anyway is dropped; on_done ends the answer. */
static void test_events_older_than_1_3_never_receive_a_tool_call(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "tools_text", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, "auto", NULL);
    vx_llm_events ev = tr_events_1_2(t);
    seen d;
    json_t *b;

    tgen_wait(f, in, &p, &ev, t->r);
    ph_rec_snap(t->r, &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.done, 1);
    assert_string_equal(d.text, "Let me check the weather.");
    assert_int_equal(tr_snap(t).fragments, 0);
    b = last_body();
    assert_null(json_object_get(b, "tools"));
    assert_null(json_object_get(b, "tool_choice"));
    json_decref(b);
}

static void test_tools_json_that_is_not_an_array_is_refused_at_once(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params("{\"name\":\"get_weather\"}", NULL, NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->llm->generate(f->inst[in], convo, N_CONVO, &p, &ev, &s, &err),
                     VX_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "tools_json"));
    assert_int_equal(mock_count(), 0);
}

static void test_a_tool_without_a_name_is_refused_at_once(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p =
        tool_params("[{\"type\":\"function\",\"description\":\"x\"}]", NULL, NULL);
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->llm->generate(f->inst[in], convo, N_CONVO, &p, &ev, &s, &err),
                     VX_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "no function name"));
    assert_int_equal(mock_count(), 0);
}

static void
test_messages_json_that_is_not_an_array_of_messages_is_refused_at_once(void **state) {
    fixture *f = *state;
    tool_rec *t = tr(f);
    size_t in = fx_inst(f, "model", "ok", NULL);
    vx_llm_params p = tool_params(TOOLS_RT, NULL, "[{\"content\":\"no role\"}]");
    vx_llm_events ev = tr_events(t);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(plug->llm->generate(f->inst[in], convo, N_CONVO, &p, &ev, &s, &err),
                     VX_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "messages_json"));
    assert_int_equal(mock_count(), 0);
}

/* ================================================================ cancel and close */

static void test_cancel_mid_stream_ends_with_canceled_before_the_reply_is_complete(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_tokens, 1));
    plug->llm->cancel(s);
    plug->llm->cancel(s); /* idempotent */
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(300); /* longer than the script's gap between chunks */
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_true(d.n_tokens < REPLY_TOKENS);
    assert_int_equal(d.events, d.n_tokens + 1); /* nothing after the error */
}

static void test_cancel_before_the_answer_starts(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "hang", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    plug->llm->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.n_tokens, 0);
}

static void test_cancel_after_done_sends_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "ok", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    plug->llm->cancel(s);
    ph_sleep_ms(50);
    ph_rec_snap(r, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
}

static void test_no_token_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "slow", NULL);
    rec *r = fx_rec(f);
    seen d;
    vx_error err = {0};
    vx_stream *s;

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_tokens, 2));
    fx_close(f, s, r);
    ph_sleep_ms(500);
    assert_int_equal(ph_rec_snap(r, &d)->after_close, 0);
}

static void test_close_right_after_generate_stops_everything(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "split", NULL);
    rec *r[8];
    seen d;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 8; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(gen(f, in, NULL, r[i], &s, &err), VX_OK);
        if (i % 2) ph_sleep_ms(5);
        fx_close(f, s, r[i]);
    }
    ph_sleep_ms(100);
    for (int i = 0; i < 8; i++) assert_int_equal(ph_rec_snap(r[i], &d)->after_close, 0);
}

/* ================================================================ concurrency */

static void test_concurrent_streams_of_one_instance_all_complete(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "split", NULL);
    rec *r[6];
    seen d;
    vx_error err = {0};
    vx_stream *s;

    for (int i = 0; i < 6; i++) {
        r[i] = fx_rec(f);
        assert_int_equal(gen(f, in, NULL, r[i], &s, &err), VX_OK);
    }
    for (int i = 0; i < 6; i++) {
        assert_true(ph_rec_wait(r[i], ph_has_ended, 1));
        assert_whole_reply(ph_rec_snap(r[i], &d));
    }
}

static void test_health_counts_requests_and_failures(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "model", "e500", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    char buf[512];

    assert_int_equal(gen(f, in, NULL, r, &s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    assert_int_equal(plug->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "1 requests, 1 failed"));
    assert_non_null(strstr(buf, "HTTP 500"));
}

/* The fixture closes every stream before the tool recorders go. */
static int tfx_teardown(void **state) {
    int rc = fx_teardown(state);

    tr_free_all();
    return rc;
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, tfx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_streaming_llm_named_after_its_file),
        cmocka_unit_test(test_schema_declares_the_common_keys_and_a_secret_api_key),

        T(test_tokens_concatenate_to_the_reply),
        T(test_usage_from_the_usage_chunk_reaches_on_done),
        T(test_events_split_at_any_byte_give_the_same_reply),
        T(test_keepalive_comments_are_ignored),
        T(test_crlf_line_endings_are_accepted),
        T(test_multiline_data_fields_are_joined),
        T(test_stream_without_done_ends_after_its_finish_reason),
        T(test_ollama_stream_with_role_in_every_delta),
        T(test_llamacpp_stream_with_null_content_and_usage_in_the_finish_chunk),
        T(test_a_whole_json_answer_is_one_token),

        T(test_request_asks_for_a_stream_with_usage),
        T(test_request_carries_the_messages_in_order),
        T(test_configured_temperature_and_max_tokens_are_sent),
        T(test_default_temperature_is_0_7_and_no_max_tokens),
        T(test_request_params_override_the_configured_ones),
        T(test_negative_temperature_sends_none),
        T(test_system_prompt_replaces_the_system_message),
        T(test_system_prompt_is_added_first_when_there_is_none),
        T(test_trailing_slash_of_base_url_is_ignored),

        T(test_authorization_is_the_bearer_key_from_the_environment),
        T(test_no_authorization_header_without_a_key),
        T(test_api_key_is_used_when_the_environment_has_none),
        T(test_environment_key_wins_over_api_key),
        T(test_the_key_is_never_logged),

        T(test_http_429_is_a_retryable_rate_limit),
        T(test_http_500_is_retryable_unavailable),
        T(test_http_401_is_an_auth_error_with_the_server_text_but_not_the_key),
        T(test_a_message_cut_inside_a_long_key_shows_none_of_it),
        T(test_html_error_page_is_unavailable_with_its_text),
        T(test_unknown_model_is_invalid_and_not_retryable),
        T(test_connection_refused_is_retryable_unavailable),
        T(test_a_silent_server_times_out_retryably),
        T(test_unparseable_event_is_a_protocol_error),
        T(test_stream_cut_before_the_end_is_retryable_unavailable),
        T(test_error_event_in_the_stream_is_reported),
        T(test_message_without_role_is_refused_at_once),

        T(test_tools_are_sent_in_the_chat_completions_shape),
        T(test_tool_choice_keywords_are_sent_as_strings),
        T(test_tool_choice_naming_a_function_is_sent_as_an_object),
        T(test_tools_already_in_the_chat_completions_shape_pass_unchanged),
        T(test_messages_json_is_sent_as_the_conversation),
        T(test_system_prompt_replaces_the_system_message_of_messages_json),
        T(test_system_prompt_comes_first_in_messages_json_without_one),
        T(test_split_arguments_reassemble_to_the_exact_json),
        T(test_parallel_calls_keep_their_indexes_ids_and_names),
        T(test_ollama_whole_call_in_one_chunk_is_one_fragment),
        T(test_llamacpp_whole_call_with_usage_in_the_finish_chunk),
        T(test_calls_without_index_or_id_get_their_own_index_and_a_made_up_id),
        T(test_calls_sharing_index_0_with_their_own_ids_are_told_apart),
        T(test_text_then_a_call_gives_tokens_then_fragments),
        T(test_a_whole_json_answer_with_a_call),
        T(test_a_call_that_never_names_its_function_is_a_protocol_error),
        T(test_usage_of_a_tool_answer_reaches_on_done),
        T(test_without_tools_the_request_is_byte_identical_to_abi_1_2),
        T(test_without_tools_no_tool_call_event),
        T(test_an_empty_tools_array_offers_nothing),
        T(test_params_older_than_1_3_are_treated_as_no_tools),
        T(test_events_older_than_1_3_never_receive_a_tool_call),
        T(test_tools_json_that_is_not_an_array_is_refused_at_once),
        T(test_a_tool_without_a_name_is_refused_at_once),
        T(test_messages_json_that_is_not_an_array_of_messages_is_refused_at_once),

        T(test_cancel_mid_stream_ends_with_canceled_before_the_reply_is_complete),
        T(test_cancel_before_the_answer_starts),
        T(test_cancel_after_done_sends_nothing),
        T(test_no_token_after_close),
        T(test_close_right_after_generate_stops_everything),

        T(test_concurrent_streams_of_one_instance_all_complete),
        T(test_health_counts_requests_and_failures),
    };
#undef T
    return oai_test_main(tests, sizeof(tests) / sizeof(tests[0]), "llm_openai");
}
