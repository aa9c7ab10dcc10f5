/* Proves an ABI 1.0 plugin (minor 0, 1.0-sized descriptor) loads and its health reads NULL. */
#include <stdio.h>
#include <stdlib.h>

#include <voxray/plugin.h>

struct vx_stream {
    const vx_tts_events *ev;
};

static int om_synthesize(void *inst, const char *text, const char *voice,
                         vx_audio_format *fmt, const vx_tts_events *ev,
                         vx_stream **out, vx_error *err) {
    vx_stream *s = calloc(1, sizeof(*s));

    if (s == NULL) return VX_ENOMEM;
    fmt->sample_rate = 16000;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    s->ev = ev;
    ev->on_done(ev->user);
    *out = s;
    return VX_OK;
}

static void om_cancel(vx_stream *s) {}
static void om_close(vx_stream *s) { free(s); }

/* Lies beyond the 1.0 descriptor: a host that reads past struct_size would
 * find it and call it. */
static int om_health(void *inst, char *buf, size_t len) {
    snprintf(buf, len, "read beyond struct_size");
    return VX_EINTERNAL;
}

static const vx_tts_vtable tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = om_synthesize,
    .cancel = om_cancel,
    .close = om_close,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = VX_PLUGIN_INFO_SIZE_1_0,
    .abi_major = 1,
    .abi_minor = 0,
    .kinds = VX_KIND_TTS,
    .name = "old_minor",
    .version = "0.9.0",
    .description = "a TTS built against ABI 1.0",
    .tts = &tts,
    .health = om_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
