/*
 * A test STT plugin with one mistake voxray-plugin-check must catch: after
 * the final of an utterance it sends one more partial hypothesis, though
 * no audio came since (a recogniser flushing a stale hypothesis late).
 * Everything else follows the contract: a partial per 100 ms of audio fed,
 * one final per finish(), cancel idempotent, nothing after close().
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

struct vx_stream {
    vx_stt_events ev;
    pthread_mutex_t mu;
    int canceled;
    size_t frames; /* fed in the current utterance */
};

static void lp_seterr(vx_error *err, int code, const char *msg) {
    err->code = code;
    err->retryable = 0;
    snprintf(err->msg, sizeof err->msg, "late_partial: %s", msg);
}

static int lp_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                   vx_stream **out, vx_error *err) {
    vx_stream *s;

    (void)inst;
    if (fmt->sample_rate != 16000 || fmt->channels != 1 || fmt->encoding != VX_PCM_S16LE) {
        lp_seterr(err, VX_ENOTSUP, "wants 16 kHz mono s16le");
        return VX_ENOTSUP;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        lp_seterr(err, VX_ENOMEM, "out of memory");
        return VX_ENOMEM;
    }
    memcpy(&s->ev, ev, ev->struct_size < sizeof s->ev ? ev->struct_size : sizeof s->ev);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return VX_OK;
}

static int lp_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    (void)pcm;
    pthread_mutex_lock(&s->mu);
    if (s->canceled) {
        pthread_mutex_unlock(&s->mu);
        lp_seterr(err, VX_ECANCELED, "stream cancelled");
        return VX_ECANCELED;
    }
    size_t before = s->frames / 1600;
    s->frames += frames;
    if (s->frames / 1600 != before) s->ev.on_partial(s->ev.user, "something");
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

static int lp_finish(vx_stream *s, vx_error *err) {
    pthread_mutex_lock(&s->mu);
    if (s->canceled) {
        pthread_mutex_unlock(&s->mu);
        lp_seterr(err, VX_ECANCELED, "stream cancelled");
        return VX_ECANCELED;
    }
    s->ev.on_final(s->ev.user, s->frames ? "something" : "", -1.0f);
    s->ev.on_partial(s->ev.user, "something"); /* the mistake */
    s->frames = 0;
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

static void lp_cancel(vx_stream *s) {
    vx_error e = {0};

    pthread_mutex_lock(&s->mu);
    if (!s->canceled) {
        s->canceled = 1;
        lp_seterr(&e, VX_ECANCELED, "cancelled");
        s->ev.on_error(s->ev.user, &e);
    }
    pthread_mutex_unlock(&s->mu);
}

static void lp_close(vx_stream *s) {
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const vx_stt_vtable lp_stt = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = lp_open,
    .feed = lp_feed,
    .finish = lp_finish,
    .cancel = lp_cancel,
    .close = lp_close,
};

static int lp_init(const vx_host_api *api, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    (void)api, (void)h, (void)cfg, (void)err;
    *inst = NULL;
    return VX_OK;
}

static const vx_plugin_info lp_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT,
    .name = "late_partial",
    .version = "1.0.0",
    .description = "test plugin: a partial after the final",
    .caps = VX_CAP_STREAMING_INPUT | VX_CAP_PARTIALS,
    .init = lp_init,
    .stt = &lp_stt,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    (void)host;
    return &lp_info;
}
