/*
 * voxray plugin ABI, version 1.
 *
 * A voxray provider is a shared object that exports exactly one symbol:
 *
 *     const vx_plugin_info *vx_plugin_entry(const vx_host_api *host);
 *
 * The host dlopen()s the file with RTLD_NOW|RTLD_LOCAL, calls the entry once,
 * checks the descriptor it returns (magic, ABI version, struct sizes, the
 * mandatory methods of every kind it claims), validates the configuration of
 * each instance against the descriptor's schema and only then calls init().
 * Nothing in this file requires linking against the host: everything the
 * plugin may call is reached through the vx_host_api table.
 *
 * Compatibility rules
 *   - abi_major must equal the host's VX_ABI_MAJOR.
 *   - abi_minor must be <= the host's VX_ABI_MINOR; an older minor is accepted.
 *   - Every struct that crosses the boundary begins with a struct_size. Fields
 *     are only ever appended (never reordered or removed) and every append bumps
 *     VX_ABI_MINOR. A reader copies min(struct_size, sizeof) into a zeroed
 *     struct, so fields the other side does not know read as 0/NULL.
 *   - Plugins check host->struct_size before using a host method appended
 *     after the minor they were built for (see VX_HOST_HAS()).
 *
 * Threading contract (applies to every kind unless a call says otherwise)
 *   - vx_plugin_entry, init and shutdown run once, on the host's main thread.
 *     No stream is open when shutdown is called.
 *   - Calls on one stream are serialized by the host: it never calls feed() on
 *     a stream while another call on that same stream is running, with the one
 *     exception of cancel().
 *   - Different streams, and store/sink calls, run concurrently on host worker
 *     threads; a plugin instance must be safe for that (lock inside if not).
 *   - cancel() is idempotent, may be called from any thread at any time before
 *     close(), and must not block for long; after it the plugin must end the
 *     stream with on_error(VX_ECANCELED) or its normal completion event
 *     within VX_CANCEL_MS (100 ms) of the cancel() call, and deliver nothing
 *     else in between but output already on its way. voxray-plugin-check
 *     times this and fails a plugin that takes longer, with the time it
 *     took. A plugin waiting on its own timer or socket wakes up for cancel
 *     (defer_cancel the timer, shutdown() the socket) rather than sleeping
 *     out a delay.
 *   - Events may fire from any thread, including plugin-owned threads and the
 *     calling thread during the call that caused them. Event callbacks only
 *     enqueue work in the host; they never call back into the plugin.
 *   - No event fires after close() returns: close() waits for (or stops) any
 *     plugin thread that could still deliver one.
 *   - The host never dlclose()s a plugin that has open streams.
 *   - Start calls (stt open, llm generate, tts synthesize) should return
 *     quickly and deliver results through events. A plugin whose start call
 *     may block for long should store the new stream in *out (with an
 *     atomic release store) before blocking: the host reads it to cancel()
 *     a call that overruns its timeout. If a start call then fails with
 *     *out set, the host close()s that stream. A plugin that does neither
 *     is abandoned by the host after the timeout (the call's thread stays
 *     blocked until the call returns).
 *
 * Errors
 *   - A call that fails returns a negative VX_E* code, fills err (the same
 *     code, a message) and fires no event for that call. A start call that
 *     cannot serve its input (generate with no user message, synthesize of
 *     an empty text, feed or finish after cancel) either refuses it so, or,
 *     where the provider legitimately answers such input, accepts it and ends
 *     the stream with exactly one terminal event. voxray-plugin-check drives
 *     these cases. The host counts a failed stage call in
 *     {stt,llm,tts}_errors_total{error_type=...} and
 *     voxray_plugin_calls_total{status=...} under the code's name: invalid
 *     nomem notsup timeout unavailable ratelimit auth canceled protocol
 *     internal notfound (a code outside VX_E* counts as "unknown").
 *     err->retryable set: the host repeats the call on the same provider
 *     (up to the stage's `retries`, with backoff). Any error before the
 *     first output then falls back to the stage's next provider; an error
 *     after output reached the client ends the turn with that error.
 *
 * Ownership
 *   - Strings and buffers passed *into* a plugin call are owned by the host and
 *     valid only for the duration of that call; copy what you keep.
 *   - Strings and buffers passed *into* an event callback are owned by the
 *     plugin and valid only for the duration of the callback; the host copies.
 *   - Memory handed across the boundary to be freed by the other side (only
 *     vx_store_vtable.get returns such memory) is allocated with host->alloc
 *     and freed with host->free.
 *   - vx_error is caller-owned: the host passes it with code, retryable and
 *     upstream_status zero and msg an empty string whose last byte is also
 *     zero (the rest of msg is unspecified: write it as a NUL-terminated
 *     string, e.g. with snprintf); the plugin fills it when it returns a
 *     negative code or fires on_error.
 */
#ifndef VOXRAY_PLUGIN_H
#define VOXRAY_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VX_PLUGIN_MAGIC 0x31505856u /* "VXP1" in little-endian memory */
#define VX_ABI_MAJOR 1
/* Minor history:
 *   0  initial ABI.
 *   1  vx_plugin_info.health (optional self-reported status for /v1/health).
 *   2  vx_recording.name (the object name the host chose for the file).
 *   3  tools: vx_llm_params.tools_json, tool_choice, messages_json;
 *      vx_llm_events.on_tool_call.
 *   4  vx_host_api.defer_id and defer_cancel (timers a stream can take back
 *      at cancel and close, so a stream needs no thread of its own).
 *   5  vx_host_api.defer_at (a timer due at an absolute time on now_ns's
 *      clock, to the nanosecond rather than the millisecond).
 *   6  vx_host_api typed config getters (config_int, config_float,
 *      config_bool, config_duration_ms, config_duration_ns, config_size);
 *      VX_CFG_SIZE; VX_CANCEL_MS.
 */
#define VX_ABI_MINOR 6

#if defined(__GNUC__)
#define VX_EXPORT __attribute__((visibility("default")))
#define VX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VX_EXPORT
#define VX_PRINTF(f, a)
#endif

/* After cancel() a stream delivers its terminal event (on_error with
 * VX_ECANCELED, or its normal completion) within this many milliseconds. */
#define VX_CANCEL_MS 100

/* ---------------------------------------------------------------- errors */

/* Return codes. 0 is success, everything else is negative. The code is the
 * bounded error_type label of the host's *_errors_total metrics, so a plugin
 * must pick the closest code rather than invent new ones. */
enum {
    VX_OK = 0,
    VX_EINVAL = -1,     /* bad argument or input the plugin cannot use */
    VX_ENOMEM = -2,     /* allocation failed */
    VX_ENOTSUP = -3,    /* operation, format or voice not supported */
    VX_ETIMEDOUT = -4,  /* the plugin's own deadline expired */
    VX_EUNAVAIL = -5,   /* upstream down, refused, 5xx, connection lost */
    VX_ERATELIMIT = -6, /* upstream said slow down (HTTP 429) */
    VX_EAUTH = -7,      /* credentials refused (HTTP 401/403) */
    VX_ECANCELED = -8,  /* the stream was cancelled */
    VX_EPROTO = -9,     /* upstream answered something unparseable */
    VX_EINTERNAL = -10, /* a bug or an unexpected state inside the plugin */
    VX_ENOTFOUND = -11  /* store: no such key (not a failure of the store) */
};

/* Caller-owned error detail. `retryable` tells the host's call gate whether
 * the same call may succeed if repeated (timeouts, 429, 5xx); it drives
 * retries and fallback to the next provider. */
typedef struct vx_error {
    int code;            /* one of VX_E* */
    int retryable;       /* nonzero: repeating the call may succeed */
    int upstream_status; /* e.g. the HTTP status from upstream, or 0 */
    char msg[256];       /* human readable, NUL-terminated, no secrets */
} vx_error;

/* ---------------------------------------------------------------- kinds */

typedef enum vx_kind {
    VX_KIND_STT = 1u << 0,
    VX_KIND_LLM = 1u << 1,
    VX_KIND_TTS = 1u << 2,
    VX_KIND_STORE = 1u << 3,
    VX_KIND_SINK = 1u << 4
} vx_kind;

/* Capability bits (vx_plugin_info.caps). Informational; the host uses them to
 * choose how to drive a provider. */
#define VX_CAP_STREAMING_INPUT (1ull << 0)  /* STT: consumes audio while it arrives */
#define VX_CAP_PARTIALS (1ull << 1)         /* STT: emits on_partial */
#define VX_CAP_STREAMING_OUTPUT (1ull << 2) /* LLM/TTS: emits output incrementally */
#define VX_CAP_MULTILINGUAL (1ull << 3)     /* TTS/STT: more than one language */
#define VX_CAP_NETWORK (1ull << 4)          /* talks to a remote service */

/* ---------------------------------------------------------------- config */

typedef enum vx_config_type {
    VX_CFG_STRING = 1, /* any string; `max` (if > 0) bounds its length */
    VX_CFG_INT,        /* integer within [min, max] */
    VX_CFG_FLOAT,      /* real number within [min, max] */
    VX_CFG_BOOL,       /* true/false/yes/no/on/off/1/0 */
    VX_CFG_ENUM,       /* one of `choices`, separated by '|' */
    VX_CFG_DURATION,   /* a number with unit ms, s, m or h, or a bare number of ms:
                        * 250ms, 1.5s, 2m; fractions allowed; min/max in ms */
    VX_CFG_ADDRESS,    /* host:port */
    VX_CFG_SIZE        /* 1.6: bytes: 4096, 64k/64KiB, 16M/16MiB, 1G/1GiB (powers
                        * of 1024) or 64kB, 16MB, 1GB (powers of 1000); min/max
                        * in bytes. A host older than 1.6 refuses a schema with it. */
} vx_config_type;

#define VX_CFG_REQUIRED (1u << 0) /* the instance section must set it */
#define VX_CFG_SECRET (1u << 1)   /* never logged, never printed back */

/* One configuration key a plugin accepts in its [plugin.NAME] section. The
 * array in vx_plugin_info.config ends with an entry whose key is NULL. The
 * host validates every key of the instance section against it before init. */
typedef struct vx_config_key {
    const char *key;
    vx_config_type type;
    const char *def; /* default as text (NULL: none) */
    const char *help;
    double min, max; /* ranges for INT/FLOAT/DURATION; both 0 = unbounded */
    const char *choices; /* VX_CFG_ENUM: "a|b|c" */
    unsigned flags;      /* VX_CFG_REQUIRED | VX_CFG_SECRET */
} vx_config_key;

/* A validated configuration: every key of the schema, the value from the
 * file or the environment, or the schema default. Valid until shutdown. */
typedef struct vx_kv {
    const char *key;
    const char *value; /* NULL when unset and no default */
} vx_kv;

typedef struct vx_config {
    uint32_t struct_size;
    const char *instance; /* the instance name, e.g. "redis" for [plugin.redis] */
    const vx_kv *items;
    size_t n_items;
} vx_config;

/* ---------------------------------------------------------------- host API */

typedef struct vx_host vx_host; /* opaque per-instance handle */
typedef struct vx_metric vx_metric; /* opaque metric series handle */

enum { VX_LOG_DEBUG = 0, VX_LOG_INFO = 1, VX_LOG_WARN = 2, VX_LOG_ERROR = 3 };

typedef enum vx_metric_type {
    VX_METRIC_COUNTER = 1,
    VX_METRIC_GAUGE,
    VX_METRIC_HISTOGRAM /* seconds; buckets from [metrics] or defaults */
} vx_metric_type;

/* The table the host hands to vx_plugin_entry and init. Valid until the
 * plugin is unloaded. Every method is safe to call from any thread. */
typedef struct vx_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Log one message through the host logger, prefixed with the kind and
     * instance name ("[store:redis] ..."). Secret configuration values that
     * appear in the text are masked by the host. h may be NULL where the
     * plugin has no handle yet (vx_plugin_entry): the prefix is then
     * "[plugin] ". */
    void (*log)(vx_host *h, int level, const char *fmt, ...) VX_PRINTF(3, 4);
    void (*vlog)(vx_host *h, int level, const char *fmt, va_list ap);
    int (*log_enabled)(vx_host *h, int level);

    /* Monotonic clock in nanoseconds. */
    uint64_t (*now_ns)(void);

    /* Memory that crosses the boundary (see Ownership above). */
    void *(*alloc)(size_t n);
    void (*free)(void *p);

    /* Run fn(arg) on the host's timer thread after delay_ms. Jobs run one
     * at a time, so fn must be short (deliver an event, queue work) and
     * never block. Returns 0 or VX_ENOMEM/VX_EUNAVAIL (host shutting down:
     * fn will not run). When the host stops, jobs not yet due run at once. */
    int (*defer)(vx_host *h, uint32_t delay_ms, void (*fn)(void *arg), void *arg);

    /* Look up a validated key of this instance's config (value or default);
     * NULL if the key is unknown or unset. */
    const char *(*config_get)(vx_host *h, const char *key);

    /* Plugin-defined metrics. Register at init only. The host prefixes the
     * name with "voxray_plugin_" and adds the labels plugin and provider,
     * both "<instance>" (the label every family about a provider carries).
     * The name rule (the host and voxray-plugin-check apply the same one):
     *   - 1 to 96 characters of [a-z0-9_], starting with a letter, without
     *     the "voxray_" prefix (the host adds it) and without "__";
     *   - a counter ends in "_total", a gauge or histogram does not;
     *   - none ends in "_bucket", "_count", "_sum" or "_created" (the
     *     series suffixes of a histogram);
     *   - not one of the host's own plugin families: calls_total,
     *     call_duration_seconds, inflight, info;
     *   - start it with the plugin's name ("store_memory_keys") so two
     *     plugins do not clash.
     * Returns NULL on a refused name or a type clash with a name already
     * registered as another type; the host then logs a warning with the
     * reason. metric_add/set/observe on NULL do nothing. */
    vx_metric *(*metric_register)(vx_host *h, vx_metric_type type,
                                  const char *name, const char *help);
    void (*metric_add)(vx_metric *m, double v);     /* counter (v >= 0) or gauge */
    void (*metric_set)(vx_metric *m, double v);     /* gauge */
    void (*metric_observe)(vx_metric *m, double v); /* histogram, seconds */

    /* 1.4. defer, also returning in *id (never 0) a handle for
     * defer_cancel. Same returns as defer. */
    int (*defer_id)(vx_host *h, uint32_t delay_ms, void (*fn)(void *arg), void *arg,
                    uint64_t *id);
    /* Take back job id: returns 1 when it was removed before it started (fn
     * will not run; arg is the caller's again), 0 when it has run or is
     * running. With wait set and the job running, returns only once fn has
     * returned, so the caller may free arg either way; a job cannot wait
     * for itself (called from inside one, wait is ignored) and the caller
     * must not hold a lock fn takes. */
    int (*defer_cancel)(vx_host *h, uint64_t id, int wait);

    /* 1.5. defer_id, due at due_ns on now_ns()'s clock (CLOCK_MONOTONIC)
     * rather than after whole milliseconds: a job runs within the timer
     * thread's wake-up (tens of microseconds) of its time, where rounding
     * a delay up to the next millisecond adds 0.5 ms on average. A time
     * already past is due at once. Same returns and *id as defer_id. */
    int (*defer_at)(vx_host *h, uint64_t due_ns, void (*fn)(void *arg), void *arg, uint64_t *id);

    /* 1.6. Typed config getters: the validated value (or default) of `key`
     * parsed the way the host validated it, so a plugin parses nothing.
     * Each returns VX_OK with *out set, VX_ENOTFOUND when the key is not
     * in the schema or has no value (nothing set, no default; *out is left
     * alone, so preset it to a fallback), or VX_EINVAL when the value is not
     * of that type (e.g. config_bool on an enum key). config_get keeps
     * returning the raw text.
     *   config_int          VX_CFG_INT (any integer text)
     *   config_float        VX_CFG_FLOAT or INT
     *   config_bool         VX_CFG_BOOL: 1 or 0
     *   config_duration_ms  VX_CFG_DURATION: "1.5s" -> 1500 (rounded)
     *   config_duration_ns  VX_CFG_DURATION: "1.5s" -> 1500000000
     *   config_size         VX_CFG_SIZE (or a bare INT): "64k" -> 65536 */
    int (*config_int)(vx_host *h, const char *key, int64_t *out);
    int (*config_float)(vx_host *h, const char *key, double *out);
    int (*config_bool)(vx_host *h, const char *key, int *out);
    int (*config_duration_ms)(vx_host *h, const char *key, int64_t *out);
    int (*config_duration_ns)(vx_host *h, const char *key, int64_t *out);
    int (*config_size)(vx_host *h, const char *key, uint64_t *out);
} vx_host_api;

/* True when the host table is new enough to hold `field`. */
#define VX_HOST_HAS(api, field) \
    ((api)->struct_size >= offsetof(vx_host_api, field) + sizeof((api)->field))

/* ---------------------------------------------------------------- audio */

typedef enum vx_sample_encoding { VX_PCM_S16LE = 1 } vx_sample_encoding;

typedef struct vx_audio_format {
    uint32_t sample_rate; /* Hz */
    uint16_t channels;    /* 1 */
    uint16_t encoding;    /* VX_PCM_S16LE */
} vx_audio_format;

/* A plugin's stream object; each plugin defines struct vx_stream itself. */
typedef struct vx_stream vx_stream;

/* ---------------------------------------------------------------- STT */

typedef struct vx_stt_events {
    uint32_t struct_size;
    void *user; /* host's pointer, passed back to every event */
    /* Interim hypothesis for the current utterance (replaces the previous).
     * The utterance's on_final ends its hypotheses: no on_partial follows
     * it until more audio is fed. */
    void (*on_partial)(void *user, const char *text);
    /* Final transcript of an utterance; text may be "" (heard nothing).
     * confidence in [0,1], or negative when unknown. */
    void (*on_final)(void *user, const char *text, float confidence);
    /* The stream failed; no further event follows. */
    void (*on_error)(void *user, const vx_error *err);
} vx_stt_events;

typedef struct vx_stt_vtable {
    uint32_t struct_size;
    /* Open a recognition stream for audio in `fmt`. On success *out is set
     * and events may start; on failure returns VX_E* and fills err. The plugin
     * may refuse a format with VX_ENOTSUP (the host resamples to
     * vx_plugin_info's preferred format, see stt_format). */
    int (*open)(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                vx_stream **out, vx_error *err);
    /* Feed `frames` samples (interleaved by channel). May block briefly. */
    int (*feed)(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err);
    /* End of the current utterance: the plugin delivers exactly one on_final
     * (or on_error) for the audio fed since the previous final. The stream
     * stays usable for the next utterance. */
    int (*finish)(vx_stream *s, vx_error *err);
    void (*cancel)(vx_stream *s);
    /* Release the stream. Blocks until no event can fire any more. */
    void (*close)(vx_stream *s);
    /* Preferred input format (optional; NULL means 16 kHz mono s16le). */
    int (*input_format)(void *inst, vx_audio_format *out);
} vx_stt_vtable;

/* ---------------------------------------------------------------- LLM */

typedef struct vx_message {
    const char *role; /* "system" | "user" | "assistant" */
    const char *content;
} vx_message;

typedef struct vx_llm_params {
    uint32_t struct_size;
    double temperature; /* < 0: plugin default */
    int32_t max_tokens; /* <= 0: plugin default */
    const char *session_id; /* opaque, for plugins that keep per-session state */
    /* --- minor 3 (read only when struct_size >= VX_LLM_PARAMS_SIZE_1_3) --- */
    /* Functions the model may call, a JSON array in the OpenAI Realtime
     * shape: [{"type":"function","name":"get_weather","description":"...",
     * "parameters":{...JSON Schema...}}]. NULL when the client offered none. */
    const char *tools_json;
    /* NULL or "auto": the model decides; "none": no call; "required": at
     * least one call; otherwise the name of the one function to call. */
    const char *tool_choice;
    /* The whole conversation as a JSON array of chat-completions messages,
     * including what msgs[] cannot express: an assistant's calls
     * {"role":"assistant","content":null,"tool_calls":[{"id":"call_1",
     * "type":"function","function":{"name":"f","arguments":"{...}"}}]} and
     * their results {"role":"tool","tool_call_id":"call_1","content":"..."}.
     * NULL when the conversation has no tool turns; msgs[] always holds every
     * text message, so a plugin without tool support can ignore this. */
    const char *messages_json;
} vx_llm_params;

#define VX_LLM_PARAMS_SIZE_1_3 (offsetof(vx_llm_params, messages_json) + sizeof(const char *))

typedef struct vx_usage {
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
} vx_usage;

typedef struct vx_llm_events {
    uint32_t struct_size;
    void *user;
    /* The next piece of the answer (UTF-8, not NUL-terminated). */
    void (*on_token)(void *user, const char *text, size_t len);
    /* Generation complete; usage may be NULL when unknown. No event follows. */
    void (*on_done)(void *user, const vx_usage *usage);
    void (*on_error)(void *user, const vx_error *err);
    /* --- minor 3 (call only when struct_size >= VX_LLM_EVENTS_SIZE_1_3) --- */
    /* The model calls a tool offered in params->tools_json. Calls of one
     * generation are numbered by `index` from 0; the first fragment of a
     * call carries its call_id and function name (both non-NULL), later
     * fragments NULL; `args` is the next piece of the call's JSON arguments
     * (not NUL-terminated, len may be 0). Fragments of different calls may
     * interleave with each other and with on_token. on_done ends the
     * generation as usual. */
    void (*on_tool_call)(void *user, uint32_t index, const char *call_id, const char *name,
                         const char *args, size_t len);
} vx_llm_events;

#define VX_LLM_EVENTS_SIZE_1_3 (offsetof(vx_llm_events, on_tool_call) + sizeof(void (*)(void)))

typedef struct vx_llm_vtable {
    uint32_t struct_size;
    /* Start generating a reply to the conversation msgs[0..n). */
    int (*generate)(void *inst, const vx_message *msgs, size_t n,
                    const vx_llm_params *params, const vx_llm_events *ev,
                    vx_stream **out, vx_error *err);
    void (*cancel)(vx_stream *s);
    void (*close)(vx_stream *s);
} vx_llm_vtable;

/* ---------------------------------------------------------------- TTS */

typedef struct vx_tts_events {
    uint32_t struct_size;
    void *user;
    /* The next chunk of audio, in the format synthesize() reported. */
    void (*on_audio)(void *user, const int16_t *pcm, size_t frames);
    void (*on_done)(void *user);
    void (*on_error)(void *user, const vx_error *err);
} vx_tts_events;

typedef struct vx_tts_vtable {
    uint32_t struct_size;
    /* Speak `text` with `voice` (NULL: the instance default). On success the
     * plugin sets *fmt to the format its on_audio chunks will have. */
    int (*synthesize)(void *inst, const char *text, const char *voice,
                      vx_audio_format *fmt, const vx_tts_events *ev,
                      vx_stream **out, vx_error *err);
    void (*cancel)(vx_stream *s);
    void (*close)(vx_stream *s);
} vx_tts_vtable;

/* ---------------------------------------------------------------- store */

typedef struct vx_store_vtable {
    uint32_t struct_size;
    /* On VX_OK, *val (allocated with host->alloc, freed by the host with
     * host->free) holds *len bytes. VX_ENOTFOUND when absent or expired. */
    int (*get)(void *inst, const char *key, void **val, size_t *len, vx_error *err);
    /* Store val under key for ttl_s seconds (0: no expiry). */
    int (*put)(void *inst, const char *key, const void *val, size_t len,
               uint32_t ttl_s, vx_error *err);
    /* Delete key; deleting a missing key is VX_OK. */
    int (*del)(void *inst, const char *key, vx_error *err);
    /* Cheap liveness check of the backing service; drives GET /ready.
     * Must return within the plugin's configured command timeout. */
    int (*ping)(void *inst, vx_error *err);
} vx_store_vtable;

/* ---------------------------------------------------------------- sink */

/* One finished file of a recording. A recording job is a WAV
 * ("audio/wav", stereo: user left, bot right) and its JSON sidecar
 * ("application/json"); the host uploads them as two calls, the WAV first,
 * so a sidecar in the destination means its WAV is complete there too. */
typedef struct vx_recording {
    uint32_t struct_size;
    const char *path;         /* finished local file, readable for the call */
    const char *session_id;   /* raw session id */
    const char *content_type; /* "audio/wav" or "application/json" */
    uint64_t bytes;           /* size of the file at path */
    double duration_s;        /* of the call the file belongs to */
    int64_t started_unix_ms;  /* when that call started (UTC) */
    const vx_kv *meta; /* extra metadata, n_meta entries (instance, status...) */
    size_t n_meta;
    /* --- minor 2 --- */
    /* Where the file goes, relative to the sink's root: "YYYY/MM/DD/<session
     * id>.wav" (UTC date of started_unix_ms) or ".json". Only [A-Za-z0-9._/-]
     * characters. A sink built for minor 2 reads it only when
     * struct_size >= VX_RECORDING_SIZE_1_2 and otherwise derives the same
     * name from started_unix_ms, session_id and content_type. */
    const char *name;
} vx_recording;

#define VX_RECORDING_SIZE_1_2 (offsetof(vx_recording, name) + sizeof(const char *))

typedef struct vx_sink_vtable {
    uint32_t struct_size;
    /* Upload one finished file. Blocking: it runs on a host upload worker,
     * bounded by the sink's own timeouts (it must return; the host cannot
     * cancel it). The host owns the queue, the retries (exponential backoff
     * with jitter, driven by err->retryable) and the local copy: it deletes
     * the file only after VX_OK, and keeps it in its dead-letter folder when
     * the retries are exhausted or the error is not retryable. An upload must
     * therefore be idempotent (the same name may be uploaded again after a
     * partial failure or a replay) and must never leave a partial object
     * under `name` that looks complete. Credentials refused (HTTP 401/403)
     * are VX_EAUTH with retryable = 0: repeating them cannot help. */
    int (*upload)(void *inst, const vx_recording *rec, vx_error *err);
} vx_sink_vtable;

/* ---------------------------------------------------------------- descriptor */

typedef struct vx_plugin_info {
    uint32_t magic;       /* VX_PLUGIN_MAGIC */
    uint32_t struct_size; /* sizeof(vx_plugin_info) as the plugin was built */
    uint16_t abi_major;   /* VX_ABI_MAJOR */
    uint16_t abi_minor;   /* VX_ABI_MINOR */
    uint32_t kinds;       /* vx_kind bits this plugin implements (at least one) */
    const char *name;     /* file base name, e.g. "store_redis" */
    const char *version;  /* the plugin's own version, e.g. "1.2.0" */
    const char *description; /* one line */
    uint64_t caps;        /* VX_CAP_* */
    const vx_config_key *config; /* schema, NULL-key terminated; may be NULL */

    /* Create one instance from a validated config. Optional (NULL: the
     * instance pointer is NULL). On failure return VX_E* and fill err; the
     * host then refuses to start (or, on reload, keeps the old set). */
    int (*init)(const vx_host_api *host, vx_host *h, const vx_config *cfg,
                void **inst, vx_error *err);
    /* Destroy an instance. Optional. No stream of it is open. */
    void (*shutdown)(void *inst);

    /* One vtable per kind in `kinds`; the others NULL. */
    const vx_stt_vtable *stt;
    const vx_llm_vtable *llm;
    const vx_tts_vtable *tts;
    const vx_store_vtable *store;
    const vx_sink_vtable *sink;

    /* --- minor 1 --- */
    /* Write a short status ("connected", "reconnecting in 400ms") into buf.
     * Optional; returns 0 when healthy, VX_E* otherwise. Called from the
     * host's health thread, never concurrently with init/shutdown. */
    int (*health)(void *inst, char *buf, size_t len);
} vx_plugin_info;

/* Size of the descriptor as ABI 1.0 defined it: the smallest the host accepts. */
#define VX_PLUGIN_INFO_SIZE_1_0 offsetof(vx_plugin_info, health)

/* The single symbol a plugin exports. Called once per loaded file; may return
 * NULL to refuse loading (e.g. the host's ABI is too old for it). Before
 * refusing, say why with host->log(NULL, VX_LOG_ERROR, ...): a NULL handle
 * is allowed in log, vlog and log_enabled (and only there) and logs with
 * a "[plugin]" prefix; the host's refusal line points at that log. Keep
 * the entry free of side effects: it runs for --list-plugins and
 * voxray-plugin-check too. */
typedef const vx_plugin_info *(*vx_plugin_entry_fn)(const vx_host_api *host);
#define VX_PLUGIN_ENTRY_SYMBOL "vx_plugin_entry"

#ifdef __cplusplus
}
#endif
#endif /* VOXRAY_PLUGIN_H */
