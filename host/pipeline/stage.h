/*
 * Stage calls: the call gate for streaming providers (STT, LLM, TTS).
 *
 * A stage has an ordered chain of provider instances ([llm] providers = a, b).
 * A stage call runs one logical request (an utterance to transcribe, a reply
 * to generate, a sentence to speak) through that chain:
 *
 *   - every attempt is timed and counted (seed families stt_*, llm_*, tts_*
 *     labelled model and sampled session_id, and voxray_plugin_* by kind,
 *     plugin and op);
 *   - a retryable failure is retried on the same provider (LLM: [llm]
 *     retries, exponential backoff with jitter), then the next provider is
 *     tried (*_fallback_total{from,to}); a timeout goes to the next provider
 *     at once when there is one;
 *   - an attempt that produces nothing within the stage's timeout, or
 *     nothing more for idle_timeout once it started, is cancelled and counts
 *     as a retryable timeout (*_errors_total{error_type="timeout"});
 *   - a provider failing breaker_failures times in a row is skipped for
 *     breaker_cooldown, then probed again by the next call; its state shows
 *     in /v1/health;
 *   - output is delivered as it comes, but the caller decides when it is
 *     spent: once it calls stage_commit() (it passed output on to the
 *     client), a failure ends the call with on_error and no other provider
 *     repeats it; before that, a failure calls on_reset (drop what you
 *     held) and the next attempt starts over.
 *
 * Threads: plugin calls run on a strand of their own per attempt (a plugin
 * that blocks stalls only that stream); plugin events are copied and
 * delivered on the caller's strand (the session's), in order. After
 * stage_cancel() returns on that strand, no further event is delivered.
 */
#ifndef VOXRAY_STAGE_H
#define VOXRAY_STAGE_H

#include <stddef.h>
#include <stdint.h>
#include <voxray/plugin.h>

#include "plugin/plugins.h"
#include "settings.h"

typedef struct strand strand;
typedef struct metrics_registry metrics_registry;
typedef struct stage_call stage_call;
typedef struct stage_ctx stage_ctx;

/* Events, delivered on the context's strand. `c` is the call. */
typedef struct stage_events {
    void *user;
    void (*on_partial)(void *user, stage_call *c, const char *text);               /* stt */
    void (*on_final)(void *user, stage_call *c, const char *text, float conf);      /* stt */
    void (*on_token)(void *user, stage_call *c, const char *text, size_t len);      /* llm */
    void (*on_audio)(void *user, stage_call *c, const int16_t *pcm, size_t n,
                     const vx_audio_format *fmt);                                    /* tts */
    void (*on_done)(void *user, stage_call *c, const vx_usage *usage);             /* llm, tts */
    /* llm: a fragment of tool call `index` (call_id and name on its first
     * fragment, NULL after; args the next piece of its JSON arguments) */
    void (*on_tool_call)(void *user, stage_call *c, uint32_t index, const char *call_id, const char *name,
                         const char *args, size_t len);
    /* The call failed for good (every provider tried, or a failure after
     * stage_commit). No event follows. */
    void (*on_error)(void *user, stage_call *c, const vx_error *err);
    /* Output delivered so far was dropped by a failure before stage_commit:
     * forget it, another attempt starts over. NULL: such a failure ends the
     * call with on_error instead. */
    void (*on_reset)(void *user, stage_call *c);
} stage_events;

typedef struct stage_gen stage_gen;

/* Register the seed metric families and make ps (the stage providers,
 * plug_set_take_stages) with the stages' settings the first generation.
 * The generation owns ps. */
int stage_init(metrics_registry *reg, const settings *s, plug_set *ps);
/* SIGHUP: make ps (plug_set_load_stages, initialised) with the stages'
 * settings in s the generation new sessions start with. Sessions already
 * running keep theirs; an instance that goes on keeps its breaker state.
 * The replaced generation is released when its last session ends. 0 or -1
 * (out of memory; ps is not taken). */
int stage_reload(const settings *s, plug_set *ps);
/* Free the generations whose last session ended (plugin instances shut
 * down, files unloaded unless a newer generation shares them). Call on the
 * main thread. Returns how many were freed. */
int stage_collect(void);
/* Generations alive (current + replaced ones still in use). */
int stage_generations(void);
/* Release the current generation and collect (after the sessions ended). */
void stage_shutdown(void);

/* The current generation, with a reference (NULL before stage_init). */
stage_gen *stage_gen_acquire(void);
void stage_gen_release(stage_gen *g);
/* Its plugin set: the stage lists and their instances. */
const plug_set *stage_gen_plugins(const stage_gen *g);

/* Per-session context: the session's strand and its sampled metric label.
 * Holds cached metric series for the session; freed with stage_ctx_free
 * (which schedules removal of the session's series after the TTL). */
stage_ctx *stage_ctx_new(strand *session_strand, const char *session_label);
void stage_ctx_free(stage_ctx *x);

/* Start calls. NULL when the stage has no provider, on OOM or when x is
 * NULL (the session ended and let go of its context); otherwise the
 * caller holds a reference and must stage_release() it (after cancel or
 * after on_done/on_final/on_error). */
stage_call *stage_stt_open(stage_ctx *x, int sample_rate, const stage_events *ev);
/* Feed audio (copied). Audio fed since the last final is kept so that a
 * fallback provider hears the whole utterance. */
int stage_stt_feed(stage_call *c, const int16_t *pcm, size_t n);
/* End of utterance: on_final (or on_error) follows. */
int stage_stt_finish(stage_call *c);

stage_call *stage_llm_generate(stage_ctx *x, const vx_message *msgs, size_t n,
                               const vx_llm_params *params, const stage_events *ev);
stage_call *stage_tts_synthesize(stage_ctx *x, const char *text, const char *voice,
                                 const stage_events *ev);

/* The caller passed the call's output on to the client: from now on a
 * failure ends the call rather than starting over (see on_reset). */
void stage_commit(stage_call *c);

/* Stop the call: cancels the plugin stream; no event is delivered after
 * this returns (when called on the context's strand). Idempotent. */
void stage_cancel(stage_call *c);
void stage_release(stage_call *c);

/* The provider instance currently serving the call. */
const char *stage_call_model(const stage_call *c);

/* Number of providers configured for a stage in the generation the session
 * started with. */
int stage_ctx_providers(const stage_ctx *x, int stage);

/* Breaker state of an instance in a stage of generation g, for /v1/health:
 * 1 available, 0 cooling down (detail says until when). */
int stage_provider_state(const stage_gen *g, int stage, const plug_instance *pi, char *detail, size_t len);

/* Bring voxray_provider_breaker_open up to date (before a scrape). */
void stage_breakers_refresh(void);

#endif
