/* Proves the loader refuses a config schema with an enum key that has no choices. */
#include "sink_valid.h"

static const vx_config_key schema[] = {
    { .key = "bucket", .type = VX_CFG_STRING, .help = "where recordings go" },
    { .key = "format", .type = VX_CFG_ENUM, .def = "wav", .help = "file format",
      .choices = NULL },
    { .key = NULL },
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "bad_schema",
    .version = "0.0.1",
    .config = schema,
    .sink = &valid_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
