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
 * The store is bounded like a cache (Redis' maxmemory with an LRU policy):
 * when a put would take it over max_keys keys or max_memory_mb of keys and
 * values, the entries written longest ago are evicted first (a list in write
 * order), so a busy server keeps the most recent sessions resumable instead
 * of refusing new ones. Evictions are counted and logged (at most once a
 * minute); a single value larger than the whole budget is refused.
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
    struct mem_entry *next;             /* hash chain */
    struct mem_entry *older, *newer;    /* write order, oldest first */
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
    size_t bytes; /* keys, values and entry headers */
    size_t max_keys;
    size_t max_bytes;
    uint64_t next_expiry; /* lower bound on the earliest expiry in the table */
    mem_entry *oldest, *newest;
    uint64_t evicted;            /* since start */
    uint64_t evicted_logged;     /* evicted when the last warning was logged */
    uint64_t last_warn_ns;
    vx_metric *m_evicted, *m_keys, *m_bytes;
} mem_store;

static const vx_config_key mem_config[] = {
    {"max_keys", VX_CFG_INT, "100000",
     "most keys kept; beyond it the keys written longest ago are evicted",
     1, 100000000, NULL, 0},
    {"max_memory_mb", VX_CFG_INT, "256",
     "most MiB of keys and values kept; beyond it the keys written longest ago are evicted",
     1, 1048576, NULL, 0},
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

/* What an entry costs, as counted against max_memory_mb. */
static size_t mem_cost(size_t klen, size_t vlen) {
    return sizeof(mem_entry) + klen + 1 + vlen;
}

static void mem_order_remove(mem_store *s, mem_entry *e) {
    if (e->older) e->older->newer = e->newer;
    else s->oldest = e->newer;
    if (e->newer) e->newer->older = e->older;
    else s->newest = e->older;
    e->older = e->newer = NULL;
}

static void mem_order_append(mem_store *s, mem_entry *e) {
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest) s->newest->newer = e;
    else s->oldest = e;
    s->newest = e;
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
    mem_order_remove(s, e);
    s->bytes -= mem_cost(strlen(e->key), e->len);
    mem_entry_free(e);
    s->count--;
}

static void mem_gauges(mem_store *s) {
    if (s->m_keys) s->api->metric_set(s->m_keys, (double)s->count);
    if (s->m_bytes) s->api->metric_set(s->m_bytes, (double)s->bytes);
}

/* Evict the entries written longest ago until one more of `cost` bytes fits
 * (keep: an entry already in the table that must stay). s->mu held. */
static void mem_make_room(mem_store *s, size_t cost, int new_key, const mem_entry *keep, uint64_t now) {
    uint64_t before = s->evicted;

    while (s->oldest &&
           (s->bytes + cost > s->max_bytes || (new_key && s->count + 1 > s->max_keys))) {
        mem_entry *victim = s->oldest == keep ? keep->newer : s->oldest;
        if (victim == NULL) break;
        if (!mem_expired(victim, now)) s->evicted++; /* an expired one was due anyway */
        mem_unlink(s, mem_find(s, victim->key, victim->hash));
    }
    if (s->evicted == before) return;
    if (s->m_evicted) s->api->metric_add(s->m_evicted, (double)(s->evicted - before));
    if (s->last_warn_ns == 0 || now - s->last_warn_ns >= 60000000000ull) {
        s->api->log(s->h, VX_LOG_WARN,
                    "full (%zu keys, %.1f of %zu MiB): evicted %llu sessions written longest ago "
                    "(they can no longer be resumed); raise max_memory_mb or max_keys, or lower "
                    "[session] ttl",
                    s->count, (double)s->bytes / 1048576.0, s->max_bytes >> 20,
                    (unsigned long long)(s->evicted - s->evicted_logged));
        s->last_warn_ns = now;
        s->evicted_logged = s->evicted;
    }
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

    size_t klen = strlen(key);
    size_t cost = mem_cost(klen, len);
    pthread_mutex_lock(&s->mu);
    if (cost > s->max_bytes) {
        rc = VX_EINVAL;
        mem_seterr(err, rc, 0, "store_memory: a value of %zu bytes is larger than max_memory_mb=%zu",
                   len, s->max_bytes >> 20);
        goto done;
    }
    mem_entry **pp = mem_find(s, key, hash);
    if (*pp) {
        /* Overwrite in place; it becomes the newest entry. */
        e = *pp;
        size_t old = mem_cost(klen, e->len);
        if (cost > old) mem_make_room(s, cost - old, 0, e, now);
        s->bytes -= old;
        s->bytes += cost;
        free(e->val);
        e->val = copy;
        e->len = len;
        e->expire_ns = expire;
        copy = NULL;
        mem_order_remove(s, e);
        mem_order_append(s, e);
        goto done;
    }

    if (s->count >= s->max_keys || s->bytes + cost > s->max_bytes) {
        mem_maybe_sweep(s, now);
        mem_make_room(s, cost, 1, NULL, now);
    }
    if (s->count >= s->n_buckets) {
        /* Load factor 1 reached: reclaim expired entries before paying for a
         * bigger table, and grow only if that did not free a quarter. */
        mem_maybe_sweep(s, now);
        if (s->count >= s->n_buckets - s->n_buckets / 4) mem_grow(s);
    }

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
    mem_order_append(s, e);
    s->count++;
    s->bytes += cost;
done:
    if (rc == VX_OK && expire < s->next_expiry) s->next_expiry = expire;
    mem_gauges(s);
    pthread_mutex_unlock(&s->mu);
    free(copy);
    return rc;
}

static int mem_del(void *inst, const char *key, vx_error *err) {
    mem_store *s = inst;

    pthread_mutex_lock(&s->mu);
    mem_entry **pp = mem_find(s, key, mem_hash(key));
    if (*pp) mem_unlink(s, pp);
    mem_gauges(s);
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

    if (!s) goto oom;
    s->api = host;
    s->h = h;
    s->max_keys = 100000;
    s->max_bytes = (size_t)256 << 20;
    /* As the host parsed them (ABI 1.6); it validated the ranges. */
    int64_t n;
    if (host->config_int(h, "max_keys", &n) == VX_OK && n > 0) s->max_keys = (uint64_t)n;
    if (host->config_int(h, "max_memory_mb", &n) == VX_OK && n > 0) s->max_bytes = (size_t)n << 20;
    if (VX_HOST_HAS(host, metric_set) && host->metric_register && host->metric_add && host->metric_set) {
        s->m_evicted = host->metric_register(h, VX_METRIC_COUNTER, "store_memory_evicted_keys_total",
                                             "Keys evicted (written longest ago) to stay within max_keys "
                                             "and max_memory_mb");
        s->m_keys = host->metric_register(h, VX_METRIC_GAUGE, "store_memory_keys",
                                          "Keys held, expired ones not yet swept included");
        s->m_bytes = host->metric_register(h, VX_METRIC_GAUGE, "store_memory_bytes",
                                           "Bytes of keys and values held, as counted against max_memory_mb");
    }
    s->n_buckets = MEM_MIN_BUCKETS;
    s->next_expiry = MEM_NEVER;
    s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
    if (!s->buckets) goto oom;
    if (pthread_mutex_init(&s->mu, NULL) != 0) goto oom;
    host->log(h, VX_LOG_INFO, "in-process store, max_keys=%zu, max_memory_mb=%zu", s->max_keys,
              s->max_bytes >> 20);
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

/* Always healthy: a full store evicts rather than refuses. Counts include
 * expired entries not yet swept. */
static int mem_health(void *inst, char *buf, size_t len) {
    mem_store *s = inst;
    size_t count, bytes;
    uint64_t evicted;

    pthread_mutex_lock(&s->mu);
    count = s->count;
    bytes = s->bytes;
    evicted = s->evicted;
    pthread_mutex_unlock(&s->mu);
    snprintf(buf, len, "in-process, %zu/%zu keys, %.1f/%zu MiB, %llu evicted", count, s->max_keys,
             (double)bytes / 1048576.0, s->max_bytes >> 20, (unsigned long long)evicted);
    return VX_OK;
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
    /* log, now_ns and alloc exist since 1.0, the typed config getters since
     * 1.6; the metrics are used only when the host has them. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_int) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "store_memory needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &mem_info;
}
