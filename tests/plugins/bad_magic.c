/* Proves the loader refuses a descriptor whose magic is not VX_PLUGIN_MAGIC. */
#include "sink_valid.h"

static const vx_plugin_info info = {
    .magic = 0x12345678u,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "bad_magic",
    .version = "0.0.1",
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
