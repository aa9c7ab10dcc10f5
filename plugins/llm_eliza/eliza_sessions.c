/*
 * Conversation states by session id: a chained hash table for the lookup
 * and a doubly linked list in order of use, so the least recently used
 * conversation is the one forgotten when the map is full. Not locked: the
 * plugin holds its instance mutex around every call.
 */
#include <stdlib.h>
#include <string.h>

#include "eliza.h"

#define SESS_MAX_BUCKETS 65536u

typedef struct sess {
    char *id;
    uint64_t hash;
    eliza_state *st;
    struct sess *chain;      /* next in the bucket */
    struct sess *newer, *older; /* use order */
} sess;

struct eliza_sessions {
    const eliza_script *script;
    sess **buckets;
    size_t n_buckets; /* a power of two */
    size_t n, max;
    sess *newest, *oldest;
};

/* FNV-1a. Ids chosen to collide can at worst put every conversation in
 * one chain, which max_sessions bounds: slower lookups, nothing worse. */
static uint64_t sess_hash(const char *id) {
    uint64_t h = 0xcbf29ce484222325ull;

    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

eliza_sessions *eliza_sessions_new(const eliza_script *s, size_t max) {
    eliza_sessions *m = calloc(1, sizeof(*m));

    if (!m) return NULL;
    m->script = s;
    m->max = max ? max : 1;
    m->n_buckets = 16;
    while (m->n_buckets < m->max && m->n_buckets < SESS_MAX_BUCKETS) m->n_buckets *= 2;
    if (!(m->buckets = calloc(m->n_buckets, sizeof(*m->buckets)))) {
        free(m);
        return NULL;
    }
    return m;
}

static void sess_unlink_use(eliza_sessions *m, sess *e) {
    if (e->newer) e->newer->older = e->older;
    else m->newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else m->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void sess_push_newest(eliza_sessions *m, sess *e) {
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest) m->newest->newer = e;
    m->newest = e;
    if (!m->oldest) m->oldest = e;
}

static void sess_free(sess *e) {
    eliza_state_free(e->st);
    free(e->id);
    free(e);
}

/* Forget the least recently used conversation. */
static void sess_evict(eliza_sessions *m) {
    sess *e = m->oldest, **pp;

    for (pp = &m->buckets[e->hash & (m->n_buckets - 1)]; *pp != e; pp = &(*pp)->chain)
        ;
    *pp = e->chain;
    sess_unlink_use(m, e);
    sess_free(e);
    m->n--;
}

eliza_state *eliza_sessions_get(eliza_sessions *m, const char *id) {
    uint64_t h = sess_hash(id);
    sess **bucket = &m->buckets[h & (m->n_buckets - 1)], *e;

    for (e = *bucket; e; e = e->chain) {
        if (e->hash == h && strcmp(e->id, id) == 0) {
            sess_unlink_use(m, e);
            sess_push_newest(m, e);
            return e->st;
        }
    }
    if (!(e = calloc(1, sizeof(*e)))) return NULL;
    if (!(e->id = strdup(id)) || !(e->st = eliza_state_new(m->script))) {
        sess_free(e);
        return NULL;
    }
    if (m->n == m->max) sess_evict(m);
    e->hash = h;
    e->chain = *bucket;
    *bucket = e;
    sess_push_newest(m, e);
    m->n++;
    return e->st;
}

size_t eliza_sessions_count(const eliza_sessions *m) {
    return m->n;
}

void eliza_sessions_free(eliza_sessions *m) {
    sess *e, *next;

    if (!m) return;
    for (e = m->newest; e; e = next) {
        next = e->older;
        sess_free(e);
    }
    free(m->buckets);
    free(m);
}
