/*
 * The test side of mock_openai, shared by the tests of the OpenAI-compatible
 * plugins: start and stop the server, read what it recorded, plus the small
 * host those tests load a plugin into (config, a log they can search, an
 * event recorder, a fixture that closes what a test left open).
 *
 * A test program defines PLUGIN_SO (the built .so) and MOCK_OPENAI (the
 * server binary), includes this file once, and calls oai_test_main().
 * Events arrive on the plugin's threads and are recorded under a mutex;
 * assertions run on the main thread only.
 */
#ifndef VX_TEST_MOCK_OPENAI_H
#define VX_TEST_MOCK_OPENAI_H

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <voxray/plugin.h>

#if !defined(PLUGIN_SO) || !defined(MOCK_OPENAI)
#error "PLUGIN_SO and MOCK_OPENAI must name the plugin and the mock server"
#endif

#define WAIT_MS 20000 /* generous: valgrind and sanitizers are slow */
#define KEY_ENV "VX_TEST_OPENAI_KEY"

/* ---------------------------------------------------------------- clock */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- the server */

typedef struct mock {
    pid_t pid;
    int port;
    char url[64]; /* base_url: http://127.0.0.1:PORT/v1 */
} mock;

static mock srv;

/* Start mock_openai on a port it picks and read the port it prints.
 * Returns 0, or -1 (the reason on stderr). */
static int mock_start(mock *m) {
    int fds[2];
    char line[32] = "";
    size_t got = 0;
    struct pollfd p;

    if (pipe(fds) != 0) return -1;
    m->pid = fork();
    if (m->pid < 0) return -1;
    if (m->pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        execl(MOCK_OPENAI, "mock_openai", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    p.fd = fds[0];
    p.events = POLLIN;
    while (got < sizeof(line) - 1 && !strchr(line, '\n') && poll(&p, 1, WAIT_MS) > 0) {
        ssize_t n = read(fds[0], line + got, sizeof(line) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        line[got] = '\0';
    }
    close(fds[0]);
    m->port = atoi(line);
    if (m->port <= 0) {
        fprintf(stderr, "%s did not report a port\n", MOCK_OPENAI);
        kill(m->pid, SIGTERM);
        waitpid(m->pid, NULL, 0);
        return -1;
    }
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d/v1", m->port);
    return 0;
}

static void mock_stop(mock *m) {
    if (m->pid <= 0) return;
    kill(m->pid, SIGTERM);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
}

static size_t mock_collect(char *p, size_t size, size_t n, void *ud) {
    char **buf = ud;
    size_t len = *buf ? strlen(*buf) : 0;
    char *b = realloc(*buf, len + size * n + 1);

    if (!b) return 0;
    memcpy(b + len, p, size * n);
    b[len + size * n] = '\0';
    *buf = b;
    return size * n;
}

/* GET (or DELETE) /__requests: the recorded requests, a new reference. */
static json_t *mock_requests_do(const char *method) {
    char url[96], *body = NULL;
    CURL *c = curl_easy_init();
    json_t *j = NULL;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__requests", srv.port);
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mock_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
        if (curl_easy_perform(c) == CURLE_OK && body) j = json_loads(body, 0, NULL);
        curl_easy_cleanup(c);
    }
    free(body);
    if (!json_is_array(j)) fail_msg("GET /__requests failed");
    return j;
}

static json_t *mock_requests(void) {
    return mock_requests_do("GET");
}

static void mock_reset(void) {
    json_decref(mock_requests_do("DELETE"));
}

static inline size_t mock_count(void) {
    json_t *r = mock_requests();
    size_t n = json_array_size(r);
    json_decref(r);
    return n;
}

/* The last recorded request, a new reference. Fails the test when none. */
static json_t *mock_last(void) {
    json_t *r = mock_requests();
    json_t *last = json_array_get(r, json_array_size(r) - 1);

    if (!last) fail_msg("the server received no request");
    json_incref(last);
    json_decref(r);
    return last;
}

/* A port nothing listens on (it was free a moment ago). */
static inline int closed_port(void) {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* ---------------------------------------------------------------- test host */

static void *plug_dl;
static const vx_plugin_info *plug;

/* The per-instance handle: its config and what it logged (mu guards the
 * log: plugin threads write it). */
struct vx_host {
    vx_config cfg;
    vx_kv kv[32];
    pthread_mutex_t mu;
    char log[16384];
    size_t log_len;
};

static void th_vlog(vx_host *h, int level, const char *fmt, va_list ap) {
    char line[1024];

    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "  [%s] %d %s\n", h->cfg.instance, level, line);
    pthread_mutex_lock(&h->mu);
    if (h->log_len + strlen(line) + 2 < sizeof(h->log))
        h->log_len += (size_t)sprintf(h->log + h->log_len, "%s\n", line);
    pthread_mutex_unlock(&h->mu);
}

static void th_log(vx_host *h, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    th_vlog(h, level, fmt, ap);
    va_end(ap);
}

static int th_log_enabled(vx_host *h, int level) {
    return 1;
}

static void *th_alloc(size_t n) {
    return malloc(n);
}

static void th_free(void *p) {
    free(p);
}

static int th_defer(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg) {
    return VX_EUNAVAIL;
}

static const char *th_config_get(vx_host *h, const char *key) {
    for (size_t i = 0; i < h->cfg.n_items; i++)
        if (strcmp(h->cfg.items[i].key, key) == 0) return h->cfg.items[i].value;
    return NULL;
}

static vx_metric *th_metric_register(vx_host *h, vx_metric_type type, const char *name,
                                     const char *help) {
    return NULL;
}

static void th_metric_noop(vx_metric *m, double v) {
}

static const vx_host_api test_api = {
    .struct_size = sizeof(vx_host_api),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .log = th_log,
    .vlog = th_vlog,
    .log_enabled = th_log_enabled,
    .now_ns = now_ns,
    .alloc = th_alloc,
    .free = th_free,
    .defer = th_defer,
    .config_get = th_config_get,
    .metric_register = th_metric_register,
    .metric_add = th_metric_noop,
    .metric_set = th_metric_noop,
    .metric_observe = th_metric_noop,
};

static inline int host_logged(vx_host *h, const char *needle) {
    int found;
    pthread_mutex_lock(&h->mu);
    found = strstr(h->log, needle) != NULL;
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* ---------------------------------------------------------------- recorder */

#define REC_TEXT 4096
#define REC_CHUNKS 4096
#define REC_FINALS 16

/* Everything one stream delivered, in order. `closed` is set right after
 * close() returns, so any later event is counted in after_close. */
typedef struct seen {
    int closed, after_close;
    size_t events;
    size_t n_tokens;
    char text[REC_TEXT]; /* the tokens, concatenated */
    char finals[REC_FINALS][256];
    float confidence[REC_FINALS];
    size_t n_finals;
    size_t partials;
    size_t chunks[REC_CHUNKS];
    size_t n_chunks;
    int16_t *pcm;
    size_t frames, pcm_cap;
    int done;
    vx_usage usage;
    int got_usage;
    int errors;
    vx_error err;
    uint64_t first_output_ns, end_ns;
} seen;

typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seen d;
} rec;

static void rec_event(rec *r, int output) {
    if (r->d.closed) r->d.after_close++;
    r->d.events++;
    if (output && !r->d.first_output_ns) r->d.first_output_ns = now_ns();
    if (!output) r->d.end_ns = now_ns();
}

static inline void on_token(void *user, const char *text, size_t len) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    r->d.n_tokens++;
    if (strlen(r->d.text) + len < sizeof(r->d.text)) strncat(r->d.text, text, len);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void on_llm_done(void *user, const vx_usage *usage) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 0);
    r->d.done++;
    if (usage) r->d.usage = *usage, r->d.got_usage = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_error(void *user, const vx_error *err) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 0);
    r->d.errors++;
    r->d.err = *err;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void on_partial(void *user, const char *text) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    r->d.partials++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void on_final(void *user, const char *text, float confidence) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (r->d.n_finals < REC_FINALS) {
        snprintf(r->d.finals[r->d.n_finals], sizeof(r->d.finals[0]), "%s", text);
        r->d.confidence[r->d.n_finals] = confidence;
    }
    r->d.n_finals++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void on_audio(void *user, const int16_t *pcm, size_t frames) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (r->d.n_chunks < REC_CHUNKS) r->d.chunks[r->d.n_chunks] = frames;
    r->d.n_chunks++;
    if (r->d.frames + frames > r->d.pcm_cap) {
        size_t cap = (r->d.frames + frames) * 2;
        int16_t *p = realloc(r->d.pcm, cap * sizeof(*p));
        if (p) r->d.pcm = p, r->d.pcm_cap = cap;
    }
    if (r->d.frames + frames <= r->d.pcm_cap)
        memcpy(r->d.pcm + r->d.frames, pcm, frames * sizeof(*pcm));
    r->d.frames += frames;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline void on_tts_done(void *user) {
    on_llm_done(user, NULL);
}

typedef int (*rec_pred)(const seen *d, size_t n);

static int has_ended(const seen *d, size_t n) {
    return d->done + d->errors >= (int)n;
}
static inline int has_tokens(const seen *d, size_t n) {
    return d->n_tokens >= n;
}
static inline int has_finals(const seen *d, size_t n) {
    return d->n_finals >= n;
}
static inline int has_chunks(const seen *d, size_t n) {
    return d->n_chunks >= n;
}

/* Wait until pred holds; 0 on time out. */
static int rec_wait(rec *r, rec_pred pred, size_t n) {
    uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000ull;
    struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
    int ok;

    pthread_mutex_lock(&r->mu);
    while (!(ok = pred(&r->d, n)) && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
        ;
    if (!ok) ok = pred(&r->d, n);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* A copy of what a recorder saw, taken under its mutex. The pcm pointer
 * stays the recorder's. */
static seen *rec_snap(rec *r, seen *copy) {
    pthread_mutex_lock(&r->mu);
    *copy = r->d;
    pthread_mutex_unlock(&r->mu);
    return copy;
}

/* ---------------------------------------------------------------- fixture */

#define FX_MAX 64

/* Instances, recorders and streams of one test, released by teardown even
 * when an assertion failed half way: streams first, so no event can reach
 * a freed recorder. */
typedef struct fixture {
    vx_host hosts[4];
    void *inst[4];
    size_t n_inst;
    rec *recs[FX_MAX];
    size_t n_recs;
    vx_stream *streams[FX_MAX];
    size_t n_streams;
} fixture;

static void stream_close(vx_stream *s) {
    if (plug->llm) plug->llm->close(s);
    else if (plug->stt) plug->stt->close(s);
    else plug->tts->close(s);
}

static int fx_setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));

    if (!f) return -1;
    unsetenv(KEY_ENV);
    mock_reset();
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fixture *f = *state;

    for (size_t i = 0; i < f->n_streams; i++)
        if (f->streams[i]) stream_close(f->streams[i]);
    for (size_t i = 0; i < f->n_recs; i++) {
        pthread_mutex_destroy(&f->recs[i]->mu);
        pthread_cond_destroy(&f->recs[i]->cv);
        free(f->recs[i]->d.pcm);
        free(f->recs[i]);
    }
    for (size_t i = 0; i < f->n_inst; i++) {
        plug->shutdown(f->inst[i]);
        pthread_mutex_destroy(&f->hosts[i].mu);
    }
    free(f);
    unsetenv(KEY_ENV);
    return 0;
}

/* Init an instance the way the host does: every schema key, its default,
 * except base_url (the mock) and api_key_env (KEY_ENV), then the given
 * pairs of key and value, ending with NULL. Returns its index. */
static size_t fx_inst(fixture *f, ...) {
    vx_host *h = &f->hosts[f->n_inst];
    vx_error err = {0};
    size_t n = 0;
    va_list ap;
    int rc;

    assert_true(f->n_inst < 4);
    for (const vx_config_key *k = plug->config; k && k->key; k++) {
        h->kv[n].key = k->key;
        h->kv[n].value = k->def;
        if (strcmp(k->key, "base_url") == 0) h->kv[n].value = srv.url;
        if (strcmp(k->key, "api_key_env") == 0) h->kv[n].value = KEY_ENV;
        n++;
    }
    va_start(ap, f);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        size_t i;
        for (i = 0; i < n && strcmp(h->kv[i].key, key) != 0; i++)
            ;
        assert_true(i < n); /* a key the plugin does not declare */
        h->kv[i].value = value;
    }
    va_end(ap);
    pthread_mutex_init(&h->mu, NULL);
    h->cfg.struct_size = sizeof(vx_config);
    h->cfg.instance = plug->name;
    h->cfg.items = h->kv;
    h->cfg.n_items = n;
    rc = plug->init(&test_api, h, &h->cfg, &f->inst[f->n_inst], &err);
    if (rc != VX_OK) {
        pthread_mutex_destroy(&h->mu);
        fail_msg("init failed: %d %s", rc, err.msg);
    }
    return f->n_inst++;
}

static rec *fx_rec(fixture *f) {
    rec *r = calloc(1, sizeof(*r));
    pthread_condattr_t ca;

    assert_non_null(r);
    assert_true(f->n_recs < FX_MAX);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* rec_wait's deadline */
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    f->recs[f->n_recs++] = r;
    return r;
}

static void fx_track(fixture *f, vx_stream *s) {
    assert_true(f->n_streams < FX_MAX);
    f->streams[f->n_streams++] = s;
}

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    for (size_t i = 0; i < f->n_streams; i++)
        if (f->streams[i] == s) f->streams[i] = NULL;
    stream_close(s);
    pthread_mutex_lock(&r->mu);
    r->d.closed = 1;
    pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------------- JSON */

/* A string at a path of object keys ("headers", "authorization", NULL). */
static inline const char *jstr(const json_t *j, ...) {
    va_list ap;
    va_start(ap, j);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) j = json_object_get(j, k);
    va_end(ap);
    return json_string_value(j);
}

/* ---------------------------------------------------------------- main */

/* Start the server, load the plugin, run the group, clean up. */
static int oai_test_main(const struct CMUnitTest *tests, size_t n, const char *group) {
    vx_plugin_entry_fn entry;
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (mock_start(&srv) != 0) return 1;
    plug_dl = dlopen(PLUGIN_SO, RTLD_NOW | RTLD_LOCAL);
    if (!plug_dl) {
        fprintf(stderr, "dlopen %s: %s\n", PLUGIN_SO, dlerror());
        mock_stop(&srv);
        return 1;
    }
    *(void **)&entry = dlsym(plug_dl, VX_PLUGIN_ENTRY_SYMBOL);
    plug = entry ? entry(&test_api) : NULL;
    if (!plug) {
        fprintf(stderr, "%s: no usable vx_plugin_entry\n", PLUGIN_SO);
        dlclose(plug_dl);
        mock_stop(&srv);
        return 1;
    }
    /* OAI_TEST_FILTER=test_cancel* runs a subset (e.g. under valgrind). */
    if (getenv("OAI_TEST_FILTER")) cmocka_set_test_filter(getenv("OAI_TEST_FILTER"));
    failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    dlclose(plug_dl);
    mock_stop(&srv);
    curl_global_cleanup();
    return failed ? 1 : 0;
}

#endif
