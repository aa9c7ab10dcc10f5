/*
 * INI parsing with inih, environment overrides and value validation.
 */
#include "config.h"

#include "base/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CFG_MAX_LINE (1 << 20)

#ifndef VX_WEBDIR
#define VX_WEBDIR "/usr/local/share/voxray/web"
#endif
#ifndef VX_PLUGIN_DIR
#define VX_PLUGIN_DIR "/usr/local/lib/voxray"
#endif

/* The core keys. Issue-by-issue additions go here; the checker and
 * --check-config pick them up without further code. */
const cfg_key cfg_core_schema[] = {
    {"server", {"listen", VX_CFG_ADDRESS, "0.0.0.0:8080", "address and port for HTTP and WebSocket (one port)", 0, 0, NULL, 0}},
    {"server", {"plugin_dir", VX_CFG_STRING, VX_PLUGIN_DIR, "where NAME.so plugin files are looked up; a colon-separated list is searched in order; relative paths are relative to the config file", 0, 4096, NULL, 0}},
    {"server", {"max_sessions", VX_CFG_INT, "1000", "most concurrent sessions; /ready answers 503 at the limit", 1, 1000000, NULL, 0}},
    {"server", {"http_threads", VX_CFG_INT, "2", "HTTP worker threads", 1, 64, NULL, 0}},
    {"server", {"header_timeout", VX_CFG_DURATION, "5s", "time a client has, from connecting, to send its whole request head (a total deadline: a head sent byte by byte is cut off all the same); a later head on a kept-alive connection gets as long from its first byte", 100, 600000, NULL, 0}},
    {"server", {"idle_timeout", VX_CFG_DURATION, "60s", "idle keep-alive HTTP connections are closed after this", 1000, 3600000, NULL, 0}},
    {"server", {"max_pending", VX_CFG_INT, "1024", "most connections waiting for their request head; when another comes, the one waiting longest gets 503", 1, 1000000, NULL, 0}},
    {"server", {"max_pending_per_ip", VX_CFG_INT, "64", "most connections from one client address (IPv6: per /64) waiting for their request head longer than 1 s (or half header_timeout); beyond that the address's one waiting longest gets 429 (0: no limit; addresses in trusted_proxies are exempt)", 0, 1000000, NULL, 0}},
    {"server", {"drain_timeout", VX_CFG_DURATION, "10s", "on SIGTERM, how long live sessions may finish before exit", 0, 3600000, NULL, 0}},
    {"server", {"health_interval", VX_CFG_DURATION, "500ms", "how often the session store is pinged for /ready", 50, 60000, NULL, 0}},
    {"server", {"web_root", VX_CFG_STRING, VX_WEBDIR, "folder with the demo page served at / (relative to the config file)", 0, 4096, NULL, 0}},
    {"server", {"allowed_origins", VX_CFG_STRING, "", "comma-separated origins (https://app.example.com) browsers may open /v1/realtime from; an upgrade with another Origin gets 403 (empty: any; upgrades without Origin always pass)", 0, 8192, NULL, 0}},
    {"server", {"trusted_proxies", VX_CFG_STRING, "", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client (the right-most address not in this list); empty: the TCP peer is the client", 0, 4096, NULL, 0}},
    {"server", {"max_sessions_per_ip", VX_CFG_INT, "0", "most concurrent /v1/realtime sessions per client IP (IPv6: per /64); more get 429 (0: no limit)", 0, 1000000, NULL, 0}},
    {"server", {"max_upgrades_per_second_per_ip", VX_CFG_FLOAT, "0", "/v1/realtime upgrades a client IP may start per second, with bursts of as many (at least 1); more get 429 (0: no limit)", 0, 1000000, NULL, 0}},
    {"webrtc", {"enabled", VX_CFG_BOOL, "true", "serve WebRTC calls at POST /v1/realtime/calls (SDP offer in, SDP answer out; events on the oai-events data channel, audio as Opus)", 0, 0, NULL, 0}},
    {"webrtc", {"max_peers", VX_CFG_INT, "100", "most concurrent WebRTC peer connections (each also counts against [server] max_sessions); more get 503", 1, 100000, NULL, 0}},
    {"webrtc", {"port_min", VX_CFG_INT, "0", "lowest local UDP port for ICE candidates (0: any port the system gives)", 0, 65535, NULL, 0}},
    {"webrtc", {"port_max", VX_CFG_INT, "0", "highest local UDP port for ICE candidates (0: any; with port_min, the range must hold at least one port per peer)", 0, 65535, NULL, 0}},
    {"webrtc", {"stun_server", VX_CFG_STRING, "", "STUN server for server-reflexive candidates, stun://host:port (empty: host candidates only)", 0, 1024, NULL, 0}},
    {"webrtc", {"turn_server", VX_CFG_STRING, "", "TURN relay, turn(s)://user:password@host:port (empty: none)", 0, 1024, NULL, 0}},
    {"webrtc", {"public_address", VX_CFG_STRING, "", "IP address advertised in the answer's host candidates instead of the local one (a server behind 1:1 NAT); empty: the local addresses", 0, 64, NULL, 0}},
    {"webrtc", {"connect_timeout", VX_CFG_DURATION, "10s", "a peer whose ICE is not connected this long after its answer is hung up (webrtc_connection_failures_total{reason=\"ice_timeout\"})", 500, 600000, NULL, 0}},
    {"webrtc", {"rtp_timeout", VX_CFG_DURATION, "20s", "a connected peer that sends no audio this long is hung up (reason rtp_timeout)", 1000, 3600000, NULL, 0}},
    {"log", {"level", VX_CFG_ENUM, "info", "least severe level written", 0, 0, "debug|info|warn|error", 0}},
    {"log", {"json", VX_CFG_BOOL, "false", "one JSON object per line instead of text", 0, 0, NULL, 0}},
    {"log", {"transcripts", VX_CFG_BOOL, "false", "log what callers said and the replies at INFO (otherwise only at DEBUG): personal data", 0, 0, NULL, 0}},
    {"metrics", {"enabled", VX_CFG_BOOL, "true", "serve GET /metrics (404 when false)", 0, 0, NULL, 0}},
    {"metrics", {"allow", VX_CFG_STRING, "", "comma-separated CIDR allowlist for /metrics (empty: everyone); others get 403", 0, 4096, NULL, 0}},
    {"metrics", {"session_sample_rate", VX_CFG_INT, "100", "1 in N sessions keeps a hashed session_id label (1: all)", 1, 1000000, NULL, 0}},
    {"metrics", {"series_ttl", VX_CFG_DURATION, "10m", "series labelled with an ended session's id are removed after this", 0, 86400000, NULL, 0}},
    {"session", {"store", VX_CFG_STRING, "memory", "session-store plugin instance (memory, redis, or a [plugin.NAME] section)", 0, 128, NULL, 0}},
    {"session", {"ttl", VX_CFG_DURATION, "3600s", "how long a session's state is kept in the store", 1000, 31536000000.0, NULL, 0}},
    {"session", {"instructions", VX_CFG_STRING, "You are a helpful voice assistant. Keep your answers short.", "default system prompt (session.update instructions replace it)", 0, 65536, NULL, 0}},
    {"session", {"voice", VX_CFG_STRING, "", "default TTS voice (empty: the provider's)", 0, 128, NULL, 0}},
    {"session", {"max_message_size", VX_CFG_INT, "4194304", "largest client WebSocket message in bytes; larger ones close the socket with 1009", 1024, 67108864, NULL, 0}},
    {"session", {"max_messages_per_second", VX_CFG_INT, "500", "client messages per second above which the socket is closed with 1008", 1, 1000000, NULL, 0}},
    {"session", {"idle_timeout", VX_CFG_DURATION, "120s", "a session with no client message for this long is closed (0: never)", 0, 86400000, NULL, 0}},
    {"session", {"max_duration", VX_CFG_DURATION, "3600s", "a session is closed after this long (0: never)", 0, 604800000, NULL, 0}},
    {"session", {"audio_lead", VX_CFG_DURATION, "300ms", "how far ahead of real time reply audio is sent; a barge-in stops what is not sent yet (0: send audio as fast as it is synthesized)", 0, 60000, NULL, 0}},
    {"session", {"max_input_buffer", VX_CFG_INT, "4194304", "bytes of client messages waiting for their session above which the socket is not read until half is worked through (backpressure)", 65536, 1073741824, NULL, 0}},
    {"session", {"max_audio_ahead", VX_CFG_DURATION, "60s", "audio a client may send ahead of real time before its socket is read at real time only (backpressure)", 1000, 3600000, NULL, 0}},
    {"session", {"max_conversation_items", VX_CFG_INT, "2000", "items a conversation keeps; beyond, the oldest are dropped (conversation.item.deleted)", 2, 1000000, NULL, 0}},
    {"session", {"max_conversation_bytes", VX_CFG_INT, "4194304", "bytes of text a conversation keeps; beyond, the oldest items are dropped (an item.create over half of it is refused)", 65536, 1073741824, NULL, 0}},
    {"turn", {"detection", VX_CFG_ENUM, "server_vad", "turn detection a session starts with (a client's session.update turn_detection replaces it): server_vad ends a turn after silence_duration_ms of silence; semantic_vad also weighs the transcript (see silence_* and hold_*)", 0, 0, "server_vad|semantic_vad", 0}},
    {"turn", {"eagerness", VX_CFG_ENUM, "auto", "semantic_vad eagerness a session starts with", 0, 0, "auto|low|medium|high", 0}},
    {"turn", {"speculative", VX_CFG_BOOL, "true", "start the reply when the user pauses (min_silence), before the turn is confirmed: the recognizer is asked for its final transcript, the reply is generated and synthesized but held; it is sent when the turn ends with that transcript, and dropped without a trace when the user goes on", 0, 0, NULL, 0}},
    {"turn", {"min_silence", VX_CFG_DURATION, "200ms", "pause after which a speculative reply starts (only when shorter than the silence that ends the turn)", 10, 10000, NULL, 0}},
    {"turn", {"silence_auto", VX_CFG_DURATION, "250ms", "semantic_vad, eagerness auto: silence that ends a turn whose transcript sounds finished", 50, 10000, NULL, 0}},
    {"turn", {"silence_low", VX_CFG_DURATION, "600ms", "semantic_vad, eagerness low: silence that ends a turn whose transcript sounds finished", 50, 10000, NULL, 0}},
    {"turn", {"silence_medium", VX_CFG_DURATION, "400ms", "semantic_vad, eagerness medium: silence that ends a turn whose transcript sounds finished", 50, 10000, NULL, 0}},
    {"turn", {"silence_high", VX_CFG_DURATION, "250ms", "semantic_vad, eagerness high: silence that ends a turn whose transcript sounds finished", 50, 10000, NULL, 0}},
    {"turn", {"hold_auto", VX_CFG_DURATION, "1200ms", "semantic_vad, eagerness auto: further silence a turn is held open when its transcript sounds unfinished (ends in and, because, to, the, um, ...)", 0, 30000, NULL, 0}},
    {"turn", {"hold_low", VX_CFG_DURATION, "2000ms", "semantic_vad, eagerness low: further silence a turn is held open when its transcript sounds unfinished", 0, 30000, NULL, 0}},
    {"turn", {"hold_medium", VX_CFG_DURATION, "1200ms", "semantic_vad, eagerness medium: further silence a turn is held open when its transcript sounds unfinished", 0, 30000, NULL, 0}},
    {"turn", {"hold_high", VX_CFG_DURATION, "700ms", "semantic_vad, eagerness high: further silence a turn is held open when its transcript sounds unfinished", 0, 30000, NULL, 0}},
    {"session", {"max_output_buffer", VX_CFG_INT, "16777216", "bytes queued for a client that does not read before its socket is closed", 65536, 1073741824, NULL, 0}},
    {"stt", {"providers", VX_CFG_STRING, "", "ordered fallback chain of STT plugin instances, comma-separated", 0, 1024, NULL, 0}},
    {"stt", {"sample_rate", VX_CFG_INT, "16000", "rate audio is resampled to for STT providers", 8000, 48000, NULL, 0}},
    {"stt", {"timeout", VX_CFG_DURATION, "5s", "end of speech to final transcript (a local decoder does its final search then); a provider slower than this is cancelled and the next one transcribes the utterance", 0, 600000, NULL, 0}},
    {"stt", {"idle_timeout", VX_CFG_DURATION, "0", "while speech lasts, longest gap between partial transcripts once they started (0: off; only for providers that stream partials)", 0, 600000, NULL, 0}},
    {"stt", {"breaker_failures", VX_CFG_INT, "3", "consecutive failures after which a provider is skipped for breaker_cooldown (0: never)", 0, 1000, NULL, 0}},
    {"stt", {"breaker_cooldown", VX_CFG_DURATION, "30s", "how long a failing provider is skipped", 0, 3600000, NULL, 0}},
    {"llm", {"providers", VX_CFG_STRING, "", "ordered fallback chain of LLM plugin instances, comma-separated", 0, 1024, NULL, 0}},
    {"llm", {"timeout", VX_CFG_DURATION, "3s", "prompt to first token; a provider slower than this is cancelled and the next one is tried", 0, 600000, NULL, 0}},
    {"llm", {"idle_timeout", VX_CFG_DURATION, "2s", "longest gap between tokens once they started; a provider that stalls longer is cancelled (0: off)", 0, 600000, NULL, 0}},
    {"llm", {"retries", VX_CFG_INT, "2", "retries of a retryable failure before anything reached the client, before falling back (a timeout goes to the next provider at once when there is one)", 0, 10, NULL, 0}},
    {"llm", {"retry_backoff", VX_CFG_DURATION, "200ms", "first retry delay; doubles each retry, with jitter", 1, 60000, NULL, 0}},
    {"llm", {"breaker_failures", VX_CFG_INT, "3", "consecutive failures after which a provider is skipped for breaker_cooldown (0: never)", 0, 1000, NULL, 0}},
    {"llm", {"breaker_cooldown", VX_CFG_DURATION, "30s", "how long a failing provider is skipped", 0, 3600000, NULL, 0}},
    {"tts", {"providers", VX_CFG_STRING, "", "ordered fallback chain of TTS plugin instances, comma-separated", 0, 1024, NULL, 0}},
    {"tts", {"timeout", VX_CFG_DURATION, "3s", "text to first audio; a provider slower than this is cancelled and the next one is tried", 0, 600000, NULL, 0}},
    {"tts", {"idle_timeout", VX_CFG_DURATION, "2s", "longest gap between audio chunks of a sentence once they started; a provider that stalls longer is cancelled (0: off)", 0, 600000, NULL, 0}},
    {"tts", {"breaker_failures", VX_CFG_INT, "3", "consecutive failures after which a provider is skipped for breaker_cooldown (0: never)", 0, 1000, NULL, 0}},
    {"tts", {"breaker_cooldown", VX_CFG_DURATION, "30s", "how long a failing provider is skipped", 0, 3600000, NULL, 0}},
    {"recording", {"enabled", VX_CFG_BOOL, "false", "record sessions: a stereo WAV (user left, bot right) and a JSON sidecar per session, uploaded through the sink", 0, 0, NULL, 0}},
    {"recording", {"sink", VX_CFG_STRING, "file", "recording-sink plugin instance (file, s3, or a [plugin.NAME] section)", 0, 128, NULL, 0}},
    {"recording", {"sample_rate", VX_CFG_INT, "1", "record 1 in N sessions (1: every session)", 1, 1000000, NULL, 0}},
    {"recording", {"audio_rate", VX_CFG_INT, "16000", "sample rate of the recorded WAV in Hz (both channels)", 8000, 48000, NULL, 0}},
    {"recording", {"spool_dir", VX_CFG_STRING, "/var/lib/voxray/spool", "local folder for recordings being captured and waiting for upload (relative to the config file)", 1, 4096, NULL, 0}},
    {"recording", {"dead_letter_dir", VX_CFG_STRING, "/var/lib/voxray/dead-letter", "local folder keeping recordings whose upload failed; re-submitted at start, every replay_interval and by voxray --replay-recordings", 1, 4096, NULL, 0}},
    {"recording", {"queue_size", VX_CFG_INT, "32", "upload jobs waiting at most; a session ending with the queue full is dead-lettered", 1, 100000, NULL, 0}},
    {"recording", {"workers", VX_CFG_INT, "2", "upload threads calling the sink", 1, 64, NULL, 0}},
    {"recording", {"max_retries", VX_CFG_INT, "3", "retries of a retryable upload failure before the job is dead-lettered", 0, 100, NULL, 0}},
    {"recording", {"retry_backoff", VX_CFG_DURATION, "1s", "first retry delay; doubles each retry, with jitter", 1, 3600000, NULL, 0}},
    {"recording", {"retry_backoff_max", VX_CFG_DURATION, "60s", "longest retry delay", 1, 86400000, NULL, 0}},
    {"recording", {"replay_interval", VX_CFG_DURATION, "5m", "how often dead-lettered recordings are re-submitted while running (0: only at start)", 0, 604800000, NULL, 0}},
    {"recording", {"shutdown_upload_timeout", VX_CFG_DURATION, "30s", "on SIGTERM, how long queued uploads may run; what is left is dead-lettered", 0, 3600000, NULL, 0}},
    {"recording", {"max_backlog", VX_CFG_INT, "2097152", "bytes of captured audio a session may have waiting for the disk; beyond it audio is dropped and counted", 65536, 1073741824, NULL, 0}},
    {"recording", {"instance", VX_CFG_STRING, "", "instance name written in the sidecar (empty: the host name)", 0, 256, NULL, 0}},
    {"auth", {"api_keys", VX_CFG_STRING, "", "comma-separated API keys accepted on /v1/realtime and /v1/realtime/client_secrets (Authorization: Bearer KEY or the openai-insecure-api-key.KEY subprotocol); auth is on when this or keys_file is set", 0, 65536, NULL, VX_CFG_SECRET}},
    {"auth", {"keys_file", VX_CFG_STRING, "", "file with one API key per line (# comments), relative to the config file; re-read on SIGHUP", 0, 4096, NULL, 0}},
    {"auth", {"client_secret_max_ttl", VX_CFG_DURATION, "2h", "longest life of a client secret; a longer expires_after is shortened to this", 1000, 7200000, NULL, 0}},
    {"auth", {"max_client_secrets", VX_CFG_INT, "1000", "client secrets that may be outstanding (minted, neither used nor expired); more get 429", 1, 100000, NULL, 0}},
    {NULL, {NULL, 0, NULL, NULL, 0, 0, NULL, 0}},
};

int cfg_is_core_section(const char *section)
{
    for (const cfg_key *k = cfg_core_schema; k->section; k++)
        if (strcmp(k->section, section) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------ storage */

static int add_item(cfg_file *c, const char *section, const char *key,
                    const char *value, int line, const char *env)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        cfg_item *ni = realloc(c->items, cap * sizeof *ni);
        if (ni == NULL) return -1;
        c->items = ni;
        c->cap = cap;
    }
    cfg_item *it = &c->items[c->n];
    memset(it, 0, sizeof *it);
    it->section = strdup(section);
    it->key = strdup(key);
    it->value = strdup(value);
    it->env = env ? strdup(env) : NULL;
    it->line = line;
    if (!it->section || !it->key || !it->value || (env && !it->env)) {
        free(it->section);
        free(it->key);
        free(it->value);
        free(it->env);
        return -1;
    }
    c->n++;
    return 0;
}

static int add_section(cfg_file *c, const char *name, size_t len, int line)
{
    if (c->n_sections == c->cap_sections) {
        size_t cap = c->cap_sections ? c->cap_sections * 2 : 16;
        cfg_section *ns = realloc(c->sections, cap * sizeof *ns);
        if (ns == NULL) return -1;
        c->sections = ns;
        c->cap_sections = cap;
    }
    char *n = strndup(name, len);
    if (n == NULL) return -1;
    c->sections[c->n_sections].name = n;
    c->sections[c->n_sections].line = line;
    c->n_sections++;
    return 0;
}

void cfg_free(cfg_file *c)
{
    if (c == NULL) return;
    for (size_t i = 0; i < c->n_sections; i++) free(c->sections[i].name);
    free(c->sections);
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].section);
        free(c->items[i].key);
        free(c->items[i].value);
        free(c->items[i].env);
    }
    free(c->items);
    free(c->path);
    free(c);
}

cfg_item *cfg_find(cfg_file *c, const char *section, const char *key)
{
    for (size_t i = 0; i < c->n; i++) {
        cfg_item *it = &c->items[i];
        if (strcmp(it->section, section) == 0 && strcmp(it->key, key) == 0) {
            it->used = 1;
            return it;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ parsing */

typedef struct parse_ctx {
    cfg_file *c;
    /* line tracking for the reader */
    FILE *fp;
    const char *str;
    int line;
    int at_line_start;
    size_t cur_len;
    int too_long_line;
    int nul_line; /* first line holding a NUL byte (files only) */
    int oom;
    /* first error */
    char *err;
    size_t errlen;
    int failed;
} parse_ctx;

static char *reader_common(parse_ctx *p, char *buf, int num, char *got)
{
    if (got == NULL) return NULL;
    size_t n = strlen(got);
    if (p->at_line_start) {
        p->line++;
        p->cur_len = 0;
        /* Note section headers ourselves: inih only reports keys. */
        const char *q = got;
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '[') {
            const char *close = strchr(q, ']');
            if (close) {
                const char *a = q + 1, *b = close;
                while (a < b && isspace((unsigned char)*a)) a++;
                while (b > a && isspace((unsigned char)b[-1])) b--;
                if (add_section(p->c, a, (size_t)(b - a), p->line) != 0) p->oom = 1;
            }
        }
    }
    p->cur_len += n;
    if (p->cur_len >= CFG_MAX_LINE - 3 && !p->too_long_line) p->too_long_line = p->line;
    p->at_line_start = n > 0 && buf[n - 1] == '\n';
    (void)num;
    return got;
}

/* One line, or the next num - 1 bytes of it, as fgets() would read it, but
 * a NUL byte (a binary or UTF-16 file) is noted, to be refused, and read as
 * a blank: with it inside, the line would look shorter than it is and the
 * line count would go wrong. */
static char *file_reader(char *buf, int num, void *stream)
{
    parse_ctx *p = stream;
    int i = 0, ch;
    if (num < 2) return NULL;
    while (i < num - 1 && (ch = getc(p->fp)) != EOF) {
        if (ch == '\0') {
            if (p->nul_line == 0) p->nul_line = p->line + (p->at_line_start ? 1 : 0);
            ch = ' ';
        }
        buf[i++] = (char)ch;
        if (ch == '\n') break;
    }
    if (i == 0) return NULL;
    buf[i] = '\0';
    return reader_common(p, buf, num, buf);
}

static char *string_reader(char *buf, int num, void *stream)
{
    parse_ctx *p = stream;
    if (*p->str == '\0' || num < 2) return NULL;
    int i = 0;
    while (i < num - 1 && p->str[i]) {
        buf[i] = p->str[i];
        i++;
        if (buf[i - 1] == '\n') break;
    }
    buf[i] = '\0';
    p->str += i;
    return reader_common(p, buf, num, buf);
}

static const char *display_path(const cfg_file *c) { return c->path && *c->path ? c->path : "config"; }

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    if (p->failed) return 1;
    if (*section == '\0') {
        snprintf(p->err, p->errlen, "%s:%d: key '%s' is outside any [section]",
                 display_path(p->c), p->line, name);
        p->failed = 1;
        return 0;
    }
    for (size_t i = 0; i < p->c->n; i++) {
        cfg_item *it = &p->c->items[i];
        if (strcmp(it->section, section) == 0 && strcmp(it->key, name) == 0) {
            snprintf(p->err, p->errlen, "%s:%d: [%s] %s is set twice (first at line %d)",
                     display_path(p->c), p->line, section, name, it->line);
            p->failed = 1;
            return 0;
        }
    }
    if (add_item(p->c, section, name, value ? value : "", p->line, NULL) != 0) {
        snprintf(p->err, p->errlen, "%s: out of memory", display_path(p->c));
        p->failed = 1;
        return 0;
    }
    return 1;
}

static int parse_common(parse_ctx *p, cfg_file *c)
{
    /* inih r55 keeps these as process globals; set them on every parse. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = CFG_MAX_LINE;
    ini_allow_multiline = false;
    ini_allow_inline_comments = true;
    ini_stop_on_first_error = true;
    p->at_line_start = 1;

    int rc = ini_parse_stream(p->fp ? file_reader : string_reader, p, handler, p);
    if (p->nul_line) {
        snprintf(p->err, p->errlen, "%s:%d: NUL byte: not a text file (save it as UTF-8)",
                 display_path(c), p->nul_line);
        return -1;
    }
    if (p->failed) return -1;
    if (p->oom) rc = -2;
    if (p->too_long_line) {
        snprintf(p->err, p->errlen, "%s:%d: line longer than %d bytes",
                 display_path(c), p->too_long_line, CFG_MAX_LINE - 3);
        return -1;
    }
    if (rc == -2) {
        snprintf(p->err, p->errlen, "%s: out of memory", display_path(c));
        return -1;
    }
    if (rc > 0) {
        snprintf(p->err, p->errlen,
                 "%s:%d: syntax error: expected [section], key = value, or a ; comment",
                 display_path(c), rc);
        return -1;
    }
    return 0;
}

int cfg_parse_file(const char *path, cfg_file **out, char *err, size_t errlen)
{
    parse_ctx p = {0};
    cfg_file *c = calloc(1, sizeof *c);
    int rc = -1;
    *out = NULL;
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    p.fp = fopen(path, "r");
    if (p.fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    p.c = c;
    p.err = err;
    p.errlen = errlen;
    if (parse_common(&p, c) != 0) goto fail;
    if (ferror(p.fp)) {
        snprintf(err, errlen, "%s: read error", path);
        goto fail;
    }
    *out = c;
    c = NULL;
    rc = 0;
fail:
    if (p.fp) fclose(p.fp);
    cfg_free(c);
    return rc;
}

int cfg_parse_string(const char *text, const char *name, cfg_file **out,
                     char *err, size_t errlen)
{
    parse_ctx p = {0};
    cfg_file *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL || (c->path = strdup(name ? name : "")) == NULL) {
        cfg_free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p.str = text;
    p.c = c;
    p.err = err;
    p.errlen = errlen;
    if (parse_common(&p, c) != 0) {
        cfg_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------ environment */

void cfg_env_name(const char *section, const char *key, char *buf, size_t len)
{
    snprintf(buf, len, "VOXRAY_%s_%s", section, key);
    for (char *p = buf; *p; p++) {
        if (*p == '.' || *p == '-') *p = '_';
        else *p = (char)toupper((unsigned char)*p);
    }
}

int cfg_apply_env(cfg_file *c, const char *section, const char *key)
{
    char name[256];
    cfg_env_name(section, key, name, sizeof name);
    const char *v = getenv(name);
    if (v == NULL) return 0;
    for (size_t i = 0; i < c->n; i++) {
        cfg_item *it = &c->items[i];
        if (strcmp(it->section, section) == 0 && strcmp(it->key, key) == 0) {
            char *nv = strdup(v), *ne = strdup(name);
            if (nv == NULL || ne == NULL) {
                free(nv);
                free(ne);
                return -1;
            }
            free(it->value);
            free(it->env);
            it->value = nv;
            it->env = ne;
            it->line = 0;
            return 1;
        }
    }
    return add_item(c, section, key, v, 0, name) == 0 ? 1 : -1;
}

const char *cfg_where(const cfg_file *c, const cfg_item *it, char *buf, size_t len)
{
    if (it->env)
        snprintf(buf, len, "environment %s", it->env);
    else
        snprintf(buf, len, "%s:%d: [%s] %s", display_path(c), it->line, it->section, it->key);
    return buf;
}

/* ------------------------------------------------------------ values */

int cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return 0; }
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return 0; }
    return -1;
}

int cfg_parse_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || isspace((unsigned char)*s)) return -1;
    *out = v;
    return 0;
}

int cfg_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) ||
        isspace((unsigned char)*s))
        return -1;
    *out = v;
    return 0;
}

/* A duration: a decimal number of milliseconds, or with a unit ms, s, m or
 * h; per_ms is the result's units in a millisecond, max the largest result. */
static int parse_duration(const char *s, double per_ms, double max, long long *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    size_t digits = strspn(s, "0123456789.");
    double v = strtod(s, &end);
    if ((size_t)(end - s) != digits) return -1; /* no hex, exponents, inf */
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return -1;
    double mul;
    if (*end == '\0' || strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else return -1;
    v *= mul * per_ms;
    if (v > max) return -1;
    *out = (long long)llround(v);
    return 0;
}

int cfg_parse_duration_ms(const char *s, long long *out) { return parse_duration(s, 1, 9e15, out); }

int cfg_parse_duration_ns(const char *s, long long *out) { return parse_duration(s, 1e6, 9e18, out); }

int cfg_parse_size(const char *s, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        double mul;
    } units[] = {
        {"", 1},           {"B", 1},
        {"k", 1024.0},     {"K", 1024.0},     {"KiB", 1024.0},     {"kB", 1e3}, {"KB", 1e3},
        {"M", 1048576.0},  {"MiB", 1048576.0}, {"MB", 1e6},
        {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"GB", 1e9},
        {"T", 1099511627776.0}, {"TiB", 1099511627776.0}, {"TB", 1e12},
    };
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s)) return -1;
    size_t digits = strspn(s, "0123456789.");
    double v = strtod(s, &end);
    if ((size_t)(end - s) != digits) return -1;
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) != 0) continue;
        v *= units[i].mul;
        if (v > 1.8e19 || v != floor(v)) return -1; /* no fractions of a byte */
        *out = (unsigned long long)v;
        return 0;
    }
    return -1;
}

int cfg_kv_get(const vx_kv *items, size_t n, const char *key, cfg_get_type type, void *out)
{
    const char *v = NULL;
    size_t i;
    long long ll;
    double d;
    int b;
    unsigned long long u;

    if (key == NULL || out == NULL) return VX_EINVAL;
    for (i = 0; i < n; i++)
        if (items[i].key && strcmp(items[i].key, key) == 0) break;
    if (i == n) return VX_ENOTFOUND;
    v = items[i].value;
    if (v == NULL || *v == '\0') return VX_ENOTFOUND;
    switch (type) {
    case CFG_GET_INT:
        if (cfg_parse_int(v, &ll) != 0) return VX_EINVAL;
        *(int64_t *)out = (int64_t)ll;
        return VX_OK;
    case CFG_GET_FLOAT:
        if (cfg_parse_double(v, &d) != 0) return VX_EINVAL;
        *(double *)out = d;
        return VX_OK;
    case CFG_GET_BOOL:
        if (cfg_parse_bool(v, &b) != 0) return VX_EINVAL;
        *(int *)out = b;
        return VX_OK;
    case CFG_GET_DURATION_MS:
        if (cfg_parse_duration_ms(v, &ll) != 0) return VX_EINVAL;
        *(int64_t *)out = (int64_t)ll;
        return VX_OK;
    case CFG_GET_DURATION_NS:
        if (cfg_parse_duration_ns(v, &ll) != 0) return VX_EINVAL;
        *(int64_t *)out = (int64_t)ll;
        return VX_OK;
    case CFG_GET_SIZE:
        if (cfg_parse_size(v, &u) != 0) return VX_EINVAL;
        *(uint64_t *)out = (uint64_t)u;
        return VX_OK;
    }
    return VX_EINVAL;
}

int cfg_parse_address(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) return -1;
        if (memchr(s, ':', (size_t)(colon - s))) return -1; /* bare IPv6 needs [] */
        hl = (size_t)(colon - s);
    }
    if (hl >= hostlen) return -1;
    long long p;
    if (cfg_parse_int(colon + 1, &p) != 0 || p < 0 || p > 65535) return -1;
    for (size_t i = 0; i < hl; i++)
        if (isspace((unsigned char)h[i])) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static int enum_has(const char *choices, const char *v)
{
    size_t vl = strlen(v);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, len, "%lld", (long long)v);
    else snprintf(buf, len, "%g", v);
}

const char *cfg_allowed(const vx_config_key *k, char *buf, size_t len)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, k->min);
    fmt_num(hi, sizeof hi, k->max);
    int ranged = !(k->min == 0 && k->max == 0);
    switch (k->type) {
    case VX_CFG_INT:
        if (ranged) snprintf(buf, len, "integer %s..%s", lo, hi);
        else snprintf(buf, len, "integer");
        break;
    case VX_CFG_FLOAT:
        if (ranged) snprintf(buf, len, "number %s..%s", lo, hi);
        else snprintf(buf, len, "number");
        break;
    case VX_CFG_BOOL: snprintf(buf, len, "true|false (also yes|no, on|off, 1|0)"); break;
    case VX_CFG_ENUM: snprintf(buf, len, "one of %s", k->choices ? k->choices : ""); break;
    case VX_CFG_DURATION:
        if (ranged) snprintf(buf, len, "duration %sms..%sms (e.g. 250ms, 2s, 1m)", lo, hi);
        else snprintf(buf, len, "duration (e.g. 250ms, 2s, 1m)");
        break;
    case VX_CFG_ADDRESS: snprintf(buf, len, "host:port, [ipv6]:port or :port"); break;
    case VX_CFG_SIZE:
        if (ranged) snprintf(buf, len, "size %s..%s bytes (e.g. 4096, 64k, 16MiB, 1GB)", lo, hi);
        else snprintf(buf, len, "size in bytes (e.g. 4096, 64k, 16MiB, 1GB)");
        break;
    case VX_CFG_STRING:
    default:
        if (k->max > 0) snprintf(buf, len, "text of at most %s bytes", hi);
        else snprintf(buf, len, "text");
        break;
    }
    return buf;
}

int cfg_check_value(const vx_config_key *k, const char *value, char *why, size_t len)
{
    char allowed[160];
    const char *problem = NULL;
    int ranged = !(k->min == 0 && k->max == 0);
    long long iv;
    double dv;
    int b;
    char host[256];
    int port;

    cfg_allowed(k, allowed, sizeof allowed);
    switch (k->type) {
    case VX_CFG_INT:
        if (cfg_parse_int(value, &iv) != 0) problem = "not an integer";
        else if (ranged && (iv < k->min || iv > k->max)) problem = "out of range";
        break;
    case VX_CFG_FLOAT:
        if (cfg_parse_double(value, &dv) != 0) problem = "not a number";
        else if (ranged && (dv < k->min || dv > k->max)) problem = "out of range";
        break;
    case VX_CFG_BOOL:
        if (cfg_parse_bool(value, &b) != 0) problem = "not a boolean";
        break;
    case VX_CFG_ENUM:
        if (!enum_has(k->choices, value)) problem = "not an allowed value";
        break;
    case VX_CFG_DURATION:
        if (cfg_parse_duration_ms(value, &iv) != 0) problem = "not a duration";
        else if (ranged && (iv < k->min || iv > k->max)) problem = "out of range";
        break;
    case VX_CFG_ADDRESS:
        if (cfg_parse_address(value, host, sizeof host, &port) != 0) problem = "not an address";
        break;
    case VX_CFG_SIZE: {
        unsigned long long sz;
        if (cfg_parse_size(value, &sz) != 0) problem = "not a size";
        else if (ranged && ((double)sz < k->min || (double)sz > k->max)) problem = "out of range";
        break;
    }
    case VX_CFG_STRING:
    default:
        if (k->max > 0 && strlen(value) > (size_t)k->max) problem = "too long";
        break;
    }
    if (problem == NULL && (k->flags & VX_CFG_REQUIRED) && *value == '\0')
        problem = "must not be empty";
    if (problem == NULL) return 0;
    snprintf(why, len, "%s (allowed: %s)", problem, allowed);
    return -1;
}
