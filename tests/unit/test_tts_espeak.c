/*
 * The tts_espeak plugin, tested through its built .so exactly as the host
 * loads it: dlopen, vx_plugin_entry, init with a config, then the TTS
 * vtable. Audio arrives on the plugin's threads and is recorded under a
 * mutex; assertions run on the main thread only. Nothing is timed: where
 * a test needs "in the middle of a synthesis" it holds the plugin's thread
 * inside the first on_audio callback until it has acted.
 *
 * espeak-ng varies its output slightly from one call to the next, so
 * lengths are compared with margins, never for equality.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#ifndef TTS_SO
#error "TTS_SO must name the built tts_espeak.so"
#endif

#define WAIT_MS 30000 /* generous: valgrind and sanitizers are slow */

static const char *const hello = "Hello, how are you today?";
static const char *const long_text =
    "The quick brown fox jumps over the lazy dog, and then it runs all the way back "
    "home through the long grass of the meadow, while the sun goes down behind the hills.";

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

/* ---------------------------------------------------------------- test host */

/* The per-instance handle: its config and what it logged (plugin threads
 * log too, so mu guards the log). */
struct vx_host {
    vx_config cfg;
    vx_kv kv[16];
    pthread_mutex_t mu;
    char log[8192];
    size_t log_len;
};

static void th_vlog(vx_host *h, int level, const char *fmt, va_list ap) {
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "  [tts:%s] %d %s\n", h->cfg.instance, level, line);
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

static int host_logged(vx_host *h, const char *needle) {
    int found;
    pthread_mutex_lock(&h->mu);
    found = strstr(h->log, needle) != NULL;
    pthread_mutex_unlock(&h->mu);
    return found;
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

static void th_metric_any(vx_metric *m, double v) {
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
    .metric_add = th_metric_any,
    .metric_set = th_metric_any,
    .metric_observe = th_metric_any,
};

/* ---------------------------------------------------------------- recorder */

#define REC_CHUNKS 4096

/* Everything one stream delivered, in order. `closed` is set right after
 * close() returns, so any later event is counted in after_close. */
typedef struct seen {
    int closed, after_close;
    size_t events;
    size_t first_audio_at, done_at; /* 1-based event numbers, 0: never */
    size_t chunks[REC_CHUNKS];
    size_t n_chunks;
    int16_t *pcm;
    size_t frames, pcm_cap;
    int done, errors;
    vx_error err;
} seen;

/* The events user pointer. With hold set, the first on_audio waits until
 * the test clears it (or WAIT_MS passed): the plugin's thread is then
 * parked mid-synthesis. */
typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold;
    seen d;
} rec;

static void rec_event(rec *r) {
    if (r->d.closed) r->d.after_close++;
    r->d.events++;
}

static void on_audio(void *user, const int16_t *pcm, size_t frames) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r);
    if (!r->d.first_audio_at) r->d.first_audio_at = r->d.events;
    if (r->d.n_chunks < REC_CHUNKS) r->d.chunks[r->d.n_chunks++] = frames;
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
        uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000ull;
        struct timespec ts = {(time_t)(deadline / 1000000000ull),
                              (long)(deadline % 1000000000ull)};
        while (r->hold && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_done(void *user) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r);
    r->d.done++;
    r->d.done_at = r->d.events;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void on_error(void *user, const vx_error *err) {
    rec *r = user;
    pthread_mutex_lock(&r->mu);
    rec_event(r);
    r->d.errors++;
    r->d.err = *err;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

typedef int (*rec_pred)(const seen *d);

static int has_audio(const seen *d) { return d->n_chunks > 0; }
static int has_ended(const seen *d) { return d->done + d->errors > 0; }

/* Wait until pred holds; 0 on time out. */
static int rec_wait(rec *r, rec_pred pred) {
    uint64_t deadline = now_ns() + (uint64_t)WAIT_MS * 1000000ull;
    struct timespec ts = {(time_t)(deadline / 1000000000ull), (long)(deadline % 1000000000ull)};
    int ok;

    pthread_mutex_lock(&r->mu);
    while (!(ok = pred(&r->d)) && pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
        ;
    if (!ok) ok = pred(&r->d);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* A copy of what a recorder saw (pcm still points into the recorder). */
static seen *rec_snap(rec *r, seen *copy) {
    pthread_mutex_lock(&r->mu);
    *copy = r->d;
    pthread_mutex_unlock(&r->mu);
    return copy;
}

static void rec_release(rec *r) {
    pthread_mutex_lock(&r->mu);
    r->hold = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static double rms(const int16_t *pcm, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
    return n ? sqrt(sum / (double)n) : 0;
}

/* ---------------------------------------------------------------- fixture */

static void *tts_dl;
static const vx_plugin_info *tts;

#define FX_MAX 128

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

static int fx_setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fixture *f = *state;

    for (size_t i = 0; i < f->n_recs; i++) rec_release(f->recs[i]);
    for (size_t i = 0; i < f->n_streams; i++)
        if (f->streams[i]) tts->tts->close(f->streams[i]);
    for (size_t i = 0; i < f->n_recs; i++) {
        pthread_mutex_destroy(&f->recs[i]->mu);
        pthread_cond_destroy(&f->recs[i]->cv);
        free(f->recs[i]->d.pcm);
        free(f->recs[i]);
    }
    for (size_t i = 0; i < f->n_inst; i++) {
        if (f->inst[i]) tts->shutdown(f->inst[i]);
        pthread_mutex_destroy(&f->hosts[i].mu);
    }
    free(f);
    return 0;
}

/* Init an instance the way the host does (every schema key, the given value
 * or the default). Pairs of key, value end with NULL. Returns init's code;
 * the instance is f->inst[f->n_inst - 1]. */
static int fx_try_inst(fixture *f, vx_error *err, va_list ap) {
    vx_host *h = &f->hosts[f->n_inst];
    size_t n = 0;
    int rc;

    assert_true(f->n_inst < 4);
    for (const vx_config_key *k = tts->config; k && k->key; k++) {
        h->kv[n].key = k->key;
        h->kv[n].value = k->def;
        n++;
    }
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        size_t i;
        for (i = 0; i < n && strcmp(h->kv[i].key, key) != 0; i++)
            ;
        assert_true(i < n); /* a key the plugin does not declare */
        h->kv[i].value = value;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->cfg.struct_size = sizeof(vx_config);
    h->cfg.instance = "espeak";
    h->cfg.items = h->kv;
    h->cfg.n_items = n;
    rc = tts->init(&test_api, h, &h->cfg, &f->inst[f->n_inst], err);
    f->n_inst++;
    return rc;
}

static size_t fx_inst(fixture *f, ...) {
    vx_error err = {0};
    va_list ap;
    int rc;

    va_start(ap, f);
    rc = fx_try_inst(f, &err, ap);
    va_end(ap);
    if (rc != VX_OK) fprintf(stderr, "init: %s\n", err.msg);
    assert_int_equal(rc, VX_OK);
    return f->n_inst - 1;
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

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    for (size_t i = 0; i < f->n_streams; i++) {
        if (f->streams[i] == s) {
            tts->tts->close(s);
            f->streams[i] = NULL;
        }
    }
    pthread_mutex_lock(&r->mu);
    r->d.closed = 1;
    pthread_mutex_unlock(&r->mu);
}

static int tts_start(fixture *f, size_t inst, const char *text, const char *voice,
                     vx_audio_format *fmt, rec *r, vx_stream **s) {
    vx_tts_events ev = {sizeof(ev), r, on_audio, on_done, on_error};
    vx_error err = {0};
    int rc;

    *s = NULL;
    rc = tts->tts->synthesize(f->inst[inst], text, voice, fmt, &ev, s, &err);
    if (*s) {
        assert_true(f->n_streams < FX_MAX);
        f->streams[f->n_streams++] = *s;
    }
    return rc;
}

/* Speak text to the end; the recorder holds the result. */
static rec *speak(fixture *f, size_t inst, const char *text, const char *voice,
                  vx_audio_format *fmt) {
    rec *r = fx_rec(f);
    vx_stream *s;

    assert_int_equal(tts_start(f, inst, text, voice, fmt, r, &s), VX_OK);
    assert_true(rec_wait(r, has_ended));
    return r;
}

static size_t frames_of(fixture *f, size_t inst, const char *text, const char *voice) {
    vx_audio_format fmt = {0};
    rec *r = speak(f, inst, text, voice, &fmt);
    seen d;

    rec_snap(r, &d);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
    return d.frames;
}

/* Init an instance that must be refused; returns init's code. */
static int fx_inst_refused(fixture *f, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = fx_try_inst(f, err, ap);
    va_end(ap);
    if (rc != VX_OK) f->inst[f->n_inst - 1] = NULL;
    return rc;
}

/* ================================================================ descriptor */

static void test_descriptor_is_a_multilingual_streaming_tts_named_tts_espeak(void **state) {
    assert_int_equal(tts->magic, VX_PLUGIN_MAGIC);
    assert_int_equal(tts->abi_major, VX_ABI_MAJOR);
    assert_string_equal(tts->name, "tts_espeak");
    assert_int_equal(tts->kinds, VX_KIND_TTS);
    assert_true(tts->caps & VX_CAP_STREAMING_OUTPUT);
    assert_true(tts->caps & VX_CAP_MULTILINGUAL);
    assert_non_null(tts->tts);
    assert_null(tts->stt);
    assert_null(tts->llm);
}

static void test_schema_declares_voice_rate_pitch_and_data_path_with_defaults(void **state) {
    static const char *const keys[][2] = {
        {"voice", "en-us"}, {"rate", "175"}, {"pitch", "50"}, {"data_path", ""}};

    for (size_t i = 0; i < 4; i++) {
        const vx_config_key *k = tts->config;
        while (k->key && strcmp(k->key, keys[i][0]) != 0) k++;
        assert_non_null(k->key);
        assert_string_equal(k->def, keys[i][1]);
    }
}

/* ================================================================ audio */

static void test_hello_is_22050hz_speech_of_a_sane_length(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 22050);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.errors, 0);
    assert_in_range(d.frames, 22050 / 2, 4 * 22050);
    assert_true(d.frames <= d.pcm_cap);
    assert_true(rms(d.pcm, d.frames) > 500);
}

static void test_audio_comes_in_several_chunks_before_on_done(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, hello, NULL, &fmt);
    seen d;

    rec_snap(r, &d);
    assert_true(d.n_chunks > 1);
    /* One espeak-ng buffer of about 100 ms each (it rounds up a little). */
    for (size_t i = 0; i < d.n_chunks; i++) assert_in_range(d.chunks[i], 1, 22050 / 10 + 16);
    assert_int_equal(d.first_audio_at, 1);
    assert_int_equal(d.done_at, d.events);
    assert_int_equal(d.events, d.n_chunks + 1);
}

static void test_longer_sentence_gives_longer_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t short_frames = frames_of(f, in, "Hello there.", NULL);
    size_t long_frames = frames_of(f, in, long_text, NULL);

    assert_true(short_frames > 0);
    assert_true(long_frames > 3 * short_frames);
}

static void test_rate_80_is_longer_than_rate_300(void **state) {
    fixture *f = *state;
    size_t slow = fx_inst(f, "rate", "80", NULL);
    size_t fast = fx_inst(f, "rate", "300", NULL);

    assert_true(frames_of(f, slow, long_text, NULL) > 2 * frames_of(f, fast, long_text, NULL));
}

static void test_empty_text_gives_on_done_without_audio(void **state) {
    static const char *const texts[] = {"", "   ", "\t\n", "...?!",
                                        "\xF0\x9F\x98\x80 \xF0\x9F\x91\x8D"};
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        vx_audio_format fmt = {0};
        rec *r = speak(f, in, texts[i], NULL, &fmt);
        seen d;

        rec_snap(r, &d);
        assert_int_equal(fmt.sample_rate, 22050);
        assert_int_equal(d.done, 1);
        assert_int_equal(d.errors, 0);
        assert_int_equal(d.n_chunks, 0);
        assert_int_equal(d.events, 1);
    }
}

static void test_emoji_are_not_read_out(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t plain = frames_of(f, in, "Hello there, my friend.", NULL);
    size_t with = frames_of(f, in,
                            "Hello \xF0\x9F\x98\x80 there, my \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"
                            " friend.",
                            NULL);

    /* "grinning face" and "thumbs up" would add about a second. */
    assert_in_range(with, plain * 9 / 10, plain * 11 / 10);
}

/* ================================================================ voices */

static void test_french_voice_speaks_french(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "voice", "fr", NULL);
    vx_audio_format fmt = {0};
    rec *r = speak(f, in, "Bonjour, comment allez-vous aujourd'hui ?", NULL, &fmt);
    seen d;

    rec_snap(r, &d);
    assert_int_equal(fmt.sample_rate, 22050);
    assert_int_equal(d.done, 1);
    assert_in_range(d.frames, 22050 / 2, 5 * 22050);
    assert_true(rms(d.pcm, d.frames) > 500);
}

static void test_voice_argument_selects_another_language(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t in_fr = fx_inst(f, "voice", "fr", NULL);
    /* French reads it as three syllables, English spells out about four. */
    const char *word = "Cinquante";
    size_t en = frames_of(f, in, word, NULL);
    size_t fr = frames_of(f, in_fr, word, NULL);
    size_t fr_arg = frames_of(f, in, word, "fr");

    assert_in_range(fr_arg, fr * 95 / 100, fr * 105 / 100);
    assert_true(fr_arg < en * 85 / 100);
    assert_true(frames_of(f, in, word, "de") > 0);
    assert_true(frames_of(f, in, word, "es") > 0);
    /* And back: the instance default is selected again after another voice. */
    assert_in_range(frames_of(f, in, word, NULL), en * 95 / 100, en * 105 / 100);
}

static void test_unknown_voice_falls_back_to_the_default_with_a_debug_log(void **state) {
    static const char *const names[] = {"alloy", "../../../etc/passwd", "en us", "", NULL};
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t want = frames_of(f, in, hello, NULL);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        vx_audio_format fmt = {0};
        rec *r = speak(f, in, hello, names[i], &fmt);
        seen d;

        rec_snap(r, &d);
        assert_int_equal(fmt.sample_rate, 22050);
        assert_int_equal(d.done, 1);
        assert_int_equal(d.errors, 0);
        assert_in_range(d.frames, want * 9 / 10, want * 11 / 10);
    }
    assert_true(host_logged(&f->hosts[in], "alloy"));
}

static void test_unknown_configured_voice_is_refused_at_init(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_inst_refused(f, &err, "voice", "xx-nowhere", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "xx-nowhere"));
    assert_int_equal(fx_inst_refused(f, &err, "voice", "../fr", NULL), VX_EINVAL);
}

static void test_data_path_that_is_not_a_directory_is_refused_at_init(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_inst_refused(f, &err, "data_path", "/nonexistent/espeak", NULL),
                     VX_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/espeak"));
}

/* ================================================================ cancel, close */

static void test_cancel_after_the_first_chunk_stops_the_synthesis(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    size_t full = frames_of(f, in, long_text, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen d;

    r->hold = 1; /* park the plugin inside the first on_audio */
    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
    assert_true(rec_wait(r, has_audio));
    tts->tts->cancel(s);
    rec_release(r);
    assert_true(rec_wait(r, has_ended));
    rec_snap(r, &d);
    assert_int_equal(d.done + d.errors, 1);
    if (d.errors) assert_int_equal(d.err.code, VX_ECANCELED);
    assert_true(d.frames < full / 2);
    /* The engine is free again for the next stream. */
    assert_true(frames_of(f, in, hello, NULL) > 22050 / 2);
}

static void test_cancel_of_a_stream_waiting_for_the_engine_ends_it_without_audio(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *busy = fx_rec(f), *queued = fx_rec(f);
    vx_stream *a, *b;
    seen d;

    busy->hold = 1; /* holds the engine: every other stream waits */
    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, busy, &a), VX_OK);
    assert_true(rec_wait(busy, has_audio));
    assert_int_equal(tts_start(f, in, hello, NULL, &fmt, queued, &b), VX_OK);
    tts->tts->cancel(b);
    rec_release(busy);
    assert_true(rec_wait(queued, has_ended));
    assert_true(rec_wait(busy, has_ended));
    rec_snap(queued, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.n_chunks, 0);
}

static void test_cancel_is_idempotent_and_ends_with_one_event(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen d;

    assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
    tts->tts->cancel(s);
    tts->tts->cancel(s);
    assert_true(rec_wait(r, has_ended));
    tts->tts->cancel(s);
    sleep_ms(50);
    fx_close(f, s, r);
    rec_snap(r, &d);
    assert_int_equal(d.done + d.errors, 1);
    if (d.errors) assert_int_equal(d.err.code, VX_ECANCELED);
}

static void test_cancel_after_done_sends_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_audio_format fmt = {0};
    rec *r = fx_rec(f);
    vx_stream *s;
    seen before, after;

    assert_int_equal(tts_start(f, in, hello, NULL, &fmt, r, &s), VX_OK);
    assert_true(rec_wait(r, has_ended));
    rec_snap(r, &before);
    tts->tts->cancel(s);
    sleep_ms(50);
    fx_close(f, s, r);
    rec_snap(r, &after);
    assert_int_equal(after.events, before.events);
    assert_int_equal(after.done, 1);
    assert_int_equal(after.errors, 0);
}

static void test_close_without_waiting_is_safe_and_silences_the_stream(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);

    for (int i = 0; i < 20; i++) {
        vx_audio_format fmt = {0};
        rec *r = fx_rec(f);
        vx_stream *s;
        seen d;

        assert_int_equal(tts_start(f, in, long_text, NULL, &fmt, r, &s), VX_OK);
        if (i % 2) sleep_ms(1);
        fx_close(f, s, r);
        sleep_ms(5);
        rec_snap(r, &d);
        assert_int_equal(d.after_close, 0);
        assert_true(d.done + d.errors <= 1);
    }
}

/* ================================================================ concurrency */

/* espeak-ng crashes when two threads synthesize at once: the plugin must
 * serialize. Several rounds, two instances with different voices, so the
 * voice switches between streams too. */
static void test_eight_concurrent_streams_all_complete(void **state) {
    fixture *f = *state;
    size_t en = fx_inst(f, NULL);
    size_t fr = fx_inst(f, "voice", "fr", "rate", "220", NULL);
    rec *rs[8];
    vx_stream *ss[8];

    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 8; i++) {
            vx_audio_format fmt = {0};
            rs[i] = fx_rec(f);
            assert_int_equal(tts_start(f, i % 2 ? fr : en, i % 4 < 2 ? hello : long_text, NULL,
                                       &fmt, rs[i], &ss[i]),
                             VX_OK);
        }
        for (int i = 0; i < 8; i++) {
            seen d;
            assert_true(rec_wait(rs[i], has_ended));
            rec_snap(rs[i], &d);
            assert_int_equal(d.done, 1);
            assert_int_equal(d.errors, 0);
            assert_in_range(d.frames, 22050 / 2, 20 * 22050);
        }
        for (int i = 0; i < 8; i++) fx_close(f, ss[i], rs[i]);
    }
}

/* ================================================================ errors */

static void test_synthesize_without_events_is_einval(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, NULL);
    vx_tts_events ev = {sizeof(ev), NULL, on_audio, NULL, on_error};
    vx_audio_format fmt = {0};
    vx_error err = {0};
    vx_stream *s = (vx_stream *)&fmt;

    assert_int_equal(tts->tts->synthesize(f->inst[in], hello, NULL, &fmt, &ev, &s, &err),
                     VX_EINVAL);
    assert_null(s);
    assert_int_equal(err.code, VX_EINVAL);
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_multilingual_streaming_tts_named_tts_espeak),
        cmocka_unit_test(test_schema_declares_voice_rate_pitch_and_data_path_with_defaults),

        T(test_hello_is_22050hz_speech_of_a_sane_length),
        T(test_audio_comes_in_several_chunks_before_on_done),
        T(test_longer_sentence_gives_longer_audio),
        T(test_rate_80_is_longer_than_rate_300),
        T(test_empty_text_gives_on_done_without_audio),
        T(test_emoji_are_not_read_out),

        T(test_french_voice_speaks_french),
        T(test_voice_argument_selects_another_language),
        T(test_unknown_voice_falls_back_to_the_default_with_a_debug_log),
        T(test_unknown_configured_voice_is_refused_at_init),
        T(test_data_path_that_is_not_a_directory_is_refused_at_init),

        T(test_cancel_after_the_first_chunk_stops_the_synthesis),
        T(test_cancel_of_a_stream_waiting_for_the_engine_ends_it_without_audio),
        T(test_cancel_is_idempotent_and_ends_with_one_event),
        T(test_cancel_after_done_sends_nothing),
        T(test_close_without_waiting_is_safe_and_silences_the_stream),

        T(test_eight_concurrent_streams_all_complete),

        T(test_synthesize_without_events_is_einval),
    };
#undef T
    vx_plugin_entry_fn entry;
    int failed;

    tts_dl = dlopen(TTS_SO, RTLD_NOW | RTLD_LOCAL);
    if (!tts_dl) {
        fprintf(stderr, "dlopen %s: %s\n", TTS_SO, dlerror());
        return 1;
    }
    entry = (vx_plugin_entry_fn)(uintptr_t)dlsym(tts_dl, VX_PLUGIN_ENTRY_SYMBOL);
    if (!entry || !(tts = entry(&test_api))) {
        fprintf(stderr, "%s: no usable %s\n", TTS_SO, VX_PLUGIN_ENTRY_SYMBOL);
        dlclose(tts_dl);
        return 1;
    }
    failed = cmocka_run_group_tests_name("tts_espeak", tests, NULL, NULL);
    /* No dlclose: libespeak-ng keeps buffers in its globals that
     * espeak_ng_Terminate() does not free; unmapping the library with the
     * plugin would turn them into "definitely lost" blocks under valgrind.
     * The plugin's destructor still terminates espeak-ng at exit. */
    return failed;
}
