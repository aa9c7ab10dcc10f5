/*
 * plugin_harness: the test host, config builder, plugin loader, fixture,
 * event recorders, audio and process helpers shared by the test programs
 * that load a real provider .so. See plugin_harness.h for each contract.
 */
#include "plugin_harness.h"

#include "base/cfg.h"
#include "base/defer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

unsigned ph_wait_ms = 20000;
int ph_log_echo = 1;
int ph_log_keep = VX_LOG_DEBUG;

/* ---------------------------------------------------------------- clock */

uint64_t ph_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ph_ms_since(uint64_t t0) {
    return (ph_now_ns() - t0) / 1000000;
}

void ph_sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* The absolute CLOCK_MONOTONIC deadline ph_wait_ms from now. */
static struct timespec wait_deadline(void) {
    uint64_t d = ph_now_ns() + (uint64_t)ph_wait_ms * 1000000ull;
    struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
    return ts;
}

/* ---------------------------------------------------------------- test host */

static void th_vlog(vx_host *h, int level, const char *fmt, va_list ap) {
    char line[1024];
    size_t len;

    vsnprintf(line, sizeof(line), fmt, ap);
    if (ph_log_echo)
        fprintf(stderr, "  [%s] %d %s\n", h ? h->cfg.instance : "-", level, line);
    if (!h || level < ph_log_keep) return;
    len = strlen(line);
    pthread_mutex_lock(&h->mu);
    /* Keep what fits: a test searching for a secret must see a cut line. */
    if (h->log_len + 1 < sizeof(h->log)) {
        size_t room = sizeof(h->log) - 1 - h->log_len;
        if (len > room) len = room;
        memcpy(h->log + h->log_len, line, len);
        h->log_len += len;
        if (h->log_len + 1 < sizeof(h->log)) h->log[h->log_len++] = '\n';
        h->log[h->log_len] = '\0';
    }
    pthread_mutex_unlock(&h->mu);
}

static void th_log(vx_host *h, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    th_vlog(h, level, fmt, ap);
    va_end(ap);
}

static int th_log_enabled(vx_host *h, int level) {
    (void)h;
    return ph_log_echo || level >= ph_log_keep;
}

static void *th_alloc(size_t n) {
    return malloc(n);
}

static void th_free(void *p) {
    free(p);
}

/* The host's own timer (host/base/defer.c), started by the first job and left
 * running until the test program exits. */
static pthread_once_t th_defer_once = PTHREAD_ONCE_INIT;
static int th_defer_up;

static void th_defer_start(void) {
    th_defer_up = defer_start() == 0;
}

static int th_defer_id(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg,
                       uint64_t *id) {
    (void)h;
    if (!fn) return VX_EINVAL;
    pthread_once(&th_defer_once, th_defer_start);
    if (!th_defer_up) return VX_EUNAVAIL;
    return defer_run_id(delay_ms, fn, arg, id) == 0 ? VX_OK : VX_ENOMEM;
}

static int th_defer_at(vx_host *h, uint64_t due_ns, void (*fn)(void *), void *arg, uint64_t *id) {
    (void)h;
    if (!fn) return VX_EINVAL;
    pthread_once(&th_defer_once, th_defer_start);
    if (!th_defer_up) return VX_EUNAVAIL;
    return defer_run_at(due_ns, fn, arg, id) == 0 ? VX_OK : VX_ENOMEM;
}

static int th_defer(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg) {
    return th_defer_id(h, delay_ms, fn, arg, NULL);
}

static int th_defer_cancel(vx_host *h, uint64_t id, int wait) {
    (void)h;
    if (!th_defer_up) return 0;
    return wait ? defer_cancel_wait(id) : defer_cancel(id);
}

static const char *th_config_get(vx_host *h, const char *key) {
    return h ? ph_host_get(h, key) : NULL;
}

/* The typed getters of host API 1.6: the daemon's own parser (cfg.c). */
static int th_config_typed(vx_host *h, const char *key, cfg_get_type t, void *out) {
    if (!h) return VX_EINVAL;
    return cfg_kv_get(h->kv, h->cfg.n_items, key, t, out);
}
static int th_config_int(vx_host *h, const char *key, int64_t *out) {
    return th_config_typed(h, key, CFG_GET_INT, out);
}
static int th_config_float(vx_host *h, const char *key, double *out) {
    return th_config_typed(h, key, CFG_GET_FLOAT, out);
}
static int th_config_bool(vx_host *h, const char *key, int *out) {
    return th_config_typed(h, key, CFG_GET_BOOL, out);
}
static int th_config_duration_ms(vx_host *h, const char *key, int64_t *out) {
    return th_config_typed(h, key, CFG_GET_DURATION_MS, out);
}
static int th_config_duration_ns(vx_host *h, const char *key, int64_t *out) {
    return th_config_typed(h, key, CFG_GET_DURATION_NS, out);
}
static int th_config_size(vx_host *h, const char *key, uint64_t *out) {
    return th_config_typed(h, key, CFG_GET_SIZE, out);
}

static vx_metric *th_metric_register(vx_host *h, vx_metric_type type, const char *name,
                                     const char *help) {
    vx_metric *m = NULL;

    (void)help;
    if (!h) return NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n_metrics < PH_METRICS) {
        m = &h->metrics[h->n_metrics++];
        m->h = h;
        m->type = type;
        snprintf(m->name, sizeof(m->name), "%s", name);
    }
    pthread_mutex_unlock(&h->mu);
    return m;
}

/* Plugin threads feed metrics; the owning host's mutex guards them. */
static void th_metric_add(vx_metric *m, double v) {
    if (!m) return;
    pthread_mutex_lock(&m->h->mu);
    m->value += v;
    pthread_mutex_unlock(&m->h->mu);
}

static void th_metric_set(vx_metric *m, double v) {
    if (!m) return;
    pthread_mutex_lock(&m->h->mu);
    m->value = v;
    pthread_mutex_unlock(&m->h->mu);
}

const vx_host_api ph_api = {
    .struct_size = sizeof(vx_host_api),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .log = th_log,
    .vlog = th_vlog,
    .log_enabled = th_log_enabled,
    .now_ns = ph_now_ns,
    .alloc = th_alloc,
    .free = th_free,
    .defer = th_defer,
    .config_get = th_config_get,
    .metric_register = th_metric_register,
    .metric_add = th_metric_add,
    .metric_set = th_metric_set,
    .metric_observe = th_metric_add,
    .defer_id = th_defer_id,
    .defer_cancel = th_defer_cancel,
    .defer_at = th_defer_at,
    .config_int = th_config_int,
    .config_float = th_config_float,
    .config_bool = th_config_bool,
    .config_duration_ms = th_config_duration_ms,
    .config_duration_ns = th_config_duration_ns,
    .config_size = th_config_size,
};

int ph_host_vconfig(vx_host *h, const vx_plugin_info *p, const char *instance, va_list ap) {
    size_t n = 0;

    memset(h, 0, sizeof(*h));
    for (const vx_config_key *k = p->config; k && k->key; k++) {
        if (n == PH_KV) return -1;
        h->kv[n].key = k->key;
        h->kv[n].value = k->def;
        n++;
    }
    h->cfg.struct_size = sizeof(vx_config);
    h->cfg.instance = instance;
    h->cfg.items = h->kv;
    h->cfg.n_items = n;
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (ph_host_set(h, key, value) != 0) {
            fprintf(stderr, "# %s declares no config key '%s'\n", p->name, key);
            return -1;
        }
    }
    pthread_mutex_init(&h->mu, NULL);
    return 0;
}

int ph_host_set(vx_host *h, const char *key, const char *value) {
    for (size_t i = 0; i < h->cfg.n_items; i++) {
        if (strcmp(h->kv[i].key, key) == 0) {
            h->kv[i].value = value;
            return 0;
        }
    }
    return -1;
}

const char *ph_host_get(vx_host *h, const char *key) {
    for (size_t i = 0; i < h->cfg.n_items; i++)
        if (strcmp(h->cfg.items[i].key, key) == 0) return h->cfg.items[i].value;
    return NULL;
}

void ph_host_release(vx_host *h) {
    pthread_mutex_destroy(&h->mu);
}

int ph_logged(vx_host *h, const char *needle) {
    int found;

    pthread_mutex_lock(&h->mu);
    found = strstr(h->log, needle) != NULL;
    pthread_mutex_unlock(&h->mu);
    return found;
}

int ph_log_wait(vx_host *h, const char *needle) {
    for (unsigned i = 0; i < ph_wait_ms; i++) {
        if (ph_logged(h, needle)) return 1;
        ph_sleep_ms(1);
    }
    return 0;
}

double ph_metric_value(vx_host *h, const char *name) {
    double v = -1;

    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < h->n_metrics; i++)
        if (strcmp(h->metrics[i].name, name) == 0) v = h->metrics[i].value;
    pthread_mutex_unlock(&h->mu);
    return v;
}

/* ---------------------------------------------------------------- plugins */

const vx_plugin_info *ph_plugin_load(const char *path, void **dl) {
    vx_plugin_entry_fn entry;
    const vx_plugin_info *p = NULL;

    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        fprintf(stderr, "# dlopen %s: %s\n", path, dlerror());
        return NULL;
    }
    *(void **)&entry = dlsym(*dl, VX_PLUGIN_ENTRY_SYMBOL);
    if (entry) p = entry(&ph_api);
    if (!p) {
        fprintf(stderr, "# %s: no usable %s\n", path, VX_PLUGIN_ENTRY_SYMBOL);
        dlclose(*dl);
        *dl = NULL;
    }
    return p;
}

void ph_plugin_unload(void *dl) {
    if (dl) dlclose(dl);
}

/* ---------------------------------------------------------------- recorder */

ph_rec *ph_rec_new(void) {
    ph_rec *r = calloc(1, sizeof(*r));
    pthread_condattr_t ca;

    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wait_deadline's clock */
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

void ph_rec_free(ph_rec *r) {
    if (!r) return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->d.pcm);
    free(r);
}

/* Count one event (under r->mu); output events also move the time marks. */
static void rec_event(ph_rec *r, int output) {
    uint64_t t = ph_now_ns();

    if (r->d.closed) r->d.after_close++;
    r->d.events++;
    if (output) {
        if (!r->d.first_ns) r->d.first_ns = t;
        r->d.last_ns = t;
    } else {
        r->d.end_ns = t;
    }
}

static void copy_text(char *dst, const char *src, size_t len) {
    if (len >= PH_REC_TEXT) len = PH_REC_TEXT - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void on_partial(void *user, const char *text) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (r->d.n_partials < PH_REC_MAX) {
        r->d.partial_at[r->d.n_partials] = r->d.events;
        copy_text(r->d.partials[r->d.n_partials], text, strlen(text));
    }
    r->d.n_partials++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_final(void *user, const char *text, float confidence) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (r->d.n_finals < PH_REC_FINALS) {
        r->d.final_at[r->d.n_finals] = r->d.events;
        r->d.confidence[r->d.n_finals] = confidence;
        copy_text(r->d.finals[r->d.n_finals], text, strlen(text));
    }
    r->d.n_finals++;
    r->d.final_ns = r->d.last_ns;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_error(void *user, const vx_error *err) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 0);
    r->d.errors++;
    r->d.err = *err;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_token(void *user, const char *text, size_t len) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (r->d.n_tokens < PH_REC_MAX) copy_text(r->d.tokens[r->d.n_tokens], text, len);
    r->d.n_tokens++;
    if (strlen(r->d.text) + len < sizeof(r->d.text)) strncat(r->d.text, text, len);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_llm_done(void *user, const vx_usage *usage) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 0);
    r->d.done++;
    r->d.done_at = r->d.events;
    if (usage) r->d.usage = *usage, r->d.got_usage = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_tts_done(void *user) {
    on_llm_done(user, NULL);
}

static void on_audio(void *user, const int16_t *pcm, size_t frames) {
    ph_rec *r = user;

    pthread_mutex_lock(&r->mu);
    rec_event(r, 1);
    if (!r->d.first_audio_at) r->d.first_audio_at = r->d.events;
    if (r->d.n_chunks < PH_REC_CHUNKS) r->d.chunks[r->d.n_chunks] = frames;
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
    if (r->hold) {
        /* Bounded: a plugin that blocks the test thread must fail the test,
         * not hang it. */
        struct timespec ts = wait_deadline();
        while (r->hold && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
}

vx_stt_events ph_stt_events(ph_rec *r) {
    vx_stt_events e = {sizeof(e), r, on_partial, on_final, on_error};
    return e;
}

vx_llm_events ph_llm_events(ph_rec *r) {
    vx_llm_events e = {.struct_size = sizeof(e), .user = r, .on_token = on_token, .on_done = on_llm_done, .on_error = on_error};
    return e;
}

vx_tts_events ph_tts_events(ph_rec *r) {
    vx_tts_events e = {sizeof(e), r, on_audio, on_tts_done, on_error};
    return e;
}

int ph_has_partials(const ph_seen *d, size_t n) { return d->n_partials >= n; }
int ph_has_finals(const ph_seen *d, size_t n) { return d->n_finals >= n; }
int ph_has_tokens(const ph_seen *d, size_t n) { return d->n_tokens >= n; }
int ph_has_chunks(const ph_seen *d, size_t n) { return d->n_chunks >= n; }
int ph_has_errors(const ph_seen *d, size_t n) { return d->errors >= (int)n; }
int ph_has_ended(const ph_seen *d, size_t n) { return d->done + d->errors >= (int)n; }

int ph_rec_wait(ph_rec *r, ph_pred pred, size_t n) {
    struct timespec ts = wait_deadline();
    int ok;

    pthread_mutex_lock(&r->mu);
    while (!(ok = pred(&r->d, n)) && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
        ;
    if (!ok) ok = pred(&r->d, n);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

ph_seen *ph_rec_snap(ph_rec *r, ph_seen *copy) {
    pthread_mutex_lock(&r->mu);
    *copy = r->d;
    pthread_mutex_unlock(&r->mu);
    return copy;
}

size_t ph_rec_events(ph_rec *r) {
    size_t n;

    pthread_mutex_lock(&r->mu);
    n = r->d.events;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void ph_rec_release(ph_rec *r) {
    pthread_mutex_lock(&r->mu);
    r->hold = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------------- fixture */

ph_fixture *ph_fx_new(const vx_plugin_info *p) {
    ph_fixture *f = calloc(1, sizeof(*f));

    if (f) f->p = p;
    return f;
}

void ph_stream_close(const vx_plugin_info *p, vx_kind kind, vx_stream *s) {
    if (kind == VX_KIND_STT) p->stt->close(s);
    else if (kind == VX_KIND_LLM) p->llm->close(s);
    else p->tts->close(s);
}

void ph_fx_free(ph_fixture *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_recs; i++) ph_rec_release(f->recs[i]);
    for (size_t i = 0; i < f->n_streams; i++)
        if (f->streams[i].s) ph_stream_close(f->p, f->streams[i].kind, f->streams[i].s);
    for (size_t i = 0; i < f->n_recs; i++) ph_rec_free(f->recs[i]);
    for (size_t i = 0; i < f->n_inst; i++) {
        if (f->inst[i]) f->p->shutdown(f->inst[i]);
        ph_host_release(&f->hosts[i]);
    }
    for (size_t i = 0; i < f->n_files; i++) unlink(f->files[i]);
    free(f);
}

vx_host *ph_fx_host(ph_fixture *f, const char *instance, va_list ap) {
    vx_host *h;

    assert_true(f->n_inst < PH_FX_INST);
    h = &f->hosts[f->n_inst];
    assert_int_equal(ph_host_vconfig(h, f->p, instance, ap), 0);
    return h;
}

int ph_fx_init(ph_fixture *f, vx_error *err) {
    vx_host *h = &f->hosts[f->n_inst];
    int rc = f->p->init(&ph_api, h, &h->cfg, &f->inst[f->n_inst], err);

    if (rc != VX_OK) f->inst[f->n_inst] = NULL;
    f->n_inst++;
    return rc;
}

int ph_fx_vinit(ph_fixture *f, const char *instance, vx_error *err, va_list ap) {
    ph_fx_host(f, instance, ap);
    return ph_fx_init(f, err);
}

size_t ph_fx_vinst(ph_fixture *f, const char *instance, va_list ap) {
    vx_error err = {0};
    int rc = ph_fx_vinit(f, instance, &err, ap);

    if (rc != VX_OK) fprintf(stderr, "# init: %d %s\n", rc, err.msg);
    assert_int_equal(rc, VX_OK);
    return f->n_inst - 1;
}

ph_rec *ph_fx_rec(ph_fixture *f) {
    ph_rec *r;

    assert_true(f->n_recs < PH_FX_MAX);
    r = ph_rec_new();
    assert_non_null(r);
    f->recs[f->n_recs++] = r;
    return r;
}

void ph_fx_track(ph_fixture *f, vx_kind kind, vx_stream *s) {
    assert_true(f->n_streams < PH_FX_MAX);
    f->streams[f->n_streams].kind = kind;
    f->streams[f->n_streams].s = s;
    f->n_streams++;
}

/* The kind of a plugin's only stream vtable. */
static vx_kind only_kind(const vx_plugin_info *p) {
    return p->llm ? VX_KIND_LLM : p->stt ? VX_KIND_STT : VX_KIND_TTS;
}

void ph_fx_close(ph_fixture *f, vx_stream *s, ph_rec *r) {
    vx_kind kind = only_kind(f->p);

    for (size_t i = 0; i < f->n_streams; i++) {
        if (f->streams[i].s == s) {
            kind = f->streams[i].kind;
            f->streams[i].s = NULL;
        }
    }
    if (s) ph_stream_close(f->p, kind, s);
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->d.closed = 1;
    pthread_mutex_unlock(&r->mu);
}

const char *ph_fx_file(ph_fixture *f, const char *tmpl, const char *text) {
    char *path;
    size_t len = strlen(text);
    int fd;

    assert_true(f->n_files < PH_FX_FILES);
    path = f->files[f->n_files];
    snprintf(path, sizeof(f->files[0]), "%s", tmpl);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f->n_files++;
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

void ph_fx_remove_later(ph_fixture *f, const char *path) {
    assert_true(f->n_files < PH_FX_FILES);
    snprintf(f->files[f->n_files++], sizeof(f->files[0]), "%s", path);
}

/* ---------------------------------------------------------------- audio */

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const unsigned char *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

int ph_wav_read(const char *path, uint32_t rate, int16_t **pcm, size_t *n) {
    unsigned char *buf = NULL, *p, *end;
    int fmt_ok = 0, rc = -1;
    FILE *fp = fopen(path, "rb");
    long len;

    *pcm = NULL;
    *n = 0;
    if (!fp) return -1;
    if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 12 || fseek(fp, 0, SEEK_SET) != 0)
        goto fail;
    if (!(buf = malloc((size_t)len)) || fread(buf, 1, (size_t)len, fp) != (size_t)len) goto fail;
    if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) goto fail;
    end = buf + len;
    for (p = buf + 12; p + 8 <= end;) {
        uint32_t size = rd32(p + 4);
        unsigned char *body = p + 8;
        if (size > (size_t)(end - body)) size = (uint32_t)(end - body);
        if (memcmp(p, "fmt ", 4) == 0 && size >= 16)
            fmt_ok = rd16(body) == 1 && rd16(body + 2) == 1 && rd32(body + 4) == rate &&
                     rd16(body + 14) == 16;
        if (memcmp(p, "data", 4) == 0 && fmt_ok) {
            size_t frames = size / 2;
            /* One spare frame: callers may read a block past an odd end. */
            if (!(*pcm = malloc(frames * 2 + 2))) goto fail;
            for (size_t i = 0; i < frames; i++) (*pcm)[i] = (int16_t)rd16(body + 2 * i);
            *n = frames;
            rc = 0;
            break;
        }
        p = body + size + (size & 1);
    }
fail:
    free(buf);
    fclose(fp);
    return rc;
}

int ph_flite(const char *voice, const char *text, const char *path) {
    char *argv[] = {"flite", "-voice", (char *)voice, "-t", (char *)text,
                    "-o", (char *)path, NULL};
    return ph_run(argv);
}

/* ---------------------------------------------------------------- processes */

pid_t ph_child_start(char *const argv[], int stdout_fd, int sig) {
    pid_t pid = fork();

    if (pid != 0) return pid < 0 ? -1 : pid;
    /* The child: only async-signal-safe calls from here on. */
    prctl(PR_SET_PDEATHSIG, sig); /* never outlive a crashed test */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
    else if (stdout_fd == -2 && devnull >= 0) dup2(devnull, STDOUT_FILENO);
    execvp(argv[0], argv);
    /* write(2) only: the parent may have other threads holding stdio locks. */
    if (write(STDERR_FILENO, "# cannot exec ", 14) >= 0 &&
        write(STDERR_FILENO, argv[0], strlen(argv[0])) >= 0)
        (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

void ph_child_stop(pid_t pid, int sig) {
    if (pid <= 0) return;
    kill(pid, sig);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int ph_run(char *const argv[]) {
    pid_t pid;
    int st;

    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int ph_free_port(void) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
