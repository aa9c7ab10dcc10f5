/*
 * stt_level: a complete voxray STT provider to copy. It does not recognise
 * words; it reports what it heard as text, the way a real recogniser
 * reports words:
 *
 *   - a partial hypothesis every `partial_every` of audio fed
 *     ("0.4 s, 0.2 s loud"), each replacing the one before;
 *   - one final transcript per utterance when the host calls finish()
 *     ("heard 1.2 s of audio, 0.5 s of it above -40 dBFS"), with an
 *     unknown confidence (negative).
 *
 * Streaming partials and finals are the whole STT contract of
 * <voxray/plugin.h>; swap the level meter for a decoder and the rest stays.
 * Build it out of tree with
 *
 *     cc $(pkg-config --cflags voxray-plugin) -shared -fPIC \
 *        -o stt_level.so stt_level.c -lpthread
 *
 * check it with `voxray-plugin-check stt_level.so`, then put it in the
 * plugin directory and add to voxray.ini:
 *
 *     [plugin.level]
 *     plugin = stt_level
 *     partial_every = 200ms
 *     threshold = -40
 *
 *     [stt]
 *     providers = level
 *
 * This plugin delivers every event on the thread of the call that caused it
 * (feed, finish, cancel), which the contract allows. A plugin that waits on
 * a network answer delivers from its own thread or a host->defer job
 * instead, and then must make close() wait for that thread (see tts_tone.c).
 * The comments in front of each call name the part of the contract in
 * plugin.h that the code honours; keep them true when you change the code.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

#define LEVEL_RATE 16000 /* the input format this plugin asks the host for */

/* The schema: the host validates [plugin.NAME] against it before init() and
 * fills every key (value or default). */
static const vx_config_key level_config[] = {
    {"partial_every", VX_CFG_DURATION, "200ms",
     "one partial hypothesis per this much audio fed (0: no partials)", 0, 10000, NULL, 0},
    {"threshold", VX_CFG_FLOAT, "-40", "dBFS above which a 10 ms block counts as loud", -96,
     0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* One instance per [plugin.NAME] section; read-only after init, so streams
 * on any number of host threads share it without a lock. */
typedef struct level_inst {
    const vx_host_api *api;
    vx_host *h;
    uint64_t partial_frames; /* frames between partials, 0: none */
    double threshold;        /* mean square of a loud block, in s16 units squared */
} level_inst;

/* The host serializes calls on one stream (feed, finish, close) except
 * cancel(), which may come from any thread at any time: the mutex orders
 * cancel against a feed or finish running at the same moment, so exactly
 * one terminal event ends the stream. */
struct vx_stream {
    level_inst *in;
    vx_stt_events ev; /* a copy: the host's struct is only valid during open() */
    pthread_mutex_t mu;
    int canceled;     /* cancel() was called; on_error(VX_ECANCELED) was fired */
    uint64_t frames;  /* fed in the current utterance */
    uint64_t loud;    /* of them, in blocks above the threshold */
    uint64_t next_partial;
    int16_t block[LEVEL_RATE / 100]; /* a partial 10 ms block carried over */
    size_t block_len;
};

static void level_seterr(vx_error *err, int code, const char *msg) {
    err->code = code;
    err->retryable = 0;
    snprintf(err->msg, sizeof err->msg, "stt_level: %s", msg);
}

/* Count a complete 10 ms block. */
static void level_block(vx_stream *s, const int16_t *pcm, size_t n) {
    double sum = 0;

    for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
    if (sum / (double)n >= s->in->threshold) s->loud += n;
}

/* ------------------------------------------------------------ the vtable */

/* open: events may start once *out is set; the host resamples to what
 * input_format() asks, and a plugin may still refuse a format with
 * VX_ENOTSUP. */
static int level_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                      vx_stream **out, vx_error *err) {
    level_inst *in = inst;
    vx_stream *s;

    if (fmt->sample_rate != LEVEL_RATE || fmt->channels != 1 || fmt->encoding != VX_PCM_S16LE) {
        level_seterr(err, VX_ENOTSUP, "wants 16 kHz mono s16le");
        return VX_ENOTSUP;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        level_seterr(err, VX_ENOMEM, "out of memory");
        return VX_ENOMEM;
    }
    s->in = in;
    /* Ownership: copy what you keep. Fields past the host's struct_size
     * (none yet for STT events) would read as zero. */
    memcpy(&s->ev, ev, ev->struct_size < sizeof s->ev ? ev->struct_size : sizeof s->ev);
    pthread_mutex_init(&s->mu, NULL);
    s->next_partial = in->partial_frames;
    *out = s;
    return VX_OK;
}

/* feed: audio of the current utterance. Partials fire from here, on the
 * host's calling thread, while the lock keeps cancel() out. */
static int level_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    const size_t bs = sizeof s->block / sizeof s->block[0];

    pthread_mutex_lock(&s->mu);
    if (s->canceled) {
        pthread_mutex_unlock(&s->mu);
        level_seterr(err, VX_ECANCELED, "stream cancelled");
        return VX_ECANCELED;
    }
    for (size_t i = 0; i < frames; i++) {
        s->block[s->block_len++] = pcm[i];
        if (s->block_len == bs) {
            level_block(s, s->block, bs);
            s->block_len = 0;
        }
    }
    s->frames += frames;
    if (s->in->partial_frames && s->frames >= s->next_partial) {
        char text[96];

        snprintf(text, sizeof text, "%.1f s, %.1f s loud", (double)s->frames / LEVEL_RATE,
                 (double)s->loud / LEVEL_RATE);
        s->ev.on_partial(s->ev.user, text); /* the host copies the text */
        s->next_partial = s->frames + s->in->partial_frames;
    }
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

/* finish: exactly one on_final for the audio fed since the previous one;
 * the stream stays usable for the next utterance. */
static int level_finish(vx_stream *s, vx_error *err) {
    char text[128];

    pthread_mutex_lock(&s->mu);
    if (s->canceled) {
        pthread_mutex_unlock(&s->mu);
        level_seterr(err, VX_ECANCELED, "stream cancelled");
        return VX_ECANCELED;
    }
    if (s->block_len) level_block(s, s->block, s->block_len);
    if (s->frames == 0)
        text[0] = '\0'; /* heard nothing: an empty final */
    else
        snprintf(text, sizeof text, "heard %.1f s of audio, %.1f s of it loud",
                 (double)s->frames / LEVEL_RATE, (double)s->loud / LEVEL_RATE);
    s->ev.on_final(s->ev.user, text, -1.0f);
    s->frames = s->loud = 0;
    s->block_len = 0;
    s->next_partial = s->in->partial_frames;
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

/* cancel: idempotent, any thread, never blocks for long; the stream ends
 * with on_error(VX_ECANCELED) at once, well within VX_CANCEL_MS. */
static void level_cancel(vx_stream *s) {
    vx_error e = {0};

    pthread_mutex_lock(&s->mu);
    if (!s->canceled) {
        s->canceled = 1;
        level_seterr(&e, VX_ECANCELED, "cancelled");
        s->ev.on_error(s->ev.user, &e);
    }
    pthread_mutex_unlock(&s->mu);
}

/* close: no event fires after it returns. Every event here fires under the
 * lock on a host thread whose call has returned, so there is nothing to wait
 * for. */
static void level_close(vx_stream *s) {
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int level_input_format(void *inst, vx_audio_format *out) {
    (void)inst;
    *out = (vx_audio_format){LEVEL_RATE, 1, VX_PCM_S16LE};
    return VX_OK;
}

static const vx_stt_vtable level_stt = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = level_open,
    .feed = level_feed,
    .finish = level_finish,
    .cancel = level_cancel,
    .close = level_close,
    .input_format = level_input_format,
};

/* ------------------------------------------------------------ life cycle */

/* init: once per instance, on the host's main thread, with a validated
 * config. The typed getters of host API 1.6 hand over parsed values. */
static int level_init(const vx_host_api *api, vx_host *h, const vx_config *cfg, void **inst,
                      vx_error *err) {
    level_inst *in;
    int64_t every_ms = 200;
    double db = -40;

    (void)cfg;
    in = calloc(1, sizeof *in);
    if (in == NULL) {
        level_seterr(err, VX_ENOMEM, "out of memory");
        return VX_ENOMEM;
    }
    in->api = api;
    in->h = h;
    api->config_duration_ms(h, "partial_every", &every_ms);
    api->config_float(h, "threshold", &db);
    in->partial_frames = (uint64_t)every_ms * LEVEL_RATE / 1000;
    /* dBFS of a full-scale sine is about -3; of the mean square, 0 at 32768. */
    in->threshold = pow(10.0, db / 10.0) * 32768.0 * 32768.0;
    api->log(h, VX_LOG_INFO, "partial every %lld ms, loud above %.0f dBFS", (long long)every_ms,
             db);
    *inst = in;
    return VX_OK;
}

/* shutdown: no stream of the instance is open any more. */
static void level_shutdown(void *inst) { free(inst); }

static const vx_plugin_info level_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT,
    .name = "stt_level", /* must equal the file's base name */
    .version = "1.0.0",
    .description = "example STT: streams partials and finals describing the audio level",
    .caps = VX_CAP_STREAMING_INPUT | VX_CAP_PARTIALS,
    .config = level_config,
    .init = level_init,
    .shutdown = level_shutdown,
    .stt = &level_stt,
};

/* The one exported symbol. This plugin is built for ABI 1.6 (it calls the
 * typed config getters), and a host older than that refuses a plugin of a
 * newer minor before init, so init may call them without VX_HOST_HAS(). */
VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    if (host->abi_major != VX_ABI_MAJOR) {
        host->log(NULL, VX_LOG_ERROR, "stt_level: built for plugin ABI %d, the host speaks %u",
                  VX_ABI_MAJOR, (unsigned)host->abi_major);
        return NULL;
    }
    return &level_info;
}
