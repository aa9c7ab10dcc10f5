/*
 * tts_tone: the smallest complete voxray TTS provider. Copy it to start one.
 *
 * It "speaks" a short tone per character of the text (letters and digits get
 * a pitch of their own, everything else is silence), streamed in 20 ms chunks
 * from a thread the stream owns. Everything it needs from voxray is in
 * <voxray/plugin.h>; build it out of tree with
 *
 *     cc $(pkg-config --cflags voxray-plugin) -shared -fPIC \
 *        -o tts_tone.so tts_tone.c -lpthread
 *
 * and check it with `voxray-plugin-check tts_tone.so` before you deploy it.
 * Then put tts_tone.so in the plugin directory and add to voxray.ini:
 *
 *     [plugin.tone]
 *     plugin = tts_tone
 *     ms_per_char = 60ms
 *     realtime = true
 *
 * The comments in front of each call name the part of the contract in
 * plugin.h that the code honours; keep them true when you change the code.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <voxray/plugin.h>

#define TONE_CHUNK_MS 20     /* length of one on_audio chunk */
#define TONE_AMPLITUDE 6000  /* about -15 dBFS: audible, never clipping */
#define TONE_MAX_RATE 48000
#define TONE_PITCH 440      /* Hz of 'a'; each later letter is a step higher */

/* The schema: the host validates [plugin.NAME] against it before init() and
 * fills every key (value or default), so init() never sees a value outside
 * these ranges. Keep it short; every key is documentation. */
static const vx_config_key tone_config[] = {
    {"ms_per_char", VX_CFG_DURATION, "60ms", "length of the tone spoken per character",
     1, 2000, NULL, 0},
    {"sample_rate", VX_CFG_INT, "16000", "output sample rate in Hz", 8000, TONE_MAX_RATE,
     NULL, 0},
    {"realtime", VX_CFG_BOOL, "true",
     "pace chunks at real time like a speaking voice (false: as fast as possible)",
     0, 0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* One instance per [plugin.NAME] section. Read-only after init, so streams on
 * any number of host threads may share it without a lock; only the stream
 * counter (read by health) changes, and it is atomic. */
typedef struct tone_inst {
    const vx_host_api *api; /* valid until the plugin is unloaded */
    vx_host *h;
    uint32_t ms_per_char;
    uint32_t rate;
    int realtime;
    atomic_int streams; /* open streams, for health() */
} tone_inst;

/* The ABI leaves struct vx_stream to the plugin: this is ours. */
struct vx_stream {
    tone_inst *in;
    vx_tts_events ev;   /* copied: the host's struct is only valid during the call */
    char *text;         /* copied for the same reason */
    atomic_int cancel;  /* set by cancel(), from any thread */
    pthread_t thread;
};

/* ---------------------------------------------------------------- synthesis */

/* A triangle wave: integer-only, so the plugin needs no libm. `phase` runs
 * over one period of `period` samples. */
static int16_t tone_sample(uint32_t phase, uint32_t period) {
    int64_t half = period / 2, x = phase < half ? phase : period - phase;

    return (int16_t)(((4 * x - period) * TONE_AMPLITUDE) / (int64_t)period);
}

/* Pitch of one character: letters and digits are musical steps (about a
 * semitone, 6%) above the base; 0 means silence. */
static uint32_t tone_pitch(unsigned char c) {
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    if (c >= 'a' && c <= 'z') return TONE_PITCH + TONE_PITCH * (uint32_t)(c - 'a') * 6 / 100;
    if (c >= '0' && c <= '9') return TONE_PITCH / 2 + TONE_PITCH * (uint32_t)(c - '0') * 6 / 100;
    return 0;
}

/* The stream's thread: produces every event of the stream. Events may fire
 * from any thread (plugin.h, Threading), so firing them from here is fine;
 * the buffer handed to on_audio is ours and only needs to live for the
 * callback (Ownership: the host copies). */
static void *tone_run(void *arg) {
    vx_stream *s = arg;
    const tone_inst *in = s->in;
    int16_t pcm[TONE_MAX_RATE * TONE_CHUNK_MS / 1000];
    size_t chunk = in->rate * TONE_CHUNK_MS / 1000;
    struct timespec due;

    clock_gettime(CLOCK_MONOTONIC, &due);

    for (const char *p = s->text; *p; p++) {
        uint32_t hz = tone_pitch((unsigned char)*p);
        uint32_t period = hz ? in->rate / hz : 0; /* < 2: above Nyquist, silence */
        size_t left = (size_t)in->rate * in->ms_per_char / 1000, phase = 0;

        while (left > 0) {
            size_t n = left < chunk ? left : chunk;

            /* cancel(): stop producing soon, and end the stream with
             * on_error(VX_ECANCELED) -- it must still end with exactly one
             * terminal event so the host can release its side. */
            if (atomic_load(&s->cancel)) {
                vx_error err = {.code = VX_ECANCELED};

                snprintf(err.msg, sizeof err.msg, "cancelled");
                s->ev.on_error(s->ev.user, &err);
                return NULL;
            }
            for (size_t i = 0; i < n; i++, phase++) {
                if (period >= 2 && phase >= period) phase = 0;
                pcm[i] = period >= 2 ? tone_sample((uint32_t)phase, period) : 0;
            }
            s->ev.on_audio(s->ev.user, pcm, n);
            left -= n;
            /* Real time: sleep until this chunk would have been heard. A
             * chunk is 20 ms, so cancel() is noticed within 20 ms. */
            if (in->realtime) {
                due.tv_nsec += (long)(n * 1000000000ull / in->rate);
                if (due.tv_nsec >= 1000000000L) {
                    due.tv_sec++;
                    due.tv_nsec -= 1000000000L;
                }
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {}
            }
        }
    }
    /* Normal completion: exactly one terminal event, nothing after it. */
    s->ev.on_done(s->ev.user);
    return NULL;
}

/* ---------------------------------------------------------------- TTS vtable */

/* synthesize(): start calls should return quickly and deliver results
 * through events, so all the work happens on the stream's thread. *fmt is
 * the format of every on_audio chunk. Fails with VX_EINVAL (NULL text),
 * VX_ENOMEM (allocation) or VX_EINTERNAL (no thread); on failure no event
 * fires and *out is left alone, so the host has nothing to close. The voice
 * is ignored: this provider has only one. */
static int tone_synthesize(void *inst, const char *text, const char *voice,
                           vx_audio_format *fmt, const vx_tts_events *ev,
                           vx_stream **out, vx_error *err) {
    tone_inst *in = inst;
    vx_stream *s = NULL;
    int rc = VX_ENOMEM;

    (void)voice;
    if (text == NULL) {
        rc = VX_EINVAL;
        snprintf(err->msg, sizeof err->msg, "no text");
        goto fail;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) goto nomem;
    /* Ownership: `text` and `ev` belong to the host and are valid only for
     * this call; the thread outlives it, so keep copies. A newer host may
     * pass a larger events struct: copy only what this plugin knows. */
    if ((s->text = strdup(text)) == NULL) goto nomem;
    memcpy(&s->ev, ev, ev->struct_size < sizeof s->ev ? ev->struct_size : sizeof s->ev);
    s->in = in;
    atomic_init(&s->cancel, 0);

    fmt->sample_rate = in->rate;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;

    if (pthread_create(&s->thread, NULL, tone_run, s) != 0) {
        rc = VX_EINTERNAL;
        snprintf(err->msg, sizeof err->msg, "cannot start the synthesis thread");
        goto fail;
    }
    atomic_fetch_add(&in->streams, 1);
    *out = s;
    return VX_OK;

nomem:
    snprintf(err->msg, sizeof err->msg, "out of memory");
fail:
    err->code = rc; /* vx_error is caller-owned; we fill it when we fail */
    if (s) free(s->text);
    free(s);
    return rc;
}

/* cancel(): idempotent, any thread, any time before close(), must not block.
 * One atomic store satisfies all four; the thread notices it before its next
 * chunk and ends the stream with on_error(VX_ECANCELED). */
static void tone_cancel(vx_stream *s) {
    atomic_store(&s->cancel, 1);
}

/* close(): no event may fire after it returns, so stop the thread and wait
 * for it. The host may close without cancelling first (e.g. right after a
 * successful start), hence the cancel here. Joining is quick: the thread
 * checks the flag every chunk. */
static void tone_close(vx_stream *s) {
    atomic_store(&s->cancel, 1);
    pthread_join(s->thread, NULL);
    atomic_fetch_sub(&s->in->streams, 1);
    free(s->text);
    free(s);
}

static const vx_tts_vtable tone_tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = tone_synthesize,
    .cancel = tone_cancel,
    .close = tone_close,
};

/* ---------------------------------------------------------------- lifecycle */

/* Parse values the host has already validated against tone_config, so only
 * the syntax it accepts is handled: durations "60ms", "2s", "1m" or a bare
 * number of ms; booleans true/yes/on/1 or false/no/off/0 in any case. */
static uint32_t tone_ms(const char *v) {
    char *end = NULL;
    double n = strtod(v ? v : "0", &end);

    if (end && (*end == 's' || *end == 'S')) n *= 1000;
    else if (end && (*end == 'm' || *end == 'M') && end[1] == '\0') n *= 60000;
    return (uint32_t)n;
}

static int tone_bool(const char *v) {
    return v && v[0] && (strchr("tTyY1", v[0]) || ((v[0] == 'o' || v[0] == 'O') &&
                                             (v[1] == 'n' || v[1] == 'N')));
}

/* init(): runs once per instance on the host's main thread, after the config
 * passed the schema. Fails with VX_ENOMEM; the host then refuses to start. */
static int tone_init(const vx_host_api *api, vx_host *h, const vx_config *cfg,
                     void **inst, vx_error *err) {
    tone_inst *in = calloc(1, sizeof *in);

    (void)cfg; /* the same values are reachable through api->config_get */
    if (in == NULL) {
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return VX_ENOMEM;
    }
    in->api = api;
    in->h = h;
    /* config_get returns the value or the schema default, NULL only for a
     * key the schema does not have. */
    in->ms_per_char = tone_ms(api->config_get(h, "ms_per_char"));
    in->rate = (uint32_t)strtoul(api->config_get(h, "sample_rate"), NULL, 10);
    in->realtime = tone_bool(api->config_get(h, "realtime"));
    atomic_init(&in->streams, 0);
    /* The host prefixes the line with kind and instance name. */
    api->log(h, VX_LOG_INFO, "%u Hz, %u ms per character%s", in->rate, in->ms_per_char,
             in->realtime ? ", real time" : "");
    *inst = in;
    return VX_OK;
}

/* shutdown(): no stream of this instance is open any more (plugin.h). */
static void tone_shutdown(void *inst) {
    free(inst);
}

/* health(): called from the host's health thread; short text, 0 = healthy.
 * Nothing here can fail, so report what is useful when debugging. */
static int tone_health(void *inst, char *buf, size_t len) {
    tone_inst *in = inst;

    snprintf(buf, len, "ok, %d stream(s) open", atomic_load(&in->streams));
    return VX_OK;
}

static const vx_plugin_info tone_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_TTS,
    .name = "tts_tone", /* must equal the file's base name */
    .version = "1.0.0",
    .description = "example TTS: one tone per character",
    .caps = VX_CAP_STREAMING_OUTPUT,
    .config = tone_config,
    .init = tone_init,
    .shutdown = tone_shutdown,
    .tts = &tone_tts,
    .health = tone_health, /* ABI minor 1 */
};

/* The only exported symbol (everything else is hidden by -fvisibility=hidden).
 * Called once on the host's main thread. The host itself refuses a
 * descriptor whose major differs or whose minor is newer than its own;
 * returning NULL here just says so earlier. This plugin calls no host method
 * appended after ABI 1.0, so it needs no VX_HOST_HAS() checks. */
VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    if (host->abi_major != VX_ABI_MAJOR) return NULL;
    return &tone_info;
}
