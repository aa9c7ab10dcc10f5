/*
 * Stage calls: provider chains with retries, fallback, timeouts and a
 * circuit breaker, and the seed metrics of the observability reference.
 *
 * Life of a call (all decisions on the session's strand):
 *
 *   start_attempt --(attempt strand)--> plugin open/generate/synthesize
 *        plugin events (any thread) --copy--> deliver task (session strand)
 *        first output      -> call->output_started, breaker reset
 *        error, no output  -> retry (llm) / next provider / on_error
 *        error after output-> on_error
 *        done/final        -> on_done/on_final, attempt closed
 *   timer (defer thread) --> timeout task (session strand) -> as an error
 *
 * An attempt is closed on its own strand (plugin close blocks until the
 * plugin delivers no more events). Attempts and calls are reference
 * counted: by the caller, by queued tasks, by timers.
 */
#include "config.h"

#include "pipeline/stage.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/defer.h"
#include "plugin/gate.h"
#include "base/log.h"
#include "metrics.h"
#include "base/worker.h"

#define MAX_PROV PLUG_MAX_PROVIDERS
#define STT_REPLAY_MAX_SECONDS 60

/* ------------------------------------------------------------ config & metrics */

typedef struct stage_cfg {
    int n;
    plug_instance *prov[MAX_PROV];
    long long timeout_ms; /* to the first output */
    long long idle_ms;    /* between outputs, once started; 0: none */
    int retries;
    long long backoff_ms;
    int breaker_failures;
    long long breaker_cooldown_ms;
} stage_cfg;

typedef struct breaker {
    atomic_int fails;
    _Atomic long long until_ms; /* monotonic ms; 0: closed */
} breaker;

/* Histogram families per stage, in this order: ttft, latency, lag/inter. */
enum { H_FIRST, H_TOTAL, H_LAG, H_COUNT };

/* A generation: the provider chains and stage settings sessions start
 * with. A session keeps the one current when it started (its stage_ctx
 * holds a reference) to its end; a reload makes a new one current. The
 * last reference of a replaced one queues it for stage_collect(), which
 * frees its plugin set on the main thread (shutting down instances and
 * unloading files no newer generation shares). */
struct stage_gen {
    atomic_int refs;
    unsigned long id;
    plug_set *ps;
    stage_cfg cfg[STAGE_COUNT];
    breaker brk[STAGE_COUNT][MAX_PROV];
    stage_gen *next; /* in g_done */
};

static pthread_mutex_t g_gen_lock = PTHREAD_MUTEX_INITIALIZER;
static stage_gen *g_cur;     /* under g_gen_lock; holds a reference */
static stage_gen *g_done;    /* released generations waiting for stage_collect */
static unsigned long g_gen_ids;
static atomic_int g_live_gens;
static metrics_family *f_hist[STAGE_COUNT][H_COUNT];
static metrics_family *f_errors[STAGE_COUNT], *f_fallback[STAGE_COUNT], *f_retries;
/* voxray_provider_breaker_open{stage,provider}: 1 while an instance of the
 * current generation cools down. Computed from the breakers before each
 * scrape (stage_breakers_refresh): a cooldown ends by time alone, with no
 * call to notice it, and a reload changes the instances. */
static metrics_family *f_breaker;
/* The series of the current generation's instances, by stage, and whose
 * they are; all under g_brk_lock. */
static pthread_mutex_t g_brk_lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_series *g_brk_gauge[STAGE_COUNT][MAX_PROV];
static char *g_brk_name[STAGE_COUNT][MAX_PROV];
static int g_brk_n[STAGE_COUNT];
static long long g_series_ttl_ms = 600000;

static const gate_op stage_op[STAGE_COUNT] = {GATE_OP_TRANSCRIBE, GATE_OP_GENERATE, GATE_OP_SYNTHESIZE};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long long now_ms(void) { return (long long)(now_ns() / 1000000ull); }

int stage_init(metrics_registry *reg, const settings *s, plug_set *ps)
{
    /* `model` as the observability reference defines it; `provider`, the
     * same instance name, is the label every provider family carries (the
     * call-gate families too), so {provider="x"} finds all of them. */
    static const char *const l_hist[] = {"model", "provider", "session_id"};
    static const char *const l_err[] = {"model", "provider", "error_type"};
    static const char *const l_fb[] = {"from", "to"};
    static const char *const l_retry[] = {"model", "provider"};
    static const double b_fast[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                    0.5, 0.75, 1, 1.5, 2, 3, 5, 10};
    static const double b_long[] = {0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60};
    static const double b_tok[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1,
                                   0.15, 0.2, 0.3, 0.5, 1, 2};
    static const struct {
        int stage, h;
        const char *name, *help;
        const double *b;
        size_t nb;
    } hist[] = {
        {STAGE_STT, H_FIRST, "stt_time_to_first_token_seconds", "Time from audio stream start to the first transcription token.", b_fast, 17},
        {STAGE_STT, H_TOTAL, "stt_transcription_latency_seconds", "Time from end of speech to the final transcript of an utterance.", b_fast, 17},
        {STAGE_STT, H_LAG, "stt_streaming_lag_seconds", "Lag between the arrival of the newest audio and the transcript emitted for it.", b_fast, 17},
        {STAGE_LLM, H_FIRST, "llm_time_to_first_token_seconds", "Time from prompt submission to the first streamed token.", b_fast, 17},
        {STAGE_LLM, H_TOTAL, "llm_generation_latency_seconds", "LLM generation latency, first to last token.", b_long, 16},
        {STAGE_LLM, H_LAG, "llm_inter_token_latency_seconds", "Latency between consecutive streamed tokens.", b_tok, 15},
        {STAGE_TTS, H_FIRST, "tts_time_to_first_audio_chunk_seconds", "Time from text in to the first audio chunk delivered to the client.", b_fast, 17},
        {STAGE_TTS, H_TOTAL, "tts_synthesis_latency_seconds", "Time from text in to the final audio frame.", b_long, 16},
        {STAGE_TTS, H_LAG, "tts_streaming_lag_seconds", "How late a streamed audio chunk arrives compared with gapless playback from the first chunk.", b_fast, 17},
    };
    for (size_t i = 0; i < sizeof hist / sizeof hist[0]; i++) {
        f_hist[hist[i].stage][hist[i].h] = metrics_histogram_family(reg, hist[i].name, hist[i].help, 3, l_hist,
                                                                    hist[i].b, hist[i].nb);
        if (f_hist[hist[i].stage][hist[i].h] == NULL) return -1;
    }
    static const char *const err_names[] = {"stt_errors_total", "llm_errors_total", "tts_errors_total"};
    static const char *const fb_names[] = {"stt_fallback_total", "llm_fallback_total", "tts_fallback_total"};
    for (int st = 0; st < STAGE_COUNT; st++) {
        char help[128];
        snprintf(help, sizeof help, "%s provider errors by error_type.", st == 0 ? "STT" : st == 1 ? "LLM" : "TTS");
        f_errors[st] = metrics_counter_family(reg, err_names[st], help, 3, l_err);
        snprintf(help, sizeof help, "%s fallback invocations: provider `from` failed, `to` was tried next.",
                 st == 0 ? "STT" : st == 1 ? "LLM" : "TTS");
        f_fallback[st] = metrics_counter_family(reg, fb_names[st], help, 2, l_fb);
        if (!f_errors[st] || !f_fallback[st]) return -1;
    }
    f_retries = metrics_counter_family(reg, "llm_retries_total", "Automatic LLM retry attempts.", 2, l_retry);
    if (f_retries == NULL) return -1;
    static const char *const l_brk[] = {"stage", "provider"};
    f_breaker = metrics_gauge_family(reg, "voxray_provider_breaker_open",
                                     "1 while the provider's circuit breaker is open (cooling down after "
                                     "breaker_failures consecutive failures), else 0.", 2, l_brk);
    if (f_breaker == NULL) return -1;

    g_series_ttl_ms = s->metrics_series_ttl_ms;
    return stage_reload(s, ps);
}

static stage_gen *gen_new(const settings *s, plug_set *ps)
{
    stage_gen *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    atomic_init(&g->refs, 1);
    g->ps = ps;
    for (int st = 0; st < STAGE_COUNT; st++) {
        stage_cfg *c = &g->cfg[st];
        c->n = ps->n_stage[st];
        for (int i = 0; i < c->n; i++) c->prov[i] = ps->stage[st][i];
        c->timeout_ms = s->stage_timeout_ms[st];
        c->idle_ms = s->stage_idle_ms[st];
        c->retries = st == STAGE_LLM ? s->llm_retries : 0;
        c->backoff_ms = s->llm_backoff_ms;
        c->breaker_failures = s->breaker_failures[st];
        c->breaker_cooldown_ms = s->breaker_cooldown_ms[st];
    }
    return g;
}

int stage_reload(const settings *s, plug_set *ps)
{
    stage_gen *g = gen_new(s, ps);
    if (g == NULL) return -1;
    pthread_mutex_lock(&g_gen_lock);
    stage_gen *old = g_cur;
    /* An instance that goes on keeps its breaker state in its stage. */
    for (int st = 0; old && st < STAGE_COUNT; st++)
        for (int i = 0; i < g->cfg[st].n; i++)
            for (int j = 0; j < old->cfg[st].n; j++)
                if (old->cfg[st].prov[j] == g->cfg[st].prov[i]) {
                    atomic_store(&g->brk[st][i].fails, atomic_load(&old->brk[st][j].fails));
                    atomic_store(&g->brk[st][i].until_ms, atomic_load(&old->brk[st][j].until_ms));
                }
    g->id = ++g_gen_ids;
    g_cur = g;
    atomic_fetch_add(&g_live_gens, 1);
    pthread_mutex_unlock(&g_gen_lock);
    if (old) {
        old->ps->retired = 1;
        stage_gen_release(old);
    }
    return 0;
}

stage_gen *stage_gen_acquire(void)
{
    pthread_mutex_lock(&g_gen_lock);
    stage_gen *g = g_cur;
    if (g) atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&g_gen_lock);
    return g;
}

void stage_gen_release(stage_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1) return;
    pthread_mutex_lock(&g_gen_lock);
    g->next = g_done;
    g_done = g;
    pthread_mutex_unlock(&g_gen_lock);
}

const plug_set *stage_gen_plugins(const stage_gen *g) { return g ? g->ps : NULL; }

int stage_collect(void)
{
    pthread_mutex_lock(&g_gen_lock);
    stage_gen *list = g_done;
    g_done = NULL;
    pthread_mutex_unlock(&g_gen_lock);
    int n = 0;
    while (list) {
        stage_gen *next = list->next;
        if (list->ps->retired) {
            char id[24];
            snprintf(id, sizeof id, "%lu", list->id);
            log_info("no session uses a plugin generation a reload replaced; releasing it", "generation", id);
        }
        plug_set_free(list->ps);
        free(list);
        atomic_fetch_sub(&g_live_gens, 1);
        list = next;
        n++;
    }
    return n;
}

int stage_generations(void) { return atomic_load(&g_live_gens); }

static void brk_forget(int st)
{
    for (int i = 0; i < MAX_PROV; i++) {
        metrics_series_release(g_brk_gauge[st][i]);
        g_brk_gauge[st][i] = NULL;
        free(g_brk_name[st][i]);
        g_brk_name[st][i] = NULL;
    }
    g_brk_n[st] = 0;
}

void stage_breakers_refresh(void)
{
    stage_gen *g = stage_gen_acquire();
    long long now = now_ms();
    pthread_mutex_lock(&g_brk_lock);
    for (int st = 0; f_breaker && st < STAGE_COUNT; st++) {
        int n = g ? g->cfg[st].n : 0, same = n == g_brk_n[st];
        for (int i = 0; same && i < n; i++)
            same = g_brk_name[st][i] && strcmp(g_brk_name[st][i], g->cfg[st].prov[i]->name) == 0;
        if (!same) { /* first scrape, or a reload changed the chain */
            metrics_family_remove_matching(f_breaker, "stage", stage_name(st));
            brk_forget(st);
            for (int i = 0; i < n; i++) {
                const char *lv[] = {stage_name(st), g->cfg[st].prov[i]->name};
                g_brk_gauge[st][i] = metrics_series_get(f_breaker, lv);
                g_brk_name[st][i] = strdup(lv[1]);
            }
            g_brk_n[st] = n;
        }
        for (int i = 0; i < n; i++) {
            long long until = atomic_load(&g->brk[st][i].until_ms);
            metrics_gauge_set(g_brk_gauge[st][i], until && until > now ? 1 : 0);
        }
    }
    pthread_mutex_unlock(&g_brk_lock);
    stage_gen_release(g);
}

void stage_shutdown(void)
{
    pthread_mutex_lock(&g_gen_lock);
    stage_gen *g = g_cur;
    g_cur = NULL;
    pthread_mutex_unlock(&g_gen_lock);
    stage_gen_release(g);
    stage_collect();
    pthread_mutex_lock(&g_brk_lock);
    for (int st = 0; st < STAGE_COUNT; st++) brk_forget(st);
    pthread_mutex_unlock(&g_brk_lock);
}

int stage_provider_state(const stage_gen *g, int st, const plug_instance *pi, char *detail, size_t len)
{
    for (int i = 0; g && i < g->cfg[st].n; i++) {
        if (g->cfg[st].prov[i] != pi) continue;
        long long until = atomic_load(&g->brk[st][i].until_ms);
        int fails = atomic_load(&g->brk[st][i].fails);
        long long left = until - now_ms();
        if (until && left > 0) {
            snprintf(detail, len, "cooling down after %d consecutive failures; retried in %lld ms", fails, left);
            return 0;
        }
        if (fails > 0) snprintf(detail, len, "available (%d recent failures)", fails);
        else snprintf(detail, len, "available");
        return 1;
    }
    snprintf(detail, len, "not in this stage");
    return 0;
}

/* ------------------------------------------------------------ session context */

struct stage_ctx {
    atomic_int refs;
    stage_gen *gen; /* the providers this session started with */
    strand *st;
    char label[72];
    /* Series per stage, provider and histogram, resolved on first use; only
     * touched on the session strand. */
    metrics_series *hist[STAGE_COUNT][MAX_PROV][H_COUNT];
};

int stage_ctx_providers(const stage_ctx *x, int st)
{
    return x && x->gen && st >= 0 && st < STAGE_COUNT ? x->gen->cfg[st].n : 0;
}

stage_ctx *stage_ctx_new(strand *session_strand, const char *session_label)
{
    stage_ctx *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    atomic_init(&x->refs, 1);
    x->gen = stage_gen_acquire();
    if (x->gen == NULL) {
        free(x);
        return NULL;
    }
    x->st = session_strand;
    strand_ref(session_strand);
    snprintf(x->label, sizeof x->label, "%s", session_label);
    return x;
}

typedef struct expire_job {
    char label[72];
} expire_job;

/* Drop the series of an ended session: they would otherwise live forever. */
static void expire_series(void *arg)
{
    expire_job *j = arg;
    for (int st = 0; st < STAGE_COUNT; st++)
        for (int h = 0; h < H_COUNT; h++)
            if (f_hist[st][h]) metrics_family_remove_matching(f_hist[st][h], "session_id", j->label);
    free(j);
}

static void ctx_unref(stage_ctx *x)
{
    if (atomic_fetch_sub(&x->refs, 1) != 1) return;
    int any = 0;
    for (int st = 0; st < STAGE_COUNT; st++)
        for (int p = 0; p < MAX_PROV; p++)
            for (int h = 0; h < H_COUNT; h++)
                if (x->hist[st][p][h]) {
                    metrics_series_release(x->hist[st][p][h]);
                    any = 1;
                }
    /* The shared "sampled_out" label is never expired. */
    if (any && strcmp(x->label, "sampled_out") != 0) {
        expire_job *j = malloc(sizeof *j);
        if (j) {
            snprintf(j->label, sizeof j->label, "%s", x->label);
            if (defer_run((uint32_t)g_series_ttl_ms, expire_series, j) != 0) expire_series(j);
        }
    }
    strand_unref(x->st);
    stage_gen_release(x->gen);
    free(x);
}

void stage_ctx_free(stage_ctx *x)
{
    if (x) ctx_unref(x);
}

static void observe(stage_ctx *x, int st, int prov, int h, uint64_t ns)
{
    metrics_series *s = x->hist[st][prov][h];
    if (s == NULL) {
        const char *lv[] = {x->gen->cfg[st].prov[prov]->name, x->gen->cfg[st].prov[prov]->name, x->label};
        s = x->hist[st][prov][h] = metrics_series_get(f_hist[st][h], lv);
        if (s == NULL) return;
    }
    metrics_histogram_observe_ns(s, ns);
}

static void count3(metrics_family *f, const char *a, const char *b, const char *c)
{
    const char *lv[] = {a, b, c};
    metrics_series *s = metrics_series_get(f, lv);
    if (s) {
        metrics_counter_inc(s);
        metrics_series_release(s);
    }
}

static void count2(metrics_family *f, const char *a, const char *b)
{
    const char *lv[] = {a, b};
    metrics_series *s = metrics_series_get(f, lv);
    if (s) {
        metrics_counter_inc(s);
        metrics_series_release(s);
    }
}

/* ------------------------------------------------------------ calls */

typedef struct attempt attempt;

struct stage_call {
    atomic_int refs;
    int st;           /* STAGE_* */
    stage_ctx *x;
    stage_events ev;
    /* request */
    int rate;                 /* stt */
    int16_t *utt;             /* stt: audio since the last final, for replay */
    size_t utt_n, utt_cap;
    int utt_overflow;
    uint64_t last_audio_ns;   /* stt: arrival of the newest fed audio */
    int finish_requested;
    uint64_t finish_ns;
    vx_message *msgs;         /* llm: deep copy */
    size_t n_msgs;
    vx_llm_params params;
    char *text, *voice;       /* tts */
    /* progress */
    int prov;                 /* index of the current provider */
    int tried[MAX_PROV];
    int retry;                /* retries used on the current provider */
    int output_started;
    int committed;            /* the caller passed output on (stage_commit) */
    int ended;                /* final/done/error delivered or cancelled */
    int canceled;
    attempt *cur;
    uint64_t t_start;
    /* output timing */
    uint64_t t_first, t_last;
    uint64_t t_out;            /* newest output of the current attempt */
    uint64_t audio_ns_before;  /* tts: playback time of audio delivered so far */
};

struct attempt {
    atomic_int refs;
    stage_call *call;
    int prov;
    plug_instance *pi;
    strand *ps;           /* plugin calls of this stream */
    pthread_mutex_t lock;
    vx_stream *stream;
    vx_stream *start_out; /* *out of the start call, read atomically while it runs */
    int started;          /* the start call returned */
    int abandoned;        /* cancelled or superseded: close as soon as possible */
    int closed;
    int counted;          /* gate_call_end done */
    uint64_t timer;       /* pending timeout job (defer id), 0: none */
    uint64_t deadline;    /* when that timeout is due (monotonic ns) */
    int end_rc;
    uint64_t t0;
    vx_stt_events se;
    vx_llm_events le;
    vx_tts_events te;
    vx_audio_format fmt;  /* tts output format */
};

static void call_ref(stage_call *c) { atomic_fetch_add(&c->refs, 1); }

static void call_unref(stage_call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1) return;
    free(c->utt);
    for (size_t i = 0; i < c->n_msgs; i++) {
        free((char *)c->msgs[i].role);
        free((char *)c->msgs[i].content);
    }
    free(c->msgs);
    free((char *)c->params.session_id);
    free((char *)c->params.tools_json);
    free((char *)c->params.tool_choice);
    free((char *)c->params.messages_json);
    free(c->text);
    free(c->voice);
    ctx_unref(c->x);
    free(c);
}

static void att_ref(attempt *a) { atomic_fetch_add(&a->refs, 1); }

static void att_unref(attempt *a)
{
    if (atomic_fetch_sub(&a->refs, 1) != 1) return;
    strand_unref(a->ps);
    pthread_mutex_destroy(&a->lock);
    call_unref(a->call);
    free(a);
}

const char *stage_call_model(const stage_call *c)
{
    return c->prov >= 0 && c->prov < c->x->gen->cfg[c->st].n ? c->x->gen->cfg[c->st].prov[c->prov]->name : "";
}

/* ---- delivery of plugin events to the session strand */

enum { D_PARTIAL = 1, D_FINAL, D_TOKEN, D_AUDIO, D_DONE, D_ERROR, D_START_FAILED, D_TIMEOUT, D_TOOL };

typedef struct delivery {
    attempt *a;
    int type;
    uint64_t t_ns;
    char *text;
    size_t len;
    float conf;
    int16_t *pcm;
    size_t n;
    vx_usage usage;
    int has_usage;
    vx_error err;
    uint32_t index;      /* D_TOOL */
    char *call_id, *name;
} delivery;

static void deliver_task(void *arg);

static void post_delivery(attempt *a, delivery *d)
{
    d->a = a;
    att_ref(a);
    if (strand_post(a->call->x->st, deliver_task, d) != 0) {
        att_unref(a);
        free(d->text);
        free(d->pcm);
        free(d->call_id);
        free(d->name);
        free(d);
    }
}

static delivery *new_delivery(int type)
{
    delivery *d = calloc(1, sizeof *d);
    if (d) {
        d->type = type;
        d->t_ns = now_ns();
    }
    return d;
}

static void ev_text(attempt *a, int type, const char *text, size_t len, float conf)
{
    delivery *d = new_delivery(type);
    if (d == NULL) return;
    d->text = malloc(len + 1);
    if (d->text == NULL) {
        free(d);
        return;
    }
    memcpy(d->text, text ? text : "", len);
    d->text[len] = '\0';
    d->len = len;
    d->conf = conf;
    post_delivery(a, d);
}

static void ev_stt_partial(void *u, const char *text) { ev_text(u, D_PARTIAL, text, text ? strlen(text) : 0, 0); }
static void ev_stt_final(void *u, const char *text, float conf) { ev_text(u, D_FINAL, text, text ? strlen(text) : 0, conf); }
static void ev_llm_token(void *u, const char *text, size_t len) { ev_text(u, D_TOKEN, text, len, 0); }

static void ev_llm_tool(void *u, uint32_t index, const char *call_id, const char *name, const char *args,
                        size_t len)
{
    delivery *d = new_delivery(D_TOOL);
    if (d == NULL) return;
    d->index = index;
    d->text = malloc(len + 1);
    d->call_id = call_id ? strndup(call_id, 128) : NULL;
    d->name = name ? strndup(name, 128) : NULL;
    if (d->text == NULL || (call_id && d->call_id == NULL) || (name && d->name == NULL)) {
        free(d->text);
        free(d->call_id);
        free(d->name);
        free(d);
        return;
    }
    memcpy(d->text, args ? args : "", len);
    d->text[len] = '\0';
    d->len = len;
    post_delivery(u, d);
}

static void ev_error(void *u, const vx_error *err)
{
    delivery *d = new_delivery(D_ERROR);
    if (d == NULL) return;
    if (err) d->err = *err;
    d->err.msg[sizeof d->err.msg - 1] = '\0';
    if (d->err.code == 0) d->err.code = VX_EINTERNAL;
    post_delivery(u, d);
}

static void ev_llm_done(void *u, const vx_usage *usage)
{
    delivery *d = new_delivery(D_DONE);
    if (d == NULL) return;
    if (usage) {
        d->usage = *usage;
        d->has_usage = 1;
    }
    post_delivery(u, d);
}

static void ev_tts_done(void *u) { ev_llm_done(u, NULL); }

static void ev_tts_audio(void *u, const int16_t *pcm, size_t frames)
{
    attempt *a = u;
    delivery *d = new_delivery(D_AUDIO);
    if (d == NULL || frames == 0) {
        free(d);
        return;
    }
    size_t n = frames * (a->fmt.channels ? a->fmt.channels : 1);
    d->pcm = malloc(n * sizeof *pcm);
    if (d->pcm == NULL) {
        free(d);
        return;
    }
    memcpy(d->pcm, pcm, n * sizeof *pcm);
    d->n = frames;
    post_delivery(a, d);
}

/* ---- the plugin strand: start, feed, finish, close */

static void close_task(void *arg)
{
    attempt *a = arg;
    pthread_mutex_lock(&a->lock);
    vx_stream *s = a->stream;
    int do_close = s && !a->closed;
    a->closed = 1;
    pthread_mutex_unlock(&a->lock);
    if (do_close) {
        const loader_plugin *lp = a->pi->lp;
        if (a->call->st == STAGE_STT) lp->stt.close(s);
        else if (a->call->st == STAGE_LLM) lp->llm.close(s);
        else lp->tts.close(s);
    }
    att_unref(a);
}

/* Stop an attempt from the session strand: cancel the plugin stream (any
 * thread may), account for it, close it on its strand. */
static void attempt_end(attempt *a, int rc)
{
    pthread_mutex_lock(&a->lock);
    int first = !a->abandoned;
    a->abandoned = 1;
    vx_stream *s = a->stream;
    int started = a->started;
    pthread_mutex_unlock(&a->lock);
    if (!first) return;
    if (!started && rc != 0) {
        /* A start call still running: cancel it through the stream it may
         * have published in *out (see the ABI's threading contract). */
        vx_stream *pending = __atomic_load_n(&a->start_out, __ATOMIC_ACQUIRE);
        if (pending) {
            const loader_plugin *lp = a->pi->lp;
            if (a->call->st == STAGE_STT) lp->stt.cancel(pending);
            else if (a->call->st == STAGE_LLM) lp->llm.cancel(pending);
            else lp->tts.cancel(pending);
        }
    }
    if (s && rc != 0) {
        const loader_plugin *lp = a->pi->lp;
        if (a->call->st == STAGE_STT) lp->stt.cancel(s);
        else if (a->call->st == STAGE_LLM) lp->llm.cancel(s);
        else lp->tts.cancel(s);
    }
    if (!a->counted) {
        a->counted = 1;
        gate_call_end(a->pi, stage_op[a->call->st], rc, now_ns() - a->t0);
    }
    /* A pending timeout holds a reference (and through it the session's
     * metric context): drop it now rather than when it would fire. */
    if (a->timer && defer_cancel(a->timer)) att_unref(a);
    a->timer = 0;
    /* If the start call is still running (a blocking plugin), the start task
     * closes the stream when it returns. */
    if (started) {
        att_ref(a);
        if (strand_post(a->ps, close_task, a) != 0) att_unref(a);
    }
}

static void start_task(void *arg)
{
    attempt *a = arg;
    stage_call *c = a->call;
    const loader_plugin *lp = a->pi->lp;
    vx_error err;
    vx_stream *s;
    int rc;
    memset(&err, 0, sizeof err);
    switch (c->st) {
    case STAGE_STT: {
        vx_audio_format fmt = {(uint32_t)c->rate, 1, VX_PCM_S16LE};
        rc = lp->stt.open(a->pi->inst, &fmt, &a->se, &a->start_out, &err);
        break;
    }
    case STAGE_LLM:
        rc = lp->llm.generate(a->pi->inst, c->msgs, c->n_msgs, &c->params, &a->le, &a->start_out, &err);
        break;
    default:
        rc = lp->tts.synthesize(a->pi->inst, c->text, c->voice, &a->fmt, &a->te, &a->start_out, &err);
        break;
    }
    s = __atomic_load_n(&a->start_out, __ATOMIC_ACQUIRE);
    if (rc != 0 && s != NULL) {
        /* failed after publishing its stream: ours to close */
        if (c->st == STAGE_STT) lp->stt.close(s);
        else if (c->st == STAGE_LLM) lp->llm.close(s);
        else lp->tts.close(s);
        s = NULL;
    }
    if (rc == 0 && s == NULL) {
        rc = VX_EINTERNAL;
        snprintf(err.msg, sizeof err.msg, "plugin returned success without a stream");
    }
    pthread_mutex_lock(&a->lock);
    a->started = 1;
    a->stream = rc == 0 ? s : NULL;
    int abandoned = a->abandoned;
    pthread_mutex_unlock(&a->lock);
    if (rc != 0) {
        if (!abandoned) {
            delivery *d = new_delivery(D_START_FAILED);
            if (d) {
                d->err = err;
                if (d->err.code == 0) d->err.code = rc;
                post_delivery(a, d);
            }
        }
    } else if (abandoned) {
        /* Gave up on it while it was starting: stop and close it now. */
        if (c->st == STAGE_STT) lp->stt.cancel(s);
        else if (c->st == STAGE_LLM) lp->llm.cancel(s);
        else lp->tts.cancel(s);
        att_ref(a);
        close_task(a);
    }
    att_unref(a);
}

typedef struct feed_job {
    attempt *a;
    int16_t *pcm;
    size_t n;
    int finish;
} feed_job;

static void feed_task(void *arg)
{
    feed_job *j = arg;
    attempt *a = j->a;
    pthread_mutex_lock(&a->lock);
    vx_stream *s = a->abandoned ? NULL : a->stream;
    pthread_mutex_unlock(&a->lock);
    if (s) {
        vx_error err;
        memset(&err, 0, sizeof err);
        int rc = j->finish ? a->pi->lp->stt.finish(s, &err) : a->pi->lp->stt.feed(s, j->pcm, j->n, &err);
        if (rc != 0) {
            if (err.code == 0) err.code = rc;
            ev_error(a, &err);
        }
    }
    free(j->pcm);
    free(j);
    att_unref(a);
}

static int post_feed(attempt *a, const int16_t *pcm, size_t n, int finish)
{
    feed_job *j = calloc(1, sizeof *j);
    if (j == NULL) return -1;
    if (n) {
        j->pcm = malloc(n * sizeof *pcm);
        if (j->pcm == NULL) {
            free(j);
            return -1;
        }
        memcpy(j->pcm, pcm, n * sizeof *pcm);
    }
    j->n = n;
    j->finish = finish;
    j->a = a;
    att_ref(a);
    if (strand_post(a->ps, feed_task, j) != 0) {
        att_unref(a);
        free(j->pcm);
        free(j);
        return -1;
    }
    return 0;
}

/* ---- choosing providers */

/* Next provider to try, or -1. Providers cooling down are skipped while an
 * untried one is available; if all are cooling down, the first untried is
 * probed anyway rather than failing outright. */
static int pick_provider(stage_call *c)
{
    const stage_cfg *cfg = &c->x->gen->cfg[c->st];
    long long now = now_ms();
    int fallback = -1;
    for (int i = 0; i < cfg->n; i++) {
        if (c->tried[i]) continue;
        long long until = atomic_load(&c->x->gen->brk[c->st][i].until_ms);
        if (until && until > now) {
            if (fallback < 0) fallback = i;
            continue;
        }
        return i;
    }
    return fallback;
}

static void timeout_fire(void *arg);

/* Is a provider other than prov still untried by this call? */
static int untried_other(const stage_call *c, int prov)
{
    for (int i = 0; i < c->x->gen->cfg[c->st].n; i++)
        if (i != prov && !c->tried[i]) return 1;
    return 0;
}

/* (Re)start the attempt's timer: due in ms (session strand). A timer that
 * already fired and was superseded is recognised by its deadline. */
static void arm_timeout(attempt *a, long long ms)
{
    if (a->timer && defer_cancel(a->timer)) att_unref(a);
    a->timer = 0;
    a->deadline = now_ns() + (uint64_t)ms * 1000000ull;
    att_ref(a);
    if (defer_run_id((uint32_t)ms, timeout_fire, a, &a->timer) != 0) {
        a->timer = 0;
        att_unref(a);
    }
}

static void disarm_timeout(attempt *a)
{
    if (a->timer && defer_cancel(a->timer)) att_unref(a);
    a->timer = 0;
    a->deadline = 0;
}

static void deliver_error_final(stage_call *c, const vx_error *err)
{
    c->ended = 1;
    if (c->ev.on_error) c->ev.on_error(c->ev.user, c, err);
}

static int start_attempt(stage_call *c)
{
    attempt *a = calloc(1, sizeof *a);
    if (a == NULL) return -1;
    a->ps = strand_new();
    if (a->ps == NULL) {
        free(a);
        return -1;
    }
    atomic_init(&a->refs, 1); /* the call's c->cur */
    pthread_mutex_init(&a->lock, NULL);
    a->call = c;
    call_ref(c);
    a->prov = c->prov;
    a->pi = c->x->gen->cfg[c->st].prov[c->prov];
    a->t0 = now_ns();
    a->se = (vx_stt_events){sizeof a->se, a, ev_stt_partial, ev_stt_final, ev_error};
    a->le = (vx_llm_events){.struct_size = sizeof a->le,
                            .user = a,
                            .on_token = ev_llm_token,
                            .on_done = ev_llm_done,
                            .on_error = ev_error,
                            .on_tool_call = ev_llm_tool};
    a->te = (vx_tts_events){sizeof a->te, a, ev_tts_audio, ev_tts_done, ev_error};
    c->cur = a;
    gate_call_begin(a->pi, stage_op[c->st]);

    att_ref(a);
    if (strand_post(a->ps, start_task, a) != 0) {
        att_unref(a);
        return -1;
    }
    if (c->st == STAGE_STT) {
        if (c->utt_n) post_feed(a, c->utt, c->utt_n, 0);
        if (c->finish_requested) post_feed(a, NULL, 0, 1);
    }
    /* STT waits for speech as long as it lasts: its timeout runs from
     * finish() (or now, for a fallback after finish). LLM and TTS time
     * their first output from the start. */
    if ((c->st != STAGE_STT || c->finish_requested) && c->x->gen->cfg[c->st].timeout_ms > 0)
        arm_timeout(a, c->x->gen->cfg[c->st].timeout_ms);
    return 0;
}


static void retry_task(void *arg)
{
    stage_call *c = arg;
    if (!c->canceled && !c->ended && c->cur == NULL) {
        if (start_attempt(c) != 0) {
            vx_error e = {VX_ENOMEM, 0, 0, "out of memory"};
            deliver_error_final(c, &e);
        }
    }
    call_unref(c);
}

static void retry_fire(void *arg)
{
    stage_call *c = arg;
    if (strand_post(c->x->st, retry_task, c) != 0) call_unref(c);
}

/* Start the next attempt on the session strand after delay_ms. */
static void retry_later(stage_call *c, long long delay_ms)
{
    call_ref(c);
    if (defer_run((uint32_t)delay_ms, retry_fire, c) != 0) {
        call_unref(c);
        vx_error e = {VX_EUNAVAIL, 0, 0, "shutting down"};
        deliver_error_final(c, &e);
    }
}

/* The current attempt failed with err: retry, fall back, or give up. */
static void attempt_failed(stage_call *c, attempt *a, const vx_error *err)
{
    const stage_cfg *cfg = &c->x->gen->cfg[c->st];
    int prov = a->prov;
    attempt_end(a, err->code ? err->code : VX_EINTERNAL);
    c->cur = NULL;
    att_unref(a);

    count3(f_errors[c->st], cfg->prov[prov]->name, cfg->prov[prov]->name, gate_error_name(err->code));
    if (err->code != VX_ECANCELED) {
        int fails = atomic_fetch_add(&c->x->gen->brk[c->st][prov].fails, 1) + 1;
        if (cfg->breaker_failures > 0 && fails >= cfg->breaker_failures) {
            long long until = now_ms() + cfg->breaker_cooldown_ms;
            if (atomic_exchange(&c->x->gen->brk[c->st][prov].until_ms, until) == 0 || fails == cfg->breaker_failures)
                log_warn("provider cooling down after repeated failures", "stage", stage_name(c->st),
                         "provider", cfg->prov[prov]->name, "error", err->msg);
        }
    }
    if (c->canceled) {
        deliver_error_final(c, err);
        return;
    }
    /* A timeout goes to the next provider at once when there is one: a
     * caller should not wait for the same stalled provider again. */
    int retry_same = err->retryable && c->retry < cfg->retries &&
                     !(err->code == VX_ETIMEDOUT && untried_other(c, prov));
    int next = -1;
    if (!retry_same) {
        c->tried[prov] = 1;
        next = pick_provider(c);
        if (next < 0) {
            log_warn("all providers failed", "stage", stage_name(c->st), "last", cfg->prov[prov]->name,
                     "error", err->msg);
            deliver_error_final(c, err);
            return;
        }
    }
    if (c->output_started) {
        /* Output the caller passed on is never repeated by another attempt;
         * output it still held is dropped and made again. */
        if (c->committed || c->ev.on_reset == NULL || (c->st == STAGE_STT && c->utt_overflow)) {
            deliver_error_final(c, err);
            return;
        }
        c->output_started = 0;
        c->t_first = c->t_last = c->t_out = 0;
        c->audio_ns_before = 0;
        c->ev.on_reset(c->ev.user, c);
        if (c->canceled || c->ended) return;
    }
    if (retry_same) {
        c->retry++;
        count2(f_retries, cfg->prov[prov]->name, cfg->prov[prov]->name);
        /* exponential backoff with full jitter */
        long long base = cfg->backoff_ms << (c->retry - 1);
        long long delay = base / 2 + (long long)(rand() % (int)(base / 2 + 1));
        log_info("retrying provider", "stage", stage_name(c->st), "provider", cfg->prov[prov]->name,
                 "error", err->msg);
        retry_later(c, delay);
        return;
    }
    count2(f_fallback[c->st], cfg->prov[prov]->name, cfg->prov[next]->name);
    log_warn("falling back to the next provider", "stage", stage_name(c->st), "from", cfg->prov[prov]->name,
             "to", cfg->prov[next]->name, "error", err->msg);
    c->prov = next;
    c->retry = 0;
    if (start_attempt(c) != 0) {
        vx_error e = {VX_ENOMEM, 0, 0, "out of memory"};
        deliver_error_final(c, &e);
    }
}

static void timeout_fire(void *arg)
{
    attempt *a = arg;
    delivery *d = new_delivery(D_TIMEOUT);
    if (d) post_delivery(a, d);
    att_unref(a);
}

/* Record an output of the current attempt. The first one replaces the
 * first-output timer with the idle timer (STT: only while speech lasts;
 * after finish() the final-transcript timer runs). */
static void first_output(stage_call *c, attempt *a, uint64_t t)
{
    c->t_out = t;
    if (c->output_started) return;
    c->output_started = 1;
    if (c->st != STAGE_STT || !c->finish_requested) {
        long long idle = c->x->gen->cfg[c->st].idle_ms;
        if (idle > 0) arm_timeout(a, idle);
        else disarm_timeout(a);
    }
    c->t_first = t;
    atomic_store(&c->x->gen->brk[c->st][a->prov].fails, 0);
    atomic_store(&c->x->gen->brk[c->st][a->prov].until_ms, 0);
}

/* The attempt's timer fired (session strand): a first output, a final
 * transcript or the next output is overdue, or the timer was superseded. */
static void on_timeout(stage_call *c, attempt *a)
{
    uint64_t now = now_ns();
    if (a->deadline == 0) return; /* disarmed since */
    if (now + 1000000ull < a->deadline) {
        /* An older timer, superseded after it fired: keep the newest due. */
        arm_timeout(a, (long long)((a->deadline - now + 999999ull) / 1000000ull));
        return;
    }
    a->timer = 0;
    a->deadline = 0;
    const stage_cfg *cfg = &c->x->gen->cfg[c->st];
    vx_error e;
    memset(&e, 0, sizeof e);
    e.code = VX_ETIMEDOUT;
    e.retryable = 1;
    if (c->st == STAGE_STT && c->finish_requested) {
        snprintf(e.msg, sizeof e.msg, "%s gave no final transcript within %lld ms of the end of speech",
                 a->pi->name, cfg->timeout_ms);
    } else if (!c->output_started) {
        if (c->st == STAGE_STT) return; /* waits for speech as long as it lasts */
        snprintf(e.msg, sizeof e.msg, "%s gave no output within %lld ms", a->pi->name, cfg->timeout_ms);
    } else {
        if (cfg->idle_ms <= 0) return;
        uint64_t idle_ns = (uint64_t)cfg->idle_ms * 1000000ull;
        uint64_t quiet = now > c->t_out ? now - c->t_out : 0;
        if (quiet < idle_ns) {
            arm_timeout(a, (long long)((idle_ns - quiet + 999999ull) / 1000000ull));
            return;
        }
        snprintf(e.msg, sizeof e.msg, "%s stalled: no output for %lld ms after it started", a->pi->name,
                 (long long)(quiet / 1000000ull));
    }
    attempt_failed(c, a, &e);
}

static void deliver_task(void *arg)
{
    delivery *d = arg;
    attempt *a = d->a;
    stage_call *c = a->call;
    stage_ctx *x = c->x;
    int prov = a->prov;

    if (c->canceled || c->ended || c->cur != a) goto out;

    switch (d->type) {
    case D_PARTIAL:
        if (!c->output_started) observe(x, c->st, prov, H_FIRST, d->t_ns - a->t0);
        first_output(c, a, d->t_ns);
        if (c->last_audio_ns && d->t_ns > c->last_audio_ns)
            observe(x, c->st, prov, H_LAG, d->t_ns - c->last_audio_ns);
        if (c->ev.on_partial) c->ev.on_partial(c->ev.user, c, d->text);
        break;
    case D_FINAL:
        if (!c->output_started) observe(x, c->st, prov, H_FIRST, d->t_ns - a->t0);
        first_output(c, a, d->t_ns);
        if (c->finish_ns && d->t_ns >= c->finish_ns) observe(x, c->st, prov, H_TOTAL, d->t_ns - c->finish_ns);
        if (c->last_audio_ns && d->t_ns > c->last_audio_ns)
            observe(x, c->st, prov, H_LAG, d->t_ns - c->last_audio_ns);
        /* One utterance per STT call: the stream is done. */
        c->ended = 1;
        c->cur = NULL;
        attempt_end(a, 0);
        att_unref(a);
        if (c->ev.on_final) c->ev.on_final(c->ev.user, c, d->text, d->conf);
        break;
    case D_TOKEN:
        if (!c->output_started) observe(x, c->st, prov, H_FIRST, d->t_ns - a->t0);
        else observe(x, c->st, prov, H_LAG, d->t_ns - c->t_last);
        first_output(c, a, d->t_ns);
        c->t_last = d->t_ns;
        if (c->ev.on_token) c->ev.on_token(c->ev.user, c, d->text, d->len);
        break;
    case D_TOOL:
        /* A tool call is output: it is never repeated by another provider. */
        if (!c->output_started) observe(x, c->st, prov, H_FIRST, d->t_ns - a->t0);
        first_output(c, a, d->t_ns);
        c->t_last = d->t_ns;
        if (c->ev.on_tool_call) c->ev.on_tool_call(c->ev.user, c, d->index, d->call_id, d->name, d->text, d->len);
        break;
    case D_AUDIO: {
        /* Delivered to the client right after this returns: TTFA is
         * measured here, on the session strand. */
        uint64_t t = now_ns();
        uint64_t rate = a->fmt.sample_rate ? a->fmt.sample_rate : 16000;
        if (!c->output_started) {
            observe(x, c->st, prov, H_FIRST, t - a->t0);
        } else {
            uint64_t since_first = t - c->t_first;
            uint64_t lag = since_first > c->audio_ns_before ? since_first - c->audio_ns_before : 0;
            observe(x, c->st, prov, H_LAG, lag);
        }
        first_output(c, a, t);
        c->audio_ns_before += (uint64_t)d->n * 1000000000ull / rate;
        c->t_last = t;
        if (c->ev.on_audio) c->ev.on_audio(c->ev.user, c, d->pcm, d->n, &a->fmt);
        break;
    }
    case D_DONE:
        if (c->st == STAGE_LLM && c->output_started) observe(x, c->st, prov, H_TOTAL, c->t_last - c->t_first);
        if (c->st == STAGE_TTS) observe(x, c->st, prov, H_TOTAL, d->t_ns - a->t0);
        c->ended = 1;
        c->cur = NULL;
        attempt_end(a, 0);
        att_unref(a);
        if (c->ev.on_done) c->ev.on_done(c->ev.user, c, d->has_usage ? &d->usage : NULL);
        break;
    case D_ERROR:
    case D_START_FAILED:
        attempt_failed(c, a, &d->err);
        break;
    case D_TIMEOUT:
        on_timeout(c, a);
        break;
    }
out:
    free(d->text);
    free(d->pcm);
    free(d->call_id);
    free(d->name);
    free(d);
    att_unref(a);
}

/* ------------------------------------------------------------ public API */

static stage_call *call_new(stage_ctx *x, int st, const stage_events *ev)
{
    if (x == NULL || x->gen->cfg[st].n == 0) return NULL; /* x: the session ended */
    stage_call *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    atomic_init(&c->refs, 1);
    c->st = st;
    c->x = x;
    atomic_fetch_add(&x->refs, 1);
    c->ev = *ev;
    c->t_start = now_ns();
    c->prov = -1;
    return c;
}

static stage_call *call_go(stage_call *c)
{
    c->prov = pick_provider(c);
    if (c->prov < 0 || start_attempt(c) != 0) {
        call_unref(c);
        return NULL;
    }
    return c;
}

stage_call *stage_stt_open(stage_ctx *x, int sample_rate, const stage_events *ev)
{
    stage_call *c = call_new(x, STAGE_STT, ev);
    if (c == NULL) return NULL;
    c->rate = sample_rate;
    return call_go(c);
}

int stage_stt_feed(stage_call *c, const int16_t *pcm, size_t n)
{
    if (c->ended || c->canceled || n == 0) return 0;
    c->last_audio_ns = now_ns();
    size_t max = (size_t)c->rate * STT_REPLAY_MAX_SECONDS;
    if (!c->utt_overflow) {
        if (c->utt_n + n > max) {
            c->utt_overflow = 1; /* too long to replay on a fallback */
        } else {
            if (c->utt_n + n > c->utt_cap) {
                size_t cap = c->utt_cap ? c->utt_cap : 16000;
                while (cap < c->utt_n + n) cap *= 2;
                int16_t *nb = realloc(c->utt, cap * sizeof *nb);
                if (nb == NULL) return -1;
                c->utt = nb;
                c->utt_cap = cap;
            }
            memcpy(c->utt + c->utt_n, pcm, n * sizeof *pcm);
            c->utt_n += n;
        }
    }
    return c->cur ? post_feed(c->cur, pcm, n, 0) : 0;
}

int stage_stt_finish(stage_call *c)
{
    if (c->ended || c->canceled || c->finish_requested) return 0;
    c->finish_requested = 1;
    c->finish_ns = now_ns();
    if (c->cur == NULL) return 0; /* a retry will replay and finish */
    if (c->x->gen->cfg[STAGE_STT].timeout_ms > 0) arm_timeout(c->cur, c->x->gen->cfg[STAGE_STT].timeout_ms);
    else disarm_timeout(c->cur); /* no partial-gap timer once the speech ended */
    return post_feed(c->cur, NULL, 0, 1);
}

stage_call *stage_llm_generate(stage_ctx *x, const vx_message *msgs, size_t n,
                               const vx_llm_params *params, const stage_events *ev)
{
    stage_call *c = call_new(x, STAGE_LLM, ev);
    if (c == NULL) return NULL;
    c->msgs = calloc(n ? n : 1, sizeof *c->msgs);
    if (c->msgs == NULL) goto fail;
    for (size_t i = 0; i < n; i++) {
        c->msgs[i].role = strdup(msgs[i].role ? msgs[i].role : "user");
        c->msgs[i].content = strdup(msgs[i].content ? msgs[i].content : "");
        c->n_msgs = i + 1;
        if (!c->msgs[i].role || !c->msgs[i].content) goto fail;
    }
    c->params.struct_size = sizeof c->params;
    c->params.temperature = params ? params->temperature : -1;
    c->params.max_tokens = params ? params->max_tokens : 0;
    if (params && params->session_id) c->params.session_id = strdup(params->session_id);
    if (params && params->struct_size >= VX_LLM_PARAMS_SIZE_1_3) {
        if ((params->tools_json && (c->params.tools_json = strdup(params->tools_json)) == NULL) ||
            (params->tool_choice && (c->params.tool_choice = strdup(params->tool_choice)) == NULL) ||
            (params->messages_json && (c->params.messages_json = strdup(params->messages_json)) == NULL))
            goto fail;
    }
    return call_go(c);
fail:
    call_unref(c);
    return NULL;
}

stage_call *stage_tts_synthesize(stage_ctx *x, const char *text, const char *voice,
                                 const stage_events *ev)
{
    stage_call *c = call_new(x, STAGE_TTS, ev);
    if (c == NULL) return NULL;
    c->text = strdup(text);
    c->voice = voice ? strdup(voice) : NULL;
    if (c->text == NULL || (voice && c->voice == NULL)) {
        call_unref(c);
        return NULL;
    }
    return call_go(c);
}

void stage_commit(stage_call *c)
{
    if (c) c->committed = 1;
}

void stage_cancel(stage_call *c)
{
    if (c == NULL || c->canceled) return;
    c->canceled = 1;
    if (c->cur) {
        attempt *a = c->cur;
        c->cur = NULL;
        attempt_end(a, VX_ECANCELED);
        att_unref(a);
    }
}

void stage_release(stage_call *c)
{
    if (c) call_unref(c);
}
