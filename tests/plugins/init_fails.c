/* Proves a failing init reaches the operator as one line with its message and code. */
#include <stdio.h>

#include <voxray/plugin.h>

/* Never reached: init fails first. */
static int st_get(void *i, const char *k, void **v, size_t *l, vx_error *e) { return VX_EINTERNAL; }
static int st_put(void *i, const char *k, const void *v, size_t l, uint32_t t, vx_error *e) { return VX_EINTERNAL; }
static int st_del(void *i, const char *k, vx_error *e) { return VX_EINTERNAL; }
static int st_ping(void *i, vx_error *e) { return VX_EINTERNAL; }
static const vx_store_vtable store = {
    .struct_size = sizeof(vx_store_vtable),
    .get = st_get, .put = st_put, .del = st_del, .ping = st_ping,
};

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
    .kinds = VX_KIND_STORE,
    .name = "init_fails",
    .version = "0.0.1",
    .description = "a session store whose init always fails with VX_EAUTH",
    .init = fail_init,
    .store = &store,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
