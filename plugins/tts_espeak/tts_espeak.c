/*
 * tts_espeak: offline multilingual text-to-speech with espeak-ng 1.51.
 *
 * espeak-ng keeps all of its state in globals: two threads synthesizing at
 * once crash it, and so does changing the voice while another thread
 * speaks. Every espeak-ng call of this file therefore runs under es_mu, one
 * mutex for the whole process, shared by all instances. A sentence takes
 * about 3 ms of that lock, so streams queue behind each other only briefly.
 *
 * espeak-ng is initialised once per process, by the first instance, in
 * synchronous mode: espeak_ng_Synthesize() returns when the whole text has
 * been passed to the synth callback. It is terminated only when this file
 * is unloaded (or the process exits), never when the last instance stops:
 * espeak-ng 1.51 hangs in espeak_ng_Terminate() once it has been
 * initialised a second time in the same process, which instance restarts
 * (SIGHUP) would otherwise do.
 *
 * Every stream owns one worker thread that takes the lock, selects its
 * voice, synthesizes, and delivers all of the stream's events, so close()
 * only has to stop and join it. The synth callback forwards each buffer
 * (ES_BUFFER_MS of audio) as one on_audio chunk, and answers 1 (abort) once
 * cancel() or close() raised the stream's stop flag.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <voxray/plugin.h>

#define ES_VERSION "1.0.0"
#define ES_STACK_SIZE (1024 * 1024)
#define ES_BUFFER_MS 100 /* audio per synth callback, so per on_audio chunk */
#define ES_VOICE_MAX 64  /* longest voice name accepted, NUL included */

static const vx_config_key es_config[] = {
    {"voice", VX_CFG_STRING, "en-us",
     "espeak-ng voice when the session names none it knows: a language such as en-us, "
     "en-gb, fr, de, es, optionally with a variant (en-us+f3); `espeak-ng --voices` lists them",
     0, ES_VOICE_MAX - 1, NULL, 0},
    {"rate", VX_CFG_INT, "175", "speaking rate in words per minute", 80, 450, NULL, 0},
    {"pitch", VX_CFG_INT, "50", "base pitch, 0 (lowest) to 100", 0, 100, NULL, 0},
    {"data_path", VX_CFG_STRING, "",
     "directory that holds espeak-ng-data, or is it (empty: espeak-ng's built-in location); "
     "espeak-ng is set up once per process, so only the first instance's value counts",
     0, 4096, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct es_inst {
    const vx_host_api *api;
    vx_host *h;
    char voice[ES_VOICE_MAX]; /* the default, known to espeak-ng */
    int rate, pitch;
    uint32_t sample_rate; /* es_rate, copied at init: it never changes */
} es_inst;

struct vx_stream {
    es_inst *in;
    vx_tts_events ev;
    char voice[ES_VOICE_MAX]; /* asked for; "" = the instance default */
    char *text;               /* normalized; "" when nothing is left to say */
    pthread_t thread;
    atomic_int stop;    /* cancel() or close(): abort the synthesis */
    atomic_int closing; /* close(): deliver nothing more */
};

/* Process-wide espeak-ng state, all guarded by es_mu. */
static pthread_mutex_t es_mu = PTHREAD_MUTEX_INITIALIZER;
static int es_ready;                   /* this file initialised espeak-ng */
static int es_rate;                    /* its output rate, Hz */
static char es_path[4096];             /* data_path it was initialised with */
static char es_selected[ES_VOICE_MAX]; /* voice espeak-ng has loaded, "" unknown */
static struct vx_stream *es_current;   /* the stream being synthesized */

/* ---------------------------------------------------------------- helpers */

static void es_seterr(vx_error *err, int code, int retryable, const char *fmt, ...)
    VX_PRINTF(4, 5);

static void es_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* A name espeak-ng may be asked for: letters, digits, '-', '_' and '+'
 * (variants), nothing that could make it open a file outside its voices
 * directory. */
static int es_voice_name_ok(const char *name) {
    size_t n = 0;

    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '+'))
            return 0;
    }
    return n > 0 && n < ES_VOICE_MAX;
}

/* Make name espeak-ng's current voice. Call with es_mu held. Returns
 * ENS_OK, ENS_VOICE_NOT_FOUND for a name it does not know (or may not be
 * given), or another espeak-ng status. */
static espeak_ng_STATUS es_select(const char *name) {
    espeak_ng_STATUS st;

    if (strcmp(es_selected, name) == 0) return ENS_OK;
    if (!es_voice_name_ok(name)) return ENS_VOICE_NOT_FOUND;
    st = espeak_ng_SetVoiceByName(name);
    if (st == ENS_OK) snprintf(es_selected, sizeof(es_selected), "%s", name);
    else es_selected[0] = '\0'; /* whatever it left loaded, it is not a name we know */
    return st;
}

/* The next code point of UTF-8 text at *p, advancing *p; -1 for a byte that
 * does not start a well-formed sequence (the byte is skipped). */
static long es_utf8_next(const unsigned char **p) {
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

/* Pictographs espeak-ng would read out by name ("grinning face"), and the
 * selectors and joiners that glue them together. */
static int es_is_emoji(long cp) {
    return (cp >= 0x1f000 && cp <= 0x1faff) || (cp >= 0x2600 && cp <= 0x27bf) ||
           (cp >= 0x2b00 && cp <= 0x2bff) || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0x200d ||
           cp == 0x20e3 || (cp >= 0xe0020 && cp <= 0xe007f);
}

/* A copy of text without control characters (spaces instead), emoji or
 * malformed UTF-8; "" when nothing but spaces and ASCII punctuation is left.
 * NULL when out of memory. */
static char *es_normalize(const char *text) {
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    int speakable = 0;
    char *out = malloc(strlen(text) + 1);

    if (!out) return NULL;
    while (*p) {
        const unsigned char *start = p;
        long cp = es_utf8_next(&p);

        if (cp < 0 || es_is_emoji(cp)) continue;
        if (cp < 0x20 || cp == 0x7f) {
            out[o++] = ' ';
            continue;
        }
        if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
            cp >= 0x80)
            speakable = 1;
        memcpy(out + o, start, (size_t)(p - start));
        o += (size_t)(p - start);
    }
    out[speakable ? o : 0] = '\0';
    return out;
}

/* ---------------------------------------------------------------- streams */

/* espeak-ng's synth callback, called with es_mu held by the worker of
 * es_current. wav is NULL at the end of the text; numsamples may be 0. */
static int es_on_samples(short *wav, int numsamples, espeak_EVENT *events) {
    struct vx_stream *s = es_current;

    (void)events;
    if (!s || atomic_load_explicit(&s->stop, memory_order_relaxed)) return 1;
    if (wav && numsamples > 0) s->ev.on_audio(s->ev.user, wav, (size_t)numsamples);
    return atomic_load_explicit(&s->stop, memory_order_relaxed) ? 1 : 0;
}

/* Synthesize the stream's text under es_mu, then end the stream with
 * on_done, or on_error when cancelled or when espeak-ng failed. Nothing is
 * delivered once close() began. */
static void *es_worker(void *arg) {
    struct vx_stream *s = arg;
    es_inst *in = s->in;
    espeak_ng_STATUS st = ENS_OK;
    vx_error err = {0};
    char msg[160] = "";

    if (s->text[0]) {
        pthread_mutex_lock(&es_mu);
        if (!atomic_load(&s->stop)) {
            if (s->voice[0] && (st = es_select(s->voice)) != ENS_OK) {
                if (in->api->log_enabled(in->h, VX_LOG_DEBUG))
                    in->api->log(in->h, VX_LOG_DEBUG,
                                 "no espeak-ng voice '%s', speaking with %s", s->voice,
                                 in->voice);
                s->voice[0] = '\0';
            }
            if (!s->voice[0]) st = es_select(in->voice);
            if (st == ENS_OK) st = espeak_ng_SetParameter(espeakRATE, in->rate, 0);
            if (st == ENS_OK) st = espeak_ng_SetParameter(espeakPITCH, in->pitch, 0);
            if (st == ENS_OK) {
                es_current = s;
                st = espeak_ng_Synthesize(s->text, strlen(s->text) + 1, 0, POS_CHARACTER, 0,
                                          espeakCHARS_UTF8 | espeakENDPAUSE, NULL, s);
                es_current = NULL;
            }
            if (st != ENS_OK) espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
        }
        pthread_mutex_unlock(&es_mu);
    }
    if (atomic_load(&s->closing)) return NULL;
    if (atomic_load(&s->stop)) {
        es_seterr(&err, VX_ECANCELED, 0, "espeak-ng: cancelled");
        s->ev.on_error(s->ev.user, &err);
    } else if (st != ENS_OK) {
        es_seterr(&err, VX_EINTERNAL, 0, "espeak-ng: %s", msg);
        s->ev.on_error(s->ev.user, &err);
    } else {
        s->ev.on_done(s->ev.user);
    }
    return NULL;
}

static void es_stream_free(struct vx_stream *s) {
    free(s->text);
    free(s);
}

/* Fails with VX_EINVAL (no text, no fmt or a missing event), VX_ENOMEM (no
 * memory or no thread; retryable). An unknown voice is not an error: the
 * instance's default speaks instead. */
static int es_synthesize(void *inst, const char *text, const char *voice, vx_audio_format *fmt,
                         const vx_tts_events *ev, vx_stream **out, vx_error *err) {
    es_inst *in = inst;
    struct vx_stream *s = NULL;
    vx_tts_events e = {0};
    pthread_attr_t attr;
    int rc;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!text || !fmt || !e.on_audio || !e.on_done || !e.on_error) {
        es_seterr(err, VX_EINVAL, 0, "espeak-ng: synthesize needs text, fmt and all three events");
        return VX_EINVAL;
    }
    if (!(s = calloc(1, sizeof(*s)))) goto oom;
    s->in = in;
    s->ev = e;
    /* A name too long to be a voice cannot be one: the default speaks. */
    if (voice && strlen(voice) < sizeof(s->voice))
        snprintf(s->voice, sizeof(s->voice), "%s", voice);
    else if (voice && *voice && in->api->log_enabled(in->h, VX_LOG_DEBUG))
        in->api->log(in->h, VX_LOG_DEBUG, "espeak-ng voice name too long, speaking with %s",
                     in->voice);
    atomic_init(&s->stop, 0);
    atomic_init(&s->closing, 0);
    if (!(s->text = es_normalize(text))) goto oom;

    if (pthread_attr_init(&attr) != 0) goto nothread;
    pthread_attr_setstacksize(&attr, ES_STACK_SIZE);
    rc = pthread_create(&s->thread, &attr, es_worker, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) goto nothread;
    fmt->sample_rate = in->sample_rate;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    *out = s;
    return VX_OK;
oom:
    if (s) es_stream_free(s);
    es_seterr(err, VX_ENOMEM, 1, "espeak-ng: out of memory starting a synthesis");
    return VX_ENOMEM;
nothread:
    es_stream_free(s);
    es_seterr(err, VX_ENOMEM, 1, "espeak-ng: cannot start a synthesis thread");
    return VX_ENOMEM;
}

static void es_cancel(vx_stream *s) {
    if (s) atomic_store(&s->stop, 1);
}

/* Abort the synthesis at its next buffer (or before it starts, when the
 * worker still waits for the lock), join the worker, free the stream. */
static void es_close(vx_stream *s) {
    if (!s) return;
    atomic_store(&s->closing, 1);
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    es_stream_free(s);
}

static const vx_tts_vtable es_tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = es_synthesize,
    .cancel = es_cancel,
    .close = es_close,
};

/* ---------------------------------------------------------------- engine */

/* Initialise espeak-ng for the whole process on the first call; later calls
 * only check that their data_path agrees (it cannot change any more).
 * Call with es_mu held. Fails with VX_EUNAVAIL when espeak-ng cannot load
 * its data, or when something else in the process initialised it (two
 * users of its globals would crash it). */
static int es_engine_start(es_inst *in, const char *path, vx_error *err) {
    espeak_ng_ERROR_CONTEXT ctx = NULL;
    espeak_ng_STATUS st;
    char msg[160];

    if (es_ready) {
        if (strcmp(path, es_path) != 0)
            in->api->log(in->h, VX_LOG_WARN,
                         "espeak-ng already reads its data from '%s'; data_path '%s' ignored",
                         es_path[0] ? es_path : "(default)", path);
        return VX_OK;
    }
    /* 0 until espeak_ng_Initialize ran somewhere in this process. */
    if (espeak_ng_GetSampleRate() != 0) {
        es_seterr(err, VX_EUNAVAIL, 0,
                  "espeak-ng: already initialised by another component of this process");
        return VX_EUNAVAIL;
    }
    espeak_ng_InitializePath(path[0] ? path : NULL);
    st = espeak_ng_Initialize(&ctx);
    espeak_ng_ClearErrorContext(&ctx);
    if (st == ENS_OK)
        st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, ES_BUFFER_MS, NULL);
    if (st != ENS_OK) {
        espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
        es_seterr(err, VX_EUNAVAIL, 0, "espeak-ng: cannot initialise (data_path '%s'): %s", path,
                  msg);
        return VX_EUNAVAIL;
    }
    espeak_SetSynthCallback(es_on_samples);
    es_rate = espeak_ng_GetSampleRate();
    snprintf(es_path, sizeof(es_path), "%s", path);
    es_selected[0] = '\0';
    es_ready = 1;
    return VX_OK;
}

/* When the plugin is unloaded (dlclose, or exit for a plugin still loaded):
 * no instance, so no stream, is left. */
__attribute__((destructor)) static void es_unload(void) {
    pthread_mutex_lock(&es_mu);
    if (es_ready) espeak_ng_Terminate();
    es_ready = 0;
    pthread_mutex_unlock(&es_mu);
}

/* ---------------------------------------------------------------- lifecycle */

/* The value the host validated, or the schema default when init is called
 * with a partial config. */
static const char *es_cfg(const vx_config *cfg, const char *key) {
    for (size_t i = 0; cfg && i < cfg->n_items; i++)
        if (cfg->items[i].key && strcmp(cfg->items[i].key, key) == 0 && cfg->items[i].value)
            return cfg->items[i].value;
    for (const vx_config_key *k = es_config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

/* An integer setting as the host parsed it (ABI 1.6), within [lo, hi]. */
static int es_int(const es_inst *in, const char *key, int64_t lo, int64_t hi, int *out) {
    int64_t v = 0;

    if (in->api->config_int(in->h, key, &v) != VX_OK || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static void es_shutdown(void *inst) {
    free(inst);
}

/* Fails with VX_EINVAL (a value that does not parse, a data_path that is
 * not a directory, a voice espeak-ng does not have), VX_ENOMEM, or
 * VX_EUNAVAIL (see es_engine_start). */
static int es_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    es_inst *in = calloc(1, sizeof(*in));
    const char *voice = es_cfg(cfg, "voice"), *path = es_cfg(cfg, "data_path");
    espeak_ng_STATUS st;
    struct stat sb;
    int rc;

    if (!in) {
        es_seterr(err, VX_ENOMEM, 0, "espeak-ng: out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    rc = VX_EINVAL;
    if (es_int(in, "rate", 80, 450, &in->rate) != 0) {
        es_seterr(err, rc, 0, "espeak-ng: bad value for rate: '%s'", es_cfg(cfg, "rate"));
        goto fail;
    }
    if (es_int(in, "pitch", 0, 100, &in->pitch) != 0) {
        es_seterr(err, rc, 0, "espeak-ng: bad value for pitch: '%s'", es_cfg(cfg, "pitch"));
        goto fail;
    }
    if (!es_voice_name_ok(voice)) {
        es_seterr(err, rc, 0, "espeak-ng: bad voice name '%s'", voice);
        goto fail;
    }
    snprintf(in->voice, sizeof(in->voice), "%s", voice);
    /* espeak-ng silently falls back to its built-in location when the
     * directory is missing: refuse it here so the mistake shows. */
    if (!path) path = "";
    if (path[0] && (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
        es_seterr(err, rc, 0, "espeak-ng: data_path '%s' is not a directory", path);
        goto fail;
    }
    if (strlen(path) >= sizeof(es_path)) {
        es_seterr(err, rc, 0, "espeak-ng: data_path is too long");
        goto fail;
    }

    pthread_mutex_lock(&es_mu);
    rc = es_engine_start(in, path, err);
    if (rc == VX_OK && (st = es_select(in->voice)) != ENS_OK) {
        char msg[160];
        espeak_ng_GetStatusCodeMessage(st, msg, sizeof(msg));
        es_seterr(err, VX_EINVAL, 0, "espeak-ng: voice '%s': %s", in->voice, msg);
        rc = VX_EINVAL;
    }
    in->sample_rate = (uint32_t)es_rate;
    pthread_mutex_unlock(&es_mu);
    if (rc != VX_OK) goto fail;

    host->log(h, VX_LOG_INFO, "espeak-ng: voice %s, %d words/min, pitch %d, %u Hz", in->voice,
              in->rate, in->pitch, (unsigned)in->sample_rate);
    *inst = in;
    return VX_OK;
fail:
    free(in);
    return rc;
}

static const vx_plugin_info es_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_TTS,
    .name = "tts_espeak",
    .version = ES_VERSION,
    .description = "offline multilingual text-to-speech with espeak-ng",
    .caps = VX_CAP_STREAMING_OUTPUT | VX_CAP_MULTILINGUAL,
    .config = es_config,
    .init = es_init,
    .shutdown = es_shutdown,
    .tts = &es_tts,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The typed config getters arrived in 1.6. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_int) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "tts_espeak needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &es_info;
}
