/*
 * The Realtime protocol translation (host/session/protocol.c): every client event in
 * both dialects, every error a client can provoke, and the shape of every
 * server event, checked by parsing the JSON back with jansson. Shapes follow
 * the `openai` npm package 7.57.0 (resources/realtime/realtime.d.ts for GA,
 * resources/beta/realtime/realtime.d.ts for beta).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "session/protocol.h"

/* The fixtures below give items and responses positionally and leave the
 * later fields (added with later protocol features) zero on purpose. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ------------------------------------------------------------ helpers */

/* JSON written with single quotes for readability: 'x' -> "x". The tests
 * never need a literal apostrophe. */
static char *q(const char *s)
{
    static char buf[8192];
    size_t n = strlen(s);
    assert_true(n < sizeof buf);
    for (size_t i = 0; i <= n; i++) buf[i] = s[i] == '\'' ? '"' : s[i];
    return buf;
}

static void parse_ok(proto_dialect d, const char *json, proto_client_event *ev)
{
    proto_error err;
    int rc = proto_parse(json, strlen(json), d, 0, ev, &err);
    if (rc != 0)
        fprintf(stderr, "# proto_parse: %s %s (%s): %s\n", err.code, err.param, err.event_id,
                err.message);
    assert_int_equal(rc, 0);
}

/* Parse what must be refused with `code` naming `param`; ev must be empty. */
/* The event is refused with code/param; for a session.update whose member
 * is bad, that member's error is the one reported (the others apply). */
static void parse_err(proto_dialect d, const char *json, const char *code, const char *param,
                      proto_error *err)
{
    proto_client_event ev, zero;
    memset(&zero, 0, sizeof zero);
    int rc = proto_parse(json, strlen(json), d, 0, &ev, err);
    if (rc == 0 && ev.type == PC_SESSION_UPDATE) {
        assert_int_equal(ev.n_field_errors, 1);
        *err = ev.field_errors[0];
        memcpy(err->event_id, ev.event_id, sizeof err->event_id);
        assert_int_equal(ev.session.set, 0); /* the one member given was not applied */
        proto_client_event_free(&ev);
    } else {
        assert_int_equal(rc, -1);
        assert_memory_equal(&ev, &zero, sizeof ev);
    }
    assert_string_equal(err->type, "invalid_request_error");
    assert_string_equal(err->code, code);
    if (param) assert_string_equal(err->param, param);
    assert_true(err->message[0] != '\0');
}

static void refused(proto_dialect d, const char *json, const char *code, const char *param)
{
    proto_error err;
    parse_err(d, json, code, param, &err);
}

/* Load a builder's output (taking it), check event_id and type. */
static json_t *load(char *text, const char *type)
{
    json_error_t je;
    json_t *o;
    assert_non_null(text);
    o = json_loads(text, 0, &je);
    if (o == NULL) fprintf(stderr, "# not JSON (%s): %s\n", je.text, text);
    free(text);
    assert_non_null(o);
    assert_true(json_is_object(o));
    const char *id = json_string_value(json_object_get(o, "event_id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 26);
    assert_memory_equal(id, "event_", 6);
    for (int i = 6; i < 26; i++) assert_true(isalnum((unsigned char)id[i]));
    assert_string_equal(json_string_value(json_object_get(o, "type")), type);
    return o;
}

/* Member at a dotted path; numeric segments index arrays. NULL: absent. */
static json_t *at(json_t *o, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *seg = strtok_r(buf, ".", &save); seg && o; seg = strtok_r(NULL, ".", &save))
        o = isdigit((unsigned char)seg[0]) ? json_array_get(o, strtoul(seg, NULL, 10))
                                           : json_object_get(o, seg);
    return o;
}

static const char *str_at(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    if (!json_is_string(v)) fprintf(stderr, "# %s: not a string\n", path);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static long long int_at(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    if (!json_is_integer(v)) fprintf(stderr, "# %s: not an integer\n", path);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void null_at(json_t *o, const char *path)
{
    json_t *v = at(o, path);
    if (!json_is_null(v)) fprintf(stderr, "# %s: not null\n", path);
    assert_true(json_is_null(v));
}

static void absent_at(json_t *o, const char *path)
{
    assert_null(at(o, path));
}

/* base64 of little-endian s16, for building append events by hand. */
static char *b64_of(const int16_t *pcm, size_t n)
{
    unsigned char *raw = malloc(n * 2 + 1);
    char *out = malloc(4 * ((n * 2 + 2) / 3) + 1);
    assert_non_null(raw);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        raw[2 * i] = (unsigned char)((uint16_t)pcm[i] & 0xff);
        raw[2 * i + 1] = (unsigned char)((uint16_t)pcm[i] >> 8);
    }
    out[EVP_EncodeBlock((unsigned char *)out, raw, (int)(n * 2))] = '\0';
    free(raw);
    return out;
}

static char *append_event(const char *b64)
{
    size_t n = strlen(b64) + 64;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"type\":\"input_audio_buffer.append\",\"audio\":\"%s\"}", b64);
    return s;
}

static const proto_pos pos = {"resp_1", "item_1", 2};

/* ------------------------------------------------------------ session.update (GA) */

#define GA_FULL_UPDATE \
    "{'type':'session.update','event_id':'ev1','session':{'type':'realtime'," \
    "'instructions':'Be brief.','output_modalities':['text']," \
    "'audio':{'input':{'format':{'type':'audio/pcm','rate':16000}," \
    "'turn_detection':{'type':'server_vad','threshold':0.7,'prefix_padding_ms':200," \
    "'silence_duration_ms':800,'create_response':false,'interrupt_response':false}," \
    "'transcription':{'model':'whisper-1'}}," \
    "'output':{'format':{'type':'audio/pcm','rate':48000},'voice':'marin'}}," \
    "'max_output_tokens':500}}"

static void ga_session_update_reads_every_field(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q(GA_FULL_UPDATE), &ev);
    assert_int_equal(ev.type, PC_SESSION_UPDATE);
    assert_string_equal(ev.event_id, "ev1");
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS | PS_VOICE | PS_INPUT_RATE | PS_OUTPUT_RATE |
                                         PS_MODALITIES | PS_TURN_DETECTION |
                                         PS_MAX_OUTPUT_TOKENS | PS_TRANSCRIPTION);
    assert_string_equal(ev.session.instructions, "Be brief.");
    assert_string_equal(ev.session.voice, "marin");
    assert_int_equal(ev.session.input_rate, 16000);
    assert_int_equal(ev.session.output_rate, 48000);
    assert_int_equal(ev.session.modalities, PROTO_MOD_TEXT);
    assert_int_equal(ev.session.turn.enabled, 1);
    assert_true(ev.session.turn.threshold > 0.69 && ev.session.turn.threshold < 0.71);
    assert_int_equal(ev.session.turn.prefix_padding_ms, 200);
    assert_int_equal(ev.session.turn.silence_duration_ms, 800);
    assert_int_equal(ev.session.turn.create_response, 0);
    assert_int_equal(ev.session.turn.interrupt_response, 0);
    assert_int_equal(ev.session.transcription, 1);
    assert_int_equal(ev.session.max_output_tokens, 500);
    proto_client_event_free(&ev);
}

static void ga_session_update_sets_only_present_fields(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime','instructions':'x'}}"),
             &ev);
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS);
    assert_string_equal(ev.session.instructions, "x");
    assert_null(ev.session.voice);
    proto_client_event_free(&ev);
}

static void ga_session_update_ignores_beta_flat_fields(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'voice':'ash',"
                         "'input_audio_format':'g711_ulaw','modalities':['text']}}"), &ev);
    assert_int_equal(ev.session.set, 0);
    proto_client_event_free(&ev);
}

static void ga_turn_detection_null_means_manual_commit(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'audio':{'input':{'turn_detection':null}}}}"), &ev);
    assert_int_equal(ev.session.set, PS_TURN_DETECTION);
    assert_int_equal(ev.session.turn.enabled, 0);
    proto_client_event_free(&ev);
}

static void ga_partial_turn_detection_takes_defaults(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'audio':{'input':{'turn_detection':{'type':'server_vad',"
                         "'silence_duration_ms':1000}}}}}"), &ev);
    assert_int_equal(ev.session.set, PS_TURN_DETECTION);
    assert_int_equal(ev.session.turn.enabled, 1);
    assert_true(ev.session.turn.threshold == 0.5);
    assert_int_equal(ev.session.turn.prefix_padding_ms, 300);
    assert_int_equal(ev.session.turn.silence_duration_ms, 1000);
    assert_int_equal(ev.session.turn.create_response, 1);
    assert_int_equal(ev.session.turn.interrupt_response, 1);
    proto_client_event_free(&ev);
}

static void ga_transcription_null_turns_transcription_off(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'audio':{'input':{'transcription':null}}}}"), &ev);
    assert_int_equal(ev.session.set, PS_TRANSCRIPTION);
    assert_int_equal(ev.session.transcription, 0);
    proto_client_event_free(&ev);
}

static void ga_max_output_tokens_inf_is_unbounded(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'max_output_tokens':'inf'}}"), &ev);
    assert_int_equal(ev.session.set, PS_MAX_OUTPUT_TOKENS);
    assert_int_equal(ev.session.max_output_tokens, 0);
    proto_client_event_free(&ev);
}

static void ga_voice_may_be_an_object_with_id(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'audio':{'output':{'voice':{'id':'voice_custom'}}}}}"), &ev);
    assert_int_equal(ev.session.set, PS_VOICE);
    assert_string_equal(ev.session.voice, "voice_custom");
    proto_client_event_free(&ev);
}

static void ga_format_without_rate_is_24k(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'type':'realtime',"
                         "'audio':{'input':{'format':{'type':'audio/pcm'}}}}}"), &ev);
    assert_int_equal(ev.session.set, PS_INPUT_RATE);
    assert_int_equal(ev.session.input_rate, 24000);
    proto_client_event_free(&ev);
}

static void every_supported_rate_is_accepted(void **state)
{
    static const int rates[] = {8000, 16000, 22050, 24000, 32000, 44100, 48000};
    (void)state;
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        char js[256];
        proto_client_event ev;
        snprintf(js, sizeof js,
                 "{'type':'session.update','session':{'audio':{'input':{'format':"
                 "{'type':'audio/pcm','rate':%d}},'output':{'format':{'type':'audio/pcm',"
                 "'rate':%d}}}}}", rates[i], rates[i]);
        parse_ok(PROTO_GA, q(js), &ev);
        assert_int_equal(ev.session.input_rate, rates[i]);
        assert_int_equal(ev.session.output_rate, rates[i]);
        proto_client_event_free(&ev);
    }
}

/* ------------------------------------------------------------ session.update (beta) */

static void beta_session_update_reads_flat_fields(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA,
             q("{'type':'session.update','event_id':'b1','session':{'modalities':['text','audio'],"
               "'instructions':'Hi','voice':'alloy','input_audio_format':'pcm16',"
               "'output_audio_format':'pcm16','input_audio_transcription':{'model':'whisper-1'},"
               "'turn_detection':{'type':'server_vad','threshold':0.3,'prefix_padding_ms':100,"
               "'silence_duration_ms':400,'create_response':true,'interrupt_response':false},"
               "'temperature':0.8,'max_response_output_tokens':1000}}"), &ev);
    assert_int_equal(ev.type, PC_SESSION_UPDATE);
    assert_string_equal(ev.event_id, "b1");
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS | PS_VOICE | PS_INPUT_RATE | PS_OUTPUT_RATE |
                                         PS_MODALITIES | PS_TURN_DETECTION | PS_TEMPERATURE |
                                         PS_MAX_OUTPUT_TOKENS | PS_TRANSCRIPTION);
    assert_string_equal(ev.session.instructions, "Hi");
    assert_string_equal(ev.session.voice, "alloy");
    assert_int_equal(ev.session.modalities, PROTO_MOD_TEXT | PROTO_MOD_AUDIO);
    assert_int_equal(ev.session.input_rate, 24000);
    assert_int_equal(ev.session.output_rate, 24000);
    assert_int_equal(ev.session.transcription, 1);
    assert_int_equal(ev.session.turn.enabled, 1);
    assert_true(ev.session.turn.threshold > 0.29 && ev.session.turn.threshold < 0.31);
    assert_int_equal(ev.session.turn.prefix_padding_ms, 100);
    assert_int_equal(ev.session.turn.silence_duration_ms, 400);
    assert_int_equal(ev.session.turn.create_response, 1);
    assert_int_equal(ev.session.turn.interrupt_response, 0);
    assert_true(ev.session.temperature > 0.79 && ev.session.temperature < 0.81);
    assert_int_equal(ev.session.max_output_tokens, 1000);
    proto_client_event_free(&ev);
}

static void beta_session_update_sets_only_present_fields(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'session.update','session':{'voice':'echo'}}"), &ev);
    assert_int_equal(ev.session.set, PS_VOICE);
    assert_string_equal(ev.session.voice, "echo");
    proto_client_event_free(&ev);
}

static void beta_turn_detection_null_means_manual_commit(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'session.update','session':{'turn_detection':null,"
                           "'input_audio_transcription':null}}"), &ev);
    assert_int_equal(ev.session.set, PS_TURN_DETECTION | PS_TRANSCRIPTION);
    assert_int_equal(ev.session.turn.enabled, 0);
    assert_int_equal(ev.session.transcription, 0);
    proto_client_event_free(&ev);
}

static void beta_turn_detection_without_type_is_server_vad(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'session.update','session':{'turn_detection':"
                           "{'threshold':0.9}}}"), &ev);
    assert_int_equal(ev.session.turn.enabled, 1);
    assert_true(ev.session.turn.threshold > 0.89 && ev.session.turn.threshold < 0.91);
    proto_client_event_free(&ev);
}

/* ------------------------------------------------------------ session.update errors */

static void instructions_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'instructions':42}}"), "invalid_type",
            "session.instructions");
    refused(PROTO_BETA, q("{'type':'session.update','session':{'instructions':{'a':1}}}"),
            "invalid_type", "session.instructions");
}

static void missing_session_is_missing_required_parameter(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update'}"), "missing_required_parameter", "session");
}

static void session_that_is_not_an_object_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':[]}"), "invalid_type", "session");
}

static void ga_transcription_session_type_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'type':'transcription'}}"),
            "invalid_value", "session.type");
}

static void ga_pcmu_input_is_unsupported_audio_format(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                        "{'format':{'type':'audio/pcmu'}}}}}"),
            "unsupported_audio_format", "session.audio.input.format.type");
}

static void ga_pcma_output_is_unsupported_audio_format(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'output':"
                        "{'format':{'type':'audio/pcma'}}}}}"),
            "unsupported_audio_format", "session.audio.output.format.type");
}

static void beta_g711_is_unsupported_audio_format(void **state)
{
    (void)state;
    refused(PROTO_BETA, q("{'type':'session.update','session':{'input_audio_format':'g711_ulaw'}}"),
            "unsupported_audio_format", "session.input_audio_format");
    refused(PROTO_BETA, q("{'type':'session.update','session':{'output_audio_format':'g711_alaw'}}"),
            "unsupported_audio_format", "session.output_audio_format");
}

static void unsupported_rate_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                        "{'format':{'type':'audio/pcm','rate':11025}}}}}"),
            "invalid_value", "session.audio.input.format.rate");
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'output':"
                        "{'format':{'type':'audio/pcm','rate':96000}}}}}"),
            "invalid_value", "session.audio.output.format.rate");
}

static void rate_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                        "{'format':{'type':'audio/pcm','rate':'24000'}}}}}"),
            "invalid_type", "session.audio.input.format.rate");
}

static void semantic_vad_is_accepted_with_its_eagerness(void **state)
{
    proto_client_event ev;
    proto_error err;
    (void)state;
    const char *j = q("{'type':'session.update','session':{'audio':{'input':"
                      "{'turn_detection':{'type':'semantic_vad','eagerness':'low','create_response':false}}}}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_GA, 0, &ev, &err), 0);
    assert_int_equal(ev.n_field_errors, 0);
    assert_true(ev.session.set & PS_TURN_DETECTION);
    assert_true(ev.session.turn.enabled);
    assert_true(ev.session.turn.semantic);
    assert_int_equal(ev.session.turn.eagerness, PROTO_EAGER_LOW);
    assert_false(ev.session.turn.create_response);
    assert_true(ev.session.turn.interrupt_response);
    proto_client_event_free(&ev);
    j = q("{'type':'session.update','session':{'turn_detection':{'type':'semantic_vad'}}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_BETA, 0, &ev, &err), 0);
    assert_true(ev.session.turn.semantic);
    assert_int_equal(ev.session.turn.eagerness, PROTO_EAGER_AUTO);
    proto_client_event_free(&ev);
}

static void unknown_eagerness_is_invalid_value(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                          "{'turn_detection':{'type':'semantic_vad','eagerness':'eager'}}}}}"),
              "invalid_value", "session.audio.input.turn_detection.eagerness", &err);
}

static void unknown_turn_detection_type_is_invalid_value(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                          "{'turn_detection':{'type':'push_to_talk'}}}}}"),
              "invalid_value", "session.audio.input.turn_detection.type", &err);
    assert_non_null(strstr(err.message, "'semantic_vad'"));
}

static void a_bad_member_leaves_the_valid_ones_of_the_update(void **state)
{
    proto_client_event ev;
    proto_error err;
    (void)state;
    const char *j = q("{'type':'session.update','event_id':'e9','session':{'instructions':'Be brief.',"
                      "'output_modalities':['smell'],'audio':{'input':{'turn_detection':{'type':'server_vad',"
                      "'threshold':7}},'output':{'voice':'tenor'}}}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_GA, 0, &ev, &err), 0);
    assert_int_equal(ev.n_field_errors, 2);
    assert_string_equal(ev.field_errors[0].param, "session.output_modalities");
    assert_string_equal(ev.field_errors[1].param, "session.audio.input.turn_detection.threshold");
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS | PS_VOICE);
    assert_string_equal(ev.session.instructions, "Be brief.");
    assert_string_equal(ev.session.voice, "tenor");
    assert_string_equal(ev.event_id, "e9");
    proto_client_event_free(&ev);
}

static void threshold_outside_zero_to_one_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                        "{'turn_detection':{'type':'server_vad','threshold':1.5}}}}}"),
            "invalid_value", "session.audio.input.turn_detection.threshold");
    refused(PROTO_BETA, q("{'type':'session.update','session':"
                          "{'turn_detection':{'threshold':-0.1}}}"),
            "invalid_value", "session.turn_detection.threshold");
}

static void negative_silence_duration_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_BETA, q("{'type':'session.update','session':"
                          "{'turn_detection':{'silence_duration_ms':-5}}}"),
            "invalid_value", "session.turn_detection.silence_duration_ms");
}

static void turn_detection_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'input':"
                        "{'turn_detection':'server_vad'}}}}"),
            "invalid_type", "session.audio.input.turn_detection");
}

static void unknown_modality_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'output_modalities':['video']}}"),
            "invalid_value", "session.output_modalities");
    refused(PROTO_BETA, q("{'type':'session.update','session':{'modalities':'text'}}"),
            "invalid_type", "session.modalities");
}

static void max_output_tokens_other_string_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'max_output_tokens':'lots'}}"),
            "invalid_value", "session.max_output_tokens");
    refused(PROTO_BETA, q("{'type':'session.update','session':{'max_response_output_tokens':0}}"),
            "invalid_value", "session.max_response_output_tokens");
}

static void voice_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'session.update','session':{'audio':{'output':{'voice':7}}}}"),
            "invalid_type", "session.audio.output.voice");
    refused(PROTO_BETA, q("{'type':'session.update','session':{'voice':true}}"), "invalid_type",
            "session.voice");
}

static void null_optional_fields_are_absent(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'session.update','event_id':null,'session':{'instructions':null,"
                         "'output_modalities':null,'audio':{'input':null,'output':{'voice':null}}}}"),
             &ev);
    assert_int_equal(ev.session.set, 0);
    assert_null(ev.session.instructions);
    proto_client_event_free(&ev);
    parse_ok(PROTO_BETA, q("{'type':'response.create','response':null}"), &ev);
    assert_int_equal(ev.type, PC_RESPONSE_CREATE);
    proto_client_event_free(&ev);
}

/* ------------------------------------------------------------ envelope errors */

static void malformed_json_is_invalid_json(void **state)
{
    (void)state;
    refused(PROTO_GA, "{\"type\": \"session.update\",", "invalid_json", NULL);
    refused(PROTO_BETA, "", "invalid_json", NULL);
}

/* An event of more JSON values than any client event needs is refused
 * before it is parsed; strings (audio) do not count, however long. */
static void event_with_too_many_json_values_is_refused_unparsed(void **state)
{
    (void)state;
    size_t n = PROTO_MAX_JSON_VALUES + 10, cap = 64 + 2 * n;
    char *big = malloc(cap), *p = big;
    assert_non_null(big);
    p += sprintf(p, "{\"type\":\"session.update\",\"session\":{\"tools\":[");
    for (size_t i = 0; i < n; i++) *p++ = i ? ',' : '0';
    strcpy(p, "]}}");
    refused(PROTO_GA, big, "invalid_event", NULL);
    /* the same bytes inside a string are one value */
    memcpy(big, "{\"type\":\"input_audio_buffer.clear\",\"x\":\"", 40);
    p = big + strlen(big) - 3;
    strcpy(p, "\"}");
    for (char *q = big + 40; q < p; q++)
        if (*q == '[' || *q == ']' || *q == '{' || *q == '}' || *q == '"' || *q == ':') *q = ' ';
    proto_client_event ev;
    parse_ok(PROTO_GA, big, &ev);
    assert_int_equal(ev.type, PC_AUDIO_CLEAR);
    proto_client_event_free(&ev);
    free(big);
}

static void invalid_utf8_in_json_is_invalid_json(void **state)
{
    (void)state;
    refused(PROTO_GA, "{\"type\":\"response.create\",\"event_id\":\"\xff\"}", "invalid_json", NULL);
}

static void event_that_is_not_an_object_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, "[1,2]", "invalid_type", NULL);
    refused(PROTO_GA, "\"session.update\"", "invalid_type", NULL);
}

static void missing_type_is_missing_required_parameter(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'event_id':'e'}"), "missing_required_parameter", "type");
}

static void non_string_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_BETA, q("{'type':5}"), "invalid_type", "type");
}

static void unknown_event_is_named_in_the_message(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'conversation.item.rewind','event_id':'x9'}"),
              "unknown_event", NULL, &err);
    assert_non_null(strstr(err.message, "conversation.item.rewind"));
    assert_string_equal(err.event_id, "x9");
}

static void event_id_is_echoed_in_the_error(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'session.update','event_id':'client_7','session':"
                          "{'instructions':1}}"), "invalid_type", "session.instructions", &err);
    assert_string_equal(err.event_id, "client_7");
}

static void event_id_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'input_audio_buffer.commit','event_id':12}"), "invalid_type",
            "event_id");
}

static void long_event_id_is_truncated_on_a_character_boundary(void **state)
{
    char js[512], id[200];
    proto_client_event ev;
    (void)state;
    /* 94 ASCII bytes then a two-byte character: byte 95 would split it. */
    memset(id, 'a', 94);
    strcpy(id + 94, "\xc3\xa9zzzz");
    snprintf(js, sizeof js, "{\"type\":\"input_audio_buffer.clear\",\"event_id\":\"%s\"}", id);
    parse_ok(PROTO_GA, js, &ev);
    assert_int_equal(strlen(ev.event_id), 94);
    proto_client_event_free(&ev);
}

/* ------------------------------------------------------------ input_audio_buffer */

static void append_decodes_little_endian_samples(void **state)
{
    proto_client_event ev;
    (void)state;
    /* 01 00 ff ff 00 80 -> 1, -1, -32768 */
    parse_ok(PROTO_GA, q("{'type':'input_audio_buffer.append','event_id':'a1','audio':'AQD//wCA'}"),
             &ev);
    assert_int_equal(ev.type, PC_AUDIO_APPEND);
    assert_string_equal(ev.event_id, "a1");
    assert_int_equal(ev.samples, 3);
    assert_int_equal(ev.pcm[0], 1);
    assert_int_equal(ev.pcm[1], -1);
    assert_int_equal(ev.pcm[2], -32768);
    proto_client_event_free(&ev);
}

/* Appends take a fast path when their JSON is plain; every answer must be
 * the one the full parse gives, for plain shapes and for the ones that
 * fall back. */
static void append_fast_path_agrees_with_the_full_parse(void **state)
{
    static const char *const cases[] = {
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//wCA\"}",
        " {\n\t\"event_id\" : \"ev_1\" ,\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD/ /wCA\"}\r\n",
        "{\"audio\":\"AQD//wCA\",\"type\":\"input_audio_buffer.append\",\"event_id\":\"x\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD*wCA\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",\"event_id\":\"e\",\"event_id\":\"f\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",\"audio\":\"AAAA\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD\\/\\/w==\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\"} {}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\"",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":42}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",\"extra\":1}",
        "{\"type\":\"input_audio_buffer.append\"}",
        "{\"type\":\"input_audio_buffer.commit\",\"audio\":\"AQD//w==\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",\"event_id\":\"\xc3\xa9t\xc3\xa9\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//w==\",\"event_id\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\"}",
        "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD//wCAAQD//wCA\"}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int d = 0; d < 2; d++) {
            proto_dialect dl = d ? PROTO_BETA : PROTO_GA;
            proto_client_event a, b;
            proto_error ea, eb;
            size_t len = strlen(cases[i]);
            int ra = proto_parse(cases[i], len, dl, 4, &a, &ea);
            int rb = proto_parse_full(cases[i], len, dl, 4, &b, &eb);
            assert_int_equal(ra, rb);
            if (ra == 0) {
                assert_int_equal(a.type, b.type);
                assert_string_equal(a.event_id, b.event_id);
                assert_int_equal(a.samples, b.samples);
                if (a.samples) assert_memory_equal(a.pcm, b.pcm, a.samples * sizeof *a.pcm);
                proto_client_event_free(&a);
                proto_client_event_free(&b);
            } else {
                assert_string_equal(ea.type, eb.type);
                assert_string_equal(ea.code, eb.code);
                assert_string_equal(ea.param, eb.param);
                assert_string_equal(ea.message, eb.message);
                assert_string_equal(ea.event_id, eb.event_id);
            }
        }
    }
}

static void append_with_padding_decodes_exact_length(void **state)
{
    proto_client_event ev;
    (void)state;
    /* 4 bytes: 2 samples; "AQD//w==" */
    parse_ok(PROTO_BETA, q("{'type':'input_audio_buffer.append','audio':'AQD//w=='}"), &ev);
    assert_int_equal(ev.samples, 2);
    assert_int_equal(ev.pcm[0], 1);
    assert_int_equal(ev.pcm[1], -1);
    proto_client_event_free(&ev);
}

static void append_ignores_whitespace_in_base64(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, "{\"type\":\"input_audio_buffer.append\",\"audio\":\"AQD/\\r\\n /w A\\tA\\n\"}",
             &ev);
    assert_int_equal(ev.samples, 3);
    assert_int_equal(ev.pcm[2], 0);
    proto_client_event_free(&ev);
}

static void append_of_zero_samples_is_empty(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':''}"), &ev);
    assert_int_equal(ev.type, PC_AUDIO_APPEND);
    assert_int_equal(ev.samples, 0);
    assert_null(ev.pcm);
    proto_client_event_free(&ev);
}

static void append_invalid_character_is_invalid_base64(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'AQD*//8A'}"),
            "invalid_base64", "audio");
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'AQD-__8A'}"),
            "invalid_base64", "audio");
}

static void append_bad_padding_is_invalid_base64(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'AQ=D'}"), "invalid_base64",
            "audio");
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'A==='}"), "invalid_base64",
            "audio");
    refused(PROTO_BETA, q("{'type':'input_audio_buffer.append','audio':'AQ==AQ=='}"),
            "invalid_base64", "audio");
}

static void append_length_not_multiple_of_four_is_invalid_base64(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'AQD//w'}"), "invalid_base64",
            "audio");
}

static void append_odd_byte_count_is_invalid_value(void **state)
{
    (void)state;
    /* "AQ==" is one byte, "AQAB" three. */
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':'AQ=='}"), "invalid_value",
            "audio");
    refused(PROTO_BETA, q("{'type':'input_audio_buffer.append','audio':'AQAB'}"), "invalid_value",
            "audio");
}

static void append_without_audio_is_missing_required_parameter(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append'}"), "missing_required_parameter",
            "audio");
    refused(PROTO_GA, q("{'type':'input_audio_buffer.append','audio':[1]}"), "invalid_type",
            "audio");
}

static void append_of_max_size_is_accepted(void **state)
{
    enum { MAX = 4801 };
    int16_t *pcm = calloc(MAX, sizeof *pcm);
    proto_client_event ev;
    proto_error err;
    (void)state;
    assert_non_null(pcm);
    pcm[MAX - 1] = 1234;
    char *b64 = b64_of(pcm, MAX), *js = append_event(b64);
    assert_int_equal(proto_parse(js, strlen(js), PROTO_GA, MAX, &ev, &err), 0);
    assert_int_equal(ev.samples, MAX);
    assert_int_equal(ev.pcm[MAX - 1], 1234);
    proto_client_event_free(&ev);
    free(js);
    free(b64);
    free(pcm);
}

static void append_one_sample_over_max_is_message_too_large(void **state)
{
    enum { MAX = 4800 };
    int16_t *pcm = calloc(MAX + 1, sizeof *pcm);
    proto_client_event ev;
    proto_error err;
    (void)state;
    assert_non_null(pcm);
    char *b64 = b64_of(pcm, MAX + 1), *js = append_event(b64);
    assert_int_equal(proto_parse(js, strlen(js), PROTO_BETA, MAX, &ev, &err), -1);
    assert_string_equal(err.code, "message_too_large");
    assert_string_equal(err.param, "audio");
    assert_null(ev.pcm);
    free(js);
    free(b64);
    free(pcm);
}

static void audio_delta_round_trips_through_append(void **state)
{
    static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 101, 4801};
    (void)state;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int16_t *pcm = malloc((n ? n : 1) * sizeof *pcm);
        proto_client_event ev;
        assert_non_null(pcm);
        for (size_t i = 0; i < n; i++) pcm[i] = (int16_t)(i * 7919u - 16000u);
        json_t *o = load(proto_ev_audio_delta(PROTO_GA, &pos, pcm, n), "response.output_audio.delta");
        char *js = append_event(str_at(o, "delta"));
        parse_ok(PROTO_GA, js, &ev);
        assert_int_equal(ev.samples, n);
        if (n) assert_memory_equal(ev.pcm, pcm, n * sizeof *pcm);
        proto_client_event_free(&ev);
        free(js);
        json_decref(o);
        free(pcm);
    }
}

/* The delta's audio is spliced into the event jansson wrote; an id that
 * holds the splice mark must not confuse it. */
static void audio_delta_with_odd_ids_is_still_exact(void **state)
{
    (void)state;
    int16_t pcm[4] = {1, -1, 300, -32768};
    proto_pos odd = {"resp_@@voxray-audio@@", "\"@@voxray-audio@@\"", 2};
    json_t *o = load(proto_ev_audio_delta(PROTO_GA, &odd, pcm, 4), "response.output_audio.delta");
    assert_string_equal(str_at(o, "response_id"), "resp_@@voxray-audio@@");
    assert_string_equal(str_at(o, "item_id"), "\"@@voxray-audio@@\"");
    assert_string_equal(str_at(o, "delta"), "AQD//ywBAIA=");
    json_decref(o);
}

static void audio_delta_is_little_endian(void **state)
{
    const int16_t pcm[] = {1, -1, -32768};
    (void)state;
    json_t *o = load(proto_ev_audio_delta(PROTO_BETA, &pos, pcm, 3), "response.audio.delta");
    assert_string_equal(str_at(o, "delta"), "AQD//wCA");
    json_decref(o);
}

static void commit_and_clear_parse_in_both_dialects(void **state)
{
    static const proto_dialect ds[] = {PROTO_GA, PROTO_BETA};
    (void)state;
    for (int i = 0; i < 2; i++) {
        proto_client_event ev;
        parse_ok(ds[i], q("{'type':'input_audio_buffer.commit','event_id':'c'}"), &ev);
        assert_int_equal(ev.type, PC_AUDIO_COMMIT);
        assert_string_equal(ev.event_id, "c");
        proto_client_event_free(&ev);
        parse_ok(ds[i], q("{'type':'input_audio_buffer.clear'}"), &ev);
        assert_int_equal(ev.type, PC_AUDIO_CLEAR);
        assert_string_equal(ev.event_id, "");
        proto_client_event_free(&ev);
        parse_ok(ds[i], q("{'type':'output_audio_buffer.clear','event_id':'o'}"), &ev);
        assert_int_equal(ev.type, PC_OUTPUT_AUDIO_CLEAR);
        assert_string_equal(ev.event_id, "o");
        proto_client_event_free(&ev);
    }
}

/* ------------------------------------------------------------ restating a configuration */

/* The session of a session.update, parsed in dialect d. */
static void parse_session(proto_dialect d, const char *session_json, proto_client_event *ev)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"type\":\"session.update\",\"session\":%s}", session_json);
    parse_ok(d, buf, ev);
    assert_int_equal(ev->n_field_errors, 0);
}

static void ga_configuration_restated_for_beta_keeps_what_it_set(void **state)
{
    proto_error e;
    proto_client_event ev;
    (void)state;
    char *b = proto_session_restate(q("{'instructions':'Be brief.','output_modalities':['text'],"
                                      "'audio':{'output':{'voice':'slt'},'input':{'turn_detection':"
                                      "{'type':'semantic_vad','eagerness':'low'}}}}"),
                                    PROTO_GA, PROTO_BETA, &e);
    assert_non_null(b);
    parse_session(PROTO_BETA, b, &ev);
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS | PS_VOICE | PS_MODALITIES | PS_TURN_DETECTION);
    assert_string_equal(ev.session.instructions, "Be brief.");
    assert_string_equal(ev.session.voice, "slt");
    assert_int_equal(ev.session.modalities, PROTO_MOD_TEXT);
    assert_true(ev.session.turn.enabled && ev.session.turn.semantic);
    assert_int_equal(ev.session.turn.eagerness, PROTO_EAGER_LOW);
    assert_null(strstr(b, "tools")); /* not set: not stated */
    proto_client_event_free(&ev);
    free(b);
}

static void beta_configuration_restated_for_ga_drops_what_ga_cannot_say(void **state)
{
    proto_error e;
    proto_client_event ev;
    (void)state;
    char *g = proto_session_restate(q("{'model':'gpt-4o-realtime-preview','instructions':'Hi.','voice':'kal',"
                                      "'temperature':0.7,'turn_detection':null,'input_audio_transcription':null,"
                                      "'tools':[{'type':'function','name':'f','description':'d','parameters':{}}],"
                                      "'tool_choice':'required','max_response_output_tokens':50}"),
                                    PROTO_BETA, PROTO_GA, &e);
    assert_non_null(g);
    parse_session(PROTO_GA, g, &ev);
    assert_int_equal(ev.session.set, PS_INSTRUCTIONS | PS_VOICE | PS_TURN_DETECTION | PS_TRANSCRIPTION | PS_TOOLS |
                                         PS_TOOL_CHOICE | PS_MAX_OUTPUT_TOKENS);
    assert_string_equal(ev.session.voice, "kal");
    assert_false(ev.session.turn.enabled);
    assert_false(ev.session.transcription);
    assert_string_equal(ev.session.tool_choice, "required");
    assert_int_equal(ev.session.max_output_tokens, 50);
    assert_non_null(strstr(ev.session.tools_json, "\"f\""));
    assert_null(strstr(g, "temperature"));
    proto_client_event_free(&ev);
    free(g);
}

static void an_invalid_configuration_is_not_restated(void **state)
{
    proto_error e;
    (void)state;
    assert_null(proto_session_restate(q("{'instructions':5}"), PROTO_GA, PROTO_BETA, &e));
    assert_string_equal(e.param, "session.instructions");
    assert_null(proto_session_restate("{", PROTO_BETA, PROTO_GA, &e));
    assert_string_not_equal(e.code, "");
}

/* ------------------------------------------------------------ conversation.item.create */

static void user_message_text_parts_are_concatenated(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'conversation.item.create','event_id':'i1','item':{'type':'message',"
                         "'role':'user','content':[{'type':'input_text','text':'Hello, '},"
                         "{'type':'input_text','text':'world'}]}}"), &ev);
    assert_int_equal(ev.type, PC_ITEM_CREATE);
    assert_string_equal(ev.event_id, "i1");
    assert_string_equal(ev.role, "user");
    assert_string_equal(ev.text, "Hello, world");
    assert_null(ev.item_id);
    assert_null(ev.previous_item_id);
    proto_client_event_free(&ev);
}

static void ga_assistant_message_with_output_text(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'message',"
                         "'role':'assistant','content':[{'type':'output_text','text':'Sure.'}]}}"),
             &ev);
    assert_string_equal(ev.role, "assistant");
    assert_string_equal(ev.text, "Sure.");
    proto_client_event_free(&ev);
}

static void beta_assistant_message_with_text_part(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'conversation.item.create','item':{'type':'message',"
                           "'role':'assistant','content':[{'type':'text','text':'Ok'}]}}"), &ev);
    assert_string_equal(ev.role, "assistant");
    assert_string_equal(ev.text, "Ok");
    proto_client_event_free(&ev);
}

static void system_message_is_accepted(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'conversation.item.create','item':{'role':'system',"
                           "'content':[{'type':'input_text','text':'Speak French.'}]}}"), &ev);
    assert_string_equal(ev.role, "system");
    assert_string_equal(ev.text, "Speak French.");
    proto_client_event_free(&ev);
}

static void item_ids_are_kept(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'conversation.item.create','previous_item_id':'item_prev',"
                         "'item':{'id':'item_mine','type':'message','role':'user',"
                         "'content':[{'type':'input_text','text':'a'}]}}"), &ev);
    assert_string_equal(ev.item_id, "item_mine");
    assert_string_equal(ev.previous_item_id, "item_prev");
    proto_client_event_free(&ev);
}

static void function_call_item_without_call_id_is_missing_required_parameter(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'conversation.item.create','event_id':'f','item':"
                          "{'type':'function_call','name':'f','arguments':'{}'}}"),
              "missing_required_parameter", "item.call_id", &err);
    assert_string_equal(err.event_id, "f");
}

static void function_call_output_item_is_parsed(void **state)
{
    proto_client_event ev;
    proto_error err;
    (void)state;
    const char *j = q("{'type':'conversation.item.create','item':{'type':'function_call_output',"
                      "'call_id':'call_1','output':'{\\'temp\\':21}'}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_GA, 0, &ev, &err), 0);
    assert_string_equal(ev.item_type, "function_call_output");
    assert_string_equal(ev.call_id, "call_1");
    assert_string_equal(ev.text, "{\"temp\":21}");
    proto_client_event_free(&ev);
    parse_err(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'function_call_output','call_id':'c'}}"),
              "missing_required_parameter", "item.output", &err);
}

static void item_id_longer_than_32_characters_is_refused_not_cut(void **state)
{
    proto_client_event ev;
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'conversation.item.create','item':{'id':'item_0123456789012345678901234567',"
                          "'type':'message','role':'user','content':[{'type':'input_text','text':'x'}]}}"),
              "invalid_value", "item.id", &err);
    assert_non_null(strstr(err.message, "at most 32"));
    parse_err(PROTO_GA, q("{'type':'conversation.item.create','item':{'id':'call_item_0123456789012345678901234',"
                          "'type':'function_call_output','call_id':'c','output':'x'}}"),
              "invalid_value", "item.id", &err);
    const char *j = q("{'type':'conversation.item.create','item':{'id':'item_012345678901234567890123456',"
                      "'type':'message','role':'user','content':[{'type':'input_text','text':'x'}]}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_GA, 0, &ev, &err), 0);
    assert_int_equal(strlen(ev.item_id), 32);
    proto_client_event_free(&ev);
}

static void other_item_types_are_not_supported(void **state)
{
    proto_error err;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'mcp_call'}}"),
              "invalid_value", "item.type", &err);
    assert_non_null(strstr(err.message, "not supported"));
}

static void session_tools_are_parsed_and_echoed(void **state)
{
    proto_client_event ev;
    proto_error err;
    proto_session s;
    (void)state;
    const char *j = q("{'type':'session.update','session':{'tools':[{'type':'function','name':'get_weather',"
                      "'description':'Weather','parameters':{'type':'object'}}],'tool_choice':'required'}}");
    assert_int_equal(proto_parse(j, strlen(j), PROTO_GA, 0, &ev, &err), 0);
    assert_int_equal(ev.n_field_errors, 0);
    assert_true(ev.session.set & PS_TOOLS);
    assert_true(ev.session.set & PS_TOOL_CHOICE);
    proto_session_defaults(&s, PROTO_GA);
    assert_int_equal(proto_session_merge(&s, &ev.session), 0);
    json_t *o = load(proto_ev_session(PROTO_GA, 1, &s), "session.updated");
    json_t *tools = json_object_get(json_object_get(o, "session"), "tools");
    assert_int_equal(json_array_size(tools), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 0), "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "session"), "tool_choice")), "required");
    json_decref(o);
    proto_session_clear(&s);
    proto_client_event_free(&ev);
    parse_err(PROTO_GA, q("{'type':'session.update','session':{'tools':[{'type':'mcp','server_url':'x'}]}}"),
              "invalid_value", "session.tools[0].type", &err);
    parse_err(PROTO_GA, q("{'type':'session.update','session':{'tools':[{'type':'function','name':'bad name'}]}}"),
              "invalid_value", "session.tools[0].name", &err);
    parse_err(PROTO_GA, q("{'type':'session.update','session':{'tool_choice':'sometimes'}}"),
              "invalid_value", "session.tool_choice", &err);
}

static void unknown_role_is_invalid_value(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'message',"
                        "'role':'tool','content':[]}}"), "invalid_value", "item.role");
}

static void missing_item_is_missing_required_parameter(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'conversation.item.create'}"), "missing_required_parameter", "item");
    refused(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'message',"
                        "'content':[]}}"), "missing_required_parameter", "item.role");
}

static void audio_content_part_is_not_supported(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'conversation.item.create','item':{'type':'message','role':'user',"
                        "'content':[{'type':'input_text','text':'a'},{'type':'input_audio',"
                        "'audio':'AAAA'}]}}"), "invalid_value", "item.content[1].type");
}

static void content_text_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_BETA, q("{'type':'conversation.item.create','item':{'type':'message','role':'user',"
                          "'content':[{'type':'input_text','text':3}]}}"),
            "invalid_type", "item.content[0].text");
}

/* ------------------------------------------------------------ response.create / cancel */

static void response_create_without_overrides(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'response.create'}"), &ev);
    assert_int_equal(ev.type, PC_RESPONSE_CREATE);
    assert_null(ev.instructions);
    assert_int_equal(ev.modalities, 0);
    proto_client_event_free(&ev);
}

static void ga_response_create_reads_instructions_and_output_modalities(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'response.create','event_id':'r','response':{'instructions':'Short.',"
                         "'output_modalities':['text']}}"), &ev);
    assert_string_equal(ev.event_id, "r");
    assert_string_equal(ev.instructions, "Short.");
    assert_int_equal(ev.modalities, PROTO_MOD_TEXT);
    proto_client_event_free(&ev);
}

static void beta_response_create_reads_modalities(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_BETA, q("{'type':'response.create','response':{'modalities':['audio','text']}}"),
             &ev);
    assert_null(ev.instructions);
    assert_int_equal(ev.modalities, PROTO_MOD_TEXT | PROTO_MOD_AUDIO);
    proto_client_event_free(&ev);
}

static void response_instructions_of_wrong_type_is_invalid_type(void **state)
{
    (void)state;
    refused(PROTO_GA, q("{'type':'response.create','response':{'instructions':['a']}}"),
            "invalid_type", "response.instructions");
    refused(PROTO_GA, q("{'type':'response.create','response':'now'}"), "invalid_type", "response");
}

static void response_cancel_with_and_without_id(void **state)
{
    proto_client_event ev;
    (void)state;
    parse_ok(PROTO_GA, q("{'type':'response.cancel','response_id':'resp_9'}"), &ev);
    assert_int_equal(ev.type, PC_RESPONSE_CANCEL);
    assert_string_equal(ev.response_id, "resp_9");
    proto_client_event_free(&ev);
    parse_ok(PROTO_BETA, q("{'type':'response.cancel'}"), &ev);
    assert_int_equal(ev.type, PC_RESPONSE_CANCEL);
    assert_null(ev.response_id);
    proto_client_event_free(&ev);
    refused(PROTO_GA, q("{'type':'response.cancel','response_id':1}"), "invalid_type", "response_id");
}

/* ------------------------------------------------------------ session state */

static void defaults_differ_only_in_modalities(void **state)
{
    proto_session ga, beta;
    (void)state;
    proto_session_defaults(&ga, PROTO_GA);
    proto_session_defaults(&beta, PROTO_BETA);
    assert_int_equal(ga.modalities, PROTO_MOD_AUDIO);
    assert_int_equal(beta.modalities, PROTO_MOD_TEXT | PROTO_MOD_AUDIO);
    assert_int_equal(ga.input_rate, 24000);
    assert_int_equal(ga.output_rate, 24000);
    assert_int_equal(ga.turn.enabled, 1);
    assert_true(ga.turn.threshold == 0.5);
    assert_int_equal(ga.turn.prefix_padding_ms, 300);
    assert_int_equal(ga.turn.silence_duration_ms, 500);
    assert_int_equal(ga.turn.create_response, 1);
    assert_int_equal(ga.turn.interrupt_response, 1);
    assert_int_equal(ga.transcription, 1);
    assert_true(ga.temperature < 0);
    assert_int_equal(ga.max_output_tokens, 0);
    assert_int_equal(ga.set, 0);
    assert_null(ga.instructions);
    proto_session_clear(&ga);
    proto_session_clear(&beta);
}

static void merge_copies_only_fields_the_update_set(void **state)
{
    proto_session s;
    proto_client_event ev;
    (void)state;
    proto_session_defaults(&s, PROTO_GA);
    s.voice = strdup("ash");
    parse_ok(PROTO_GA, q("{'type':'session.update','session':{'instructions':'New',"
                         "'audio':{'input':{'turn_detection':null,'format':"
                         "{'type':'audio/pcm','rate':16000}}}}}"), &ev);
    assert_int_equal(proto_session_merge(&s, &ev.session), 0);
    proto_client_event_free(&ev); /* s must own copies */
    assert_string_equal(s.instructions, "New");
    assert_string_equal(s.voice, "ash");
    assert_int_equal(s.input_rate, 16000);
    assert_int_equal(s.output_rate, 24000);
    assert_int_equal(s.turn.enabled, 0);
    assert_int_equal(s.transcription, 1);
    assert_int_equal(s.modalities, PROTO_MOD_AUDIO);
    proto_session_clear(&s);
}

static void merge_replaces_a_string_already_set(void **state)
{
    proto_session s, upd;
    (void)state;
    proto_session_defaults(&s, PROTO_BETA);
    proto_session_defaults(&upd, PROTO_BETA);
    s.instructions = strdup("old");
    upd.set = PS_INSTRUCTIONS | PS_VOICE;
    upd.instructions = strdup("new");
    upd.voice = NULL; /* back to the provider default */
    s.voice = strdup("verse");
    assert_int_equal(proto_session_merge(&s, &upd), 0);
    assert_string_equal(s.instructions, "new");
    assert_null(s.voice);
    proto_session_clear(&upd);
    proto_session_clear(&s);
}

/* ------------------------------------------------------------ server events: session */

static proto_session sample_session(proto_dialect d)
{
    proto_session s;
    proto_session_defaults(&s, d);
    s.id = strdup("sess_abc");
    s.model = strdup("voxray-1");
    s.instructions = strdup("Be kind.");
    s.voice = strdup("marin");
    s.input_rate = 16000;
    s.output_rate = 48000;
    s.max_output_tokens = 300;
    return s;
}

static void ga_session_created_has_the_full_session(void **state)
{
    proto_session s = sample_session(PROTO_GA);
    (void)state;
    json_t *o = load(proto_ev_session(PROTO_GA, 0, &s), "session.created");
    assert_string_equal(str_at(o, "session.type"), "realtime");
    assert_string_equal(str_at(o, "session.object"), "realtime.session");
    assert_string_equal(str_at(o, "session.id"), "sess_abc");
    assert_string_equal(str_at(o, "session.model"), "voxray-1");
    assert_string_equal(str_at(o, "session.output_modalities.0"), "audio");
    assert_int_equal(json_array_size(at(o, "session.output_modalities")), 1);
    assert_string_equal(str_at(o, "session.instructions"), "Be kind.");
    assert_string_equal(str_at(o, "session.audio.input.format.type"), "audio/pcm");
    assert_int_equal(int_at(o, "session.audio.input.format.rate"), 16000);
    assert_string_equal(str_at(o, "session.audio.input.turn_detection.type"), "server_vad");
    assert_true(json_real_value(at(o, "session.audio.input.turn_detection.threshold")) == 0.5);
    assert_int_equal(int_at(o, "session.audio.input.turn_detection.prefix_padding_ms"), 300);
    assert_int_equal(int_at(o, "session.audio.input.turn_detection.silence_duration_ms"), 500);
    assert_true(json_is_true(at(o, "session.audio.input.turn_detection.create_response")));
    assert_true(json_is_true(at(o, "session.audio.input.turn_detection.interrupt_response")));
    assert_true(json_is_object(at(o, "session.audio.input.transcription")));
    assert_string_equal(str_at(o, "session.audio.output.format.type"), "audio/pcm");
    assert_int_equal(int_at(o, "session.audio.output.format.rate"), 48000);
    assert_string_equal(str_at(o, "session.audio.output.voice"), "marin");
    assert_int_equal(int_at(o, "session.max_output_tokens"), 300);
    assert_int_equal(json_array_size(at(o, "session.tools")), 0);
    assert_true(json_is_array(at(o, "session.tools")));
    assert_string_equal(str_at(o, "session.tool_choice"), "auto");
    null_at(o, "session.tracing");
    assert_string_equal(str_at(o, "session.truncation"), "auto");
    null_at(o, "session.prompt");
    absent_at(o, "session.modalities");
    absent_at(o, "session.voice");
    json_decref(o);
    proto_session_clear(&s);
}

static void ga_session_renders_manual_turns_and_no_transcription_as_null(void **state)
{
    proto_session s;
    (void)state;
    proto_session_defaults(&s, PROTO_GA);
    s.turn.enabled = 0;
    s.transcription = 0;
    json_t *o = load(proto_ev_session(PROTO_GA, 1, &s), "session.updated");
    null_at(o, "session.audio.input.turn_detection");
    null_at(o, "session.audio.input.transcription");
    assert_string_equal(str_at(o, "session.max_output_tokens"), "inf");
    assert_string_equal(str_at(o, "session.instructions"), "");
    assert_int_equal(int_at(o, "session.audio.output.format.rate"), 24000);
    json_decref(o);
    proto_session_clear(&s);
}

static void beta_session_is_flat(void **state)
{
    proto_session s = sample_session(PROTO_BETA);
    (void)state;
    s.temperature = 0.6;
    s.turn.enabled = 0;
    json_t *o = load(proto_ev_session(PROTO_BETA, 1, &s), "session.updated");
    assert_string_equal(str_at(o, "session.id"), "sess_abc");
    assert_string_equal(str_at(o, "session.object"), "realtime.session");
    assert_string_equal(str_at(o, "session.model"), "voxray-1");
    assert_string_equal(str_at(o, "session.modalities.0"), "text");
    assert_string_equal(str_at(o, "session.modalities.1"), "audio");
    assert_string_equal(str_at(o, "session.instructions"), "Be kind.");
    assert_string_equal(str_at(o, "session.voice"), "marin");
    assert_string_equal(str_at(o, "session.input_audio_format"), "pcm16");
    assert_string_equal(str_at(o, "session.output_audio_format"), "pcm16");
    assert_true(json_is_object(at(o, "session.input_audio_transcription")));
    null_at(o, "session.turn_detection");
    assert_true(json_real_value(at(o, "session.temperature")) == 0.6);
    assert_int_equal(int_at(o, "session.max_response_output_tokens"), 300);
    absent_at(o, "session.audio");
    absent_at(o, "session.output_modalities");
    absent_at(o, "session.type");
    json_decref(o);
    proto_session_clear(&s);
}

static void beta_session_turn_detection_object(void **state)
{
    proto_session s;
    (void)state;
    proto_session_defaults(&s, PROTO_BETA);
    json_t *o = load(proto_ev_session(PROTO_BETA, 0, &s), "session.created");
    assert_string_equal(str_at(o, "session.turn_detection.type"), "server_vad");
    assert_int_equal(int_at(o, "session.turn_detection.silence_duration_ms"), 500);
    assert_string_equal(str_at(o, "session.max_response_output_tokens"), "inf");
    absent_at(o, "session.temperature");
    json_decref(o);
    proto_session_clear(&s);
}

/* ------------------------------------------------------------ server events: errors */

static void error_event_carries_code_param_and_event_id(void **state)
{
    proto_error e;
    (void)state;
    parse_err(PROTO_GA, q("{'type':'session.update','event_id':'evt_1','session':{'instructions':0}}"),
              "invalid_type", "session.instructions", &e);
    json_t *o = load(proto_ev_error(PROTO_GA, &e), "error");
    assert_string_equal(str_at(o, "error.type"), "invalid_request_error");
    assert_string_equal(str_at(o, "error.code"), "invalid_type");
    assert_string_equal(str_at(o, "error.param"), "session.instructions");
    assert_string_equal(str_at(o, "error.event_id"), "evt_1");
    assert_string_equal(str_at(o, "error.message"), e.message);
    json_decref(o);
}

static void error_event_empty_fields_are_null(void **state)
{
    proto_error e;
    (void)state;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.message, sizeof e.message, "boom");
    json_t *o = load(proto_ev_error(PROTO_BETA, &e), "error");
    assert_string_equal(str_at(o, "error.type"), "server_error");
    null_at(o, "error.code");
    null_at(o, "error.param");
    null_at(o, "error.event_id");
    json_decref(o);
}

/* ------------------------------------------------------------ server events: names */

static const proto_item sample_item = {"item_1", "assistant", "in_progress", PROTO_OUTPUT_AUDIO,
                                       "Hello"};

/* Every builder once; `names` are the expected types in the same order. */
static void check_every_builder(proto_dialect d, const char *const *names)
{
    const int16_t pcm[] = {0, 1};
    proto_session s;
    proto_error e;
    proto_usage u = {3, 4};
    proto_response r = {"resp_1", "completed", NULL, NULL, &sample_item, 1, PROTO_MOD_AUDIO,
                        "marin", 24000, &u};
    char *out[26];
    int n = 0;
    memset(&e, 0, sizeof e);
    snprintf(e.message, sizeof e.message, "m");
    proto_session_defaults(&s, d);
    out[n++] = proto_ev_session(d, 0, &s);
    out[n++] = proto_ev_session(d, 1, &s);
    out[n++] = proto_ev_error(d, &e);
    out[n++] = proto_ev_speech_started(d, 10, "item_1");
    out[n++] = proto_ev_speech_stopped(d, 20, "item_1");
    out[n++] = proto_ev_audio_committed(d, "item_1", NULL);
    out[n++] = proto_ev_audio_cleared(d);
    out[n++] = proto_ev_item_added(d, &sample_item, NULL);
    out[n++] = proto_ev_transcription_delta(d, "item_1", "he");
    out[n++] = proto_ev_transcription_completed(d, "item_1", "hello");
    out[n++] = proto_ev_transcription_failed(d, "item_1", &e);
    out[n++] = proto_ev_response(d, 0, &r);
    out[n++] = proto_ev_response(d, 1, &r);
    out[n++] = proto_ev_output_item(d, 0, "resp_1", 0, &sample_item);
    out[n++] = proto_ev_output_item(d, 1, "resp_1", 0, &sample_item);
    out[n++] = proto_ev_content_part(d, 0, "resp_1", 0, &sample_item);
    out[n++] = proto_ev_content_part(d, 1, "resp_1", 0, &sample_item);
    out[n++] = proto_ev_text_delta(d, &pos, "a");
    out[n++] = proto_ev_text_done(d, &pos, "ab");
    out[n++] = proto_ev_audio_delta(d, &pos, pcm, 2);
    out[n++] = proto_ev_audio_done(d, &pos);
    out[n++] = proto_ev_transcript_delta(d, &pos, "a");
    out[n++] = proto_ev_transcript_done(d, &pos, "ab");
    for (int i = 0; i < n; i++) {
        assert_non_null(names[i]);
        json_decref(load(out[i], names[i]));
    }
    assert_null(names[n]);
    proto_session_clear(&s);
}

static void ga_builders_use_ga_event_names(void **state)
{
    static const char *const names[] = {
        "session.created", "session.updated", "error",
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed", "input_audio_buffer.cleared", "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed", "response.created", "response.done",
        "response.output_item.added", "response.output_item.done", "response.content_part.added",
        "response.content_part.done", "response.output_text.delta", "response.output_text.done",
        "response.output_audio.delta", "response.output_audio.done",
        "response.output_audio_transcript.delta", "response.output_audio_transcript.done", NULL};
    (void)state;
    check_every_builder(PROTO_GA, names);
    json_decref(load(proto_ev_item_done(PROTO_GA, &sample_item, "item_0"), "conversation.item.done"));
}

static void beta_builders_use_beta_event_names(void **state)
{
    static const char *const names[] = {
        "session.created", "session.updated", "error",
        "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed", "input_audio_buffer.cleared", "conversation.item.created",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed", "response.created", "response.done",
        "response.output_item.added", "response.output_item.done", "response.content_part.added",
        "response.content_part.done", "response.text.delta", "response.text.done",
        "response.audio.delta", "response.audio.done", "response.audio_transcript.delta",
        "response.audio_transcript.done", NULL};
    (void)state;
    check_every_builder(PROTO_BETA, names);
}

static void beta_has_no_item_done(void **state)
{
    (void)state;
    errno = 0;
    assert_null(proto_ev_item_done(PROTO_BETA, &sample_item, NULL));
    assert_int_equal(errno, ENOENT);
}

/* ------------------------------------------------------------ server events: shapes */

/* Event ids come from a generator per thread: 4 threads x 5,000 events,
 * every id distinct (a thread's generator must not start where another's
 * does). */
#define ID_THREADS 4
#define ID_EACH 5000
static char g_ids[ID_THREADS * ID_EACH][27];

static void *make_ids(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < ID_EACH; i++) {
        char *text = proto_ev_audio_done(PROTO_GA, &pos);
        const char *p = text ? strstr(text, "\"event_") : NULL;
        if (p) memcpy(g_ids[t * ID_EACH + i], p + 1, 26);
        free(text);
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b) { return memcmp(a, b, 27); }

static void event_ids_are_distinct_across_threads(void **state)
{
    pthread_t th[ID_THREADS];
    (void)state;
    memset(g_ids, 0, sizeof g_ids);
    for (int t = 0; t < ID_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, (void *)(intptr_t)t), 0);
    for (int t = 0; t < ID_THREADS; t++) pthread_join(th[t], NULL);
    qsort(g_ids, ID_THREADS * ID_EACH, sizeof g_ids[0], cmp_id);
    for (int i = 0; i < ID_THREADS * ID_EACH; i++) {
        assert_memory_equal(g_ids[i], "event_", 6);
        if (i) assert_true(memcmp(g_ids[i - 1], g_ids[i], 27) != 0);
    }
}

static void position_events_carry_ids_and_indexes(void **state)
{
    const int16_t pcm[] = {5};
    (void)state;
    json_t *o = load(proto_ev_audio_delta(PROTO_GA, &pos, pcm, 1), "response.output_audio.delta");
    assert_string_equal(str_at(o, "response_id"), "resp_1");
    assert_string_equal(str_at(o, "item_id"), "item_1");
    assert_int_equal(int_at(o, "output_index"), 2);
    assert_int_equal(int_at(o, "content_index"), 0);
    assert_string_equal(str_at(o, "delta"), "BQA=");
    json_decref(o);
    o = load(proto_ev_audio_done(PROTO_GA, &pos), "response.output_audio.done");
    assert_string_equal(str_at(o, "response_id"), "resp_1");
    assert_string_equal(str_at(o, "item_id"), "item_1");
    assert_int_equal(int_at(o, "output_index"), 2);
    assert_int_equal(int_at(o, "content_index"), 0);
    json_decref(o);
}

static void text_and_transcript_done_carry_the_whole_text(void **state)
{
    (void)state;
    json_t *o = load(proto_ev_text_done(PROTO_GA, &pos, "all of it"), "response.output_text.done");
    assert_string_equal(str_at(o, "text"), "all of it");
    json_decref(o);
    o = load(proto_ev_transcript_done(PROTO_BETA, &pos, "said"), "response.audio_transcript.done");
    assert_string_equal(str_at(o, "transcript"), "said");
    assert_int_equal(int_at(o, "output_index"), 2);
    json_decref(o);
    o = load(proto_ev_text_delta(PROTO_BETA, &pos, "x"), "response.text.delta");
    assert_string_equal(str_at(o, "delta"), "x");
    json_decref(o);
    o = load(proto_ev_transcript_delta(PROTO_GA, &pos, "y"), "response.output_audio_transcript.delta");
    assert_string_equal(str_at(o, "delta"), "y");
    json_decref(o);
}

static void speech_and_buffer_events_carry_their_fields(void **state)
{
    (void)state;
    json_t *o = load(proto_ev_speech_started(PROTO_GA, 1200, "item_a"),
                     "input_audio_buffer.speech_started");
    assert_int_equal(int_at(o, "audio_start_ms"), 1200);
    assert_string_equal(str_at(o, "item_id"), "item_a");
    json_decref(o);
    o = load(proto_ev_speech_stopped(PROTO_BETA, 2500, "item_a"), "input_audio_buffer.speech_stopped");
    assert_int_equal(int_at(o, "audio_end_ms"), 2500);
    assert_string_equal(str_at(o, "item_id"), "item_a");
    json_decref(o);
    o = load(proto_ev_audio_committed(PROTO_GA, "item_b", "item_a"), "input_audio_buffer.committed");
    assert_string_equal(str_at(o, "item_id"), "item_b");
    assert_string_equal(str_at(o, "previous_item_id"), "item_a");
    json_decref(o);
    o = load(proto_ev_audio_committed(PROTO_GA, "item_b", NULL), "input_audio_buffer.committed");
    null_at(o, "previous_item_id");
    json_decref(o);
}

/* The part of an item of each content kind, per dialect. */
static void check_item_part(proto_dialect d, proto_content c, const char *type, const char *key)
{
    proto_item it = {"item_x", "user", "completed", c, "words"};
    json_t *o = load(proto_ev_item_added(d, &it, "item_w"),
                     d == PROTO_GA ? "conversation.item.added" : "conversation.item.created");
    assert_string_equal(str_at(o, "previous_item_id"), "item_w");
    assert_string_equal(str_at(o, "item.id"), "item_x");
    assert_string_equal(str_at(o, "item.type"), "message");
    assert_string_equal(str_at(o, "item.object"), "realtime.item");
    assert_string_equal(str_at(o, "item.status"), "completed");
    assert_string_equal(str_at(o, "item.role"), "user");
    assert_int_equal(json_array_size(at(o, "item.content")), 1);
    assert_string_equal(str_at(o, "item.content.0.type"), type);
    char path[64];
    snprintf(path, sizeof path, "item.content.0.%s", key);
    assert_string_equal(str_at(o, path), "words");
    json_decref(o);
}

static void ga_item_content_parts(void **state)
{
    (void)state;
    check_item_part(PROTO_GA, PROTO_INPUT_TEXT, "input_text", "text");
    check_item_part(PROTO_GA, PROTO_INPUT_AUDIO, "input_audio", "transcript");
    check_item_part(PROTO_GA, PROTO_OUTPUT_TEXT, "output_text", "text");
    check_item_part(PROTO_GA, PROTO_OUTPUT_AUDIO, "output_audio", "transcript");
}

static void beta_item_content_parts(void **state)
{
    (void)state;
    check_item_part(PROTO_BETA, PROTO_INPUT_TEXT, "input_text", "text");
    check_item_part(PROTO_BETA, PROTO_INPUT_AUDIO, "input_audio", "transcript");
    check_item_part(PROTO_BETA, PROTO_OUTPUT_TEXT, "text", "text");
    check_item_part(PROTO_BETA, PROTO_OUTPUT_AUDIO, "audio", "transcript");
}

static void item_without_transcript_has_null_transcript(void **state)
{
    proto_item it = {"item_u", "user", "in_progress", PROTO_INPUT_AUDIO, NULL};
    (void)state;
    json_t *o = load(proto_ev_item_done(PROTO_GA, &it, NULL), "conversation.item.done");
    null_at(o, "previous_item_id");
    null_at(o, "item.content.0.transcript");
    assert_string_equal(str_at(o, "item.status"), "in_progress");
    json_decref(o);
}

static void output_item_event_carries_response_and_index(void **state)
{
    (void)state;
    json_t *o = load(proto_ev_output_item(PROTO_GA, 1, "resp_7", 3, &sample_item),
                     "response.output_item.done");
    assert_string_equal(str_at(o, "response_id"), "resp_7");
    assert_int_equal(int_at(o, "output_index"), 3);
    assert_string_equal(str_at(o, "item.id"), "item_1");
    assert_string_equal(str_at(o, "item.content.0.type"), "output_audio");
    json_decref(o);
}

static void content_part_event_types_follow_the_reference(void **state)
{
    proto_item text = {"item_t", "assistant", "in_progress", PROTO_OUTPUT_TEXT, NULL};
    (void)state;
    json_t *o = load(proto_ev_content_part(PROTO_GA, 0, "resp_1", 1, &sample_item),
                     "response.content_part.added");
    assert_string_equal(str_at(o, "response_id"), "resp_1");
    assert_string_equal(str_at(o, "item_id"), "item_1");
    assert_int_equal(int_at(o, "output_index"), 1);
    assert_int_equal(int_at(o, "content_index"), 0);
    assert_string_equal(str_at(o, "part.type"), "audio");
    assert_string_equal(str_at(o, "part.transcript"), "Hello");
    json_decref(o);
    o = load(proto_ev_content_part(PROTO_BETA, 1, "resp_1", 0, &text), "response.content_part.done");
    assert_string_equal(str_at(o, "item_id"), "item_t");
    assert_string_equal(str_at(o, "part.type"), "text");
    assert_string_equal(str_at(o, "part.text"), "");
    json_decref(o);
}

static void transcription_events_carry_item_and_content_index(void **state)
{
    proto_error e;
    (void)state;
    json_t *o = load(proto_ev_transcription_delta(PROTO_GA, "item_u", "hel"),
                     "conversation.item.input_audio_transcription.delta");
    assert_string_equal(str_at(o, "item_id"), "item_u");
    assert_int_equal(int_at(o, "content_index"), 0);
    assert_string_equal(str_at(o, "delta"), "hel");
    json_decref(o);
    o = load(proto_ev_transcription_completed(PROTO_BETA, "item_u", "hello"),
             "conversation.item.input_audio_transcription.completed");
    assert_string_equal(str_at(o, "item_id"), "item_u");
    assert_int_equal(int_at(o, "content_index"), 0);
    assert_string_equal(str_at(o, "transcript"), "hello");
    assert_string_equal(str_at(o, "usage.type"), "tokens");
    assert_int_equal(int_at(o, "usage.total_tokens"), 0);
    json_decref(o);
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.code, sizeof e.code, "stt_unavailable");
    snprintf(e.message, sizeof e.message, "STT down");
    o = load(proto_ev_transcription_failed(PROTO_GA, "item_u", &e),
             "conversation.item.input_audio_transcription.failed");
    assert_string_equal(str_at(o, "item_id"), "item_u");
    assert_int_equal(int_at(o, "content_index"), 0);
    assert_string_equal(str_at(o, "error.type"), "server_error");
    assert_string_equal(str_at(o, "error.code"), "stt_unavailable");
    assert_string_equal(str_at(o, "error.message"), "STT down");
    absent_at(o, "error.param");
    json_decref(o);
}

static void ga_response_done_shape(void **state)
{
    proto_usage u = {12, 30};
    proto_item out[2] = {sample_item, {"item_2", "assistant", "completed", PROTO_OUTPUT_TEXT, "x"}};
    proto_response r = {"resp_1", "completed", NULL, NULL, out, 2, PROTO_MOD_AUDIO, "marin",
                        16000, &u};
    (void)state;
    json_t *o = load(proto_ev_response(PROTO_GA, 1, &r), "response.done");
    assert_string_equal(str_at(o, "response.id"), "resp_1");
    assert_string_equal(str_at(o, "response.object"), "realtime.response");
    assert_string_equal(str_at(o, "response.status"), "completed");
    null_at(o, "response.status_details");
    assert_int_equal(json_array_size(at(o, "response.output")), 2);
    assert_string_equal(str_at(o, "response.output.0.content.0.type"), "output_audio");
    assert_string_equal(str_at(o, "response.output.1.content.0.type"), "output_text");
    assert_string_equal(str_at(o, "response.output_modalities.0"), "audio");
    assert_string_equal(str_at(o, "response.audio.output.format.type"), "audio/pcm");
    assert_int_equal(int_at(o, "response.audio.output.format.rate"), 16000);
    assert_string_equal(str_at(o, "response.audio.output.voice"), "marin");
    assert_int_equal(int_at(o, "response.usage.total_tokens"), 42);
    assert_int_equal(int_at(o, "response.usage.input_tokens"), 12);
    assert_int_equal(int_at(o, "response.usage.output_tokens"), 30);
    assert_int_equal(int_at(o, "response.usage.input_token_details.text_tokens"), 12);
    assert_int_equal(int_at(o, "response.usage.input_token_details.audio_tokens"), 0);
    assert_int_equal(int_at(o, "response.usage.input_token_details.cached_tokens"), 0);
    assert_int_equal(int_at(o, "response.usage.input_token_details.cached_tokens_details.text_tokens"),
                     0);
    assert_int_equal(int_at(o, "response.usage.output_token_details.text_tokens"), 30);
    assert_int_equal(int_at(o, "response.usage.output_token_details.audio_tokens"), 0);
    absent_at(o, "response.modalities");
    absent_at(o, "response.voice");
    json_decref(o);
}

static void beta_response_created_shape(void **state)
{
    proto_response r = {"resp_2", "in_progress", NULL, NULL, NULL, 0,
                        PROTO_MOD_TEXT | PROTO_MOD_AUDIO, "alloy", 24000, NULL};
    (void)state;
    json_t *o = load(proto_ev_response(PROTO_BETA, 0, &r), "response.created");
    assert_string_equal(str_at(o, "response.id"), "resp_2");
    assert_string_equal(str_at(o, "response.object"), "realtime.response");
    assert_string_equal(str_at(o, "response.status"), "in_progress");
    null_at(o, "response.status_details");
    assert_int_equal(json_array_size(at(o, "response.output")), 0);
    assert_true(json_is_array(at(o, "response.output")));
    assert_string_equal(str_at(o, "response.modalities.0"), "text");
    assert_string_equal(str_at(o, "response.modalities.1"), "audio");
    assert_string_equal(str_at(o, "response.voice"), "alloy");
    assert_string_equal(str_at(o, "response.output_audio_format"), "pcm16");
    null_at(o, "response.usage");
    absent_at(o, "response.audio");
    absent_at(o, "response.output_modalities");
    json_decref(o);
}

static void beta_usage_details(void **state)
{
    proto_usage u = {1, 2};
    proto_response r = {"resp_3", "completed", NULL, NULL, NULL, 0, PROTO_MOD_TEXT, NULL, 24000, &u};
    (void)state;
    json_t *o = load(proto_ev_response(PROTO_BETA, 1, &r), "response.done");
    assert_int_equal(int_at(o, "response.usage.total_tokens"), 3);
    assert_int_equal(int_at(o, "response.usage.input_token_details.text_tokens"), 1);
    assert_int_equal(int_at(o, "response.usage.input_token_details.audio_tokens"), 0);
    assert_int_equal(int_at(o, "response.usage.output_token_details.text_tokens"), 2);
    absent_at(o, "response.voice");
    json_decref(o);
}

static void cancelled_response_has_status_reason(void **state)
{
    proto_response r = {"resp_4", "cancelled", "turn_detected", NULL, NULL, 0, PROTO_MOD_AUDIO,
                        NULL, 24000, NULL};
    (void)state;
    json_t *o = load(proto_ev_response(PROTO_GA, 1, &r), "response.done");
    assert_string_equal(str_at(o, "response.status"), "cancelled");
    assert_string_equal(str_at(o, "response.status_details.type"), "cancelled");
    assert_string_equal(str_at(o, "response.status_details.reason"), "turn_detected");
    absent_at(o, "response.status_details.error");
    json_decref(o);
}

static void failed_response_has_the_error(void **state)
{
    proto_error e;
    proto_response r = {"resp_5", "failed", NULL, &e, NULL, 0, PROTO_MOD_AUDIO, NULL, 24000, NULL};
    (void)state;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.code, sizeof e.code, "llm_failed");
    snprintf(e.message, sizeof e.message, "upstream 503");
    json_t *o = load(proto_ev_response(PROTO_BETA, 1, &r), "response.done");
    assert_string_equal(str_at(o, "response.status_details.type"), "failed");
    assert_string_equal(str_at(o, "response.status_details.error.type"), "server_error");
    assert_string_equal(str_at(o, "response.status_details.error.code"), "llm_failed");
    assert_string_equal(str_at(o, "response.status_details.error.message"), "upstream 503");
    json_decref(o);
}

/* ------------------------------------------------------------ ids and text */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void event_ids_are_unique_and_well_formed(void **state)
{
    enum { N = 2000 };
    char **ids = calloc(N, sizeof *ids);
    (void)state;
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        json_t *o = load(proto_ev_audio_cleared(PROTO_GA), "input_audio_buffer.cleared");
        ids[i] = strdup(str_at(o, "event_id"));
        json_decref(o);
    }
    qsort(ids, N, sizeof *ids, cmp_str);
    for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
}

static void new_id_has_prefix_and_twenty_alphanumerics(void **state)
{
    char a[64], b[64], small[8];
    (void)state;
    proto_new_id("resp_", a, sizeof a);
    proto_new_id("resp_", b, sizeof b);
    assert_int_equal(strlen(a), 25);
    assert_memory_equal(a, "resp_", 5);
    for (int i = 5; i < 25; i++) assert_true(isalnum((unsigned char)a[i]));
    assert_string_not_equal(a, b);
    proto_new_id("item_", small, sizeof small);
    assert_int_equal(strlen(small), 7);
}

static void invalid_utf8_in_a_transcript_still_yields_valid_json(void **state)
{
    /* a lone continuation byte, a truncated 3-byte sequence, an overlong
     * '/', a surrogate, and a byte that is never UTF-8 */
    const char *bad = "ok \x80 \xe2\x82 \xc0\xaf \xed\xa0\x80 \xff end";
    (void)state;
    json_t *o = load(proto_ev_transcript_delta(PROTO_GA, &pos, bad),
                     "response.output_audio_transcript.delta");
    const char *d = str_at(o, "delta");
    assert_memory_equal(d, "ok \xef\xbf\xbd ", 7);
    assert_non_null(strstr(d, " end"));
    assert_null(strchr(d, '\xff'));
    json_decref(o);
    proto_item it = {"item_\xfe", "user", "completed", PROTO_INPUT_AUDIO, bad};
    o = load(proto_ev_item_added(PROTO_BETA, &it, "\xc3"), "conversation.item.created");
    assert_non_null(strstr(str_at(o, "item.content.0.transcript"), "\xef\xbf\xbd"));
    assert_string_equal(str_at(o, "item.id"), "item_\xef\xbf\xbd");
    json_decref(o);
}

static void valid_multibyte_utf8_is_kept_as_is(void **state)
{
    const char *good = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80";
    (void)state;
    json_t *o = load(proto_ev_transcription_completed(PROTO_GA, "item_1", good),
                     "conversation.item.input_audio_transcription.completed");
    assert_string_equal(str_at(o, "transcript"), good);
    json_decref(o);
}

/* ------------------------------------------------------------ out of memory */

/* jansson's allocator, failing once `fail_after` allocations have been made
 * (-1: never) and counting the blocks alive. */
static long fail_after = -1, live_blocks;

static void *counting_malloc(size_t n)
{
    void *p;
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    p = malloc(n);
    if (p) live_blocks++;
    return p;
}

static void counting_free(void *p)
{
    if (p) live_blocks--;
    free(p);
}

static void builders_fail_cleanly_when_jansson_runs_out_of_memory(void **state)
{
    proto_usage u = {1, 2};
    proto_item out[2] = {sample_item, {"item_2", "assistant", "completed", PROTO_OUTPUT_TEXT, "\xff"}};
    proto_response r = {"resp_1", "failed", "x", NULL, out, 2, PROTO_MOD_AUDIO, "v", 24000, &u};
    proto_session s = sample_session(PROTO_GA);
    int failures = 0, successes = 0;
    (void)state;
    json_set_alloc_funcs(counting_malloc, counting_free);
    for (long n = 0; n < 400 && successes < 2; n++) {
        proto_dialect d = n % 2 ? PROTO_BETA : PROTO_GA;
        char *t[2];
        fail_after = n / 2;
        t[0] = proto_ev_response(d, 1, &r);
        fail_after = n / 2;
        t[1] = proto_ev_session(d, 0, &s);
        fail_after = -1;
        for (int i = 0; i < 2; i++) {
            if (t[i] == NULL) {
                assert_int_equal(errno, ENOMEM);
                failures++;
            } else {
                live_blocks--; /* the text is the caller's now */
                free(t[i]);
            }
        }
        if (t[0] && t[1]) successes++;
        assert_int_equal(live_blocks, 0);
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(failures > 20);
    assert_int_equal(successes, 2);
    proto_session_clear(&s);
}

static void parse_fails_cleanly_when_jansson_runs_out_of_memory(void **state)
{
    const char *js = q(GA_FULL_UPDATE);
    int ok = 0;
    (void)state;
    json_set_alloc_funcs(counting_malloc, counting_free);
    for (long n = 0; n < 400 && !ok; n++) {
        proto_client_event ev;
        proto_error err;
        fail_after = n;
        int rc = proto_parse(js, strlen(js), PROTO_GA, 0, &ev, &err);
        fail_after = -1;
        if (rc == 0) {
            assert_string_equal(ev.session.voice, "marin");
            proto_client_event_free(&ev);
            ok = 1;
        } else {
            assert_true(err.code[0] != '\0');
        }
        assert_int_equal(live_blocks, 0);
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(ok);
}


/* conversation.item.truncate: which item, which part, how much was played. */
static void item_truncate_parses_in_both_dialects(void **state)
{
    (void)state;
    for (int d = PROTO_GA; d <= PROTO_BETA; d++) {
        proto_client_event ev;
        parse_ok((proto_dialect)d,
                 "{\"type\":\"conversation.item.truncate\",\"event_id\":\"t1\",\"item_id\":\"item_a\","
                 "\"content_index\":0,\"audio_end_ms\":1500}", &ev);
        assert_int_equal(ev.type, PC_ITEM_TRUNCATE);
        assert_string_equal(ev.item_id, "item_a");
        assert_int_equal(ev.content_index, 0);
        assert_int_equal(ev.audio_end_ms, 1500);
        assert_string_equal(ev.event_id, "t1");
        proto_client_event_free(&ev);
    }
}

static void item_truncate_needs_item_and_audio_end(void **state)
{
    (void)state;
    refused(PROTO_GA, "{\"type\":\"conversation.item.truncate\",\"content_index\":0,\"audio_end_ms\":1}",
            "missing_required_parameter", "item_id");
    refused(PROTO_GA, "{\"type\":\"conversation.item.truncate\",\"item_id\":\"x\",\"content_index\":0}",
            "missing_required_parameter", "audio_end_ms");
    refused(PROTO_GA, "{\"type\":\"conversation.item.truncate\",\"item_id\":\"x\",\"content_index\":0,"
            "\"audio_end_ms\":-5}", "invalid_value", "audio_end_ms");
    refused(PROTO_GA, "{\"type\":\"conversation.item.truncate\",\"item_id\":\"x\",\"content_index\":0,"
            "\"audio_end_ms\":\"5\"}", "invalid_type", "audio_end_ms");
}

static void item_truncated_event_has_the_reference_fields(void **state)
{
    (void)state;
    json_t *o = load(proto_ev_item_truncated(PROTO_GA, "item_a", 0, 1500), "conversation.item.truncated");
    assert_string_equal(json_string_value(json_object_get(o, "item_id")), "item_a");
    assert_int_equal(json_integer_value(json_object_get(o, "content_index")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "audio_end_ms")), 1500);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_ids_are_distinct_across_threads),
        cmocka_unit_test(ga_session_update_reads_every_field),
        cmocka_unit_test(ga_session_update_sets_only_present_fields),
        cmocka_unit_test(ga_session_update_ignores_beta_flat_fields),
        cmocka_unit_test(ga_turn_detection_null_means_manual_commit),
        cmocka_unit_test(ga_partial_turn_detection_takes_defaults),
        cmocka_unit_test(ga_transcription_null_turns_transcription_off),
        cmocka_unit_test(ga_max_output_tokens_inf_is_unbounded),
        cmocka_unit_test(ga_voice_may_be_an_object_with_id),
        cmocka_unit_test(ga_format_without_rate_is_24k),
        cmocka_unit_test(every_supported_rate_is_accepted),
        cmocka_unit_test(beta_session_update_reads_flat_fields),
        cmocka_unit_test(beta_session_update_sets_only_present_fields),
        cmocka_unit_test(beta_turn_detection_null_means_manual_commit),
        cmocka_unit_test(beta_turn_detection_without_type_is_server_vad),
        cmocka_unit_test(instructions_of_wrong_type_is_invalid_type),
        cmocka_unit_test(missing_session_is_missing_required_parameter),
        cmocka_unit_test(session_that_is_not_an_object_is_invalid_type),
        cmocka_unit_test(ga_transcription_session_type_is_invalid_value),
        cmocka_unit_test(ga_pcmu_input_is_unsupported_audio_format),
        cmocka_unit_test(ga_pcma_output_is_unsupported_audio_format),
        cmocka_unit_test(beta_g711_is_unsupported_audio_format),
        cmocka_unit_test(unsupported_rate_is_invalid_value),
        cmocka_unit_test(rate_of_wrong_type_is_invalid_type),
        cmocka_unit_test(semantic_vad_is_accepted_with_its_eagerness),
        cmocka_unit_test(unknown_eagerness_is_invalid_value),
        cmocka_unit_test(unknown_turn_detection_type_is_invalid_value),
        cmocka_unit_test(a_bad_member_leaves_the_valid_ones_of_the_update),
        cmocka_unit_test(threshold_outside_zero_to_one_is_invalid_value),
        cmocka_unit_test(negative_silence_duration_is_invalid_value),
        cmocka_unit_test(turn_detection_of_wrong_type_is_invalid_type),
        cmocka_unit_test(unknown_modality_is_invalid_value),
        cmocka_unit_test(max_output_tokens_other_string_is_invalid_value),
        cmocka_unit_test(voice_of_wrong_type_is_invalid_type),
        cmocka_unit_test(null_optional_fields_are_absent),
        cmocka_unit_test(malformed_json_is_invalid_json),
        cmocka_unit_test(event_with_too_many_json_values_is_refused_unparsed),
        cmocka_unit_test(invalid_utf8_in_json_is_invalid_json),
        cmocka_unit_test(event_that_is_not_an_object_is_invalid_type),
        cmocka_unit_test(missing_type_is_missing_required_parameter),
        cmocka_unit_test(non_string_type_is_invalid_type),
        cmocka_unit_test(unknown_event_is_named_in_the_message),
        cmocka_unit_test(event_id_is_echoed_in_the_error),
        cmocka_unit_test(event_id_of_wrong_type_is_invalid_type),
        cmocka_unit_test(long_event_id_is_truncated_on_a_character_boundary),
        cmocka_unit_test(append_decodes_little_endian_samples),
        cmocka_unit_test(append_with_padding_decodes_exact_length),
        cmocka_unit_test(append_fast_path_agrees_with_the_full_parse),
        cmocka_unit_test(append_ignores_whitespace_in_base64),
        cmocka_unit_test(append_of_zero_samples_is_empty),
        cmocka_unit_test(append_invalid_character_is_invalid_base64),
        cmocka_unit_test(append_bad_padding_is_invalid_base64),
        cmocka_unit_test(append_length_not_multiple_of_four_is_invalid_base64),
        cmocka_unit_test(append_odd_byte_count_is_invalid_value),
        cmocka_unit_test(append_without_audio_is_missing_required_parameter),
        cmocka_unit_test(append_of_max_size_is_accepted),
        cmocka_unit_test(append_one_sample_over_max_is_message_too_large),
        cmocka_unit_test(audio_delta_round_trips_through_append),
        cmocka_unit_test(audio_delta_is_little_endian),
        cmocka_unit_test(audio_delta_with_odd_ids_is_still_exact),
        cmocka_unit_test(commit_and_clear_parse_in_both_dialects),
        cmocka_unit_test(ga_configuration_restated_for_beta_keeps_what_it_set),
        cmocka_unit_test(beta_configuration_restated_for_ga_drops_what_ga_cannot_say),
        cmocka_unit_test(an_invalid_configuration_is_not_restated),
        cmocka_unit_test(user_message_text_parts_are_concatenated),
        cmocka_unit_test(ga_assistant_message_with_output_text),
        cmocka_unit_test(beta_assistant_message_with_text_part),
        cmocka_unit_test(system_message_is_accepted),
        cmocka_unit_test(item_ids_are_kept),
        cmocka_unit_test(function_call_item_without_call_id_is_missing_required_parameter),
        cmocka_unit_test(function_call_output_item_is_parsed),
        cmocka_unit_test(item_id_longer_than_32_characters_is_refused_not_cut),
        cmocka_unit_test(other_item_types_are_not_supported),
        cmocka_unit_test(session_tools_are_parsed_and_echoed),
        cmocka_unit_test(unknown_role_is_invalid_value),
        cmocka_unit_test(missing_item_is_missing_required_parameter),
        cmocka_unit_test(audio_content_part_is_not_supported),
        cmocka_unit_test(content_text_of_wrong_type_is_invalid_type),
        cmocka_unit_test(response_create_without_overrides),
        cmocka_unit_test(ga_response_create_reads_instructions_and_output_modalities),
        cmocka_unit_test(beta_response_create_reads_modalities),
        cmocka_unit_test(response_instructions_of_wrong_type_is_invalid_type),
        cmocka_unit_test(response_cancel_with_and_without_id),
        cmocka_unit_test(defaults_differ_only_in_modalities),
        cmocka_unit_test(merge_copies_only_fields_the_update_set),
        cmocka_unit_test(merge_replaces_a_string_already_set),
        cmocka_unit_test(ga_session_created_has_the_full_session),
        cmocka_unit_test(ga_session_renders_manual_turns_and_no_transcription_as_null),
        cmocka_unit_test(beta_session_is_flat),
        cmocka_unit_test(beta_session_turn_detection_object),
        cmocka_unit_test(error_event_carries_code_param_and_event_id),
        cmocka_unit_test(error_event_empty_fields_are_null),
        cmocka_unit_test(ga_builders_use_ga_event_names),
        cmocka_unit_test(beta_builders_use_beta_event_names),
        cmocka_unit_test(beta_has_no_item_done),
        cmocka_unit_test(position_events_carry_ids_and_indexes),
        cmocka_unit_test(text_and_transcript_done_carry_the_whole_text),
        cmocka_unit_test(speech_and_buffer_events_carry_their_fields),
        cmocka_unit_test(ga_item_content_parts),
        cmocka_unit_test(beta_item_content_parts),
        cmocka_unit_test(item_without_transcript_has_null_transcript),
        cmocka_unit_test(output_item_event_carries_response_and_index),
        cmocka_unit_test(content_part_event_types_follow_the_reference),
        cmocka_unit_test(transcription_events_carry_item_and_content_index),
        cmocka_unit_test(ga_response_done_shape),
        cmocka_unit_test(beta_response_created_shape),
        cmocka_unit_test(beta_usage_details),
        cmocka_unit_test(cancelled_response_has_status_reason),
        cmocka_unit_test(failed_response_has_the_error),
        cmocka_unit_test(event_ids_are_unique_and_well_formed),
        cmocka_unit_test(new_id_has_prefix_and_twenty_alphanumerics),
        cmocka_unit_test(invalid_utf8_in_a_transcript_still_yields_valid_json),
        cmocka_unit_test(valid_multibyte_utf8_is_kept_as_is),
        cmocka_unit_test(builders_fail_cleanly_when_jansson_runs_out_of_memory),
        cmocka_unit_test(parse_fails_cleanly_when_jansson_runs_out_of_memory),
        cmocka_unit_test(item_truncate_parses_in_both_dialects),
        cmocka_unit_test(item_truncate_needs_item_and_audio_end),
        cmocka_unit_test(item_truncated_event_has_the_reference_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
