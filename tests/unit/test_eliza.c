/*
 * The llm_eliza provider plugin, tested through its built .so exactly as
 * the host loads it: dlopen, vx_plugin_entry, init with a config, then
 * generate/cancel/close. The faithfulness test replays the conversation
 * printed in Weizenbaum's 1966 CACM paper and expects ELIZA's published
 * replies word for word (case and punctuation aside). Events arrive on the
 * plugin's threads and are recorded under a mutex; assertions run on the
 * main thread only.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#ifndef ELIZA_SO
#error "ELIZA_SO must name the built llm_eliza.so"
#endif
#ifndef DOCTOR_TXT
#error "DOCTOR_TXT must name plugins/llm_eliza/doctor.txt"
#endif

typedef ph_seen seen;
typedef ph_rec rec;
typedef ph_fixture fixture;

/* ---------------------------------------------------------------- fixture */

static void *eliza_dl;
static const vx_plugin_info *eliza;

static int fx_setup(void **state) {
    return (*state = ph_fx_new(eliza)) ? 0 : -1;
}

static int fx_teardown(void **state) {
    ph_fx_free(*state);
    return 0;
}

/* Init an instance with token_delay 0 unless given (pairs of key, value
 * ending with NULL); returns its index. */
static size_t fx_inst(fixture *f, ...) {
    vx_error err = {0};
    vx_host *h;
    va_list ap;

    va_start(ap, f);
    h = ph_fx_host(f, "eliza", ap);
    va_end(ap);
    if (strcmp(ph_host_get(h, "token_delay"), "30ms") == 0) ph_host_set(h, "token_delay", "0");
    assert_int_equal(ph_fx_init(f, &err), VX_OK);
    return f->n_inst - 1;
}

/* Init that is expected to fail: its code, with err filled. */
static int fx_init_fails(fixture *f, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = ph_fx_vinit(f, "eliza", err, ap);
    va_end(ap);
    return rc;
}

/* A script file with the given text; removed at teardown. */
static const char *fx_file(fixture *f, const char *text) {
    return ph_fx_file(f, "/tmp/test_eliza_XXXXXX", text);
}

static rec *fx_rec(fixture *f) {
    return ph_fx_rec(f);
}

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    ph_fx_close(f, s, r);
}

/* Start a generation for msgs in `session`; the stream is tracked. */
static vx_stream *start(fixture *f, size_t inst, const vx_message *msgs, size_t n,
                        const char *session, int max_tokens, rec *r) {
    vx_llm_params p = {.struct_size = sizeof(p), .temperature = -1, .max_tokens = max_tokens, .session_id = session};
    vx_llm_events ev = ph_llm_events(r);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(eliza->llm->generate(f->inst[inst], msgs, n, &p, &ev, &s, &err), VX_OK);
    assert_non_null(s);
    ph_fx_track(f, VX_KIND_LLM, s);
    return s;
}

/* ELIZA's whole answer to the conversation msgs, in session; the stream is
 * closed again. Returns a static buffer. */
static const char *answer_to(fixture *f, size_t inst, const vx_message *msgs, size_t n,
                             const char *session) {
    static char text[sizeof(((seen *)0)->text)];
    rec *r = fx_rec(f);
    vx_stream *s = start(f, inst, msgs, n, session, 0, r);
    seen d;

    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.done, 1);
    fx_close(f, s, r);
    snprintf(text, sizeof(text), "%s", d.text);
    return text;
}

/* ELIZA's answer to one user message in session. */
static const char *say(fixture *f, size_t inst, const char *session, const char *text) {
    vx_message m = {"user", text};
    return answer_to(f, inst, &m, 1, session);
}

/* Lowercase letters, digits and single spaces only: how the paper's
 * capitals compare with the plugin's sentences. */
static void plain(const char *in, char *out, size_t len) {
    size_t o = 0;
    int space = 0;

    for (; *in && o + 2 < len; in++) {
        unsigned char c = (unsigned char)*in;
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (space && o) out[o++] = ' ';
            space = 0;
            out[o++] = (char)c;
        } else if (c != '\'') {
            space = 1;
        }
    }
    out[o] = '\0';
}

#define assert_same_words(expected, actual)                                         \
    do {                                                                            \
        char e_[512], a_[512];                                                      \
        plain((expected), e_, sizeof(e_));                                          \
        plain((actual), a_, sizeof(a_));                                            \
        if (strcmp(e_, a_) != 0)                                                    \
            fail_msg("expected \"%s\", ELIZA said \"%s\"", (expected), (actual));   \
    } while (0)

/* ---------------------------------------------------------------- descriptor */

static void test_descriptor_is_an_llm_named_after_its_file(void **state) {
    (void)state;
    assert_int_equal(eliza->magic, VX_PLUGIN_MAGIC);
    assert_string_equal(eliza->name, "llm_eliza");
    assert_int_equal(eliza->kinds, VX_KIND_LLM);
    assert_non_null(eliza->llm);
    assert_null(eliza->stt);
    assert_null(eliza->tts);
}

static void test_schema_declares_every_documented_key(void **state) {
    static const char *const keys[] = {"script", "token_delay", "first_token_delay", "greeting",
                                       "max_sessions"};
    (void)state;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const vx_config_key *k;
        for (k = eliza->config; k->key && strcmp(k->key, keys[i]) != 0; k++)
            ;
        assert_non_null(k->key);
    }
}

/* ---------------------------------------------------------------- faithfulness */

/* The conversation of Weizenbaum 1966, p. 36-37, as printed. */
static const char *const weizenbaum[][2] = {
    {"Men are all alike.", "IN WHAT WAY"},
    {"They're always bugging us about something or other.",
     "CAN YOU THINK OF A SPECIFIC EXAMPLE"},
    {"Well, my boyfriend made me come here.", "YOUR BOYFRIEND MADE YOU COME HERE"},
    {"He says I'm depressed much of the time.", "I AM SORRY TO HEAR YOU ARE DEPRESSED"},
    {"It's true. I am unhappy.", "DO YOU THINK COMING HERE WILL HELP YOU NOT TO BE UNHAPPY"},
    {"I need some help, that much seems certain.",
     "WHAT WOULD IT MEAN TO YOU IF YOU GOT SOME HELP"},
    {"Perhaps I could learn to get along with my mother.", "TELL ME MORE ABOUT YOUR FAMILY"},
    {"My mother takes care of me.", "WHO ELSE IN YOUR FAMILY TAKES CARE OF YOU"},
    {"My father.", "YOUR FATHER"},
    {"You are like my father in some ways.", "WHAT RESEMBLANCE DO YOU SEE"},
    {"You are not very aggressive but I think you don't want me to notice that.",
     "WHAT MAKES YOU THINK I AM NOT VERY AGGRESSIVE"},
    {"You don't argue with me.", "WHY DO YOU THINK I DON'T ARGUE WITH YOU"},
    {"You are afraid of me.", "DOES IT PLEASE YOU TO BELIEVE I AM AFRAID OF YOU"},
    {"My father is afraid of everybody.",
     "WHAT ELSE COMES TO YOUR MIND WHEN YOU THINK OF YOUR FATHER"},
    {"Bullies.",
     "DOES THAT HAVE ANYTHING TO DO WITH THE FACT THAT YOUR BOYFRIEND MADE YOU COME HERE"},
};

static void replay_weizenbaum(fixture *f, size_t in) {
    for (size_t i = 0; i < sizeof(weizenbaum) / sizeof(weizenbaum[0]); i++)
        assert_same_words(weizenbaum[i][1], say(f, in, "paper", weizenbaum[i][0]));
}

static void test_the_1966_conversation_is_reproduced(void **state) {
    fixture *f = *state;

    replay_weizenbaum(f, fx_inst(f, NULL));
}

static void test_installed_doctor_txt_answers_like_the_built_in_script(void **state) {
    fixture *f = *state;

    replay_weizenbaum(f, fx_inst(f, "script", DOCTOR_TXT, NULL));
}

/* ---------------------------------------------------------------- the algorithm */

static void test_user_words_are_reflected_into_the_answer(void **state) {
    fixture *f = *state;
    const char *path = fx_file(f, "post: i you\npost: am are\npost: my your\npost: me you\n"
                                  "key: sad\n decomp: 0\n  reasmb: So (1).\n"
                                  "key: xnone\n decomp: 0\n  reasmb: Go on.\n");
    size_t in = fx_inst(f, "script", path, NULL);

    assert_string_equal(say(f, in, "s", "I am sad about my job"),
                        "So you are sad about your job.");
}

static void test_doctor_reflects_pronouns_of_the_matched_part(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "s", "I remember my father shouting at me"),
                        "Do you often think of your father shouting at you?");
}

static void test_higher_rank_keyword_wins(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    /* "my" (rank 2) comes first, "computer" (rank 50) wins. */
    assert_string_equal(say(f, in, "s", "My computer is broken."), "Do computers worry you?");
}

static void test_equal_rank_keeps_the_keyword_met_first(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    /* "everybody" and "my" both rank 2. */
    assert_string_equal(say(f, in, "s", "Everybody laughs at my hat"), "Really, everybody?");
}

static void test_equals_key_continues_with_that_keys_rules(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "s", "Maybe."), "You don't seem quite certain.");
    assert_string_equal(say(f, in, "s", "How old are you?"), "Why do you ask?");
}

static void test_newkey_moves_on_to_the_next_keyword(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    /* "like" ranks 10 but only decomposes "... is like ...": newkey, then "i". */
    assert_string_equal(say(f, in, "s", "I like you"),
                        "Perhaps in your fantasy we like each other.");
}

static void test_memory_of_my_is_replayed_when_no_keyword_matches(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "s", "My mother hates me."), "Tell me more about your family.");
    assert_string_equal(say(f, in, "s", "Bullies."),
                        "Does that have anything to do with the fact that your mother hates you?");
    /* Used up: the next keywordless input falls back to xnone. */
    assert_string_equal(say(f, in, "s", "Bullies."), "I'm not sure I understand you fully.");
}

static void test_without_keyword_or_memory_xnone_answers_in_turn(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "s", "Bullies."), "I'm not sure I understand you fully.");
    assert_string_equal(say(f, in, "s", "Bullies."), "Please go on.");
}

static void test_same_input_again_gives_the_next_reassembly(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "s", "I can't sleep."), "How do you know you can't sleep?");
    assert_string_equal(say(f, in, "s", "I can't sleep."), "Have you tried?");
    assert_string_equal(say(f, in, "s", "I can't sleep."), "Perhaps you could sleep now.");
    assert_string_equal(say(f, in, "s", "I can't sleep."),
                        "Do you really want to be able to sleep?");
    assert_string_equal(say(f, in, "s", "I can't sleep."), "How do you know you can't sleep?");
}

static void test_only_the_first_clause_with_a_keyword_is_read(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    /* "whatever" has no keyword; "computer" (rank 50) comes a clause late. */
    assert_string_equal(say(f, in, "s", "Whatever. Men are all alike, my computer says."),
                        "In what way?");
    assert_string_equal(say(f, in, "s", "Men are the same but computers differ"),
                        "What resemblance do you see?");
}

static void test_the_last_user_message_is_answered(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    const vx_message conv[] = {{"system", "You are a therapist."},
                               {"user", "Maybe."},
                               {"assistant", "You don't seem quite certain."},
                               {"user", "My computer is broken."},
                               {"assistant", "Do computers worry you?"}};

    assert_string_equal(answer_to(f, in, conv, 5, "s"), "Do computers worry you?");
}

static void test_sessions_keep_separate_cycles_and_memories(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    assert_string_equal(say(f, in, "a", "Men are all alike."), "In what way?");
    assert_string_equal(say(f, in, "a", "My mother hates me."), "Tell me more about your family.");
    assert_string_equal(say(f, in, "b", "Men are all alike."), "In what way?");
    assert_string_equal(say(f, in, "b", "Bullies."), "I'm not sure I understand you fully.");
    assert_string_equal(say(f, in, "a", "Men are all alike."), "What resemblance do you see?");
    assert_string_equal(say(f, in, "a", "Bullies."),
                        "Does that have anything to do with the fact that your mother hates you?");
}

static void test_least_recently_used_session_is_forgotten(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "max_sessions", "2", NULL);

    assert_string_equal(say(f, in, "a", "Men are all alike."), "In what way?");
    assert_string_equal(say(f, in, "b", "Men are all alike."), "In what way?");
    assert_string_equal(say(f, in, "a", "Men are all alike."), "What resemblance do you see?");
    /* c needs room: b is the least recently used. */
    assert_string_equal(say(f, in, "c", "Men are all alike."), "In what way?");
    assert_string_equal(say(f, in, "b", "Men are all alike."), "In what way?");
}

static void test_no_user_message_answers_the_greeting(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    const vx_message sys[] = {{"system", "You are a therapist."}};

    assert_string_equal(answer_to(f, in, sys, 1, "s"),
                        "How do you do. Please tell me your problem.");
    assert_string_equal(answer_to(f, in, NULL, 0, "s"),
                        "How do you do. Please tell me your problem.");
}

static void test_greeting_is_configurable(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "greeting", "Hello, I am ELIZA.", NULL);

    assert_string_equal(answer_to(f, in, NULL, 0, "s"), "Hello, I am ELIZA.");
}

/* ---------------------------------------------------------------- streaming */

static void test_tokens_are_words_with_their_following_space(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_message m = {"user", "Men are all alike."};
    rec *r = fx_rec(f);
    seen d;

    start(f, in, &m, 1, "s", 0, r);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.n_tokens, 3);
    assert_string_equal(d.tokens[0], "In ");
    assert_string_equal(d.tokens[1], "what ");
    assert_string_equal(d.tokens[2], "way?");
    assert_string_equal(d.text, "In what way?");
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
}

static void test_usage_counts_prompt_words_and_sent_tokens(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    const vx_message conv[] = {{"system", "Be kind."}, {"user", "Men are all alike."}};
    rec *r = fx_rec(f);
    seen d;

    start(f, in, conv, 2, "s", 0, r);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_true(d.got_usage);
    assert_int_equal(d.usage.prompt_tokens, 6);
    assert_int_equal(d.usage.completion_tokens, 3);
}

static void test_max_tokens_cuts_the_answer_short(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_message m = {"user", "Men are all alike."};
    rec *r = fx_rec(f);
    seen d;

    start(f, in, &m, 1, "s", 2, r);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_string_equal(d.text, "In what");
    assert_int_equal(d.usage.completion_tokens, 2);
}

static void test_first_token_waits_first_token_delay(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "first_token_delay", "150ms", NULL);
    vx_message m = {"user", "Men are all alike."};
    rec *r = fx_rec(f);
    uint64_t t0 = ph_now_ns();
    seen d;

    start(f, in, &m, 1, "s", 0, r);
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_rec_snap(r, &d);
    assert_true(d.first_ns - t0 >= 150 * 1000000ull);
}

static void test_cancel_ends_the_stream_with_one_canceled_error(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "10s", NULL);
    vx_message m = {"user", "Men are all alike."};
    rec *r = fx_rec(f);
    vx_stream *s = start(f, in, &m, 1, "s", 0, r);
    seen d;

    assert_true(ph_rec_wait(r, ph_has_tokens, 1)); /* the first token comes at once */
    eliza->llm->cancel(s);
    eliza->llm->cancel(s); /* idempotent */
    assert_true(ph_rec_wait(r, ph_has_ended, 1));
    ph_sleep_ms(50);
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.done, 0);
    assert_int_equal(d.n_tokens, 1);
}

static void test_no_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "token_delay", "20ms", NULL);
    vx_message m = {"user", "What do you think about machines, and about me?"};
    rec *r = fx_rec(f);
    vx_stream *s = start(f, in, &m, 1, "s", 0, r);
    seen d;

    assert_true(ph_rec_wait(r, ph_has_tokens, 1));
    fx_close(f, s, r);
    ph_sleep_ms(200);
    ph_rec_snap(r, &d);
    assert_int_equal(d.after_close, 0);
    assert_int_equal(d.done, 0);
}

/* ---------------------------------------------------------------- scripts */

static void test_a_script_file_replaces_the_doctor(void **state) {
    fixture *f = *state;
    const char *path = fx_file(f, "# a tiny therapist\n"
                                  "pre: dont don't\n"
                                  "synon: pet cat dog\n"
                                  "key: xnone\n  decomp: *\n    reasmb: Tell me about animals.\n"
                                  "key: don't 3\n"
                                  "  decomp: * don't *\n    reasmb: Why not (3)?\n"
                                  "key: cat\n  decomp: * @pet *\n    reasmb: =animal\n"
                                  "key: animal\n  decomp: * @pet *\n    reasmb: A (2)! Lovely.\n");
    size_t in = fx_inst(f, "script", path, NULL);

    assert_string_equal(say(f, in, "s", "The weather is nice."), "Tell me about animals.");
    assert_string_equal(say(f, in, "s", "My cat sleeps."), "A cat! Lovely.");
    assert_string_equal(say(f, in, "s", "I dont like the cat"), "Why not like the cat?");
}

static void test_a_malformed_script_is_refused_with_file_and_line(void **state) {
    static const struct {
        const char *text, *line, *what;
    } bad[] = {
        {"key: xnone\n decomp: 0\n  reasmb: Go on.\nfrobnicate: x\n", ":4:", "frobnicate"},
        {"key: xnone\n decomp: 0 x 0\n  reasmb: (4)?\n", ":3:", "(4)"},
        {"key: xnone\n decomp: 0\n  reasmb: =nowhere\n", ":3:", "nowhere"},
        {"key: xnone\n decomp: 0 @nothing\n  reasmb: Hm.\n", ":2:", "nothing"},
        {"key: xnone\n decomp: 0\n", ":2:", "reasmb"},
        {"reasmb: Hello\n", ":1:", "decomp"},
        {"key: hello 1e3\n", ":1:", "rank"},
        {"key: hello\n decomp: 0\n  reasmb: Hi.\n", "", "xnone"},
    };
    fixture *f = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path = fx_file(f, bad[i].text);
        char where[96];
        vx_error err = {0};

        assert_int_equal(fx_init_fails(f, &err, "script", path, NULL), VX_EINVAL);
        assert_int_equal(err.code, VX_EINVAL);
        assert_false(err.retryable);
        snprintf(where, sizeof(where), "%s%s", path, bad[i].line);
        if (!strstr(err.msg, where) || !strstr(err.msg, bad[i].what))
            fail_msg("script %zu: expected \"%s\" and \"%s\" in \"%s\"", i, where, bad[i].what,
                     err.msg);
        /* Slots are few: reuse them. */
        unlink(path);
        f->n_files--;
        pthread_mutex_destroy(&f->hosts[--f->n_inst].mu);
    }
}

static void test_a_missing_script_file_is_refused(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_init_fails(f, &err, "script", "/nonexistent/doctor.txt", NULL),
                     VX_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/doctor.txt"));
}

static void test_health_counts_conversations(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    char buf[128];

    say(f, in, "a", "Hello");
    say(f, in, "b", "Hello");
    assert_int_equal(eliza->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "2 conversations"));
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_an_llm_named_after_its_file),
        cmocka_unit_test(test_schema_declares_every_documented_key),

        T(test_the_1966_conversation_is_reproduced),
        T(test_installed_doctor_txt_answers_like_the_built_in_script),

        T(test_user_words_are_reflected_into_the_answer),
        T(test_doctor_reflects_pronouns_of_the_matched_part),
        T(test_higher_rank_keyword_wins),
        T(test_equal_rank_keeps_the_keyword_met_first),
        T(test_equals_key_continues_with_that_keys_rules),
        T(test_newkey_moves_on_to_the_next_keyword),
        T(test_memory_of_my_is_replayed_when_no_keyword_matches),
        T(test_without_keyword_or_memory_xnone_answers_in_turn),
        T(test_same_input_again_gives_the_next_reassembly),
        T(test_only_the_first_clause_with_a_keyword_is_read),
        T(test_the_last_user_message_is_answered),
        T(test_sessions_keep_separate_cycles_and_memories),
        T(test_least_recently_used_session_is_forgotten),
        T(test_no_user_message_answers_the_greeting),
        T(test_greeting_is_configurable),

        T(test_tokens_are_words_with_their_following_space),
        T(test_usage_counts_prompt_words_and_sent_tokens),
        T(test_max_tokens_cuts_the_answer_short),
        T(test_first_token_waits_first_token_delay),
        T(test_cancel_ends_the_stream_with_one_canceled_error),
        T(test_no_event_after_close),

        T(test_a_script_file_replaces_the_doctor),
        T(test_a_malformed_script_is_refused_with_file_and_line),
        T(test_a_missing_script_file_is_refused),
        T(test_health_counts_conversations),
    };
#undef T
    int failed;

    eliza = ph_plugin_load(ELIZA_SO, &eliza_dl);
    if (!eliza) return 1;
    failed = cmocka_run_group_tests_name("llm_eliza", tests, NULL, NULL);
    ph_plugin_unload(eliza_dl);
    return failed;
}
