/* Proves the conformance checker refuses a sink that reports VX_OK for a
 * file it never read: the host would then delete a recording nobody kept.
 * Otherwise valid (sink_valid.h's vtable is exactly that sink). */
#include <voxray/plugin.h>

#include "sink_valid.h"

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "sink_accepts_all",
    .version = "0.0.1",
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
