/* Proves the loader refuses a descriptor with a kind bit this ABI does not define. */
#include "sink_valid.h"

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK | 0x40u,
    .name = "unknown_kind",
    .version = "0.0.1",
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
