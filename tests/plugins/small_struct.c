/* Proves the loader refuses a descriptor smaller than ABI 1.0 defined it (16 bytes). */
#include "sink_valid.h"

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = 16,
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "small_struct",
    .version = "0.0.1",
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
