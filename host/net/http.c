/*
 * HTTP routes and HTTP metrics on libmicrohttpd.
 *
 * libmicrohttpd calls the access handler at least twice per request; we
 * answer on the second call (after the headers, with any body drained), as
 * answering on the first makes it close every keep-alive connection.
 */
#include "config.h"

#include "net/http.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/acl.h"
#include "net/auth.h"
#include "plugin/gate.h"
#include "plugin/health.h"
#include "plugin/services.h"
#include "net/client_limits.h"
#include "net/keepalive.h"
#include "net/webrtc.h"
#include "base/log.h"
#include "metrics.h"
#include "session/protocol.h"
#include "recording/recording.h"
#include "pipeline/stage.h"

/* ------------------------------------------------------------ labels */

enum { R_HEALTH, R_READY, R_METRICS, R_V1_HEALTH, R_REALTIME, R_CLIENT_SECRETS, R_CALLS, R_SESSIONS, R_ROOT,
       R_STATIC, R_CALL, R_CALL_HANGUP, R_UNMATCHED, R_COUNT };
static const char *const route_label[R_COUNT] = {"/health", "/ready", "/metrics", "/v1/health",
                                                 "/v1/realtime", "/v1/realtime/client_secrets",
                                                 "/v1/realtime/calls", "/v1/realtime/sessions", "/", "/{file}",
                                                 "/v1/realtime/calls/{call_id}",
                                                 "/v1/realtime/calls/{call_id}/hangup", "unmatched"};
#define HANGUP_SUFFIX "/hangup"
#define CALLS_PREFIX "/v1/realtime/calls/"


enum { M_GET, M_HEAD, M_POST, M_PUT, M_DELETE, M_PATCH, M_OPTIONS, M_OTHER, M_COUNT };
static const char *const method_label[M_COUNT] = {"GET", "HEAD", "POST", "PUT",
                                                  "DELETE", "PATCH", "OPTIONS", "OTHER"};

/* "/name.ext" with a safe file name: a file of the demo page. */
static int static_name(const char *url, size_t n)
{
    if (n < 2 || n > 64 || url[0] != '/' || url[1] == '.') return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = url[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_'))
            return 0;
    }
    return memchr(url + 1, '.', n - 1) != NULL;
}

static int route_of(const char *url)
{
    if (url == NULL) return R_UNMATCHED;
    size_t n = strcspn(url, "?#");
    for (int r = 0; r < R_STATIC; r++) {
        if (strlen(route_label[r]) == n && strncmp(url, route_label[r], n) == 0) return r;
    }
    if (static_name(url, n)) return R_STATIC;
    size_t pl = strlen(CALLS_PREFIX), hl = strlen(HANGUP_SUFFIX);
    if (n > pl && n < pl + 48 && strncmp(url, CALLS_PREFIX, pl) == 0 && memchr(url + pl, '/', n - pl) == NULL)
        return R_CALL;
    /* .../calls/{call_id}/hangup */
    if (n > pl + hl && n < pl + 48 + hl && strncmp(url, CALLS_PREFIX, pl) == 0 &&
        strncmp(url + n - hl, HANGUP_SUFFIX, hl) == 0 && memchr(url + pl, '/', n - pl - hl) == NULL)
        return R_CALL_HANGUP;
    return R_UNMATCHED;
}

static int method_of(const char *m)
{
    if (m == NULL) return M_OTHER;
    for (int i = 0; i < M_OTHER; i++)
        if (strcmp(m, method_label[i]) == 0) return i;
    return M_OTHER;
}

/* ------------------------------------------------------------ metrics */

static metrics_family *f_requests, *f_duration, *f_active, *f_errors, *f_timeouts;
static metrics_series *s_active[R_COUNT];

/* Series of one (method, route, status) triple, resolved on first use. The
 * cache is append-only: a slot is published by storing `code` last. */
#define SLOTS 24
typedef struct slot {
    metrics_series *requests, *duration, *errors;
    atomic_int code; /* 0: empty */
} slot;
static slot g_slots[M_COUNT][R_COUNT][SLOTS];
static pthread_mutex_t g_slot_lock = PTHREAD_MUTEX_INITIALIZER;

int http_metrics_init(metrics_registry *reg)
{
    static const char *const l_req[] = {"method", "route", "status_code"};
    static const char *const l_act[] = {"route"};
    static const char *const l_err[] = {"method", "route", "error_type"};
    static const char *const l_to[] = {"method", "route"};
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    f_requests = metrics_counter_family(reg, "http_requests_total", "Total HTTP requests received.", 3, l_req);
    f_duration = metrics_histogram_family(reg, "http_request_duration_seconds",
                                          "HTTP request duration from receipt to response.", 3, l_req,
                                          buckets, sizeof buckets / sizeof buckets[0]);
    f_active = metrics_gauge_family(reg, "http_active_connections",
                                    "HTTP requests being served right now (including open WebSocket sessions).",
                                    1, l_act);
    f_errors = metrics_counter_family(reg, "http_errors_total",
                                      "HTTP errors: error_type is the status code of 4xx/5xx answers (a 503 from /ready is a readiness state, not an error), aborted, or tls_on_plain_port (a TLS handshake reached the plain port).",
                                      3, l_err);
    f_timeouts = metrics_counter_family(reg, "http_timeout_total",
                                        "HTTP requests that timed out before completion.", 2, l_to);
    if (!f_requests || !f_duration || !f_active || !f_errors || !f_timeouts) return -1;
    for (int r = 0; r < R_COUNT; r++) {
        const char *v[] = {route_label[r]};
        s_active[r] = metrics_series_get(f_active, v);
        if (s_active[r] == NULL) return -1;
    }
    return 0;
}

static void metrics_release_all(void)
{
    for (int r = 0; r < R_COUNT; r++) {
        metrics_series_release(s_active[r]);
        s_active[r] = NULL;
    }
    for (int m = 0; m < M_COUNT; m++)
        for (int r = 0; r < R_COUNT; r++)
            for (int i = 0; i < SLOTS; i++) {
                slot *s = &g_slots[m][r][i];
                if (atomic_load(&s->code) == 0) continue;
                metrics_series_release(s->requests);
                metrics_series_release(s->duration);
                metrics_series_release(s->errors);
                memset(s, 0, sizeof *s);
            }
}

/* A readiness probe answering 503 reports a state (starting, draining, store
 * down, full), not a failed request: counting it as an error would raise the
 * 5xx-rate alert at every start-up and drain. It stays in http_requests_total
 * with its status code. */
static int is_error(int r, int code)
{
    return code >= 400 && !(r == R_READY && code == 503);
}

static slot *slot_for(int m, int r, int code)
{
    slot *row = g_slots[m][r];
    for (int i = 0; i < SLOTS; i++) {
        int c = atomic_load_explicit(&row[i].code, memory_order_acquire);
        if (c == code) return &row[i];
        if (c == 0) break;
    }
    slot *found = NULL;
    pthread_mutex_lock(&g_slot_lock);
    for (int i = 0; i < SLOTS; i++) {
        int c = atomic_load_explicit(&row[i].code, memory_order_relaxed);
        if (c == code) {
            found = &row[i];
            break;
        }
        if (c != 0) continue;
        char sc[16];
        snprintf(sc, sizeof sc, "%d", code);
        const char *lv[] = {method_label[m], route_label[r], sc};
        row[i].requests = metrics_series_get(f_requests, lv);
        row[i].duration = metrics_series_get(f_duration, lv);
        row[i].errors = is_error(r, code) ? metrics_series_get(f_errors, lv) : NULL;
        atomic_store_explicit(&row[i].code, code, memory_order_release);
        found = &row[i];
        break;
    }
    pthread_mutex_unlock(&g_slot_lock);
    return found; /* NULL only when a row holds SLOTS distinct codes */
}

static void count_request(int m, int r, int code, uint64_t ns)
{
    slot *s = slot_for(m, r, code);
    if (s) {
        if (s->requests) metrics_counter_inc(s->requests);
        if (s->duration) metrics_histogram_observe_ns(s->duration, ns);
        if (s->errors) metrics_counter_inc(s->errors);
        return;
    }
    /* A row full of distinct codes: count uncached (rare by construction). */
    char sc[16];
    snprintf(sc, sizeof sc, "%d", code);
    const char *lv[] = {method_label[m], route_label[r], sc};
    metrics_series *x = metrics_series_get(f_requests, lv);
    metrics_counter_inc(x);
    metrics_series_release(x);
    x = metrics_series_get(f_duration, lv);
    metrics_histogram_observe_ns(x, ns);
    metrics_series_release(x);
    if (is_error(r, code)) {
        x = metrics_series_get(f_errors, lv);
        metrics_counter_inc(x);
        metrics_series_release(x);
    }
}

static void count_uncached(metrics_family *f, const char *const *lv)
{
    metrics_series *x = metrics_series_get(f, lv);
    if (x) {
        metrics_counter_inc(x);
        metrics_series_release(x);
    }
}

/* ------------------------------------------------------------ requests */

static struct MHD_Daemon *g_daemon;
static app *g_app;

/* Connections libmicrohttpd may hold; near it, idle kept-alive ones give
 * way to new ones (keepalive.h). */
#define HTTP_MAX_CONNECTIONS 10000

/* Largest request body taken (POST /v1/realtime/client_secrets); larger
 * ones are drained and answered 413. */
#define BODY_MAX (256 * 1024)

typedef struct req {
    uint64_t t0;
    int method, route;
    int status; /* 0 until a response is queued */
    char *body; /* the request body, for routes that read one */
    size_t len, cap;
    int too_large;
    const char *location; /* a Location header for the answer, or NULL */
} req;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum MHD_Result respond(struct MHD_Connection *c, req *rq, int status,
                               const char *ctype, char *body, size_t len, int must_free)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        if (must_free) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, "Allow", rq->route == R_CLIENT_SECRETS || rq->route == R_CALLS ||
                                                       rq->route == R_SESSIONS || rq->route == R_CALL_HANGUP ? "POST"
                                               : rq->route == R_CALL ? "DELETE"
                                               : rq->route == R_REALTIME ? "GET, POST" : "GET, HEAD");
    if (rq->location) MHD_add_response_header(resp, "Location", rq->location);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"voxray\"");
    if (status == 429) MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 426) {
        MHD_add_response_header(resp, "Upgrade", "websocket");
        MHD_add_response_header(resp, "Connection", "Upgrade");
    }
    if (status == 421) MHD_add_response_header(resp, "Connection", "close");
    if (rq->route != R_METRICS) MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) rq->status = status;
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, req *rq, int status, const char *text)
{
    return respond(c, rq, status, "text/plain; charset=utf-8", (char *)text, strlen(text), 0);
}

static enum MHD_Result respond_json(struct MHD_Connection *c, req *rq, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL) return respond_text(c, rq, 500, "internal error\n");
    size_t n = strlen(s);
    /* json_dumps memory comes from malloc by default; MHD frees with free(). */
    char *body = realloc(s, n + 2);
    if (body == NULL) {
        free(s);
        return MHD_NO;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    return respond(c, rq, status, "application/json", body, n + 1, 1);
}

/* An error as the OpenAI API shapes it:
 * {"error":{"message","type","code","param"}}. */
static enum MHD_Result respond_error(struct MHD_Connection *c, req *rq, int status, const char *type,
                                     const char *code, const char *param, const char *message)
{
    json_t *o = json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", message, "type", type, "code", code,
                          "param", param);
    if (o == NULL) return respond_text(c, rq, 500, "internal error\n");
    if (param == NULL) json_object_set_new(json_object_get(o, "error"), "param", json_null());
    return respond_json(c, rq, status, o);
}

/* The effective session a client secret opens, as session.created will show
 * it: the server's defaults with the requested configuration merged in.
 * requested may be NULL. Returns a new reference, or NULL with the reason
 * in e (an invalid configuration) or e->code "" (out of memory). */
static json_t *effective_session(const char *requested, proto_dialect d, proto_error *e)
{
    proto_session cfg;
    proto_client_event ev;
    json_t *out = NULL, *ev_json;
    char *text = NULL;

    memset(e, 0, sizeof *e);
    memset(&ev, 0, sizeof ev);
    proto_session_defaults(&cfg, d);
    cfg.instructions = settings_live_instructions();
    cfg.voice = settings_live_voice();
    if (requested) {
        char *upd = NULL;
        int rc = asprintf(&upd, "{\"type\":\"session.update\",\"session\":%s}", requested);
        if (rc < 0) goto out;
        rc = proto_parse(upd, strlen(upd), d, 0, &ev, e);
        free(upd);
        if (rc != 0) goto out;
        /* A live session.update applies its valid members; a secret's
         * configuration is checked whole, like the API does. */
        if (ev.n_field_errors > 0) {
            *e = ev.field_errors[0];
            goto out;
        }
        if (proto_session_merge(&cfg, &ev.session) != 0) goto out;
    }
    if ((text = proto_ev_session(d, 0, &cfg)) == NULL) goto out;
    if ((ev_json = json_loads(text, 0, NULL)) != NULL) {
        out = json_incref(json_object_get(ev_json, "session"));
        json_decref(ev_json);
        if (out) json_object_del(out, "id"); /* sessions get their ids when they open */
    }
out:
    free(text);
    if (requested) proto_client_event_free(&ev);
    proto_session_clear(&cfg);
    return out;
}

/* The client's address for logs (behind a trusted proxy: the one it names). */
static void client_of(struct MHD_Connection *c, limits_client *cl)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    limits_identify(ci ? ci->client_addr : NULL, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For"),
                    cl);
}

/* POST /v1/realtime/client_secrets: mint an ephemeral key (auth.h) that
 * opens one session, with the session configuration of the request. The
 * body and the answer have the shapes of the OpenAI API.
 *
 * POST /v1/realtime/sessions (beta): the same, in the beta API's shapes:
 * the body is the session configuration itself (with an optional
 * client_secret.expires_after), the answer the session object with
 * client_secret {value, expires_at}. Either way the secret keeps its
 * configuration in the GA dialect; a session speaking beta gets it
 * restated (bound_update). */
static enum MHD_Result handle_client_secrets(struct MHD_Connection *c, req *rq, int beta)
{
    char cred[600], value[AUTH_SECRET_LEN + 1];
    json_t *body = NULL, *v, *eff = NULL, *out;
    json_error_t jerr;
    long long ttl = 600, expires_at = 0;
    char *requested = NULL;
    proto_error pe;
    enum MHD_Result ret;

    if (auth_enabled()) {
        const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        auth_result ar = auth_credential(authz, NULL, cred, sizeof cred) ? auth_check_key(cred) : AUTH_MISSING;
        explicit_bzero(cred, sizeof cred);
        if (ar != AUTH_OK) {
            limits_client cl;
            client_of(c, &cl);
            auth_refused(ar, route_label[R_CLIENT_SECRETS], cl.text);
            return respond_error(c, rq, 401, "invalid_request_error", "invalid_api_key", NULL,
                                 ar == AUTH_MISSING ? "missing API key: send Authorization: Bearer KEY"
                                                    : "invalid API key (client secrets cannot mint client secrets)");
        }
    }
    if (rq->too_large)
        return respond_error(c, rq, 413, "invalid_request_error", "request_too_large", NULL,
                             "the request body is larger than 256 KiB");
    if (rq->len > 0) {
        body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
        if (body == NULL || !json_is_object(body)) {
            char m[300];
            snprintf(m, sizeof m, "the body is not a JSON object%s%s", body ? "" : ": ", body ? "" : jerr.text);
            json_decref(body);
            return respond_error(c, rq, 400, "invalid_request_error", "invalid_json", NULL, m);
        }
    }
    if (beta && body) {
        /* The beta body is the session; its client_secret member holds
         * expires_after. */
        json_t *cs = json_incref(json_object_get(body, "client_secret"));
        json_object_del(body, "client_secret");
        json_t *sess = body;
        body = json_pack("{s:o}", "session", sess);
        if (body && cs && json_is_object(cs) && json_object_get(cs, "expires_after"))
            json_object_set(body, "expires_after", json_object_get(cs, "expires_after"));
        json_decref(cs);
        if (body == NULL) return respond_text(c, rq, 500, "internal error\n");
    }
    if (body && (v = json_object_get(body, "expires_after")) != NULL && !json_is_null(v)) {
        json_t *anchor = json_is_object(v) ? json_object_get(v, "anchor") : NULL;
        json_t *secs = json_is_object(v) ? json_object_get(v, "seconds") : NULL;
        if (!json_is_object(v)) {
            json_decref(body);
            return respond_error(c, rq, 400, "invalid_request_error", "invalid_type", "expires_after",
                                 "expires_after must be an object");
        }
        if (anchor && !json_is_null(anchor) &&
            (!json_is_string(anchor) || strcmp(json_string_value(anchor), "created_at") != 0)) {
            json_decref(body);
            return respond_error(c, rq, 400, "invalid_request_error", "invalid_value", "expires_after.anchor",
                                 "expires_after.anchor must be 'created_at'");
        }
        if (secs && !json_is_null(secs)) {
            if (!json_is_integer(secs) || json_integer_value(secs) < 10 || json_integer_value(secs) > 7200) {
                json_decref(body);
                return respond_error(c, rq, 400, "invalid_request_error", "invalid_value", "expires_after.seconds",
                                     "expires_after.seconds must be an integer from 10 to 7200");
            }
            ttl = (long long)json_integer_value(secs);
        }
    }
    if (ttl > auth_max_ttl_s()) ttl = auth_max_ttl_s();
    if (body && (v = json_object_get(body, "session")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            json_decref(body);
            return respond_error(c, rq, 400, "invalid_request_error", "invalid_type", "session",
                                 "session must be an object");
        }
        requested = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (requested == NULL) {
            json_decref(body);
            return respond_text(c, rq, 500, "internal error\n");
        }
    }
    json_decref(body);
    eff = effective_session(requested, beta ? PROTO_BETA : PROTO_GA, &pe);
    if (eff == NULL) {
        free(requested);
        if (pe.code[0] == '\0') return respond_text(c, rq, 500, "internal error\n");
        /* The beta body is the session: its members are named from the top. */
        const char *param = beta && strncmp(pe.param, "session.", 8) == 0 ? pe.param + 8 : pe.param;
        return respond_error(c, rq, 400, pe.type[0] ? pe.type : "invalid_request_error", pe.code,
                             *param ? param : NULL, pe.message);
    }
    if (beta && requested) {
        char *ga = proto_session_restate(requested, PROTO_BETA, PROTO_GA, &pe);
        free(requested);
        if ((requested = ga) == NULL) {
            json_decref(eff);
            return respond_text(c, rq, 500, "internal error\n");
        }
    }
    int rc = auth_mint(ttl, requested, value, sizeof value, &expires_at);
    free(requested);
    if (rc == -1) {
        json_decref(eff);
        limits_count("client_secrets");
        return respond_error(c, rq, 429, "invalid_request_error", "rate_limit_exceeded", NULL,
                             "too many client secrets outstanding ([auth] max_client_secrets); use or let some expire");
    }
    if (rc != 0) {
        json_decref(eff);
        return respond_text(c, rq, 500, "internal error\n");
    }
    if (beta) {
        out = eff;
        if (json_object_set_new(out, "client_secret", json_pack("{s:s,s:I}", "value", value, "expires_at",
                                                                (json_int_t)expires_at)) != 0) {
            json_decref(out);
            out = NULL;
        }
    } else {
        out = json_pack("{s:s,s:I,s:o}", "value", value, "expires_at", (json_int_t)expires_at, "session", eff);
    }
    explicit_bzero(value, sizeof value);
    if (out == NULL) return respond_text(c, rq, 500, "internal error\n");
    ret = respond_json(c, rq, 200, out);
    return ret;
}

static enum MHD_Result handle_ready(struct MHD_Connection *c, req *rq)
{
    char detail[256];
    const char *failing = NULL;
    json_t *o = json_object();
    json_t *checks = json_object();
    int phase = atomic_load(&g_app->phase);
    int store_ok = health_store_ok(detail, sizeof detail);
    int sessions = atomic_load(&g_app->active_sessions);
    int max = settings_live_max_sessions();
    svc_gen *sg = svc_acquire();
    const plug_instance *store = svc_store(sg);

    json_object_set_new(checks, "session_store", json_pack("{s:s,s:s,s:s}", "status", store_ok ? "ok" : "failing",
                                                        "store", store ? store->name : "", "detail", detail));
    svc_release(sg);
    json_object_set_new(checks, "sessions", json_pack("{s:s,s:i,s:i}", "status",
                                                   sessions < max ? "ok" : "failing",
                                                   "active", sessions, "max", max));
    if (phase == APP_STARTING) failing = "starting";
    else if (phase == APP_DRAINING) failing = "draining";
    else if (!store_ok) failing = "session_store";
    else if (sessions >= max) failing = "max_sessions";

    json_object_set_new(o, "status", json_string(failing ? "unavailable" : "ok"));
    if (failing) json_object_set_new(o, "failing", json_string(failing));
    json_object_set_new(o, "checks", checks);
    return respond_json(c, rq, failing ? 503 : 200, o);
}

static enum MHD_Result handle_v1_health(struct MHD_Connection *c, req *rq)
{
    /* The store and sink in service (a reload may replace them). */
    svc_gen *sg = svc_acquire();
    const plug_set *ps = svc_plugins(sg);
    if (ps == NULL) return respond_text(c, rq, 503, "shutting down\n");
    /* Stage providers: the generation new sessions start with. */
    stage_gen *g = stage_gen_acquire();
    const plug_set *sp = stage_gen_plugins(g);
    char detail[256];
    json_t *o = json_object();
    json_t *services = json_object();
    json_t *providers = json_object();
    int all_ok = 1;

    for (int st = 0; st < STAGE_COUNT; st++) {
        json_t *list = json_array();
        int any = 0;
        int n = sp ? sp->n_stage[st] : 0;
        for (int i = 0; i < n; i++) {
            plug_instance *pi = sp->stage[st][i];
            int ok = health_instance_ok(pi, detail, sizeof detail);
            if (ok) ok = stage_provider_state(g, st, pi, detail, sizeof detail);
            any |= ok;
            json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s}", "name", pi->name, "plugin", pi->module,
                                                  "status", ok ? "available" : "unavailable", "detail", detail));
        }
        const char *state = n == 0 ? "unconfigured" : any ? "available" : "unavailable";
        if (!any) all_ok = 0;
        json_object_set_new(services, stage_name(st), json_string(state));
        json_object_set_new(providers, stage_name(st), list);
    }
    int store_ok = health_store_ok(detail, sizeof detail);
    if (!store_ok) all_ok = 0;
    json_object_set_new(services, "store", json_string(store_ok ? "available" : "unavailable"));
    json_object_set_new(providers, "store", json_pack("[{s:s,s:s,s:s,s:s}]", "name", ps->store->name, "plugin",
                                                      ps->store->module, "status",
                                                      store_ok ? "available" : "unavailable", "detail", detail));
    /* Recording: informational. A sink that is down does not stop calls
     * (recordings wait on local disk), so it changes neither ok nor /ready. */
    stage_gen_release(g);
    if (ps->sink) {
        int ok = health_instance_ok(ps->sink, detail, sizeof detail);
        int depth = 0, dead = 0;
        recording_counts(&depth, &dead);
        json_object_set_new(services, "recording", json_string(ok ? "available" : "unavailable"));
        json_object_set_new(providers, "recording",
                            json_pack("[{s:s,s:s,s:s,s:s,s:i,s:i}]", "name", ps->sink->name, "plugin",
                                      ps->sink->module, "status", ok ? "available" : "unavailable", "detail",
                                      detail, "queue_depth", depth, "dead_letter_jobs", dead));
    } else {
        json_object_set_new(services, "recording", json_string("disabled"));
    }
    svc_release(sg);
    json_object_set_new(o, "ok", json_boolean(all_ok));
    json_object_set_new(o, "services", services);
    json_object_set_new(o, "providers", providers);
    return respond_json(c, rq, 200, o);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c, req *rq)
{
    if (!atomic_load(&g_app->metrics_enabled)) return respond_text(c, rq, 404, "not found\n");
    acl *allow = atomic_load(&g_app->metrics_acl);
    if (allow) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci == NULL || !acl_match(allow, ci->client_addr))
            return respond_text(c, rq, 403, "forbidden\n");
    }
    char *out = NULL;
    size_t len = 0;
    stage_breakers_refresh();
    if (metrics_render(g_app->reg, &out, &len) != 0) return respond_text(c, rq, 500, "internal error\n");
    return respond(c, rq, 200, METRICS_CONTENT_TYPE, out, len, 1);
}

static const char *content_type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
        {".json", "application/json"}, {".wav", "audio/wav"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* The demo page and its files, from [server] web_root. */
static enum MHD_Result handle_static(struct MHD_Connection *c, req *rq, const char *url)
{
    char name[80], path[4200];
    size_t n = strcspn(url, "?#");
    if (rq->route == R_ROOT) snprintf(name, sizeof name, "index.html");
    else snprintf(name, sizeof name, "%.*s", (int)(n - 1), url + 1);
    snprintf(path, sizeof path, "%s/%s", g_app->s.web_root, name);
    /* Names hold no '/', so only the last component could lead elsewhere:
     * a symlink in web_root is never followed. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return respond_text(c, rq, 404, "not found\n");
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type_of(name));
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) rq->status = 200;
    return ret;
}


/* ------------------------------------------------------------ WebRTC calls */

/* The Authorization of a call request: an API key or a client secret (used
 * up here; its session configuration comes back in *bound, in the dialect
 * the call speaks). 0, or an answer already queued in *ret. */
static int call_auth(struct MHD_Connection *c, req *rq, int redeem, int beta, char **bound, enum MHD_Result *ret)
{
    char cred[600];
    if (!auth_enabled()) return 0;
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int found = auth_credential(authz, NULL, cred, sizeof cred);
    auth_result ar = !found ? AUTH_MISSING : redeem ? auth_redeem(cred, bound) : auth_check_key(cred);
    explicit_bzero(cred, sizeof cred);
    if (ar == AUTH_OK) {
        if (beta && bound && *bound) {
            proto_error pe;
            char *b = proto_session_restate(*bound, PROTO_GA, PROTO_BETA, &pe);
            free(*bound);
            *bound = b; /* (NULL: out of memory; the session opens with the defaults) */
        }
        return 0;
    }
    static const char *const why[] = {"", "missing API key: send Authorization: Bearer KEY", "invalid API key",
                                      "client secret expired", "client secret already used"};
    limits_client cl;
    client_of(c, &cl);
    auth_refused(ar, route_label[rq->route], cl.text);
    *ret = respond_error(c, rq, 401, "invalid_request_error", "invalid_api_key", NULL, why[ar]);
    return -1;
}

typedef struct form_field {
    char *data;
    size_t len;
    int too_large;
} form_field;

typedef struct form_fields {
    form_field sdp, session;
} form_fields;

static enum MHD_Result form_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                 const char *content_type, const char *transfer_encoding, const char *data,
                                 uint64_t off, size_t size)
{
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    (void)off;
    form_fields *ff = cls;
    form_field *f = strcmp(key, "sdp") == 0 ? &ff->sdp : strcmp(key, "session") == 0 ? &ff->session : NULL;
    if (f == NULL || size == 0) return MHD_YES;
    if (f->len + size > BODY_MAX) {
        f->too_large = 1;
        return MHD_YES;
    }
    char *nb = realloc(f->data, f->len + size + 1);
    if (nb == NULL) return MHD_NO;
    memcpy(nb + f->len, data, size);
    f->data = nb;
    f->len += size;
    f->data[f->len] = '\0';
    return MHD_YES;
}

/* POST /v1/realtime/calls: an SDP offer (application/sdp, or
 * multipart/form-data with sdp and an optional session JSON), answered 201
 * with the SDP answer and Location: /v1/realtime/calls/{call_id}. */
static enum MHD_Result handle_calls(struct MHD_Connection *c, req *rq, int beta)
{
    enum MHD_Result ret;
    char *bound = NULL, *update = NULL;
    form_fields ff;
    memset(&ff, 0, sizeof ff);
    if (!webrtc_enabled())
        return respond_error(c, rq, 404, "invalid_request_error", "webrtc_disabled", NULL,
                             "WebRTC calls are not enabled on this server ([webrtc] enabled)");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin && !limits_origin_allowed(origin))
        return respond_error(c, rq, 403, "invalid_request_error", "origin_not_allowed", NULL,
                             "this Origin may not open /v1/realtime/calls (see [server] allowed_origins)");
    int phase = atomic_load(&g_app->phase);
    if (phase != APP_RUNNING)
        return respond_error(c, rq, 503, "server_error", "unavailable", NULL,
                             phase == APP_DRAINING ? "server is draining" : "server is starting");
    if (rq->too_large)
        return respond_error(c, rq, 413, "invalid_request_error", "request_too_large", NULL,
                             "the request body is larger than 256 KiB");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *sdp = NULL;
    size_t sdp_len = 0;
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 16384, form_iter, &ff);
        if (pp == NULL || MHD_post_process(pp, rq->body ? rq->body : "", rq->len) != MHD_YES) {
            if (pp) MHD_destroy_post_processor(pp);
            ret = respond_error(c, rq, 400, "invalid_request_error", "invalid_body", NULL,
                                "the multipart/form-data body could not be read");
            goto out;
        }
        MHD_destroy_post_processor(pp);
        if (ff.sdp.too_large || ff.session.too_large) {
            ret = respond_error(c, rq, 413, "invalid_request_error", "request_too_large", NULL,
                                "a form field is larger than 256 KiB");
            goto out;
        }
        if (ff.sdp.data == NULL) {
            ret = respond_error(c, rq, 400, "invalid_request_error", "missing_required_parameter", "sdp",
                                "the form has no sdp field (the SDP offer)");
            goto out;
        }
        sdp = ff.sdp.data;
        sdp_len = ff.sdp.len;
        if (ff.session.data) {
            json_error_t jerr;
            json_t *o = json_loadb(ff.session.data, ff.session.len, JSON_REJECT_DUPLICATES, &jerr);
            int ok = o && json_is_object(o);
            char *compact = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(o);
            free(ff.session.data);
            ff.session.data = compact;
            ok = ok && compact;
            if (!ok) {
                ret = respond_error(c, rq, 400, "invalid_request_error", "invalid_json", "session",
                                    "the session field is not a JSON object");
                goto out;
            }
        }
    } else if (ctype && strncasecmp(ctype, "application/sdp", 15) == 0) {
        sdp = rq->body;
        sdp_len = rq->len;
    } else {
        ret = respond_error(c, rq, 415, "invalid_request_error", "unsupported_media_type", NULL,
                            "send the SDP offer as application/sdp, or multipart/form-data with an sdp field");
        goto out;
    }
    /* The credential after the checks that need none: a client secret is
     * used up only by an offer that is otherwise fine to take. */
    if (call_auth(c, rq, 1, beta, &bound, &ret) != 0) goto out;
    limits_client cl;
    client_of(c, &cl);
    limits_verdict lv = limits_admit(&cl);
    if (lv != LIMITS_OK) {
        ret = respond_error(c, rq, 429, "invalid_request_error", "rate_limit_exceeded", NULL,
                            lv == LIMITS_RATE ? "too many connections per second from this address"
                                              : "too many open sessions from this address");
        goto out;
    }
    /* The secret's configuration first, then the form's. */
    const char *sess = ff.session.data ? ff.session.data : bound;
    if (sess && asprintf(&update, "{\"type\":\"session.update\",\"session\":%s}", sess) < 0) update = NULL;
    if (bound && ff.session.data) {
        /* Both: the secret's applies first, the form's on top (one update
         * each, in order). */
        char *both = NULL;
        if (asprintf(&both, "{\"type\":\"session.update\",\"session\":%s}\n{\"type\":\"session.update\",\"session\":%s}",
                     bound, ff.session.data) >= 0) {
            free(update);
            update = both;
        }
    }
    /* ?session_id=: a client reconnecting resumes its session, as on the
     * WebSocket. */
    const char *resume = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "session_id");
    webrtc_answer ans;
    webrtc_offer(sdp, sdp_len, update, resume && *resume ? resume : NULL, beta, &cl, &ans);
    if (ans.status != 201) {
        ret = respond_error(c, rq, ans.status, ans.type, ans.code, NULL, ans.message);
        goto out;
    }
    char location[96];
    snprintf(location, sizeof location, "%s%s", CALLS_PREFIX, ans.call_id);
    rq->location = location;
    ret = respond(c, rq, 201, "application/sdp", ans.sdp, strlen(ans.sdp), 1);
    rq->location = NULL;
out:
    free(ff.sdp.data);
    free(ff.session.data);
    free(bound);
    free(update);
    return ret;
}

/* DELETE /v1/realtime/calls/{call_id}: hang up. */
static enum MHD_Result handle_call_delete(struct MHD_Connection *c, req *rq, const char *url)
{
    enum MHD_Result ret;
    if (call_auth(c, rq, 0, 0, NULL, &ret) != 0) return ret;
    char id[64];
    size_t n = strcspn(url + strlen(CALLS_PREFIX), "?#");
    if (rq->route == R_CALL_HANGUP) n -= strlen(HANGUP_SUFFIX);
    snprintf(id, sizeof id, "%.*s", (int)n, url + strlen(CALLS_PREFIX));
    if (webrtc_hangup(id) != 0)
        return respond_error(c, rq, 404, "invalid_request_error", "call_not_found", NULL, "no such call");
    /* POST .../hangup (the API's form) answers an empty object. */
    if (rq->route == R_CALL_HANGUP) return respond_json(c, rq, 200, json_object());
    return respond_json(c, rq, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "realtime.call", "deleted", 1));
}

/* Whether a header value, a comma-separated list, holds tok (any case). */
static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",");
        size_t e = n;
        while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e == tl && strncasecmp(v, tok, tl) == 0) return 1;
        v += n;
    }
    return 0;
}

static int is_websocket_upgrade(struct MHD_Connection *c)
{
    return has_token(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade"), "websocket") &&
           has_token(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection"), "upgrade");
}

static enum MHD_Result refuse_reused_upgrade(struct MHD_Connection *c, req *rq)
{
    static atomic_llong last_log;
    long long now = (long long)(now_ns() / 1000000000u), prev = atomic_load(&last_log);
    /* One line a minute at most: a misconfigured proxy would send many. */
    if ((prev == 0 || now - prev >= 60) && atomic_compare_exchange_strong(&last_log, &prev, now))
        log_warn("WebSocket upgrade on a kept-alive connection that already carried HTTP requests: answered 421 "
                 "and closed; an upgrade must be the first request of its connection (nginx: proxy "
                 "/v1/realtime through an upstream without keepalive, see conf/nginx/voxray.conf)");
    return respond_text(c, rq, 421,
                        "a WebSocket upgrade must be the first request on its connection: "
                        "retry on a new connection\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req *rq = *con_cls;
    if (rq == NULL) {
        keepalive_request_started(c);
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) return MHD_NO;
        rq->t0 = now_ns();
        rq->method = method_of(method);
        rq->route = route_of(url);
        metrics_gauge_add(s_active[rq->route], 1);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* only secrets and call offers read a body; others drain it */
        if ((rq->route == R_CLIENT_SECRETS || rq->route == R_SESSIONS || rq->route == R_CALLS ||
             rq->route == R_REALTIME) &&
            rq->method == M_POST && !rq->too_large) {
            if (rq->len + *upload_size > BODY_MAX) {
                rq->too_large = 1;
            } else {
                if (rq->len + *upload_size > rq->cap) {
                    size_t cap = rq->cap ? rq->cap : 4096;
                    while (cap < rq->len + *upload_size) cap *= 2;
                    char *nb = realloc(rq->body, cap);
                    if (nb == NULL) return MHD_NO;
                    rq->body = nb;
                    rq->cap = cap;
                }
                memcpy(rq->body + rq->len, upload_data, *upload_size);
                rq->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->route == R_UNMATCHED) return respond_text(c, rq, 404, "not found\n");
    if (rq->route == R_CLIENT_SECRETS || rq->route == R_SESSIONS) {
        if (rq->method != M_POST) return respond_text(c, rq, 405, "method not allowed\n");
        return handle_client_secrets(c, rq, rq->route == R_SESSIONS);
    }
    if (rq->route == R_CALLS) {
        if (rq->method != M_POST) return respond_text(c, rq, 405, "method not allowed\n");
        return handle_calls(c, rq, 0);
    }
    /* The beta API's WebRTC signalling: the offer to /v1/realtime itself;
     * the call speaks the beta event names. (GET is the WebSocket.) */
    if (rq->route == R_REALTIME && rq->method == M_POST) return handle_calls(c, rq, 1);
    if (rq->route == R_CALL) {
        if (rq->method != M_DELETE) return respond_text(c, rq, 405, "method not allowed\n");
        return handle_call_delete(c, rq, url);
    }
    if (rq->route == R_CALL_HANGUP) {
        if (rq->method != M_POST) return respond_text(c, rq, 405, "method not allowed\n");
        return handle_call_delete(c, rq, url);
    }
    if (rq->method != M_GET && rq->method != M_HEAD)
        return respond_text(c, rq, 405, "method not allowed\n");
    switch (rq->route) {
    case R_HEALTH: return respond_text(c, rq, 200, "ok\n");
    case R_READY: return handle_ready(c, rq);
    case R_METRICS: return handle_metrics(c, rq);
    case R_V1_HEALTH: return handle_v1_health(c, rq);
    case R_REALTIME:
        /* The front hands a connection to the WebSocket server by its first
         * request; an upgrade as a later request of a kept-alive connection
         * (a proxy's pooled upstream connection) reaches this server, and
         * the connection cannot change servers now: 421 tells the client to
         * retry on another connection (RFC 9110 15.5.20), and this one is
         * closed. */
        if (keepalive_requests(c) > 1 && is_websocket_upgrade(c)) return refuse_reused_upgrade(c, rq);
        /* Without a credential, say first that one is needed: a browser
         * page cannot see why its upgrade failed and asks here. */
        if (auth_enabled() && MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization") == NULL) {
            limits_client cl;
            client_of(c, &cl);
            auth_refused(AUTH_MISSING, route_label[R_REALTIME], cl.text);
            return respond_error(c, rq, 401, "invalid_request_error", "invalid_api_key", NULL,
                                 "missing API key: send Authorization: Bearer KEY or the subprotocol "
                                 "openai-insecure-api-key.KEY");
        }
        return respond_text(c, rq, 426, "this endpoint speaks WebSocket: send an Upgrade: websocket request\n");
    case R_ROOT:
    case R_STATIC: return handle_static(c, rq, url);
    default: return respond_text(c, rq, 404, "not found\n");
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    keepalive_request_done(c);
    req *rq = *con_cls;
    if (rq == NULL) return;
    *con_cls = NULL;
    metrics_gauge_add(s_active[rq->route], -1);
    if (rq->status) count_request(rq->method, rq->route, rq->status, now_ns() - rq->t0);
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) {
        const char *lv[] = {method_label[rq->method], route_label[rq->route]};
        count_uncached(f_timeouts, lv);
    } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->status == 0) {
        const char *lv[] = {method_label[rq->method], route_label[rq->route], "aborted"};
        count_uncached(f_errors, lv);
    }
    free(rq->body);
    free(rq);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t l = strlen(buf);
    while (l > 0 && buf[l - 1] == '\n') buf[--l] = '\0';
    log_debug("http server", "detail", buf);
}

/* A kept-alive connection closed because its next head did not arrive in
 * time: a request that timed out (its method and route were never read). */
static void on_head_timeout(void)
{
    const char *lv[] = {method_label[M_OTHER], route_label[R_UNMATCHED]};
    count_uncached(f_timeouts, lv);
}

int http_start(app *a, char *err, size_t errlen)
{
    g_app = a;
    unsigned flags = MHD_USE_NO_LISTEN_SOCKET | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned timeout_s = (unsigned)((a->s.idle_timeout_ms + 999) / 1000);
    if (keepalive_start(a->s.header_timeout_ms, HTTP_MAX_CONNECTIONS, on_head_timeout) != 0) {
        snprintf(err, errlen, "cannot start the HTTP keep-alive watcher thread");
        return -1;
    }
    g_daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->s.http_threads,
                                MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                MHD_OPTION_NOTIFY_CONNECTION, keepalive_notify, NULL,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                                MHD_OPTION_END);
    if (g_daemon == NULL) {
        keepalive_stop();
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
        return -1;
    }
    return 0;
}

int http_add_connection(void *user, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)user;
    /* On failure MHD closes the socket itself ("closed in any case"). */
    if (MHD_add_connection(g_daemon, fd, addr, len) != MHD_YES)
        log_warn("http server refused a connection");
    return 0;
}

void http_front_dropped(void *user, front_drop why, const char *method, const char *path)
{
    (void)user;
    int m = method_of(method), r = route_of(path);
    if (why == FRONT_DROP_TLS) { /* no HTTP request at all: an error, not a request */
        const char *lv[] = {method_label[m], route_label[r], "tls_on_plain_port"};
        count_uncached(f_errors, lv);
        return;
    }
    int code = why == FRONT_DROP_TIMEOUT ? 408 : why == FRONT_DROP_TOO_LARGE ? 431
             : why == FRONT_DROP_OVERLOAD ? 503 : why == FRONT_DROP_BAD_REQUEST ? 400
             : why == FRONT_DROP_PER_IP ? 429 : 0;
    if (code == 0) return; /* closed before a request existed */
    if (why == FRONT_DROP_PER_IP) limits_count("pending_per_ip");
    uint64_t ns = why == FRONT_DROP_TIMEOUT ? (uint64_t)g_app->s.header_timeout_ms * 1000000ull : 0;
    count_request(m, r, code, ns);
    if (why == FRONT_DROP_TIMEOUT) {
        const char *lv[] = {method_label[m], route_label[r]};
        count_uncached(f_timeouts, lv);
    }
}

void http_count_realtime(int status, uint64_t ns)
{
    count_request(M_GET, R_REALTIME, status, ns);
}

void http_count_realtime_timeout(void)
{
    if (f_timeouts == NULL) return;
    const char *lv[] = {method_label[M_GET], route_label[R_REALTIME]};
    count_uncached(f_timeouts, lv);
}

void http_realtime_active(int delta)
{
    if (s_active[R_REALTIME]) metrics_gauge_add(s_active[R_REALTIME], delta);
}

void http_stop(void)
{
    keepalive_stop();
    if (g_daemon) {
        MHD_stop_daemon(g_daemon);
        g_daemon = NULL;
    }
    metrics_release_all();
}
