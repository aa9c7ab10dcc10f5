/*
 * Realtime sessions: life cycle, client events, limits, session metrics.
 */
#include "config.h"

#include "session/session.h"

#include <malloc.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/defer.h"
#include "base/log.h"
#include "metrics.h"
#include "session/persist.h"
#include "recording/recorder.h"
#include "session/session_int.h"
#include "pipeline/resample.h"
#include "pipeline/stage.h"
#include "base/worker.h"


static atomic_int g_sessions;
static int g_sample_rate = 100;
#define MAX_APPEND_SECONDS 60

static metrics_family *f_sessions, *f_active, *f_duration, *f_interruptions, *f_req_words,
    *f_reply_words, *f_turn_latency, *f_client_errors, *f_llm_tokens, *f_speculative;
static metrics_series *s_sessions, *s_active, *s_duration, *s_interruptions, *s_req_words,
    *s_reply_words, *s_turn_latency, *s_spec_used, *s_spec_discarded, *s_host[3];
static metrics_family *f_host;

int session_count(void) { return atomic_load(&g_sessions); }

uint64_t sess_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int session_metrics_init(metrics_registry *reg, const settings *s)
{
    static const double b_dur[] = {1, 10, 30, 60, 120, 240, 480, 960, 1920, 3600};
    static const double b_words[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    /* 10 ms apart from 50 to 500 ms, where a voice turn's latency lives, so
     * that a quantile moves visibly for a few ms added (interpolation errs
     * by at most half a bucket); coarser beyond. 54 buckets, one series. */
    double b_lat[54];
    size_t n_lat = 0;
    for (int ms = 50; ms <= 500; ms += 10) b_lat[n_lat++] = ms / 1000.0;
    static const double b_lat_tail[] = {0.6, 0.75, 1, 1.5, 2, 3, 5, 10};
    for (size_t i = 0; i < sizeof b_lat_tail / sizeof b_lat_tail[0]; i++) b_lat[n_lat++] = b_lat_tail[i];
    static const char *const l_code[] = {"code"};
    g_sample_rate = s->session_sample_rate;
    f_sessions = metrics_counter_family(reg, "voxray_sessions_total", "Realtime sessions started.", 0, NULL);
    f_active = metrics_gauge_family(reg, "voxray_active_sessions", "Realtime sessions open right now.", 0, NULL);
    f_duration = metrics_histogram_family(reg, "voxray_session_duration_seconds", "Length of ended sessions.",
                                          0, NULL, b_dur, sizeof b_dur / sizeof b_dur[0]);
    f_interruptions = metrics_counter_family(reg, "voxray_interruptions_total",
                                             "Responses cut short by user speech (barge-in).", 0, NULL);
    f_req_words = metrics_histogram_family(reg, "voxray_request_length_words", "Words in a user turn.",
                                           0, NULL, b_words, sizeof b_words / sizeof b_words[0]);
    f_reply_words = metrics_histogram_family(reg, "voxray_reply_length_words",
                                             "Words the bot said in a response (after truncation).", 0, NULL,
                                             b_words, sizeof b_words / sizeof b_words[0]);
    f_turn_latency = metrics_histogram_family(reg, "voxray_turn_latency_seconds",
                                              "End of user speech to the first reply audio sent.", 0, NULL,
                                              b_lat, n_lat);
    f_client_errors = metrics_counter_family(reg, "voxray_client_errors_total",
                                             "Error events sent to clients, by code.", 1, l_code);
    static const char *const l_tokens[] = {"model", "provider", "type"};
    f_llm_tokens = metrics_counter_family(reg, "voxray_llm_tokens_total",
                                          "LLM tokens per provider instance: type input (prompt) or output, as the provider reported them (words when it did not).",
                                          3, l_tokens);
    static const char *const l_outcome[] = {"outcome"};
    f_speculative = metrics_counter_family(reg, "voxray_speculative_turns_total",
                                           "Replies started speculatively at a pause in the user's speech: used (the turn ended there, with the same transcript) or discarded (the user went on, or the turn changed), unseen by the client.",
                                           1, l_outcome);
    if (!f_sessions || !f_active || !f_duration || !f_interruptions || !f_req_words || !f_reply_words ||
        !f_turn_latency || !f_client_errors || !f_llm_tokens || !f_speculative)
        return -1;
    {
        const char *used[] = {"used"}, *discarded[] = {"discarded"};
        s_spec_used = metrics_series_get(f_speculative, used);
        s_spec_discarded = metrics_series_get(f_speculative, discarded);
        if (!s_spec_used || !s_spec_discarded) return -1;
    }
    /* The host's own share of a turn's latency, between the stages: 100 us
     * to 100 ms (it is meant to be small; the tail shows contention). */
    static const double b_host[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1};
    static const char *const l_step[] = {"step"};
    f_host = metrics_histogram_family(reg, "voxray_host_latency_seconds",
                                      "Time the host adds between stages of a turn: step stt_final_to_llm (final transcript to the LLM call, turns not answered speculatively), llm_sentence_to_tts (the reply's first sentence to its TTS call), tts_chunk_to_client (first synthesized audio to the first audio sent; not for held speculative replies).",
                                      1, l_step, b_host, sizeof b_host / sizeof b_host[0]);
    if (f_host == NULL) return -1;
    {
        static const char *const steps[] = {"stt_final_to_llm", "llm_sentence_to_tts", "tts_chunk_to_client"};
        for (int i = 0; i < 3; i++) {
            const char *v[] = {steps[i]};
            if ((s_host[i] = metrics_series_get(f_host, v)) == NULL) return -1;
        }
    }
    s_sessions = metrics_series_get(f_sessions, NULL);
    s_active = metrics_series_get(f_active, NULL);
    s_duration = metrics_series_get(f_duration, NULL);
    s_interruptions = metrics_series_get(f_interruptions, NULL);
    s_req_words = metrics_series_get(f_req_words, NULL);
    s_reply_words = metrics_series_get(f_reply_words, NULL);
    s_turn_latency = metrics_series_get(f_turn_latency, NULL);
    return s_sessions && s_active && s_duration && s_interruptions && s_req_words && s_reply_words &&
                   s_turn_latency
               ? 0
               : -1;
}

void sess_count_interruption(void) { metrics_counter_inc(s_interruptions); }

void sess_count_speculative(int used) { metrics_counter_inc(used ? s_spec_used : s_spec_discarded); }

void sess_observe_host(int step, uint64_t ns)
{
    if (step >= 0 && step < 3) metrics_histogram_observe(s_host[step], (double)ns / 1e9);
}

void sess_count_tokens(const char *model, int input, int output)
{
    /* provider: the same instance name as model (one selector for every
     * series of a provider, with the call-gate families). */
    const char *lv[3] = {model ? model : "", model ? model : "", "input"};
    for (int k = 0; k < 2; k++) {
        int n = k == 0 ? input : output;
        lv[2] = k == 0 ? "input" : "output";
        metrics_series *m = metrics_series_get(f_llm_tokens, lv);
        if (m == NULL) continue;
        if (n > 0) metrics_counter_add(m, (uint64_t)n);
        metrics_series_release(m);
    }
}
void sess_observe_turn_latency(session *s, uint64_t ns)
{
    (void)s;
    metrics_histogram_observe_ns(s_turn_latency, ns);
}
void sess_observe_words(int request, int words)
{
    metrics_histogram_observe(request ? s_req_words : s_reply_words, words);
}

/* SampledSessionID(): the hex SHA-256 of the id for 1 in N sessions (by the
 * hash, so the same id is sampled the same way on every instance), else
 * "sampled_out". */
static void sampled_session_id(const char *id, char *out, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)id, strlen(id), md);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | md[i];
    if (g_sample_rate > 1 && v % (uint64_t)g_sample_rate != 0) {
        snprintf(out, len, "sampled_out");
        return;
    }
    size_t o = 0;
    for (int i = 0; i < SHA256_DIGEST_LENGTH && o + 2 < len; i++) o += (size_t)snprintf(out + o, len - o, "%02x", md[i]);
}

/* ------------------------------------------------------------ references */

void session_ref(session *s) { atomic_fetch_add(&s->refs, 1); }

void session_unref(session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    input_free(s);
    resampler_free(s->track_rs);
    respond_free(s->resp);
    conv_free(&s->conv);
    proto_session_clear(&s->cfg);
    if (s->resp_wait) {
        proto_client_event_free(s->resp_wait);
        free(s->resp_wait);
    }
    stage_ctx_free(s->sx);
    if (s->conn) s->tp->unref(s->conn);
    free(s->resume_id);
    strand_unref(s->persist);
    strand_unref(s->st);
    free(s);
}

/* Post fn(s) to the session strand with a reference held for it. */
typedef struct sess_task {
    session *s;
    void (*fn)(session *s, void *arg);
    void *arg;
} sess_task;

static void run_sess_task(void *p)
{
    sess_task *t = p;
    t->fn(t->s, t->arg);
    session_unref(t->s);
    free(t);
}

int sess_post(session *s, void (*fn)(session *, void *), void *arg)
{
    sess_task *t = malloc(sizeof *t);
    if (t == NULL) return -1;
    t->s = s;
    t->fn = fn;
    t->arg = arg;
    session_ref(s);
    if (strand_post(s->st, run_sess_task, t) != 0) {
        session_unref(s);
        free(t);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ output */

void sess_send(session *s, char *json)
{
    if (json == NULL) return; /* an event this dialect does not have */
    if (s->closed) {
        free(json);
        return;
    }
    for (int i = 0; i < s->n_side; i++) {
        char *copy = strdup(json);
        if (copy) s->side[i].tp->send_event(s->side[i].conn, copy);
    }
    s->tp->send_event(s->conn, json);
}

void sess_error(session *s, const char *type, const char *code, const char *message,
                const char *param, const char *event_id)
{
    proto_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "%s", type);
    snprintf(e.code, sizeof e.code, "%s", code);
    snprintf(e.message, sizeof e.message, "%s", message);
    if (param) snprintf(e.param, sizeof e.param, "%s", param);
    if (event_id) snprintf(e.event_id, sizeof e.event_id, "%s", event_id);
    const char *lv[] = {e.code};
    metrics_series *m = metrics_series_get(f_client_errors, lv);
    if (m) {
        metrics_counter_inc(m);
        metrics_series_release(m);
    }
    log_debug("error event sent", "session", s->id, "code", e.code, "message", e.message);
    sess_send(s, proto_ev_error(s->d, &e));
}

/* ------------------------------------------------------------ timers */

static void tick_task(session *s, void *arg);

static void tick_fire(void *arg)
{
    session *s = arg;
    if (sess_post(s, tick_task, NULL) != 0) {
        /* shutting down */
    }
    session_unref(s);
}

void sess_schedule_tick(session *s, uint32_t ms)
{
    uint64_t due = sess_now_ns() + (uint64_t)ms * 1000000ull;
    if (s->tick_due_ns && s->tick_due_ns <= due) return; /* one is coming sooner */
    s->tick_due_ns = due;
    session_ref(s);
    if (defer_run(ms, tick_fire, s) != 0) session_unref(s);
}

/* With nothing playing and no turn on hold, the tick only watches
 * max_duration and idle_timeout: sleep until the nearer one (at most a
 * minute), so that idle sessions cost no periodic work. A client message
 * moves the idle deadline later, which the tick finds when it fires. */
static uint32_t idle_tick_ms(const session *s, uint64_t now)
{
    uint64_t wait = 60000ull * 1000000ull;
    if (s->max_duration_ms > 0) {
        uint64_t end = s->t_start_ns + (uint64_t)s->max_duration_ms * 1000000ull;
        uint64_t left = end > now ? end - now : 0;
        if (left < wait) wait = left;
    }
    if (s->idle_timeout_ms > 0) {
        uint64_t end = s->t_last_msg_ns + (uint64_t)s->idle_timeout_ms * 1000000ull;
        uint64_t left = end > now ? end - now : 0;
        if (left < wait) wait = left;
    }
    return (uint32_t)(wait / 1000000ull) + 1;
}

static void tick_task(session *s, void *arg)
{
    (void)arg;
    if (s->closed) return;
    uint64_t now = sess_now_ns();
    if (s->tick_due_ns && now + 500000ull < s->tick_due_ns) return; /* a superseded tick */
    s->tick_due_ns = 0;
    if (s->max_duration_ms > 0 && now - s->t_start_ns >= (uint64_t)s->max_duration_ms * 1000000ull) {
        sess_error(s, "invalid_request_error", "session_expired",
                   "the session reached its maximum duration ([session] max_duration)", NULL, NULL);
        s->end_reason = "max_duration";
        s->tp->close(s->conn, TRANSPORT_CLOSE_NORMAL, "session expired");
        return;
    }
    if (s->idle_timeout_ms > 0 && now - s->t_last_msg_ns >= (uint64_t)s->idle_timeout_ms * 1000000ull) {
        sess_error(s, "invalid_request_error", "session_idle_timeout",
                   "no client message for too long ([session] idle_timeout)", NULL, NULL);
        s->end_reason = "idle_timeout";
        s->tp->close(s->conn, TRANSPORT_CLOSE_NORMAL, "idle timeout");
        return;
    }
    uint32_t next = 1000;
    input_tick(s);
    uint32_t pace = respond_tick(s);
    if (pace && pace < next) next = pace;
    else if (!pace && s->resp == NULL && !s->in.holding) next = idle_tick_ms(s, now);
    sess_schedule_tick(s, next);
}

/* ------------------------------------------------------------ life cycle */

static void start_task(session *s, void *arg)
{
    (void)arg;
    char why[256] = "";
    int resumed = 0;
    if (s->resume_id) {
        char fresh[40];
        snprintf(fresh, sizeof fresh, "%s", s->id);
        int prc = persist_restore(s, s->resume_id, why, sizeof why);
        resumed = prc == 0;
        if (prc == -2) {
            /* The session may exist: refuse this connection and keep the id
             * resumable instead of answering with a fresh session. */
            char m[300];
            snprintf(m, sizeof m, "%.220s; the session is kept: try again later", why);
            snprintf(s->id, sizeof s->id, "%s", fresh);
            sess_error(s, "server_error", "session_store_unavailable", m, "session_id", NULL);
            log_warn("resume refused: the session store is unavailable", "session_id", s->resume_id, "error", why);
            s->end_reason = "store_unavailable";
            s->tp->close(s->conn, TRANSPORT_CLOSE_TRY_AGAIN, "session store unavailable");
            return;
        }
        if (!resumed) {
            /* keep the fresh id; anything half-restored is dropped */
            conv_free(&s->conv);
            snprintf(s->id, sizeof s->id, "%s", fresh);
        }
    }
    if (!s->closed) {
        /* A resumed session's earlier connections have recordings of their
         * own under its id: this one gets a name of its own. */
        char rid[64];
        if (resumed) snprintf(rid, sizeof rid, "%.40s-%lld", s->id, (long long)s->t_start_unix_ms);
        else snprintf(rid, sizeof rid, "%s", s->id);
        s->rec = recorder_open(&s->a->s, rid, s->t_start_ns, s->t_start_unix_ms);
    }
    sess_send(s, proto_ev_session(s->d, 0, &s->cfg));
    if (s->resume_id && !resumed) {
        sess_error(s, "invalid_request_error", "session_not_found", why, "session_id", NULL);
    } else if (resumed) {
        /* Replay the conversation so the client can show it. */
        for (item *it = s->conv.head; it; it = it->next) {
            proto_item v = conv_view(it);
            const char *prev = it->prev ? it->prev->id : NULL;
            sess_send(s, proto_ev_item_added(s->d, &v, prev));
            sess_send(s, proto_ev_item_done(s->d, &v, prev));
        }
        char n[16];
        snprintf(n, sizeof n, "%zu", s->conv.n);
        log_info("session resumed", "session_id", s->id, "items", n);
    }
    sess_schedule_tick(s, 1000);
}

session *session_new(app *a, const transport_ops *tp, void *conn, int beta, const char *resume_id)
{
    session *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    if (resume_id && (s->resume_id = strdup(resume_id)) == NULL) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1); /* the connection's */
    s->a = a;
    s->tp = tp;
    s->conn = conn;
    tp->ref(conn);
    s->d = beta ? PROTO_BETA : PROTO_GA;
    proto_new_id("sess_", s->id, sizeof s->id);
    proto_new_id("conv_", s->conv_id, sizeof s->conv_id);
    sampled_session_id(s->id, s->label, sizeof s->label);
    s->t_start_ns = s->t_last_msg_ns = sess_now_ns();
    {
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        s->t_start_unix_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000;
    }
    proto_session_defaults(&s->cfg, s->d);
    s->cfg.turn.semantic = a->s.turn_semantic;
    s->cfg.turn.eagerness = a->s.turn_eagerness;
    free(s->cfg.id);
    s->cfg.id = strdup(s->id);
    s->cfg.instructions = settings_live_instructions();
    s->cfg.voice = settings_live_voice();
    s->max_duration_ms = settings_live_max_duration_ms();
    s->idle_timeout_ms = settings_live_session_idle_ms();
    s->st = strand_new();
    s->persist = strand_new();
    if (s->st == NULL || s->persist == NULL || s->cfg.id == NULL) goto fail;
    s->sx = stage_ctx_new(s->st, s->label);
    if (s->sx == NULL || input_init(s) != 0) goto fail;
    atomic_fetch_add(&g_sessions, 1);
    atomic_fetch_add(&a->active_sessions, 1);
    metrics_counter_inc(s_sessions);
    metrics_gauge_add(s_active, 1);
    log_info("session started", "session_id", s->id, "transport", tp->name,
             "dialect", beta ? "beta" : "ga");
    sess_post(s, start_task, NULL);
    return s;
fail:
    session_unref(s);
    return NULL;
}

/*
 * Memory back to the system after sessions end. glibc keeps what a worker
 * thread's arena freed: after 1,000 talking sessions ended, voxray held
 * 168 MB of which 6.5 MB was in use (malloc_stats: 200 MB in one arena,
 * free chunks in the middle of its heap, which only malloc_trim() gives
 * back). A trim runs on a worker TRIM_DELAY_MS after the first session end
 * since the last trim: at most one per that period, however many end.
 */
#define TRIM_DELAY_MS 5000
static atomic_int g_trim_pending;
static strand *g_trim_strand;
static pthread_once_t g_trim_once = PTHREAD_ONCE_INIT;

static void trim_init(void) { g_trim_strand = strand_new(); }

static void trim_task(void *arg)
{
    (void)arg;
    atomic_store(&g_trim_pending, 0);
    malloc_trim(0);
}

static void trim_due(void *arg)
{
    (void)arg;
    if (g_trim_strand == NULL || strand_post(g_trim_strand, trim_task, NULL) != 0)
        atomic_store(&g_trim_pending, 0);
}

static void schedule_trim(void)
{
    pthread_once(&g_trim_once, trim_init);
    if (atomic_exchange(&g_trim_pending, 1)) return;
    if (defer_run(TRIM_DELAY_MS, trim_due, NULL) != 0) atomic_store(&g_trim_pending, 0);
}

static void close_controls(session *s);

static void closed_task(session *s, void *arg)
{
    (void)arg;
    s->closed = 1;
    close_controls(s);
    if (s->resp) respond_cancel(s, "client_disconnected");
    input_free(s);
    /* The session's hold on its provider generation ends with it, not when
     * the last timer lets go of the session: a reload's old plugins are
     * unloaded once their sessions end. Calls still closing keep the
     * context; no call starts after this (stage_* refuse a NULL context). */
    stage_ctx_free(s->sx);
    s->sx = NULL;
    const char *why = s->end_reason ? s->end_reason
                      : atomic_load(&s->a->phase) == APP_DRAINING ? "server_shutdown" : "client_closed";
    recorder_close(s->rec, why);
    s->rec = NULL;
    double secs = (double)(sess_now_ns() - s->t_start_ns) / 1e9;
    metrics_histogram_observe(s_duration, secs);
    metrics_gauge_add(s_active, -1);
    atomic_fetch_sub(&g_sessions, 1);
    atomic_fetch_sub(&s->a->active_sessions, 1);
    char dur[32];
    snprintf(dur, sizeof dur, "%.3f", secs);
    log_info("session ended", "session_id", s->id, "duration_s", dur);
    schedule_trim();
}

void session_on_closed(session *s)
{
    if (sess_post(s, closed_task, NULL) != 0) closed_task(s, NULL);
    session_unref(s); /* the connection's reference */
}

/* ------------------------------------------------------------ client events */

typedef struct msg_arg {
    char *text;
    size_t len;
    const transport_ops *tp; /* a control connection's message (NULL: the session's own) */
    void *conn;
} msg_arg;

/* The message was dealt with: its connection may read on. */
static void msg_done(session *s, msg_arg *m)
{
    if (m->tp) {
        m->tp->input_done(m->conn, m->len);
        m->tp->unref(m->conn);
    } else {
        s->tp->input_done(s->conn, m->len);
    }
}

/* session.update: what parsed applies; each member that did not gets its
 * own error event (a client asking for one unsupported setting keeps the
 * rest of its configuration). */
static void on_session_update(session *s, proto_client_event *ev)
{
    int rate_changed = (ev->session.set & PS_INPUT_RATE) && ev->session.input_rate != s->cfg.input_rate;
    for (size_t i = 0; i < ev->n_field_errors; i++) {
        const proto_error *e = &ev->field_errors[i];
        sess_error(s, e->type[0] ? e->type : "invalid_request_error", e->code, e->message,
                   e->param[0] ? e->param : NULL, ev->event_id);
    }
    if (ev->n_field_errors && ev->session.set == 0) return; /* nothing valid to apply */
    if (proto_session_merge(&s->cfg, &ev->session) != 0) {
        sess_error(s, "server_error", "internal_error", "out of memory", NULL, ev->event_id);
        return;
    }
    if (rate_changed || (ev->session.set & PS_TURN_DETECTION)) input_reconfigure(s);
    sess_send(s, proto_ev_session(s->d, 1, &s->cfg));
    if (ev->session.set & (PS_INSTRUCTIONS | PS_VOICE)) persist_save(s);
}

static void on_item_create(session *s, proto_client_event *ev)
{
    item *after = NULL;
    if (ev->previous_item_id) {
        if (strcmp(ev->previous_item_id, "root") == 0) {
            after = CONV_AT_HEAD;
        } else if ((after = conv_find(&s->conv, ev->previous_item_id)) == NULL) {
            char m[200];
            snprintf(m, sizeof m, "previous_item_id '%s' does not exist in the conversation", ev->previous_item_id);
            sess_error(s, "invalid_request_error", "item_not_found", m, "previous_item_id", ev->event_id);
            return;
        }
    }
    if (ev->text && strlen(ev->text) > (size_t)s->a->s.max_conversation_bytes / 2) {
        char m[160];
        snprintf(m, sizeof m, "the item's text is larger than half of the conversation's limit (%d bytes)",
                 s->a->s.max_conversation_bytes);
        sess_error(s, "invalid_request_error", "invalid_value", m, "item", ev->event_id);
        return;
    }
    item *it;
    if (ev->item_type) {
        /* A tool result answers a call the model made in this conversation
         * (a chat-completions provider refuses an orphan result). */
        if (strcmp(ev->item_type, "function_call_output") == 0 && conv_find_call(&s->conv, ev->call_id) == NULL) {
            char m[200];
            snprintf(m, sizeof m, "no function_call with call_id '%.64s' in the conversation", ev->call_id);
            sess_error(s, "invalid_request_error", "invalid_value", m, "item.call_id", ev->event_id);
            return;
        }
        it = conv_add_function(&s->conv, after, ev->item_id, ev->item_type, ev->call_id, ev->name, ev->text,
                               "completed");
    } else {
        proto_content ct = strcmp(ev->role, "assistant") == 0 ? PROTO_OUTPUT_TEXT : PROTO_INPUT_TEXT;
        it = conv_add(&s->conv, after, ev->item_id, ev->role, ct, ev->text, "completed");
    }
    if (it == NULL) {
        sess_error(s, "invalid_request_error", "duplicate_item_id", "an item with this id already exists",
                   "item.id", ev->event_id);
        return;
    }
    proto_item v = conv_view(it);
    const char *prev = it->prev ? it->prev->id : NULL;
    sess_send(s, proto_ev_item_added(s->d, &v, prev));
    sess_send(s, proto_ev_item_done(s->d, &v, prev));
    if (strcmp(it->role, "user") == 0 && !it->type[0]) sess_observe_words(1, conv_words(it->text));
    if (it->type[0]) {
        recorder_note(s->rec, it->id, it->role, "type", it->type);
        recorder_note(s->rec, it->id, it->role, "call_id", it->call_id);
    }
    recorder_note(s->rec, it->id, it->role, "text", it->text);
    recorder_note(s->rec, it->id, it->role, "source", "conversation.item.create");
    recorder_note_ms(s->rec, it->id, it->role, "created_ms", -1);
    persist_save(s);
}

static void on_response_create(session *s, proto_client_event *ev)
{
    if (s->resp || s->resp_waiting) {
        sess_error(s, "invalid_request_error", "conversation_already_has_active_response",
                   "a response is already in progress; cancel it first", NULL, ev->event_id);
        return;
    }
    if (input_transcribing(s)) {
        /* The user's last turn is still being transcribed: answer it once
         * the transcript is in (input.c starts the response). */
        s->resp_waiting = 1;
        s->resp_wait = malloc(sizeof *s->resp_wait);
        if (s->resp_wait) {
            *s->resp_wait = *ev; /* the event's memory moves here */
            memset(ev, 0, sizeof *ev);
        }
        return;
    }
    respond_start(s, ev);
}

static void on_response_cancel(session *s, proto_client_event *ev)
{
    if (s->resp_waiting && s->resp == NULL) {
        s->resp_waiting = 0;
        if (s->resp_wait) {
            proto_client_event_free(s->resp_wait);
            free(s->resp_wait);
            s->resp_wait = NULL;
        }
        return;
    }
    if (s->resp == NULL) {
        sess_error(s, "invalid_request_error", "response_cancel_not_active",
                   "there is no active response to cancel", NULL, ev->event_id);
        return;
    }
    if (ev->response_id && strcmp(ev->response_id, s->resp->id) != 0) {
        sess_error(s, "invalid_request_error", "response_not_found",
                   "response_id does not name the active response", "response_id", ev->event_id);
        return;
    }
    respond_cancel(s, "client_cancelled");
}

/* output_audio_buffer.clear: on a transport that plays the reply audio
 * itself (WebRTC), cut it off. A reply still being made is cancelled as
 * response.cancel would (the API asks clients to send that first; one that
 * did not still gets silence); the transport answers with
 * output_audio_buffer.cleared. Over a WebSocket the client holds the
 * audio it was sent, so there is nothing here to clear: an error, as the
 * API gives. */
static void on_output_audio_clear(session *s, proto_client_event *ev)
{
    if (s->tp->clear_audio == NULL) {
        sess_error(s, "invalid_request_error", "unsupported_for_transport",
                   "output_audio_buffer.clear is for WebRTC calls only: over a WebSocket the client stops "
                   "its own playback (and sends conversation.item.truncate)",
                   "type", ev->event_id);
        return;
    }
    if (s->resp && !respond_held(s)) respond_cancel(s, "client_cancelled");
    if (s->conn) s->tp->clear_audio(s->conn, 1);
}

/* The client played only audio_end_ms of an assistant item: the
 * conversation keeps the share of its words that was heard. */
static void on_item_truncate(session *s, proto_client_event *ev)
{
    item *it = conv_find(&s->conv, ev->item_id);
    char m[200];
    if (it == NULL) {
        snprintf(m, sizeof m, "item '%s' does not exist in the conversation", ev->item_id);
        sess_error(s, "invalid_request_error", "item_not_found", m, "item_id", ev->event_id);
        return;
    }
    if (strcmp(it->role, "assistant") != 0 || it->content != PROTO_OUTPUT_AUDIO || ev->content_index != 0) {
        sess_error(s, "invalid_request_error", "invalid_value",
                   "only the audio part (content_index 0) of an assistant audio item can be truncated",
                   "item_id", ev->event_id);
        return;
    }
    if (s->resp && s->resp->it == it) respond_cancel(s, "client_cancelled");
    if (ev->audio_end_ms > it->audio_ms) {
        snprintf(m, sizeof m, "audio_end_ms %d is past the end of the item's audio (%d ms)", ev->audio_end_ms,
                 it->audio_ms);
        sess_error(s, "invalid_request_error", "invalid_value", m, "audio_end_ms", ev->event_id);
        return;
    }
    if (it->audio_ms > 0) {
        if (ev->audio_end_ms < it->audio_ms) {
            int words = conv_words(it->text);
            conv_keep_words(it, (int)((long long)words * ev->audio_end_ms / it->audio_ms));
            conv_touch(&s->conv, it);
            it->audio_ms = ev->audio_end_ms;
            snprintf(it->status, sizeof it->status, "incomplete");
            recorder_bot_truncate(s->rec, it->id, ev->audio_end_ms);
            recorder_note(s->rec, it->id, "assistant", "text", it->text);
            recorder_note_ms(s->rec, it->id, "assistant", "audio_end_ms", ev->audio_end_ms);
        }
    }
    sess_send(s, proto_ev_item_truncated(s->d, it->id, 0, ev->audio_end_ms));
    persist_save(s);
}

static void on_item_retrieve(session *s, proto_client_event *ev)
{
    item *it = conv_find(&s->conv, ev->item_id);
    if (it == NULL) {
        char m[200];
        snprintf(m, sizeof m, "item '%.64s' does not exist in the conversation", ev->item_id);
        sess_error(s, "invalid_request_error", "item_not_found", m, "item_id", ev->event_id);
        return;
    }
    proto_item v = conv_view(it);
    sess_send(s, proto_ev_item_retrieved(s->d, &v));
}

/* conversation.item.delete: the item leaves the conversation (and the
 * prompts that follow). The assistant item of the response in progress
 * cannot be deleted. */
static void on_item_delete(session *s, proto_client_event *ev)
{
    item *it = conv_find(&s->conv, ev->item_id);
    char m[200];
    if (it == NULL) {
        snprintf(m, sizeof m, "item '%.64s' does not exist in the conversation", ev->item_id);
        sess_error(s, "invalid_request_error", "item_not_found", m, "item_id", ev->event_id);
        return;
    }
    if (s->resp && s->resp->it == it) {
        sess_error(s, "invalid_request_error", "invalid_value",
                   "the item of the response in progress cannot be deleted; cancel the response first", "item_id",
                   ev->event_id);
        return;
    }
    for (int i = 0; s->resp && i < s->resp->n_calls; i++)
        if (s->resp->calls[i].it == it) {
            sess_error(s, "invalid_request_error", "invalid_value",
                       "the item of the response in progress cannot be deleted; cancel the response first",
                       "item_id", ev->event_id);
            return;
        }
    for (turn *t = s->in.turns; t; t = t->next)
        if (strcmp(t->item_id, it->id) == 0) {
            sess_error(s, "invalid_request_error", "invalid_value",
                       "the item is still being transcribed and cannot be deleted yet", "item_id", ev->event_id);
            return;
        }
    char id[40];
    snprintf(id, sizeof id, "%s", it->id);
    conv_remove(&s->conv, it);
    sess_send(s, proto_ev_item_deleted(s->d, id));
    persist_save(s);
}

/* Is the item still being made (the response in progress, a turn being
 * transcribed)? */
static int item_busy(const session *s, const item *it)
{
    if (s->resp) {
        if (s->resp->it == it) return 1;
        for (int i = 0; i < s->resp->n_calls; i++)
            if (s->resp->calls[i].it == it) return 1;
    }
    for (const turn *t = s->in.turns; t; t = t->next)
        if (strcmp(t->item_id, it->id) == 0) return 1;
    return 0;
}

void sess_trim_conversation(session *s)
{
    const settings *st = &s->a->s;
    if (s->conv.n <= (size_t)st->max_conversation_items && s->conv.bytes <= (size_t)st->max_conversation_bytes)
        return;
    int dropped = 0;
    item *it = s->conv.head;
    while (it && (s->conv.n > (size_t)st->max_conversation_items ||
                  s->conv.bytes > (size_t)st->max_conversation_bytes)) {
        item *next = it->next;
        if (!item_busy(s, it)) {
            char id[40];
            snprintf(id, sizeof id, "%s", it->id);
            conv_remove(&s->conv, it);
            sess_send(s, proto_ev_item_deleted(s->d, id));
            dropped++;
        }
        it = next;
    }
    if (dropped) {
        char n[16];
        snprintf(n, sizeof n, "%d", dropped);
        log_info("conversation trimmed: oldest items dropped", "session_id", s->id, "items", n);
        persist_save(s);
    }
}

/* Audio the client sent ahead of real time: past [session]
 * max_audio_ahead, its socket is read at real time only. */
static void pace_audio(session *s, size_t samples)
{
    if (s->cfg.input_rate <= 0 || samples == 0) return;
    uint64_t now = sess_now_ns();
    uint64_t drained = s->ahead_t_ns ? now - s->ahead_t_ns : 0;
    s->ahead_t_ns = now;
    s->ahead_ns = s->ahead_ns > drained ? s->ahead_ns - drained : 0;
    s->ahead_ns += (uint64_t)samples * 1000000000ull / (uint64_t)s->cfg.input_rate;
    uint64_t max = (uint64_t)s->a->s.max_audio_ahead_ms * 1000000ull;
    if (s->ahead_ns > max) s->tp->input_hold(s->conn, (uint32_t)((s->ahead_ns - max) / 1000000ull + 1));
}

static void message_task(session *s, void *arg)
{
    msg_arg *m = arg;
    proto_client_event ev;
    proto_error err;
    if (s->closed || atomic_load(&s->abandoned)) goto out;
    s->t_last_msg_ns = sess_now_ns();
    /* One append may carry at most MAX_APPEND_SECONDS of audio at the
     * session's input rate. */
    size_t max_samples = (size_t)s->cfg.input_rate * MAX_APPEND_SECONDS;
    if (proto_parse(m->text, m->len, s->d, max_samples, &ev, &err) != 0) {
        sess_error(s, err.type[0] ? err.type : "invalid_request_error", err.code, err.message,
                   err.param[0] ? err.param : NULL, err.event_id[0] ? err.event_id : NULL);
        goto out;
    }
    /* A speculative reply answers the conversation as it was: any client
     * event but audio may change that, and must find no reply in progress. */
    if (ev.type != PC_AUDIO_APPEND && respond_held(s)) respond_discard(s);
    switch (ev.type) {
    case PC_SESSION_UPDATE: on_session_update(s, &ev); break;
    case PC_AUDIO_APPEND:
        input_append(s, ev.pcm, ev.samples);
        pace_audio(s, ev.samples);
        break;
    case PC_AUDIO_COMMIT: input_commit(s, ev.event_id); break;
    case PC_AUDIO_CLEAR:
        input_clear(s);
        sess_send(s, proto_ev_audio_cleared(s->d));
        break;
    case PC_ITEM_CREATE: on_item_create(s, &ev); break;
    case PC_RESPONSE_CREATE: on_response_create(s, &ev); break;
    case PC_RESPONSE_CANCEL: on_response_cancel(s, &ev); break;
    case PC_OUTPUT_AUDIO_CLEAR: on_output_audio_clear(s, &ev); break;
    case PC_ITEM_TRUNCATE: on_item_truncate(s, &ev); break;
    case PC_ITEM_RETRIEVE: on_item_retrieve(s, &ev); break;
    case PC_ITEM_DELETE: on_item_delete(s, &ev); break;
    }
    proto_client_event_free(&ev);
    sess_trim_conversation(s);
out:
    msg_done(s, m);
    free(m->text);
    free(m);
}

void session_abandon(session *s) { atomic_store(&s->abandoned, 1); }

/*
 * Audio appends run right on the transport's thread when the session's strand
 * is idle: an append is a decode, a resample and VAD over a chunk (a few
 * µs), and handing each one to a worker cost several times that in
 * wake-ups and lock traffic (most of the host's CPU per chunk). The session
 * strand never calls a plugin (audio for the STT provider is posted to its
 * stream's strand), so nothing here can block that thread. Other
 * events go to the pool as before.
 */
#define INLINE_MAX_BYTES 65536

typedef struct inline_arg {
    session *s;
    msg_arg *m;
} inline_arg;

static void inline_task(void *p)
{
    inline_arg *ia = p;
    message_task(ia->s, ia->m);
}

/* An append, by a look at its start (the parse decides for real). */
static int looks_like_append(const char *text, size_t len)
{
    static const char key[] = "\"input_audio_buffer.append\"";
    size_t n = len < 160 ? len : 160;
    return len <= INLINE_MAX_BYTES && memmem(text, n, key, sizeof key - 1) != NULL;
}

void session_on_message(session *s, char *text, size_t len)
{
    msg_arg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        s->tp->input_done(s->conn, len);
        free(text);
        return;
    }
    m->text = text;
    m->len = len;
    if (looks_like_append(text, len)) {
        inline_arg ia = {s, m};
        session_ref(s);
        int ran = strand_try_run(s->st, inline_task, &ia);
        session_unref(s);
        if (ran) return;
    }
    if (sess_post(s, message_task, m) != 0) {
        s->tp->input_done(s->conn, len);
        free(text);
        free(m);
    }
}

/* ------------------------------------------------------------ control connections */

void session_on_control_message(session *s, const transport_ops *tp, void *conn, char *text, size_t len)
{
    msg_arg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        tp->input_done(conn, len);
        free(text);
        return;
    }
    m->text = text;
    m->len = len;
    m->tp = tp;
    m->conn = conn;
    tp->ref(conn); /* until the message is dealt with */
    if (sess_post(s, message_task, m) != 0) {
        msg_done(s, m);
        free(text);
        free(m);
    }
}

typedef struct side_arg {
    const transport_ops *tp;
    void *conn;
} side_arg;

static void attach_task(session *s, void *arg)
{
    side_arg *a = arg;
    if (s->closed || s->n_side >= SESSION_MAX_CONTROL) {
        a->tp->close(a->conn, s->closed ? 1000 : 1008,
                     s->closed ? "the call has ended" : "too many control connections for this call");
        a->tp->unref(a->conn);
        free(a);
        return;
    }
    s->side[s->n_side].tp = a->tp;
    s->side[s->n_side].conn = a->conn;
    s->n_side++;
    free(a);
    /* What the call's client got first: the session as it is now. */
    char *ev = proto_ev_session(s->d, 0, &s->cfg);
    if (ev) s->side[s->n_side - 1].tp->send_event(s->side[s->n_side - 1].conn, ev);
    log_info("control connection attached", "session_id", s->id);
}

void session_attach(session *s, const transport_ops *tp, void *conn)
{
    side_arg *a = malloc(sizeof *a);
    if (a == NULL) {
        tp->close(conn, 1011, "out of memory");
        return;
    }
    a->tp = tp;
    a->conn = conn;
    tp->ref(conn);
    if (sess_post(s, attach_task, a) != 0) {
        tp->close(conn, 1011, "out of memory");
        tp->unref(conn);
        free(a);
    }
}

static void detach_task(session *s, void *arg)
{
    for (int i = 0; i < s->n_side; i++) {
        if (s->side[i].conn != arg) continue;
        const transport_ops *tp = s->side[i].tp;
        s->side[i] = s->side[--s->n_side];
        tp->unref(arg);
        return;
    }
}

void session_detach(session *s, void *conn)
{
    /* conn stays referenced by the list until the task lets it go. */
    if (sess_post(s, detach_task, conn) != 0) log_warn("a control connection could not be detached");
}

static void mirror_task(session *s, void *arg)
{
    char *json = arg;
    if (!s->closed)
        for (int i = 0; i < s->n_side; i++) {
            char *copy = strdup(json);
            if (copy) s->side[i].tp->send_event(s->side[i].conn, copy);
        }
    free(json);
}

void session_mirror(session *s, const char *json)
{
    char *copy = strdup(json);
    if (copy && sess_post(s, mirror_task, copy) != 0) free(copy);
}

/* The session ended: its control connections are closed and let go. */
static void close_controls(session *s)
{
    while (s->n_side > 0) {
        s->n_side--;
        s->side[s->n_side].tp->close(s->side[s->n_side].conn, 1000, "the call has ended");
        s->side[s->n_side].tp->unref(s->side[s->n_side].conn);
    }
}

typedef struct audio_arg {
    int rate;
    size_t n;
    int16_t pcm[];
} audio_arg;

static void audio_task(session *s, void *arg)
{
    audio_arg *aa = arg;
    if (s->closed || atomic_load(&s->abandoned)) goto out;
    s->t_last_msg_ns = sess_now_ns();
    int want = s->cfg.input_rate;
    if (want <= 0 || aa->rate == want) {
        input_append(s, aa->pcm, aa->n);
        goto out;
    }
    if (s->track_rs == NULL || resampler_in_rate(s->track_rs) != aa->rate || resampler_out_rate(s->track_rs) != want) {
        resampler_free(s->track_rs);
        s->track_rs = resampler_new(aa->rate, want, 3);
        if (s->track_rs == NULL) goto out;
    }
    size_t cap = resampler_out_capacity(s->track_rs, aa->n);
    int16_t *tmp = malloc(cap * sizeof *tmp);
    if (tmp) {
        size_t got = resampler_process(s->track_rs, aa->pcm, aa->n, tmp, cap);
        if (got) input_append(s, tmp, got);
        free(tmp);
    }
out:
    free(aa);
}

void session_on_audio(session *s, const int16_t *pcm, size_t n, int rate)
{
    if (n == 0 || rate <= 0 || atomic_load(&s->abandoned)) return;
    audio_arg *aa = malloc(sizeof *aa + n * sizeof *pcm);
    if (aa == NULL) return;
    aa->rate = rate;
    aa->n = n;
    memcpy(aa->pcm, pcm, n * sizeof *pcm);
    if (sess_post(s, audio_task, aa) != 0) free(aa);
}

static void binary_task(session *s, void *arg)
{
    (void)arg;
    s->t_last_msg_ns = sess_now_ns();
    sess_error(s, "invalid_request_error", "invalid_message",
               "binary WebSocket messages are not supported: send JSON text events", NULL, NULL);
}

void session_on_binary(session *s) { sess_post(s, binary_task, NULL); }
