/*
 * store_memory: the in-process session store.
 *
 * A chained hash table guarded by one mutex. Entries carry an absolute expiry
 * on the host's monotonic clock. Expired entries are removed lazily when a
 * call touches them, and by a full sweep when the table is about to grow or is
 * full, so keys that are written once and never read again cannot make memory
 * grow without bound. The sweep only runs once the earliest known expiry has
 * passed, which keeps it from turning every put into an O(n) scan.
 *
 * Sessions stored here die with the process and are not shared between
 * replicas; use store_redis for that.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

#define MEM_VERSION "1.0.0"
#define MEM_MIN_BUCKETS 64
#define MEM_NEVER UINT64_MAX

typedef struct mem_entry {
    struct mem_entry *next;
    uint64_t hash;
    uint64_t expire_ns; /* MEM_NEVER: no expiry */
    size_t len;
    void *val;
    char key[]; /* NUL-terminated */
} mem_entry;

typedef struct mem_store {
    const vx_host_api *api;
    vx_host *h;
    pthread_mutex_t mu;
    mem_entry **buckets;
    size_t n_buckets; /* power of two */
    size_t count;
    size_t max_keys;
    uint64_t next_expiry; /* lower bound on the earliest expiry in the table */
} mem_store;

static const vx_config_key mem_config[] = {
    {"max_keys", VX_CFG_INT, "100000",
     "maximum number of live keys; put of a new key beyond it fails",
     1, 100000000, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

static void mem_seterr(vx_error *err, int code, int retryable, const char *fmt, ...)
    VX_PRINTF(4, 5);

static void mem_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* FNV-1a, 64 bit. Keys are session ids chosen by the host, not by clients
 * directly, so a keyed hash is not needed to resist flooding. */
static uint64_t mem_hash(const char *key) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

static int mem_expired(const mem_entry *e, uint64_t now) {
    return e->expire_ns != MEM_NEVER && now >= e->expire_ns;
}

static void mem_entry_free(mem_entry *e) {
    free(e->val);
    free(e);
}

/* Return the link that points at key's entry (or at the NULL that ends its
 * chain when absent), so callers can unlink or insert in place. */
static mem_entry **mem_find(mem_store *s, const char *key, uint64_t hash) {
    mem_entry **pp = &s->buckets[hash & (s->n_buckets - 1)];
    while (*pp && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

static void mem_unlink(mem_store *s, mem_entry **pp) {
    mem_entry *e = *pp;
    *pp = e->next;
    mem_entry_free(e);
    s->count--;
}

/* Drop every expired entry and recompute next_expiry. O(buckets + count). */
static void mem_sweep(mem_store *s, uint64_t now) {
    uint64_t next = MEM_NEVER;

    for (size_t i = 0; i < s->n_buckets; i++) {
        mem_entry **pp = &s->buckets[i];
        while (*pp) {
            if (mem_expired(*pp, now)) {
                mem_unlink(s, pp);
                continue;
            }
            if ((*pp)->expire_ns < next) next = (*pp)->expire_ns;
            pp = &(*pp)->next;
        }
    }
    s->next_expiry = next;
}

static void mem_maybe_sweep(mem_store *s, uint64_t now) {
    if (now >= s->next_expiry) mem_sweep(s, now);
}

/* Double the bucket array. On allocation failure the table keeps its size:
 * chains just get longer, nothing is lost. */
static void mem_grow(mem_store *s) {
    size_t n = s->n_buckets * 2;
    mem_entry **b = calloc(n, sizeof(*b));

    if (!b) return;
    for (size_t i = 0; i < s->n_buckets; i++) {
        mem_entry *e = s->buckets[i];
        while (e) {
            mem_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
}

/* ---------------------------------------------------------------- vtable */

static int mem_get(void *inst, const char *key, void **val, size_t *len, vx_error *err) {
    mem_store *s = inst;
    uint64_t now = s->api->now_ns();
    int rc = VX_OK;

    *val = NULL;
    *len = 0;
    pthread_mutex_lock(&s->mu);
    mem_entry **pp = mem_find(s, key, mem_hash(key));
    if (!*pp || mem_expired(*pp, now)) {
        if (*pp) mem_unlink(s, pp);
        rc = VX_ENOTFOUND;
        mem_seterr(err, rc, 0, "store_memory: no such key");
        goto done;
    }
    /* host->alloc(0) may legally return NULL; ask for one byte so an empty
     * value is still distinguishable from an allocation failure. */
    void *copy = s->api->alloc((*pp)->len ? (*pp)->len : 1);
    if (!copy) {
        rc = VX_ENOMEM;
        mem_seterr(err, rc, 1, "store_memory: out of memory copying %zu bytes", (*pp)->len);
        goto done;
    }
    memcpy(copy, (*pp)->val, (*pp)->len);
    *val = copy;
    *len = (*pp)->len;
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int mem_put(void *inst, const char *key, const void *val, size_t len,
                   uint32_t ttl_s, vx_error *err) {
    mem_store *s = inst;
    uint64_t now = s->api->now_ns();
    uint64_t expire = ttl_s ? now + (uint64_t)ttl_s * 1000000000ull : MEM_NEVER;
    uint64_t hash = mem_hash(key);
    void *copy = malloc(len ? len : 1);
    mem_entry *e = NULL;
    int rc = VX_OK;

    if (!copy) {
        mem_seterr(err, VX_ENOMEM, 1, "store_memory: out of memory storing %zu bytes", len);
        return VX_ENOMEM;
    }
    memcpy(copy, val, len);

    pthread_mutex_lock(&s->mu);
    mem_entry **pp = mem_find(s, key, hash);
    if (*pp) {
        /* Overwrite in place: replacing a key never needs a new slot, so it
         * succeeds even when the store is full. */
        e = *pp;
        free(e->val);
        e->val = copy;
        e->len = len;
        e->expire_ns = expire;
        copy = NULL;
        goto done;
    }

    if (s->count >= s->max_keys) {
        mem_maybe_sweep(s, now);
        if (s->count >= s->max_keys) {
            rc = VX_EUNAVAIL;
            mem_seterr(err, rc, 0,
                       "store_memory: full (max_keys=%zu live keys); raise max_keys "
                       "or lower [session] ttl", s->max_keys);
            goto done;
        }
    } else if (s->count >= s->n_buckets) {
        /* Load factor 1 reached: reclaim expired entries before paying for a
         * bigger table, and grow only if that did not free a quarter. */
        mem_maybe_sweep(s, now);
        if (s->count >= s->n_buckets - s->n_buckets / 4) mem_grow(s);
    }

    size_t klen = strlen(key);
    e = malloc(sizeof(*e) + klen + 1);
    if (!e) {
        rc = VX_ENOMEM;
        mem_seterr(err, rc, 1, "store_memory: out of memory adding a key");
        goto done;
    }
    memcpy(e->key, key, klen + 1);
    e->hash = hash;
    e->val = copy;
    e->len = len;
    e->expire_ns = expire;
    copy = NULL;
    pp = &s->buckets[hash & (s->n_buckets - 1)]; /* may have moved in mem_grow */
    e->next = *pp;
    *pp = e;
    s->count++;
done:
    if (rc == VX_OK && expire < s->next_expiry) s->next_expiry = expire;
    pthread_mutex_unlock(&s->mu);
    free(copy);
    return rc;
}

static int mem_del(void *inst, const char *key, vx_error *err) {
    mem_store *s = inst;

    pthread_mutex_lock(&s->mu);
    mem_entry **pp = mem_find(s, key, mem_hash(key));
    if (*pp) mem_unlink(s, pp);
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

/* Nothing to reach: the store is alive as long as the process is. */
static int mem_ping(void *inst, vx_error *err) {
    return VX_OK;
}

static const vx_store_vtable mem_vtable = {
    .struct_size = sizeof(vx_store_vtable),
    .get = mem_get,
    .put = mem_put,
    .del = mem_del,
    .ping = mem_ping,
};

/* ---------------------------------------------------------------- lifecycle */

static int mem_init(const vx_host_api *host, vx_host *h, const vx_config *cfg,
                    void **inst, vx_error *err) {
    mem_store *s = calloc(1, sizeof(*s));
    const char *v;

    if (!s) goto oom;
    s->api = host;
    s->h = h;
    s->max_keys = 100000;
    /* The host validated the range; strtoull cannot fail on its output. */
    if ((v = host->config_get(h, "max_keys")) != NULL) s->max_keys = strtoull(v, NULL, 10);
    s->n_buckets = MEM_MIN_BUCKETS;
    s->next_expiry = MEM_NEVER;
    s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
    if (!s->buckets) goto oom;
    if (pthread_mutex_init(&s->mu, NULL) != 0) goto oom;
    host->log(h, VX_LOG_INFO, "in-process store, max_keys=%zu", s->max_keys);
    *inst = s;
    return VX_OK;
oom:
    if (s) free(s->buckets);
    free(s);
    mem_seterr(err, VX_ENOMEM, 0, "store_memory: out of memory at init");
    return VX_ENOMEM;
}

static void mem_shutdown(void *inst) {
    mem_store *s = inst;

    if (!s) return;
    for (size_t i = 0; i < s->n_buckets; i++) {
        mem_entry *e = s->buckets[i];
        while (e) {
            mem_entry *next = e->next;
            mem_entry_free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&s->mu);
    free(s->buckets);
    free(s);
}

/* Healthy unless full; counts include expired entries not yet swept. */
static int mem_health(void *inst, char *buf, size_t len) {
    mem_store *s = inst;
    size_t count;

    pthread_mutex_lock(&s->mu);
    count = s->count;
    pthread_mutex_unlock(&s->mu);
    snprintf(buf, len, "in-process, %zu/%zu keys", count, s->max_keys);
    return count >= s->max_keys ? VX_EUNAVAIL : VX_OK;
}

static const vx_plugin_info mem_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STORE,
    .name = "store_memory",
    .version = MEM_VERSION,
    .description = "in-process session store with TTL (single replica only)",
    .caps = 0,
    .config = mem_config,
    .init = mem_init,
    .shutdown = mem_shutdown,
    .store = &mem_vtable,
    .health = mem_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* Everything used here (log, now_ns, alloc, config_get) exists since 1.0. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_get))
        return NULL;
    return &mem_info;
}
