/*
 * oai_client: configuration, error mapping and the curl multi driver shared
 * by the OpenAI-compatible plugins (see oai_client.h for the model).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"

/* Error bodies are read up to this size: enough for any JSON error, and a
 * misbehaving server cannot make us buffer megabytes of HTML. */
#define OAI_EBODY_MAX 8192
/* The driver re-checks its calls at least this often even when curl has no
 * timer due; cancel and close wake it at once anyway. */
#define OAI_POLL_MS 1000

enum { K_BUILT, K_QUEUED, K_RUNNING, K_ENDING, K_DETACHED };

struct oai_call {
    oai_client *c;
    const oai_call_ops *ops;
    void *ctx;
    CURL *easy;
    struct curl_slist *hdr;
    curl_mime *form;
    char *url;
    char *body;
    char *key; /* the key this request sends, to scrub it from messages */
    char errbuf[CURL_ERROR_SIZE];
    /* Driver thread only. */
    long status;
    char *ebody;
    size_t ebody_len;
    vx_error fail; /* what ops->body failed with */
    /* Canceled or closing: the write callback stops the transfer. Read on
     * the driver thread without the client lock. */
    atomic_int stop;
    /* Guarded by c->mu. */
    int state; /* K_* */
    int canceled, closing;
    int orphan; /* closed from the driver thread: the driver frees it */
    oai_call *prev, *next;
};

struct oai_client {
    const vx_host_api *api;
    vx_host *h;
    const oai_conf *cf;
    CURLM *multi;
    pthread_t thread;
    int has_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a call detached */
    oai_call *calls;   /* queued, running or ending calls */
    int stop;
    /* Health, guarded by mu. */
    unsigned long long n_calls, n_failed;
    char last_err[sizeof(((vx_error *)0)->msg)];
};

/* ---------------------------------------------------------------- config */

const char *oai_cfg(const vx_config *cfg, const vx_config_key *schema, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = schema; k && k->key; k++)
        if (strcmp(k->key, key) == 0 && k->def) return k->def;
    return "";
}

int oai_host_ok(const vx_host_api *host) {
    return host && host->abi_major == VX_ABI_MAJOR && VX_HOST_HAS(host, config_size) &&
           host->config_int && host->config_float && host->config_bool && host->config_duration_ms;
}

int oai_cfg_long(const vx_host_api *host, vx_host *h, const char *key, long *out) {
    int64_t v = 0;

    if (host->config_int(h, key, &v) != VX_OK || v < LONG_MIN || v > LONG_MAX) return -1;
    *out = (long)v;
    return 0;
}

int oai_cfg_ms(const vx_host_api *host, vx_host *h, const char *key, long *ms) {
    int64_t v = 0;

    if (host->config_duration_ms(h, key, &v) != VX_OK || v < 0 || v > 1000000000000LL) return -1;
    *ms = (long)v;
    return 0;
}

void oai_conf_free(oai_conf *cf) {
    free(cf->base_url);
    free(cf->api_key_env);
    free(cf->api_key);
    free(cf->model);
    cf->base_url = cf->api_key_env = cf->api_key = cf->model = NULL;
}

int oai_conf_load(oai_conf *cf, const char *plugin, const vx_host_api *host, vx_host *h,
                  const vx_config *cfg, const vx_config_key *schema, vx_error *err) {
    const char *url = oai_cfg(cfg, schema, "base_url");
    const char *bad = NULL;
    size_t n = strlen(url);

    memset(cf, 0, sizeof(*cf));
    cf->plugin = plugin;
    while (n && url[n - 1] == '/') n--; /* ".../v1/" and ".../v1" name the same root */
    if (n == 0) bad = "base_url";
    else if (oai_cfg_ms(host, h, "timeout", &cf->timeout_ms) != 0 || cf->timeout_ms <= 0)
        bad = "timeout";
    else if (oai_cfg_ms(host, h, "connect_timeout", &cf->connect_timeout_ms) != 0 ||
             cf->connect_timeout_ms <= 0)
        bad = "connect_timeout";
    if (bad) {
        oai_seterr(err, VX_EINVAL, 0, 0, "%s: bad value for %s: '%s'", plugin, bad,
                   oai_cfg(cfg, schema, bad));
        return VX_EINVAL;
    }
    cf->base_url = strndup(url, n);
    cf->api_key_env = strdup(oai_cfg(cfg, schema, "api_key_env"));
    cf->api_key = strdup(oai_cfg(cfg, schema, "api_key"));
    cf->model = strdup(oai_cfg(cfg, schema, "model"));
    if (!cf->base_url || !cf->api_key_env || !cf->api_key || !cf->model) {
        oai_conf_free(cf);
        oai_seterr(err, VX_ENOMEM, 0, 0, "%s: out of memory at init", plugin);
        return VX_ENOMEM;
    }
    return VX_OK;
}

/* The key a request sends now: the environment variable when it holds one,
 * else the configured literal; NULL when neither does. */
static const char *oai_key(const oai_conf *cf) {
    const char *k = *cf->api_key_env ? getenv(cf->api_key_env) : NULL;

    if (k && *k) return k;
    return *cf->api_key ? cf->api_key : NULL;
}

void oai_conf_describe(const oai_conf *cf, char *buf, size_t len) {
    const char *env = *cf->api_key_env ? getenv(cf->api_key_env) : NULL;
    char src[300];

    if (env && *env) snprintf(src, sizeof(src), "from $%s", cf->api_key_env);
    else if (*cf->api_key) snprintf(src, sizeof(src), "from api_key");
    else snprintf(src, sizeof(src), "none ($%s unset): no Authorization header", cf->api_key_env);
    snprintf(buf, len, "base_url=%s model=%s timeout=%ldms connect_timeout=%ldms key %s",
             cf->base_url, cf->model, cf->timeout_ms, cf->connect_timeout_ms, src);
}

/* ---------------------------------------------------------------- errors */

void oai_seterr(vx_error *err, int code, int retryable, int status, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

void oai_status_error(vx_error *err, long status) {
    err->upstream_status = (int)status;
    if (status == 429) err->code = VX_ERATELIMIT, err->retryable = 1;
    else if (status == 401 || status == 403) err->code = VX_EAUTH, err->retryable = 0;
    else if (status == 504) err->code = VX_ETIMEDOUT, err->retryable = 1;
    else if (status >= 500 && status <= 599) err->code = VX_EUNAVAIL, err->retryable = 1;
    else if (status >= 400 && status <= 499) err->code = VX_EINVAL, err->retryable = 0;
    else err->code = VX_EPROTO, err->retryable = 0; /* 1xx/3xx as a final answer */
}

const char *oai_error_message(const json_t *j) {
    const json_t *e = json_object_get(j, "error");
    const json_t *m;

    if (json_is_string(e)) return json_string_value(e); /* Ollama */
    if ((m = json_object_get(e, "message")) && json_is_string(m))
        return json_string_value(m); /* OpenAI, vLLM, llama.cpp */
    if ((m = json_object_get(j, "message")) && json_is_string(m))
        return json_string_value(m); /* older vLLM: {"object": "error", "message"} */
    if ((m = json_object_get(j, "detail")) && json_is_string(m))
        return json_string_value(m); /* FastAPI servers (speaches, Kokoro) */
    return NULL;
}

void oai_scrub(char *msg, const char *key) {
    size_t kl = key ? strlen(key) : 0, ml;
    char *p;

    if (kl < 4) return;
    while ((p = strstr(msg, key)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + kl, strlen(p + kl) + 1);
    }
    ml = strlen(msg);
    for (size_t l = kl - 1 < ml ? kl - 1 : ml; l >= 4; l--) {
        if (memcmp(msg + ml - l, key, l) == 0) {
            memcpy(msg + ml - l, "***", 4); /* with the NUL */
            break;
        }
    }
}

/* The failure a finished transfer amounts to. */
static void oai_curl_error(oai_call *k, CURLcode res, vx_error *err) {
    const char *plugin = k->c->cf->plugin;
    const char *what = k->errbuf[0] ? k->errbuf : curl_easy_strerror(res);
    int code = VX_EUNAVAIL, retry = 1;

    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        code = VX_ETIMEDOUT;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
        code = VX_EINVAL, retry = 0;
        break;
    case CURLE_OUT_OF_MEMORY:
        code = VX_ENOMEM;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        retry = 0; /* the same certificate will fail the same way */
        break;
    default:
        break; /* refused, reset, DNS, TLS handshake, truncated: upstream trouble */
    }
    oai_seterr(err, code, retry, 0, "%s: %s", plugin, what);
}

void oai_error_body(vx_error *err, const char *plugin, long status, const char *body,
                    size_t len) {
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *m = j ? oai_error_message(j) : NULL;
    char text[160];

    if (!m && len && !j) {
        /* Not JSON (a proxy's HTML page, plain text): its start, on one line. */
        size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)body[i];
            text[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
        }
        text[n] = '\0';
        m = text;
    }
    oai_status_error(err, status);
    snprintf(err->msg, sizeof(err->msg), "%s: HTTP %ld%s%s", plugin, status, m ? ": " : "",
             m ? m : "");
    json_decref(j);
}

/* An HTTP error answer: the status decides the code, the body the text. */
static void oai_http_error(oai_call *k, vx_error *err) {
    oai_error_body(err, k->c->cf->plugin, k->status, k->ebody, k->ebody_len);
}

static void oai_result(oai_call *k, CURLcode res, vx_error *err) {
    memset(err, 0, sizeof(*err));
    curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
    if (atomic_load(&k->stop))
        oai_seterr(err, VX_ECANCELED, 0, 0, "%s: cancelled", k->c->cf->plugin);
    else if (k->fail.code)
        *err = k->fail;
    else if (k->status && (k->status < 200 || k->status > 299))
        oai_http_error(k, err); /* even when the error body was cut short */
    else if (res != CURLE_OK)
        oai_curl_error(k, res, err);
    else if (k->status == 0)
        oai_seterr(err, VX_EPROTO, 0, 0, "%s: no HTTP status in the answer", k->c->cf->plugin);
    oai_scrub(err->msg, k->key);
}

/* ---------------------------------------------------------------- calls */

static size_t oai_on_write(char *p, size_t size, size_t nmemb, void *ud) {
    oai_call *k = ud;
    size_t n = size * nmemb;

    if (atomic_load_explicit(&k->stop, memory_order_relaxed)) return 0; /* abort now */
    if (k->status == 0) curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
    if (k->status < 200 || k->status > 299) {
        size_t room = OAI_EBODY_MAX - k->ebody_len, take = n < room ? n : room;
        if (take) {
            char *b = realloc(k->ebody, k->ebody_len + take);
            if (!b) return n; /* the status alone still makes an error */
            memcpy(b + k->ebody_len, p, take);
            k->ebody = b;
            k->ebody_len += take;
        }
        return n;
    }
    if (k->ops->body(k->ctx, p, n, &k->fail) != 0) {
        if (k->fail.code == 0)
            oai_seterr(&k->fail, VX_EINTERNAL, 0, 0, "%s: response rejected", k->c->cf->plugin);
        return 0;
    }
    return n;
}

static void oai_call_free(oai_call *k) {
    if (k->easy) curl_easy_cleanup(k->easy); /* first: the handle may point at the form */
    curl_mime_free(k->form);
    curl_slist_free_all(k->hdr);
    free(k->url);
    free(k->body);
    free(k->ebody);
    free(k->key);
    free(k);
}

int oai_call_new(oai_client *c, const char *path, const oai_call_ops *ops, void *ctx,
                 oai_call **out, vx_error *err) {
    const oai_conf *cf = c->cf;
    const char *key = oai_key(cf);
    oai_call *k = calloc(1, sizeof(*k));
    char ua[64];
    size_t ul;

    *out = NULL;
    if (!k) goto oom;
    k->c = c;
    k->ops = ops;
    k->ctx = ctx;
    atomic_init(&k->stop, 0);
    ul = strlen(cf->base_url) + strlen(path) + 1;
    if (!(k->url = malloc(ul))) goto oom;
    snprintf(k->url, ul, "%s%s", cf->base_url, path);
    if (!(k->easy = curl_easy_init())) goto oom;
    if (key) {
        char *line;
        size_t kl = strlen(key);
        /* A key read from a file often ends in a newline; inside, CR or LF
         * would split the header. */
        while (kl && isspace((unsigned char)key[kl - 1])) kl--;
        if (memchr(key, '\r', kl) || memchr(key, '\n', kl)) {
            oai_call_free(k);
            oai_seterr(err, VX_EAUTH, 0, 0, "%s: the API key contains a line break", cf->plugin);
            return VX_EAUTH;
        }
        if (!(k->key = strndup(key, kl))) goto oom;
        if (!(line = malloc(kl + sizeof("Authorization: Bearer ")))) goto oom;
        snprintf(line, kl + sizeof("Authorization: Bearer "), "Authorization: Bearer %s", k->key);
        struct curl_slist *h = curl_slist_append(k->hdr, line);
        free(line);
        if (!h) goto oom;
        k->hdr = h;
    }
    /* libcurl sends "Expect: 100-continue" before large uploads and waits
     * for the go-ahead; the servers we talk to never need it. */
    if (oai_call_header(k, "Expect:", err) != VX_OK) goto oom;
    snprintf(ua, sizeof(ua), "voxray-%s/1.0", cf->plugin);
    if (curl_easy_setopt(k->easy, CURLOPT_URL, k->url) != CURLE_OK) goto oom;
    curl_easy_setopt(k->easy, CURLOPT_PRIVATE, k);
    curl_easy_setopt(k->easy, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS */
    curl_easy_setopt(k->easy, CURLOPT_WRITEFUNCTION, oai_on_write);
    curl_easy_setopt(k->easy, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(k->easy, CURLOPT_ERRORBUFFER, k->errbuf);
    curl_easy_setopt(k->easy, CURLOPT_TIMEOUT_MS, cf->timeout_ms);
    curl_easy_setopt(k->easy, CURLOPT_CONNECTTIMEOUT_MS, cf->connect_timeout_ms);
    curl_easy_setopt(k->easy, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(k->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(k->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    *out = k;
    return VX_OK;
oom:
    if (k) oai_call_free(k);
    oai_seterr(err, VX_ENOMEM, 1, 0, "%s: out of memory preparing a request", cf->plugin);
    return VX_ENOMEM;
}

int oai_call_header(oai_call *k, const char *line, vx_error *err) {
    struct curl_slist *h = curl_slist_append(k->hdr, line);

    if (!h) {
        oai_seterr(err, VX_ENOMEM, 1, 0, "%s: out of memory preparing a request",
                   k->c->cf->plugin);
        return VX_ENOMEM;
    }
    k->hdr = h;
    return VX_OK;
}

int oai_call_json(oai_call *k, const json_t *body, vx_error *err) {
    free(k->body);
    if (!(k->body = json_dumps(body, JSON_COMPACT)) ||
        oai_call_header(k, "Content-Type: application/json", err) != VX_OK) {
        oai_seterr(err, VX_ENOMEM, 1, 0, "%s: out of memory preparing a request",
                   k->c->cf->plugin);
        return VX_ENOMEM;
    }
    curl_easy_setopt(k->easy, CURLOPT_POSTFIELDS, k->body);
    curl_easy_setopt(k->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(k->body));
    return VX_OK;
}

curl_mime *oai_call_form(oai_call *k) {
    if (!k->form && (k->form = curl_mime_init(k->easy)) != NULL)
        curl_easy_setopt(k->easy, CURLOPT_MIMEPOST, k->form);
    return k->form;
}

const char *oai_call_content_type(oai_call *k) {
    char *ct = NULL;

    curl_easy_getinfo(k->easy, CURLINFO_CONTENT_TYPE, &ct);
    return ct ? ct : "";
}

void oai_call_start(oai_call *k) {
    oai_client *c = k->c;

    curl_easy_setopt(k->easy, CURLOPT_HTTPHEADER, k->hdr);
    pthread_mutex_lock(&c->mu);
    k->state = K_QUEUED;
    k->prev = NULL;
    k->next = c->calls;
    if (c->calls) c->calls->prev = k;
    c->calls = k;
    c->n_calls++;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
}

void oai_call_cancel(oai_call *k) {
    oai_client *c = k->c;
    int wake;

    pthread_mutex_lock(&c->mu);
    wake = (k->state == K_QUEUED || k->state == K_RUNNING) && !k->canceled;
    if (wake) {
        k->canceled = 1;
        atomic_store(&k->stop, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (wake) curl_multi_wakeup(c->multi);
}

void oai_call_close(oai_call *k) {
    oai_client *c;

    if (!k) return;
    c = k->c;
    pthread_mutex_lock(&c->mu);
    if (k->state == K_BUILT || k->state == K_DETACHED) {
        pthread_mutex_unlock(&c->mu);
        oai_call_free(k);
        return;
    }
    k->closing = 1;
    atomic_store(&k->stop, 1);
    if (c->has_thread && pthread_equal(pthread_self(), c->thread)) {
        /* Inside one of the driver's callbacks: it frees the call itself
         * once it is done with it. */
        k->orphan = 1;
        pthread_mutex_unlock(&c->mu);
        curl_multi_wakeup(c->multi);
        return;
    }
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    pthread_mutex_lock(&c->mu);
    while (k->state != K_DETACHED) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    oai_call_free(k);
}

/* ---------------------------------------------------------------- driver */

/* Deliver a call's end (unless it is being closed) and let go of it. Runs
 * on the driver with c->mu held; drops it around the callback. */
static void oai_end(oai_client *c, oai_call *k, const vx_error *e) {
    k->state = K_ENDING;
    if (e->code != VX_OK && e->code != VX_ECANCELED) {
        c->n_failed++;
        snprintf(c->last_err, sizeof(c->last_err), "%s", e->msg);
    }
    if (!k->closing) {
        pthread_mutex_unlock(&c->mu);
        k->ops->end(k->ctx, e);
        pthread_mutex_lock(&c->mu);
    }
    if (k->prev) k->prev->next = k->next;
    else c->calls = k->next;
    if (k->next) k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->state = K_DETACHED;
    if (k->orphan) oai_call_free(k);
    else pthread_cond_broadcast(&c->cv);
}

/* Add queued calls to the multi handle and stop cancelled or closed ones.
 * c->mu held. Ending a call drops the lock, so the walk restarts after it. */
static void oai_sweep(oai_client *c) {
    vx_error e;

restart:
    for (oai_call *k = c->calls; k; k = k->next) {
        if (k->state != K_QUEUED && k->state != K_RUNNING) continue;
        if (k->canceled || k->closing) {
            if (k->state == K_RUNNING) curl_multi_remove_handle(c->multi, k->easy);
            oai_seterr(&e, VX_ECANCELED, 0, 0, "%s: cancelled", c->cf->plugin);
            oai_end(c, k, &e);
            goto restart;
        }
        if (k->state == K_QUEUED) {
            if (curl_multi_add_handle(c->multi, k->easy) != CURLM_OK) {
                oai_seterr(&e, VX_ENOMEM, 1, 0, "%s: cannot start a transfer", c->cf->plugin);
                oai_end(c, k, &e);
                goto restart;
            }
            k->state = K_RUNNING;
        }
    }
}

static void *oai_driver(void *arg) {
    oai_client *c = arg;
    CURLMsg *m;
    int running, left;

    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        oai_sweep(c);
        pthread_mutex_unlock(&c->mu);

        curl_multi_perform(c->multi, &running);
        while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
            oai_call *k = NULL;
            CURLcode res = m->data.result; /* m dies with remove_handle */
            vx_error e;

            if (m->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&k);
            curl_multi_remove_handle(c->multi, k->easy);
            oai_result(k, res, &e);
            pthread_mutex_lock(&c->mu);
            oai_end(c, k, &e);
            pthread_mutex_unlock(&c->mu);
        }
        /* Returns early on socket activity, curl's own timers and
         * curl_multi_wakeup(). */
        curl_multi_poll(c->multi, NULL, 0, OAI_POLL_MS, NULL);
    }
    /* Calls orphaned by a callback just before shutdown. */
    pthread_mutex_lock(&c->mu);
    for (oai_call *k = c->calls, *next; k; k = next) {
        next = k->next;
        if (!k->orphan) continue;
        if (k->state == K_RUNNING) curl_multi_remove_handle(c->multi, k->easy);
        if (k->prev) k->prev->next = k->next;
        else c->calls = k->next;
        if (k->next) k->next->prev = k->prev;
        oai_call_free(k);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static pthread_once_t oai_curl_once = PTHREAD_ONCE_INIT;
static CURLcode oai_curl_rc;

/* Once per process image of this plugin. libcurl counts these, so several
 * plugins each calling it is fine; none of them calls curl_global_cleanup,
 * which would pull the rug from under the others (and from the host). */
static void oai_curl_init(void) {
    oai_curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int oai_client_new(const vx_host_api *api, vx_host *h, const oai_conf *cf, oai_client **out,
                   vx_error *err) {
    oai_client *c = NULL;
    int mu = 0, cv = 0;

    *out = NULL;
    pthread_once(&oai_curl_once, oai_curl_init);
    if (oai_curl_rc != CURLE_OK) {
        oai_seterr(err, VX_EINTERNAL, 0, 0, "%s: curl_global_init: %s", cf->plugin,
                   curl_easy_strerror(oai_curl_rc));
        return VX_EINTERNAL;
    }
    if (!(c = calloc(1, sizeof(*c)))) goto fail;
    c->api = api;
    c->h = h;
    c->cf = cf;
    if (pthread_mutex_init(&c->mu, NULL) != 0) goto fail;
    mu = 1;
    if (pthread_cond_init(&c->cv, NULL) != 0) goto fail;
    cv = 1;
    if (!(c->multi = curl_multi_init())) goto fail;
    if (pthread_create(&c->thread, NULL, oai_driver, c) != 0) goto fail;
    c->has_thread = 1;
    *out = c;
    return VX_OK;
fail:
    if (c && c->multi) curl_multi_cleanup(c->multi);
    if (cv) pthread_cond_destroy(&c->cv);
    if (mu) pthread_mutex_destroy(&c->mu);
    free(c);
    oai_seterr(err, VX_ENOMEM, 0, 0, "%s: cannot start the HTTP client", cf->plugin);
    return VX_ENOMEM;
}

void oai_client_free(oai_client *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    curl_multi_cleanup(c->multi);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int oai_client_health(oai_client *c, char *buf, size_t len) {
    pthread_mutex_lock(&c->mu);
    snprintf(buf, len, "%llu requests, %llu failed%s%s", c->n_calls, c->n_failed,
             c->last_err[0] ? "; last: " : "", c->last_err);
    pthread_mutex_unlock(&c->mu);
    return VX_OK;
}
