/* A store that registers metrics at init: one the host accepts and two it
 * must refuse with the reason logged (a counter named like the host's own
 * voxray_plugin_calls_total family, a gauge ending in _total). The daemon
 * and voxray-plugin-check apply the same rule. */
#include <stdio.h>
#include <stdlib.h>

#include <voxray/plugin.h>

static int st_get(void *i, const char *k, void **v, size_t *l, vx_error *e) {
    (void)i; (void)k; (void)v; (void)l;
    e->code = VX_ENOTFOUND;
    snprintf(e->msg, sizeof e->msg, "bad_metric: empty");
    return VX_ENOTFOUND;
}
static int st_put(void *i, const char *k, const void *v, size_t l, uint32_t t, vx_error *e) {
    (void)i; (void)k; (void)v; (void)l; (void)t; (void)e;
    return VX_OK;
}
static int st_del(void *i, const char *k, vx_error *e) {
    (void)i; (void)k; (void)e;
    return VX_OK;
}
static int st_ping(void *i, vx_error *e) {
    (void)i; (void)e;
    return VX_OK;
}
static const vx_store_vtable store = {
    .struct_size = sizeof(vx_store_vtable),
    .get = st_get, .put = st_put, .del = st_del, .ping = st_ping,
};

static int init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                vx_error *err) {
    vx_metric *ok = host->metric_register(h, VX_METRIC_COUNTER, "bad_metric_puts_total", "fine");

    (void)cfg; (void)err;
    host->metric_add(ok, 1);
    if (host->metric_register(h, VX_METRIC_COUNTER, "calls_total", "clashes") == NULL)
        host->log(h, VX_LOG_INFO, "calls_total was refused");
    if (host->metric_register(h, VX_METRIC_GAUGE, "bad_metric_level_total", "misnamed") == NULL)
        host->log(h, VX_LOG_INFO, "bad_metric_level_total was refused");
    *inst = NULL;
    return VX_OK;
}

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STORE,
    .name = "bad_metric",
    .version = "0.0.1",
    .description = "a store registering metric names the host refuses",
    .init = init,
    .store = &store,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    (void)host;
    return &info;
}
