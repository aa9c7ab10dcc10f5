/*
 * Connections grouped by client address: a hash table of groups, each a
 * doubly linked list of the caller's links in arrival order.
 *
 * The addresses come from the network, so the hash is seeded at random per
 * table: a client cannot choose addresses that all land in one bucket
 * without knowing the seed. The bucket count is fixed at creation (a power
 * of two near the expected number of links, at most PEERS_MAX_BUCKETS);
 * more links only make the chains longer.
 */
#include "config.h"

#include "net/peers.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PEERS_MIN_BUCKETS 64
#define PEERS_MAX_BUCKETS 65536

struct peers_group {
    unsigned char key[16];
    unsigned n;
    peers_link *first, *last;
    peers_group *hnext;
};

struct peers {
    uint64_t seed;
    size_t mask; /* buckets - 1 */
    size_t ngroups;
    peers_group **tab;
};

peers *peers_new(size_t expected)
{
    size_t n = PEERS_MIN_BUCKETS;
    peers *t;

    while (n < expected && n < PEERS_MAX_BUCKETS) n *= 2;
    if ((t = calloc(1, sizeof *t)) == NULL) return NULL;
    if ((t->tab = calloc(n, sizeof *t->tab)) == NULL) {
        free(t);
        return NULL;
    }
    t->mask = n - 1;
    if (getrandom(&t->seed, sizeof t->seed, GRND_NONBLOCK) != (ssize_t)sizeof t->seed) {
        struct timespec ts; /* no entropy yet (early boot): still differs per run */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)t;
    }
    return t;
}

void peers_free(peers *t)
{
    if (t == NULL) return;
    for (size_t b = 0; b <= t->mask; b++) {
        while (t->tab[b]) {
            peers_group *g = t->tab[b];
            t->tab[b] = g->hnext;
            free(g);
        }
    }
    free(t->tab);
    free(t);
}

int peers_key(const struct sockaddr *sa, socklen_t len, unsigned char key[16])
{
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        memset(key, 0, 16);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memset(key, 0, 16);
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[10] = key[11] = 0xff;
            memcpy(key + 12, &a->s6_addr[12], 4);
        } else {
            memcpy(key, a->s6_addr, 8); /* the /64 */
        }
        return 0;
    }
    return -1;
}

/* FNV-1a over the key, started from the seed. */
static size_t bucket(const peers *t, const unsigned char *k)
{
    uint64_t h = 1469598103934665603ull ^ t->seed;
    for (int i = 0; i < 16; i++) {
        h ^= k[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29)) & t->mask;
}

unsigned peers_add(peers *t, const unsigned char key[16], peers_link *l)
{
    peers_group **pp = &t->tab[bucket(t, key)], *g;

    while (*pp && memcmp((*pp)->key, key, 16) != 0) pp = &(*pp)->hnext;
    if ((g = *pp) == NULL) {
        if ((g = calloc(1, sizeof *g)) == NULL) {
            l->group = NULL;
            return 0;
        }
        memcpy(g->key, key, 16);
        *pp = g;
        t->ngroups++;
    }
    l->group = g;
    l->next = NULL;
    l->prev = g->last;
    if (g->last) g->last->next = l;
    else g->first = l;
    g->last = l;
    return ++g->n;
}

void peers_remove(peers *t, peers_link *l)
{
    peers_group *g = l->group, **pp;

    if (g == NULL) return;
    if (l->prev) l->prev->next = l->next;
    else g->first = l->next;
    if (l->next) l->next->prev = l->prev;
    else g->last = l->prev;
    l->prev = l->next = NULL;
    l->group = NULL;
    if (--g->n > 0) return;
    pp = &t->tab[bucket(t, g->key)];
    while (*pp != g) pp = &(*pp)->hnext;
    *pp = g->hnext;
    free(g);
    t->ngroups--;
}

peers_link *peers_oldest(const peers_link *l)
{
    return l->group ? l->group->first : (peers_link *)l;
}

unsigned peers_count(const peers_link *l)
{
    return l->group ? l->group->n : 0;
}

size_t peers_groups(const peers *t)
{
    return t->ngroups;
}
