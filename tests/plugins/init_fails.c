/* Proves a failing init reaches the operator as one line with its message and code. */
#include <stdio.h>

#include "sink_stub.h"

static int fail_init(const vx_host_api *host, vx_host *h, const vx_config *cfg,
                     void **inst, vx_error *err) {
    err->code = VX_EAUTH;
    err->upstream_status = 401;
    snprintf(err->msg, sizeof(err->msg), "api key rejected");
    return VX_EAUTH;
}

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "init_fails",
    .version = "0.0.1",
    .description = "a sink whose init always fails with VX_EAUTH",
    .init = fail_init,
    .sink = &stub_sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
