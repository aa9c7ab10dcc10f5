/* Proves the loader refuses a vtable smaller than ABI 1.0 defined it (store, 8 bytes). */
#include <voxray/plugin.h>

static int st_get(void *inst, const char *key, void **val, size_t *len, vx_error *err) {
    return VX_ENOTFOUND;
}
static int st_put(void *inst, const char *key, const void *val, size_t len,
                  uint32_t ttl_s, vx_error *err) {
    return VX_OK;
}
static int st_del(void *inst, const char *key, vx_error *err) { return VX_OK; }
static int st_ping(void *inst, vx_error *err) { return VX_OK; }

/* Every method is there; only struct_size claims otherwise. */
static const vx_store_vtable store = {
    .struct_size = 8,
    .get = st_get,
    .put = st_put,
    .del = st_del,
    .ping = st_ping,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STORE,
    .name = "small_vtable",
    .version = "0.0.1",
    .store = &store,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
