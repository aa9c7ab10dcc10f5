/*
 * voxray-plugin-check: conformance checker for provider plugins.
 *
 *     voxray-plugin-check [--config key=value ...] [--timeout SECONDS]
 *                         [--recording FILE] [-v] PLUGIN.so
 *
 * Loads the file with the daemon's own loader (host/plugin/loader.c), so a plugin
 * the checker accepts is one the daemon accepts; validates the configuration
 * with the daemon's rules (host/base/cfg.c), creates one instance and drives every
 * kind the plugin claims through the contract of <voxray/plugin.h>: whole
 * streams, cancel (idempotent, from two threads, and ended within
 * VX_CANCEL_MS, with the time it took when late), no event after close, the
 * error paths (generate with no user message, synthesize of an empty text,
 * feed and finish after cancel: a VX_E* code with a message and no event, or
 * one terminal event), tools, store round trips, sink uploads, and metric
 * names by the daemon's own rule (loader_metric_name_check). Prints one
 * TAP line per check ("ok N - ..." / "not ok N - ...: reason"), then the plan
 * and a summary. Exit status 0 only when every check passed.
 *
 * Events are recorded under a mutex and waited for with a deadline, and every
 * plugin call runs on a helper thread bounded by the same deadline, so a hung
 * plugin is reported as "timed out" instead of hanging the checker. After a
 * call that never returned the plugin is in an unknown state: the checker
 * reports it and exits at once without unloading it.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "plugin/loader.h"
#include "../tools/wav.h"

#define CK_SETTLE_MS 150 /* quiet period in which no stray event may arrive */
#define CK_MAX_CONFIG 64

/* ---------------------------------------------------------------- TAP */

static int ck_n, ck_failed;
static double ck_timeout_s = 10;
static int ck_verbose;

static void ck_ok(const char *fmt, ...) VX_PRINTF(1, 2);
static void ck_ok(const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    printf("ok %d - ", ++ck_n);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
}

/* One failed check: "not ok N - what: reason". */
static void ck_fail(const char *what, const char *fmt, ...) VX_PRINTF(2, 3);
static void ck_fail(const char *what, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    printf("not ok %d - %s: ", ++ck_n, what);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    ck_failed++;
    fflush(stdout);
}

/* ok or not ok with the reason, by `pass`. */
static void ck_check(int pass, const char *what, const char *fmt, ...) VX_PRINTF(3, 4);
static void ck_check(int pass, const char *what, const char *fmt, ...) {
    va_list ap;
    char why[512];

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (pass) ck_ok("%s", what);
    else ck_fail(what, "%s", why);
}

static void ck_summary(void) {
    printf("1..%d\n# %d check(s), %d failed: %s\n", ck_n, ck_n, ck_failed,
           ck_failed ? "the plugin does NOT conform" : "the plugin conforms");
    fflush(stdout);
}

/* ---------------------------------------------------------------- time */

static uint64_t ck_now_ns(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timespec ck_deadline(double seconds) {
    uint64_t t = ck_now_ns() + (uint64_t)(seconds * 1e9);

    return (struct timespec){(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
}

static void ck_sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void ck_cond_init(pthread_cond_t *c) {
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* ---------------------------------------------------------------- host API */

struct vx_host {
    char prefix[128]; /* "[tts:tts_tone]" */
    vx_kv items[CK_MAX_CONFIG];
    size_t n_items;
};

struct vx_metric {
    struct vx_metric *next;
    vx_metric_type type;
    char name[128];
    double value;
    unsigned long updates;
};

static pthread_mutex_t ck_metric_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vx_metric *ck_metrics;
static unsigned long ck_metric_bad; /* calls with a wrong type or value */
static unsigned long ck_metric_refused; /* names refused, as the daemon refuses them */
static char ck_metric_why[256];         /* the first refusal */

static int ck_log_enabled(vx_host *h, int level) {
    (void)h;
    return level >= (ck_verbose ? VX_LOG_DEBUG : VX_LOG_INFO);
}

static void ck_vlog(vx_host *h, int level, const char *fmt, va_list ap) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[2048];

    if (!ck_log_enabled(h, level) && h != NULL) return;
    vsnprintf(line, sizeof line, fmt, ap);
    if (h == NULL) loader_entry_note(level, line); /* the reason an entry refuses */
    if (!ck_log_enabled(h, level)) return;
    /* One fprintf per line so lines from plugin threads do not interleave. */
    fprintf(stderr, "%s %s: %s\n", h ? h->prefix : "[plugin]",
            level >= 0 && level <= 3 ? names[level] : "?", line);
}

static void ck_log(vx_host *h, int level, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    ck_vlog(h, level, fmt, ap);
    va_end(ap);
}

static void *ck_alloc(size_t n) { return malloc(n ? n : 1); }
static void ck_free(void *p) { free(p); }

static const char *ck_config_get(vx_host *h, const char *key) {
    for (size_t i = 0; h && key && i < h->n_items; i++)
        if (strcmp(h->items[i].key, key) == 0) return h->items[i].value;
    return NULL;
}

static int ck_config_int(vx_host *h, const char *key, int64_t *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_INT, out) : VX_EINVAL;
}
static int ck_config_float(vx_host *h, const char *key, double *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_FLOAT, out) : VX_EINVAL;
}
static int ck_config_bool(vx_host *h, const char *key, int *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_BOOL, out) : VX_EINVAL;
}
static int ck_config_duration_ms(vx_host *h, const char *key, int64_t *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_DURATION_MS, out) : VX_EINVAL;
}
static int ck_config_duration_ns(vx_host *h, const char *key, int64_t *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_DURATION_NS, out) : VX_EINVAL;
}
static int ck_config_size(vx_host *h, const char *key, uint64_t *out) {
    return h ? cfg_kv_get(h->items, h->n_items, key, CFG_GET_SIZE, out) : VX_EINVAL;
}

static vx_metric *ck_metric_register(vx_host *h, vx_metric_type type, const char *name,
                                     const char *help) {
    struct vx_metric *m;
    char why[256];

    (void)help;
    /* The daemon's own rule (loader.c), so both refuse the same names. */
    if (loader_metric_name_check((int)type, name, why, sizeof why) != 0) {
        ck_log(h, VX_LOG_WARN, "metric refused: %s", why);
        pthread_mutex_lock(&ck_metric_lock);
        if (ck_metric_refused++ == 0) snprintf(ck_metric_why, sizeof ck_metric_why, "%s", why);
        pthread_mutex_unlock(&ck_metric_lock);
        return NULL;
    }
    pthread_mutex_lock(&ck_metric_lock);
    for (m = ck_metrics; m; m = m->next)
        if (strcmp(m->name, name) == 0) break;
    if (m && m->type != type) { /* type clash */
        if (ck_metric_refused++ == 0)
            snprintf(ck_metric_why, sizeof ck_metric_why,
                     "'%s' is already registered as another type", name);
        m = NULL;
    } else if (m == NULL && (m = calloc(1, sizeof *m)) != NULL) {
        m->type = type;
        snprintf(m->name, sizeof m->name, "%s", name);
        m->next = ck_metrics;
        ck_metrics = m;
    }
    pthread_mutex_unlock(&ck_metric_lock);
    return m;
}

static void ck_metric_update(vx_metric *m, double v, int ok) {
    if (m == NULL) return;
    pthread_mutex_lock(&ck_metric_lock);
    if (ok) {
        m->value = m->type == VX_METRIC_GAUGE ? v : m->value + v;
        m->updates++;
    } else {
        ck_metric_bad++;
    }
    pthread_mutex_unlock(&ck_metric_lock);
}

static void ck_metric_add(vx_metric *m, double v) {
    ck_metric_update(m, v, m && (m->type == VX_METRIC_GAUGE || v >= 0));
}
static void ck_metric_set(vx_metric *m, double v) {
    ck_metric_update(m, v, m && m->type == VX_METRIC_GAUGE);
}
static void ck_metric_observe(vx_metric *m, double v) {
    ck_metric_update(m, v, m && m->type == VX_METRIC_HISTOGRAM);
}

/* A tiny defer thread: jobs sorted by due time, run one at a time. Stopping
 * runs the jobs not yet due at once (as the daemon does) and refuses later
 * ones with VX_EUNAVAIL. */
typedef struct ck_job {
    struct ck_job *next;
    uint64_t due;
    uint64_t id;
    void (*fn)(void *);
    void *arg;
} ck_job;

static pthread_mutex_t ck_defer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ck_defer_cond;
static pthread_cond_t ck_defer_done = PTHREAD_COND_INITIALIZER; /* a job returned */
static ck_job *ck_jobs;
static int ck_defer_stopping, ck_defer_running;
static pthread_t ck_defer_thread;
static uint64_t ck_defer_next_id = 1, ck_defer_current; /* the job running, 0 none */

static void *ck_defer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&ck_defer_lock);
    for (;;) {
        ck_job *j = ck_jobs;

        if (j == NULL && ck_defer_stopping) break;
        if (j == NULL) {
            pthread_cond_wait(&ck_defer_cond, &ck_defer_lock);
            continue;
        }
        if (!ck_defer_stopping && j->due > ck_now_ns()) {
            struct timespec ts = {(time_t)(j->due / 1000000000ull),
                                  (long)(j->due % 1000000000ull)};
            pthread_cond_timedwait(&ck_defer_cond, &ck_defer_lock, &ts);
            continue;
        }
        ck_jobs = j->next;
        ck_defer_current = j->id;
        pthread_mutex_unlock(&ck_defer_lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&ck_defer_lock);
        ck_defer_current = 0;
        pthread_cond_broadcast(&ck_defer_done);
    }
    pthread_mutex_unlock(&ck_defer_lock);
    return NULL;
}

static int ck_defer_at(vx_host *h, uint64_t due, void (*fn)(void *), void *arg, uint64_t *id) {
    ck_job *j, **pp;
    int rc = VX_OK;

    (void)h;
    if (fn == NULL) return VX_EINVAL;
    pthread_mutex_lock(&ck_defer_lock);
    if (ck_defer_stopping || !ck_defer_running) {
        rc = VX_EUNAVAIL;
    } else if ((j = malloc(sizeof *j)) == NULL) {
        rc = VX_ENOMEM;
    } else {
        j->due = due;
        j->fn = fn;
        j->arg = arg;
        j->id = ck_defer_next_id++;
        if (id) *id = j->id;
        for (pp = &ck_jobs; *pp && (*pp)->due <= j->due; pp = &(*pp)->next) {}
        j->next = *pp;
        *pp = j;
        pthread_cond_signal(&ck_defer_cond);
    }
    pthread_mutex_unlock(&ck_defer_lock);
    return rc;
}

static int ck_defer_id(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg,
                       uint64_t *id) {
    return ck_defer_at(h, ck_now_ns() + (uint64_t)delay_ms * 1000000ull, fn, arg, id);
}

static int ck_defer(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg) {
    return ck_defer_id(h, delay_ms, fn, arg, NULL);
}

static int ck_defer_cancel(vx_host *h, uint64_t id, int wait) {
    int removed = 0;

    (void)h;
    pthread_mutex_lock(&ck_defer_lock);
    for (ck_job **pp = &ck_jobs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            ck_job *j = *pp;
            *pp = j->next;
            free(j);
            removed = 1;
            break;
        }
    }
    /* The timer thread cannot wait for the job it is running. */
    if (!removed && wait && !pthread_equal(pthread_self(), ck_defer_thread))
        while (id != 0 && ck_defer_current == id)
            pthread_cond_wait(&ck_defer_done, &ck_defer_lock);
    pthread_mutex_unlock(&ck_defer_lock);
    return removed;
}

static void ck_defer_stop(void) {
    if (!ck_defer_running) return;
    pthread_mutex_lock(&ck_defer_lock);
    ck_defer_stopping = 1;
    pthread_cond_signal(&ck_defer_cond);
    pthread_mutex_unlock(&ck_defer_lock);
    pthread_join(ck_defer_thread, NULL);
    ck_defer_running = 0;
}

static const vx_host_api ck_api = {
    .struct_size = sizeof(vx_host_api),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .log = ck_log,
    .vlog = ck_vlog,
    .log_enabled = ck_log_enabled,
    .now_ns = ck_now_ns,
    .alloc = ck_alloc,
    .free = ck_free,
    .defer = ck_defer,
    .config_get = ck_config_get,
    .metric_register = ck_metric_register,
    .metric_add = ck_metric_add,
    .metric_set = ck_metric_set,
    .metric_observe = ck_metric_observe,
    .defer_id = ck_defer_id,
    .defer_cancel = ck_defer_cancel,
    .defer_at = ck_defer_at,
    .config_int = ck_config_int,
    .config_float = ck_config_float,
    .config_bool = ck_config_bool,
    .config_duration_ms = ck_config_duration_ms,
    .config_duration_ns = ck_config_duration_ns,
    .config_size = ck_config_size,
};

/* ---------------------------------------------------------------- bounded calls */

/* Run fn(arg) on its own thread and wait at most the timeout. A call that
 * does not return leaves the plugin in an unknown state (it may hold the
 * stream, its locks, its threads): report it, and exit without unloading. */
typedef struct ck_call {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    void (*fn)(void *);
    void *arg;
} ck_call;

static void *ck_call_main(void *p) {
    ck_call *c = p;

    c->fn(c->arg);
    pthread_mutex_lock(&c->lock);
    c->done = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void ck_bounded(const char *what, void (*fn)(void *), void *arg) {
    ck_call *c = calloc(1, sizeof *c);
    struct timespec dl = ck_deadline(ck_timeout_s);
    pthread_t t;
    int done;

    if (c == NULL) {
        fn(arg); /* no memory for the watchdog: run unguarded */
        return;
    }
    pthread_mutex_init(&c->lock, NULL);
    ck_cond_init(&c->cond);
    c->fn = fn;
    c->arg = arg;
    if (pthread_create(&t, NULL, ck_call_main, c) != 0) {
        fn(arg);
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    while (!c->done && pthread_cond_timedwait(&c->cond, &c->lock, &dl) != ETIMEDOUT) {}
    done = c->done;
    pthread_mutex_unlock(&c->lock);
    if (!done) {
        ck_fail(what, "call did not return: timed out after %g s", ck_timeout_s);
        ck_summary();
        fflush(NULL);
        _exit(1); /* the plugin's thread still runs inside it: no cleanup */
    }
    pthread_join(t, NULL);
out:
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ---------------------------------------------------------------- event recorder */

/* What one stream delivered. Kept alive until the plugin is unloaded, so a
 * (wrong) event after close() is recorded rather than a use after free. */
typedef struct ck_rec {
    struct ck_rec *next;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int partials, finals, errors, dones, tokens, audios;
    size_t frames, token_bytes;
    int terminals;       /* finals + errors (STT), dones + errors (LLM/TTS) */
    uint64_t t_terminal; /* ck_now_ns() of the first terminal event, 0 none yet */
    int events;          /* every event, terminal or not */
    int after_terminal;  /* LLM/TTS: events after the terminal one */
    int after_close;     /* events after close() returned */
    int after_error;     /* events after an on_error ("no further event follows") */
    int closed;
    int last_error;
    char last_msg[256];
    int last_event_error; /* the event being recorded is an on_error */
    char text[256]; /* last final / start of the reply */
    int utt_ended;              /* STT: a final came and no audio was fed since */
    int partial_after_final;    /* STT: partials while utt_ended (a stale hypothesis) */
    int partials_at_final;      /* STT: partials before the first final */
    int tool_frags, tool_calls; /* LLM: on_tool_call fragments, calls they opened */
    int tool_bad;               /* fragments that broke on_tool_call's rules */
    char tool_why[160];         /* the first of those */
    char tool_name[64];         /* call 0: its function and the start of its arguments */
    char tool_args[128];
    size_t tool_args_len;
} ck_rec;

static ck_rec *ck_recs;

static ck_rec *ck_rec_new(void) {
    ck_rec *r = calloc(1, sizeof *r);

    if (r == NULL) {
        fprintf(stderr, "voxray-plugin-check: out of memory\n");
        exit(2);
    }
    pthread_mutex_init(&r->lock, NULL);
    ck_cond_init(&r->cond);
    r->next = ck_recs;
    ck_recs = r;
    return r;
}

static void ck_rec_free_all(void) {
    while (ck_recs) {
        ck_rec *r = ck_recs;
        ck_recs = r->next;
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
}

/* Common bookkeeping of every event; call with r->lock held. */
static void ck_rec_event(ck_rec *r, int terminal) {
    if (r->closed) r->after_close++;
    if (r->errors > (r->last_event_error ? 1 : 0)) r->after_error++;
    r->events++;
    if (terminal && r->terminals++ == 0) r->t_terminal = ck_now_ns();
    pthread_cond_broadcast(&r->cond);
}

/* Wait until the count of terminal events reaches n; 0 on success, -1 on
 * timeout. */
static int ck_wait_terminals(ck_rec *r, int n) {
    struct timespec dl = ck_deadline(ck_timeout_s);
    int rc = 0;

    pthread_mutex_lock(&r->lock);
    while (r->terminals < n && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&r->cond, &r->lock, &dl);
    rc = r->terminals >= n ? 0 : -1;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Wait for any output (or the end); 0 on success, -1 on timeout. */
static int ck_wait_output(ck_rec *r) {
    struct timespec dl = ck_deadline(ck_timeout_s);
    int rc = 0;

    pthread_mutex_lock(&r->lock);
    while (r->tokens + r->audios + r->partials + r->terminals == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &dl);
    rc = r->tokens + r->audios + r->partials + r->terminals > 0 ? 0 : -1;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void ck_rec_mark_closed(ck_rec *r) {
    pthread_mutex_lock(&r->lock);
    r->closed = 1;
    pthread_mutex_unlock(&r->lock);
}

/* Snapshot one counter under the lock. */
#define CK_GET(r, field, out) \
    do { pthread_mutex_lock(&(r)->lock); (out) = (r)->field; pthread_mutex_unlock(&(r)->lock); } while (0)

static void ck_on_error(void *u, const vx_error *e) {
    ck_rec *r = u;

    pthread_mutex_lock(&r->lock);
    if (r->terminals && (r->dones || r->errors)) r->after_terminal++;
    r->errors++;
    r->last_event_error = 1;
    r->last_error = e ? e->code : 0;
    snprintf(r->last_msg, sizeof r->last_msg, "%s", e ? e->msg : "(NULL vx_error)");
    ck_rec_event(r, 1);
    r->last_event_error = 0;
    pthread_mutex_unlock(&r->lock);
}

/* STT */
static void ck_on_partial(void *u, const char *text) {
    ck_rec *r = u;

    (void)text;
    pthread_mutex_lock(&r->lock);
    r->partials++;
    if (r->utt_ended) r->partial_after_final++;
    ck_rec_event(r, 0);
    pthread_mutex_unlock(&r->lock);
}

static void ck_on_final(void *u, const char *text, float conf) {
    ck_rec *r = u;

    (void)conf;
    pthread_mutex_lock(&r->lock);
    if (r->finals == 0) r->partials_at_final = r->partials;
    r->finals++;
    r->utt_ended = 1;
    snprintf(r->text, sizeof r->text, "%s", text ? text : "(NULL)");
    ck_rec_event(r, 1);
    pthread_mutex_unlock(&r->lock);
}

/* LLM */
static void ck_on_token(void *u, const char *text, size_t len) {
    ck_rec *r = u;

    pthread_mutex_lock(&r->lock);
    if (r->terminals) r->after_terminal++;
    if (r->token_bytes + len < sizeof r->text && text)
        memcpy(r->text + r->token_bytes, text, len);
    r->tokens++;
    r->token_bytes += len;
    ck_rec_event(r, 0);
    pthread_mutex_unlock(&r->lock);
}

/* The one function ck_llm_generate offers. */
#define CK_TOOL "get_weather"

/* A broken rule of on_tool_call; the first one is kept. Lock held. */
static void ck_tool_bad(ck_rec *r, const char *fmt, ...) VX_PRINTF(2, 3);
static void ck_tool_bad(ck_rec *r, const char *fmt, ...) {
    va_list ap;

    if (r->tool_bad++) return;
    va_start(ap, fmt);
    vsnprintf(r->tool_why, sizeof r->tool_why, fmt, ap);
    va_end(ap);
}

static void ck_on_tool_call(void *u, uint32_t index, const char *id, const char *name,
                            const char *args, size_t len) {
    ck_rec *r = u;

    pthread_mutex_lock(&r->lock);
    if (r->terminals) r->after_terminal++;
    r->tool_frags++;
    if (index > (uint32_t)r->tool_calls) {
        ck_tool_bad(r, "index %u before any fragment of call %d", index, r->tool_calls);
    } else if (index == (uint32_t)r->tool_calls) {
        r->tool_calls++;
        if (!id || !*id || !name || !*name)
            ck_tool_bad(r, "the first fragment of call %u lacks its id or name", index);
        else if (strcmp(name, CK_TOOL) != 0)
            ck_tool_bad(r, "call %u names '%.40s', which was not offered", index, name);
        if (index == 0) snprintf(r->tool_name, sizeof r->tool_name, "%s", name ? name : "");
    } else if (id || name) {
        ck_tool_bad(r, "a later fragment of call %u repeats its id or name", index);
    }
    if (len && !args) ck_tool_bad(r, "args NULL with len %zu", len);
    if (index == 0 && args && r->tool_args_len + len < sizeof r->tool_args) {
        memcpy(r->tool_args + r->tool_args_len, args, len);
        r->tool_args_len += len;
    }
    ck_rec_event(r, 0);
    pthread_mutex_unlock(&r->lock);
}

static void ck_on_llm_done(void *u, const vx_usage *usage) {
    ck_rec *r = u;

    (void)usage;
    pthread_mutex_lock(&r->lock);
    if (r->terminals) r->after_terminal++;
    r->dones++;
    ck_rec_event(r, 1);
    pthread_mutex_unlock(&r->lock);
}

/* TTS */
static void ck_on_audio(void *u, const int16_t *pcm, size_t frames) {
    ck_rec *r = u;

    (void)pcm;
    pthread_mutex_lock(&r->lock);
    if (r->terminals) r->after_terminal++;
    r->audios++;
    r->frames += frames;
    ck_rec_event(r, 0);
    pthread_mutex_unlock(&r->lock);
}

static void ck_on_tts_done(void *u) {
    ck_on_llm_done(u, NULL);
}

/* ---------------------------------------------------------------- stream ops */

/* Arguments and results of one bounded plugin call. */
typedef struct ck_op {
    const loader_plugin *p;
    void *inst;
    vx_stream *s;
    ck_rec *r;
    int rc;
    vx_error err;
    vx_audio_format fmt;
    const char *text;
    const int16_t *pcm;
    size_t frames;
    int blocks; /* STT feed: number of blocks; cancel/close: 1 stt, 2 llm, 3 tts */
    int tools;  /* LLM generate: 1 offer CK_TOOL, 2 and pass events of ABI 1.2 */
    int no_user; /* LLM generate: the system message only */
} ck_op;

static void ck_do_cancel(void *a) {
    ck_op *o = a;

    if (o->blocks == 1) o->p->stt.cancel(o->s);
    else if (o->blocks == 2) o->p->llm.cancel(o->s);
    else if (o->blocks == 3) o->p->tts.cancel(o->s);
}

static void *ck_cancel_thread(void *a) {
    ck_do_cancel(a);
    return NULL;
}

/* cancel() from two threads at once, then once more: idempotent and callable
 * from any thread. */
static void ck_cancel_twice_main(void *a) {
    ck_op *o = a;
    pthread_t t;
    int th = pthread_create(&t, NULL, ck_cancel_thread, o) == 0;

    ck_do_cancel(o);
    if (th) pthread_join(t, NULL);
    ck_do_cancel(o);
}

static void ck_cancel_twice(const char *what, const loader_plugin *p, vx_stream *s, int kind) {
    ck_op o = {.p = p, .s = s, .blocks = kind};

    ck_bounded(what, ck_cancel_twice_main, &o);
}

static void ck_do_close(void *a) {
    ck_op *o = a;

    if (o->blocks == 1) o->p->stt.close(o->s);
    else if (o->blocks == 2) o->p->llm.close(o->s);
    else o->p->tts.close(o->s);
}

/* close(), then watch for CK_SETTLE_MS: no event may fire after it returned. */
static void ck_close_check(const char *what, const loader_plugin *p, vx_stream *s,
                           ck_rec *r, int kind) {
    ck_op o = {.p = p, .s = s, .blocks = kind};
    int late;

    ck_bounded(what, ck_do_close, &o);
    ck_rec_mark_closed(r);
    ck_sleep_ms(CK_SETTLE_MS);
    CK_GET(r, after_close, late);
    ck_check(late == 0, what, "%d event(s) fired after close() returned", late);
}

/* The stream of r got cancel() at t0 (ck_now_ns): its terminal event must
 * follow within VX_CANCEL_MS. Waits up to the --timeout for it, so a plugin
 * that sleeps out a long delay is reported with the time it took. */
static void ck_cancel_latency(ck_rec *r, uint64_t t0, const char *k) {
    char what[160];
    uint64_t t;
    double ms;

    snprintf(what, sizeof what, "%s: terminal event within %d ms of cancel", k, VX_CANCEL_MS);
    if (ck_wait_terminals(r, 1) != 0) {
        ck_fail(what, "no terminal event after cancel: timed out after %g s", ck_timeout_s);
        return;
    }
    CK_GET(r, t_terminal, t);
    ms = t > t0 ? (double)(t - t0) / 1e6 : 0;
    if (ms <= VX_CANCEL_MS)
        ck_ok("%s # took %.1f ms", what, ms);
    else
        ck_fail(what, "took %.0f ms (VX_CANCEL_MS is %d): stop waiting on timers and I/O "
                "when cancel() is called", ms, VX_CANCEL_MS);
}

/* ---------------------------------------------------------------- STT */

static void ck_stt_open(void *a) {
    ck_op *o = a;
    vx_stt_events ev = {sizeof ev, o->r, ck_on_partial, ck_on_final, ck_on_error};
    vx_audio_format fmt = {16000, 1, VX_PCM_S16LE};

    o->rc = o->p->stt.open(o->inst, &fmt, &ev, &o->s, &o->err);
}

/* New audio: an utterance goes on (partials may come again). */
static void ck_stt_audio_comes(ck_rec *r) {
    pthread_mutex_lock(&r->lock);
    r->utt_ended = 0;
    pthread_mutex_unlock(&r->lock);
}

static void ck_stt_feed(void *a) {
    ck_op *o = a;

    o->rc = VX_OK;
    if (o->r) ck_stt_audio_comes(o->r);
    for (int i = 0; i < o->blocks && o->rc == VX_OK; i++)
        o->rc = o->p->stt.feed(o->s, o->pcm, o->frames, &o->err);
}

/* Feed o->frames samples from o->pcm in 10 ms blocks (--speech). */
static void ck_stt_feed_all(void *a) {
    ck_op *o = a;

    o->rc = VX_OK;
    if (o->r) ck_stt_audio_comes(o->r);
    for (size_t off = 0; off < o->frames && o->rc == VX_OK; off += 160) {
        size_t n = o->frames - off < 160 ? o->frames - off : 160;
        o->rc = o->p->stt.feed(o->s, o->pcm + off, n, &o->err);
    }
}

static void ck_stt_finish(void *a) {
    ck_op *o = a;

    o->rc = o->p->stt.finish(o->s, &o->err);
}

/* Open a 16 kHz mono stream; on failure report it and return NULL. */
static vx_stream *ck_stt_start(const loader_plugin *p, void *inst, ck_rec *r, const char *what) {
    ck_op o = {.p = p, .inst = inst, .r = r};

    ck_bounded(what, ck_stt_open, &o);
    if (o.rc != VX_OK || o.s == NULL) {
        ck_fail(what, "open returned %s (%d)%s%s", loader_error_name(o.rc), o.rc,
                o.err.msg[0] ? ": " : "", o.err.msg);
        /* A stream published in *out before a failure is the host's to close. */
        if (o.s) ck_close_check("stt: close after a failed open", p, o.s, r, 1);
        return NULL;
    }
    ck_ok("%s", what);
    return o.s;
}

/* Feed `ms` of silence in 10 ms blocks. */
static int ck_stt_feed_silence(const loader_plugin *p, vx_stream *s, ck_rec *r, int ms,
                               const char *what) {
    static const int16_t zeros[160];
    ck_op o = {.p = p, .s = s, .r = r, .pcm = zeros, .frames = 160, .blocks = ms / 10};

    ck_bounded(what, ck_stt_feed, &o);
    ck_check(o.rc == VX_OK, what, "feed returned %s (%d): %s", loader_error_name(o.rc), o.rc,
             o.err.msg);
    return o.rc;
}

/* finish -> exactly one on_final or on_error; `n` is the terminal count to
 * expect after it. Returns 0 when the utterance ended in on_final. */
static int ck_stt_utterance(const loader_plugin *p, vx_stream *s, ck_rec *r, int n,
                            const char *what) {
    ck_op o = {.p = p, .s = s};
    int got, errors;

    ck_bounded(what, ck_stt_finish, &o);
    if (o.rc != VX_OK) {
        ck_fail(what, "finish returned %s (%d): %s", loader_error_name(o.rc), o.rc, o.err.msg);
        return -1;
    }
    if (ck_wait_terminals(r, n) != 0) {
        ck_fail(what, "no on_final or on_error: timed out after %g s", ck_timeout_s);
        return -1;
    }
    ck_sleep_ms(CK_SETTLE_MS);
    pthread_mutex_lock(&r->lock);
    got = r->terminals;
    errors = r->errors;
    int stale = r->partial_after_final;
    pthread_mutex_unlock(&r->lock);
    if (got != n) {
        ck_fail(what, "%d on_final/on_error for %d utterance(s), expected exactly %d", got, n, n);
        return -1;
    }
    if (stale) {
        ck_fail(what, "%d on_partial after on_final with no audio fed since: the final ends its "
                "utterance's hypotheses", stale);
        return -1;
    }
    if (errors) {
        ck_ok("%s # ended with on_error %s: %s", what, loader_error_name(r->last_error),
              r->last_msg);
        return -1;
    }
    ck_ok("%s # final \"%s\"", what, r->text);
    return 0;
}

static void ck_stt(const loader_plugin *p, void *inst) {
    ck_rec *r = ck_rec_new();
    vx_stream *s;

    s = ck_stt_start(p, inst, r, "stt: open at 16 kHz mono");
    if (s) {
        if (ck_stt_feed_silence(p, s, r, 1000, "stt: feed 1 s of silence in 10 ms blocks") == VX_OK &&
            ck_stt_utterance(p, s, r, 1, "stt: finish -> exactly one on_final or on_error") == 0 &&
            ck_stt_feed_silence(p, s, r, 500, "stt: feed a second utterance") == VX_OK)
            ck_stt_utterance(p, s, r, 2, "stt: second utterance -> exactly one on_final");
        ck_close_check("stt: no event after close", p, s, r, 1);
    }

    r = ck_rec_new();
    s = ck_stt_start(p, inst, r, "stt: open a stream to cancel");
    if (s) {
        ck_op o = {.p = p, .s = s};
        int t, f, e;

        uint64_t t0;

        ck_stt_feed_silence(p, s, r, 300, "stt: feed before cancel");
        ck_bounded("stt: finish before cancel", ck_stt_finish, &o);
        t0 = ck_now_ns();
        ck_cancel_twice("stt: cancel is idempotent from two threads", p, s, 1);
        ck_ok("stt: cancel is idempotent from two threads");
        /* finish asked for exactly one on_final or on_error: with cancel it
         * is due within VX_CANCEL_MS. */
        ck_cancel_latency(r, t0, "stt");
        ck_sleep_ms(CK_SETTLE_MS);
        pthread_mutex_lock(&r->lock);
        f = r->finals;
        e = r->errors;
        t = r->after_error;
        pthread_mutex_unlock(&r->lock);
        ck_check(f <= 1 && e <= 1 && t == 0,
                 "stt: finish + cancel: at most one on_final, nothing after on_error",
                 "%d on_final, %d on_error, %d event(s) after on_error", f, e, t);
        ck_close_check("stt: no event after close of a cancelled stream", p, s, r, 1);
    }
}

/* --speech: a recording of speech fed as one utterance, then finish. A
 * recogniser must say something; one with VX_CAP_PARTIALS must have sent a
 * partial hypothesis before its final, and none after it. */
static void ck_stt_speech(const loader_plugin *p, void *inst, const wav_audio *w) {
    ck_rec *r = ck_rec_new();
    vx_stream *s = ck_stt_start(p, inst, r, "stt: open a stream for the --speech recording");
    ck_op o = {.p = p, .s = s, .r = r, .pcm = w->pcm, .frames = w->samples};
    char text[256];
    int before;

    if (!s) return;
    ck_bounded("stt: feed the --speech recording in 10 ms blocks", ck_stt_feed_all, &o);
    ck_check(o.rc == VX_OK, "stt: feed the --speech recording in 10 ms blocks",
             "feed returned %s (%d): %s", loader_error_name(o.rc), o.rc, o.err.msg);
    if (o.rc == VX_OK && ck_stt_utterance(p, s, r, 1, "stt: speech -> exactly one on_final") == 0) {
        pthread_mutex_lock(&r->lock);
        snprintf(text, sizeof text, "%s", r->text);
        before = r->partials_at_final;
        pthread_mutex_unlock(&r->lock);
        ck_check(text[strspn(text, " \t")] != '\0', "stt: speech -> a final with words",
                 "the final transcript of %.1f s of speech is empty",
                 (double)w->samples / 16000.0);
        if (p->info.caps & VX_CAP_PARTIALS)
            ck_check(before > 0, "stt: partials before the final (caps say partials)",
                     "no on_partial during %.1f s of speech, though caps has VX_CAP_PARTIALS",
                     (double)w->samples / 16000.0);
        else
            ck_ok("stt: partials before the final # skipped: caps has no VX_CAP_PARTIALS");
    }
    ck_close_check("stt: no event after close (speech)", p, s, r, 1);
}

/* ---------------------------------------------------------------- LLM */

static void ck_llm_generate(void *a) {
    ck_op *o = a;
    static const vx_message msgs[] = {
        {"system", "You are a helpful voice assistant. Answer briefly."},
        {"user", "Hello, can you tell me something about the weather?"}};
    static const char tools[] =
        "[{\"type\":\"function\",\"name\":\"" CK_TOOL "\",\"description\":\"Current "
        "weather in a city\",\"parameters\":{\"type\":\"object\",\"properties\":"
        "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}]";
    vx_llm_params params = {.struct_size = sizeof params, .temperature = -1, .session_id = "vx-plugin-check"};
    vx_llm_events ev = {.struct_size = sizeof ev, .user = o->r, .on_token = ck_on_token, .on_done = ck_on_llm_done, .on_error = ck_on_error};

    if (o->tools) {
        params.tools_json = tools;
        params.tool_choice = "required";
        ev.on_tool_call = ck_on_tool_call;
    }
    /* A host of ABI 1.2: the struct ends before on_tool_call (whose slot
     * still points at the recorder, so a plugin that reads it is caught). */
    if (o->tools == 2) ev.struct_size = VX_LLM_EVENTS_SIZE_1_3 - sizeof(void (*)(void));
    o->rc = o->p->llm.generate(o->inst, msgs, o->no_user ? 1 : 2, &params, &ev, &o->s, &o->err);
}

static void ck_tts_synthesize(void *a) {
    ck_op *o = a;
    vx_tts_events ev = {sizeof ev, o->r, ck_on_audio, ck_on_tts_done, ck_on_error};

    o->rc = o->p->tts.synthesize(o->inst, o->text, NULL, &o->fmt, &ev, &o->s, &o->err);
}

/* Start the LLM (kind 2) or TTS (kind 3) stream o describes; NULL on failure
 * (reported). */
static vx_stream *ck_start_op(ck_op *o, int kind, vx_audio_format *fmt, const char *what) {
    ck_bounded(what, kind == 2 ? ck_llm_generate : ck_tts_synthesize, o);
    if (o->rc != VX_OK || o->s == NULL) {
        ck_fail(what, "returned %s (%d)%s%s%s", loader_error_name(o->rc), o->rc,
                o->err.msg[0] ? ": " : "", o->err.msg,
                o->rc == VX_OK ? " but left *out NULL" : "");
        if (o->s) ck_close_check("close after a failed start", o->p, o->s, o->r, kind);
        return NULL;
    }
    if (fmt) *fmt = o->fmt;
    ck_ok("%s", what);
    return o->s;
}

static vx_stream *ck_start(const loader_plugin *p, void *inst, ck_rec *r, int kind,
                           const char *text, vx_audio_format *fmt, const char *what) {
    ck_op o = {.p = p, .inst = inst, .r = r, .text = text};

    return ck_start_op(&o, kind, fmt, what);
}

/* A whole stream: output, then exactly one terminal event, nothing after. */
static void ck_stream_complete(const loader_plugin *p, void *inst, int kind) {
    const char *k = kind == 2 ? "llm" : "tts";
    char what[160];
    ck_rec *r = ck_rec_new();
    vx_audio_format fmt = {0, 0, 0};
    vx_stream *s;
    int outputs, terms, after, errors, dones;

    snprintf(what, sizeof what, "%s: %s", k,
             kind == 2 ? "generate with a 2-message conversation"
                       : "synthesize \"Hello there.\"");
    s = ck_start(p, inst, r, kind, "Hello there.", &fmt, what);
    if (s == NULL) return;
    if (kind == 3)
        ck_check(fmt.sample_rate >= 8000 && fmt.sample_rate <= 192000 && fmt.channels == 1 &&
                     fmt.encoding == VX_PCM_S16LE,
                 "tts: *fmt is mono s16le at 8..192 kHz",
                 "reported %u Hz, %u channel(s), encoding %u", fmt.sample_rate, fmt.channels,
                 fmt.encoding);

    snprintf(what, sizeof what, "%s: %s then exactly one on_done or on_error", k,
             kind == 2 ? "tokens" : "audio chunks");
    if (ck_wait_terminals(r, 1) != 0) {
        ck_fail(what, "no on_done or on_error: timed out after %g s", ck_timeout_s);
    } else {
        ck_sleep_ms(CK_SETTLE_MS);
        pthread_mutex_lock(&r->lock);
        outputs = kind == 2 ? r->tokens : r->audios;
        terms = r->terminals;
        after = r->after_terminal;
        errors = r->errors;
        dones = r->dones;
        pthread_mutex_unlock(&r->lock);
        if (terms != 1 || after)
            ck_fail(what, "%d terminal event(s), %d event(s) after the first one", terms, after);
        else if (errors)
            ck_ok("%s # on_error %s: %s", what, loader_error_name(r->last_error), r->last_msg);
        else if (dones && outputs == 0)
            ck_fail(what, "on_done without any %s", kind == 2 ? "token" : "audio");
        else if (kind == 2)
            ck_ok("%s # %d token(s): \"%.60s\"", what, outputs, r->text);
        else {
            double secs = (double)r->frames / fmt.sample_rate;
            ck_ok("%s # %d chunk(s), %.2f s of audio", what, outputs, secs);
        }
        if (kind == 3 && dones && !errors) {
            snprintf(what, sizeof what, "tts: audio in the format reported by *fmt");
            ck_check(r->frames > 0 && r->frames < (size_t)fmt.sample_rate * 60, what,
                     "%zu frames at %u Hz for \"Hello there.\"", r->frames, fmt.sample_rate);
        }
    }
    snprintf(what, sizeof what, "%s: no event after close", k);
    ck_close_check(what, p, s, r, kind);
}

/* cancel mid-stream -> the stream still ends (on_error(VX_ECANCELED) or
 * on_done), then close. */
static void ck_stream_cancel(const loader_plugin *p, void *inst, int kind) {
    const char *k = kind == 2 ? "llm" : "tts";
    const char *text = "Hello there. This sentence is long enough to take a while to speak, "
                       "so that cancelling it really interrupts the stream.";
    char what[160];
    ck_rec *r = ck_rec_new();
    vx_stream *s;
    int terms, err;
    uint64_t t0;

    snprintf(what, sizeof what, "%s: start a stream to cancel", k);
    if ((s = ck_start(p, inst, r, kind, text, NULL, what)) == NULL) return;
    snprintf(what, sizeof what, "%s: first output before cancel", k);
    if (ck_wait_output(r) != 0)
        ck_fail(what, "no event at all: timed out after %g s", ck_timeout_s);
    else
        ck_ok("%s", what);
    snprintf(what, sizeof what, "%s: cancel is idempotent from two threads", k);
    t0 = ck_now_ns();
    ck_cancel_twice(what, p, s, kind);
    ck_ok("%s", what);
    ck_cancel_latency(r, t0, k);
    snprintf(what, sizeof what, "%s: cancelled stream ends with exactly one on_error or on_done", k);
    if (ck_wait_terminals(r, 1) != 0) {
        ck_fail(what, "no terminal event after cancel: timed out after %g s", ck_timeout_s);
    } else {
        ck_sleep_ms(CK_SETTLE_MS);
        CK_GET(r, terminals, terms);
        CK_GET(r, errors, err);
        if (terms != 1) ck_fail(what, "%d terminal event(s)", terms);
        else if (err) ck_ok("%s # on_error %s", what, loader_error_name(r->last_error));
        else ck_ok("%s # on_done", what);
    }
    snprintf(what, sizeof what, "%s: no event after close of a cancelled stream", k);
    ck_close_check(what, p, s, r, kind);
}

/* close right after a successful start, without cancel. */
static void ck_stream_close_early(const loader_plugin *p, void *inst, int kind) {
    const char *k = kind == 2 ? "llm" : "tts";
    char what[160];
    ck_rec *r = ck_rec_new();
    vx_stream *s;

    snprintf(what, sizeof what, "%s: start a stream to close at once", k);
    if ((s = ck_start(p, inst, r, kind, "Hello there. Closing early.", NULL, what)) == NULL)
        return;
    snprintf(what, sizeof what, "%s: close right after start is safe", k);
    ck_close_check(what, p, s, r, kind);
}

/* ABI 1.3 tools: offer CK_TOOL with tool_choice "required". A plugin may
 * ignore tools and answer with text; the calls it makes must follow the
 * rules of on_tool_call (indexes from 0 in order, id and name on a call's
 * first fragment only, an offered function, nothing after the end). With
 * old_events the host looks like ABI 1.2, whose events end before
 * on_tool_call: no call may reach it. The arguments are shown, not parsed
 * (the checker has no JSON library). */
static void ck_llm_tools(const loader_plugin *p, void *inst, int old_events) {
    ck_rec *r = ck_rec_new();
    ck_op o = {.p = p, .inst = inst, .r = r, .tools = old_events ? 2 : 1};
    const char *what;
    vx_stream *s;
    int terms, after, frags, calls, bad, tokens;

    what = old_events ? "llm: generate offering a tool to events of ABI 1.2"
                      : "llm: generate offering a tool (tool_choice \"required\")";
    if ((s = ck_start_op(&o, 2, NULL, what)) == NULL) return;
    what = old_events ? "llm: events of ABI 1.2 never receive on_tool_call"
                      : "llm: tool calls follow the rules of on_tool_call, then one end";
    if (ck_wait_terminals(r, 1) != 0) {
        ck_fail(what, "no on_done or on_error: timed out after %g s", ck_timeout_s);
    } else {
        ck_sleep_ms(CK_SETTLE_MS);
        pthread_mutex_lock(&r->lock);
        terms = r->terminals;
        after = r->after_terminal;
        frags = r->tool_frags;
        calls = r->tool_calls;
        bad = r->tool_bad;
        tokens = r->tokens;
        pthread_mutex_unlock(&r->lock);
        if (terms != 1 || after)
            ck_fail(what, "%d terminal event(s), %d event(s) after the first one", terms, after);
        else if (old_events)
            ck_check(frags == 0, what, "%d on_tool_call fragment(s) past the events' size",
                     frags);
        else if (bad)
            ck_fail(what, "%s (%d fragment(s) broke the rules)", r->tool_why, bad);
        else if (calls)
            ck_ok("%s # %d call(s) in %d fragment(s); %s(%.*s)", what, calls, frags,
                  r->tool_name, (int)r->tool_args_len, r->tool_args);
        else
            ck_ok("%s # no call: %d token(s)", what, tokens);
    }
    ck_close_check(old_events ? "llm: no event after close (events of ABI 1.2)"
                              : "llm: no event after close (tools offered)",
                   p, s, r, 2);
}

/* ---------------------------------------------------------------- error returns */

/* Why the error return rc/err breaks the contract, or NULL when it keeps
 * it: a VX_E* code, the same code in err->code, a NUL-terminated message. */
static const char *ck_error_return_bad(int rc, const vx_error *err, char *why, size_t len) {
    if (rc > VX_EINVAL || rc < VX_ENOTFOUND)
        snprintf(why, len, "returned %d, not a VX_E* code", rc);
    else if (err->code != rc)
        snprintf(why, len, "returned %s (%d) but err->code is %d", loader_error_name(rc), rc,
                 err->code);
    else if (memchr(err->msg, '\0', sizeof err->msg) == NULL || err->msg[0] == '\0')
        snprintf(why, len, "returned %s (%d) without a message in err->msg",
                 loader_error_name(rc), rc);
    else
        return NULL;
    return why;
}

/* A start call (LLM generate, TTS synthesize) given input it cannot serve.
 * Either it refuses: a VX_E* code with a message, and no event at all; or,
 * where a provider legitimately answers such input, it accepts and the
 * stream ends with exactly one terminal event, nothing after it. */
static void ck_bad_start(const loader_plugin *p, void *inst, int kind) {
    ck_rec *r = ck_rec_new();
    ck_op o = {.p = p, .inst = inst, .r = r, .text = "", .no_user = 1};
    const char *what = kind == 2
        ? "llm: generate with no user message: an error code and message and no event, or one end"
        : "tts: synthesize of an empty text: an error code and message and no event, or one end";
    char why[384];
    int events, terms, after, errors;

    memset(&o.err, 0, sizeof o.err);
    ck_bounded(what, kind == 2 ? ck_llm_generate : ck_tts_synthesize, &o);
    if (o.rc < 0) {
        const char *bad = ck_error_return_bad(o.rc, &o.err, why, sizeof why);

        ck_sleep_ms(CK_SETTLE_MS);
        CK_GET(r, events, events);
        if (bad) ck_fail(what, "%s", bad);
        else if (events) ck_fail(what, "returned %s but fired %d event(s)", loader_error_name(o.rc), events);
        else ck_ok("%s # refused: %s: %s", what, loader_error_name(o.rc), o.err.msg);
        /* A stream published in *out before a failure is the host's to close. */
        if (o.s) ck_close_check("close after a refused start", p, o.s, r, kind);
        return;
    }
    if (o.rc > 0 || o.s == NULL) {
        ck_fail(what, "returned %d with *out %s", o.rc, o.s ? "set" : "NULL");
        return;
    }
    if (ck_wait_terminals(r, 1) != 0) {
        ck_fail(what, "accepted, but no on_done or on_error: timed out after %g s", ck_timeout_s);
    } else {
        ck_sleep_ms(CK_SETTLE_MS);
        pthread_mutex_lock(&r->lock);
        terms = r->terminals;
        after = r->after_terminal;
        errors = r->errors;
        pthread_mutex_unlock(&r->lock);
        if (terms != 1 || after)
            ck_fail(what, "accepted, then %d terminal event(s) and %d event(s) after the first",
                    terms, after);
        else if (errors)
            ck_ok("%s # accepted, ended with on_error %s: %s", what,
                  loader_error_name(r->last_error), r->last_msg);
        else
            ck_ok("%s # accepted, ended with on_done", what);
    }
    ck_close_check(kind == 2 ? "llm: no event after close (no user message)"
                             : "tts: no event after close (empty text)", p, o.s, r, kind);
}

/* feed and finish on a cancelled STT stream: refused with a VX_E* code and
 * a message, or ignored; either way no event beyond the one that ended it. */
static void ck_stt_after_cancel(const loader_plugin *p, void *inst) {
    static const int16_t zeros[160];
    ck_rec *r = ck_rec_new();
    vx_stream *s = ck_stt_start(p, inst, r, "stt: open a stream to use after cancel");
    char why[384];
    int before, after;

    if (s == NULL) return;
    ck_cancel_twice("stt: cancel a fresh stream", p, s, 1);
    ck_sleep_ms(CK_SETTLE_MS);
    for (int step = 0; step < 2; step++) {
        ck_op o = {.p = p, .s = s, .pcm = zeros, .frames = 160, .blocks = 1};
        const char *what = step == 0
            ? "stt: feed after cancel: an error code and message, or ignored; no event"
            : "stt: finish after cancel: an error code and message, or ignored; no event";
        const char *bad = NULL;

        CK_GET(r, events, before);
        memset(&o.err, 0, sizeof o.err);
        ck_bounded(what, step == 0 ? ck_stt_feed : ck_stt_finish, &o);
        ck_sleep_ms(CK_SETTLE_MS);
        CK_GET(r, events, after);
        if (o.rc != VX_OK) bad = ck_error_return_bad(o.rc, &o.err, why, sizeof why);
        if (bad) ck_fail(what, "%s", bad);
        else if (after > before)
            ck_fail(what, "%s, then %d event(s) fired", o.rc ? loader_error_name(o.rc) : "VX_OK",
                    after - before);
        else if (o.rc) ck_ok("%s # refused: %s: %s", what, loader_error_name(o.rc), o.err.msg);
        else ck_ok("%s # ignored", what);
    }
    ck_close_check("stt: no event after close (used after cancel)", p, s, r, 1);
}

/* ---------------------------------------------------------------- store */

typedef struct ck_store_op {
    const loader_plugin *p;
    void *inst;
    int which; /* 0 ping, 1 put, 2 get, 3 del */
    const char *key;
    const void *val;
    size_t len;
    void *out;
    size_t out_len;
    int rc;
    vx_error err;
} ck_store_op;

static void ck_store_call(void *a) {
    ck_store_op *o = a;
    const vx_store_vtable *v = &o->p->store;

    memset(&o->err, 0, sizeof o->err);
    switch (o->which) {
    case 0: o->rc = v->ping(o->inst, &o->err); break;
    case 1: o->rc = v->put(o->inst, o->key, o->val, o->len, 60, &o->err); break;
    case 2: o->rc = v->get(o->inst, o->key, &o->out, &o->out_len, &o->err); break;
    default: o->rc = v->del(o->inst, o->key, &o->err); break;
    }
}

static int ck_store_do(ck_store_op *o, int which, const char *what) {
    o->which = which;
    o->out = NULL;
    o->out_len = 0;
    ck_bounded(what, ck_store_call, o);
    return o->rc;
}

static void ck_store(const loader_plugin *p, void *inst) {
    unsigned char val[256];
    char key[96];
    ck_store_op o = {.p = p, .inst = inst, .key = key};
    int rc;

    for (size_t i = 0; i < sizeof val; i++) val[i] = (unsigned char)(255 - i); /* NULs inside */
    snprintf(key, sizeof key, "vx-plugin-check:%ld:bin", (long)getpid());

    rc = ck_store_do(&o, 0, "store: ping");
    ck_check(rc == VX_OK, "store: ping", "%s (%d): %s", loader_error_name(rc), rc, o.err.msg);

    o.val = val;
    o.len = sizeof val;
    rc = ck_store_do(&o, 1, "store: put 256 bytes of binary data");
    ck_check(rc == VX_OK, "store: put 256 bytes of binary data", "%s (%d): %s",
             loader_error_name(rc), rc, o.err.msg);

    rc = ck_store_do(&o, 2, "store: get returns the same bytes");
    ck_check(rc == VX_OK && o.out && o.out_len == sizeof val && memcmp(o.out, val, sizeof val) == 0,
             "store: get returns the same bytes", "rc %s (%d), %zu byte(s)%s%s",
             loader_error_name(rc), rc, o.out_len,
             rc == VX_OK && o.out_len == sizeof val ? ", content differs" : "",
             o.err.msg[0] ? o.err.msg : "");
    ck_api.free(o.out); /* Ownership: allocated with host->alloc */

    rc = ck_store_do(&o, 3, "store: del");
    ck_check(rc == VX_OK, "store: del", "%s (%d): %s", loader_error_name(rc), rc, o.err.msg);

    rc = ck_store_do(&o, 2, "store: get after del -> VX_ENOTFOUND");
    ck_api.free(o.out);
    ck_check(rc == VX_ENOTFOUND, "store: get after del -> VX_ENOTFOUND", "returned %s (%d)",
             loader_error_name(rc), rc);

    snprintf(key, sizeof key, "vx-plugin-check:%ld:never-written", (long)getpid());
    rc = ck_store_do(&o, 2, "store: get of a missing key -> VX_ENOTFOUND");
    ck_api.free(o.out);
    ck_check(rc == VX_ENOTFOUND, "store: get of a missing key -> VX_ENOTFOUND",
             "returned %s (%d)", loader_error_name(rc), rc);

    rc = ck_store_do(&o, 3, "store: del of a missing key is VX_OK");
    ck_check(rc == VX_OK, "store: del of a missing key is VX_OK", "returned %s (%d): %s",
             loader_error_name(rc), rc, o.err.msg);
}

/* ---------------------------------------------------------------- sink */

typedef struct ck_sink_op {
    const loader_plugin *p;
    void *inst;
    const vx_recording *rec;
    int rc;
    vx_error err;
    double ms; /* how long the call took */
} ck_sink_op;

static void ck_sink_call(void *a) {
    ck_sink_op *o = a;
    uint64_t t0 = ck_now_ns();

    memset(&o->err, 0, sizeof o->err);
    o->rc = o->p->sink.upload(o->inst, o->rec, &o->err);
    o->ms = (double)(ck_now_ns() - t0) / 1e6;
}

static int ck_sink_do(ck_sink_op *o, const vx_recording *rec, const char *what) {
    o->rec = rec;
    ck_bounded(what, ck_sink_call, o);
    return o->rc;
}

/* A recording of session `session` started a second ago, named as a 1.2
 * host names it: "YYYY/MM/DD/<session>.wav", the UTC date of the start. */
static void ck_sink_recording(vx_recording *rec, const char *path, const char *session,
                              char *name, size_t name_len) {
    static const vx_kv meta[] = {{"checker", "voxray-plugin-check"}};
    struct stat st;
    struct timespec now;
    struct tm tm;
    time_t t;

    clock_gettime(CLOCK_REALTIME, &now);
    memset(rec, 0, sizeof *rec);
    rec->struct_size = sizeof *rec;
    rec->path = path;
    rec->session_id = session;
    rec->content_type = "audio/wav";
    rec->bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    rec->started_unix_ms = (int64_t)now.tv_sec * 1000 - 1000;
    rec->duration_s = 1.0;
    rec->meta = meta;
    rec->n_meta = 1;
    t = (time_t)(rec->started_unix_ms / 1000);
    gmtime_r(&t, &tm);
    snprintf(name, name_len, "%04d/%02d/%02d/%s.wav", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, session);
    rec->name = name;
}

/* What every sink must do, with or without a real file to upload:
 *   - a local file that does not exist is an error: a VX_E* code, the same
 *     in err->code, and a message (the host would otherwise delete nothing
 *     and count a recording as kept that is lost);
 * and with --recording FILE:
 *   - the upload returns within the --timeout bound, with VX_OK;
 *   - the same upload again is VX_OK (uploads are idempotent: the host
 *     repeats them after a partial failure or a replay);
 *   - the struct of an ABI 1.1 host, which ends before `name`, is accepted
 *     (the sink must derive the name, not read past struct_size). */
static void ck_sink(const loader_plugin *p, void *inst, const char *file) {
    vx_recording rec;
    void *old;
    ck_sink_op o = {.p = p, .inst = inst};
    char name[128], missing[128], bound[96], why[384];
    const size_t old_size = VX_RECORDING_SIZE_1_2 - sizeof(const char *);
    int rc;

    snprintf(missing, sizeof missing, "/nonexistent/vx-plugin-check-%ld.wav", (long)getpid());
    ck_sink_recording(&rec, missing, "vx-plugin-check-missing", name, sizeof name);
    rc = ck_sink_do(&o, &rec, "sink: upload of a path that does not exist");
    if (rc == VX_OK)
        snprintf(why, sizeof why, "returned VX_OK for %s", missing);
    else if (rc > VX_EINVAL || rc < VX_ENOTFOUND)
        snprintf(why, sizeof why, "returned %d, not a VX_E* code", rc);
    else if (o.err.code != rc)
        snprintf(why, sizeof why, "returned %s (%d) but err->code is %d", loader_error_name(rc),
                 rc, o.err.code);
    else
        snprintf(why, sizeof why, "returned %s (%d) with an empty err->msg",
                 loader_error_name(rc), rc);
    ck_check(rc != VX_OK && rc <= VX_EINVAL && rc >= VX_ENOTFOUND && o.err.code == rc &&
                 memchr(o.err.msg, '\0', sizeof o.err.msg) && o.err.msg[0],
             "sink: upload of a path that does not exist fails with a VX_E* code and a message",
             "%s", why);

    if (file == NULL) {
        ck_ok("sink: upload # SKIP no recording given (--recording FILE)");
        return;
    }
    if (access(file, R_OK) != 0) {
        ck_fail("sink: upload", "cannot read %s: %s", file, strerror(errno));
        return;
    }
    ck_sink_recording(&rec, file, "vx-plugin-check", name, sizeof name);
    snprintf(bound, sizeof bound, "sink: upload returns within %g s", ck_timeout_s);
    rc = ck_sink_do(&o, &rec, bound);
    ck_ok("%s (took %.0f ms)", bound, o.ms);
    ck_check(rc == VX_OK, "sink: upload", "%s (%d): %s", loader_error_name(rc), rc, o.err.msg);

    rc = ck_sink_do(&o, &rec, "sink: the same upload again is VX_OK (idempotent)");
    ck_check(rc == VX_OK, "sink: the same upload again is VX_OK (idempotent)", "%s (%d): %s",
             loader_error_name(rc), rc, o.err.msg);

    /* Exactly as large as a 1.1 host's struct, so reading `name` anyway
     * reads past the allocation (and a sanitizer says so). */
    if ((old = malloc(old_size)) == NULL) {
        ck_fail("sink: a recording of ABI 1.1 size (no name) is accepted", "out of memory");
        return;
    }
    rec.struct_size = (uint32_t)old_size;
    memcpy(old, &rec, old_size);
    rc = ck_sink_do(&o, (const vx_recording *)old, "sink: a recording of ABI 1.1 size (no name) is accepted");
    free(old);
    ck_check(rc == VX_OK, "sink: a recording of ABI 1.1 size (no name) is accepted",
             "%s (%d): %s", loader_error_name(rc), rc, o.err.msg);
}

/* ---------------------------------------------------------------- main */

static void ck_usage(FILE *f) {
    fprintf(f,
            "usage: voxray-plugin-check [options] PLUGIN.so\n"
            "Load a voxray provider plugin and check it against the plugin ABI contract.\n"
            "  -c, --config KEY=VALUE  set a key of the instance config (repeatable)\n"
            "  -t, --timeout SECONDS   deadline for every call and event (default 10)\n"
            "  -r, --recording FILE    a file to upload when checking a sink\n"
            "  -s, --speech FILE.wav   16 kHz 16-bit WAV of speech for an STT plugin: it must\n"
            "                          give a final with words (and partials before it when\n"
            "                          its caps say partials)\n"
            "  -v, --verbose           show the plugin's debug log\n"
            "  -h, --help              this text\n"
            "Prints one TAP line per check; exits 0 only if every check passed.\n");
}

static void ck_print_info(const loader_plugin *p) {
    const vx_plugin_info *i = &p->info;
    char kinds[64], allowed[256];

    printf("# plugin: %s %s (%s)\n", i->name, i->version, p->path);
    printf("# description: %s\n", i->description);
    printf("# kinds: %s\n", loader_kinds_str(i->kinds, kinds, sizeof kinds));
    printf("# ABI: %u.%u (host %d.%d), descriptor %u bytes\n", i->abi_major, i->abi_minor,
           VX_ABI_MAJOR, VX_ABI_MINOR, i->struct_size);
    printf("# caps:%s%s%s%s%s\n", i->caps & VX_CAP_STREAMING_INPUT ? " streaming_input" : "",
           i->caps & VX_CAP_PARTIALS ? " partials" : "",
           i->caps & VX_CAP_STREAMING_OUTPUT ? " streaming_output" : "",
           i->caps & VX_CAP_MULTILINGUAL ? " multilingual" : "",
           i->caps & VX_CAP_NETWORK ? " network" : "");
    printf("# config schema:%s\n", i->config && i->config[0].key ? "" : " (none)");
    for (const vx_config_key *k = i->config; k && k->key; k++)
        printf("#   %-20s %s, default %s%s%s -- %s\n", k->key, cfg_allowed(k, allowed, sizeof allowed),
               k->flags & VX_CFG_SECRET ? "(secret)" : k->def ? k->def : "(none)",
               k->flags & VX_CFG_REQUIRED ? ", required" : "",
               k->flags & VX_CFG_SECRET ? ", secret" : "", k->help ? k->help : "");
    fflush(stdout);
}

/* Build the instance config: schema defaults, then --config overrides, each
 * validated as the daemon would. Returns the number of problems reported. */
static int ck_build_config(const loader_plugin *p, vx_host *h, char **sets, int n_sets) {
    int bad = 0;
    char why[512];

    for (const vx_config_key *k = p->info.config; k && k->key && h->n_items < CK_MAX_CONFIG; k++) {
        h->items[h->n_items].key = k->key;
        h->items[h->n_items++].value = k->def;
        if (k->def && cfg_check_value(k, k->def, why, sizeof why) != 0) {
            ck_fail("config: schema default is valid", "%s = \"%s\": %s", k->key, k->def, why);
            bad++;
        }
    }
    for (int i = 0; i < n_sets; i++) {
        char *eq = strchr(sets[i], '=');
        const vx_config_key *k = NULL;
        size_t j;

        *eq = '\0';
        for (j = 0; j < h->n_items; j++)
            if (strcmp(h->items[j].key, sets[i]) == 0) break;
        if (j < h->n_items) k = &p->info.config[j];
        if (k == NULL) {
            ck_fail("config: --config key is in the schema", "unknown key '%s'", sets[i]);
            bad++;
        } else if (cfg_check_value(k, eq + 1, why, sizeof why) != 0) {
            ck_fail("config: --config value is valid", "%s = \"%s\": %s", sets[i], eq + 1, why);
            bad++;
        } else {
            h->items[j].value = eq + 1;
        }
        *eq = '=';
    }
    for (size_t j = 0; j < h->n_items; j++)
        if ((p->info.config[j].flags & VX_CFG_REQUIRED) && h->items[j].value == NULL) {
            ck_fail("config: required keys are set", "'%s' is required: pass --config %s=...",
                    h->items[j].key, h->items[j].key);
            bad++;
        }
    if (!bad) ck_ok("config: %zu key(s) valid", h->n_items);
    return bad;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"timeout", required_argument, NULL, 't'},
        {"recording", required_argument, NULL, 'r'}, {"verbose", no_argument, NULL, 'v'},
        {"speech", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    char *sets[CK_MAX_CONFIG], *end, err[1024], kinds[64];
    int n_sets = 0, c;
    const char *recording = NULL, *speech = NULL;
    wav_audio wav = {0};
    loader_plugin *p = NULL;
    vx_host host;
    vx_config cfg;
    void *inst = NULL;
    unsigned k;

    while ((c = getopt_long(argc, argv, "c:t:r:s:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=' || n_sets == CK_MAX_CONFIG) {
                fprintf(stderr, "voxray-plugin-check: --config wants KEY=VALUE, got '%s'\n", optarg);
                return 2;
            }
            sets[n_sets++] = optarg;
            break;
        case 't':
            ck_timeout_s = strtod(optarg, &end);
            if (*end || !(ck_timeout_s > 0 && ck_timeout_s <= 3600)) {
                fprintf(stderr, "voxray-plugin-check: --timeout wants seconds in (0, 3600], got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'r': recording = optarg; break;
        case 's': speech = optarg; break;
        case 'v': ck_verbose = 1; break;
        case 'h': ck_usage(stdout); return 0;
        default: ck_usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        ck_usage(stderr);
        return 2;
    }
    if (speech) {
        if (wav_read(speech, &wav, err, sizeof err) != 0) {
            fprintf(stderr, "voxray-plugin-check: --speech %s: %s\n", speech, err);
            return 2;
        }
        if (wav.rate != 16000 || wav.samples < 1600) {
            fprintf(stderr,
                    "voxray-plugin-check: --speech %s: %d Hz, %.2f s; it wants at least 0.1 s at "
                    "16000 Hz (e.g. flite -voice slt -t TEXT -o FILE.wav, or sox IN -r 16000 OUT.wav)\n",
                    speech, wav.rate, (double)wav.samples / (wav.rate > 0 ? wav.rate : 1));
            wav_free(&wav);
            return 2;
        }
    }
    ck_cond_init(&ck_defer_cond);
    if (pthread_create(&ck_defer_thread, NULL, ck_defer_main, NULL) == 0) ck_defer_running = 1;

    memset(&host, 0, sizeof host);
    snprintf(host.prefix, sizeof host.prefix, "[plugin]");
    if ((p = loader_open_file(argv[optind], &ck_api, err, sizeof err)) == NULL) {
        ck_fail("load", "%s", err);
        goto done;
    }
    ck_print_info(p);
    ck_ok("load: %s %s, ABI %u.%u, kinds %s", p->info.name, p->info.version, p->info.abi_major,
          p->info.abi_minor, loader_kinds_str(p->info.kinds, kinds, sizeof kinds));
    snprintf(host.prefix, sizeof host.prefix, "[%s:%s]", kinds, p->info.name);

    if (ck_build_config(p, &host, sets, n_sets) != 0) goto done;
    cfg = (vx_config){sizeof cfg, p->info.name, host.items, host.n_items};
    if (loader_instance_init(p, &ck_api, &host, &cfg, &inst, err, sizeof err) != VX_OK) {
        ck_fail("init", "%s", err);
        goto done;
    }
    ck_ok("init with the default config%s", n_sets ? " and --config overrides" : "");

    if (p->info.abi_minor >= 1 && p->info.health) {
        char buf[128];
        int rc;

        memset(buf, 'X', sizeof buf);
        rc = p->info.health(inst, buf, sizeof buf);
        if (memchr(buf, '\0', sizeof buf) == NULL)
            ck_fail("health", "status text not NUL-terminated within the buffer");
        else
            ck_ok("health # %s: %s", rc == VX_OK ? "healthy" : loader_error_name(rc), buf);
    }

    k = p->info.kinds;
    if (k & VX_KIND_STT) {
        ck_stt(p, inst);
        ck_stt_after_cancel(p, inst);
        if (speech) ck_stt_speech(p, inst, &wav);
    }
    if (k & VX_KIND_LLM) {
        ck_stream_complete(p, inst, 2);
        ck_stream_cancel(p, inst, 2);
        ck_stream_close_early(p, inst, 2);
        ck_llm_tools(p, inst, 0);
        ck_llm_tools(p, inst, 1);
        ck_bad_start(p, inst, 2);
    }
    if (k & VX_KIND_TTS) {
        ck_stream_complete(p, inst, 3);
        ck_stream_cancel(p, inst, 3);
        ck_stream_close_early(p, inst, 3);
        ck_bad_start(p, inst, 3);
    }
    if (k & VX_KIND_STORE) ck_store(p, inst);
    if (k & VX_KIND_SINK) ck_sink(p, inst, recording);

done:
    ck_defer_stop(); /* pending jobs run now, before the instance goes */
    if (inst && p->info.shutdown) p->info.shutdown(inst);
    if (p) {
        unsigned long regs = 0, ups = 0;
        for (struct vx_metric *m = ck_metrics; m; m = m->next) regs++, ups += m->updates;
        printf("# metrics: %lu registered, %lu update(s), %lu bad update(s), %lu refused\n",
               regs, ups, ck_metric_bad, ck_metric_refused);
        ck_check(ck_metric_refused == 0, "metrics: every name registered follows the rule",
                 "%lu refused, the first: %s", ck_metric_refused, ck_metric_why);
        loader_close(p);
    }
    while (ck_metrics) {
        struct vx_metric *m = ck_metrics;
        ck_metrics = m->next;
        free(m);
    }
    ck_rec_free_all();
    wav_free(&wav);
    pthread_cond_destroy(&ck_defer_cond);
    ck_summary();
    return ck_failed ? 1 : 0;
}
