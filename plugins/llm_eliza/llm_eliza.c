/*
 * llm_eliza: Weizenbaum's ELIZA (CACM 9(1), 1966) as an LLM provider, the
 * offline voice bot's default brain.
 *
 * generate() answers the last user message of the conversation at once,
 * under the instance mutex, with the ELIZA state of the call's session (so
 * the rule cycles and the memory of "my" sentences carry over from turn to
 * turn of one conversation and never leak into another). A worker thread
 * per stream then sends the answer one word per token, the first after
 * first_token_delay and each next one token_delay later, so a TTS can start
 * on the first words while the rest trickle in like a real model's.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <voxray/plugin.h>

#include "eliza.h"

#define ELIZA_VERSION "1.0.0"
#define ELIZA_BUILTIN_NAME "doctor.txt (built in)"
#define ELIZA_STACK_SIZE (256 * 1024)

static const vx_config_key eliza_config[] = {
    {"script", VX_CFG_STRING, "",
     "path of an ELIZA script in the doctor.txt format; empty: the built-in DOCTOR script",
     0, 4096, NULL, 0},
    {"token_delay", VX_CFG_DURATION, "30ms", "time between streamed tokens (words)", 0, 60000,
     NULL, 0},
    {"first_token_delay", VX_CFG_DURATION, "0", "time before the first token", 0, 600000, NULL,
     0},
    {"greeting", VX_CFG_STRING, "How do you do. Please tell me your problem.",
     "the answer when the conversation has no user message yet", 0, 1024, NULL, 0},
    {"max_sessions", VX_CFG_INT, "10000",
     "conversations whose ELIZA state is kept; the least recently used is forgotten", 1,
     1000000, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct eliza_inst {
    const vx_host_api *api;
    vx_host *h;
    eliza_script *script;
    char *greeting;
    uint64_t token_delay_ns, first_token_delay_ns;
    pthread_mutex_t mu; /* guards sessions and every state in it */
    eliza_sessions *sessions;
} eliza_inst;

/* One generation. The worker owns the sending; mu guards the flags and
 * `next`, and is dropped around every callback so cancel() never waits for
 * the host. */
struct vx_stream {
    eliza_inst *in;
    vx_llm_events ev;
    char *answer;
    size_t *tok_at, *tok_len; /* token i is answer[tok_at[i] .. + tok_len[i]) */
    size_t n_tok, next;
    uint64_t due; /* CLOCK_MONOTONIC ns of the next event */
    vx_usage usage;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int has_thread, canceled, ended, closing;
};

/* ---------------------------------------------------------------- helpers */

static uint64_t eliza_now_ns(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void eliza_seterr(vx_error *err, int code, const char *fmt, ...) VX_PRINTF(3, 4);

static void eliza_seterr(vx_error *err, int code, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = code == VX_ENOMEM;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static uint32_t count_words(const char *text) {
    uint32_t n = 0;
    int in_word = 0;

    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        if (isspace(*p)) in_word = 0;
        else if (!in_word) in_word = 1, n++;
    }
    return n;
}

/* ---------------------------------------------------------------- config */

/* The validated value, or the schema default when a direct caller passes
 * a partial config. */
static const char *eliza_cfg(const vx_config *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = eliza_config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

/* A duration setting in ms, as the host parsed it (ABI 1.6). */
static int cfg_ms(const vx_host_api *host, vx_host *h, const char *key, uint64_t *out) {
    int64_t v = 0;

    if (host->config_duration_ms(h, key, &v) != VX_OK || v < 0 || v > 9000000000000LL) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* ---------------------------------------------------------------- streams */

static void *eliza_worker(void *arg) {
    struct vx_stream *s = arg;

    pthread_mutex_lock(&s->mu);
    while (!s->closing) {
        if (s->ended) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else if (s->canceled) {
            vx_error err = {0};
            eliza_seterr(&err, VX_ECANCELED, "llm_eliza: cancelled");
            s->ended = 1;
            pthread_mutex_unlock(&s->mu);
            s->ev.on_error(s->ev.user, &err);
            pthread_mutex_lock(&s->mu);
        } else if (s->due > eliza_now_ns()) {
            struct timespec ts = {(time_t)(s->due / 1000000000ull),
                                  (long)(s->due % 1000000000ull)};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        } else if (s->next < s->n_tok) {
            size_t i = s->next++;
            s->due += s->in->token_delay_ns;
            pthread_mutex_unlock(&s->mu);
            s->ev.on_token(s->ev.user, s->answer + s->tok_at[i], s->tok_len[i]);
            pthread_mutex_lock(&s->mu);
        } else {
            s->ended = 1;
            s->usage.completion_tokens = (uint32_t)s->n_tok;
            pthread_mutex_unlock(&s->mu);
            s->ev.on_done(s->ev.user, &s->usage);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Token boundaries: each word with the space after it, the last without;
 * at most max tokens (0: all). -1 when out of memory. */
static int eliza_tokens(struct vx_stream *s, int32_t max) {
    size_t len = strlen(s->answer), n = 0;
    size_t words = count_words(s->answer);

    if (!(s->tok_at = calloc(words + 1, sizeof(size_t))) ||
        !(s->tok_len = calloc(words + 1, sizeof(size_t))))
        return -1;
    for (size_t i = 0; i < len;) {
        size_t start = i;
        while (i < len && s->answer[i] != ' ') i++;
        while (i < len && s->answer[i] == ' ') i++;
        s->tok_at[n] = start;
        s->tok_len[n++] = i - start;
    }
    if (max > 0 && (size_t)max < n) {
        n = (size_t)max;
        while (s->tok_len[n - 1] && s->answer[s->tok_at[n - 1] + s->tok_len[n - 1] - 1] == ' ')
            s->tok_len[n - 1]--;
    }
    s->n_tok = n;
    return 0;
}

static void eliza_stream_free(struct vx_stream *s) {
    free(s->answer);
    free(s->tok_at);
    free(s->tok_len);
    free(s);
}

static void eliza_cancel(vx_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->canceled = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Stop and join the worker (a callback in progress finishes first), so no
 * event fires once this returns. */
static void eliza_close(vx_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->has_thread) pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    eliza_stream_free(s);
}

/* ELIZA's answer to the last user message, or the greeting when there is
 * none. NULL when out of memory. */
static char *eliza_answer(eliza_inst *in, const vx_message *msgs, size_t n, const char *session) {
    const char *text = NULL;
    eliza_state *st;
    char *a = NULL;

    for (size_t i = n; i-- > 0 && !text;)
        if (msgs[i].role && strcmp(msgs[i].role, "user") == 0 && msgs[i].content)
            text = msgs[i].content;
    if (!text || count_words(text) == 0) return strdup(in->greeting);
    pthread_mutex_lock(&in->mu);
    st = eliza_sessions_get(in->sessions, session ? session : "");
    if (st && eliza_respond(in->script, st, text, &a) != 0) a = NULL;
    pthread_mutex_unlock(&in->mu);
    return a;
}

/* Fails with VX_EINVAL (missing callbacks or messages) or VX_ENOMEM
 * (memory, thread); nothing is left to close then. */
static int eliza_generate(void *inst, const vx_message *msgs, size_t n,
                          const vx_llm_params *params, const vx_llm_events *ev, vx_stream **out,
                          vx_error *err) {
    eliza_inst *in = inst;
    vx_llm_params p = {0};
    vx_llm_events e = {0};
    struct vx_stream *s = NULL;
    pthread_condattr_t ca;
    pthread_attr_t attr;
    int rc;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!e.on_token || !e.on_done || !e.on_error || (n && !msgs)) {
        eliza_seterr(err, VX_EINVAL, "llm_eliza: generate needs messages and all three events");
        return VX_EINVAL;
    }
    if (params)
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    if (!(s = calloc(1, sizeof(*s)))) goto oom;
    s->in = in;
    s->ev = e;
    if (!(s->answer = eliza_answer(in, msgs, n, p.session_id))) goto oom;
    if (eliza_tokens(s, p.max_tokens) != 0) goto oom;
    for (size_t i = 0; i < n; i++) s->usage.prompt_tokens += count_words(msgs[i].content);
    s->due = eliza_now_ns() + in->first_token_delay_ns;

    /* Due times are CLOCK_MONOTONIC: a wall-clock step must not stall a
     * stream. */
    if (pthread_condattr_init(&ca) != 0) goto oom;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) goto oom;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->cv);
        goto oom;
    }
    /* Many voice sessions each hold a stream: keep the threads small. */
    rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setstacksize(&attr, ELIZA_STACK_SIZE);
        rc = pthread_create(&s->thread, &attr, eliza_worker, s);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        eliza_close(s); /* no thread to join: only frees */
        eliza_seterr(err, VX_ENOMEM, "llm_eliza: cannot start a stream thread");
        return VX_ENOMEM;
    }
    s->has_thread = 1;
    *out = s;
    return VX_OK;
oom:
    if (s) eliza_stream_free(s);
    eliza_seterr(err, VX_ENOMEM, "llm_eliza: out of memory starting a generation");
    return VX_ENOMEM;
}

static const vx_llm_vtable eliza_llm_vtable = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = eliza_generate,
    .cancel = eliza_cancel,
    .close = eliza_close,
};

/* ---------------------------------------------------------------- lifecycle */

static void eliza_shutdown(void *inst) {
    eliza_inst *in = inst;

    if (!in) return;
    eliza_sessions_free(in->sessions);
    eliza_script_free(in->script);
    free(in->greeting);
    pthread_mutex_destroy(&in->mu);
    free(in);
}

/* Fails with VX_EINVAL when the script cannot be read or is malformed (the
 * message names file:line and the fault) or a value does not parse (the
 * host validated them, so only a direct caller gets there); VX_ENOMEM. */
static int eliza_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                      vx_error *err) {
    const char *path = eliza_cfg(cfg, "script"), *bad = NULL;
    eliza_inst *in = calloc(1, sizeof(*in));
    char msg[512];
    uint64_t v = 0;
    int64_t max = 0;
    int rc;

    if (!in) {
        eliza_seterr(err, VX_ENOMEM, "llm_eliza: out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    if (pthread_mutex_init(&in->mu, NULL) != 0) {
        free(in);
        eliza_seterr(err, VX_ENOMEM, "llm_eliza: cannot create a mutex");
        return VX_ENOMEM;
    }
    if (cfg_ms(host, h, "token_delay", &v) != 0) bad = "token_delay";
    in->token_delay_ns = v * 1000000ull;
    if (!bad && cfg_ms(host, h, "first_token_delay", &v) != 0) bad = "first_token_delay";
    in->first_token_delay_ns = v * 1000000ull;
    if (!bad && (host->config_int(h, "max_sessions", &max) != VX_OK || max < 1 || max > 1000000))
        bad = "max_sessions";
    if (bad) {
        eliza_seterr(err, VX_EINVAL, "llm_eliza: bad value for %s: '%s'", bad,
                     eliza_cfg(cfg, bad));
        rc = VX_EINVAL;
        goto fail;
    }
    if (*path)
        rc = eliza_script_load(path, &in->script, msg, sizeof(msg));
    else
        rc = eliza_script_parse(eliza_doctor_txt, strlen(eliza_doctor_txt), ELIZA_BUILTIN_NAME,
                                &in->script, msg, sizeof(msg));
    if (rc != 0) {
        host->log(h, VX_LOG_ERROR, "script refused: %s", msg);
        rc = rc == -2 ? VX_ENOMEM : VX_EINVAL;
        eliza_seterr(err, rc, "llm_eliza: %s", msg);
        goto fail;
    }
    if (!(in->greeting = strdup(eliza_cfg(cfg, "greeting"))) ||
        !(in->sessions = eliza_sessions_new(in->script, (size_t)max))) {
        eliza_seterr(err, VX_ENOMEM, "llm_eliza: out of memory at init");
        rc = VX_ENOMEM;
        goto fail;
    }
    host->log(h, VX_LOG_INFO, "ELIZA with %s (%zu keywords), token_delay=%llums, %ld sessions kept",
              *path ? path : "the built-in DOCTOR script", in->script->n_keys,
              (unsigned long long)(in->token_delay_ns / 1000000), (long)max);
    *inst = in;
    return VX_OK;
fail:
    eliza_shutdown(in);
    return rc;
}

static int eliza_health(void *inst, char *buf, size_t len) {
    eliza_inst *in = inst;
    size_t n;

    pthread_mutex_lock(&in->mu);
    n = eliza_sessions_count(in->sessions);
    pthread_mutex_unlock(&in->mu);
    snprintf(buf, len, "offline, %zu keywords, %zu conversations", in->script->n_keys, n);
    return VX_OK;
}

static const vx_plugin_info eliza_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_LLM,
    .name = "llm_eliza",
    .version = ELIZA_VERSION,
    .description = "ELIZA (Weizenbaum 1966) with the DOCTOR script, offline",
    .caps = VX_CAP_STREAMING_OUTPUT,
    .config = eliza_config,
    .init = eliza_init,
    .shutdown = eliza_shutdown,
    .llm = &eliza_llm_vtable,
    .health = eliza_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The settings are read with the typed config getters (1.6). */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_int || !host->config_duration_ms) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "llm_eliza needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &eliza_info;
}
