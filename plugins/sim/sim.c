/*
 * sim: configuration, the per-call fate, and the stream scheduler shared by
 * the STT, LLM and TTS providers (see sim.h for the model).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "sim.h"

/* Choices of the enum keys, in the order of the SIM_AT_* and SIM_HANG_*
 * values they parse to. */
#define SIM_FAIL_AT_CHOICES "start|first_output|mid_stream"
#define SIM_HANG_CHOICES "none|silent|block|stall"

static const vx_config_key sim_config[] = {
    {"seed", VX_CFG_INT, "1",
     "seed of the instance's PRNG: same seed and same call sequence, same behaviour",
     0, 9007199254740991.0, NULL, 0},
    {"latency", VX_CFG_DURATION, "0",
     "delay before the first output of a call (STT: first partial of an utterance "
     "and final after finish; LLM: first token; TTS: first audio chunk)",
     0, 600000, NULL, 0},
    {"jitter", VX_CFG_DURATION, "0", "uniform random extra delay 0..jitter added to each delay",
     0, 600000, NULL, 0},
    {"failure_rate", VX_CFG_FLOAT, "0", "probability that a call fails", 0, 1, NULL, 0},
    {"fail_first", VX_CFG_INT, "0",
     "the first N calls of the instance (all kinds together) fail, whatever failure_rate says",
     0, 1000000000, NULL, 0},
    {"fail_calls", VX_CFG_STRING, "",
     "comma-separated numbers of calls of the instance (1 = its first, all kinds together, "
     "up to 64) that fail, whatever failure_rate says", 0, 512, NULL, 0},
    {"error", VX_CFG_ENUM, "unavailable",
     "error of a failed call: unavailable (503), timeout (504), ratelimit (429) are "
     "retryable; auth (401), internal (500), protocol (502), invalid (400: the "
     "provider refuses the input) are not",
     0, 0, "unavailable|timeout|ratelimit|auth|internal|protocol|invalid", 0},
    {"fail_at", VX_CFG_ENUM, "start",
     "where a failing call fails: start (the call returns the error), first_output "
     "(on_error instead of the first output), mid_stream (some output, then on_error)",
     0, 0, SIM_FAIL_AT_CHOICES, 0},
    {"hang", VX_CFG_ENUM, "none",
     "silent: calls succeed but produce no event until cancel; block: open/generate/"
     "synthesize block until cancel, return VX_ECANCELED and leave *out to be closed; "
     "stall: a failing call (failure_rate, fail_first) stops where fail_at = first_output "
     "or mid_stream says, without an error, and produces nothing more until cancel",
     0, 0, SIM_HANG_CHOICES, 0},
    {"transcript", VX_CFG_STRING, "hello world", "STT: final text of every utterance",
     0, 4096, NULL, 0},
    {"transcripts", VX_CFG_STRING, "",
     "STT: '|'-separated finals cycled per utterance of a stream (overrides transcript)",
     0, 16384, NULL, 0},
    {"partial_every", VX_CFG_DURATION, "200ms",
     "STT: one more word of the transcript per this much fed audio (0: no partials)",
     0, 60000, NULL, 0},
    {"reply", VX_CFG_STRING, "",
     "LLM: the answer; empty echoes 'You said: <last user message>.'", 0, 16384, NULL, 0},
    {"token_delay", VX_CFG_DURATION, "20ms", "LLM: time between tokens after the first",
     0, 60000, NULL, 0},
    {"tool_call", VX_CFG_STRING, "",
     "LLM: 'NAME {JSON arguments}' (arguments default {}): when the request offers NAME "
     "among its tools and tool_choice is auto, a user turn is answered by this call (its "
     "arguments in 3 fragments, then on_done) instead of text; tool_choice 'required' or a "
     "function name forces a call, 'none' forbids it; a tool result last in the "
     "conversation is answered 'Tool said: <its content>.'",
     0, 16384, NULL, 0},
    {"tool_trigger", VX_CFG_STRING, "",
     "LLM: make the tool_call only when the last user message contains this text "
     "(ignoring case); empty: on every user turn",
     0, 256, NULL, 0},
    {"sample_rate", VX_CFG_INT, "16000", "TTS: output sample rate in Hz", 8000, 192000, NULL, 0},
    {"ms_per_char", VX_CFG_INT, "50", "TTS: milliseconds of audio per character of text",
     0, 10000, NULL, 0},
    {"chunk_ms", VX_CFG_DURATION, "40ms", "TTS: length of each on_audio chunk", 1, 10000, NULL, 0},
    {"realtime", VX_CFG_BOOL, "false",
     "TTS: pace chunks at real time after the first (false: as fast as possible)", 0, 0, NULL, 0},
    {"voice", VX_CFG_STRING, "alto",
     "TTS: voice when the caller names none; alto is 220 Hz, tenor 165 Hz, any other "
     "name a frequency of its own", 0, 64, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* ---------------------------------------------------------------- helpers */

uint64_t sim_now_ns(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, statistically sound, and any state is a valid state. */
uint64_t sim_rng_next(sim_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double sim_rng_unit(sim_rng *r) {
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t sim_jitter_ns(sim_inst *in, sim_rng *r) {
    if (in->jitter_ns == 0) return 0;
    return sim_rng_next(r) % (in->jitter_ns + 1);
}

void sim_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* Number the call and deal its fate. The first draw of the call's PRNG
 * decides failure even for calls fail_first condemns, so the draws of later
 * calls do not depend on fail_first. */
void sim_call_begin(sim_inst *in, sim_fate *f) {
    sim_rng base = {in->seed};
    double u;

    f->call = atomic_fetch_add_explicit(&in->calls, 1, memory_order_relaxed);
    f->rng.s = sim_rng_next(&base) ^ (f->call * 0xd1b54a32d192ed03ull);
    f->rng.s = sim_rng_next(&f->rng);
    u = sim_rng_unit(&f->rng);
    f->fail = f->call < in->fail_first || u < in->failure_rate ||
              (f->call < 64 && (in->fail_calls >> f->call) & 1u);
}

void sim_fail_error(sim_inst *in, const sim_fate *f, vx_error *err) {
    atomic_fetch_add_explicit(&in->failures, 1, memory_order_relaxed);
    if (in->m_failures) in->api->metric_add(in->m_failures, 1);
    sim_seterr(err, in->err_code, in->err_retryable, "sim: simulated %s failure (call %llu)",
               in->err_name, (unsigned long long)f->call);
    if (err) err->upstream_status = in->err_status;
}

/* For calls that fail at start: fill err and return the code to hand back. */
int sim_fail_now(sim_inst *in, const sim_fate *f, vx_error *err) {
    sim_fail_error(in, f, err);
    return in->err_code;
}

/* "one two  three": words are runs of non-space bytes. */
size_t sim_count_words(const char *text) {
    size_t n = 0;
    int in_word = 0;

    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        if (isspace(*p)) in_word = 0;
        else if (!in_word) in_word = 1, n++;
    }
    return n;
}

/* Bytes of text up to the end of its words-th word. */
size_t sim_prefix_len(const char *text, size_t words) {
    size_t i = 0, n = 0, end = 0;

    while (text[i] && n < words) {
        while (text[i] && isspace((unsigned char)text[i])) i++;
        if (!text[i]) break;
        while (text[i] && !isspace((unsigned char)text[i])) i++;
        end = i;
        n++;
    }
    return end;
}

/* ---------------------------------------------------------------- streams */

static void sim_fire(void *arg);

/* Queue the stream's job for due (CLOCK_MONOTONIC ns); mutex held, no job
 * queued. A host of ABI 1.5 takes the time itself; an older one counts in
 * whole milliseconds: round up, so an event never fires before its time.
 * Returns VX_OK or the host's error. */
static int sim_arm_at(struct vx_stream *s, uint64_t due) {
    const vx_host_api *api = s->in->api;
    int rc;

    if (VX_HOST_HAS(api, defer_at) && api->defer_at) {
        rc = api->defer_at(s->in->h, due, sim_fire, s, &s->timer);
    } else {
        uint64_t now = sim_now_ns(), ms = due > now ? (due - now + 999999) / 1000000 : 0;
        rc = api->defer_id(s->in->h, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, sim_fire, s,
                           &s->timer);
    }
    if (rc != VX_OK) s->timer = 0;
    else s->timer_due = due;
    return rc;
}

/* See that a job will fire the next event when it is due: queue one, or
 * move the queued one earlier (a cancel is due at once). Mutex held. While
 * the job is firing it queues its successor itself. Taking a job back
 * never waits, so holding the mutex here is safe: a job that already
 * started will take the mutex next and see the new state. */
static int sim_arm(struct vx_stream *s) {
    uint64_t due;

    if (s->closing || s->firing || s->ended) return VX_OK;
    if (s->canceled) due = 0;
    else if (s->hang_silent || !s->ops->peek(s, &due)) return VX_OK;
    if (s->timer) {
        if (due >= s->timer_due || s->in->api->defer_cancel(s->in->h, s->timer, 0) != 1)
            return VX_OK;
        s->timer = 0;
    }
    return sim_arm_at(s, due);
}

/* The stream's job: fire every event that is due, in order, then queue
 * itself for the next one. The mutex is dropped around every callback so
 * cancel() never waits for the host. At most SIM_BATCH events per run, so
 * a long reply delivered at once does not hold up the host's other timers:
 * the rest follows in a job due at once. */
#define SIM_BATCH 32
static void sim_fire(void *arg) {
    struct vx_stream *s = arg;
    sim_event ev;
    uint64_t due;
    int n = 0;

    pthread_mutex_lock(&s->mu);
    s->timer = 0;
    s->firing = 1;
    while (!s->closing && !s->ended) {
        memset(&ev, 0, sizeof(ev));
        if (s->canceled) {
            ev.terminal = ev.error = 1;
            sim_seterr(&ev.err, VX_ECANCELED, 0, "sim: cancelled");
        } else if (s->hang_silent || !s->ops->peek(s, &due)) {
            break;
        } else if (due > sim_now_ns() || n >= SIM_BATCH) {
            if (sim_arm_at(s, due) == VX_OK) break;
            /* No timer (host stopping, out of memory): end the stream rather
             * than leave the host waiting for an event that never comes. */
            ev.terminal = ev.error = 1;
            sim_seterr(&ev.err, VX_EUNAVAIL, 1, "sim: cannot schedule the next event");
        } else {
            s->ops->take(s, &ev);
            if (ev.error && s->in->hang == SIM_HANG_STALL) {
                s->hang_silent = 1; /* a stalled provider: no error, nothing more */
                continue;
            }
            if (ev.error) sim_fail_error(s->in, &s->fate, &ev.err);
        }
        if (ev.terminal) s->ended = 1;
        pthread_mutex_unlock(&s->mu);
        s->ops->deliver(s, &ev);
        pthread_mutex_lock(&s->mu);
        n++;
    }
    s->firing = 0;
    /* close() waits for this; after the unlock s may be freed. */
    if (s->closing) pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Set up the common part. Fails with VX_ENOMEM when the mutex or condition
 * variable cannot be created; the stream then holds nothing to release. */
int sim_stream_init(struct vx_stream *s, sim_inst *in, const sim_kind_ops *ops,
                    const sim_fate *f, vx_error *err) {
    s->in = in;
    s->ops = ops;
    s->fate = *f;
    s->hang_silent = in->hang == SIM_HANG_SILENT;
    if (pthread_cond_init(&s->cv, NULL) != 0) goto fail;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        goto fail;
    }
    return VX_OK;
fail:
    sim_seterr(err, VX_ENOMEM, 1, "sim: cannot create stream primitives");
    return VX_ENOMEM;
}

/* Queue the job for the first event, if one is known. On failure (the
 * host's timer refused: VX_ENOMEM, VX_EUNAVAIL) the caller releases the
 * stream with sim_stream_close(). */
int sim_stream_start(struct vx_stream *s, vx_error *err) {
    int rc;

    /* The job may fire before defer_id returns: it waits for the mutex. */
    pthread_mutex_lock(&s->mu);
    rc = sim_stream_kick(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* hang = block: publish the stream in *out before blocking, so another
 * thread that reads *out (with an acquire load) can cancel it, then wait
 * for that cancel. Returns VX_ECANCELED with *out still set: unlike other
 * failures the caller owns a stream it must close(). */
int sim_stream_block(struct vx_stream *s, vx_stream **out, vx_error *err) {
    sim_inst *in = s->in;

    __atomic_store_n(out, s, __ATOMIC_RELEASE);
    if (in->api->log_enabled(in->h, VX_LOG_DEBUG))
        in->api->log(in->h, VX_LOG_DEBUG, "call %llu blocks until cancelled (hang = block)",
                     (unsigned long long)s->fate.call);
    pthread_mutex_lock(&s->mu);
    s->ended = 1; /* the call's return is its only outcome: no event, not even at cancel */
    while (!s->canceled && !s->closing) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    sim_seterr(err, VX_ECANCELED, 0, "sim: blocked call cancelled");
    return VX_ECANCELED;
}

/* After new events were queued (mutex held): make sure the job fires
 * them. Fails like sim_stream_start; the events stay queued. */
int sim_stream_kick(struct vx_stream *s, vx_error *err) {
    int rc = sim_arm(s);

    if (rc != VX_OK) sim_seterr(err, rc, 1, "sim: the host cannot schedule the stream's events");
    return rc;
}

void sim_stream_cancel(struct vx_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (!s->canceled) {
        s->canceled = 1;
        pthread_cond_broadcast(&s->cv);
        /* Out of timers the cancellation cannot fire; close() still ends
         * the stream cleanly. */
        (void)sim_arm(s);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Stop the stream's job (an event callback in progress finishes first),
 * then free everything. */
void sim_stream_close(struct vx_stream *s) {
    uint64_t id;

    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->cv);
    while (s->firing) pthread_cond_wait(&s->cv, &s->mu);
    id = s->timer;
    s->timer = 0;
    pthread_mutex_unlock(&s->mu);
    /* Removed, or it already started: then wait until it has returned (it
     * sees closing and touches nothing more). */
    if (id) s->in->api->defer_cancel(s->in->h, id, 1);
    s->ops->destroy(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---------------------------------------------------------------- config */

/* The value the host validated, or the schema default when init is called
 * with a partial config. */
static const char *sim_cfg(const vx_config *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = sim_config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

/* Same grammar as the host's validator: a number of ms, or with ms/s/m/h. */
static int sim_parse_ms(const char *s, uint64_t *out) {
    char *end;
    double v, mul;

    if (!isdigit((unsigned char)*s)) return -1;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v) || v < 0) return -1;
    if (*end == '\0' || strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else return -1;
    v *= mul;
    if (v > 9e15) return -1;
    *out = (uint64_t)llround(v);
    return 0;
}

static int sim_parse_u64(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)*s)) return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static int sim_parse_double(const char *s, double *out) {
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return end == s || *end != '\0' || errno == ERANGE ? -1 : 0;
}

static int sim_parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};

    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    return -1;
}

/* Index of v in the '|'-separated choices, or -1. */
static int sim_parse_enum(const char *v, const char *choices) {
    size_t vl = strlen(v);
    int i = 0;

    for (const char *p = choices; p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0) return i;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

static char *sim_strndup_trim(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return strndup(s, n);
}

/* transcripts "a b | c" -> {"a b", "c"}; an empty list means {transcript}.
 * Returns -1 when out of memory (what was copied is freed at shutdown). */
static int sim_split_transcripts(sim_inst *in, const char *list, const char *single) {
    size_t n = 1;
    const char *p = list, *bar;

    if (!*list) {
        in->transcripts = calloc(1, sizeof(*in->transcripts));
        if (!in->transcripts) return -1;
        if (!(in->transcripts[0] = sim_strndup_trim(single, strlen(single)))) return -1;
        in->n_transcripts = 1;
        return 0;
    }
    for (; *p; p++) n += *p == '|';
    in->transcripts = calloc(n, sizeof(*in->transcripts));
    if (!in->transcripts) return -1;
    for (p = list; in->n_transcripts < n; p = bar + 1) {
        bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (!(in->transcripts[in->n_transcripts] = sim_strndup_trim(p, l))) return -1;
        in->n_transcripts++;
        if (!bar) break;
    }
    return 0;
}

/* tool_call "get_weather {\"city\": \"Paris\"}" -> name and arguments (a
 * JSON object, "{}" when none is given, kept as written). An empty value
 * sets nothing. Returns 0, -1 when the value is malformed (a name outside
 * [A-Za-z0-9_-]{1,64}, arguments that are not a JSON object), -2 when out
 * of memory. */
static int sim_parse_tool_call(sim_inst *in, const char *v) {
    size_t name_len;
    json_t *j;
    int ok;

    while (isspace((unsigned char)*v)) v++;
    if (!*v) return 0;
    for (name_len = 0; v[name_len] && !isspace((unsigned char)v[name_len]); name_len++)
        if (!isalnum((unsigned char)v[name_len]) && v[name_len] != '_' && v[name_len] != '-')
            return -1;
    if (name_len > 64) return -1;
    if (!(in->tool_name = strndup(v, name_len))) return -2;
    if (!(in->tool_args = sim_strndup_trim(v + name_len, strlen(v + name_len)))) return -2;
    if (!*in->tool_args) {
        free(in->tool_args);
        if (!(in->tool_args = strdup("{}"))) return -2;
    }
    j = json_loads(in->tool_args, 0, NULL);
    ok = json_is_object(j);
    json_decref(j);
    return ok ? 0 : -1;
}

/* The error kinds, in the order of the "error" key's choices. */
static const struct {
    const char *name;
    int code, retryable, status;
} sim_errors[] = {
    {"unavailable", VX_EUNAVAIL, 1, 503}, {"timeout", VX_ETIMEDOUT, 1, 504},
    {"ratelimit", VX_ERATELIMIT, 1, 429}, {"auth", VX_EAUTH, 0, 401},
    {"internal", VX_EINTERNAL, 0, 500},   {"protocol", VX_EPROTO, 0, 502},
    {"invalid", VX_EINVAL, 0, 400},
};

/* "2, 5": bit n-1 set for each call number n in 1..64. */
static int sim_parse_calls(const char *s, uint64_t *mask) {
    *mask = 0;
    while (*s) {
        char *end;
        unsigned long n;

        while (*s == ' ' || *s == ',') s++;
        if (!*s) break;
        if (*s < '0' || *s > '9') return -1;
        n = strtoul(s, &end, 10);
        if (n < 1 || n > 64) return -1;
        *mask |= 1ull << (n - 1);
        s = end;
        if (*s && *s != ',' && *s != ' ') return -1;
    }
    return 0;
}

/* Read every key into in. Returns the name of the first bad key, NULL when
 * all parsed, or "" when out of memory. */
static const char *sim_configure(sim_inst *in, const vx_config *cfg) {
    const char *reply = sim_cfg(cfg, "reply");
    uint64_t v;
    size_t e;

    if (sim_parse_u64(sim_cfg(cfg, "seed"), &in->seed) != 0) return "seed";
    if (sim_parse_ms(sim_cfg(cfg, "latency"), &v) != 0) return "latency";
    in->latency_ns = v * 1000000ull;
    if (sim_parse_ms(sim_cfg(cfg, "jitter"), &v) != 0) return "jitter";
    in->jitter_ns = v * 1000000ull;
    if (sim_parse_double(sim_cfg(cfg, "failure_rate"), &in->failure_rate) != 0 ||
        !(in->failure_rate >= 0 && in->failure_rate <= 1))
        return "failure_rate";
    if (sim_parse_u64(sim_cfg(cfg, "fail_first"), &in->fail_first) != 0) return "fail_first";
    if (sim_parse_calls(sim_cfg(cfg, "fail_calls"), &in->fail_calls) != 0) return "fail_calls";
    for (e = 0; e < sizeof(sim_errors) / sizeof(sim_errors[0]); e++)
        if (strcmp(sim_cfg(cfg, "error"), sim_errors[e].name) == 0) break;
    if (e == sizeof(sim_errors) / sizeof(sim_errors[0])) return "error";
    in->err_name = sim_errors[e].name;
    in->err_code = sim_errors[e].code;
    in->err_retryable = sim_errors[e].retryable;
    in->err_status = sim_errors[e].status;
    if ((in->fail_at = sim_parse_enum(sim_cfg(cfg, "fail_at"), SIM_FAIL_AT_CHOICES)) < 0)
        return "fail_at";
    if ((in->hang = sim_parse_enum(sim_cfg(cfg, "hang"), SIM_HANG_CHOICES)) < 0) return "hang";
    if (sim_split_transcripts(in, sim_cfg(cfg, "transcripts"), sim_cfg(cfg, "transcript")))
        return "";
    if (sim_parse_ms(sim_cfg(cfg, "partial_every"), &in->partial_every_ms) != 0)
        return "partial_every";
    if (!(in->reply = sim_strndup_trim(reply, strlen(reply)))) return "";
    if (sim_parse_ms(sim_cfg(cfg, "token_delay"), &v) != 0) return "token_delay";
    in->token_delay_ns = v * 1000000ull;
    switch (sim_parse_tool_call(in, sim_cfg(cfg, "tool_call"))) {
    case -1:
        return "tool_call";
    case -2:
        return "";
    }
    if (!(in->tool_trigger = strdup(sim_cfg(cfg, "tool_trigger")))) return "";
    if (sim_parse_u64(sim_cfg(cfg, "sample_rate"), &v) != 0 || v < 8000 || v > 192000)
        return "sample_rate";
    in->sample_rate = (uint32_t)v;
    if (sim_parse_u64(sim_cfg(cfg, "ms_per_char"), &v) != 0 || v > 10000) return "ms_per_char";
    in->ms_per_char = (uint32_t)v;
    if (sim_parse_ms(sim_cfg(cfg, "chunk_ms"), &v) != 0 || v < 1 || v > 10000) return "chunk_ms";
    in->chunk_ms = (uint32_t)v;
    if (sim_parse_bool(sim_cfg(cfg, "realtime"), &in->realtime) != 0) return "realtime";
    if (!(in->voice = strdup(sim_cfg(cfg, "voice")))) return "";
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static void sim_shutdown(void *inst) {
    sim_inst *in = inst;

    if (!in) return;
    for (size_t i = 0; i < in->n_transcripts; i++) free(in->transcripts[i]);
    free(in->transcripts);
    free(in->reply);
    free(in->tool_name);
    free(in->tool_args);
    free(in->tool_trigger);
    free(in->voice);
    free(in);
}

/* Fails with VX_EINVAL naming the key when a value does not parse (the host
 * validated them, so only a direct caller can get there), VX_ENOMEM. */
static int sim_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                    vx_error *err) {
    sim_inst *in = calloc(1, sizeof(*in));
    const char *bad;

    if (!in) {
        sim_seterr(err, VX_ENOMEM, 0, "sim: out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    atomic_init(&in->calls, 0);
    atomic_init(&in->failures, 0);
    if ((bad = sim_configure(in, cfg)) != NULL) {
        int rc = *bad ? VX_EINVAL : VX_ENOMEM;
        if (*bad) sim_seterr(err, rc, 0, "sim: bad value for %s: '%s'", bad, sim_cfg(cfg, bad));
        else sim_seterr(err, rc, 0, "sim: out of memory at init");
        sim_shutdown(in);
        return rc;
    }
    if (VX_HOST_HAS(host, metric_add) && host->metric_register && host->metric_add)
        in->m_failures = host->metric_register(h, VX_METRIC_COUNTER, "sim_failures_total",
                                               "Failures the sim provider simulated.");
    host->log(h, VX_LOG_INFO,
              "simulated provider: seed=%llu latency=%llums failure_rate=%g fail_first=%llu "
              "error=%s hang=%s",
              (unsigned long long)in->seed, (unsigned long long)(in->latency_ns / 1000000),
              in->failure_rate, (unsigned long long)in->fail_first, in->err_name,
              sim_cfg(cfg, "hang"));
    *inst = in;
    return VX_OK;
}

static int sim_health(void *inst, char *buf, size_t len) {
    sim_inst *in = inst;

    snprintf(buf, len, "simulated, %llu calls, %llu failures",
             (unsigned long long)atomic_load(&in->calls),
             (unsigned long long)atomic_load(&in->failures));
    return VX_OK;
}

static const vx_plugin_info sim_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT | VX_KIND_LLM | VX_KIND_TTS,
    .name = "sim",
    .version = SIM_VERSION,
    .description = "deterministic fake STT, LLM and TTS with latency and failure injection",
    .caps = VX_CAP_STREAMING_INPUT | VX_CAP_PARTIALS | VX_CAP_STREAMING_OUTPUT,
    .config = sim_config,
    .init = sim_init,
    .shutdown = sim_shutdown,
    .stt = &sim_stt_vtable,
    .llm = &sim_llm_vtable,
    .tts = &sim_tts_vtable,
    .health = sim_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* Streams need the cancellable timer (1.4); metrics are used when
     * present. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, defer_cancel) ||
        !host->defer_id || !host->defer_cancel)
        return NULL;
    return &sim_info;
}
