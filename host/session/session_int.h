/*
 * Session internals shared by session.c (life cycle, client events),
 * input.c (audio in: resampling, VAD, STT), respond.c (responses: LLM,
 * sentence chunking, TTS, paced audio out, barge-in) and conversation.c.
 * Everything here is touched only on the session's strand.
 */
#ifndef VOXRAY_SESSION_INT_H
#define VOXRAY_SESSION_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <voxray/plugin.h>

#include "app.h"
#include "session/protocol.h"
#include "session/session.h"

typedef struct strand strand;
typedef struct stage_ctx stage_ctx;
typedef struct stage_call stage_call;
typedef struct resampler resampler;
typedef struct vad vad;
typedef struct chunker chunker;
typedef struct recorder recorder;

/* ------------------------------------------------------------ conversation */

typedef struct item {
    char id[40];
    char role[12];
    proto_content content;
    char *text;        /* text or transcript; NULL while unknown; a function
                        * call's arguments, a function_call_output's output */
    char type[24];     /* "" (message), "function_call", "function_call_output" */
    char call_id[72];  /* function items */
    char *name;        /* function_call */
    char status[16];   /* completed | in_progress | incomplete */
    int audio_ms;      /* assistant audio sent for it (truncate bounds) */
    size_t acct;       /* bytes counted for it in conversation.bytes */
    struct item *prev, *next;
} item;

typedef struct conversation {
    item *head, *tail;
    size_t n;
    size_t bytes;      /* what its items hold (see conv_touch) */
} conversation;

#define CONV_AT_HEAD ((item *)-1)
/* New item after `after` (NULL: at the end; CONV_AT_HEAD: first).
 * id NULL: a fresh one. NULL on OOM or a duplicate id. */
item *conv_add(conversation *cv, item *after, const char *id, const char *role,
               proto_content content, const char *text, const char *status);
item *conv_find(conversation *cv, const char *id);
/* The item's text or name changed: count its size again. */
void conv_touch(conversation *cv, item *it);
/* A function item (type "function_call" or "function_call_output") after
 * `after` (as conv_add). NULL on OOM or a duplicate id. */
item *conv_add_function(conversation *cv, item *after, const char *id, const char *type, const char *call_id,
                        const char *name, const char *text, const char *status);
/* Unlink and free an item. */
void conv_remove(conversation *cv, item *it);
/* The function_call item with this call_id, or NULL. */
item *conv_find_call(conversation *cv, const char *call_id);
/* The conversation as a chat-completions messages JSON array (assistant
 * tool_calls and tool results included), instructions first; NULL when it
 * has no function items (or on OOM): msgs[] says everything then. */
char *conv_messages_json(const conversation *cv, const char *instructions);
int conv_set_text(item *it, const char *text);
void conv_free(conversation *cv);
/* The LLM prompt: system instructions then every message with text
 * (function items are left out: see conv_messages_json). The returned array
 * points into the items; free() only the array. */
vx_message *conv_messages(const conversation *cv, const char *instructions, size_t *n);
/* proto_item view of an item (pointers into it). */
proto_item conv_view(const item *it);
/* An item outside the conversation (an out-of-band response's); free it
 * with conv_item_free. NULL on OOM. */
item *conv_detached(const char *role, proto_content content);
void conv_item_free(item *it);
/* The prompt from explicit items (response.input): system instructions,
 * then each message or referenced conversation item. NULL with *missing set
 * to the id of a reference not in the conversation, or on OOM. */
vx_message *conv_messages_from(const conversation *cv, const char *instructions, const proto_input_item *in,
                               size_t n_in, size_t *n, const char **missing);
/* Words in a text (for request/reply length metrics). */
int conv_words(const char *text);
/* Keep the first `keep` words of the item's text. */
void conv_keep_words(item *it, int keep);

/* ------------------------------------------------------------ input */

/* A user turn being transcribed. The open one receives audio; turns whose
 * audio ended wait for their final transcript, possibly while the next one
 * is already being spoken. */
typedef struct turn {
    stage_call *stt;        /* the stream hearing the turn (NULL: its final is in) */
    char item_id[40];
    char *partial;          /* transcript sent as deltas so far */
    char *prev;             /* the previous partial hypothesis */
    int finishing;          /* finish() sent, final not yet in */
    /* Preemptive finals ([turn] speculative): at a pause of min_silence the
     * stream is finished early so that its final transcript (and a reply
     * made from it) is ready when the turn ends. Speech after the pause is
     * heard by a new stream; the turn's transcript joins the finals. */
    int early;              /* stt was finished at a pause of the open turn */
    uint64_t early_pos;     /* input position where it was */
    stage_call *stt_prev;   /* a stream finished early whose final is not in yet */
    char *heard;            /* finals of the streams finished so far, joined */
    char *held_final;       /* stt's final, waiting for stt_prev's */
    char model[64];         /* the provider that gave the last final */
    struct turn *next;
} turn;

typedef struct input_state {
    resampler *rs;          /* client rate -> STT rate */
    int rs_in_rate;
    vad *vad;
    /* the last second of STT-rate audio, for prefix padding: ring_len
     * samples (at most ring_cap) from ring + ring_off, in a buffer a
     * quarter larger (RING_SLACK) so that keeping it contiguous costs a
     * move per quarter second of audio, not one per chunk */
    int16_t *ring;
    size_t ring_cap, ring_len, ring_off;
    uint64_t pos;           /* STT-rate samples processed since the start */
    uint64_t append_end;    /* pos at the end of the append being processed */
    uint64_t vad_base;      /* pos when the VAD was last reset (its origin) */
    int in_speech;
    uint64_t speech_start_pos;
    turn *open;             /* the turn receiving audio, or NULL */
    turn *turns;            /* every turn not yet transcribed (incl. open) */
    uint64_t t_speech_end_ns; /* end of the last user turn (latency metric) */
    uint64_t t_final_ns;    /* while a turn's transcript is being answered */
    /* semantic_vad: silence came after an unfinished sentence; the turn is
     * kept open until hold_until (STT-rate position) or hold_deadline_ns
     * (wall clock, for a client that stopped sending audio) */
    int holding;
    uint64_t hold_end_pos, hold_until;
    uint64_t hold_deadline_ns;
    int buffered;           /* manual mode: audio appended since commit/clear */
    int16_t *scratch;
    size_t scratch_cap;
} input_state;

/* ------------------------------------------------------------ response */

typedef struct sentence {
    char *text;
    size_t samples_total;  /* client-rate samples synthesized for it */
    size_t samples_sent;   /* of those, released to the client */
    int tts_done;
    int announced;         /* its transcript delta was sent */
    struct sentence *next;
} sentence;

typedef struct response {
    char id[40];
    item *it;              /* the assistant item */
    unsigned modalities;
    char *instructions;    /* per-response override or NULL */
    stage_call *llm;
    int llm_done;
    chunker *ch;
    char *text;            /* everything the LLM said */
    size_t text_len, text_cap;
    sentence *sent_head, *sent_tail;
    sentence *tts_sent;    /* sentence being synthesized */
    stage_call *tts;
    /* paced output: client-rate samples not yet released, and for each
     * queued sample run, the sentence it belongs to */
    int16_t *q;
    size_t q_len, q_cap;
    struct qseg { sentence *s; size_t n; } *segs;
    size_t n_segs, cap_segs;
    resampler *out_rs;
    int out_src_rate;
    uint64_t t_audio_start_ns;
    uint64_t samples_released;
    int audio_started;
    proto_usage usage;
    int has_usage;
    int prompt_words;      /* the prompt's words, for usage when the provider reports none */
    char llm_model[64];    /* the LLM instance that answered */
    /* A speculative reply (input.c, [turn] speculative): made from the
     * transcript of a turn not yet confirmed; it sends nothing (no events,
     * no audio) until respond_release, and respond_discard drops it without
     * a trace. Its item stays outside the conversation while held. */
    int held;
    char *held_text;       /* the user transcript it answers */
    char llm_first_model[64], tts_model[64]; /* for the recording, on release */
    int was_held;          /* released speculation: its waits are not the host's */
    uint64_t t_first_sentence_ns, t_first_chunk_ns; /* voxray_host_latency_seconds */
    int host_tts_seen, host_audio_seen;
    int pending_fail;      /* a TTS call could not start: fail once safe */
    int llm_committed;     /* LLM output reached the client (stage_commit) */
    /* A provider failed after output reached the client: no more is made,
     * what is queued still plays, then the response ends incomplete. */
    int stopped;
    char stop_reason[24];
    proto_error stop_err;
    int stop_timeout;      /* the failure was a timeout (http_timeout_total) */
    uint64_t t_created_ns;
    char *metadata_json;   /* response.metadata to echo, or NULL */
    int out_of_band;       /* conversation "none": it is not in the conversation */
    int max_output_tokens; /* effective (0: inf) */
    char *voice;           /* per-response voice, or NULL */
    /* Output items: the message (announced with its first token, or at the
     * end when nothing else came) and the tool calls, in output_index order. */
    int announced;
    int msg_index;         /* the message's output_index */
    int n_out;             /* output items announced */
    struct rcall {
        uint32_t index;    /* the provider's call index */
        item *it;          /* its function_call item */
        int output_index;
        int done;
    } calls[16];
    int n_calls;
} response;

/* ------------------------------------------------------------ session */

struct session {
    atomic_int refs;
    strand *st;
    strand *persist;       /* store calls (saves), off the session strand */
    /* saves coalesce (persist.c): a change marks the state dirty and one
     * flush is queued behind the session's pending work; at most one save
     * is being written at a time (session strand only, but persist_busy) */
    int persist_dirty, persist_queued;
    atomic_int persist_busy;
    char *resume_id;       /* ?session_id= of the upgrade, or NULL */
    app *a;
    const transport_ops *tp; /* the connection carrying the session */
    void *conn;
    /* Control connections of a server attached to the call (session.h:
     * session_attach): every event sent goes to them too (strand only). */
    struct {
        const transport_ops *tp;
        void *conn;
    } side[SESSION_MAX_CONTROL];
    int n_side;
    int closed;            /* the connection is gone */
    atomic_int abandoned;  /* the connection is going: queued input is dropped */
    /* audio the client sent ahead of real time: a bucket that drains at
     * real time ([session] max_audio_ahead) */
    uint64_t ahead_ns, ahead_t_ns;
    resampler *track_rs;   /* transport audio track rate -> input rate, or NULL */
    char id[40];
    char conv_id[40];      /* "conv_..." the default conversation */
    char label[72];        /* sampled session_id metric label */
    proto_dialect d;
    proto_session cfg;
    stage_ctx *sx;
    uint64_t t_start_ns;
    uint64_t t_last_msg_ns;
    /* [session] max_duration and idle_timeout as they were when the session
     * started (a reload changes them for later sessions only). */
    long long max_duration_ms, idle_timeout_ms;
    conversation conv;
    input_state in;
    response *resp;
    /* response.create that waits for a transcript still being computed */
    int resp_waiting;
    proto_client_event *resp_wait; /* the response.create waiting (owned), or NULL: a VAD turn's */
    uint64_t tick_due_ns;  /* earliest scheduled tick, 0: none */
    int64_t t_start_unix_ms;
    recorder *rec;         /* the call's recording, or NULL */
    const char *end_reason; /* why the server closed it (static string), or NULL */
};

/* session.c */
/* A reference for work that outlives the current task. */
/* Run fn(s, arg) on the session strand with a reference held. 0 or -1. */
int sess_post(session *s, void (*fn)(session *s, void *arg), void *arg);
void sess_send(session *s, char *json);           /* NULL-safe; counts nothing */
void sess_error(session *s, const char *type, const char *code, const char *message,
                const char *param, const char *event_id);
void sess_schedule_tick(session *s, uint32_t ms); /* run sess_tick after ms */
uint64_t sess_now_ns(void);
void sess_count_interruption(void);
/* voxray_speculative_turns_total{outcome="used|discarded"} */
void sess_count_speculative(int used);
/* voxray_host_latency_seconds{step}: what the host adds between stages */
enum { HOST_STT_TO_LLM, HOST_SENTENCE_TO_TTS, HOST_AUDIO_TO_CLIENT };
void sess_observe_host(int step, uint64_t ns);
/* voxray_llm_tokens_total{model, provider, type} */
void sess_count_tokens(const char *model, int input, int output);
void sess_observe_turn_latency(session *s, uint64_t ns);
void sess_observe_words(int request, int words);
/* Keep the conversation within [session] max_conversation_items and
 * max_conversation_bytes: the oldest items go first (as a model's context
 * window drops them), each announced with conversation.item.deleted; items
 * still being made stay. */
void sess_trim_conversation(session *s);

/* input.c */
int input_init(session *s);
void input_free(session *s);
/* session.update changed the input rate or VAD settings */
int input_reconfigure(session *s);
void input_append(session *s, const int16_t *pcm, size_t n);
void input_commit(session *s, const char *event_id);
void input_clear(session *s);
/* 1 while a user item's transcript is still being computed */
int input_transcribing(const session *s);
/* Timer: end a semantic_vad hold whose time ran out. */
void input_tick(session *s);

/* respond.c */
/* Start a response from the conversation; ev is the client's
 * response.create (overrides: instructions, modalities, metadata,
 * conversation "none", max_output_tokens, voice, input) or NULL for a turn
 * the server detected. Returns 0, or -1 after sending an error event. */
int respond_start(session *s, const proto_client_event *ev);
/* Cancel the active response (reason: turn_detected | client_cancelled). */
void respond_cancel(session *s, const char *reason);
/* Paced audio release; returns ms until the next tick is needed (0: none). */
uint32_t respond_tick(session *s);
void respond_free(response *r);
/* Start a held speculative reply to the conversation plus a user message
 * `text` (not yet in the conversation). 0, or -1 when this session's
 * settings do not allow one (tools, text-only, no TTS) or on failure:
 * nothing is sent either way. */
int respond_speculate(session *s, const char *text);
/* 1 when a held reply exists. */
int respond_held(const session *s);
/* The turn is confirmed with transcript `text` (its user item is in the
 * conversation): a held reply to that same text is released and 1 is
 * returned; another held reply is discarded and 0 returned. */
int respond_release(session *s, const char *text);
/* Drop a held reply without a trace (counted as discarded). */
void respond_discard(session *s);

#endif
