/* Proves the loader refuses an STT vtable without its mandatory 'feed' method. */
#include <voxray/plugin.h>

static int stt_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                    vx_stream **out, vx_error *err) {
    return VX_ENOTSUP;
}
static int stt_finish(vx_stream *s, vx_error *err) { return VX_OK; }
static void stt_cancel(vx_stream *s) {}
static void stt_close(vx_stream *s) {}

static const vx_stt_vtable stt = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = stt_open,
    .feed = NULL,
    .finish = stt_finish,
    .cancel = stt_cancel,
    .close = stt_close,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT,
    .name = "missing_method",
    .version = "0.0.1",
    .stt = &stt,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
