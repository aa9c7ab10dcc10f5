/*
 * The session protocol: a subset of the OpenAI Realtime API, in its current
 * (GA) shape by default and in the older beta shape for clients that send
 * the header `OpenAI-Beta: realtime=v1`. The reference is the `openai` npm
 * package's resources/realtime/realtime.d.ts.
 *
 * This file only translates: JSON text <-> C structs (jansson), base64 <->
 * PCM (OpenSSL). It holds no session state and calls no plugin.
 *
 * Client events understood:
 *   session.update (a member that does not parse is reported and left out;
 *   the others apply), input_audio_buffer.append, input_audio_buffer.commit,
 *   input_audio_buffer.clear, conversation.item.create (text messages,
 *   function_call, function_call_output), conversation.item.truncate,
 *   response.create (with its per-response options), response.cancel.
 * Anything else, malformed JSON, wrong field types, bad base64, audio formats
 * voxray cannot take: proto_parse() fails with a proto_error the session
 * sends back as an `error` event; the session goes on.
 */
#ifndef VOXRAY_PROTOCOL_H
#define VOXRAY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

typedef enum proto_dialect {
    PROTO_GA = 0,  /* realtime.d.ts current names */
    PROTO_BETA = 1 /* OpenAI-Beta: realtime=v1 */
} proto_dialect;

/* ------------------------------------------------------------ errors */

/* The `error` object of an error event. type is "invalid_request_error"
 * (client mistakes) or "server_error"; code e.g. "invalid_json",
 * "unknown_event", "invalid_type", "missing_required_parameter",
 * "invalid_value", "unknown_parameter", "invalid_base64",
 * "unsupported_audio_format", "message_too_large". param names the offending
 * field ("session.audio.input.format.rate"), event_id echoes the client's. */
typedef struct proto_error {
    char type[32];
    char code[48];
    char message[256];
    char param[96];
    char event_id[96];
} proto_error;

/* ------------------------------------------------------------ session */

#define PROTO_MOD_TEXT (1u << 0)
#define PROTO_MOD_AUDIO (1u << 1)

/* Which fields of proto_session a session.update set (proto_session.set). */
#define PS_INSTRUCTIONS (1u << 0)
#define PS_VOICE (1u << 1)
#define PS_INPUT_RATE (1u << 2)
#define PS_OUTPUT_RATE (1u << 3)
#define PS_MODALITIES (1u << 4)
#define PS_TURN_DETECTION (1u << 5) /* turn_detection given (maybe null) */
#define PS_TEMPERATURE (1u << 6)
#define PS_MAX_OUTPUT_TOKENS (1u << 7)
#define PS_TRANSCRIPTION (1u << 8)
#define PS_TOOLS (1u << 9)
#define PS_TOOL_CHOICE (1u << 10)

/* semantic_vad eagerness */
enum { PROTO_EAGER_AUTO = 0, PROTO_EAGER_LOW, PROTO_EAGER_MEDIUM, PROTO_EAGER_HIGH };

typedef struct proto_turn_detection {
    int enabled;              /* 0: turn_detection null (manual commit) */
    int semantic;             /* semantic_vad: the end of a turn also weighs the transcript */
    int eagerness;            /* PROTO_EAGER_* (semantic_vad) */
    double threshold;         /* 0..1 */
    int prefix_padding_ms;
    int silence_duration_ms;
    int create_response;      /* start a response when a turn ends */
    int interrupt_response;   /* user speech cancels the bot (barge-in) */
} proto_turn_detection;

/* The session configuration voxray honours. Strings are malloc'd (owned by
 * the struct, freed by proto_session_clear). */
typedef struct proto_session {
    unsigned set;         /* PS_* bits: what an update carried */
    char *id;             /* "sess_..." (server-assigned) */
    char *model;          /* echoed, informational */
    char *instructions;   /* system prompt */
    char *voice;          /* TTS voice name, NULL: provider default */
    int input_rate;       /* audio/pcm input rate, Hz */
    int output_rate;      /* audio/pcm output rate, Hz */
    unsigned modalities;  /* PROTO_MOD_* of responses */
    proto_turn_detection turn;
    double temperature;   /* < 0: unset */
    int max_output_tokens; /* <= 0: "inf" */
    int transcription;    /* send input transcription events */
    char *tools_json;     /* function tools, a JSON array [{type,name,description,parameters}]; NULL: none */
    char *tool_choice;    /* "auto" (NULL), "none", "required" or a function name */
} proto_session;

/* Defaults: 24 kHz in and out, modalities audio (GA) / text+audio (beta),
 * server_vad 0.5/300/500 with create_response and interrupt_response,
 * transcription on, temperature unset, max tokens inf. */
void proto_session_defaults(proto_session *s, proto_dialect d);
/* Copy every field `upd->set` marks from upd into s (strings duplicated)
 * and add those bits to s->set. Returns 0, or -1 with errno = ENOMEM and s
 * left as it was. */
int proto_session_merge(proto_session *s, const proto_session *upd);
void proto_session_clear(proto_session *s);

/* ------------------------------------------------------------ items */

typedef enum proto_content {
    PROTO_INPUT_TEXT = 1, /* user/system text */
    PROTO_INPUT_AUDIO,    /* user audio, with transcript */
    PROTO_OUTPUT_TEXT,    /* assistant text */
    PROTO_OUTPUT_AUDIO    /* assistant audio, with transcript */
} proto_content;

/* A conversation item: a message with one content part, or (type
 * "function_call") a tool call the model made, or ("function_call_output")
 * the result the client sent for one. */
typedef struct proto_item {
    const char *id;
    const char *role;     /* "user" | "assistant" | "system" (messages) */
    const char *status;   /* "completed" | "in_progress" | "incomplete" */
    proto_content content;
    const char *text;     /* text, or the transcript of audio (NULL: null);
                           * function_call: arguments; function_call_output: output */
    const char *type;     /* NULL or "message", "function_call", "function_call_output" */
    const char *call_id;  /* function_call, function_call_output */
    const char *name;     /* function_call */
} proto_item;

/* ------------------------------------------------------------ client events */

typedef enum proto_client_type {
    PC_SESSION_UPDATE = 1,
    PC_AUDIO_APPEND,
    PC_AUDIO_COMMIT,
    PC_AUDIO_CLEAR,
    PC_OUTPUT_AUDIO_CLEAR, /* output_audio_buffer.clear (WebRTC) */
    PC_ITEM_CREATE,
    PC_RESPONSE_CREATE,
    PC_RESPONSE_CANCEL,
    PC_ITEM_TRUNCATE,
    PC_ITEM_RETRIEVE,
    PC_ITEM_DELETE
} proto_client_type;

/* Longest client-chosen item id (the API's limit); a longer one is refused,
 * never cut (two ids cut alike would become one item). */
#define PROTO_MAX_ITEM_ID 32
/* Most JSON values (objects, arrays, strings, numbers...) in one client
 * event; more is refused unparsed (invalid_event). */
#define PROTO_MAX_JSON_VALUES 65536

/* One item of response.create's `input`: a message (role, text) or a
 * reference to an item of the conversation (ref_id). */
typedef struct proto_input_item {
    char *role;
    char *text;
    char *ref_id;
} proto_input_item;

typedef struct proto_client_event {
    proto_client_type type;
    char event_id[96];  /* the client's, "" if none */
    /* PC_SESSION_UPDATE: the members that parsed (session.set), and one
     * error per member that did not (the update applies the rest) */
    proto_session session;
    proto_error *field_errors;
    size_t n_field_errors;
    /* PC_AUDIO_APPEND: decoded little-endian s16 mono samples (malloc'd) */
    int16_t *pcm;
    size_t samples;
    /* PC_ITEM_CREATE */
    char *item_id;          /* client-chosen id or NULL */
    char *previous_item_id; /* NULL: append at the end */
    char *role;             /* "user" | "assistant" | "system" */
    char *text;             /* the message text; function_call: arguments; function_call_output: output */
    char *item_type;        /* NULL: message; "function_call" | "function_call_output" */
    char *call_id;          /* function_call, function_call_output */
    char *name;             /* function_call */
    /* PC_RESPONSE_CREATE: per-response overrides */
    char *instructions;     /* NULL: session's */
    unsigned modalities;    /* 0: session's */
    char *metadata_json;    /* response.metadata as JSON text, NULL: none */
    int out_of_band;        /* conversation: "none" */
    int max_output_tokens;  /* -1: session's, 0: "inf", > 0 */
    char *voice;            /* NULL: session's */
    int has_input;          /* response.input given (maybe []) */
    char *tools_json;       /* response.tools (NULL: session's) */
    int has_tools;
    char *tool_choice;      /* response.tool_choice (NULL: session's) */
    proto_input_item *input;
    size_t n_input;
    /* PC_RESPONSE_CANCEL */
    char *response_id;      /* NULL: the current one */
    /* PC_ITEM_TRUNCATE: item_id (above), the audio part and how much of it
     * the client played */
    int content_index;
    int audio_end_ms;
} proto_client_event;

/* Parse one client text frame. `max_audio_samples` bounds a single append
 * (0: no bound). Returns 0 and fills ev (free with proto_client_event_free),
 * or -1 and fills err (ev is left empty). Unknown fields of known events are
 * ignored, as the OpenAI API tolerates them, except where a value is
 * present with a wrong type. A JSON null counts as absent, except for
 * turn_detection and transcription, where null turns the feature off. A
 * turn_detection object replaces the whole configuration: members it does
 * not give take the defaults of proto_session_defaults(). */
int proto_parse(const char *json, size_t len, proto_dialect d, size_t max_audio_samples,
                proto_client_event *ev, proto_error *err);
/* proto_parse without its fast path for plain audio appends: every event
 * through the JSON tree (for tests that check both agree). */
int proto_parse_full(const char *json, size_t len, proto_dialect d, size_t max_audio_samples,
                     proto_client_event *ev, proto_error *err);
void proto_client_event_free(proto_client_event *ev);

/* ------------------------------------------------------------ server events */

/* Every builder returns a malloc'd NUL-terminated JSON text (release it
 * with free()) carrying a fresh "event_id" ("event_" + 20 random
 * alphanumerics), or NULL with errno = ENOMEM on allocation failure (EINVAL
 * for a NULL struct argument). Builders for events a dialect does not have
 * return NULL with errno = ENOENT (callers just skip them). Text arguments
 * may hold any bytes: ill-formed UTF-8 is sent as U+FFFD. A NULL id or text
 * is sent as "" where the reference types the field as a string, as null
 * where it is nullable. */

/* A fresh id: prefix + 20 random alphanumerics ("item_", "resp_", "sess_"). */
void proto_new_id(const char *prefix, char *buf, size_t len);

char *proto_ev_session(proto_dialect d, int updated, const proto_session *s);
/* The members of s that s->set marks, as the "session" object of a
 * session.update in dialect d: a configuration read in one dialect,
 * restated for a session that speaks the other. Members d cannot express
 * are left out (GA has no temperature; beta only 24 kHz pcm16). A new JSON
 * text, or NULL (out of memory). */
char *proto_session_update_json(proto_dialect d, const proto_session *s);
/* session_json, the "session" of a session.update in dialect from,
 * restated in dialect to (as above). NULL with the reason in e when it
 * does not parse or a member is invalid; NULL with e->code "" when out of
 * memory. */
char *proto_session_restate(const char *session_json, proto_dialect from, proto_dialect to, proto_error *e);
char *proto_ev_error(proto_dialect d, const proto_error *e);

char *proto_ev_speech_started(proto_dialect d, int audio_start_ms, const char *item_id);
char *proto_ev_speech_stopped(proto_dialect d, int audio_end_ms, const char *item_id);
char *proto_ev_audio_committed(proto_dialect d, const char *item_id, const char *previous_item_id);
char *proto_ev_audio_cleared(proto_dialect d);

/* GA conversation.item.added / beta conversation.item.created */
char *proto_ev_item_added(proto_dialect d, const proto_item *it, const char *previous_item_id);
/* GA conversation.item.done; beta: none (NULL, ENOENT) */
char *proto_ev_item_done(proto_dialect d, const proto_item *it, const char *previous_item_id);

/* conversation.item.retrieved (the item) / conversation.item.deleted */
char *proto_ev_item_retrieved(proto_dialect d, const proto_item *it);
char *proto_ev_item_deleted(proto_dialect d, const char *item_id);
/* conversation.item.truncated (both dialects) */
char *proto_ev_item_truncated(proto_dialect d, const char *item_id, int content_index, int audio_end_ms);

char *proto_ev_transcription_delta(proto_dialect d, const char *item_id, const char *delta);
char *proto_ev_transcription_completed(proto_dialect d, const char *item_id, const char *transcript);
char *proto_ev_transcription_failed(proto_dialect d, const char *item_id, const proto_error *e);

typedef struct proto_usage {
    int input_tokens;
    int output_tokens;
} proto_usage;

typedef struct proto_response {
    const char *id;
    const char *status;        /* in_progress|completed|cancelled|incomplete|failed */
    const char *status_reason; /* turn_detected|client_cancelled|max_output_tokens|... or NULL */
    const proto_error *error;  /* for failed, or NULL */
    const proto_item *output;  /* items (response.done carries them) */
    size_t n_output;
    unsigned modalities;
    const char *voice;
    int output_rate;
    const proto_usage *usage;  /* NULL: null */
    const char *metadata_json; /* echoed object, NULL: null */
    const char *conversation_id; /* NULL: null (out-of-band) */
    int max_output_tokens;     /* 0: "inf" */
} proto_response;

/* response.created (done = 0) / response.done (done = 1) */
char *proto_ev_response(proto_dialect d, int done, const proto_response *r);
/* response.output_item.added / .done */
char *proto_ev_output_item(proto_dialect d, int done, const char *response_id,
                           int output_index, const proto_item *it);
/* response.content_part.added / .done (part type from it->content) */
char *proto_ev_content_part(proto_dialect d, int done, const char *response_id,
                            int output_index, const proto_item *it);

/* Position of a delta: response, item, output_index, content_index (0). */
typedef struct proto_pos {
    const char *response_id;
    const char *item_id;
    int output_index;
} proto_pos;

/* GA response.output_text.delta/done; beta response.text.delta/done */
char *proto_ev_text_delta(proto_dialect d, const proto_pos *p, const char *delta);
char *proto_ev_text_done(proto_dialect d, const proto_pos *p, const char *text);
/* GA response.output_audio.delta/done; beta response.audio.delta/done.
 * pcm is s16 mono, base64-encoded little-endian. */
char *proto_ev_audio_delta(proto_dialect d, const proto_pos *p, const int16_t *pcm, size_t samples);
char *proto_ev_audio_done(proto_dialect d, const proto_pos *p);
/* response.function_call_arguments.delta / .done (both dialects) */
char *proto_ev_function_args_delta(proto_dialect d, const proto_pos *p, const char *call_id, const char *delta);
char *proto_ev_function_args_done(proto_dialect d, const proto_pos *p, const char *call_id, const char *name,
                                  const char *arguments);
/* GA response.output_audio_transcript.delta/done; beta response.audio_transcript.* */
char *proto_ev_transcript_delta(proto_dialect d, const proto_pos *p, const char *delta);
char *proto_ev_transcript_done(proto_dialect d, const proto_pos *p, const char *transcript);

#endif
