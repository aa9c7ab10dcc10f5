/*
 * API keys and client secrets.
 */
#include "config.h"

#include "net/auth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/log.h"
#include "metrics.h"

#define KEY_MIN 16
#define KEY_MAX 512
#define KEYS_MAX 10000             /* keys in force at most: each check compares them all */
#define SECRET_BUCKETS 4096
#define SECRET_RAW 32              /* random bytes in a secret */
#define SECRET_GRACE_NS (600ull * 1000000000ull) /* used/expired ones remembered */
#define SWEEP_EVERY_NS 1000000000ull
#define LOG_PER_SECOND 5

typedef unsigned char digest[32];

typedef struct keyset {
    digest *d;
    size_t n, cap;
} keyset;

typedef struct secret {
    digest d;
    uint64_t expires; /* CLOCK_MONOTONIC ns */
    int used;
    char *session;    /* JSON object text or NULL; given away when used */
    struct secret *next;
} secret;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static keyset g_keys;          /* guarded by g_lock */
static int g_enabled;          /* guarded by g_lock */
static long long g_max_ttl_ms = 7200000;
static size_t g_max_secrets = 1000;
static secret *g_sec[SECRET_BUCKETS];
static size_t g_nsec;          /* entries stored, used and expired included */
static size_t g_live;          /* of those, neither used nor known expired */
static uint64_t g_last_sweep;

static metrics_series *s_fail[AUTH_REUSED + 1];
static metrics_series *s_created;

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_log_second;
static int g_log_lines;
static unsigned g_log_skipped;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int sha256(const void *p, size_t n, digest out)
{
    unsigned int len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == sizeof(digest) ? 0 : -1;
}

/* ------------------------------------------------------------ metrics */

static const char *const reasons[] = {"ok", "missing", "invalid", "expired", "reused"};

const char *auth_reason(auth_result r)
{
    return r >= AUTH_OK && r <= AUTH_REUSED ? reasons[r] : "invalid";
}

int auth_metrics_init(metrics_registry *reg)
{
    static const char *const l_reason[] = {"reason"};
    metrics_family *f = metrics_counter_family(
        reg, "voxray_auth_failures_total",
        "Requests refused for their credential: missing, invalid, expired or reused (client secrets).", 1,
        l_reason);
    metrics_family *c = metrics_counter_family(reg, "voxray_client_secrets_created_total",
                                               "Client secrets minted by POST /v1/realtime/client_secrets.", 0, NULL);
    if (f == NULL || c == NULL) return -1;
    for (int r = AUTH_MISSING; r <= AUTH_REUSED; r++) {
        const char *v[] = {reasons[r]};
        if ((s_fail[r] = metrics_series_get(f, v)) == NULL) return -1;
    }
    if ((s_created = metrics_series_get(c, NULL)) == NULL) return -1;
    return 0;
}

/* ------------------------------------------------------------ keys */

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Why k (n bytes) cannot be a key, or NULL when it can. */
static const char *key_problem(const char *k, size_t n)
{
    if (n < KEY_MIN) return "is shorter than 16 characters (make one with: openssl rand -hex 32)";
    if (n > KEY_MAX) return "is longer than 512 characters";
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)k[i]))
            return "holds a character other than letters, digits and !#$%&'*+-.^_`|~";
    return NULL;
}

static int keyset_add(keyset *ks, const char *k, size_t n)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        digest *nd = realloc(ks->d, cap * sizeof *nd);
        if (nd == NULL) return -1;
        ks->d = nd;
        ks->cap = cap;
    }
    if (sha256(k, n, ks->d[ks->n]) != 0) return -1;
    ks->n++;
    return 0;
}

static const char *ordinal(size_t i, char *buf, size_t len)
{
    const char *suf = (i % 100 >= 11 && i % 100 <= 13) ? "th"
                    : i % 10 == 1 ? "st" : i % 10 == 2 ? "nd" : i % 10 == 3 ? "rd" : "th";
    snprintf(buf, len, "%zu%s", i, suf);
    return buf;
}

/* [auth] api_keys: comma-separated, blanks around entries ignored. */
static int load_list(const char *list, keyset *ks, int mask, char *err, size_t errlen)
{
    const char *p = list;
    size_t i = 0;
    char nth[32];
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 0;
    for (;;) {
        const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p);
        const char *s = p, *why;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        i++;
        if (s == e) why = "is empty";
        else why = key_problem(s, (size_t)(e - s));
        if (why) {
            snprintf(err, errlen, "[auth] api_keys: the %s key %s", ordinal(i, nth, sizeof nth), why);
            return -1;
        }
        if (ks->n >= KEYS_MAX) {
            snprintf(err, errlen, "[auth] api_keys: more than %d keys", KEYS_MAX);
            return -1;
        }
        if (keyset_add(ks, s, (size_t)(e - s)) != 0) goto oom;
        if (mask) {
            char *k = strndup(s, (size_t)(e - s));
            if (k) log_add_secret(k);
            free(k);
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    return 0;
oom:
    snprintf(err, errlen, "[auth] api_keys: out of memory");
    return -1;
}

/* [auth] keys_file: one key per line; blank lines and lines starting with
 * '#' are skipped; after a key only a '#' comment may follow. */
static int load_file(const char *path, keyset *ks, int mask, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = -1;
    struct stat st;

    if (f == NULL) {
        snprintf(err, errlen, "[auth] keys_file %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        char *p = line, *e;
        const char *why;
        lineno++;
        while (*p && isspace((unsigned char)*p)) p++;
        if (*p == '\0' || *p == '#') continue;
        e = p;
        while (*e && !isspace((unsigned char)*e)) e++;
        why = key_problem(p, (size_t)(e - p));
        if (why == NULL) {
            const char *rest = e;
            while (*rest && isspace((unsigned char)*rest)) rest++;
            if (*rest && *rest != '#') why = "is followed by more than a # comment";
        }
        if (why) {
            snprintf(err, errlen, "[auth] keys_file %s:%d: the key %s", path, lineno, why);
            goto out;
        }
        if (ks->n >= KEYS_MAX) {
            snprintf(err, errlen, "[auth] keys_file %s:%d: more than %d keys", path, lineno, KEYS_MAX);
            goto out;
        }
        if (keyset_add(ks, p, (size_t)(e - p)) != 0) {
            snprintf(err, errlen, "[auth] keys_file %s: out of memory", path);
            goto out;
        }
        if (mask) {
            *e = '\0';
            log_add_secret(p);
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "[auth] keys_file %s: read error", path);
        goto out;
    }
    if (mask && fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("the API keys file is readable by every user of this machine; chmod o-r it", "file", path);
    rc = 0;
out:
    if (line) {
        explicit_bzero(line, cap);
        free(line);
    }
    fclose(f);
    return rc;
}

static int load_keys(const settings *s, keyset *ks, int mask, char *err, size_t errlen)
{
    memset(ks, 0, sizeof *ks);
    if (load_list(s->auth_api_keys ? s->auth_api_keys : "", ks, mask, err, errlen) != 0 ||
        (s->auth_keys_file && *s->auth_keys_file && load_file(s->auth_keys_file, ks, mask, err, errlen) != 0)) {
        free(ks->d);
        memset(ks, 0, sizeof *ks);
        return -1;
    }
    return 0;
}

static int configured(const settings *s)
{
    return (s->auth_api_keys && strspn(s->auth_api_keys, " \t") < strlen(s->auth_api_keys)) ||
           (s->auth_keys_file && *s->auth_keys_file);
}

int auth_check_settings(const settings *s, char *err, size_t errlen)
{
    keyset ks;
    if (load_keys(s, &ks, 0, err, errlen) != 0) return -1;
    free(ks.d);
    return 0;
}

int auth_load(const settings *s, char *err, size_t errlen)
{
    keyset ks, old;
    if (load_keys(s, &ks, 1, err, errlen) != 0) return -1;
    pthread_mutex_lock(&g_lock);
    old = g_keys;
    g_keys = ks;
    g_enabled = configured(s);
    g_max_ttl_ms = s->client_secret_max_ttl_ms > 0 ? s->client_secret_max_ttl_ms : 7200000;
    g_max_secrets = s->max_client_secrets > 0 ? (size_t)s->max_client_secrets : 1000;
    pthread_mutex_unlock(&g_lock);
    free(old.d);
    if (g_enabled && ks.n == 0)
        log_warn("auth is on but no API key is configured: every /v1/realtime request is refused",
                 "keys_file", s->auth_keys_file);
    return 0;
}

int auth_enabled(void)
{
    pthread_mutex_lock(&g_lock);
    int on = g_enabled;
    pthread_mutex_unlock(&g_lock);
    return on;
}

long long auth_max_ttl_s(void)
{
    pthread_mutex_lock(&g_lock);
    long long s = g_max_ttl_ms / 1000;
    pthread_mutex_unlock(&g_lock);
    return s > 0 ? s : 1;
}

/* ------------------------------------------------------------ credentials */

int auth_credential(const char *authorization, const char *subprotocols, char *out, size_t len)
{
    if (len == 0) return 0;
    out[0] = '\0';
    if (authorization) {
        const char *p = authorization;
        while (*p == ' ' || *p == '\t') p++;
        if (strncasecmp(p, "Bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
            p += 6;
            while (*p == ' ' || *p == '\t') p++;
            size_t n = strlen(p);
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
            if (n >= len) n = len - 1;
            memcpy(out, p, n);
            out[n] = '\0';
        }
        return 1; /* another scheme: a credential that matches nothing */
    }
    for (const char *p = subprotocols; p && *p;) {
        const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p);
        static const char pre[] = "openai-insecure-api-key.";
        while (p < e && (*p == ' ' || *p == '\t')) p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - p) >= sizeof pre - 1 && strncasecmp(p, pre, sizeof pre - 1) == 0) {
            size_t n = (size_t)(e - p) - (sizeof pre - 1);
            if (n >= len) n = len - 1;
            memcpy(out, p + sizeof pre - 1, n);
            out[n] = '\0';
            return 1;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* Whether d is one of the keys: every digest is compared, in constant time
 * each. Caller holds g_lock. */
static int key_match(const digest d)
{
    int match = 0;
    for (size_t i = 0; i < g_keys.n; i++) match |= CRYPTO_memcmp(g_keys.d[i], d, sizeof(digest)) == 0;
    return match;
}

auth_result auth_check_key(const char *cred)
{
    digest d;
    int match;
    if (cred == NULL) return AUTH_MISSING;
    if (*cred == '\0' || sha256(cred, strlen(cred), d) != 0) return AUTH_INVALID;
    pthread_mutex_lock(&g_lock);
    match = key_match(d);
    pthread_mutex_unlock(&g_lock);
    return match ? AUTH_OK : AUTH_INVALID;
}

/* ------------------------------------------------------------ secrets */

static size_t bucket_of(const digest d) { return ((size_t)d[0] << 8 | d[1]) % SECRET_BUCKETS; }

static void secret_free(secret *s)
{
    free(s->session);
    free(s);
}

/* Drop what is past its grace period; with `hard`, also every used or
 * expired entry. Recounts g_live. Caller holds g_lock. */
static void sweep(uint64_t now, int hard)
{
    size_t live = 0;
    for (size_t b = 0; b < SECRET_BUCKETS; b++) {
        secret **pp = &g_sec[b];
        while (*pp) {
            secret *s = *pp;
            int expired = now >= s->expires;
            if (now >= s->expires + SECRET_GRACE_NS || (hard && (s->used || expired))) {
                *pp = s->next;
                secret_free(s);
                g_nsec--;
                continue;
            }
            if (!s->used && !expired) live++;
            pp = &s->next;
        }
    }
    g_live = live;
    g_last_sweep = now;
}

int auth_mint(long long ttl_s, const char *session, char *value, size_t len, long long *expires_at)
{
    unsigned char raw[SECRET_RAW];
    struct timespec rt;
    uint64_t now = mono_ns();
    secret *s;
    int rc = 0;

    if (len < AUTH_SECRET_LEN + 1 || ttl_s <= 0) return -2;
    if (RAND_bytes(raw, sizeof raw) != 1) return -2;
    memcpy(value, "ek_", 3);
    for (size_t i = 0; i < sizeof raw; i++) snprintf(value + 3 + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof raw);
    if ((s = calloc(1, sizeof *s)) == NULL) return -2;
    if (sha256(value, AUTH_SECRET_LEN, s->d) != 0 || (session && (s->session = strdup(session)) == NULL)) {
        secret_free(s);
        return -2;
    }
    s->expires = now + (uint64_t)ttl_s * 1000000000ull;

    pthread_mutex_lock(&g_lock);
    if (now - g_last_sweep >= SWEEP_EVERY_NS || g_live >= g_max_secrets) sweep(now, 0);
    if (g_nsec >= 2 * g_max_secrets) sweep(now, 1); /* bounded memory over a precise "reused" */
    if (g_live >= g_max_secrets) {
        rc = -1;
    } else {
        size_t b = bucket_of(s->d);
        s->next = g_sec[b];
        g_sec[b] = s;
        g_nsec++;
        g_live++;
        s = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    if (s) {
        secret_free(s);
        explicit_bzero(value, AUTH_SECRET_LEN);
        value[0] = '\0';
        return rc;
    }
    clock_gettime(CLOCK_REALTIME, &rt);
    *expires_at = (long long)rt.tv_sec + ttl_s;
    if (s_created) metrics_counter_inc(s_created);
    return 0;
}

auth_result auth_redeem(const char *cred, char **session)
{
    digest d;
    auth_result r = AUTH_INVALID;
    uint64_t now = mono_ns();

    *session = NULL;
    if (cred == NULL) return AUTH_MISSING;
    if (*cred == '\0' || sha256(cred, strlen(cred), d) != 0) return AUTH_INVALID;
    pthread_mutex_lock(&g_lock);
    if (key_match(d)) {
        r = AUTH_OK;
    } else {
        /* A digest of a random secret: looking it up by value tells an
         * attacker nothing about any secret. */
        for (secret *s = g_sec[bucket_of(d)]; s; s = s->next) {
            if (memcmp(s->d, d, sizeof d) != 0) continue;
            if (s->used) {
                r = AUTH_REUSED;
            } else if (now >= s->expires) {
                r = AUTH_EXPIRED;
            } else {
                r = AUTH_OK;
                s->used = 1;
                if (g_live > 0) g_live--;
                *session = s->session;
                s->session = NULL;
            }
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return r;
}

/* ------------------------------------------------------------ refusals */

void auth_refused(auth_result r, const char *route, const char *client)
{
    uint64_t sec = mono_ns() / 1000000000ull;
    unsigned skipped = 0;
    int say = 0;

    if (r >= AUTH_MISSING && r <= AUTH_REUSED && s_fail[r]) metrics_counter_inc(s_fail[r]);
    pthread_mutex_lock(&g_log_lock);
    if (sec != g_log_second) {
        g_log_second = sec;
        g_log_lines = 0;
    }
    if (g_log_lines < LOG_PER_SECOND) {
        g_log_lines++;
        say = 1;
        skipped = g_log_skipped;
        g_log_skipped = 0;
    } else {
        g_log_skipped++;
    }
    pthread_mutex_unlock(&g_log_lock);
    if (!say) return;
    static const char *const msg[] = {
        "", "request refused: no API key", "request refused: invalid API key",
        "request refused: expired client secret", "request refused: client secret already used"};
    char n[16];
    snprintf(n, sizeof n, "%u", skipped);
    log_kv(VX_LOG_WARN, r >= AUTH_MISSING && r <= AUTH_REUSED ? msg[r] : msg[AUTH_INVALID], "reason",
           auth_reason(r), "route", route, "client", client, skipped ? "refusals_not_logged" : NULL, n,
           (const char *)NULL);
}

void auth_free(void)
{
    pthread_mutex_lock(&g_lock);
    free(g_keys.d);
    memset(&g_keys, 0, sizeof g_keys);
    g_enabled = 0;
    for (size_t b = 0; b < SECRET_BUCKETS; b++) {
        while (g_sec[b]) {
            secret *s = g_sec[b];
            g_sec[b] = s->next;
            secret_free(s);
        }
    }
    g_nsec = g_live = 0;
    pthread_mutex_unlock(&g_lock);
    for (int r = AUTH_MISSING; r <= AUTH_REUSED; r++) {
        metrics_series_release(s_fail[r]);
        s_fail[r] = NULL;
    }
    metrics_series_release(s_created);
    s_created = NULL;
}
