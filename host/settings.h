/*
 * The daemon's typed settings, read from a parsed cfg_file after environment
 * overrides, checked against cfg_core_schema. Plugin sections ([plugin.*])
 * are left for plugins.c, which validates them against each plugin's schema.
 */
#ifndef VOXRAY_SETTINGS_H
#define VOXRAY_SETTINGS_H

#include <stddef.h>

#include "base/cfg.h"

#define SETTINGS_MAX_BUCKET_OVERRIDES 16
#define SETTINGS_MAX_BUCKETS 64

enum { STAGE_STT = 0, STAGE_LLM, STAGE_TTS, STAGE_COUNT };

typedef struct bucket_override {
    char family[96];
    double bounds[SETTINGS_MAX_BUCKETS];
    size_t n;
} bucket_override;

typedef struct settings {
    char *config_path;  /* absolute or as given */
    char *config_dir;   /* directory of the config file, for relative paths */
    char listen[300];
    char *plugin_dir;   /* colon-separated, relative entries resolved */
    char *web_root;     /* demo page files */
    int max_sessions;
    int http_threads;
    long long header_timeout_ms;
    long long idle_timeout_ms;
    int max_pending;
    int max_pending_per_ip;
    long long drain_timeout_ms;
    long long health_interval_ms;

    int log_level;
    int log_json;
    int log_transcripts;

    int metrics_enabled;
    char *metrics_allow; /* raw CIDR list, validated */
    int session_sample_rate;

    long long metrics_series_ttl_ms;

    char *store;            /* instance name */
    char *instructions;
    char *voice;
    int max_message_size;
    int max_messages_per_second;
    long long session_idle_timeout_ms;
    long long max_duration_ms;
    int max_output_buffer;
    int max_input_buffer;       /* bytes waiting for the session before reads pause */
    int max_conversation_items;
    int max_conversation_bytes;
    long long max_audio_ahead_ms;
    long long audio_lead_ms;
    /* [turn]: the turn detection sessions start with; semantic_vad
     * thresholds indexed by PROTO_EAGER_* (auto, low, medium, high) */
    int turn_semantic;
    int turn_eagerness;
    int turn_speculative;
    int turn_min_silence_ms;
    int turn_silence_ms[4];
    int turn_hold_ms[4];

    int stt_sample_rate;
    long long stage_timeout_ms[STAGE_COUNT]; /* to the first output */
    long long stage_idle_ms[STAGE_COUNT];    /* between outputs, once started */
    int llm_retries;
    long long llm_backoff_ms;
    int breaker_failures[STAGE_COUNT];
    long long breaker_cooldown_ms[STAGE_COUNT];
    long long session_ttl_ms;
    char *providers[STAGE_COUNT]; /* raw comma-separated lists */

    int rec_enabled;
    char *rec_sink;            /* instance name */
    int rec_sample_rate;       /* 1 in N sessions */
    int rec_audio_rate;        /* Hz of the WAV */
    char *rec_spool_dir;       /* resolved */
    char *rec_dead_letter_dir; /* resolved */
    int rec_queue_size;
    int rec_workers;
    int rec_max_retries;
    long long rec_backoff_ms;
    long long rec_backoff_max_ms;
    long long rec_replay_interval_ms;
    long long rec_shutdown_timeout_ms;
    long long rec_max_backlog;
    char *rec_instance;        /* "" = host name */

    bucket_override buckets[SETTINGS_MAX_BUCKET_OVERRIDES];
    size_t n_buckets;

    char *allowed_origins;     /* raw comma-separated list, validated */
    char *trusted_proxies;     /* raw CIDR list, validated */
    int max_sessions_per_ip;   /* 0: no limit */
    double max_upgrades_per_second_per_ip; /* 0: no limit */
    char *auth_api_keys;       /* raw comma-separated list (secret) */
    char *auth_keys_file;      /* resolved; "" when not set */
    long long client_secret_max_ttl_ms;
    int max_client_secrets;

    int webrtc_enabled;
    int webrtc_max_peers;
    int webrtc_port_min, webrtc_port_max; /* 0: any */
    char *webrtc_stun_server;  /* "" = none */
    char *webrtc_turn_server;  /* "" = none */
    char *webrtc_public_address; /* "" = none */
    long long webrtc_connect_timeout_ms;
    long long webrtc_rtp_timeout_ms;
} settings;

/* Histogram families whose buckets [metrics] buckets.<family> may set. */
extern const char *const settings_histogram_families[];

/* Apply environment overrides for every core key, reject unknown sections
 * and keys and bad values, and fill s. Returns 0 or -1 with one line in err.
 * On success the caller frees s with settings_free(). */
int settings_load(cfg_file *c, settings *s, char *err, size_t errlen);
void settings_free(settings *s);

/* Split "a, b ,c" into at most max trimmed names (malloc'd each; free with
 * free()). Returns the count, or -1 on an empty element or too many. */
int settings_split_list(const char *list, char **out, int max);

const char *stage_name(int stage);

/* The keys SIGHUP applies to a running server, kept apart from the
 * settings struct (which threads read without a lock): [server]
 * max_sessions, drain_timeout, health_interval; [session] ttl,
 * instructions, voice, idle_timeout, max_duration; [recording] sample_rate, max_retries, retry_backoff,
 * retry_backoff_max. Set from s at start and on every reload (main
 * thread), read from any thread; a reader sees the old or the new value,
 * never a mix. settings_live_free at exit. */
void settings_live_set(const settings *s);
void settings_live_free(void);
int settings_live_max_sessions(void);
long long settings_live_drain_timeout_ms(void);
long long settings_live_health_interval_ms(void);
long long settings_live_session_ttl_ms(void);
long long settings_live_max_duration_ms(void);
long long settings_live_session_idle_ms(void);
int settings_live_rec_sample_rate(void);
int settings_live_rec_max_retries(void);
long long settings_live_rec_backoff_ms(void);
long long settings_live_rec_backoff_max_ms(void);
/* A copy of [session] instructions / voice (free it), NULL when the key is
 * empty or memory ran out. */
char *settings_live_instructions(void);
char *settings_live_voice(void);

#endif
