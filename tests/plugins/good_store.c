/* Proves a valid, minimal ABI 1.1 store plugin loads and its vtable is copied intact. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

/* One key at a time: enough to show get/put/del/ping through the ABI. */
typedef struct gs_inst {
    const vx_host_api *host;
    pthread_mutex_t lock;
    char *key;
    void *val;
    size_t len;
    uint64_t expires_ns; /* 0: never */
} gs_inst;

static void gs_clear(gs_inst *s) {
    free(s->key);
    free(s->val);
    s->key = NULL;
    s->val = NULL;
    s->len = 0;
    s->expires_ns = 0;
}

static int gs_live(gs_inst *s, const char *key) {
    if (s->key == NULL || strcmp(s->key, key) != 0) return 0;
    if (s->expires_ns && s->host->now_ns() >= s->expires_ns) {
        gs_clear(s);
        return 0;
    }
    return 1;
}

static int gs_get(void *inst, const char *key, void **val, size_t *len, vx_error *err) {
    gs_inst *s = inst;
    int rc = VX_ENOTFOUND;

    pthread_mutex_lock(&s->lock);
    if (gs_live(s, key)) {
        *val = s->host->alloc(s->len ? s->len : 1);
        if (*val == NULL) {
            rc = VX_ENOMEM;
            err->code = rc;
            snprintf(err->msg, sizeof(err->msg), "out of memory");
        } else {
            memcpy(*val, s->val, s->len);
            *len = s->len;
            rc = VX_OK;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int gs_put(void *inst, const char *key, const void *val, size_t len,
                  uint32_t ttl_s, vx_error *err) {
    gs_inst *s = inst;
    char *k = strdup(key);
    void *v = malloc(len ? len : 1);

    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return VX_ENOMEM;
    }
    memcpy(v, val, len);
    pthread_mutex_lock(&s->lock);
    gs_clear(s);
    s->key = k;
    s->val = v;
    s->len = len;
    s->expires_ns = ttl_s ? s->host->now_ns() + (uint64_t)ttl_s * 1000000000u : 0;
    pthread_mutex_unlock(&s->lock);
    return VX_OK;
}

static int gs_del(void *inst, const char *key, vx_error *err) {
    gs_inst *s = inst;

    pthread_mutex_lock(&s->lock);
    if (s->key && strcmp(s->key, key) == 0) gs_clear(s);
    pthread_mutex_unlock(&s->lock);
    return VX_OK;
}

static int gs_ping(void *inst, vx_error *err) { return VX_OK; }

static int gs_init(const vx_host_api *host, vx_host *h, const vx_config *cfg,
                   void **inst, vx_error *err) {
    gs_inst *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        err->code = VX_ENOMEM;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return VX_ENOMEM;
    }
    s->host = host;
    pthread_mutex_init(&s->lock, NULL);
    *inst = s;
    return VX_OK;
}

static void gs_shutdown(void *inst) {
    gs_inst *s = inst;

    gs_clear(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int gs_health(void *inst, char *buf, size_t len) {
    snprintf(buf, len, "in memory");
    return VX_OK;
}

static const vx_store_vtable store = {
    .struct_size = sizeof(vx_store_vtable),
    .get = gs_get,
    .put = gs_put,
    .del = gs_del,
    .ping = gs_ping,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STORE,
    .name = "good_store",
    .version = "1.0.0",
    .description = "single-key in-memory session store for tests",
    .init = gs_init,
    .shutdown = gs_shutdown,
    .store = &store,
    .health = gs_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
