/*
 * stt_pocketsphinx: descriptor, configuration, log routing and the decoder
 * pool (see sphx.h for the model, sphx_stream.c for the streams).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include <sphinxbase/err.h>

#include "sphx.h"

#define SPHX_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define SPHX_MODEL_PKG "pocketsphinx-en-us"
#define SPHX_QUEUE_MAX_S 60 /* undecoded audio a stream may hold */
#define SPHX_OWNED_ARGS 9   /* argv[0..9) are copies; the rest point into words */

static const vx_config_key sphx_config[] = {
    {"hmm", VX_CFG_STRING, SPHX_MODEL_DIR "/en-us", "acoustic model directory", 0, 4096, NULL, 0},
    {"lm", VX_CFG_STRING, SPHX_MODEL_DIR "/en-us.lm.bin",
     "n-gram language model (ignored when jsgf is set)", 0, 4096, NULL, 0},
    {"dict", VX_CFG_STRING, SPHX_MODEL_DIR "/cmudict-en-us.dict", "pronunciation dictionary", 0,
     4096, NULL, 0},
    {"jsgf", VX_CFG_STRING, "",
     "JSGF grammar file used instead of the language model (empty: use lm)", 0, 4096, NULL, 0},
    {"pool_size", VX_CFG_INT, "2", "decoders created at init (about 91 MB each)", 1, 64, NULL, 0},
    {"pool_max", VX_CFG_INT, "4",
     "decoders created on demand up to this many while all are busy (raised to pool_size)", 1,
     64, NULL, 0},
    {"decoder_threads", VX_CFG_INT, "0",
     "threads that run the decoders of all streams, each stream in turn (0: one per CPU)", 0,
     64, NULL, 0},
    {"pool_wait", VX_CFG_DURATION, "2s",
     "how long open waits for a free decoder before failing (retryable)", 0, 600000, NULL, 0},
    {"partial_interval", VX_CFG_DURATION, "100ms",
     "audio between partial hypotheses (0: no partials)", 0, 60000, NULL, 0},
    {"samplerate", VX_CFG_INT, "16000",
     "the decoder's sample rate; the host resamples to it (the en-us model wants 16000)", 8000,
     48000, NULL, 0},
    {"cmn_restart", VX_CFG_FLOAT, "8",
     "restart an utterance when the speech's cepstral mean lies this far (Euclidean, over the "
     "cepstrum) from the mean the decoder normalises with, e.g. a fresh decoder's prior or the "
     "previous caller's channel; 0: never",
     0, 1000, NULL, 0},
    {"cmn_restart_after", VX_CFG_DURATION, "300ms",
     "audio of an utterance before its mean is compared (shorter utterances: at their end)", 0,
     60000, NULL, 0},
    {"cmn_restart_window", VX_CFG_DURATION, "3s",
     "audio of an utterance within which it may be restarted (kept to decode again)", 0, 60000,
     NULL, 0},
    {"extra_args", VX_CFG_STRING, "",
     "extra decoder options as space-separated '-name value' pairs, e.g. '-beam 1e-60'", 0, 4096,
     NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* ---------------------------------------------------------------- helpers */

void sphx_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static uint64_t sphx_now_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------------------------------------------------------------- logging */

/* Which instance the calling thread decodes for, and the first error
 * sphinxbase reported on it since the text was cleared (decoder creation
 * failures quote it). */
static __thread sphx_inst *sphx_tls_inst;
static __thread char sphx_tls_err[160];

/* Instances alive; the first installs the callback, the last removes it so
 * that no pointer into this file survives a dlclose. */
static pthread_mutex_t sphx_log_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned sphx_log_users;

sphx_inst *sphx_log_route(sphx_inst *in) {
    sphx_inst *prev = sphx_tls_inst;

    sphx_tls_inst = in;
    return prev;
}

/* 'ERROR: "cmd_ln.c", line 607: Unknown ...' or 'INFO: feat.c(713): ...'
 * without the level and source position. */
static const char *sphx_log_body(const char *m) {
    static const char *const levels[] = {"DEBUG: ", "INFO: ", "WARN: ", "ERROR: ", "FATAL: ",
                                         "SYSTEM_ERROR: ", NULL};
    const char *p = m, *colon;

    for (int i = 0; levels[i]; i++)
        if (strncmp(m, levels[i], strlen(levels[i])) == 0) p = m + strlen(levels[i]);
    colon = strstr(p, ": ");
    if (colon && colon - p < 80 && memchr(p, '.', (size_t)(colon - p)) &&
        (memchr(p, '(', (size_t)(colon - p)) || strncmp(p, "\"", 1) == 0))
        p = colon + 2;
    return p;
}

/* sphinxbase's callback: every message of every decoder of the process.
 * Errors are logged as warnings: the ones that matter make a call fail,
 * and the plugin reports that failure itself; the informational flood
 * (configuration dumps, per-utterance statistics) only at debug level. */
static void sphx_log_cb(void *user, err_lvl_t lvl, const char *fmt, ...) {
    sphx_inst *in = sphx_tls_inst;
    char line[512];
    const char *body;
    size_t n;
    int level;
    va_list ap;

    (void)user;
    if (lvl >= ERR_ERROR) level = VX_LOG_WARN;
    else if (lvl == ERR_WARN) level = VX_LOG_WARN;
    else level = VX_LOG_DEBUG;
    if (lvl < ERR_ERROR && (!in || !in->api->log_enabled(in->h, level))) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    if (n == 0) return;
    body = sphx_log_body(line);
    /* The first error explains a failure best; the next ones are its echoes. */
    if (lvl >= ERR_ERROR && !sphx_tls_err[0]) {
        size_t k = strlen(body) < sizeof(sphx_tls_err) ? strlen(body) : sizeof(sphx_tls_err) - 1;
        memcpy(sphx_tls_err, body, k);
        sphx_tls_err[k] = '\0';
    }
    if (in && in->api->log_enabled(in->h, level))
        in->api->log(in->h, level, "pocketsphinx: %s", body);
}

static void sphx_log_hold(void) {
    pthread_mutex_lock(&sphx_log_mu);
    if (sphx_log_users++ == 0) {
        /* The callback takes every message, but the configuration dump of
         * each decoder is written straight to the log file: none. */
        err_set_logfp(NULL);
        err_set_callback(sphx_log_cb, NULL);
    }
    pthread_mutex_unlock(&sphx_log_mu);
}

static void sphx_log_release(void) {
    pthread_mutex_lock(&sphx_log_mu);
    if (--sphx_log_users == 0) err_set_callback(err_logfp_cb, NULL); /* logfp stays NULL */
    pthread_mutex_unlock(&sphx_log_mu);
}

/* ---------------------------------------------------------------- decoders */

/* A new decoder from the instance's arguments. Each gets its own parsed
 * configuration: the decoder writes model paths into it while loading, so
 * decoders created on different threads must not share one. Fails with
 * VX_EINTERNAL (NULL), err quoting the reason sphinxbase gave. */
static ps_decoder_t *sphx_decoder_new(sphx_inst *in, vx_error *err) {
    sphx_inst *prev = sphx_log_route(in);
    uint64_t t0 = sphx_now_ms();
    ps_decoder_t *ps = NULL;
    cmd_ln_t *cfg;

    sphx_tls_err[0] = '\0';
    cfg = cmd_ln_parse_r(NULL, ps_args(), in->argc, in->argv, TRUE);
    if (!cfg) {
        sphx_seterr(err, VX_EINTERNAL, 0, SPHX_NAME ": bad decoder arguments: %s",
                    sphx_tls_err[0] ? sphx_tls_err : "(no reason given)");
        goto done;
    }
    ps = ps_init(cfg);
    cmd_ln_free_r(cfg); /* the decoder keeps its own reference */
    if (!ps) {
        sphx_seterr(err, VX_EINTERNAL, 0, SPHX_NAME ": cannot create a decoder: %s",
                    sphx_tls_err[0] ? sphx_tls_err : "(no reason given)");
        goto done;
    }
    if (in->api->log_enabled(in->h, VX_LOG_DEBUG))
        in->api->log(in->h, VX_LOG_DEBUG, "decoder created in %llu ms",
                     (unsigned long long)(sphx_now_ms() - t0));
done:
    sphx_log_route(prev);
    return ps;
}

static void sphx_decoder_free(sphx_inst *in, ps_decoder_t *ps) {
    sphx_inst *prev = sphx_log_route(in);

    ps_free(ps);
    sphx_log_route(prev);
}

/* A decoder about to be lent out: one still at the model's prior takes
 * the mean decoders learned from the channel. Mutex held. */
static void sphx_pool_seed(sphx_inst *in, ps_decoder_t *ps) {
    float cur[SPHX_CMN_MAX_VEC];

    if (!in->cmn_learned_ok || in->cmn_len == 0) return;
    if (sphx_cmn_get(ps, cur, SPHX_CMN_MAX_VEC) != in->cmn_len) return;
    for (int i = 0; i < in->cmn_len; i++)
        if (cur[i] != in->cmn_prior[i]) return; /* it has heard speech itself */
    sphx_cmn_set(ps, in->cmn_learned, in->cmn_len);
    if (in->api->log_enabled(in->h, VX_LOG_DEBUG))
        in->api->log(in->h, VX_LOG_DEBUG, "a fresh decoder starts from the learned cepstral mean");
}

/* Busy decoders changed; mutex held. */
static void sphx_pool_gauge(sphx_inst *in) {
    if (in->m_busy) in->api->metric_set(in->m_busy, (double)(in->n_total - in->n_idle));
}

int sphx_pool_take(sphx_inst *in, const atomic_int *canceled, void (*publish)(void *arg),
                   void *arg, ps_decoder_t **out, vx_error *err) {
    uint64_t deadline = sphx_now_ms() + in->pool_wait_ms;
    struct timespec ts = {(time_t)(deadline / 1000u), (long)(deadline % 1000u) * 1000000L};
    int published = 0, create = 0, rc = VX_OK;
    size_t nth = 0;

    *out = NULL;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        if (atomic_load(canceled)) {
            sphx_seterr(err, VX_ECANCELED, 0, SPHX_NAME ": cancelled waiting for a decoder");
            rc = VX_ECANCELED;
            break;
        }
        if (in->n_idle) {
            *out = in->idle[--in->n_idle];
            sphx_pool_seed(in, *out);
            break;
        }
        if (in->n_total < in->pool_max) {
            nth = ++in->n_total; /* the slot is ours while we create outside the lock */
            create = 1;
            break;
        }
        if (sphx_now_ms() >= deadline) {
            sphx_seterr(err, VX_EUNAVAIL, 1,
                        SPHX_NAME ": all %zu decoders busy for %llu ms (pool_max)", in->pool_max,
                        (unsigned long long)in->pool_wait_ms);
            if (in->m_timeouts) in->api->metric_add(in->m_timeouts, 1);
            rc = VX_EUNAVAIL;
            break;
        }
        if (!published) {
            published = 1;
            pthread_mutex_unlock(&in->mu);
            publish(arg);
            pthread_mutex_lock(&in->mu);
            continue;
        }
        pthread_cond_timedwait(&in->cv, &in->mu, &ts);
    }
    sphx_pool_gauge(in);
    pthread_mutex_unlock(&in->mu);
    if (!create) return rc;

    if (!published) publish(arg);
    in->api->log(in->h, VX_LOG_INFO, "all decoders busy: creating decoder %zu of at most %zu",
                 nth, in->pool_max);
    if (!(*out = sphx_decoder_new(in, err))) {
        pthread_mutex_lock(&in->mu);
        in->n_total--;
        sphx_pool_gauge(in);
        pthread_cond_broadcast(&in->cv); /* the slot is free again */
        pthread_mutex_unlock(&in->mu);
        return VX_EINTERNAL;
    }
    pthread_mutex_lock(&in->mu);
    sphx_pool_seed(in, *out);
    pthread_mutex_unlock(&in->mu);
    return VX_OK;
}

void sphx_pool_give(sphx_inst *in, ps_decoder_t *ps, int broken, int heard) {
    float mean[SPHX_CMN_MAX_VEC];
    int n = 0;

    if (broken) {
        in->api->log(in->h, VX_LOG_WARN, "discarding a decoder that failed mid-stream");
        sphx_decoder_free(in, ps);
    } else if (heard) {
        n = sphx_cmn_get(ps, mean, SPHX_CMN_MAX_VEC);
    }
    pthread_mutex_lock(&in->mu);
    if (n && n == in->cmn_len) {
        memcpy(in->cmn_learned, mean, sizeof(float) * (size_t)n);
        in->cmn_learned_ok = 1;
    }
    if (broken) in->n_total--;
    else in->idle[in->n_idle++] = ps;
    sphx_pool_gauge(in);
    /* Broadcast: a woken waiter may have been cancelled meanwhile and would
     * leave the decoder to a waiter that is still asleep. */
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

void sphx_pool_wake(sphx_inst *in) {
    pthread_mutex_lock(&in->mu);
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

/* ---------------------------------------------------------------- config */

/* The value the host validated, or the schema default when init is called
 * with a partial config. */
static const char *sphx_cfg(const vx_config *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = sphx_config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

/* An integer setting as the host validated it (its default when unset),
 * within [min, max]. -1 when it is not. */
static int sphx_int(const vx_host_api *host, vx_host *h, const char *key, int64_t min, int64_t max,
                    int64_t *out) {
    return host->config_int(h, key, out) == VX_OK && *out >= min && *out <= max ? 0 : -1;
}

/* A duration setting in ms (the host parsed "1.5s" and the like). */
static int sphx_ms(const vx_host_api *host, vx_host *h, const char *key, uint64_t *out) {
    int64_t v = 0;
    if (host->config_duration_ms(h, key, &v) != VX_OK || v < 0) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Fails with VX_EINVAL naming the file and, for the defaults, the package
 * that provides them. */
static int sphx_check_file(const char *what, const char *key, const char *path, int dir,
                           vx_error *err) {
    struct stat st;

    if (stat(path, &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))) return VX_OK;
    sphx_seterr(err, VX_EINVAL, 0,
                SPHX_NAME ": %s not found: %s (%s; the Debian package " SPHX_MODEL_PKG
                          " provides the default)",
                what, path, key);
    return VX_EINVAL;
}

/* The decoder's command line: the model files, the rate, then extra_args
 * cut at blanks. Fails with VX_ENOMEM. */
static int sphx_build_argv(sphx_inst *in, const vx_config *cfg, vx_error *err) {
    const char *jsgf = sphx_cfg(cfg, "jsgf");
    char rate[16];
    size_t max, n = 0;
    char *p, *save = NULL;

    if (!(in->words = strdup(sphx_cfg(cfg, "extra_args")))) goto fail;
    max = SPHX_OWNED_ARGS + strlen(in->words) / 2 + 2;
    if (!(in->argv = calloc(max, sizeof(*in->argv)))) goto fail;
    snprintf(rate, sizeof(rate), "%u", (unsigned)in->rate);
#define SPHX_ARG(s)                                 \
    do {                                            \
        if (!(in->argv[n++] = strdup(s))) goto fail; \
    } while (0)
    SPHX_ARG(SPHX_NAME);
    SPHX_ARG("-hmm");
    SPHX_ARG(sphx_cfg(cfg, "hmm"));
    SPHX_ARG(*jsgf ? "-jsgf" : "-lm");
    SPHX_ARG(*jsgf ? jsgf : sphx_cfg(cfg, "lm"));
    SPHX_ARG("-dict");
    SPHX_ARG(sphx_cfg(cfg, "dict"));
    SPHX_ARG("-samprate");
    SPHX_ARG(rate);
#undef SPHX_ARG
    for (p = strtok_r(in->words, " \t\r\n", &save); p; p = strtok_r(NULL, " \t\r\n", &save))
        in->argv[n++] = p;
    in->argc = (int)n;
    return VX_OK;
fail:
    sphx_seterr(err, VX_ENOMEM, 0, SPHX_NAME ": out of memory at init");
    return VX_ENOMEM;
}

/* ---------------------------------------------------------------- lifecycle */

static void sphx_shutdown(void *inst) {
    sphx_inst *in = inst;

    if (!in) return;
    sphx_threads_stop(in);
    /* No stream is open: every decoder is idle. */
    for (size_t i = 0; i < in->n_idle; i++) sphx_decoder_free(in, in->idle[i]);
    if (in->idle) {
        pthread_cond_destroy(&in->cv);
        pthread_mutex_destroy(&in->mu);
        sphx_log_release();
    }
    free(in->idle);
    for (int i = 0; in->argv && i < SPHX_OWNED_ARGS; i++) free(in->argv[i]);
    free(in->argv);
    free(in->words);
    free(in);
}

/* Reads and checks the configuration, then creates pool_size decoders.
 * Fails with VX_EINVAL (a bad value or a missing model file, named in err),
 * VX_EINTERNAL (pocketsphinx refused the model or extra_args: its reason is
 * in err), VX_ENOMEM. */
static int sphx_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                     vx_error *err) {
    sphx_inst *in = calloc(1, sizeof(*in));
    const char *jsgf = sphx_cfg(cfg, "jsgf");
    const char *bad = NULL;
    pthread_condattr_t ca;
    uint64_t partial_ms = 0, restart_after_ms = 0, restart_window_ms = 0, t0;
    int64_t v = 0;
    int rc = VX_EINVAL;

    if (!in) {
        sphx_seterr(err, VX_ENOMEM, 0, SPHX_NAME ": out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    /* The settings, as the host parsed them (ABI 1.6 typed getters). */
    if (sphx_int(host, h, "pool_size", 1, 64, &v) != 0) bad = "pool_size";
    in->pool_size = (size_t)v;
    if (!bad && sphx_int(host, h, "pool_max", 1, 64, &v) != 0) bad = "pool_max";
    in->pool_max = (size_t)v;
    if (!bad && sphx_int(host, h, "decoder_threads", 0, 64, &v) != 0) bad = "decoder_threads";
    in->n_threads = (size_t)v;
    if (in->n_threads == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        in->n_threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (size_t)ncpu;
    }
    if (!bad && sphx_ms(host, h, "pool_wait", &in->pool_wait_ms) != 0) bad = "pool_wait";
    if (!bad && sphx_ms(host, h, "partial_interval", &partial_ms) != 0) bad = "partial_interval";
    if (!bad && sphx_int(host, h, "samplerate", 8000, 48000, &v) != 0) bad = "samplerate";
    in->rate = (uint32_t)v;
    if (!bad && sphx_ms(host, h, "cmn_restart_after", &restart_after_ms) != 0)
        bad = "cmn_restart_after";
    if (!bad && sphx_ms(host, h, "cmn_restart_window", &restart_window_ms) != 0)
        bad = "cmn_restart_window";
    if (!bad && (host->config_float(h, "cmn_restart", &in->cmn_restart) != VX_OK ||
                 !isfinite(in->cmn_restart) || in->cmn_restart < 0 || in->cmn_restart > 1000))
        bad = "cmn_restart";
    if (bad) {
        sphx_seterr(err, VX_EINVAL, 0, SPHX_NAME ": bad value for %s: '%s'", bad,
                    sphx_cfg(cfg, bad) ? sphx_cfg(cfg, bad) : "");
        goto fail;
    }
    if (in->pool_max < in->pool_size) {
        host->log(h, VX_LOG_WARN, "pool_max %zu is below pool_size %zu: using %zu",
                  in->pool_max, in->pool_size, in->pool_size);
        in->pool_max = in->pool_size;
    }
    /* Partials come every partial_interval of audio; the decoder is fed
     * 100-200 ms at a time, the interval when it lies in between. */
    in->partial_samples = (size_t)(partial_ms * in->rate / 1000);
    if (partial_ms < 100) partial_ms = partial_ms ? 100 : 200;
    if (partial_ms > 200) partial_ms = 200;
    in->chunk_samples = (size_t)(partial_ms * in->rate / 1000);
    in->queue_max = (size_t)in->rate * SPHX_QUEUE_MAX_S;
    in->restart_after = (size_t)(restart_after_ms * in->rate / 1000);
    in->restart_window = (size_t)(restart_window_ms * in->rate / 1000);
    if (in->restart_window < in->restart_after) in->restart_window = in->restart_after;

    if ((rc = sphx_check_file("acoustic model directory", "hmm", sphx_cfg(cfg, "hmm"), 1,
                              err)) != VX_OK)
        goto fail;
    if (*jsgf) rc = sphx_check_file("JSGF grammar", "jsgf", jsgf, 0, err);
    else rc = sphx_check_file("language model", "lm", sphx_cfg(cfg, "lm"), 0, err);
    if (rc != VX_OK) goto fail;
    if ((rc = sphx_check_file("dictionary", "dict", sphx_cfg(cfg, "dict"), 0, err)) != VX_OK)
        goto fail;
    if ((rc = sphx_build_argv(in, cfg, err)) != VX_OK) goto fail;

    rc = VX_ENOMEM;
    if (!(in->idle = calloc(in->pool_max, sizeof(*in->idle)))) {
        sphx_seterr(err, rc, 0, SPHX_NAME ": out of memory at init");
        goto fail;
    }
    if (pthread_condattr_init(&ca) != 0) goto fail_sync;
    /* Waits end at CLOCK_MONOTONIC deadlines: a wall-clock step must not
     * stretch or cut pool_wait. */
    v = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (v == 0) v = pthread_cond_init(&in->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (v != 0) goto fail_sync;
    if (pthread_mutex_init(&in->mu, NULL) != 0) {
        pthread_cond_destroy(&in->cv);
        goto fail_sync;
    }
    sphx_log_hold(); /* released by shutdown, which now owns mu, cv and idle */

    t0 = sphx_now_ms();
    while (in->n_idle < in->pool_size) {
        ps_decoder_t *ps = sphx_decoder_new(in, err);
        if (!ps) {
            rc = VX_EINTERNAL;
            goto fail;
        }
        if (in->n_idle == 0) in->cmn_len = sphx_cmn_get(ps, in->cmn_prior, SPHX_CMN_MAX_VEC);
        in->idle[in->n_idle++] = ps;
        in->n_total++;
    }
    if ((rc = sphx_threads_start(in, err)) != VX_OK) goto fail;
    if (VX_HOST_HAS(host, metric_add) && host->metric_register) {
        in->m_busy = host->metric_register(h, VX_METRIC_GAUGE, "stt_pocketsphinx_decoders_busy",
                                           "Decoders lent to open streams.");
        in->m_timeouts =
            host->metric_register(h, VX_METRIC_COUNTER, "stt_pocketsphinx_pool_timeouts_total",
                                  "Stream opens that found no free decoder within pool_wait.");
        in->m_restarts = host->metric_register(
            h, VX_METRIC_COUNTER, "stt_pocketsphinx_cmn_restarts_total",
            "Utterances decoded again from their start with a corrected cepstral mean "
            "(cmn_restart).");
    }
    host->log(h, VX_LOG_INFO,
              "%zu decoder%s ready in %llu ms (pool_max %zu, %zu decoder threads, %s %s, %u Hz)",
              in->pool_size, in->pool_size == 1 ? "" : "s",
              (unsigned long long)(sphx_now_ms() - t0), in->pool_max, in->n_threads, *jsgf ? "grammar" : "language model",
              *jsgf ? jsgf : sphx_cfg(cfg, "lm"), (unsigned)in->rate);
    *inst = in;
    return VX_OK;

fail_sync:
    free(in->idle);
    in->idle = NULL;
    sphx_seterr(err, VX_ENOMEM, 0, SPHX_NAME ": cannot create the pool's lock");
fail:
    sphx_shutdown(in);
    return rc;
}

static int sphx_health(void *inst, char *buf, size_t len) {
    sphx_inst *in = inst;
    size_t busy, total;

    pthread_mutex_lock(&in->mu);
    busy = in->n_total - in->n_idle;
    total = in->n_total;
    pthread_mutex_unlock(&in->mu);
    snprintf(buf, len, "%zu of %zu decoders busy (pool_max %zu)", busy, total, in->pool_max);
    return VX_OK;
}

static const vx_plugin_info sphx_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT,
    .name = SPHX_NAME,
    .version = SPHX_VERSION,
    .description = "offline streaming speech recognition with CMU pocketsphinx",
    .caps = VX_CAP_STREAMING_INPUT | VX_CAP_PARTIALS,
    .config = sphx_config,
    .init = sphx_init,
    .shutdown = sphx_shutdown,
    .stt = &sphx_stt_vtable,
    .health = sphx_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* log and log_enabled are all a call needs, the typed config getters
     * (1.6) read the settings; metrics are used when present. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_int || !host->config_float || !host->config_duration_ms) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "stt_pocketsphinx needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &sphx_info;
}
