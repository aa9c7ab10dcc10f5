/* A TTS plugin that notices cancel() only after sleeping out its whole
 * delay (config `delay`, default 1s): voxray-plugin-check must fail it,
 * with the time the cancelled stream took to end. With bad_error = true it
 * also breaks the error contract on an empty text: VX_EINVAL without a
 * message, and an on_error event besides. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <voxray/plugin.h>

typedef struct inst {
    const vx_host_api *api;
    int64_t delay_ms;
    int bad_error;
} inst;

struct vx_stream {
    inst *in;
    vx_tts_events ev;
    atomic_int canceled;
    pthread_t thread;
};

static void *speak(void *arg) {
    struct vx_stream *s = arg;
    static const int16_t pcm[160];
    struct timespec ts = {(time_t)(s->in->delay_ms / 1000), (long)(s->in->delay_ms % 1000) * 1000000L};

    s->ev.on_audio(s->ev.user, pcm, 160);
    while (nanosleep(&ts, &ts) != 0) {} /* deaf to cancel: the fault under test */
    if (atomic_load(&s->canceled)) {
        vx_error e = {VX_ECANCELED, 0, 0, "slow_cancel: cancelled"};
        s->ev.on_error(s->ev.user, &e);
        return NULL;
    }
    s->ev.on_audio(s->ev.user, pcm, 160);
    s->ev.on_done(s->ev.user);
    return NULL;
}

static int synthesize(void *i, const char *text, const char *voice, vx_audio_format *fmt,
                      const vx_tts_events *ev, vx_stream **out, vx_error *err) {
    struct vx_stream *s;

    (void)voice;
    if ((text == NULL || text[0] == '\0') && ((inst *)i)->bad_error) {
        vx_error e = {VX_EINVAL, 0, 0, ""};
        ev->on_error(ev->user, &e);
        err->code = VX_EINVAL;
        return VX_EINVAL;
    }
    if (text == NULL || text[0] == '\0') {
        err->code = VX_EINVAL;
        snprintf(err->msg, sizeof err->msg, "slow_cancel: nothing to say");
        return VX_EINVAL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "slow_cancel: out of memory");
        return VX_ENOMEM;
    }
    s->in = i;
    s->ev = *ev;
    *fmt = (vx_audio_format){16000, 1, VX_PCM_S16LE};
    if (pthread_create(&s->thread, NULL, speak, s) != 0) {
        free(s);
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "slow_cancel: no thread");
        return VX_ENOMEM;
    }
    *out = s;
    return VX_OK;
}

static void cancel(vx_stream *s) { atomic_store(&s->canceled, 1); }

static void close_stream(vx_stream *s) {
    pthread_join(s->thread, NULL);
    free(s);
}

static const vx_tts_vtable tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = synthesize,
    .cancel = cancel,
    .close = close_stream,
};

static int init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **out,
                vx_error *err) {
    inst *in = calloc(1, sizeof *in);

    (void)cfg;
    if (in == NULL) {
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "slow_cancel: out of memory");
        return VX_ENOMEM;
    }
    in->api = host;
    if (host->config_duration_ms(h, "delay", &in->delay_ms) != VX_OK) in->delay_ms = 1000;
    if (host->config_bool(h, "bad_error", &in->bad_error) != VX_OK) in->bad_error = 0;
    host->log(h, VX_LOG_INFO, "delay %lld ms, bad_error %d", (long long)in->delay_ms, in->bad_error);
    *out = in;
    return VX_OK;
}

static void shutdown_inst(void *i) { free(i); }

static const vx_config_key schema[] = {
    {"delay", VX_CFG_DURATION, "1s", "how long a stream sleeps before it looks at cancel",
     0, 60000, NULL, 0},
    {"bad_error", VX_CFG_BOOL, "false", "break the error contract on an empty text", 0, 0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0},
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_TTS,
    .name = "slow_cancel",
    .version = "0.0.1",
    .description = "a TTS that sleeps out its delay before it notices cancel",
    .config = schema,
    .init = init,
    .shutdown = shutdown_inst,
    .tts = &tts,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    (void)host;
    return &info;
}
