/*
 * The session protocol: OpenAI Realtime client events (JSON text) to C
 * structs, and C values to server events (JSON text). See protocol.h.
 *
 * Reference: the type definitions of the npm package `openai` 7.57.0:
 *   GA   resources/realtime/realtime.d.ts (SessionUpdateEvent,
 *        RealtimeSessionCreateRequest, RealtimeAudioConfig*, every event
 *        named in protocol.h) and resources/realtime/client-secrets.d.ts
 *        (RealtimeSessionCreateResponse: `id`, `object` of a session);
 *   beta resources/beta/realtime/realtime.d.ts and
 *        resources/beta/realtime/sessions.d.ts (Session: the flat shape).
 * Where a field the real service sends as null is typed non-nullable there
 * (turn_detection, transcription, status_details, usage), null is sent, as
 * the service does. Content parts of response.content_part.added/done are
 * typed 'text' | 'audio' in both files and are sent that way in both
 * dialects; items carry output_text/output_audio (GA) or text/audio (beta).
 *
 * JSON is jansson's, base64 is OpenSSL's (EVP_EncodeBlock/EVP_DecodeBlock).
 * The decoder is only fed text that has passed a strict syntax check here,
 * because EVP_DecodeBlock itself takes '=' anywhere as a zero digit.
 */
#include "config.h"

#include "session/protocol.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* Printed precision of reals: enough for thresholds and temperatures,
 * short enough that 0.6 prints as 0.6. */
#define PROTO_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* Bounds of the integer session fields, so a typo cannot stall a turn. */
#define PROTO_MAX_MS 60000

static const int proto_rates[] = {8000, 16000, 22050, 24000, 32000, 44100, 48000};

/* ============================================================ ids */

static const char id_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* If RAND_bytes ever fails, ids still have to be distinct within the
 * process: a counter mixed with the clock stands in. */
static void id_fallback(char *out, size_t n)
{
    static atomic_ullong ctr;
    unsigned long long v = atomic_fetch_add(&ctr, 1) * 0x9E3779B97F4A7C15ull ^ (unsigned long long)time(NULL);
    for (size_t i = 0; i < n; i++) {
        out[i] = id_alphabet[v % 62];
        v = v / 62 + (unsigned long long)(i + 1) * 0x2545F4914F6CDD1Dull;
    }
}

void proto_new_id(const char *prefix, char *buf, size_t len)
{
    char rnd[20];
    size_t got = 0;
    if (buf == NULL || len == 0) return;
    /* Rejection sampling: bytes >= 248 would bias the first 248 % 62 symbols. */
    while (got < sizeof rnd) {
        unsigned char b[32];
        if (RAND_bytes(b, (int)sizeof b) != 1) {
            id_fallback(rnd + got, sizeof rnd - got);
            got = sizeof rnd;
            break;
        }
        for (size_t i = 0; i < sizeof b && got < sizeof rnd; i++)
            if (b[i] < 248) rnd[got++] = id_alphabet[b[i] % 62];
    }
    snprintf(buf, len, "%s%.20s", prefix ? prefix : "", rnd);
}

/* ============================================================ UTF-8 */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 with *skip set to the length of
 * the maximal ill-formed prefix (at least 1). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *skip)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *skip = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *skip = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* A JSON string from arbitrary bytes: NULL gives null, ill-formed UTF-8 is
 * replaced by U+FFFD (jansson refuses it). NULL only when out of memory. */
static json_t *jstr(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, i = 0, o = 0, skip = 0;
    unsigned char *buf;
    json_t *v;
    if (s == NULL) return json_null();
    n = strlen(s);
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i, &skip);
        if (k == 0) break;
        i += k;
    }
    if (i == n) return json_stringn(s, n);
    if (n > (SIZE_MAX - 1) / 3) return NULL;
    buf = malloc(3 * n + 1); /* every byte may become EF BF BD */
    if (buf == NULL) return NULL;
    memcpy(buf, p, i);
    o = i;
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i, &skip);
        if (k > 0) {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        } else {
            buf[o++] = 0xEF;
            buf[o++] = 0xBF;
            buf[o++] = 0xBD;
            i += skip;
        }
    }
    v = json_stringn((const char *)buf, o);
    free(buf);
    return v;
}

/* Like jstr, but NULL gives "" (for fields typed plain string). */
static json_t *jstr0(const char *s)
{
    return jstr(s ? s : "");
}

/* Like jstr, but NULL and "" give null (optional ids, error fields). */
static json_t *jstr_null(const char *s)
{
    return (s && *s) ? jstr(s) : json_null();
}

/* ============================================================ errors */

static int perr(proto_error *e, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(proto_error *e, const char *code, const char *param, const char *fmt, ...)
{
    va_list ap;
    /* Only running out of memory is voxray's fault; the rest is the client's. */
    snprintf(e->type, sizeof e->type, "%s",
             strcmp(code, "server_error") == 0 ? "server_error" : "invalid_request_error");
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *jtype_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown type";
}

static int bad_type(proto_error *e, const char *param, const char *want, const json_t *got)
{
    return perr(e, "invalid_type", param, "Invalid type for '%s': expected %s, but got %s instead.",
                param, want, jtype_name(got));
}

static int missing(proto_error *e, const char *param)
{
    return perr(e, "missing_required_parameter", param, "Missing required parameter: '%s'.", param);
}

/* ============================================================ field access */

/* A member, with JSON null counted as absent (fields where null means
 * something are read with json_object_get directly). */
static json_t *opt(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* Optional string member: 1 present (*out set), 0 absent, -1 wrong type. */
static int get_str(const json_t *o, const char *key, const char *param, const char **out,
                   proto_error *e)
{
    json_t *v = opt(o, key);
    *out = NULL;
    if (v == NULL) return 0;
    if (!json_is_string(v)) return bad_type(e, param, "a string", v);
    *out = json_string_value(v);
    return 1;
}

/* Optional string member, duplicated into *dst (replacing what was there). */
static int dup_str(const json_t *o, const char *key, const char *param, char **dst, proto_error *e)
{
    const char *s;
    int rc = get_str(o, key, param, &s, e);
    if (rc <= 0) return rc;
    char *d = strdup(s);
    if (d == NULL) return perr(e, "server_error", param, "Out of memory.");
    free(*dst);
    *dst = d;
    return 1;
}

/* A number with an integral value: 0 (*out set) or -1 (not one). */
static int as_integer(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && d > -9.0e18 && d < 9.0e18) {
            *out = (long long)d;
            return 0;
        }
    }
    return -1;
}

/* Optional integer member in lo..hi: 1 present, 0 absent, -1 error. */
static int get_int(const json_t *o, const char *key, const char *param, long long lo,
                   long long hi, int *out, proto_error *e)
{
    json_t *v = opt(o, key);
    long long x;
    if (v == NULL) return 0;
    if (as_integer(v, &x) != 0) return bad_type(e, param, "an integer", v);
    if (x < lo || x > hi)
        return perr(e, "invalid_value", param, "Invalid value for '%s': %lld is outside %lld..%lld.",
                    param, x, lo, hi);
    *out = (int)x;
    return 1;
}

/* Optional number member in lo..hi. */
static int get_num(const json_t *o, const char *key, const char *param, double lo, double hi,
                   double *out, proto_error *e)
{
    json_t *v = opt(o, key);
    double x;
    if (v == NULL) return 0;
    if (!json_is_number(v)) return bad_type(e, param, "a number", v);
    x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return perr(e, "invalid_value", param, "Invalid value for '%s': %g is outside %g..%g.",
                    param, x, lo, hi);
    *out = x;
    return 1;
}

static int get_bool(const json_t *o, const char *key, const char *param, int *out, proto_error *e)
{
    json_t *v = opt(o, key);
    if (v == NULL) return 0;
    if (!json_is_boolean(v)) return bad_type(e, param, "a boolean", v);
    *out = json_is_true(v);
    return 1;
}

/* Optional object member: 1 present (*out set), 0 absent or null, -1 wrong type. */
static int get_obj(const json_t *o, const char *key, const char *param, json_t **out,
                   proto_error *e)
{
    json_t *v = opt(o, key);
    *out = NULL;
    if (v == NULL) return 0;
    if (!json_is_object(v)) return bad_type(e, param, "an object", v);
    *out = v;
    return 1;
}

/* ============================================================ session fields */

/* ["text"] / ["audio"] / both: PROTO_MOD_* bits. */
static int parse_modalities(const json_t *v, const char *param, unsigned *out, proto_error *e)
{
    size_t i;
    json_t *m;
    unsigned bits = 0;
    if (!json_is_array(v)) return bad_type(e, param, "an array", v);
    json_array_foreach(v, i, m) {
        const char *s = json_string_value(m);
        if (s == NULL) return bad_type(e, param, "an array of strings", v);
        if (strcmp(s, "text") == 0)
            bits |= PROTO_MOD_TEXT;
        else if (strcmp(s, "audio") == 0)
            bits |= PROTO_MOD_AUDIO;
        else
            return perr(e, "invalid_value", param,
                        "Invalid value in '%s': '%.64s'. Supported values are: 'text' and 'audio'.",
                        param, s);
    }
    if (bits == 0)
        return perr(e, "invalid_value", param, "'%s' must name at least one modality.", param);
    *out = bits;
    return 0;
}

/* number >= 1, or "inf" (stored as 0). */
static int parse_max_tokens(const json_t *v, const char *param, int *out, proto_error *e)
{
    long long x;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "inf") != 0)
            return perr(e, "invalid_value", param,
                        "Invalid value for '%s': expected an integer or 'inf'.", param);
        *out = 0;
        return 0;
    }
    if (as_integer(v, &x) != 0) return bad_type(e, param, "an integer or 'inf'", v);
    if (x < 1 || x > INT_MAX)
        return perr(e, "invalid_value", param, "Invalid value for '%s': %lld is outside 1..%d.",
                    param, x, INT_MAX);
    *out = (int)x;
    return 0;
}

/* turn_detection: null (manual commit) or a server_vad object. Members not
 * given take the defaults: the object replaces the whole configuration, as
 * it does on the OpenAI service. */
static int parse_turn(const json_t *v, const char *param, proto_turn_detection *t, proto_error *e)
{
    char p[96];
    const char *type;
    int rc;
    if (json_is_null(v)) {
        memset(t, 0, sizeof *t);
        return 0;
    }
    if (!json_is_object(v)) return bad_type(e, param, "an object or null", v);
    *t = (proto_turn_detection){.enabled = 1, .threshold = 0.5, .prefix_padding_ms = 300,
                                .silence_duration_ms = 500, .create_response = 1, .interrupt_response = 1};
    snprintf(p, sizeof p, "%s.type", param);
    if (get_str(v, "type", p, &type, e) < 0) return -1;
    if (type && strcmp(type, "semantic_vad") == 0) {
        const char *eager;
        static const char *const names[] = {"auto", "low", "medium", "high"};
        t->semantic = 1;
        snprintf(p, sizeof p, "%s.eagerness", param);
        if (get_str(v, "eagerness", p, &eager, e) < 0) return -1;
        if (eager) {
            int k = 0;
            while (k < 4 && strcmp(eager, names[k]) != 0) k++;
            if (k == 4)
                return perr(e, "invalid_value", p,
                            "Invalid value for '%s': '%.40s'. Supported values are: 'low', 'medium', "
                            "'high' and 'auto'.", p, eager);
            t->eagerness = k;
        }
    } else if (type && strcmp(type, "server_vad") != 0) {
        return perr(e, "invalid_value", p,
                    "Turn detection '%.40s' is not supported: use 'server_vad' or 'semantic_vad'.", type);
    }
    snprintf(p, sizeof p, "%s.threshold", param);
    if (get_num(v, "threshold", p, 0.0, 1.0, &t->threshold, e) < 0) return -1;
    snprintf(p, sizeof p, "%s.prefix_padding_ms", param);
    if (get_int(v, "prefix_padding_ms", p, 0, PROTO_MAX_MS, &t->prefix_padding_ms, e) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.silence_duration_ms", param);
    if (get_int(v, "silence_duration_ms", p, 0, PROTO_MAX_MS, &t->silence_duration_ms, e) < 0)
        return -1;
    snprintf(p, sizeof p, "%s.create_response", param);
    if (get_bool(v, "create_response", p, &t->create_response, e) < 0) return -1;
    snprintf(p, sizeof p, "%s.interrupt_response", param);
    rc = get_bool(v, "interrupt_response", p, &t->interrupt_response, e);
    return rc < 0 ? -1 : 0;
}

/* GA audio format {type:"audio/pcm", rate}; voxray takes only linear PCM. */
static int parse_format_ga(const json_t *v, const char *param, int *rate, proto_error *e)
{
    char p[96];
    const char *type;
    long long r = 24000;
    json_t *jr;
    if (!json_is_object(v)) return bad_type(e, param, "an object", v);
    snprintf(p, sizeof p, "%s.type", param);
    if (get_str(v, "type", p, &type, e) < 0) return -1;
    if (type && strcmp(type, "audio/pcm") != 0)
        return perr(e, "unsupported_audio_format", p,
                    "Audio format '%.40s' is not supported: use 'audio/pcm'.", type);
    snprintf(p, sizeof p, "%s.rate", param);
    if ((jr = opt(v, "rate")) != NULL) {
        size_t i;
        if (as_integer(jr, &r) != 0) return bad_type(e, p, "an integer", jr);
        for (i = 0; i < sizeof proto_rates / sizeof proto_rates[0]; i++)
            if (r == proto_rates[i]) break;
        if (i == sizeof proto_rates / sizeof proto_rates[0])
            return perr(e, "invalid_value", p,
                        "Unsupported sample rate %lld: use 8000, 16000, 22050, 24000, 32000, "
                        "44100 or 48000.", r);
    }
    *rate = (int)r;
    return 0;
}

/* Beta audio format: "pcm16" is 24 kHz linear PCM; G.711 is not taken. */
static int parse_format_beta(const json_t *v, const char *param, int *rate, proto_error *e)
{
    if (!json_is_string(v)) return bad_type(e, param, "a string", v);
    if (strcmp(json_string_value(v), "pcm16") != 0)
        return perr(e, "unsupported_audio_format", param,
                    "Audio format '%.40s' is not supported: use 'pcm16'.", json_string_value(v));
    *rate = 24000;
    return 0;
}

/* transcription: an object turns input transcription on, null turns it off
 * (the model/language/prompt it names are the STT plugin's business). */
static int parse_transcription(const json_t *v, const char *param, int *on, proto_error *e)
{
    if (json_is_null(v)) {
        *on = 0;
        return 0;
    }
    if (!json_is_object(v)) return bad_type(e, param, "an object or null", v);
    *on = 1;
    return 0;
}

/* GA voice: a name, or {id} for a custom voice. */
static int parse_voice_ga(const json_t *v, const char *param, char **dst, proto_error *e)
{
    const char *s = json_string_value(v);
    char *d;
    if (s == NULL && json_is_object(v)) s = json_string_value(json_object_get(v, "id"));
    if (s == NULL) return bad_type(e, param, "a string or an object with a string 'id'", v);
    d = strdup(s);
    if (d == NULL) return perr(e, "server_error", param, "Out of memory.");
    free(*dst);
    *dst = d;
    return 0;
}

/* Function tools: [{type:"function", name, description?, parameters?}],
 * kept as normalized JSON text. MCP tools are not supported. */
static int parse_tools(const json_t *v, const char *param, char **out, proto_error *e)
{
    size_t i;
    json_t *t, *arr;
    char p[96];
    if (!json_is_array(v)) return bad_type(e, param, "an array", v);
    if (json_array_size(v) > 128) return perr(e, "invalid_value", param, "'%s' may hold at most 128 tools.", param);
    arr = json_array();
    if (arr == NULL) return perr(e, "server_error", param, "Out of memory.");
    json_array_foreach(v, i, t) {
        const char *type, *name, *desc;
        json_t *params;
        snprintf(p, sizeof p, "%s[%zu]", param, i);
        if (!json_is_object(t)) {
            json_decref(arr);
            return bad_type(e, p, "an object", t);
        }
        snprintf(p, sizeof p, "%s[%zu].type", param, i);
        if (get_str(t, "type", p, &type, e) < 0) goto fail;
        if (type && strcmp(type, "function") != 0) {
            perr(e, "invalid_value", p, "Tool type '%.40s' is not supported: only 'function' tools are.", type);
            goto fail;
        }
        snprintf(p, sizeof p, "%s[%zu].name", param, i);
        if (get_str(t, "name", p, &name, e) < 0) goto fail;
        if (name == NULL) {
            missing(e, p);
            goto fail;
        }
        size_t n = strlen(name);
        int ok = n >= 1 && n <= 64;
        for (size_t k = 0; ok && k < n; k++)
            ok = isalnum((unsigned char)name[k]) || name[k] == '_' || name[k] == '-';
        if (!ok) {
            perr(e, "invalid_value", p, "Invalid function name '%.64s': use 1 to 64 letters, digits, '_' or '-'.", name);
            goto fail;
        }
        snprintf(p, sizeof p, "%s[%zu].description", param, i);
        if (get_str(t, "description", p, &desc, e) < 0) goto fail;
        snprintf(p, sizeof p, "%s[%zu].parameters", param, i);
        if (get_obj(t, "parameters", p, &params, e) < 0) goto fail;
        json_t *o = json_pack("{s:s, s:s}", "type", "function", "name", name);
        if (o && desc) json_object_set_new(o, "description", json_string(desc));
        if (o && params) json_object_set(o, "parameters", params);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            perr(e, "server_error", param, "Out of memory.");
            goto fail;
        }
    }
    free(*out);
    *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *out ? 0 : perr(e, "server_error", param, "Out of memory.");
fail:
    json_decref(arr);
    return -1;
}

/* "auto" | "none" | "required" | {type:"function", name} (stored as the name). */
static int parse_tool_choice(const json_t *v, const char *param, char **out, proto_error *e)
{
    const char *c = json_string_value(v);
    char p[96];
    if (c) {
        if (strcmp(c, "auto") != 0 && strcmp(c, "none") != 0 && strcmp(c, "required") != 0)
            return perr(e, "invalid_value", param,
                        "Invalid value for '%s': '%.40s'. Supported values are: 'auto', 'none', 'required' "
                        "or {\"type\": \"function\", \"name\": ...}.", param, c);
    } else if (json_is_object(v)) {
        const char *type;
        snprintf(p, sizeof p, "%s.type", param);
        if (get_str(v, "type", p, &type, e) < 0) return -1;
        if (type && strcmp(type, "function") != 0)
            return perr(e, "invalid_value", p, "Tool choice type '%.40s' is not supported: use 'function'.", type);
        snprintf(p, sizeof p, "%s.name", param);
        if (get_str(v, "name", p, &c, e) < 0) return -1;
        if (c == NULL) return missing(e, p);
    } else {
        return bad_type(e, param, "a string or an object", v);
    }
    char *d = strdup(c);
    if (d == NULL) return perr(e, "server_error", param, "Out of memory.");
    free(*out);
    *out = d;
    return 0;
}

/* A member of session.update that does not parse is reported (its error
 * kept in ev->field_errors) and left out; the other members still apply.
 * Returns -1 only when out of memory. */
static int field_failed(proto_client_event *ev, const proto_error *fe, proto_error *e)
{
    proto_error *n = realloc(ev->field_errors, (ev->n_field_errors + 1) * sizeof *n);
    if (n == NULL) return perr(e, "server_error", "session", "Out of memory.");
    ev->field_errors = n;
    n[ev->n_field_errors++] = *fe;
    return 0;
}

#define FIELD(call)                                                                  \
    do {                                                                             \
        proto_error fe_;                                                             \
        memset(&fe_, 0, sizeof fe_);                                                 \
        proto_error *e = &fe_;                                                       \
        if ((call) < 0 && field_failed(ev, &fe_, err) < 0) return -1;                \
        (void)e;                                                                     \
    } while (0)

/* Members both dialects spell alike. */
static int parse_session_common(const json_t *so, proto_client_event *ev, proto_error *err)
{
    proto_session *s = &ev->session;
    const char *model;
    int rc;
    FIELD((rc = dup_str(so, "instructions", "session.instructions", &s->instructions, e)) < 0
              ? -1 : ((rc ? (s->set |= PS_INSTRUCTIONS) : 0), 0));
    /* The model is the deployment's choice; a client's is type-checked only. */
    FIELD(get_str(so, "model", "session.model", &model, e));
    FIELD((rc = get_num(so, "temperature", "session.temperature", 0.0, 2.0, &s->temperature, e)) < 0
              ? -1 : ((rc ? (s->set |= PS_TEMPERATURE) : 0), 0));
    json_t *v;
    if ((v = opt(so, "tools")) != NULL)
        FIELD(parse_tools(v, "session.tools", &s->tools_json, e) < 0 ? -1 : ((s->set |= PS_TOOLS), 0));
    if ((v = opt(so, "tool_choice")) != NULL)
        FIELD(parse_tool_choice(v, "session.tool_choice", &s->tool_choice, e) < 0
                  ? -1 : ((s->set |= PS_TOOL_CHOICE), 0));
    return 0;
}

static int parse_session_ga(const json_t *so, proto_client_event *ev, proto_error *err)
{
    proto_session *s = &ev->session;
    const char *type;
    json_t *audio, *in, *out, *fmt, *v;
    if (get_str(so, "type", "session.type", &type, err) < 0) return -1;
    if (type && strcmp(type, "realtime") != 0)
        return perr(err, "invalid_value", "session.type",
                    "Session type '%.40s' is not supported: only 'realtime' is.", type);
    if (parse_session_common(so, ev, err) < 0) return -1;
    if ((v = opt(so, "output_modalities")) != NULL)
        FIELD(parse_modalities(v, "session.output_modalities", &s->modalities, e) < 0
                  ? -1 : ((s->set |= PS_MODALITIES), 0));
    if ((v = opt(so, "max_output_tokens")) != NULL)
        FIELD(parse_max_tokens(v, "session.max_output_tokens", &s->max_output_tokens, e) < 0
                  ? -1 : ((s->set |= PS_MAX_OUTPUT_TOKENS), 0));
    audio = NULL;
    FIELD(get_obj(so, "audio", "session.audio", &audio, e));
    if (audio == NULL) return 0;
    in = out = NULL;
    FIELD(get_obj(audio, "input", "session.audio.input", &in, e));
    if (in) {
        fmt = NULL;
        FIELD(get_obj(in, "format", "session.audio.input.format", &fmt, e));
        if (fmt)
            FIELD(parse_format_ga(fmt, "session.audio.input.format", &s->input_rate, e) < 0
                      ? -1 : ((s->set |= PS_INPUT_RATE), 0));
        if ((v = json_object_get(in, "turn_detection")) != NULL) {
            proto_turn_detection t = s->turn;
            FIELD(parse_turn(v, "session.audio.input.turn_detection", &t, e) < 0
                      ? -1 : ((s->turn = t), (s->set |= PS_TURN_DETECTION), 0));
        }
        if ((v = json_object_get(in, "transcription")) != NULL)
            FIELD(parse_transcription(v, "session.audio.input.transcription", &s->transcription, e) < 0
                      ? -1 : ((s->set |= PS_TRANSCRIPTION), 0));
    }
    FIELD(get_obj(audio, "output", "session.audio.output", &out, e));
    if (out) {
        fmt = NULL;
        FIELD(get_obj(out, "format", "session.audio.output.format", &fmt, e));
        if (fmt)
            FIELD(parse_format_ga(fmt, "session.audio.output.format", &s->output_rate, e) < 0
                      ? -1 : ((s->set |= PS_OUTPUT_RATE), 0));
        if ((v = opt(out, "voice")) != NULL)
            FIELD(parse_voice_ga(v, "session.audio.output.voice", &s->voice, e) < 0
                      ? -1 : ((s->set |= PS_VOICE), 0));
    }
    return 0;
}

static int parse_session_beta(const json_t *so, proto_client_event *ev, proto_error *err)
{
    proto_session *s = &ev->session;
    json_t *v;
    int rc;
    if (parse_session_common(so, ev, err) < 0) return -1;
    FIELD((rc = dup_str(so, "voice", "session.voice", &s->voice, e)) < 0
              ? -1 : ((rc ? (s->set |= PS_VOICE) : 0), 0));
    if ((v = opt(so, "modalities")) != NULL)
        FIELD(parse_modalities(v, "session.modalities", &s->modalities, e) < 0
                  ? -1 : ((s->set |= PS_MODALITIES), 0));
    if ((v = opt(so, "max_response_output_tokens")) != NULL)
        FIELD(parse_max_tokens(v, "session.max_response_output_tokens", &s->max_output_tokens, e) < 0
                  ? -1 : ((s->set |= PS_MAX_OUTPUT_TOKENS), 0));
    if ((v = opt(so, "input_audio_format")) != NULL)
        FIELD(parse_format_beta(v, "session.input_audio_format", &s->input_rate, e) < 0
                  ? -1 : ((s->set |= PS_INPUT_RATE), 0));
    if ((v = opt(so, "output_audio_format")) != NULL)
        FIELD(parse_format_beta(v, "session.output_audio_format", &s->output_rate, e) < 0
                  ? -1 : ((s->set |= PS_OUTPUT_RATE), 0));
    if ((v = json_object_get(so, "turn_detection")) != NULL) {
        proto_turn_detection t = s->turn;
        FIELD(parse_turn(v, "session.turn_detection", &t, e) < 0
                  ? -1 : ((s->turn = t), (s->set |= PS_TURN_DETECTION), 0));
    }
    if ((v = json_object_get(so, "input_audio_transcription")) != NULL)
        FIELD(parse_transcription(v, "session.input_audio_transcription", &s->transcription, e) < 0
                  ? -1 : ((s->set |= PS_TRANSCRIPTION), 0));
    return 0;
}

#undef FIELD

/* ============================================================ client events */

static int parse_session_update(const json_t *root, proto_dialect d, proto_client_event *ev,
                                proto_error *e)
{
    json_t *so = json_object_get(root, "session");
    if (so == NULL) return missing(e, "session");
    if (!json_is_object(so)) return bad_type(e, "session", "an object", so);
    proto_session_defaults(&ev->session, d);
    return d == PROTO_BETA ? parse_session_beta(so, ev, e) : parse_session_ga(so, ev, e);
}

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* input_audio_buffer.append: base64 little-endian s16 mono. The syntax is
 * checked here (whitespace dropped, '=' only as 1-2 trailing pad
 * characters, length a multiple of 4), the decoding is OpenSSL's. */
/* The base64 text of an append's 'audio' (len bytes) into ev->pcm. */
static int decode_audio(const unsigned char *s, size_t len, size_t max_samples, proto_client_event *ev,
                        proto_error *e)
{
    unsigned char *clean = NULL;
    const unsigned char *src = s;
    size_t n = 0, pad = 0, bytes, samples;
    int rc = -1;
    if (len > INT_MAX) return perr(e, "message_too_large", "audio", "Audio chunk is too large.");
    /* Check it all first; copy only when there is whitespace to drop. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        if (c == '=') {
            pad++;
        } else if (!b64_char(c)) {
            perr(e, "invalid_base64", "audio", "Invalid base64 in 'audio': byte 0x%02x at %zu.", c, i);
            goto out;
        } else if (pad > 0) {
            perr(e, "invalid_base64", "audio", "Invalid base64 in 'audio': data after padding.");
            goto out;
        }
        n++;
    }
    if (n % 4 != 0 || pad > 2) {
        perr(e, "invalid_base64", "audio",
             "Invalid base64 in 'audio': %zu characters (not a multiple of 4) or bad padding.", n);
        goto out;
    }
    bytes = n / 4 * 3 - pad;
    if (bytes % 2 != 0) {
        perr(e, "invalid_value", "audio",
             "Invalid value for 'audio': %zu bytes is not whole 16-bit samples.", bytes);
        goto out;
    }
    samples = bytes / 2;
    if (max_samples > 0 && samples > max_samples) {
        perr(e, "message_too_large", "audio",
             "Audio chunk of %zu samples exceeds the limit of %zu.", samples, max_samples);
        goto out;
    }
    if (samples > 0) {
        if (n != len) {
            if ((clean = malloc(n)) == NULL) goto oom;
            size_t k = 0;
            for (size_t i = 0; i < len; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') clean[k++] = s[i];
            src = clean;
        }
        /* Decoded straight into the sample buffer (room for the padding
         * bytes too), then put in host order where they lie: sample i is
         * written over the two bytes it is made of. */
        if ((ev->pcm = malloc((n / 4 * 3 + 1) / 2 * sizeof *ev->pcm)) == NULL) goto oom;
        unsigned char *raw = (unsigned char *)ev->pcm;
        if (EVP_DecodeBlock(raw, src, (int)n) != (int)(n / 4 * 3)) {
            perr(e, "invalid_base64", "audio", "Invalid base64 in 'audio'.");
            goto out;
        }
        for (size_t i = 0; i < samples; i++)
            ev->pcm[i] = (int16_t)(uint16_t)(raw[2 * i] | (unsigned)raw[2 * i + 1] << 8);
    }
    ev->samples = samples;
    rc = 0;
    goto out;
oom:
    perr(e, "server_error", "audio", "Out of memory.");
out:
    free(clean);
    return rc;
}

static int parse_append(const json_t *root, size_t max_samples, proto_client_event *ev,
                        proto_error *e)
{
    json_t *a = json_object_get(root, "audio");
    if (a == NULL) return missing(e, "audio");
    if (!json_is_string(a)) return bad_type(e, "audio", "a string", a);
    return decode_audio((const unsigned char *)json_string_value(a), json_string_length(a), max_samples,
                        ev, e);
}

/* Append s to *acc (both NUL-terminated). */
static int str_cat(char **acc, const char *s, size_t n)
{
    size_t have = *acc ? strlen(*acc) : 0;
    char *p = realloc(*acc, have + n + 1);
    if (p == NULL) return -1;
    memcpy(p + have, s, n);
    p[have + n] = '\0';
    *acc = p;
    return 0;
}

/* A message item: its role and its text parts joined. */
static int parse_message(const json_t *item, const char *param, const char **id, char **role_out,
                         char **text_out, proto_error *e)
{
    json_t *content, *part;
    const char *type, *role;
    char p[96];
    size_t i;
    if (!json_is_object(item)) return bad_type(e, param, "an object", item);
    snprintf(p, sizeof p, "%s.type", param);
    if (get_str(item, "type", p, &type, e) < 0) return -1;
    if (type && strcmp(type, "message") != 0)
        return perr(e, "invalid_value", p,
                    "Item type '%.40s' is not supported: use 'message', 'function_call' or "
                    "'function_call_output'.", type);
    snprintf(p, sizeof p, "%s.id", param);
    if (get_str(item, "id", p, id, e) < 0) return -1;
    if (*id && strlen(*id) > PROTO_MAX_ITEM_ID)
        return perr(e, "invalid_value", p, "Invalid '%s': at most %d characters (got %zu).", p, PROTO_MAX_ITEM_ID,
                    strlen(*id));
    snprintf(p, sizeof p, "%s.role", param);
    if (get_str(item, "role", p, &role, e) < 0) return -1;
    if (role == NULL) return missing(e, p);
    if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0 && strcmp(role, "system") != 0)
        return perr(e, "invalid_value", p,
                    "Invalid value for '%s': '%.40s'. Supported values are: 'user', "
                    "'assistant' and 'system'.", p, role);
    content = json_object_get(item, "content");
    snprintf(p, sizeof p, "%s.content", param);
    if (content == NULL) return missing(e, p);
    if (!json_is_array(content)) return bad_type(e, p, "an array", content);
    if (str_cat(text_out, "", 0) < 0) goto oom;
    json_array_foreach(content, i, part) {
        const char *ptype, *text;
        snprintf(p, sizeof p, "%s.content[%zu]", param, i);
        if (!json_is_object(part)) return bad_type(e, p, "an object", part);
        snprintf(p, sizeof p, "%s.content[%zu].type", param, i);
        if (get_str(part, "type", p, &ptype, e) < 0) return -1;
        if (ptype == NULL) return missing(e, p);
        if (strcmp(ptype, "input_text") != 0 && strcmp(ptype, "text") != 0 &&
            strcmp(ptype, "output_text") != 0)
            return perr(e, "invalid_value", p,
                        "Content type '%.40s' is not supported: only text parts are.", ptype);
        snprintf(p, sizeof p, "%s.content[%zu].text", param, i);
        if (get_str(part, "text", p, &text, e) < 0) return -1;
        if (text && str_cat(text_out, text, strlen(text)) < 0) goto oom;
    }
    if ((*role_out = strdup(role)) == NULL) goto oom;
    return 0;
oom:
    return perr(e, "server_error", param, "Out of memory.");
}

/* conversation.item.create: a text message only; its text parts are joined. */
/* function_call_output {call_id, output} or function_call {call_id, name,
 * arguments}. */
static int parse_function_item(const json_t *item, const char *type, const char **id, proto_client_event *ev,
                               proto_error *e)
{
    const char *call_id, *name = NULL, *text;
    int out = strcmp(type, "function_call_output") == 0;
    if (get_str(item, "id", "item.id", id, e) < 0) return -1;
    if (*id && strlen(*id) > PROTO_MAX_ITEM_ID)
        return perr(e, "invalid_value", "item.id", "Invalid 'item.id': at most %d characters (got %zu).",
                    PROTO_MAX_ITEM_ID, strlen(*id));
    if (get_str(item, "call_id", "item.call_id", &call_id, e) < 0) return -1;
    if (call_id == NULL) return missing(e, "item.call_id");
    if (strlen(call_id) > 64) return perr(e, "invalid_value", "item.call_id", "'item.call_id' may be at most 64 characters.");
    if (!out) {
        if (get_str(item, "name", "item.name", &name, e) < 0) return -1;
        if (name == NULL) return missing(e, "item.name");
    }
    if (get_str(item, out ? "output" : "arguments", out ? "item.output" : "item.arguments", &text, e) < 0) return -1;
    if (text == NULL && out) return missing(e, "item.output");
    if ((ev->item_type = strdup(type)) == NULL || (ev->call_id = strdup(call_id)) == NULL ||
        (name && (ev->name = strdup(name)) == NULL) || (ev->text = strdup(text ? text : "{}")) == NULL ||
        (ev->role = strdup(out ? "tool" : "assistant")) == NULL)
        return perr(e, "server_error", "item", "Out of memory.");
    return 0;
}

static int parse_item_create(const json_t *root, proto_client_event *ev, proto_error *e)
{
    json_t *item = json_object_get(root, "item");
    const char *prev, *id = NULL, *type = NULL;
    if (get_str(root, "previous_item_id", "previous_item_id", &prev, e) < 0) return -1;
    if (item == NULL) return missing(e, "item");
    if (json_is_object(item)) type = json_string_value(json_object_get(item, "type"));
    if (type && (strcmp(type, "function_call_output") == 0 || strcmp(type, "function_call") == 0)) {
        if (parse_function_item(item, type, &id, ev, e) < 0) return -1;
    } else if (parse_message(item, "item", &id, &ev->role, &ev->text, e) < 0) {
        return -1;
    }
    if (id && (ev->item_id = strdup(id)) == NULL) goto oom;
    if (prev && (ev->previous_item_id = strdup(prev)) == NULL) goto oom;
    return 0;
oom:
    return perr(e, "server_error", "item", "Out of memory.");
}

/* Metadata: at most 16 string values, keys <= 64 and values <= 512 bytes. */
static int parse_metadata(const json_t *v, const char *param, char **out, proto_error *e)
{
    const char *k;
    json_t *x;
    if (json_is_null(v)) return 0;
    if (!json_is_object(v)) return bad_type(e, param, "an object or null", v);
    if (json_object_size(v) > 16)
        return perr(e, "invalid_value", param, "'%s' may hold at most 16 keys.", param);
    json_object_foreach((json_t *)v, k, x) {
        if (strlen(k) > 64)
            return perr(e, "invalid_value", param, "'%s' keys may be at most 64 characters.", param);
        if (!json_is_string(x))
            return perr(e, "invalid_type", param, "'%s.%.64s' must be a string.", param, k);
        if (json_string_length(x) > 512)
            return perr(e, "invalid_value", param, "'%s.%.64s' may be at most 512 characters.", param, k);
    }
    if ((*out = json_dumps(v, JSON_COMPACT)) == NULL) return perr(e, "server_error", param, "Out of memory.");
    return 0;
}

/* response.input: messages and item references. */
static int parse_input(const json_t *v, proto_client_event *ev, proto_error *e)
{
    size_t i;
    json_t *it;
    char p[64];
    if (!json_is_array(v)) return bad_type(e, "response.input", "an array", v);
    ev->has_input = 1;
    if (json_array_size(v) == 0) return 0;
    if (json_array_size(v) > 1024)
        return perr(e, "invalid_value", "response.input", "'response.input' may hold at most 1024 items.");
    ev->input = calloc(json_array_size(v), sizeof *ev->input);
    if (ev->input == NULL) return perr(e, "server_error", "response.input", "Out of memory.");
    json_array_foreach(v, i, it) {
        const char *type = NULL, *id = NULL;
        proto_input_item *in = &ev->input[ev->n_input];
        snprintf(p, sizeof p, "response.input[%zu]", i);
        if (json_is_object(it)) type = json_string_value(json_object_get(it, "type"));
        if (type && strcmp(type, "item_reference") == 0) {
            char q[80];
            snprintf(q, sizeof q, "%s.id", p);
            if (get_str(it, "id", q, &id, e) < 0) return -1;
            if (id == NULL) return missing(e, q);
            if ((in->ref_id = strdup(id)) == NULL) return perr(e, "server_error", p, "Out of memory.");
        } else if (parse_message(it, p, &id, &in->role, &in->text, e) < 0) {
            free(in->text);
            in->text = NULL;
            return -1;
        }
        ev->n_input++;
    }
    return 0;
}

static int parse_response_create(const json_t *root, proto_dialect d, proto_client_event *ev,
                                 proto_error *e)
{
    json_t *r, *m, *v;
    const char *key = d == PROTO_BETA ? "modalities" : "output_modalities";
    const char *param = d == PROTO_BETA ? "response.modalities" : "response.output_modalities";
    const char *mt_key = d == PROTO_BETA ? "max_response_output_tokens" : "max_output_tokens";
    const char *conv;
    ev->max_output_tokens = -1;
    if (get_obj(root, "response", "response", &r, e) < 0) return -1;
    if (r == NULL) return 0;
    if (dup_str(r, "instructions", "response.instructions", &ev->instructions, e) < 0) return -1;
    if ((m = opt(r, key)) != NULL && parse_modalities(m, param, &ev->modalities, e) < 0) return -1;
    if ((v = opt(r, "metadata")) != NULL && parse_metadata(v, "response.metadata", &ev->metadata_json, e) < 0)
        return -1;
    if (get_str(r, "conversation", "response.conversation", &conv, e) < 0) return -1;
    if (conv && strcmp(conv, "none") == 0) ev->out_of_band = 1;
    else if (conv && strcmp(conv, "auto") != 0)
        return perr(e, "invalid_value", "response.conversation",
                    "Invalid value for 'response.conversation': '%.40s'. Supported values are: 'auto' and 'none'.",
                    conv);
    if ((v = opt(r, mt_key)) != NULL) {
        char mp[64];
        snprintf(mp, sizeof mp, "response.%s", mt_key);
        if (parse_max_tokens(v, mp, &ev->max_output_tokens, e) < 0) return -1;
    }
    if (d == PROTO_BETA) {
        if (dup_str(r, "voice", "response.voice", &ev->voice, e) < 0) return -1;
    } else {
        json_t *audio, *out;
        if (get_obj(r, "audio", "response.audio", &audio, e) < 0) return -1;
        if (audio && get_obj(audio, "output", "response.audio.output", &out, e) < 0) return -1;
        if (audio && out && (v = opt(out, "voice")) != NULL &&
            parse_voice_ga(v, "response.audio.output.voice", &ev->voice, e) < 0)
            return -1;
        if (audio && out && (v = opt(out, "format")) != NULL) {
            int rate = 0;
            if (parse_format_ga(v, "response.audio.output.format", &rate, e) < 0) return -1;
        }
    }
    if ((v = opt(r, "input")) != NULL && parse_input(v, ev, e) < 0) return -1;
    if ((v = opt(r, "tools")) != NULL) {
        if (parse_tools(v, "response.tools", &ev->tools_json, e) < 0) return -1;
        ev->has_tools = 1;
    }
    if ((v = opt(r, "tool_choice")) != NULL && parse_tool_choice(v, "response.tool_choice", &ev->tool_choice, e) < 0)
        return -1;
    return 0;
}

static int parse_response_cancel(const json_t *root, proto_client_event *ev, proto_error *e)
{
    return dup_str(root, "response_id", "response_id", &ev->response_id, e) < 0 ? -1 : 0;
}

/* conversation.item.truncate: the client played only audio_end_ms of an
 * assistant item's audio. */
static int parse_item_truncate(const json_t *root, proto_client_event *ev, proto_error *e)
{
    int r;
    if (dup_str(root, "item_id", "item_id", &ev->item_id, e) < 0) return -1;
    if (ev->item_id == NULL) return missing(e, "item_id");
    if ((r = get_int(root, "content_index", "content_index", 0, 1000, &ev->content_index, e)) < 0) return -1;
    if (r == 0) return missing(e, "content_index");
    if ((r = get_int(root, "audio_end_ms", "audio_end_ms", 0, 86400000, &ev->audio_end_ms, e)) < 0) return -1;
    if (r == 0) return missing(e, "audio_end_ms");
    return 0;
}

static const struct {
    const char *name;
    proto_client_type type;
} client_types[] = {
    {"conversation.item.truncate", PC_ITEM_TRUNCATE},
    {"conversation.item.retrieve", PC_ITEM_RETRIEVE},
    {"conversation.item.delete", PC_ITEM_DELETE},
    {"session.update", PC_SESSION_UPDATE},
    {"input_audio_buffer.append", PC_AUDIO_APPEND},
    {"input_audio_buffer.commit", PC_AUDIO_COMMIT},
    {"input_audio_buffer.clear", PC_AUDIO_CLEAR},
    {"output_audio_buffer.clear", PC_OUTPUT_AUDIO_CLEAR},
    {"conversation.item.create", PC_ITEM_CREATE},
    {"response.create", PC_RESPONSE_CREATE},
    {"response.cancel", PC_RESPONSE_CANCEL},
};

/* Copy at most dstlen-1 bytes, cut back to a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* JSON values in text, counted without parsing: every value but the first
 * follows a ',' or an opening '[' or ':' outside a string. Stops counting
 * past max. A parse builds one object per value (tens of bytes each), so a
 * few MB of "[0,0,0,..." would cost a hundred MB: such events are refused
 * before they are parsed. */
static size_t json_values_upto(const char *s, size_t len, size_t max)
{
    size_t n = 1;
    int in_str = 0;
    for (size_t i = 0; i < len && n <= max; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ',' || c == '[' || c == ':') {
            n++;
        }
    }
    return n;
}

/*
 * The hot event, input_audio_buffer.append, read without building a JSON
 * tree: tens of times a second per caller, and a tree means copying the
 * audio's base64 text byte by byte into a json string first (most of the
 * host's CPU per audio chunk). Only the plain shape is taken here: one
 * object whose members are "type" (exactly the append), "audio" and
 * optionally "event_id", each once, every key and value a string of
 * printable ASCII without escapes, JSON whitespace between tokens, nothing
 * after the object. Anything else (escapes, other members, other values,
 * non-ASCII, duplicates, bad JSON) returns 0 and goes through jansson, so
 * every answer, errors included, is the one the full parse gives (the
 * protocol fuzz target checks that both agree).
 */
typedef struct span {
    const char *p;
    size_t n;
} span;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* A string of printable ASCII without escapes at *pp: its span. */
static int plain_string(const char **pp, const char *end, span *out)
{
    const char *p = *pp;
    if (p >= end || *p != '"') return 0;
    const char *q = ++p;
    while (q < end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20 || c >= 0x7f || c == '\\') return 0;
        q++;
    }
    if (q >= end) return 0;
    out->p = p;
    out->n = (size_t)(q - p);
    *pp = q + 1;
    return 1;
}

static int span_is(span s, const char *lit) { return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0; }

/* 1: handled (rc is the result); 0: not the plain shape. */
static int fast_append(const char *json, size_t len, size_t max_samples, proto_client_event *ev,
                       proto_error *err, int *rc)
{
    const char *p = json, *end = json + len;
    span type = {0}, audio = {0}, event_id = {0}, key, val;
    int have_type = 0, have_audio = 0, have_id = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return 0;
    for (;;) {
        p = skip_ws(p, end);
        if (!plain_string(&p, end, &key)) return 0;
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':') return 0;
        p = skip_ws(p, end);
        if (!plain_string(&p, end, &val)) return 0;
        if (span_is(key, "type") && !have_type) {
            type = val;
            have_type = 1;
        } else if (span_is(key, "audio") && !have_audio) {
            audio = val;
            have_audio = 1;
        } else if (span_is(key, "event_id") && !have_id) {
            event_id = val;
            have_id = 1;
        } else {
            return 0;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') break;
        return 0;
    }
    if (skip_ws(p + 1, end) != end) return 0;
    if (!have_type || !have_audio || !span_is(type, "input_audio_buffer.append")) return 0;
    if (have_id) {
        size_t n = event_id.n < sizeof ev->event_id - 1 ? event_id.n : sizeof ev->event_id - 1;
        memcpy(ev->event_id, event_id.p, n); /* ASCII: any cut is a character boundary */
        ev->event_id[n] = '\0';
    }
    ev->type = PC_AUDIO_APPEND;
    *rc = decode_audio((const unsigned char *)audio.p, audio.n, max_samples, ev, err);
    return 1;
}

int proto_parse(const char *json, size_t len, proto_dialect d, size_t max_audio_samples,
                proto_client_event *ev, proto_error *err)
{
    int rc;
    if (json != NULL) {
        memset(ev, 0, sizeof *ev);
        memset(err, 0, sizeof *err);
        if (fast_append(json, len, max_audio_samples, ev, err, &rc)) {
            if (rc != 0) {
                memcpy(err->event_id, ev->event_id, sizeof err->event_id);
                proto_client_event_free(ev);
            }
            return rc;
        }
    }
    return proto_parse_full(json, len, d, max_audio_samples, ev, err);
}

int proto_parse_full(const char *json, size_t len, proto_dialect d, size_t max_audio_samples,
                     proto_client_event *ev, proto_error *err)
{
    json_t *root = NULL, *v;
    json_error_t je;
    const char *type;
    size_t i;
    int rc = -1;

    memset(ev, 0, sizeof *ev);
    memset(err, 0, sizeof *err);
    if (json == NULL) {
        perr(err, "invalid_json", NULL, "The event is empty.");
        goto out;
    }
    if (json_values_upto(json, len, PROTO_MAX_JSON_VALUES) > PROTO_MAX_JSON_VALUES) {
        perr(err, "invalid_event", NULL, "The event has more than %d JSON values; no client event needs that many.",
             PROTO_MAX_JSON_VALUES);
        goto out;
    }
    root = json_loadb(json, len, JSON_DECODE_ANY, &je);
    if (root == NULL) {
        perr(err, "invalid_json", NULL, "The event is not valid JSON: %s (at byte %d).", je.text,
             je.position);
        goto out;
    }
    if (!json_is_object(root)) {
        perr(err, "invalid_type", NULL, "Invalid event: expected a JSON object, but got %s.",
             jtype_name(root));
        goto out;
    }
    if ((v = opt(root, "event_id")) != NULL) {
        if (!json_is_string(v)) {
            bad_type(err, "event_id", "a string", v);
            goto out;
        }
        copy_utf8(ev->event_id, sizeof ev->event_id, json_string_value(v));
    }
    v = json_object_get(root, "type");
    if (v == NULL) {
        missing(err, "type");
        goto out;
    }
    if ((type = json_string_value(v)) == NULL) {
        bad_type(err, "type", "a string", v);
        goto out;
    }
    for (i = 0; i < sizeof client_types / sizeof client_types[0]; i++)
        if (strcmp(type, client_types[i].name) == 0) break;
    if (i == sizeof client_types / sizeof client_types[0]) {
        perr(err, "unknown_event", "type", "Unknown or unsupported event type '%.80s'.", type);
        goto out;
    }
    ev->type = client_types[i].type;
    switch (ev->type) {
    case PC_SESSION_UPDATE: rc = parse_session_update(root, d, ev, err); break;
    case PC_AUDIO_APPEND: rc = parse_append(root, max_audio_samples, ev, err); break;
    case PC_AUDIO_COMMIT:
    case PC_AUDIO_CLEAR:
    case PC_OUTPUT_AUDIO_CLEAR: rc = 0; break;
    case PC_ITEM_CREATE: rc = parse_item_create(root, ev, err); break;
    case PC_RESPONSE_CREATE: rc = parse_response_create(root, d, ev, err); break;
    case PC_RESPONSE_CANCEL: rc = parse_response_cancel(root, ev, err); break;
    case PC_ITEM_TRUNCATE: rc = parse_item_truncate(root, ev, err); break;
    case PC_ITEM_RETRIEVE:
    case PC_ITEM_DELETE:
        rc = dup_str(root, "item_id", "item_id", &ev->item_id, err) < 0 ? -1 : ev->item_id ? 0 : missing(err, "item_id");
        break;
    }
out:
    if (rc != 0) {
        memcpy(err->event_id, ev->event_id, sizeof err->event_id);
        proto_client_event_free(ev);
    }
    json_decref(root);
    return rc;
}

void proto_client_event_free(proto_client_event *ev)
{
    if (ev == NULL) return;
    proto_session_clear(&ev->session);
    free(ev->pcm);
    free(ev->item_id);
    free(ev->previous_item_id);
    free(ev->role);
    free(ev->text);
    free(ev->instructions);
    free(ev->response_id);
    free(ev->metadata_json);
    free(ev->voice);
    free(ev->field_errors);
    free(ev->item_type);
    free(ev->call_id);
    free(ev->name);
    free(ev->tools_json);
    free(ev->tool_choice);
    for (size_t i = 0; i < ev->n_input; i++) {
        free(ev->input[i].role);
        free(ev->input[i].text);
        free(ev->input[i].ref_id);
    }
    free(ev->input);
    memset(ev, 0, sizeof *ev);
}

/* ============================================================ session state */

void proto_session_defaults(proto_session *s, proto_dialect d)
{
    memset(s, 0, sizeof *s);
    s->input_rate = 24000;
    s->output_rate = 24000;
    s->modalities = d == PROTO_BETA ? (PROTO_MOD_TEXT | PROTO_MOD_AUDIO) : PROTO_MOD_AUDIO;
    s->turn = (proto_turn_detection){.enabled = 1, .threshold = 0.5, .prefix_padding_ms = 300,
                                     .silence_duration_ms = 500, .create_response = 1, .interrupt_response = 1};
    s->temperature = -1.0;
    s->max_output_tokens = 0;
    s->transcription = 1;
}

/* strdup that keeps NULL (a field set to "nothing"). */
static int dup_or_null(const char *src, char **out)
{
    *out = NULL;
    if (src == NULL) return 0;
    *out = strdup(src);
    return *out ? 0 : -1;
}

int proto_session_merge(proto_session *s, const proto_session *upd)
{
    char *instr = NULL, *voice = NULL, *tools = NULL, *choice = NULL;
    unsigned set = upd->set;
    /* Every copy first, so a failure leaves s as it was. */
    if ((set & PS_INSTRUCTIONS) && dup_or_null(upd->instructions, &instr) < 0) goto fail;
    if ((set & PS_VOICE) && dup_or_null(upd->voice, &voice) < 0) goto fail;
    if ((set & PS_TOOLS) && dup_or_null(upd->tools_json, &tools) < 0) goto fail;
    if ((set & PS_TOOL_CHOICE) && dup_or_null(upd->tool_choice, &choice) < 0) goto fail;
    if (set & PS_TOOLS) {
        free(s->tools_json);
        s->tools_json = tools;
    }
    if (set & PS_TOOL_CHOICE) {
        free(s->tool_choice);
        s->tool_choice = choice;
    }
    if (set & PS_INSTRUCTIONS) {
        free(s->instructions);
        s->instructions = instr;
    }
    if (set & PS_VOICE) {
        free(s->voice);
        s->voice = voice;
    }
    if (set & PS_INPUT_RATE) s->input_rate = upd->input_rate;
    if (set & PS_OUTPUT_RATE) s->output_rate = upd->output_rate;
    if (set & PS_MODALITIES) s->modalities = upd->modalities;
    if (set & PS_TURN_DETECTION) s->turn = upd->turn;
    if (set & PS_TEMPERATURE) s->temperature = upd->temperature;
    if (set & PS_MAX_OUTPUT_TOKENS) s->max_output_tokens = upd->max_output_tokens;
    if (set & PS_TRANSCRIPTION) s->transcription = upd->transcription;
    s->set |= set;
    return 0;
fail:
    free(instr);
    free(voice);
    free(tools);
    free(choice);
    errno = ENOMEM;
    return -1;
}

void proto_session_clear(proto_session *s)
{
    if (s == NULL) return;
    free(s->id);
    free(s->model);
    free(s->instructions);
    free(s->voice);
    free(s->tools_json);
    free(s->tool_choice);
    memset(s, 0, sizeof *s);
}

/* ============================================================ server events */

/* Set o[key] = v, taking v; -1 if v is NULL (a failed constructor) or the
 * set fails (jansson then drops v). Failures are OR-ed by the callers and
 * checked once. */
static int put(json_t *o, const char *key, json_t *v)
{
    if (o == NULL || v == NULL) {
        json_decref(v);
        return -1;
    }
    return json_object_set_new(o, key, v);
}

static int push(json_t *a, json_t *v)
{
    if (a == NULL || v == NULL) {
        json_decref(v);
        return -1;
    }
    return json_array_append_new(a, v);
}

/* Event ids only have to be distinct (a session id or a resume token has
 * to be unguessable; an event id names one message): each thread draws
 * them from its own generator (splitmix64), seeded once from RAND_bytes,
 * instead of asking OpenSSL's locked DRBG for every event. 20 symbols of
 * 62 carry 119 bits; two 64-bit draws feed them. */
static _Thread_local uint64_t t_ev_state;
static _Thread_local int t_ev_seeded;

static uint64_t ev_next(void)
{
    uint64_t z = (t_ev_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void new_event_id(char *buf, size_t len)
{
    char sym[20];
    if (!t_ev_seeded) {
        if (RAND_bytes((unsigned char *)&t_ev_state, sizeof t_ev_state) != 1) {
            char seed[8];
            id_fallback(seed, sizeof seed);
            memcpy(&t_ev_state, seed, sizeof t_ev_state);
        }
        t_ev_seeded = 1;
    }
    uint64_t a = ev_next(), b = ev_next();
    for (size_t i = 0; i < sizeof sym; i++) {
        uint64_t *v = i < 10 ? &a : &b;
        sym[i] = id_alphabet[*v % 62];
        *v /= 62;
    }
    snprintf(buf, len, "event_%.20s", sym);
}

/* {event_id, type}: the head of every server event. */
static json_t *ev_begin(const char *type)
{
    char id[32];
    json_t *o = json_object();
    new_event_id(id, sizeof id);
    if (put(o, "event_id", json_string(id)) | put(o, "type", json_string(type))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Serialize and release o. NULL with errno = ENOMEM if anything failed. */
static char *ev_end(json_t *o, int rc)
{
    char *text = NULL;
    if (o != NULL && rc == 0) text = json_dumps(o, PROTO_DUMP_FLAGS);
    json_decref(o);
    if (text == NULL) errno = ENOMEM;
    return text;
}

static const char *dname(proto_dialect d, const char *ga, const char *beta)
{
    return d == PROTO_BETA ? beta : ga;
}

static json_t *modalities_json(unsigned m)
{
    json_t *a = json_array();
    int rc = 0;
    if (m & PROTO_MOD_TEXT) rc |= push(a, json_string("text"));
    if (m & PROTO_MOD_AUDIO) rc |= push(a, json_string("audio"));
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *format_ga(int rate)
{
    return json_pack("{s:s, s:i}", "type", "audio/pcm", "rate", rate);
}

static json_t *turn_json(proto_dialect d, const proto_turn_detection *t)
{
    json_t *o;
    if (!t->enabled) return json_null();
    if (!isfinite(t->threshold)) return NULL;
    if (t->semantic) {
        static const char *const names[] = {"auto", "low", "medium", "high"};
        return json_pack("{s:s, s:s, s:b, s:b}", "type", "semantic_vad", "eagerness",
                         names[t->eagerness >= 0 && t->eagerness < 4 ? t->eagerness : 0], "create_response",
                         t->create_response, "interrupt_response", t->interrupt_response);
    }
    o = json_pack("{s:s, s:f, s:i, s:i, s:b, s:b}", "type", "server_vad", "threshold", t->threshold,
                  "prefix_padding_ms", t->prefix_padding_ms, "silence_duration_ms",
                  t->silence_duration_ms, "create_response", t->create_response,
                  "interrupt_response", t->interrupt_response);
    if (o != NULL && d != PROTO_BETA && put(o, "idle_timeout_ms", json_null()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *max_tokens_json(int n)
{
    return n > 0 ? json_integer(n) : json_string("inf");
}

static json_t *tools_json(const char *text)
{
    json_t *t = text ? json_loads(text, 0, NULL) : NULL;
    return t ? t : json_array();
}

static json_t *tool_choice_json(const char *c)
{
    if (c == NULL) return json_string("auto");
    if (strcmp(c, "auto") == 0 || strcmp(c, "none") == 0 || strcmp(c, "required") == 0) return json_string(c);
    return json_pack("{s:s, s:s}", "type", "function", "name", c);
}

static json_t *session_ga(const proto_session *s)
{
    json_t *o = json_object(), *audio = json_object(), *in = json_object(), *out = json_object();
    int rc = 0;
    rc |= put(o, "type", json_string("realtime"));
    rc |= put(o, "object", json_string("realtime.session"));
    rc |= put(o, "id", jstr0(s->id));
    if (s->model) rc |= put(o, "model", jstr(s->model));
    rc |= put(o, "output_modalities", modalities_json(s->modalities));
    rc |= put(o, "instructions", jstr0(s->instructions));
    rc |= put(in, "format", format_ga(s->input_rate));
    rc |= put(in, "transcription", s->transcription ? json_object() : json_null());
    rc |= put(in, "turn_detection", turn_json(PROTO_GA, &s->turn));
    rc |= put(out, "format", format_ga(s->output_rate));
    if (s->voice) rc |= put(out, "voice", jstr(s->voice));
    rc |= put(audio, "input", in);
    rc |= put(audio, "output", out);
    rc |= put(o, "audio", audio);
    rc |= put(o, "tools", tools_json(s->tools_json));
    rc |= put(o, "tool_choice", tool_choice_json(s->tool_choice));
    rc |= put(o, "max_output_tokens", max_tokens_json(s->max_output_tokens));
    rc |= put(o, "tracing", json_null());
    rc |= put(o, "truncation", json_string("auto"));
    rc |= put(o, "prompt", json_null());
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *session_beta(const proto_session *s)
{
    json_t *o = json_object();
    int rc = 0;
    rc |= put(o, "id", jstr0(s->id));
    rc |= put(o, "object", json_string("realtime.session"));
    if (s->model) rc |= put(o, "model", jstr(s->model));
    rc |= put(o, "modalities", modalities_json(s->modalities));
    rc |= put(o, "instructions", jstr0(s->instructions));
    if (s->voice) rc |= put(o, "voice", jstr(s->voice));
    rc |= put(o, "input_audio_format", json_string("pcm16"));
    rc |= put(o, "output_audio_format", json_string("pcm16"));
    rc |= put(o, "input_audio_transcription", s->transcription ? json_object() : json_null());
    rc |= put(o, "turn_detection", turn_json(PROTO_BETA, &s->turn));
    rc |= put(o, "tools", tools_json(s->tools_json));
    rc |= put(o, "tool_choice", tool_choice_json(s->tool_choice));
    if (s->temperature >= 0 && isfinite(s->temperature))
        rc |= put(o, "temperature", json_real(s->temperature));
    rc |= put(o, "max_response_output_tokens", max_tokens_json(s->max_output_tokens));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *proto_ev_session(proto_dialect d, int updated, const proto_session *s)
{
    json_t *o;
    if (s == NULL) {
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin(updated ? "session.updated" : "session.created");
    return ev_end(o, put(o, "session", d == PROTO_BETA ? session_beta(s) : session_ga(s)));
}

/* Move member key of from into to when the bit is set in set. */
static int take(json_t *to, json_t *from, const char *key, unsigned set, unsigned bit)
{
    json_t *v = (set & bit) && from ? json_object_get(from, key) : NULL;
    return v ? json_object_set(to, key, v) : 0;
}

char *proto_session_update_json(proto_dialect d, const proto_session *s)
{
    json_t *full = d == PROTO_BETA ? session_beta(s) : session_ga(s);
    json_t *o = json_object();
    unsigned set = s->set;
    int rc = full == NULL || o == NULL;
    char *text = NULL;

    if (!rc) {
        rc |= take(o, full, "instructions", set, PS_INSTRUCTIONS);
        rc |= take(o, full, "tools", set, PS_TOOLS);
        rc |= take(o, full, "tool_choice", set, PS_TOOL_CHOICE);
    }
    if (!rc && d == PROTO_BETA) {
        rc |= take(o, full, "voice", set, PS_VOICE);
        rc |= take(o, full, "modalities", set, PS_MODALITIES);
        rc |= take(o, full, "turn_detection", set, PS_TURN_DETECTION);
        rc |= take(o, full, "temperature", set, PS_TEMPERATURE);
        rc |= take(o, full, "max_response_output_tokens", set, PS_MAX_OUTPUT_TOKENS);
        rc |= take(o, full, "input_audio_transcription", set, PS_TRANSCRIPTION);
    } else if (!rc) {
        json_t *audio = json_object_get(full, "audio");
        json_t *fin = json_object_get(audio, "input"), *fout = json_object_get(audio, "output");
        json_t *in = json_object(), *out = json_object(), *a = json_object();
        rc |= take(o, full, "output_modalities", set, PS_MODALITIES);
        rc |= take(o, full, "max_output_tokens", set, PS_MAX_OUTPUT_TOKENS);
        rc |= take(in, fin, "format", set, PS_INPUT_RATE);
        rc |= take(in, fin, "transcription", set, PS_TRANSCRIPTION);
        rc |= take(in, fin, "turn_detection", set, PS_TURN_DETECTION);
        rc |= take(out, fout, "format", set, PS_OUTPUT_RATE);
        rc |= take(out, fout, "voice", set, PS_VOICE);
        if (in && json_object_size(in)) rc |= json_object_set(a, "input", in);
        if (out && json_object_size(out)) rc |= json_object_set(a, "output", out);
        if (a && json_object_size(a)) rc |= json_object_set(o, "audio", a);
        rc |= in == NULL || out == NULL || a == NULL;
        json_decref(in);
        json_decref(out);
        json_decref(a);
    }
    if (!rc) text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(full);
    json_decref(o);
    return text;
}

char *proto_session_restate(const char *session_json, proto_dialect from, proto_dialect to, proto_error *e)
{
    proto_client_event ev;
    char *upd = NULL, *out = NULL;

    memset(e, 0, sizeof *e);
    if (asprintf(&upd, "{\"type\":\"session.update\",\"session\":%s}", session_json) < 0) return NULL;
    int rc = proto_parse(upd, strlen(upd), from, 0, &ev, e);
    free(upd);
    if (rc != 0) return NULL;
    if (ev.n_field_errors > 0) {
        *e = ev.field_errors[0];
    } else {
        out = proto_session_update_json(to, &ev.session);
    }
    proto_client_event_free(&ev);
    return out;
}

char *proto_ev_error(proto_dialect d, const proto_error *e)
{
    json_t *o, *er = json_object();
    int rc = 0;
    (void)d; /* same shape in both dialects */
    if (e == NULL) {
        json_decref(er);
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin("error");
    rc |= put(er, "type", jstr(e->type[0] ? e->type : "invalid_request_error"));
    rc |= put(er, "code", jstr_null(e->code));
    rc |= put(er, "message", jstr(e->message));
    rc |= put(er, "param", jstr_null(e->param));
    rc |= put(er, "event_id", jstr_null(e->event_id));
    rc |= put(o, "error", er);
    return ev_end(o, rc);
}

char *proto_ev_speech_started(proto_dialect d, int audio_start_ms, const char *item_id)
{
    json_t *o = ev_begin("input_audio_buffer.speech_started");
    int rc = 0;
    (void)d;
    rc |= put(o, "audio_start_ms", json_integer(audio_start_ms));
    rc |= put(o, "item_id", jstr0(item_id));
    return ev_end(o, rc);
}

char *proto_ev_speech_stopped(proto_dialect d, int audio_end_ms, const char *item_id)
{
    json_t *o = ev_begin("input_audio_buffer.speech_stopped");
    int rc = 0;
    (void)d;
    rc |= put(o, "audio_end_ms", json_integer(audio_end_ms));
    rc |= put(o, "item_id", jstr0(item_id));
    return ev_end(o, rc);
}

char *proto_ev_audio_committed(proto_dialect d, const char *item_id, const char *previous_item_id)
{
    json_t *o = ev_begin("input_audio_buffer.committed");
    int rc = 0;
    (void)d;
    rc |= put(o, "previous_item_id", jstr_null(previous_item_id));
    rc |= put(o, "item_id", jstr0(item_id));
    return ev_end(o, rc);
}

char *proto_ev_item_truncated(proto_dialect d, const char *item_id, int content_index, int audio_end_ms)
{
    (void)d;
    json_t *o = ev_begin("conversation.item.truncated");
    if (o == NULL) return ev_end(NULL, -1);
    int rc = put(o, "item_id", json_string(item_id ? item_id : "")) |
             put(o, "content_index", json_integer(content_index)) |
             put(o, "audio_end_ms", json_integer(audio_end_ms));
    return ev_end(o, rc);
}

char *proto_ev_audio_cleared(proto_dialect d)
{
    (void)d;
    return ev_end(ev_begin("input_audio_buffer.cleared"), 0);
}

/* One content part of an item, typed per dialect. */
static json_t *item_part(proto_dialect d, proto_content c, const char *text)
{
    const char *type, *key;
    json_t *o;
    switch (c) {
    case PROTO_INPUT_TEXT: type = "input_text", key = "text"; break;
    case PROTO_INPUT_AUDIO: type = "input_audio", key = "transcript"; break;
    case PROTO_OUTPUT_TEXT: type = dname(d, "output_text", "text"), key = "text"; break;
    case PROTO_OUTPUT_AUDIO: type = dname(d, "output_audio", "audio"), key = "transcript"; break;
    default: return NULL;
    }
    o = json_object();
    if (put(o, "type", json_string(type)) | put(o, key, jstr(text))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *item_json(proto_dialect d, const proto_item *it)
{
    if (it->type && strcmp(it->type, "function_call") == 0)
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", it->id ? it->id : "", "type", "function_call",
                         "object", "realtime.item", "status", it->status ? it->status : "completed", "call_id",
                         it->call_id ? it->call_id : "", "name", it->name ? it->name : "", "arguments",
                         it->text ? it->text : "");
    if (it->type && strcmp(it->type, "function_call_output") == 0)
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", it->id ? it->id : "", "type",
                         "function_call_output", "object", "realtime.item", "status",
                         it->status ? it->status : "completed", "call_id", it->call_id ? it->call_id : "",
                         "output", it->text ? it->text : "");
    json_t *o = json_object(), *content = json_array();
    int rc = 0;
    rc |= put(o, "id", jstr0(it->id));
    rc |= put(o, "type", json_string("message"));
    rc |= put(o, "object", json_string("realtime.item"));
    rc |= put(o, "status", jstr(it->status ? it->status : "completed"));
    rc |= put(o, "role", jstr0(it->role));
    rc |= push(content, item_part(d, it->content, it->text));
    rc |= put(o, "content", content);
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static char *item_event(const char *type, proto_dialect d, const proto_item *it,
                        const char *previous_item_id)
{
    json_t *o;
    int rc = 0;
    if (it == NULL) {
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin(type);
    rc |= put(o, "previous_item_id", jstr_null(previous_item_id));
    rc |= put(o, "item", item_json(d, it));
    return ev_end(o, rc);
}

char *proto_ev_item_added(proto_dialect d, const proto_item *it, const char *previous_item_id)
{
    return item_event(dname(d, "conversation.item.added", "conversation.item.created"), d, it,
                      previous_item_id);
}

char *proto_ev_item_done(proto_dialect d, const proto_item *it, const char *previous_item_id)
{
    if (d == PROTO_BETA) {
        errno = ENOENT;
        return NULL;
    }
    return item_event("conversation.item.done", d, it, previous_item_id);
}

char *proto_ev_transcription_delta(proto_dialect d, const char *item_id, const char *delta)
{
    json_t *o = ev_begin("conversation.item.input_audio_transcription.delta");
    int rc = 0;
    (void)d;
    rc |= put(o, "item_id", jstr0(item_id));
    rc |= put(o, "content_index", json_integer(0));
    rc |= put(o, "delta", jstr0(delta));
    return ev_end(o, rc);
}

char *proto_ev_transcription_completed(proto_dialect d, const char *item_id, const char *transcript)
{
    json_t *o = ev_begin("conversation.item.input_audio_transcription.completed");
    int rc = 0;
    (void)d;
    rc |= put(o, "item_id", jstr0(item_id));
    rc |= put(o, "content_index", json_integer(0));
    rc |= put(o, "transcript", jstr0(transcript));
    /* usage is required by the type; the STT plugins report no token counts. */
    rc |= put(o, "usage", json_pack("{s:s, s:i, s:i, s:i, s:{s:i, s:i}}", "type", "tokens", "input_tokens", 0,
                                    "output_tokens", 0, "total_tokens", 0, "input_token_details", "text_tokens", 0,
                                    "audio_tokens", 0));
    return ev_end(o, rc);
}

char *proto_ev_transcription_failed(proto_dialect d, const char *item_id, const proto_error *e)
{
    json_t *o, *er = json_object();
    int rc = 0;
    (void)d;
    if (e == NULL) {
        json_decref(er);
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin("conversation.item.input_audio_transcription.failed");
    rc |= put(o, "item_id", jstr0(item_id));
    rc |= put(o, "content_index", json_integer(0));
    rc |= put(er, "type", jstr(e->type[0] ? e->type : "server_error"));
    if (e->code[0]) rc |= put(er, "code", jstr(e->code));
    rc |= put(er, "message", jstr(e->message));
    if (e->param[0]) rc |= put(er, "param", jstr(e->param));
    rc |= put(o, "error", er);
    return ev_end(o, rc);
}

static json_t *usage_json(proto_dialect d, const proto_usage *u)
{
    json_t *in;
    if (u == NULL) return json_null();
    if (d == PROTO_BETA)
        in = json_pack("{s:i, s:i, s:i}", "cached_tokens", 0, "text_tokens", u->input_tokens,
                       "audio_tokens", 0);
    else
        in = json_pack("{s:i, s:i, s:i, s:i, s:{s:i, s:i, s:i}}", "cached_tokens", 0, "text_tokens",
                       u->input_tokens, "audio_tokens", 0, "image_tokens", 0,
                       "cached_tokens_details", "text_tokens", 0, "audio_tokens", 0,
                       "image_tokens", 0);
    if (in == NULL) return NULL;
    return json_pack("{s:i, s:i, s:i, s:o, s:{s:i, s:i}}", "total_tokens",
                     u->input_tokens + u->output_tokens, "input_tokens", u->input_tokens,
                     "output_tokens", u->output_tokens, "input_token_details", in,
                     "output_token_details", "text_tokens", u->output_tokens, "audio_tokens", 0);
}

/* null, {type, reason} or {type:"failed", error:{type, code, message}}. */
static json_t *status_details_json(const proto_response *r)
{
    const char *status = r->status ? r->status : "in_progress";
    json_t *o;
    int rc = 0;
    if (strcmp(status, "failed") != 0 && r->status_reason == NULL) return json_null();
    o = json_object();
    rc |= put(o, "type", jstr(status));
    if (r->status_reason) rc |= put(o, "reason", jstr(r->status_reason));
    if (r->error) {
        json_t *er = json_object();
        rc |= put(er, "type", jstr(r->error->type[0] ? r->error->type : "server_error"));
        rc |= put(er, "code", jstr0(r->error->code));
        rc |= put(er, "message", jstr0(r->error->message));
        rc |= put(o, "error", er);
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *response_json(proto_dialect d, const proto_response *r)
{
    json_t *o = json_object(), *output = json_array();
    int rc = 0;
    rc |= put(o, "id", jstr0(r->id));
    rc |= put(o, "object", json_string("realtime.response"));
    rc |= put(o, "status", jstr(r->status ? r->status : "in_progress"));
    rc |= put(o, "status_details", status_details_json(r));
    for (size_t i = 0; i < r->n_output && r->output; i++)
        rc |= push(output, item_json(d, &r->output[i]));
    rc |= put(o, "output", output);
    if (d == PROTO_BETA) {
        rc |= put(o, "modalities", modalities_json(r->modalities));
        if (r->voice) rc |= put(o, "voice", jstr(r->voice));
        rc |= put(o, "output_audio_format", json_string("pcm16"));
    } else {
        json_t *audio = json_object(), *out = json_object();
        rc |= put(o, "output_modalities", modalities_json(r->modalities));
        rc |= put(out, "format", format_ga(r->output_rate > 0 ? r->output_rate : 24000));
        if (r->voice) rc |= put(out, "voice", jstr(r->voice));
        rc |= put(audio, "output", out);
        rc |= put(o, "audio", audio);
    }
    {
        json_t *md = r->metadata_json ? json_loads(r->metadata_json, 0, NULL) : NULL;
        rc |= put(o, "metadata", md ? md : json_null());
    }
    rc |= put(o, "conversation_id", r->conversation_id ? jstr(r->conversation_id) : json_null());
    rc |= put(o, "max_output_tokens", max_tokens_json(r->max_output_tokens));
    rc |= put(o, "usage", usage_json(d, r->usage));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *proto_ev_response(proto_dialect d, int done, const proto_response *r)
{
    json_t *o;
    if (r == NULL) {
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin(done ? "response.done" : "response.created");
    return ev_end(o, put(o, "response", response_json(d, r)));
}

char *proto_ev_output_item(proto_dialect d, int done, const char *response_id, int output_index,
                           const proto_item *it)
{
    json_t *o;
    int rc = 0;
    if (it == NULL) {
        errno = EINVAL;
        return NULL;
    }
    o = ev_begin(done ? "response.output_item.done" : "response.output_item.added");
    rc |= put(o, "response_id", jstr0(response_id));
    rc |= put(o, "output_index", json_integer(output_index));
    rc |= put(o, "item", item_json(d, it));
    return ev_end(o, rc);
}

/* {event_id, type, response_id, item_id, output_index, content_index}. */
static json_t *pos_begin(const char *type, const proto_pos *p, int *rc)
{
    json_t *o = ev_begin(type);
    *rc |= put(o, "response_id", jstr0(p ? p->response_id : NULL));
    *rc |= put(o, "item_id", jstr0(p ? p->item_id : NULL));
    *rc |= put(o, "output_index", json_integer(p ? p->output_index : 0));
    *rc |= put(o, "content_index", json_integer(0));
    return o;
}

char *proto_ev_content_part(proto_dialect d, int done, const char *response_id, int output_index,
                            const proto_item *it)
{
    proto_pos p;
    json_t *o, *part;
    int rc = 0, audio;
    (void)d; /* ResponseContentPart*Event.Part is 'text' | 'audio' in both */
    if (it == NULL) {
        errno = EINVAL;
        return NULL;
    }
    audio = it->content == PROTO_INPUT_AUDIO || it->content == PROTO_OUTPUT_AUDIO;
    p = (proto_pos){response_id, it->id, output_index};
    o = pos_begin(done ? "response.content_part.done" : "response.content_part.added", &p, &rc);
    part = json_object();
    rc |= put(part, "type", json_string(audio ? "audio" : "text"));
    rc |= put(part, audio ? "transcript" : "text", jstr0(it->text));
    rc |= put(o, "part", part);
    return ev_end(o, rc);
}

static char *pos_text(const char *type, const proto_pos *p, const char *key, const char *text)
{
    int rc = 0;
    json_t *o = pos_begin(type, p, &rc);
    if (key) rc |= put(o, key, jstr0(text));
    return ev_end(o, rc);
}

char *proto_ev_text_delta(proto_dialect d, const proto_pos *p, const char *delta)
{
    return pos_text(dname(d, "response.output_text.delta", "response.text.delta"), p, "delta", delta);
}

char *proto_ev_text_done(proto_dialect d, const proto_pos *p, const char *text)
{
    return pos_text(dname(d, "response.output_text.done", "response.text.done"), p, "text", text);
}

/* Where the audio goes in the event jansson writes: the base64 text (its
 * alphabet needs no escaping in JSON) is put in its place afterwards, so a
 * delta's audio is not copied, validated and escaped byte by byte (the
 * bulk of the bytes voxray sends). No id or name here contains '@'. */
#define DELTA_MARK "@@voxray-audio@@"

char *proto_ev_audio_delta(proto_dialect d, const proto_pos *p, const int16_t *pcm, size_t samples)
{
    unsigned char *raw = NULL;
    size_t bytes, b64_len;
    int rc = 0;
    json_t *o;
    /* EVP_EncodeBlock takes an int length: 256 Mi samples is far past any
     * real chunk. */
    if (samples > (size_t)1 << 28 || (samples > 0 && pcm == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    o = pos_begin(dname(d, "response.output_audio.delta", "response.audio.delta"), p, &rc);
    rc |= put(o, "delta", json_string(DELTA_MARK));
    char *shape = ev_end(o, rc);
    if (shape == NULL) return NULL;
    char *mark = strstr(shape, "\"" DELTA_MARK "\"");
    if (mark && strstr(mark + 1, DELTA_MARK)) mark = NULL; /* an id has it too: not here */
    bytes = samples * 2;
    b64_len = 4 * ((bytes + 2) / 3);
    size_t head = mark ? (size_t)(mark - shape) + 1 : 0, tail_at = head + strlen(DELTA_MARK);
    size_t shape_len = strlen(shape);
    char *text = malloc(shape_len + b64_len + 1);
    raw = malloc(bytes ? bytes : 1);
    if (text == NULL || raw == NULL) {
        free(shape);
        free(text);
        free(raw);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < samples; i++) {
        uint16_t u = (uint16_t)pcm[i];
        raw[2 * i] = (unsigned char)(u & 0xff);
        raw[2 * i + 1] = (unsigned char)(u >> 8);
    }
    if (mark == NULL) {
        /* the long way: the audio through jansson */
        free(shape);
        EVP_EncodeBlock((unsigned char *)text, raw, (int)bytes);
        free(raw);
        rc = 0;
        o = pos_begin(dname(d, "response.output_audio.delta", "response.audio.delta"), p, &rc);
        rc |= put(o, "delta", json_string(text));
        free(text);
        return ev_end(o, rc);
    }
    memcpy(text, shape, head);
    EVP_EncodeBlock((unsigned char *)text + head, raw, (int)bytes);
    memcpy(text + head + b64_len, shape + tail_at, shape_len - tail_at + 1);
    free(shape);
    free(raw);
    return text;
}

char *proto_ev_audio_done(proto_dialect d, const proto_pos *p)
{
    return pos_text(dname(d, "response.output_audio.done", "response.audio.done"), p, NULL, NULL);
}

char *proto_ev_transcript_delta(proto_dialect d, const proto_pos *p, const char *delta)
{
    return pos_text(dname(d, "response.output_audio_transcript.delta",
                          "response.audio_transcript.delta"), p, "delta", delta);
}

char *proto_ev_transcript_done(proto_dialect d, const proto_pos *p, const char *transcript)
{
    return pos_text(dname(d, "response.output_audio_transcript.done",
                          "response.audio_transcript.done"), p, "transcript", transcript);
}

static json_t *fn_args_event(const char *type, const proto_pos *p, const char *call_id)
{
    json_t *o = ev_begin(type);
    int rc = 0;
    rc |= put(o, "response_id", jstr0(p->response_id));
    rc |= put(o, "item_id", jstr0(p->item_id));
    rc |= put(o, "output_index", json_integer(p->output_index));
    rc |= put(o, "call_id", jstr0(call_id));
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *proto_ev_function_args_delta(proto_dialect d, const proto_pos *p, const char *call_id, const char *delta)
{
    (void)d;
    json_t *o = fn_args_event("response.function_call_arguments.delta", p, call_id);
    return ev_end(o, o ? put(o, "delta", jstr0(delta)) : -1);
}

char *proto_ev_function_args_done(proto_dialect d, const proto_pos *p, const char *call_id, const char *name,
                                  const char *arguments)
{
    (void)d;
    json_t *o = fn_args_event("response.function_call_arguments.done", p, call_id);
    int rc = o ? put(o, "arguments", jstr0(arguments)) : -1;
    if (o && name) rc |= put(o, "name", jstr0(name));
    return ev_end(o, rc);
}

char *proto_ev_item_retrieved(proto_dialect d, const proto_item *it)
{
    json_t *o = ev_begin("conversation.item.retrieved");
    return ev_end(o, o ? put(o, "item", item_json(d, it)) : -1);
}

char *proto_ev_item_deleted(proto_dialect d, const char *item_id)
{
    (void)d;
    json_t *o = ev_begin("conversation.item.deleted");
    return ev_end(o, o ? put(o, "item_id", jstr0(item_id)) : -1);
}
