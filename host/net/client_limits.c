/*
 * Per-client limits: origins, concurrent sessions and upgrade rate per IP,
 * client address behind trusted proxies.
 *
 * Per-IP entries live in a hash table. An entry with sessions open is
 * needed and stays; an entry with none is needed only until its token
 * bucket is full again (then it says nothing an absent entry would not), so
 * idle entries sit on a list in the order they were last touched and are
 * dropped from its head once that time has passed, or when there are more
 * than LIMITS_MAX_IDLE of them. Entries with sessions are bounded by
 * [server] max_sessions, so the table is bounded too.
 */
#include "config.h"

#include "net/client_limits.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/acl.h"
#include "metrics.h"

#define BUCKETS 8192

typedef struct entry {
    unsigned char key[16];
    int sessions;
    double tokens;
    uint64_t refilled; /* when tokens was last brought up to date, ns */
    uint64_t touched;  /* when it became idle or was last refused, ns */
    int idle;          /* on the idle list */
    struct entry *hnext;
    struct entry *prev, *next; /* idle list */
} entry;

/* Configuration: written by limits_configure only, before any other use. */
static acl *g_proxies;
static char **g_origins;
static int g_norigins;
static int g_max_sessions;
static double g_rate, g_burst;
static uint64_t g_idle_ns; /* how long an idle entry matters */
static uint64_t g_seed;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static entry *g_tab[BUCKETS];
static entry *g_idle_head, *g_idle_tail;
static size_t g_n, g_nidle;

static metrics_series *s_rate, *s_sessions, *s_secrets, *s_pending;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int limits_metrics_init(metrics_registry *reg)
{
    static const char *const l[] = {"limit"};
    metrics_family *f = metrics_counter_family(
        reg, "voxray_rate_limited_total",
        "Requests refused with 429 by a per-client limit: upgrades_per_second, sessions_per_ip, client_secrets, "
        "pending_per_ip (a connection closed because its address had [server] max_pending_per_ip request heads "
        "waiting).",
        1, l);
    if (f == NULL) return -1;
    const char *a[] = {"upgrades_per_second"}, *b[] = {"sessions_per_ip"}, *c[] = {"client_secrets"},
               *d[] = {"pending_per_ip"};
    s_rate = metrics_series_get(f, a);
    s_sessions = metrics_series_get(f, b);
    s_secrets = metrics_series_get(f, c);
    s_pending = metrics_series_get(f, d);
    return s_rate && s_sessions && s_secrets && s_pending ? 0 : -1;
}

void limits_count(const char *limit)
{
    metrics_series *s = strcmp(limit, "upgrades_per_second") == 0 ? s_rate
                      : strcmp(limit, "sessions_per_ip") == 0 ? s_sessions
                      : strcmp(limit, "client_secrets") == 0 ? s_secrets
                      : strcmp(limit, "pending_per_ip") == 0 ? s_pending : NULL;
    if (s) metrics_counter_inc(s);
}

/* ------------------------------------------------------------ table */

static size_t hash(const unsigned char *k)
{
    uint64_t h = 1469598103934665603ull ^ g_seed; /* FNV-1a, seeded */
    for (int i = 0; i < 16; i++) {
        h ^= k[i];
        h *= 1099511628211ull;
    }
    return (size_t)(h % BUCKETS);
}

static entry *find(const unsigned char *k, entry ***slot)
{
    entry **pp = &g_tab[hash(k)];
    while (*pp && memcmp((*pp)->key, k, 16) != 0) pp = &(*pp)->hnext;
    if (slot) *slot = pp;
    return *pp;
}

static void idle_unlink(entry *e)
{
    if (!e->idle) return;
    if (e->prev) e->prev->next = e->next;
    else g_idle_head = e->next;
    if (e->next) e->next->prev = e->prev;
    else g_idle_tail = e->prev;
    e->prev = e->next = NULL;
    e->idle = 0;
    g_nidle--;
}

static void idle_append(entry *e, uint64_t now)
{
    idle_unlink(e);
    e->touched = now;
    e->prev = g_idle_tail;
    if (g_idle_tail) g_idle_tail->next = e;
    else g_idle_head = e;
    g_idle_tail = e;
    e->idle = 1;
    g_nidle++;
}

static void drop(entry *e)
{
    entry **pp;
    idle_unlink(e);
    if (find(e->key, &pp) == e) *pp = e->hnext;
    free(e);
    g_n--;
}

/* Forget idle entries whose bucket is full again, and the oldest ones
 * beyond the cap. */
static void expire(uint64_t now)
{
    while (g_idle_head && (now - g_idle_head->touched >= g_idle_ns || g_nidle > LIMITS_MAX_IDLE))
        drop(g_idle_head);
}

static void refill(entry *e, uint64_t now)
{
    e->tokens += (double)(now - e->refilled) / 1e9 * g_rate;
    if (e->tokens > g_burst) e->tokens = g_burst;
    e->refilled = now;
}

limits_verdict limits_admit(limits_client *c)
{
    limits_verdict v = LIMITS_OK;
    entry *e, **slot;
    uint64_t now;

    c->counted = 0;
    if (g_rate <= 0 && g_max_sessions <= 0) return LIMITS_OK;
    now = now_ns();
    pthread_mutex_lock(&g_lock);
    expire(now);
    if ((e = find(c->key, &slot)) == NULL) {
        if ((e = calloc(1, sizeof *e)) == NULL) {
            /* Out of memory: let it in uncounted rather than refuse everyone. */
            pthread_mutex_unlock(&g_lock);
            return LIMITS_OK;
        }
        memcpy(e->key, c->key, 16);
        e->tokens = g_burst;
        e->refilled = now;
        *slot = e;
        g_n++;
    }
    if (g_rate > 0) {
        refill(e, now);
        if (e->tokens < 1) v = LIMITS_RATE;
        else e->tokens -= 1;
    }
    if (v == LIMITS_OK && g_max_sessions > 0 && e->sessions >= g_max_sessions) v = LIMITS_SESSIONS;
    if (v == LIMITS_OK) {
        e->sessions++;
        c->counted = 1;
        idle_unlink(e);
    } else if (e->sessions == 0) {
        idle_append(e, now);
    }
    if (e->sessions == 0 && g_idle_ns == 0) drop(e);
    expire(now); /* the cap */
    pthread_mutex_unlock(&g_lock);
    if (v == LIMITS_RATE) limits_count("upgrades_per_second");
    else if (v == LIMITS_SESSIONS) limits_count("sessions_per_ip");
    return v;
}

void limits_release(limits_client *c)
{
    entry *e;
    uint64_t now;
    if (!c->counted) return;
    c->counted = 0;
    now = now_ns();
    pthread_mutex_lock(&g_lock);
    if ((e = find(c->key, NULL)) != NULL && e->sessions > 0 && --e->sessions == 0) {
        if (g_idle_ns == 0) drop(e);
        else idle_append(e, now);
    }
    expire(now);
    pthread_mutex_unlock(&g_lock);
}

size_t limits_tracked(void)
{
    pthread_mutex_lock(&g_lock);
    size_t n = g_n;
    pthread_mutex_unlock(&g_lock);
    return n;
}

static void clear_table(void)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        while (g_tab[b]) {
            entry *e = g_tab[b];
            g_tab[b] = e->hnext;
            free(e);
        }
    }
    g_idle_head = g_idle_tail = NULL;
    g_n = g_nidle = 0;
}

/* ------------------------------------------------------------ addresses */

/* Key and text of an address given as 4 or 16 bytes. */
static void set_client(limits_client *c, int family, const void *addr)
{
    memset(c->key, 0, sizeof c->key);
    c->text[0] = '\0';
    if (family == AF_INET) {
        c->key[10] = c->key[11] = 0xff;
        memcpy(c->key + 12, addr, 4);
    } else {
        memcpy(c->key, addr, 8); /* the /64 */
    }
    inet_ntop(family, addr, c->text, sizeof c->text);
}

static int from_sockaddr(const struct sockaddr *sa, limits_client *c)
{
    if (sa && sa->sa_family == AF_INET) {
        set_client(c, AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) set_client(c, AF_INET, &a->s6_addr[12]);
        else set_client(c, AF_INET6, a);
        return 0;
    }
    return -1;
}

/* One X-Forwarded-For element: "1.2.3.4", "1.2.3.4:80", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:443". */
static int parse_hop(const char *s, size_t n, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 8];
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof *ss);
    if (buf[0] == '[') {
        char *rb = strchr(buf, ']');
        if (rb == NULL || (rb[1] != '\0' && rb[1] != ':')) return -1;
        *rb = '\0';
        if (inet_pton(AF_INET6, buf + 1, &a6->sin6_addr) != 1) return -1;
        a6->sin6_family = AF_INET6;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        return 0;
    }
    char *colon = strchr(buf, ':');
    if (colon && strchr(colon + 1, ':') == NULL) *colon = '\0'; /* a port */
    if (inet_pton(AF_INET, buf, &a4->sin_addr) != 1) return -1;
    a4->sin_family = AF_INET;
    return 0;
}

void limits_identify(const struct sockaddr *peer, const char *xff, limits_client *out)
{
    memset(out, 0, sizeof *out);
    if (from_sockaddr(peer, out) != 0) snprintf(out->text, sizeof out->text, "unknown");
    if (g_proxies == NULL || xff == NULL || *xff == '\0' || peer == NULL || !acl_match(g_proxies, peer)) return;

    /* From the right: skip the proxies; the first other address is the
     * client. An element that is not an address ends the walk at the last
     * trusted hop: whatever is left of it cannot be believed. */
    const char *end = xff + strlen(xff);
    limits_client best = *out;
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',') start--;
        const char *s = start, *e = end;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        struct sockaddr_storage ss;
        if (parse_hop(s, (size_t)(e - s), &ss) != 0) break;
        from_sockaddr((struct sockaddr *)&ss, &best);
        if (!acl_match(g_proxies, (struct sockaddr *)&ss)) break;
        end = start > xff ? start - 1 : xff;
    }
    *out = best;
}

int limits_trusted_proxy(const struct sockaddr *peer)
{
    return g_proxies != NULL && peer != NULL && acl_match(g_proxies, peer);
}

/* ------------------------------------------------------------ origins */

/* Length of an origin without a trailing '/'. */
static size_t origin_len(const char *o)
{
    size_t n = strlen(o);
    if (n > 0 && o[n - 1] == '/') n--;
    return n;
}

int limits_origin_allowed(const char *origin)
{
    if (origin == NULL || g_norigins == 0) return 1;
    size_t n = origin_len(origin);
    for (int i = 0; i < g_norigins; i++)
        if (origin_len(g_origins[i]) == n && strncasecmp(g_origins[i], origin, n) == 0) return 1;
    return 0;
}

/* ------------------------------------------------------------ set-up */

static void free_config(void)
{
    acl_free(g_proxies);
    g_proxies = NULL;
    for (int i = 0; i < g_norigins; i++) free(g_origins[i]);
    free(g_origins);
    g_origins = NULL;
    g_norigins = 0;
}

int limits_configure(const settings *s, char *err, size_t errlen)
{
    char why[256];
    free_config();
    pthread_mutex_lock(&g_lock);
    clear_table();
    pthread_mutex_unlock(&g_lock);
    if (getrandom(&g_seed, sizeof g_seed, GRND_NONBLOCK) != (ssize_t)sizeof g_seed) g_seed = (uint64_t)now_ns();
    if (s->trusted_proxies && *s->trusted_proxies && acl_parse(s->trusted_proxies, &g_proxies, why, sizeof why) != 0) {
        snprintf(err, errlen, "[server] trusted_proxies: %s", why);
        return -1;
    }
    if (s->allowed_origins && *s->allowed_origins) {
        g_origins = calloc(256, sizeof *g_origins);
        int n = g_origins ? settings_split_list(s->allowed_origins, g_origins, 256) : -1;
        if (n < 0) {
            free(g_origins);
            g_origins = NULL;
            snprintf(err, errlen, "[server] allowed_origins: empty entry, too many entries or out of memory");
            return -1;
        }
        g_norigins = n;
    }
    g_max_sessions = s->max_sessions_per_ip;
    g_rate = s->max_upgrades_per_second_per_ip;
    g_burst = g_rate < 1 ? 1 : g_rate;
    /* An idle entry matters until its bucket is full again. */
    g_idle_ns = g_rate > 0 ? (uint64_t)(g_burst / g_rate * 1e9) + 1 : 0;
    return 0;
}

void limits_free(void)
{
    free_config();
    pthread_mutex_lock(&g_lock);
    clear_table();
    pthread_mutex_unlock(&g_lock);
    g_rate = 0;
    g_max_sessions = 0;
    metrics_series_release(s_rate);
    metrics_series_release(s_sessions);
    metrics_series_release(s_secrets);
    metrics_series_release(s_pending);
    s_rate = s_sessions = s_secrets = s_pending = NULL;
}
