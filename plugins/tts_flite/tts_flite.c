/*
 * tts_flite: offline text-to-speech with CMU flite 2.2.
 *
 * The five voices linked in (slt, kal16, kal, awb, rms) are registered once
 * per process when the first instance starts and unregistered when the last
 * one stops; registration is the only part of flite that is not thread-safe,
 * and it runs on the host's main thread (init/shutdown), where no stream is
 * open. After it, any number of threads synthesize with the shared voices.
 *
 * Every stream owns one worker thread that runs the whole synthesis and
 * delivers all of the stream's events, so close() only has to stop and join
 * it. Audio is streamed: the worker hangs a streaming callback on its own
 * utterance (never on the shared voice, whose features every thread reads),
 * flite calls it each time a few hundred samples are ready, and the callback
 * re-cuts them into chunks of chunk_ms. cancel() and close() raise a flag
 * that the callback answers with CST_AUDIO_STREAM_STOP, which ends the
 * synthesis at the next block of samples.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <flite/flite.h>
#include <flite/flite_version.h>
#include <voxray/plugin.h>

#define FL_VERSION "1.0.0"
#define FL_STACK_SIZE (1024 * 1024)

/* flite's voice libraries export these without declaring them anywhere. */
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);
void unregister_cmu_us_slt(cst_voice *v);
void unregister_cmu_us_kal16(cst_voice *v);
void unregister_cmu_us_kal(cst_voice *v);
void unregister_cmu_us_awb(cst_voice *v);
void unregister_cmu_us_rms(cst_voice *v);

/* The voices, in the order of the "voice" key's choices. */
#define FL_VOICE_CHOICES "slt|kal16|kal|awb|rms"
#define FL_N_VOICES 5

typedef struct fl_voice {
    const char *name;
    cst_voice *(*reg)(const char *voxdir);
    void (*unreg)(cst_voice *v);
    /* Filled at registration, read-only while any instance lives. */
    cst_voice *v;
    uint32_t rate;   /* Hz, from the voice's "sample_rate" feature */
    float stretch;   /* the voice's own duration_stretch (kal: not 1) */
} fl_voice;

static fl_voice fl_voices[FL_N_VOICES] = {
    {"slt", register_cmu_us_slt, unregister_cmu_us_slt, NULL, 0, 0},
    {"kal16", register_cmu_us_kal16, unregister_cmu_us_kal16, NULL, 0, 0},
    {"kal", register_cmu_us_kal, unregister_cmu_us_kal, NULL, 0, 0},
    {"awb", register_cmu_us_awb, unregister_cmu_us_awb, NULL, 0, 0},
    {"rms", register_cmu_us_rms, unregister_cmu_us_rms, NULL, 0, 0},
};

/* Guards fl_users and the registration it drives. */
static pthread_mutex_t fl_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned fl_users;

static const vx_config_key fl_config[] = {
    {"voice", VX_CFG_ENUM, "slt",
     "voice when the session names none of these: slt (US female, 16 kHz), kal16 (US male, "
     "16 kHz), kal (US male, 8 kHz), awb (Scottish male, 16 kHz), rms (US male, 16 kHz)",
     0, 0, FL_VOICE_CHOICES, 0},
    {"rate", VX_CFG_FLOAT, "1.0", "speaking speed factor: 2 is twice as fast, 0.5 half as fast",
     0.5, 2.0, NULL, 0},
    {"chunk_ms", VX_CFG_DURATION, "100ms", "length of each audio chunk delivered to the host",
     5, 2000, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct fl_inst {
    const vx_host_api *api;
    vx_host *h;
    const fl_voice *voice; /* the default */
    double rate;
    uint32_t chunk_ms;
} fl_inst;

struct vx_stream {
    vx_tts_events ev;
    const fl_voice *voice;
    float stretch;
    char *text; /* normalized; "" when nothing is left to say */
    int16_t *buf; /* the chunk being filled, only touched by the worker */
    size_t chunk, fill;
    pthread_t thread;
    atomic_int stop;    /* cancel() or close(): end the synthesis */
    atomic_int closing; /* close(): deliver nothing more */
};

/* ---------------------------------------------------------------- helpers */

static void fl_seterr(vx_error *err, int code, int retryable, const char *fmt, ...)
    VX_PRINTF(4, 5);

static void fl_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* The voice called name ("slt" or "cmu_us_slt", any case), or NULL. */
static const fl_voice *fl_voice_find(const char *name) {
    if (!name) return NULL;
    if (strncasecmp(name, "cmu_us_", 7) == 0) name += 7;
    for (int i = 0; i < FL_N_VOICES; i++)
        if (strcasecmp(name, fl_voices[i].name) == 0) return &fl_voices[i];
    return NULL;
}

/* Latin-1 letters U+00C0..U+00FF without their accents. */
static const char *const fl_latin1[64] = {
    "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E", "I", "I", "I", "I",
    "D", "N", "O", "O", "O", "O", "O", " ", "O", "U", "U", "U", "U", "Y", "TH", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", " ", "o", "u", "u", "u", "u", "y", "th", "y"};

/* The next code point of UTF-8 text at *p, advancing *p; -1 for a byte that
 * does not start a well-formed sequence (the byte is skipped). */
static long fl_utf8_next(const unsigned char **p) {
    const unsigned char *s = *p;
    long cp;
    int n;

    if (s[0] < 0x80) return *p += 1, s[0];
    if (s[0] >= 0xc2 && s[0] <= 0xdf) n = 1, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) n = 2, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) n = 3, cp = s[0] & 0x07;
    else return *p += 1, -1;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80) return *p += 1, -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    *p += n + 1;
    return cp;
}

/* What flite should read for code point cp: flite knows ASCII only, and
 * reads anything else as garbage or not at all. Typographic punctuation
 * becomes its ASCII twin, accented Latin letters lose the accent, control
 * characters become spaces, and everything else (emoji, symbols, other
 * scripts, joiners) is dropped. Never longer than cp's UTF-8 encoding.
 * Printable ASCII is the caller's business. */
static const char *fl_ascii_for(long cp) {
    if (cp < 0) return "";
    if (cp < 0x80) return " "; /* control characters: printable ASCII never comes here */
    if (cp >= 0xc0 && cp <= 0xff) return fl_latin1[cp - 0xc0];
    switch (cp) {
    case 0xa0: case 0x2002: case 0x2003: case 0x2009: case 0x202f:
        return " ";
    case 0xab: case 0xbb: case 0x201c: case 0x201d: case 0x201e:
        return "\"";
    case 0x2018: case 0x2019: case 0x201a: case 0x2032:
        return "'";
    case 0x2010: case 0x2011: case 0x2013: case 0x2014: case 0x2212:
        return " - ";
    case 0x2026:
        return "...";
    default:
        return " ";
    }
}

/* A copy of text flite can read (see fl_ascii_for), with runs of spaces
 * collapsed and both ends trimmed; "" when no letter or digit is left.
 * NULL when out of memory. */
static char *fl_normalize(const char *text) {
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), o = 0;
    int speakable = 0;
    char *out = malloc(n + 1);

    if (!out) return NULL;
    while (*p) {
        long cp = fl_utf8_next(&p);
        const char *a;
        char c;

        /* ASCII is the common case and needs no table. */
        if (cp >= 0x20 && cp < 0x7f) {
            c = (char)cp;
            if (c == ' ' && (o == 0 || out[o - 1] == ' ')) continue;
            speakable |= isalnum((unsigned char)c) != 0;
            out[o++] = c;
            continue;
        }
        for (a = fl_ascii_for(cp); *a; a++) {
            if (*a == ' ' && (o == 0 || out[o - 1] == ' ')) continue;
            speakable |= isalnum((unsigned char)*a) != 0;
            out[o++] = *a;
        }
    }
    while (o && out[o - 1] == ' ') o--;
    out[speakable ? o : 0] = '\0';
    return out;
}

/* ---------------------------------------------------------------- streams */

/* flite's streaming callback: samples [start, start+size) of w are final.
 * Runs on the stream's worker. */
static int fl_on_samples(const cst_wave *w, int start, int size, int last,
                         cst_audio_streaming_info *asi) {
    struct vx_stream *s = asi->userdata;
    const short *src = w->samples + start;

    (void)last; /* the worker flushes the partial chunk after synthesis */
    while (size > 0) {
        size_t n = s->chunk - s->fill;
        if (atomic_load_explicit(&s->stop, memory_order_relaxed))
            return CST_AUDIO_STREAM_STOP;
        if (n > (size_t)size) n = (size_t)size;
        memcpy(s->buf + s->fill, src, n * sizeof(*src));
        s->fill += n;
        src += n;
        size -= (int)n;
        if (s->fill == s->chunk) {
            s->ev.on_audio(s->ev.user, s->buf, s->fill);
            s->fill = 0;
        }
    }
    return atomic_load_explicit(&s->stop, memory_order_relaxed) ? CST_AUDIO_STREAM_STOP
                                                                 : CST_AUDIO_STREAM_CONT;
}

/* Synthesize the stream's text, then end it with on_done, or on_error when
 * cancelled or when flite failed. Nothing is delivered once close() began. */
static void *fl_worker(void *arg) {
    struct vx_stream *s = arg;
    cst_utterance *u;
    cst_audio_streaming_info *asi;
    vx_error err = {0};
    int failed = 0;

    if (s->text[0] && !atomic_load(&s->stop)) {
        u = new_utterance();
        asi = new_audio_streaming_info();
        asi->asc = fl_on_samples;
        asi->userdata = s;
        /* The utterance owns asi from here and frees it with itself. */
        feat_set(u->features, "streaming_info", audio_streaming_info_val(asi));
        feat_set_float(u->features, "duration_stretch", s->stretch);
        utt_set_input_text(u, s->text);
        /* On failure flite_do_synth frees u itself and returns NULL. */
        u = flite_do_synth(u, s->voice->v, utt_synth);
        if (u) delete_utterance(u);
        else failed = 1;
    }
    if (atomic_load(&s->closing)) return NULL;
    if (atomic_load(&s->stop)) {
        fl_seterr(&err, VX_ECANCELED, 0, "flite: cancelled");
        s->ev.on_error(s->ev.user, &err);
    } else if (failed) {
        fl_seterr(&err, VX_EINTERNAL, 0, "flite: voice %s could not synthesize the text",
                  s->voice->name);
        s->ev.on_error(s->ev.user, &err);
    } else {
        if (s->fill) s->ev.on_audio(s->ev.user, s->buf, s->fill);
        s->fill = 0;
        s->ev.on_done(s->ev.user);
    }
    return NULL;
}

static void fl_stream_free(struct vx_stream *s) {
    free(s->text);
    free(s->buf);
    free(s);
}

/* Fails with VX_EINVAL (no text, no fmt or a missing event), VX_ENOMEM (no
 * memory or no thread; retryable). An unknown voice is not an error: the
 * instance's default speaks instead. */
static int fl_synthesize(void *inst, const char *text, const char *voice, vx_audio_format *fmt,
                         const vx_tts_events *ev, vx_stream **out, vx_error *err) {
    fl_inst *in = inst;
    struct vx_stream *s = NULL;
    vx_tts_events e = {0};
    pthread_attr_t attr;
    int rc;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!text || !fmt || !e.on_audio || !e.on_done || !e.on_error) {
        fl_seterr(err, VX_EINVAL, 0, "flite: synthesize needs text, fmt and all three events");
        return VX_EINVAL;
    }
    if (!(s = calloc(1, sizeof(*s)))) goto oom;
    s->ev = e;
    s->voice = fl_voice_find(voice);
    if (!s->voice) {
        if (voice && *voice && in->api->log_enabled(in->h, VX_LOG_DEBUG))
            in->api->log(in->h, VX_LOG_DEBUG, "no flite voice '%s', speaking with %s", voice,
                         in->voice->name);
        s->voice = in->voice;
    }
    s->stretch = (float)(s->voice->stretch / in->rate);
    s->chunk = (size_t)in->chunk_ms * s->voice->rate / 1000;
    if (s->chunk == 0) s->chunk = 1;
    atomic_init(&s->stop, 0);
    atomic_init(&s->closing, 0);
    if (!(s->text = fl_normalize(text))) goto oom;
    if (!(s->buf = malloc(s->chunk * sizeof(*s->buf)))) goto oom;

    if (pthread_attr_init(&attr) != 0) goto nothread;
    pthread_attr_setstacksize(&attr, FL_STACK_SIZE);
    rc = pthread_create(&s->thread, &attr, fl_worker, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) goto nothread;
    fmt->sample_rate = s->voice->rate;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    *out = s;
    return VX_OK;
oom:
    if (s) fl_stream_free(s);
    fl_seterr(err, VX_ENOMEM, 1, "flite: out of memory starting a synthesis");
    return VX_ENOMEM;
nothread:
    fl_stream_free(s);
    fl_seterr(err, VX_ENOMEM, 1, "flite: cannot start a synthesis thread");
    return VX_ENOMEM;
}

static void fl_cancel(vx_stream *s) {
    if (s) atomic_store(&s->stop, 1);
}

/* Stop the synthesis at its next block of samples, wait for the worker (an
 * event callback in progress finishes first), free the stream. */
static void fl_close(vx_stream *s) {
    if (!s) return;
    atomic_store(&s->closing, 1);
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    fl_stream_free(s);
}

static const vx_tts_vtable fl_tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = fl_synthesize,
    .cancel = fl_cancel,
    .close = fl_close,
};

/* ---------------------------------------------------------------- voices */

/* Register every voice for the first instance. Fails (0 voices kept) when
 * flite cannot build one, which only a broken installation does. */
static int fl_voices_acquire(void) {
    int i, rc = 0;

    pthread_mutex_lock(&fl_reg_mu);
    if (fl_users++ > 0) goto out;
    flite_init();
    for (i = 0; i < FL_N_VOICES; i++) {
        fl_voice *v = &fl_voices[i];
        if (!(v->v = v->reg(NULL))) break;
        v->rate = (uint32_t)flite_get_param_int(v->v->features, "sample_rate", 16000);
        v->stretch = flite_get_param_float(v->v->features, "duration_stretch", 1.0f);
        if (v->stretch <= 0) v->stretch = 1.0f;
    }
    if (i < FL_N_VOICES) {
        while (i-- > 0) fl_voices[i].unreg(fl_voices[i].v), fl_voices[i].v = NULL;
        fl_users = 0;
        rc = -1;
    }
out:
    pthread_mutex_unlock(&fl_reg_mu);
    return rc;
}

static void fl_voices_release(void) {
    pthread_mutex_lock(&fl_reg_mu);
    if (fl_users > 0 && --fl_users == 0) {
        for (int i = 0; i < FL_N_VOICES; i++) {
            fl_voices[i].unreg(fl_voices[i].v);
            fl_voices[i].v = NULL;
        }
    }
    pthread_mutex_unlock(&fl_reg_mu);
}

/* ---------------------------------------------------------------- config */

/* The value the host validated, or the schema default when init is called
 * with a partial config. */
static const char *fl_cfg(const vx_config *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = fl_config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

/* Read the keys into in, as the host parsed them (ABI 1.6 typed
 * getters); the name of the first bad key, or NULL. */
static const char *fl_configure(fl_inst *in, const vx_config *cfg) {
    const vx_host_api *host = in->api;
    int64_t ms = 0;

    if (!(in->voice = fl_voice_find(fl_cfg(cfg, "voice")))) return "voice";
    if (host->config_float(in->h, "rate", &in->rate) != VX_OK ||
        !(in->rate >= 0.5 && in->rate <= 2.0))
        return "rate";
    if (host->config_duration_ms(in->h, "chunk_ms", &ms) != VX_OK || ms < 5 || ms > 2000)
        return "chunk_ms";
    in->chunk_ms = (uint32_t)ms;
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static void fl_shutdown(void *inst) {
    if (!inst) return;
    free(inst);
    fl_voices_release();
}

/* Fails with VX_EINVAL naming a key whose value does not parse (the host
 * validated them, so only a direct caller gets there), VX_ENOMEM, or
 * VX_EINTERNAL when flite cannot build its voices. */
static int fl_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    fl_inst *in = calloc(1, sizeof(*in));
    const char *bad;

    if (!in) {
        fl_seterr(err, VX_ENOMEM, 0, "flite: out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    if ((bad = fl_configure(in, cfg)) != NULL) {
        fl_seterr(err, VX_EINVAL, 0, "flite: bad value for %s: '%s'", bad, fl_cfg(cfg, bad));
        free(in);
        return VX_EINVAL;
    }
    if (fl_voices_acquire() != 0) {
        fl_seterr(err, VX_EINTERNAL, 0, "flite: cannot register the built-in voices");
        free(in);
        return VX_EINTERNAL;
    }
    host->log(h, VX_LOG_INFO, "flite %s: voice %s (%u Hz), rate %.2f, chunks of %u ms",
              FLITE_PROJECT_VERSION, in->voice->name,
              (unsigned)in->voice->rate, in->rate, (unsigned)in->chunk_ms);
    *inst = in;
    return VX_OK;
}

static const vx_plugin_info fl_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_TTS,
    .name = "tts_flite",
    .version = FL_VERSION,
    .description = "offline English text-to-speech with CMU flite (slt, kal16, kal, awb, rms)",
    .caps = VX_CAP_STREAMING_OUTPUT,
    .config = fl_config,
    .init = fl_init,
    .shutdown = fl_shutdown,
    .tts = &fl_tts,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The typed config getters arrived in 1.6. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_float || !host->config_duration_ms) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "tts_flite needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &fl_info;
}
