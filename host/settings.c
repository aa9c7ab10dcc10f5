/*
 * Core settings: validation of the host's own sections.
 */
#include "config.h"

#include "settings.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/acl.h"
#include "base/log.h"
#include "metrics.h"

const char *const settings_histogram_families[] = {
    "http_request_duration_seconds",
    "voxray_plugin_call_duration_seconds",
    "stt_time_to_first_token_seconds",
    "stt_transcription_latency_seconds",
    "stt_streaming_lag_seconds",
    "llm_time_to_first_token_seconds",
    "llm_generation_latency_seconds",
    "llm_inter_token_latency_seconds",
    "tts_time_to_first_audio_chunk_seconds",
    "tts_synthesis_latency_seconds",
    "tts_streaming_lag_seconds",
    "voxray_session_duration_seconds",
    "voxray_request_length_words",
    "voxray_reply_length_words",
    NULL,
};

const char *stage_name(int stage)
{
    static const char *const names[] = {"stt", "llm", "tts"};
    return stage >= 0 && stage < STAGE_COUNT ? names[stage] : "?";
}

int settings_split_list(const char *list, char **out, int max)
{
    int n = 0;
    const char *p = list;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        if (s == e || n == max) goto fail;
        out[n] = strndup(s, (size_t)(e - s));
        if (out[n] == NULL) goto fail;
        n++;
        if (comma == NULL) break;
        p = comma + 1;
    }
    return n;
fail:
    for (int i = 0; i < n; i++) free(out[i]);
    return -1;
}

/* Join dir and a relative path; absolute paths are kept. */
static char *resolve_path(const char *dir, const char *p)
{
    char *r = NULL;
    if (p[0] == '/' || dir == NULL || *dir == '\0') return strdup(p);
    if (asprintf(&r, "%s/%s", dir, p) < 0) return NULL;
    return r;
}

static char *resolve_path_list(const char *dir, const char *list)
{
    size_t cap = strlen(list) * 2 + strlen(dir ? dir : "") * 8 + 16, len = 0;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    out[0] = '\0';
    const char *p = list;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (l > 0) {
            char *one = strndup(p, l);
            char *abs = one ? resolve_path(dir, one) : NULL;
            free(one);
            if (abs == NULL) goto fail;
            size_t al = strlen(abs);
            if (len + al + 2 > cap) {
                cap = (len + al + 2) * 2;
                char *no = realloc(out, cap);
                if (no == NULL) {
                    free(abs);
                    goto fail;
                }
                out = no;
            }
            if (len) out[len++] = ':';
            memcpy(out + len, abs, al + 1);
            len += al;
            free(abs);
        }
        if (colon == NULL) break;
        p = colon + 1;
    }
    return out;
fail:
    free(out);
    return NULL;
}

/* [server] allowed_origins: every entry is scheme://host[:port] with scheme
 * http or https and nothing after the authority, as browsers send Origin. */
static int check_origins(const char *list, char *why, size_t len)
{
    char *o[256];
    int n = settings_split_list(list, o, 256), rc = 0;
    if (n < 0) {
        snprintf(why, len, "empty entry or more than 256 origins");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *h = strncasecmp(o[i], "https://", 8) == 0 ? o[i] + 8
                      : strncasecmp(o[i], "http://", 7) == 0 ? o[i] + 7 : NULL;
        size_t hl = h ? strlen(h) : 0;
        if (hl > 0 && h[hl - 1] == '/') hl--; /* "https://a.example/" is fine */
        if (rc == 0 && (h == NULL || hl == 0 || strcspn(h, "/?#@ \t") < hl)) {
            snprintf(why, len, "'%.100s' is not an origin (scheme://host[:port], no path)", o[i]);
            rc = -1;
        }
        free(o[i]);
    }
    return rc;
}

static const vx_config_key *core_key(const char *section, const char *key)
{
    for (const cfg_key *k = cfg_core_schema; k->section; k++)
        if (strcmp(k->section, section) == 0 && strcmp(k->k.key, key) == 0) return &k->k;
    return NULL;
}

/* Value of a core key: the (validated) entry or the default. */
static const char *get(cfg_file *c, const char *section, const char *key)
{
    cfg_item *it = cfg_find(c, section, key);
    if (it) return it->value;
    const vx_config_key *k = core_key(section, key);
    return k && k->def ? k->def : "";
}

static long long get_int(cfg_file *c, const char *section, const char *key)
{
    long long v = 0;
    const char *s = get(c, section, key);
    const vx_config_key *k = core_key(section, key);
    if (k && k->type == VX_CFG_DURATION) cfg_parse_duration_ms(s, &v);
    else cfg_parse_int(s, &v);
    return v;
}

static int get_bool(cfg_file *c, const char *section, const char *key)
{
    int b = 0;
    cfg_parse_bool(get(c, section, key), &b);
    return b;
}

static void allowed_keys(const char *section, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        if (strcmp(k->section, section) != 0) continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", k->k.key);
        if (w < 0 || (size_t)w >= len - off) break;
        off += (size_t)w;
    }
    if (strcmp(section, "metrics") == 0 && off < len)
        snprintf(buf + off, len - off, ", buckets.<histogram family>");
}

static int is_bucket_key(const char *section, const char *key, const char **family)
{
    if (strcmp(section, "metrics") != 0 || strncmp(key, "buckets.", 8) != 0) return 0;
    *family = key + 8;
    return 1;
}

int settings_load(cfg_file *c, settings *s, char *err, size_t errlen)
{
    char where[512], why[256];
    memset(s, 0, sizeof *s);

    /* The environment wins over the file, for every key we know. */
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        if (cfg_apply_env(c, k->section, k->k.key) < 0) goto oom;
    }
    for (int i = 0; settings_histogram_families[i]; i++) {
        char key[128];
        snprintf(key, sizeof key, "buckets.%s", settings_histogram_families[i]);
        if (cfg_apply_env(c, "metrics", key) < 0) goto oom;
    }

    for (size_t i = 0; i < c->n_sections; i++) {
        const cfg_section *sec = &c->sections[i];
        if (cfg_is_core_section(sec->name) ||
            (strncmp(sec->name, "plugin.", 7) == 0 && sec->name[7] != '\0'))
            continue;
        if (strcmp(sec->name, "plugin.") == 0 || strcmp(sec->name, "plugin") == 0) {
            snprintf(err, errlen, "%s:%d: a plugin section needs a name: [plugin.NAME]",
                     c->path && *c->path ? c->path : "config", sec->line);
            return -1;
        }
        snprintf(err, errlen, "%s:%d: unknown section [%s] (allowed: server, log, metrics, session, stt, llm, tts, recording, auth, plugin.NAME)",
                 c->path && *c->path ? c->path : "config", sec->line, sec->name);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++) {
        cfg_item *it = &c->items[i];
        const char *family;
        if (strncmp(it->section, "plugin.", 7) == 0) {
            if (it->section[7] == '\0') {
                snprintf(err, errlen, "%s: a plugin section needs a name: [plugin.NAME]",
                         cfg_where(c, it, where, sizeof where));
                return -1;
            }
            continue; /* validated against the plugin's schema later */
        }
        if (!cfg_is_core_section(it->section)) {
            snprintf(err, errlen,
                     "%s: unknown section [%s] (allowed: server, log, metrics, session, stt, llm, tts, recording, auth, plugin.NAME)",
                     cfg_where(c, it, where, sizeof where), it->section);
            return -1;
        }
        if (is_bucket_key(it->section, it->key, &family)) {
            int known = 0;
            for (int j = 0; settings_histogram_families[j]; j++)
                if (strcmp(settings_histogram_families[j], family) == 0) known = 1;
            if (!known) {
                char fams[1024];
                size_t off = 0;
                fams[0] = '\0';
                for (int j = 0; settings_histogram_families[j] && off < sizeof fams; j++)
                    off += (size_t)snprintf(fams + off, sizeof fams - off, "%s%s", j ? ", " : "",
                                            settings_histogram_families[j]);
                snprintf(err, errlen, "%s: no histogram family named '%s' (allowed: %s)",
                         cfg_where(c, it, where, sizeof where), family, fams);
                return -1;
            }
            if (s->n_buckets == SETTINGS_MAX_BUCKET_OVERRIDES) {
                snprintf(err, errlen, "%s: too many bucket overrides", cfg_where(c, it, where, sizeof where));
                return -1;
            }
            bucket_override *b = &s->buckets[s->n_buckets];
            int n = metrics_parse_buckets(it->value, b->bounds, SETTINGS_MAX_BUCKETS, why, sizeof why);
            if (n <= 0) {
                snprintf(err, errlen, "%s = \"%s\": %s (allowed: increasing numbers separated by commas)",
                         cfg_where(c, it, where, sizeof where), it->value,
                         n == 0 ? "no buckets" : why);
                return -1;
            }
            snprintf(b->family, sizeof b->family, "%s", family);
            b->n = (size_t)n;
            s->n_buckets++;
            it->used = 1;
            continue;
        }
        const vx_config_key *k = core_key(it->section, it->key);
        if (k == NULL) {
            char keys[512];
            allowed_keys(it->section, keys, sizeof keys);
            snprintf(err, errlen, "%s: unknown key '%s' in [%s] (allowed: %s)",
                     cfg_where(c, it, where, sizeof where), it->key, it->section, keys);
            return -1;
        }
        if (cfg_check_value(k, it->value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s = \"%s\": %s", cfg_where(c, it, where, sizeof where),
                     (k->flags & VX_CFG_SECRET) ? "***" : it->value, why);
            return -1;
        }
        it->used = 1;
    }

    /* Cross-field checks. */
    {
        char host[256];
        int port;
        snprintf(s->listen, sizeof s->listen, "%s", get(c, "server", "listen"));
        if (cfg_parse_address(s->listen, host, sizeof host, &port) != 0) {
            snprintf(err, errlen, "[server] listen = \"%s\": not an address", s->listen);
            return -1;
        }
    }
    const char *allow = get(c, "metrics", "allow");
    if (*allow) {
        acl *a = NULL;
        if (acl_parse(allow, &a, why, sizeof why) != 0) {
            cfg_item *it = cfg_find(c, "metrics", "allow");
            snprintf(err, errlen, "%s = \"%s\": %s (allowed: comma-separated CIDRs like 127.0.0.0/8, ::1/128)",
                     it ? cfg_where(c, it, where, sizeof where) : "[metrics] allow", allow, why);
            return -1;
        }
        acl_free(a);
    }

    const char *proxies = get(c, "server", "trusted_proxies");
    if (*proxies) {
        acl *a = NULL;
        if (acl_parse(proxies, &a, why, sizeof why) != 0) {
            cfg_item *it = cfg_find(c, "server", "trusted_proxies");
            snprintf(err, errlen, "%s = \"%s\": %s (allowed: comma-separated CIDRs like 10.0.0.0/8, ::1/128)",
                     it ? cfg_where(c, it, where, sizeof where) : "[server] trusted_proxies", proxies, why);
            return -1;
        }
        acl_free(a);
    }
    const char *origins = get(c, "server", "allowed_origins");
    if (check_origins(origins, why, sizeof why) != 0) {
        cfg_item *it = cfg_find(c, "server", "allowed_origins");
        snprintf(err, errlen, "%s = \"%s\": %s (allowed: comma-separated origins like https://app.example.com or http://localhost:8080)",
                 it ? cfg_where(c, it, where, sizeof where) : "[server] allowed_origins", origins, why);
        return -1;
    }

    /* Paths relative to the config file. */
    {
        const char *slash = c->path ? strrchr(c->path, '/') : NULL;
        s->config_path = strdup(c->path ? c->path : "");
        s->config_dir = slash ? strndup(c->path, (size_t)(slash - c->path)) : strdup(".");
        if (!s->config_path || !s->config_dir) goto oom;
    }
    s->plugin_dir = resolve_path_list(s->config_dir, get(c, "server", "plugin_dir"));
    s->web_root = resolve_path(s->config_dir, get(c, "server", "web_root"));
    s->metrics_allow = strdup(allow);
    s->store = strdup(get(c, "session", "store"));
    if (!s->plugin_dir || !s->web_root || !s->metrics_allow || !s->store) goto oom;
    if (*s->store == '\0') {
        cfg_item *it = cfg_find(c, "session", "store");
        snprintf(err, errlen, "%s = \"\": must not be empty (allowed: a session-store plugin instance such as memory or redis)",
                 it ? cfg_where(c, it, where, sizeof where) : "[session] store");
        settings_free(s);
        return -1;
    }
    for (int st = 0; st < STAGE_COUNT; st++) {
        const char *list = get(c, stage_name(st), "providers");
        char *names[16];
        int n = settings_split_list(list, names, 16);
        if (n < 0) {
            cfg_item *it = cfg_find(c, stage_name(st), "providers");
            snprintf(err, errlen, "%s = \"%s\": empty name or more than 16 providers (allowed: comma-separated plugin instance names)",
                     it ? cfg_where(c, it, where, sizeof where) : stage_name(st), list);
            settings_free(s);
            return -1;
        }
        for (int i = 0; i < n; i++) free(names[i]);
        s->providers[st] = strdup(list);
        if (s->providers[st] == NULL) goto oom;
    }

    s->max_sessions = (int)get_int(c, "server", "max_sessions");
    s->http_threads = (int)get_int(c, "server", "http_threads");
    s->header_timeout_ms = get_int(c, "server", "header_timeout");
    s->idle_timeout_ms = get_int(c, "server", "idle_timeout");
    s->max_pending = (int)get_int(c, "server", "max_pending");
    s->max_pending_per_ip = (int)get_int(c, "server", "max_pending_per_ip");
    s->drain_timeout_ms = get_int(c, "server", "drain_timeout");
    s->health_interval_ms = get_int(c, "server", "health_interval");
    s->log_level = log_level_parse(get(c, "log", "level"));
    s->log_json = get_bool(c, "log", "json");
    s->log_transcripts = get_bool(c, "log", "transcripts");
    s->metrics_enabled = get_bool(c, "metrics", "enabled");
    s->session_sample_rate = (int)get_int(c, "metrics", "session_sample_rate");
    s->session_ttl_ms = get_int(c, "session", "ttl");
    s->metrics_series_ttl_ms = get_int(c, "metrics", "series_ttl");
    s->max_message_size = (int)get_int(c, "session", "max_message_size");
    s->max_messages_per_second = (int)get_int(c, "session", "max_messages_per_second");
    s->session_idle_timeout_ms = get_int(c, "session", "idle_timeout");
    s->max_duration_ms = get_int(c, "session", "max_duration");
    s->max_output_buffer = (int)get_int(c, "session", "max_output_buffer");
    s->max_input_buffer = (int)get_int(c, "session", "max_input_buffer");
    s->max_conversation_items = (int)get_int(c, "session", "max_conversation_items");
    s->max_conversation_bytes = (int)get_int(c, "session", "max_conversation_bytes");
    s->max_audio_ahead_ms = get_int(c, "session", "max_audio_ahead");
    s->audio_lead_ms = get_int(c, "session", "audio_lead");
    s->stt_sample_rate = (int)get_int(c, "stt", "sample_rate");
    s->turn_semantic = strcmp(get(c, "turn", "detection"), "semantic_vad") == 0;
    {
        static const char *const eager[] = {"auto", "low", "medium", "high"};
        const char *e = get(c, "turn", "eagerness");
        s->turn_eagerness = 0;
        for (int i = 0; i < 4; i++) {
            char k[24];
            if (strcmp(e, eager[i]) == 0) s->turn_eagerness = i;
            snprintf(k, sizeof k, "silence_%s", eager[i]);
            s->turn_silence_ms[i] = (int)get_int(c, "turn", k);
            snprintf(k, sizeof k, "hold_%s", eager[i]);
            s->turn_hold_ms[i] = (int)get_int(c, "turn", k);
        }
    }
    s->turn_speculative = get_bool(c, "turn", "speculative");
    s->turn_min_silence_ms = (int)get_int(c, "turn", "min_silence");
    s->llm_retries = (int)get_int(c, "llm", "retries");
    s->llm_backoff_ms = get_int(c, "llm", "retry_backoff");
    for (int st = 0; st < STAGE_COUNT; st++) {
        s->stage_timeout_ms[st] = get_int(c, stage_name(st), "timeout");
        s->stage_idle_ms[st] = get_int(c, stage_name(st), "idle_timeout");
        s->breaker_failures[st] = (int)get_int(c, stage_name(st), "breaker_failures");
        s->breaker_cooldown_ms[st] = get_int(c, stage_name(st), "breaker_cooldown");
    }
    s->rec_enabled = get_bool(c, "recording", "enabled");
    s->rec_sample_rate = (int)get_int(c, "recording", "sample_rate");
    s->rec_audio_rate = (int)get_int(c, "recording", "audio_rate");
    s->rec_queue_size = (int)get_int(c, "recording", "queue_size");
    s->rec_workers = (int)get_int(c, "recording", "workers");
    s->rec_max_retries = (int)get_int(c, "recording", "max_retries");
    s->rec_backoff_ms = get_int(c, "recording", "retry_backoff");
    s->rec_backoff_max_ms = get_int(c, "recording", "retry_backoff_max");
    s->rec_replay_interval_ms = get_int(c, "recording", "replay_interval");
    s->rec_shutdown_timeout_ms = get_int(c, "recording", "shutdown_upload_timeout");
    s->rec_max_backlog = get_int(c, "recording", "max_backlog");
    s->rec_sink = strdup(get(c, "recording", "sink"));
    s->rec_spool_dir = resolve_path(s->config_dir, get(c, "recording", "spool_dir"));
    s->rec_dead_letter_dir = resolve_path(s->config_dir, get(c, "recording", "dead_letter_dir"));
    s->rec_instance = strdup(get(c, "recording", "instance"));
    if (!s->rec_sink || !s->rec_spool_dir || !s->rec_dead_letter_dir || !s->rec_instance) goto oom;
    if (s->rec_enabled && *s->rec_sink == '\0') {
        cfg_item *it = cfg_find(c, "recording", "sink");
        snprintf(err, errlen, "%s = \"\": must not be empty when recording is enabled (allowed: a recording-sink plugin instance such as file or s3)",
                 it ? cfg_where(c, it, where, sizeof where) : "[recording] sink");
        settings_free(s);
        return -1;
    }
    if (s->rec_enabled && strcmp(s->rec_spool_dir, s->rec_dead_letter_dir) == 0) {
        snprintf(err, errlen, "[recording] spool_dir and dead_letter_dir are the same folder (%s): give the dead letters a folder of their own",
                 s->rec_spool_dir);
        settings_free(s);
        return -1;
    }
    s->instructions = strdup(get(c, "session", "instructions"));
    s->voice = strdup(get(c, "session", "voice"));
    if (!s->instructions || !s->voice) goto oom;
    s->allowed_origins = strdup(origins);
    s->trusted_proxies = strdup(proxies);
    s->max_sessions_per_ip = (int)get_int(c, "server", "max_sessions_per_ip");
    cfg_parse_double(get(c, "server", "max_upgrades_per_second_per_ip"), &s->max_upgrades_per_second_per_ip);
    s->auth_api_keys = strdup(get(c, "auth", "api_keys"));
    {
        const char *kf = get(c, "auth", "keys_file");
        s->auth_keys_file = *kf ? resolve_path(s->config_dir, kf) : strdup("");
    }
    s->client_secret_max_ttl_ms = get_int(c, "auth", "client_secret_max_ttl");
    s->max_client_secrets = (int)get_int(c, "auth", "max_client_secrets");
    if (!s->allowed_origins || !s->trusted_proxies || !s->auth_api_keys || !s->auth_keys_file) goto oom;

    s->webrtc_enabled = get_bool(c, "webrtc", "enabled");
    s->webrtc_max_peers = (int)get_int(c, "webrtc", "max_peers");
    s->webrtc_port_min = (int)get_int(c, "webrtc", "port_min");
    s->webrtc_port_max = (int)get_int(c, "webrtc", "port_max");
    s->webrtc_connect_timeout_ms = get_int(c, "webrtc", "connect_timeout");
    s->webrtc_rtp_timeout_ms = get_int(c, "webrtc", "rtp_timeout");
    if ((s->webrtc_port_min == 0) != (s->webrtc_port_max == 0) || s->webrtc_port_min > s->webrtc_port_max) {
        snprintf(err, errlen, "[webrtc] port_min = %d, port_max = %d: set both (port_min <= port_max) or neither",
                 s->webrtc_port_min, s->webrtc_port_max);
        settings_free(s);
        return -1;
    }
    {
        const char *stun = get(c, "webrtc", "stun_server"), *turn = get(c, "webrtc", "turn_server");
        const char *pub = get(c, "webrtc", "public_address");
        unsigned char addr[16];
        if (*stun && strncmp(stun, "stun://", 7) != 0) {
            snprintf(err, errlen, "[webrtc] stun_server = \"%s\": expected stun://host:port", stun);
            settings_free(s);
            return -1;
        }
        if (*turn && strncmp(turn, "turn://", 7) != 0 && strncmp(turn, "turns://", 8) != 0) {
            snprintf(err, errlen, "[webrtc] turn_server: expected turn://user:password@host:port or turns://...");
            settings_free(s);
            return -1;
        }
        if (*pub && inet_pton(AF_INET, pub, addr) != 1 && inet_pton(AF_INET6, pub, addr) != 1) {
            snprintf(err, errlen, "[webrtc] public_address = \"%s\": expected an IPv4 or IPv6 address", pub);
            settings_free(s);
            return -1;
        }
        s->webrtc_stun_server = strdup(stun);
        s->webrtc_turn_server = strdup(turn);
        s->webrtc_public_address = strdup(pub);
        if (!s->webrtc_stun_server || !s->webrtc_turn_server || !s->webrtc_public_address) goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory reading the configuration");
    settings_free(s);
    return -1;
}

void settings_free(settings *s)
{
    free(s->config_path);
    free(s->config_dir);
    free(s->plugin_dir);
    free(s->web_root);
    free(s->metrics_allow);
    free(s->store);
    free(s->instructions);
    free(s->voice);
    free(s->rec_sink);
    free(s->rec_spool_dir);
    free(s->rec_dead_letter_dir);
    free(s->rec_instance);
    for (int i = 0; i < STAGE_COUNT; i++) free(s->providers[i]);
    free(s->allowed_origins);
    free(s->trusted_proxies);
    free(s->auth_api_keys);
    free(s->auth_keys_file);
    free(s->webrtc_stun_server);
    free(s->webrtc_turn_server);
    free(s->webrtc_public_address);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ live keys */

static atomic_int g_max_sessions = 1000, g_rec_sample_rate = 1, g_rec_max_retries = 3;
static atomic_llong g_drain_ms = 10000, g_health_ms = 500, g_ttl_ms = 3600000, g_rec_backoff_ms = 1000,
                    g_rec_backoff_max_ms = 60000, g_max_duration_ms = 3600000, g_sess_idle_ms = 120000;
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_instructions, *g_voice; /* under g_live_lock */

void settings_live_set(const settings *s)
{
    atomic_store(&g_max_sessions, s->max_sessions);
    atomic_store(&g_drain_ms, s->drain_timeout_ms);
    atomic_store(&g_health_ms, s->health_interval_ms);
    atomic_store(&g_ttl_ms, s->session_ttl_ms);
    atomic_store(&g_max_duration_ms, s->max_duration_ms);
    atomic_store(&g_sess_idle_ms, s->session_idle_timeout_ms);
    atomic_store(&g_rec_sample_rate, s->rec_sample_rate);
    atomic_store(&g_rec_max_retries, s->rec_max_retries);
    atomic_store(&g_rec_backoff_ms, s->rec_backoff_ms);
    atomic_store(&g_rec_backoff_max_ms, s->rec_backoff_max_ms);
    /* Out of memory keeps the text in force. */
    char *in = strdup(s->instructions), *vo = strdup(s->voice);
    pthread_mutex_lock(&g_live_lock);
    if (in) {
        free(g_instructions);
        g_instructions = in;
    }
    if (vo) {
        free(g_voice);
        g_voice = vo;
    }
    pthread_mutex_unlock(&g_live_lock);
}

void settings_live_free(void)
{
    pthread_mutex_lock(&g_live_lock);
    free(g_instructions);
    free(g_voice);
    g_instructions = g_voice = NULL;
    pthread_mutex_unlock(&g_live_lock);
}

int settings_live_max_sessions(void) { return atomic_load(&g_max_sessions); }
long long settings_live_drain_timeout_ms(void) { return atomic_load(&g_drain_ms); }
long long settings_live_health_interval_ms(void) { return atomic_load(&g_health_ms); }
long long settings_live_session_ttl_ms(void) { return atomic_load(&g_ttl_ms); }
long long settings_live_max_duration_ms(void) { return atomic_load(&g_max_duration_ms); }
long long settings_live_session_idle_ms(void) { return atomic_load(&g_sess_idle_ms); }
int settings_live_rec_sample_rate(void) { return atomic_load(&g_rec_sample_rate); }
int settings_live_rec_max_retries(void) { return atomic_load(&g_rec_max_retries); }
long long settings_live_rec_backoff_ms(void) { return atomic_load(&g_rec_backoff_ms); }
long long settings_live_rec_backoff_max_ms(void) { return atomic_load(&g_rec_backoff_max_ms); }

static char *dup_live(char *const *p)
{
    pthread_mutex_lock(&g_live_lock);
    char *c = *p && **p ? strdup(*p) : NULL;
    pthread_mutex_unlock(&g_live_lock);
    return c;
}

char *settings_live_instructions(void) { return dup_live(&g_instructions); }
char *settings_live_voice(void) { return dup_live(&g_voice); }
