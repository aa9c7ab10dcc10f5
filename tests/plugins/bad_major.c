/* Proves the loader refuses a plugin built for another ABI major (2.0). */
#include "sink_valid.h"

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = 2,
    .abi_minor = 0,
    .kinds = VX_KIND_SINK,
    .name = "bad_major",
    .version = "0.0.1",
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
