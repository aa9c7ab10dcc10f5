/*
 * store_redis: the session store shared by all replicas, on Redis.
 *
 * Connections. A small pool of blocking hiredis contexts, each behind its own
 * mutex, so concurrent store calls do not queue on one socket. A call takes a
 * free connection that is connected or due for a reconnect; only when every
 * connection is busy does it wait for one. Every command runs under
 * command_timeout (SO_RCVTIMEO/SO_SNDTIMEO); dialling runs under
 * connect_timeout.
 *
 * Failure. Any I/O error or timeout kills that connection: hiredis 0.14 leaves
 * a context unusable after one (a late reply would be read as the answer to
 * the next command), so it is freed. A dead connection is redialled by the
 * first call that finds its backoff elapsed; before that, calls on it fail
 * fast with VX_EUNAVAIL (retryable) instead of waiting on a server that just
 * failed. The backoff doubles from reconnect_min to reconnect_max, with
 * jitter so replicas do not reconnect in lockstep, and resets on success.
 * One exception: a connection the server closed while it sat in the pool
 * (Redis `timeout`, a restart) is redialled at once, once, because the
 * command never reached Redis and all four commands used are idempotent.
 *
 * Startup. If Redis is unreachable when the instance starts, init still
 * SUCCEEDS: it logs one warning and the store reports down (ping fails, so
 * GET /ready answers 503) until a later call connects. The daemon comes up
 * and waits for Redis the way a Kubernetes pod waits in not-ready, instead of
 * crash-looping while Redis is being scheduled. Wrong credentials behave the
 * same way (ping returns VX_EAUTH), as the ACL may be provisioned later.
 *
 * Logging. State changes of the whole store are logged once each: connected,
 * lost (no connection left), reconnected. Per-call failures are not logged;
 * they reach the host through vx_error. The password is never logged and
 * never put in an error message.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <voxray/plugin.h>

#include "reply.h"

#define RD_VERSION "1.0.0"
#define RD_ERRLEN 160

enum { RD_NEVER = 0, RD_UP, RD_DOWN }; /* rd_store.state */

typedef struct rd_conn {
    pthread_mutex_t mu;
    redisContext *ctx;    /* NULL: dead, see next_try_ns */
    int alive;            /* ctx != NULL, readable without mu (atomic) */
    int up;               /* counted in rd_store.n_up */
    uint64_t next_try_ns; /* dead: earliest redial (read unlocked by health) */
    uint64_t backoff_ns;  /* delay before the redial after the next failure */
    int last_code;        /* VX_E* of the failure that killed it */
    char last_err[RD_ERRLEN];
    unsigned seed;        /* jitter */
} rd_conn;

typedef struct rd_store {
    const vx_host_api *api;
    vx_host *h;
    char addr[300]; /* as configured, for messages */
    char host[256];
    int port;
    char *username;
    char *password; /* NULL: no AUTH */
    int db;
    char *prefix;
    size_t prefix_len;
    uint64_t connect_ms, command_ms, rmin_ns, rmax_ns;
    int pool_size;
    rd_conn *conns;
    unsigned rr; /* round robin start, atomic */

    pthread_mutex_t state_mu; /* guards the fields below */
    int n_up;
    int state;
    uint64_t down_since_ns;
} rd_store;

static const vx_config_key rd_config[] = {
    {"address", VX_CFG_ADDRESS, "127.0.0.1:6379", "Redis server, host:port", 0, 0, NULL, 0},
    {"password", VX_CFG_STRING, NULL, "AUTH password (requirepass or the ACL user's)",
     0, 512, NULL, VX_CFG_SECRET},
    {"username", VX_CFG_STRING, NULL, "ACL user (Redis 6+); needs password", 0, 256, NULL, 0},
    {"db", VX_CFG_INT, "0", "database index selected after connecting", 0, 15, NULL, 0},
    {"prefix", VX_CFG_STRING, "voxray:", "prepended to every key", 0, 256, NULL, 0},
    {"connect_timeout", VX_CFG_DURATION, "500ms", "deadline for dialling Redis",
     1, 60000, NULL, 0},
    {"command_timeout", VX_CFG_DURATION, "500ms", "deadline for one command (and for ping)",
     1, 60000, NULL, 0},
    {"reconnect_min", VX_CFG_DURATION, "100ms", "first delay before redialling a dead connection",
     1, 600000, NULL, 0},
    {"reconnect_max", VX_CFG_DURATION, "2s", "cap of the doubling redial delay",
     1, 600000, NULL, 0},
    {"pool_size", VX_CFG_INT, "4", "connections, each serving one call at a time", 1, 64, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* ---------------------------------------------------------------- helpers */

/* Milliseconds of the duration key `key`, parsed by the host (ABI 1.6
 * config_duration_ms: "1.5s" is 1500); def when it has no value. */
static uint64_t rd_cfg_ms(const vx_host_api *host, vx_host *h, const char *key, uint64_t def) {
    int64_t ms;

    if (host->config_duration_ms(h, key, &ms) != VX_OK || ms < 0) return def;
    return (uint64_t)ms;
}

/* host:port or [v6]:port; an empty host means the local machine. Returns 0,
 * or -1 when the text is not an address (the host validated it, so only a
 * too long host name gets here). */
static int rd_parse_address(const char *s, char *host, size_t hostlen, int *port) {
    const char *h = s, *colon;
    size_t hl;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        if (!(colon = strrchr(s, ':'))) return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= hostlen) return -1;
    if (hl == 0) snprintf(host, hostlen, "127.0.0.1");
    else {
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

static struct timeval rd_tv(uint64_t ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* The code for a failed hiredis call, from the context error and the errno
 * saved right after it. SO_RCVTIMEO expiry surfaces as EAGAIN; a dial that
 * timed out as ETIMEDOUT. Everything else means the server is unreachable. */
static int rd_io_code(const redisContext *ctx, int saved_errno) {
    if (ctx && ctx->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
         strcmp(ctx->errstr, strerror(ETIMEDOUT)) == 0))
        return VX_ETIMEDOUT;
    if (ctx && ctx->err == REDIS_ERR_OOM) return VX_ENOMEM;
    if (ctx && ctx->err == REDIS_ERR_PROTOCOL) return VX_EPROTO;
    return VX_EUNAVAIL;
}

/* The reason for a failed hiredis call, into why. what names the step
 * ("connect", "AUTH"), ms its deadline; prefix puts what before the text of
 * other errors as well. */
static void rd_io_text(char *why, size_t len, const redisContext *ctx, int code,
                       const char *what, uint64_t ms, int prefix) {
    if (!ctx)
        snprintf(why, len, "%s: out of memory", what);
    else if (code == VX_ETIMEDOUT)
        /* hiredis says "Resource temporarily unavailable" for an expired
         * SO_RCVTIMEO, which reads like a different problem. */
        snprintf(why, len, "%s timed out after %llu ms", what, (unsigned long long)ms);
    else
        snprintf(why, len, "%s%s%s", prefix ? what : "", prefix ? ": " : "",
                 ctx->errstr[0] ? ctx->errstr : "I/O error");
}

/* A random delay in [3/4 backoff, backoff], never below reconnect_min. */
static uint64_t rd_jitter(rd_store *s, rd_conn *c) {
    uint64_t b = c->backoff_ns;
    uint64_t d = b - (uint64_t)((double)(b / 4) * ((double)rand_r(&c->seed) / RAND_MAX));
    return d < s->rmin_ns ? s->rmin_ns : d;
}

/* SIGPIPE. hiredis writes with write(2), so a write to a socket the server
 * has reset raises SIGPIPE, whose default action kills the whole daemon. A
 * plugin must not change process-wide signal dispositions, so the signal is
 * blocked in the calling thread for the duration of the call and, if the
 * call raised it, consumed before unblocking. */
typedef struct rd_sigpipe {
    sigset_t old;
    int was_pending;
} rd_sigpipe;

static void rd_sigpipe_block(rd_sigpipe *sp) {
    sigset_t set, pending;

    sigemptyset(&pending);
    sigpending(&pending);
    sp->was_pending = sigismember(&pending, SIGPIPE) == 1;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &sp->old);
}

static void rd_sigpipe_restore(rd_sigpipe *sp) {
    sigset_t set, pending;
    struct timespec zero = {0, 0};
    int saved = errno;

    sigemptyset(&pending);
    sigpending(&pending);
    if (!sp->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
    errno = saved;
}

/* ---------------------------------------------------------------- state */

/* A connection came up. Logs when the store goes from down to up. */
static void rd_state_up(rd_store *s, rd_conn *c) {
    uint64_t now = s->api->now_ns();

    c->up = 1;
    pthread_mutex_lock(&s->state_mu);
    s->n_up++;
    if (s->state == RD_NEVER)
        s->api->log(s->h, VX_LOG_INFO, "connected to redis %s (db %d, pool of %d)",
                    s->addr, s->db, s->pool_size);
    else if (s->state == RD_DOWN)
        s->api->log(s->h, VX_LOG_INFO, "reconnected to redis %s after %.1f s down",
                    s->addr, (double)(now - s->down_since_ns) / 1e9);
    s->state = RD_UP;
    pthread_mutex_unlock(&s->state_mu);
}

/* Kill a connection (caller holds c->mu): free its context, remember why,
 * schedule the redial. Logs when the last live connection is lost. */
static void rd_kill(rd_store *s, rd_conn *c, int code, const char *why) {
    uint64_t now = s->api->now_ns();

    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    __atomic_store_n(&c->alive, 0, __ATOMIC_RELAXED);
    c->last_code = code;
    snprintf(c->last_err, sizeof(c->last_err), "%s", why);
    __atomic_store_n(&c->next_try_ns, now + rd_jitter(s, c), __ATOMIC_RELAXED);
    c->backoff_ns = c->backoff_ns * 2 > s->rmax_ns ? s->rmax_ns : c->backoff_ns * 2;
    if (!c->up) return;
    c->up = 0;
    pthread_mutex_lock(&s->state_mu);
    if (--s->n_up == 0 && s->state == RD_UP) {
        s->state = RD_DOWN;
        s->down_since_ns = now;
        s->api->log(s->h, VX_LOG_WARN, "lost connection to redis %s: %s", s->addr, why);
    }
    pthread_mutex_unlock(&s->state_mu);
}

/* A dial was just refused, so the idle pooled connections are almost
 * certainly stale too: kill them now, so calls fail fast on their backoff
 * instead of each finding out by a failed command, and the store state
 * (health, the "lost" log) reflects the outage at once. Busy connections are
 * left to find out themselves. Called holding no connection lock. */
static void rd_kill_idle(rd_store *s, rd_conn *except, int code, const char *why) {
    for (int i = 0; i < s->pool_size; i++) {
        rd_conn *o = &s->conns[i];
        if (o == except || pthread_mutex_trylock(&o->mu) != 0) continue;
        if (o->ctx) rd_kill(s, o, code, why);
        pthread_mutex_unlock(&o->mu);
    }
}

/* Send one command on a fresh context during rd_dial. Returns the reply, or
 * NULL with code and why set. An error reply is returned as a reply. */
static redisReply *rd_dial_command(rd_store *s, redisContext *ctx, int *code, char *why,
                                   size_t len, const char *what, const char *fmt, ...) {
    va_list ap;
    redisReply *r;
    int saved;

    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    saved = errno;
    va_end(ap);
    if (!r) {
        *code = rd_io_code(ctx, saved);
        rd_io_text(why, len, ctx, *code, what, s->command_ms, 1);
    }
    return r;
}

/* Dial, authenticate, select the database and check that the server
 * answers. On success the backoff resets. On failure the connection is
 * killed (see rd_kill), err is filled and the VX_E* code returned: timeout ->
 * VX_ETIMEDOUT, unreachable -> VX_EUNAVAIL (both retryable), credentials
 * refused -> VX_EAUTH, a refused SELECT -> VX_EPROTO. The backoff is reset
 * only here, after a reply, so a server that accepts connections but never
 * answers (stopped, overloaded) is redialled ever more slowly. */
static int rd_dial(rd_store *s, rd_conn *c, vx_error *err) {
    redisContext *ctx = redisConnectWithTimeout(s->host, s->port, rd_tv(s->connect_ms));
    int saved = errno;
    redisReply *r = NULL;
    char why[RD_ERRLEN];
    int code = VX_OK;

    if (!ctx || ctx->err) {
        code = rd_io_code(ctx, saved);
        rd_io_text(why, sizeof(why), ctx, code, "connect", s->connect_ms, 0);
        goto fail;
    }
    if (redisSetTimeout(ctx, rd_tv(s->command_ms)) != REDIS_OK) {
        code = VX_EUNAVAIL;
        snprintf(why, sizeof(why), "%s", ctx->errstr);
        goto fail;
    }
    if (s->password) {
        r = s->username ? rd_dial_command(s, ctx, &code, why, sizeof(why), "AUTH",
                                          "AUTH %s %s", s->username, s->password)
                        : rd_dial_command(s, ctx, &code, why, sizeof(why), "AUTH",
                                          "AUTH %s", s->password);
        if (!r) goto fail;
        if ((code = rd_dial_reply(r, "AUTH", s->db, why, sizeof(why))) != VX_OK) goto fail;
        freeReplyObject(r);
    }
    if (s->db != 0) {
        r = rd_dial_command(s, ctx, &code, why, sizeof(why), "SELECT", "SELECT %d", s->db);
        if (!r) goto fail;
        if ((code = rd_dial_reply(r, "SELECT", s->db, why, sizeof(why))) != VX_OK) goto fail;
        freeReplyObject(r);
    }
    r = rd_dial_command(s, ctx, &code, why, sizeof(why), "PING", "PING");
    if (!r) goto fail;
    if ((code = rd_dial_reply(r, "PING", s->db, why, sizeof(why))) != VX_OK) goto fail;
    freeReplyObject(r);

    c->ctx = ctx;
    __atomic_store_n(&c->alive, 1, __ATOMIC_RELAXED);
    c->backoff_ns = s->rmin_ns;
    if (!c->up) rd_state_up(s, c);
    return VX_OK;

fail:
    if (r) freeReplyObject(r);
    if (ctx) redisFree(ctx);
    rd_kill(s, c, code, why);
    rd_seterr(err, code, code == VX_ETIMEDOUT || code == VX_EUNAVAIL, "redis %s: %s",
              s->addr, why);
    return code;
}

/* Take a connection, locked. Prefers a free one that is connected or due for
 * a redial. Failing that, waits for a busy one that is connected (the server
 * is up, the pool is just saturated); failing that, takes the one whose
 * backoff ends first, on which the call fails fast. Holds at most one
 * connection lock at a time. */
static rd_conn *rd_acquire(rd_store *s) {
    unsigned start = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
    uint64_t now = s->api->now_ns(), soonest = UINT64_MAX;
    rd_conn *backoff = NULL, *busy = NULL, *c;

    for (int i = 0; i < s->pool_size; i++) {
        c = &s->conns[(start + (unsigned)i) % (unsigned)s->pool_size];
        if (pthread_mutex_trylock(&c->mu) != 0) {
            if (!busy && __atomic_load_n(&c->alive, __ATOMIC_RELAXED)) busy = c;
            continue;
        }
        if (c->ctx || now >= c->next_try_ns) return c;
        if (c->next_try_ns < soonest) {
            soonest = c->next_try_ns;
            backoff = c;
        }
        pthread_mutex_unlock(&c->mu);
    }
    c = busy ? busy : backoff ? backoff : &s->conns[start % (unsigned)s->pool_size];
    pthread_mutex_lock(&c->mu);
    return c;
}

/* Run one command. Returns the reply (caller frees it with freeReplyObject)
 * or NULL with err filled: see the file comment for the failure model. Error
 * replies are turned into NULL too: VX_EAUTH for refused credentials,
 * VX_EUNAVAIL (retryable) for a server that is loading or failing over,
 * VX_EPROTO otherwise; the connection stays up for those. */
static redisReply *rd_command(rd_store *s, vx_error *err, const char *fmt, ...) {
    rd_conn *c = rd_acquire(s);
    redisReply *r = NULL;
    rd_sigpipe sp;
    int dialled = 0, refused = 0;

    rd_sigpipe_block(&sp);
    for (;;) {
        if (!c->ctx) {
            uint64_t now = s->api->now_ns();
            if (now < c->next_try_ns) {
                int code = c->last_code == VX_EAUTH || c->last_code == VX_EPROTO ? c->last_code
                                                                                  : VX_EUNAVAIL;
                rd_seterr(err, code, code == VX_EUNAVAIL,
                          "redis %s: down (%s), next reconnect in %llu ms", s->addr,
                          c->last_err,
                          (unsigned long long)((c->next_try_ns - now + 999999) / 1000000));
                goto out;
            }
            dialled = 1;
            if (rd_dial(s, c, err) != VX_OK) {
                refused = err->code == VX_EUNAVAIL;
                goto out;
            }
        }

        va_list ap;
        va_start(ap, fmt);
        r = redisvCommand(c->ctx, fmt, ap);
        int saved = errno;
        va_end(ap);
        if (r) break;

        /* A pooled connection the server closed before this call (idle
         * timeout, restart): the command never ran, so redial once now. */
        if (!dialled && (c->ctx->err == REDIS_ERR_EOF ||
                         (c->ctx->err == REDIS_ERR_IO && (saved == ECONNRESET || saved == EPIPE)))) {
            redisFree(c->ctx);
            c->ctx = NULL;
            __atomic_store_n(&c->alive, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&c->next_try_ns, 0, __ATOMIC_RELAXED);
            continue;
        }
        int code = rd_io_code(c->ctx, saved);
        char why[RD_ERRLEN];
        rd_io_text(why, sizeof(why), c->ctx, code, "command", s->command_ms, 0);
        rd_kill(s, c, code, why);
        rd_seterr(err, code, code == VX_ETIMEDOUT || code == VX_EUNAVAIL, "redis %s: %s",
                  s->addr, why);
        goto out;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        rd_reply(r, RD_PING, s->addr, err); /* the same for every command */
        freeReplyObject(r);
        r = NULL;
    }
out:
    rd_sigpipe_restore(&sp);
    char cause[RD_ERRLEN];
    if (refused) memcpy(cause, c->last_err, sizeof(cause));
    pthread_mutex_unlock(&c->mu);
    if (refused) rd_kill_idle(s, c, VX_EUNAVAIL, cause);
    return r;
}

/* ---------------------------------------------------------------- vtable */

static int rd_get(void *inst, const char *key, void **val, size_t *len, vx_error *err) {
    rd_store *s = inst;
    redisReply *r;
    int rc;

    *val = NULL;
    *len = 0;
    r = rd_command(s, err, "GET %b%b", s->prefix, s->prefix_len, key, strlen(key));
    if (!r) return err->code;
    if ((rc = rd_reply(r, RD_GET, s->addr, err)) != VX_OK) {
        freeReplyObject(r);
        return rc;
    }
    /* One spare byte so an empty value still gets a non-NULL buffer. */
    void *copy = s->api->alloc(r->len ? r->len : 1);
    if (!copy) {
        rd_seterr(err, VX_ENOMEM, 1, "redis %s: out of memory copying %zu bytes", s->addr,
                  (size_t)r->len);
        freeReplyObject(r);
        return VX_ENOMEM;
    }
    memcpy(copy, r->str, r->len);
    *val = copy;
    *len = r->len;
    freeReplyObject(r);
    return VX_OK;
}

static int rd_put(void *inst, const char *key, const void *val, size_t len, uint32_t ttl_s,
                  vx_error *err) {
    rd_store *s = inst;
    redisReply *r;
    int rc;

    if (ttl_s)
        r = rd_command(s, err, "SET %b%b %b EX %u", s->prefix, s->prefix_len, key,
                       strlen(key), val, len, (unsigned)ttl_s);
    else
        r = rd_command(s, err, "SET %b%b %b", s->prefix, s->prefix_len, key, strlen(key),
                       val, len);
    if (!r) return err->code;
    rc = rd_reply(r, RD_SET, s->addr, err);
    freeReplyObject(r);
    return rc;
}

static int rd_del(void *inst, const char *key, vx_error *err) {
    rd_store *s = inst;
    redisReply *r = rd_command(s, err, "DEL %b%b", s->prefix, s->prefix_len, key, strlen(key));
    int rc;

    if (!r) return err->code;
    rc = rd_reply(r, RD_DEL, s->addr, err);
    freeReplyObject(r);
    return rc;
}

/* Bounded by command_timeout, plus connect_timeout when it has to redial,
 * plus the wait for a connection when all pool_size of them are busy. */
static int rd_ping(void *inst, vx_error *err) {
    rd_store *s = inst;
    redisReply *r = rd_command(s, err, "PING");
    int rc;

    if (!r) return err->code;
    rc = rd_reply(r, RD_PING, s->addr, err);
    freeReplyObject(r);
    return rc;
}

static const vx_store_vtable rd_vtable = {
    .struct_size = sizeof(vx_store_vtable),
    .get = rd_get,
    .put = rd_put,
    .del = rd_del,
    .ping = rd_ping,
};

/* ---------------------------------------------------------------- lifecycle */

static void rd_free(rd_store *s) {
    if (!s) return;
    if (s->conns) {
        for (int i = 0; i < s->pool_size; i++) {
            if (s->conns[i].ctx) redisFree(s->conns[i].ctx);
            pthread_mutex_destroy(&s->conns[i].mu);
        }
        free(s->conns);
    }
    pthread_mutex_destroy(&s->state_mu);
    if (s->password) {
        /* Do not leave the secret in freed heap memory. */
        volatile char *p = s->password;
        while (*p) *p++ = '\0';
        free(s->password);
    }
    free(s->username);
    free(s->prefix);
    free(s);
}

static char *rd_strdup_or_null(const char *v) {
    return v && *v ? strdup(v) : NULL;
}

static int rd_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    rd_store *s = calloc(1, sizeof(*s));
    const char *v;
    int code = VX_ENOMEM;

    if (!s) {
        rd_seterr(err, VX_ENOMEM, 0, "store_redis: out of memory");
        return VX_ENOMEM;
    }
    s->api = host;
    s->h = h;
    pthread_mutex_init(&s->state_mu, NULL);

    v = host->config_get(h, "address");
    snprintf(s->addr, sizeof(s->addr), "%s", v ? v : "127.0.0.1:6379");
    if (rd_parse_address(s->addr, s->host, sizeof(s->host), &s->port) != 0) {
        code = VX_EINVAL;
        rd_seterr(err, code, 0, "store_redis: address '%s' is not host:port", s->addr);
        goto fail;
    }
    v = host->config_get(h, "db");
    s->db = v ? atoi(v) : 0;
    v = host->config_get(h, "pool_size");
    s->pool_size = v ? atoi(v) : 4;
    if (s->pool_size < 1) s->pool_size = 1;
    s->connect_ms = rd_cfg_ms(host, h, "connect_timeout", 500);
    s->command_ms = rd_cfg_ms(host, h, "command_timeout", 500);
    s->rmin_ns = rd_cfg_ms(host, h, "reconnect_min", 100) * 1000000ull;
    s->rmax_ns = rd_cfg_ms(host, h, "reconnect_max", 2000) * 1000000ull;
    if (s->rmax_ns < s->rmin_ns) {
        code = VX_EINVAL;
        rd_seterr(err, code, 0, "store_redis: reconnect_max must not be below reconnect_min");
        goto fail;
    }
    v = host->config_get(h, "prefix");
    if (!(s->prefix = strdup(v ? v : "voxray:"))) goto oom;
    s->prefix_len = strlen(s->prefix);
    v = host->config_get(h, "password");
    if (v && *v && !(s->password = strdup(v))) goto oom;
    v = host->config_get(h, "username");
    if (v && *v && !(s->username = rd_strdup_or_null(v))) goto oom;
    if (s->username && !s->password) {
        code = VX_EINVAL;
        rd_seterr(err, code, 0, "store_redis: username '%s' is set but password is not",
                  s->username);
        goto fail;
    }

    if (!(s->conns = calloc((size_t)s->pool_size, sizeof(*s->conns)))) goto oom;
    uint64_t now = host->now_ns();
    for (int i = 0; i < s->pool_size; i++) {
        pthread_mutex_init(&s->conns[i].mu, NULL);
        s->conns[i].backoff_ns = s->rmin_ns;
        s->conns[i].seed = (unsigned)(now >> 10) ^ (unsigned)(i * 2654435761u);
    }

    /* Dial the pool now so the first calls do not pay for it. Stop at the
     * first failure: the others would fail the same way, each costing up to
     * connect_timeout, and startup must not wait on a dead Redis. */
    for (int i = 0; i < s->pool_size; i++) {
        rd_conn *c = &s->conns[i];
        vx_error e = {0};
        if (rd_dial(s, c, &e) == VX_OK) continue;
        host->log(h, VX_LOG_WARN,
                  "redis %s not available at startup (%s); starting anyway, the store "
                  "reports down (not ready) until it connects", s->addr, c->last_err);
        for (int j = i + 1; j < s->pool_size; j++) {
            rd_conn *o = &s->conns[j];
            o->last_code = c->last_code;
            memcpy(o->last_err, c->last_err, sizeof(o->last_err));
            o->next_try_ns = c->next_try_ns;
            o->backoff_ns = c->backoff_ns;
        }
        break;
    }
    *inst = s;
    return VX_OK;

oom:
    code = VX_ENOMEM;
    rd_seterr(err, code, 0, "store_redis: out of memory");
fail:
    rd_free(s);
    return code;
}

static void rd_shutdown(void *inst) {
    rd_free(inst);
}

/* Reports what the pool last saw; it does not talk to Redis. A connection
 * the server dropped while idle still counts as connected until a call
 * notices, which ping (and so /ready) does. */
static int rd_health(void *inst, char *buf, size_t len) {
    rd_store *s = inst;
    int n_up;
    uint64_t now = s->api->now_ns(), next = UINT64_MAX;

    pthread_mutex_lock(&s->state_mu);
    n_up = s->n_up;
    pthread_mutex_unlock(&s->state_mu);
    if (n_up > 0) {
        snprintf(buf, len, "connected to %s (%d/%d connections)", s->addr, n_up,
                 s->pool_size);
        return VX_OK;
    }
    rd_conn *soonest = &s->conns[0];
    for (int i = 0; i < s->pool_size; i++) {
        uint64_t t = __atomic_load_n(&s->conns[i].next_try_ns, __ATOMIC_RELAXED);
        if (t < next) {
            next = t;
            soonest = &s->conns[i];
        }
    }
    /* last_err is written under the connection's lock; a torn read here can
     * only garble this status line, never overrun it (it stays terminated). */
    char why[RD_ERRLEN];
    memcpy(why, soonest->last_err, sizeof(why));
    why[sizeof(why) - 1] = '\0';
    if (next > now)
        snprintf(buf, len, "down: %s; reconnect in %llu ms", why[0] ? why : "not connected",
                 (unsigned long long)((next - now + 999999) / 1000000));
    else
        snprintf(buf, len, "down: %s; reconnecting", why[0] ? why : "not connected");
    return VX_EUNAVAIL;
}

static const vx_plugin_info rd_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STORE,
    .name = "store_redis",
    .version = RD_VERSION,
    .description = "session store on Redis, shared by all replicas",
    .caps = VX_CAP_NETWORK,
    .config = rd_config,
    .init = rd_init,
    .shutdown = rd_shutdown,
    .store = &rd_vtable,
    .health = rd_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* log, now_ns, alloc and config_get exist since 1.0; the typed getter
     * config_duration_ms since 1.6. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_duration_ms) ||
        !host->config_duration_ms) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "store_redis needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &rd_info;
}
