/*
 * Session-store plugins, tested through their built .so files exactly as the
 * host loads them: dlopen, vx_plugin_entry, init with a validated config,
 * then the store vtable. The Redis tests run against real redis-server
 * processes on free loopback ports, started and killed by PID here.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#ifndef STORE_MEMORY_SO
#error "STORE_MEMORY_SO must name the built store_memory.so"
#endif
#ifndef STORE_REDIS_SO
#error "STORE_REDIS_SO must name the built store_redis.so"
#endif

static uint64_t now_ms(void) {
    return ph_now_ns() / 1000000;
}

/* ---------------------------------------------------------------- plugins */

static void *mem_dl, *rd_dl;
static const vx_plugin_info *mem_plugin, *rd_plugin;

/* One store instance under test; torn down by the test's teardown even when
 * an assertion failed half way. */
typedef struct fixture {
    vx_host host;
    const vx_plugin_info *plugin;
    void *inst;
    pid_t servers[4]; /* redis servers this test started itself */
} fixture;

/* Build the config the way the host does (every schema key, the given value
 * or the default) and init. Pairs of key, value; NULL ends the list. */
static int fx_open(fixture *f, const vx_plugin_info *p, vx_error *err, ...) {
    va_list ap;
    int rc;

    f->plugin = p;
    va_start(ap, err);
    rc = ph_host_vconfig(&f->host, p, p->name, ap);
    va_end(ap);
    assert_int_equal(rc, 0); /* every key is one the plugin declares */
    return p->init(&ph_api, &f->host, &f->host.cfg, &f->inst, err);
}

static int fx_setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    *state = f;
    return 0;
}

static void redis_stop(pid_t pid);

static int fx_teardown(void **state) {
    fixture *f = *state;

    if (f->inst) f->plugin->shutdown(f->inst);
    for (size_t i = 0; i < sizeof(f->servers) / sizeof(f->servers[0]); i++)
        if (f->servers[i] > 0) redis_stop(f->servers[i]);
    if (f->plugin) ph_host_release(&f->host);
    free(f);
    return 0;
}

static int store_put(fixture *f, const char *key, const char *val, uint32_t ttl) {
    vx_error err = {0};
    return f->plugin->store->put(f->inst, key, val, strlen(val), ttl, &err);
}

/* VX_OK and the value as a string, or the error code. */
static int store_get_str(fixture *f, const char *key, char *out, size_t outlen) {
    vx_error err = {0};
    void *val = NULL;
    size_t len = 0;
    int rc = f->plugin->store->get(f->inst, key, &val, &len, &err);

    out[0] = '\0';
    if (rc != VX_OK) {
        assert_int_equal(err.code, rc);
        return rc;
    }
    assert_non_null(val);
    snprintf(out, outlen, "%.*s", (int)len, (const char *)val);
    ph_api.free(val);
    return rc;
}

/* ---------------------------------------------------------------- redis servers */

/* Every server a test starts, so a failing or crashing test cannot leave one
 * behind: killed by PID in teardown, at exit, and by the kernel if this
 * process dies (PR_SET_PDEATHSIG). */
static pid_t children[16];

static void children_kill_all(void) {
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
        ph_child_stop(children[i], SIGKILL);
        children[i] = 0;
    }
}

/* A reply from a direct connection to the server, or NULL. */
static redisReply *direct(int port, const char *fmt, ...) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = NULL;
    va_list ap;

    if (!c || c->err) goto done;
    redisSetTimeout(c, tv);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
done:
    if (c) redisFree(c);
    return r;
}

/* True once the server answers (NOAUTH counts: it is up). */
static int redis_wait_up(int port, unsigned timeout_ms) {
    uint64_t end = now_ms() + timeout_ms;

    do {
        redisReply *r = direct(port, "PING");
        if (r) {
            freeReplyObject(r);
            return 1;
        }
        ph_sleep_ms(20);
    } while (now_ms() < end);
    return 0;
}

/* Start redis-server on 127.0.0.1:port (requirepass when pass is not NULL)
 * and wait until it answers. Returns its PID, or -1. */
static pid_t redis_start(int port, const char *pass) {
    const char *bin = getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : "redis-server";
    char portstr[16];
    char *argv[] = {(char *)bin, "--port", portstr, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp", NULL};
    char *with_pass[] = {(char *)bin, "--port", portstr, "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp",
                         "--requirepass", (char *)pass, NULL};
    size_t slot;
    pid_t pid;

    for (slot = 0; slot < sizeof(children) / sizeof(children[0]) && children[slot] > 0; slot++)
        ;
    if (slot == sizeof(children) / sizeof(children[0])) return -1;
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid = ph_child_start(pass ? with_pass : argv, -2, SIGKILL);
    if (pid < 0) return -1;
    children[slot] = pid;
    if (!redis_wait_up(port, 5000)) {
        fprintf(stderr, "redis-server on port %d did not come up\n", port);
        redis_stop(pid);
        return -1;
    }
    return pid;
}

static void redis_stop(pid_t pid) {
    if (pid <= 0) return;
    for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
        if (children[i] == pid) {
            ph_child_stop(pid, SIGKILL);
            children[i] = 0;
        }
    }
}

/* The server shared by the tests that do not stop it: started by the first
 * test that needs it, stopped by the group teardown. */
static int shared_port;
static pid_t shared_pid;

static int shared_setup(void **state) {
    if (shared_pid <= 0) {
        if (shared_port <= 0) shared_port = ph_free_port();
        if (shared_port <= 0) return -1;
        shared_pid = redis_start(shared_port, NULL);
        if (shared_pid <= 0) return -1;
    }
    return fx_setup(state);
}

static int group_teardown(void **state) {
    redis_stop(shared_pid);
    shared_pid = 0;
    return 0;
}

static const char *addr_of(int port, char *buf, size_t len) {
    snprintf(buf, len, "127.0.0.1:%d", port);
    return buf;
}

/* Open store_redis on the shared server with a per-test key prefix. */
static void open_shared(fixture *f, const char *prefix) {
    char addr[32];
    vx_error err = {0};

    assert_int_equal(fx_open(f, rd_plugin, &err, "address",
                             addr_of(shared_port, addr, sizeof(addr)), "prefix", prefix, NULL),
                     VX_OK);
}

/* Ping until it succeeds or timeout_ms passes; returns the last code. */
static int ping_until_ok(fixture *f, unsigned timeout_ms) {
    uint64_t end = now_ms() + timeout_ms;
    int rc;

    for (;;) {
        vx_error err = {0};
        rc = f->plugin->store->ping(f->inst, &err);
        if (rc == VX_OK || now_ms() >= end) return rc;
        ph_sleep_ms(25);
    }
}

/* ================================================================ descriptors */

static void check_descriptor(const vx_plugin_info *p, const char *name) {
    assert_non_null(p);
    assert_int_equal(p->magic, VX_PLUGIN_MAGIC);
    assert_int_equal(p->struct_size, sizeof(vx_plugin_info));
    assert_int_equal(p->abi_major, VX_ABI_MAJOR);
    assert_int_equal(p->abi_minor, VX_ABI_MINOR);
    assert_int_equal(p->kinds, VX_KIND_STORE);
    assert_string_equal(p->name, name);
    assert_non_null(p->version);
    assert_non_null(p->description);
    assert_non_null(p->init);
    assert_non_null(p->shutdown);
    assert_non_null(p->health);
    assert_non_null(p->store);
    assert_int_equal(p->store->struct_size, sizeof(vx_store_vtable));
    assert_non_null(p->store->get);
    assert_non_null(p->store->put);
    assert_non_null(p->store->del);
    assert_non_null(p->store->ping);
    assert_null(p->stt);
    assert_null(p->llm);
    assert_null(p->tts);
    assert_null(p->sink);
}

static void test_descriptors_follow_the_abi(void **state) {
    check_descriptor(mem_plugin, "store_memory");
    check_descriptor(rd_plugin, "store_redis");
}

static void test_password_is_declared_secret(void **state) {
    const vx_config_key *k;
    for (k = rd_plugin->config; k->key && strcmp(k->key, "password") != 0; k++)
        ;
    assert_non_null(k->key);
    assert_true(k->flags & VX_CFG_SECRET);
}

/* ================================================================ memory */

static void open_memory(fixture *f, const char *max_keys) {
    vx_error err = {0};
    if (max_keys)
        assert_int_equal(fx_open(f, mem_plugin, &err, "max_keys", max_keys, NULL), VX_OK);
    else
        assert_int_equal(fx_open(f, mem_plugin, &err, NULL), VX_OK);
}

static void test_memory_put_get_del_round_trip(void **state) {
    fixture *f = *state;
    char buf[64];
    vx_error err = {0};

    open_memory(f, NULL);
    assert_int_equal(store_put(f, "sess:1", "hello", 60), VX_OK);
    assert_int_equal(store_get_str(f, "sess:1", buf, sizeof(buf)), VX_OK);
    assert_string_equal(buf, "hello");
    assert_int_equal(store_put(f, "sess:1", "replaced", 0), VX_OK);
    assert_int_equal(store_get_str(f, "sess:1", buf, sizeof(buf)), VX_OK);
    assert_string_equal(buf, "replaced");
    assert_int_equal(f->plugin->store->del(f->inst, "sess:1", &err), VX_OK);
    assert_int_equal(store_get_str(f, "sess:1", buf, sizeof(buf)), VX_ENOTFOUND);
    /* Deleting a missing key is not an error. */
    assert_int_equal(f->plugin->store->del(f->inst, "sess:1", &err), VX_OK);
}

static void test_memory_binary_values_keep_nul_bytes(void **state) {
    fixture *f = *state;
    static const unsigned char bin[] = {0, 1, 0, 0xff, 'a', 0, 0x80, 0};
    vx_error err = {0};
    void *val = NULL;
    size_t len = 0;

    open_memory(f, NULL);
    assert_int_equal(f->plugin->store->put(f->inst, "b", bin, sizeof(bin), 0, &err), VX_OK);
    assert_int_equal(f->plugin->store->get(f->inst, "b", &val, &len, &err), VX_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(val, bin, sizeof(bin));
    ph_api.free(val);
    /* An empty value is a value, not a missing key. */
    assert_int_equal(f->plugin->store->put(f->inst, "e", "", 0, 0, &err), VX_OK);
    assert_int_equal(f->plugin->store->get(f->inst, "e", &val, &len, &err), VX_OK);
    assert_int_equal(len, 0);
    assert_non_null(val);
    ph_api.free(val);
}

static void test_memory_entry_expires_after_ttl(void **state) {
    fixture *f = *state;
    char buf[16];

    open_memory(f, NULL);
    assert_int_equal(store_put(f, "t", "v", 1), VX_OK);
    assert_int_equal(store_get_str(f, "t", buf, sizeof(buf)), VX_OK);
    ph_sleep_ms(1100);
    assert_int_equal(store_get_str(f, "t", buf, sizeof(buf)), VX_ENOTFOUND);
}

static void test_memory_get_missing_key_is_enotfound(void **state) {
    fixture *f = *state;
    vx_error err = {0};
    void *val = (void *)&err;
    size_t len = 7;

    open_memory(f, NULL);
    assert_int_equal(f->plugin->store->get(f->inst, "nope", &val, &len, &err), VX_ENOTFOUND);
    assert_int_equal(err.code, VX_ENOTFOUND);
    assert_null(val);
    assert_int_equal(len, 0);
}

/* A full store evicts the keys written longest ago, never refuses a new
 * session; rewriting a key makes it the newest. */
static void test_memory_max_keys_evicts_the_oldest_written(void **state) {
    fixture *f = *state;
    char buf[16], health[160];
    vx_error err = {0};

    open_memory(f, "3");
    assert_int_equal(store_put(f, "a", "1", 0), VX_OK);
    assert_int_equal(store_put(f, "b", "1", 0), VX_OK);
    assert_int_equal(store_put(f, "c", "1", 0), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 0);
    assert_int_equal(store_put(f, "d", "1", 0), VX_OK);
    assert_int_equal(store_get_str(f, "a", buf, sizeof(buf)), VX_ENOTFOUND);
    assert_int_equal(store_get_str(f, "b", buf, sizeof(buf)), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 1);
    assert_true(ph_metric_value(&f->host, "store_memory_keys") == 3);
    assert_true(ph_logged(&f->host, "evicted 1 sessions written longest ago"));
    /* Rewriting b (reading does not count) makes c the oldest. */
    assert_int_equal(store_put(f, "b", "2", 0), VX_OK);
    assert_int_equal(store_put(f, "e", "1", 0), VX_OK);
    assert_int_equal(store_get_str(f, "c", buf, sizeof(buf)), VX_ENOTFOUND);
    assert_int_equal(store_get_str(f, "b", buf, sizeof(buf)), VX_OK);
    assert_string_equal(buf, "2");
    assert_int_equal(store_get_str(f, "d", buf, sizeof(buf)), VX_OK);
    assert_int_equal(store_get_str(f, "e", buf, sizeof(buf)), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 2);
    /* Full is not unhealthy: it makes room. */
    assert_int_equal(f->plugin->health(f->inst, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "3/3 keys"));
    assert_non_null(strstr(health, "2 evicted"));
    assert_int_equal(f->plugin->store->del(f->inst, "b", &err), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_keys") == 2);
}

/* max_memory_mb bounds keys and values together; one value over the whole
 * budget is refused and changes nothing. */
static void test_memory_max_memory_evicts_by_bytes(void **state) {
    fixture *f = *state;
    vx_error err = {0};
    char key[16], buf[16];
    size_t big = 300u << 10;
    char *v = malloc(2u << 20);

    assert_non_null(v);
    memset(v, 'x', 2u << 20);
    assert_int_equal(fx_open(f, mem_plugin, &err, "max_memory_mb", "1", NULL), VX_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(f->plugin->store->put(f->inst, key, v, big, 60, &err), VX_OK);
    }
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 0);
    double before = ph_metric_value(&f->host, "store_memory_bytes");
    assert_true(before > 3.0 * (double)big && before < 3.0 * (double)big + 1024);
    /* A fourth does not fit in 1 MiB: k0 goes. */
    assert_int_equal(f->plugin->store->put(f->inst, "k3", v, big, 60, &err), VX_OK);
    assert_int_equal(store_get_str(f, "k0", buf, sizeof(buf)), VX_ENOTFOUND);
    assert_int_equal(store_get_str(f, "k1", buf, sizeof(buf)), VX_OK);
    assert_int_equal(store_get_str(f, "k3", buf, sizeof(buf)), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 1);
    assert_true(ph_metric_value(&f->host, "store_memory_bytes") <= 1048576.0);
    /* Growing k1 in place to 900 KiB evicts the others, never k1 itself. */
    assert_int_equal(f->plugin->store->put(f->inst, "k1", v, 900u << 10, 60, &err), VX_OK);
    assert_int_equal(store_get_str(f, "k2", buf, sizeof(buf)), VX_ENOTFOUND);
    assert_int_equal(store_get_str(f, "k3", buf, sizeof(buf)), VX_ENOTFOUND);
    assert_int_equal(store_get_str(f, "k1", buf, sizeof(buf)), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_keys") == 1);
    /* Larger than the whole budget: refused, k1 kept. */
    assert_int_equal(f->plugin->store->put(f->inst, "huge", v, 2u << 20, 60, &err), VX_EINVAL);
    assert_int_equal(err.code, VX_EINVAL);
    assert_non_null(strstr(err.msg, "max_memory_mb=1"));
    assert_int_equal(store_get_str(f, "k1", buf, sizeof(buf)), VX_OK);
    assert_int_equal(store_get_str(f, "huge", buf, sizeof(buf)), VX_ENOTFOUND);
    free(v);
}

/* Expired keys make room before live ones and are not counted as evicted. */
static void test_memory_expired_keys_go_before_live_ones(void **state) {
    fixture *f = *state;
    char buf[16];

    open_memory(f, "2");
    assert_int_equal(store_put(f, "live", "x", 0), VX_OK);
    assert_int_equal(store_put(f, "short", "x", 1), VX_OK);
    ph_sleep_ms(1100);
    assert_int_equal(store_put(f, "new", "y", 0), VX_OK);
    assert_int_equal(store_get_str(f, "live", buf, sizeof(buf)), VX_OK);
    assert_int_equal(store_get_str(f, "new", buf, sizeof(buf)), VX_OK);
    assert_true(ph_metric_value(&f->host, "store_memory_evicted_keys_total") == 0);
}

static void test_memory_expired_keys_do_not_count_against_max_keys(void **state) {
    fixture *f = *state;
    char buf[16];

    open_memory(f, "2");
    assert_int_equal(store_put(f, "old1", "x", 1), VX_OK);
    assert_int_equal(store_put(f, "old2", "x", 1), VX_OK);
    ph_sleep_ms(1100);
    /* Never read again: only the sweep can reclaim them. */
    assert_int_equal(store_put(f, "new1", "y", 0), VX_OK);
    assert_int_equal(store_put(f, "new2", "y", 0), VX_OK);
    assert_int_equal(store_get_str(f, "new1", buf, sizeof(buf)), VX_OK);
}

static void test_memory_keeps_every_key_across_table_growth(void **state) {
    fixture *f = *state;
    char key[32], val[32], buf[32];

    open_memory(f, NULL);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i * 7);
        assert_int_equal(store_put(f, key, val, 3600), VX_OK);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i * 7);
        assert_int_equal(store_get_str(f, key, buf, sizeof(buf)), VX_OK);
        assert_string_equal(buf, val);
    }
}

/* Worker for the concurrency tests: puts and reads back its own keys and
 * reads a shared one that the others overwrite. Counts mismatches; cmocka
 * assertions must stay on the main thread. */
typedef struct worker {
    fixture *f;
    int id, iterations;
    int failures;
    char first_error[300];
} worker;

static void *worker_run(void *arg) {
    worker *w = arg;
    const vx_store_vtable *st = w->f->plugin->store;

    for (int i = 0; i < w->iterations; i++) {
        char key[32], val[48];
        vx_error err = {0};
        void *got = NULL;
        size_t len = 0;
        int rc;

        snprintf(key, sizeof(key), "w%d:%d", w->id, i % 50);
        snprintf(val, sizeof(val), "worker %d iteration %d", w->id, i);
        rc = st->put(w->f->inst, key, val, strlen(val), 60, &err);
        if (rc == VX_OK) rc = st->get(w->f->inst, key, &got, &len, &err);
        if (rc == VX_OK && (len != strlen(val) || memcmp(got, val, len) != 0)) rc = VX_EINTERNAL;
        ph_api.free(got);
        got = NULL;
        if (rc == VX_OK) rc = st->put(w->f->inst, "shared", val, strlen(val), 60, &err);
        if (rc == VX_OK) {
            rc = st->get(w->f->inst, "shared", &got, &len, &err);
            /* Any worker's value, but always a whole one. */
            if (rc == VX_OK && (len < 20 || memcmp(got, "worker ", 7) != 0)) rc = VX_EINTERNAL;
            ph_api.free(got);
        }
        if (rc == VX_OK && i % 10 == 0) rc = st->del(w->f->inst, key, &err);
        if (rc != VX_OK && w->failures++ == 0)
            snprintf(w->first_error, sizeof(w->first_error), "rc %d: %s", rc, err.msg);
    }
    return NULL;
}

static void run_workers(fixture *f, int iterations) {
    pthread_t t[4];
    worker w[4];

    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.f = f, .id = i, .iterations = iterations};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        if (w[i].failures) fprintf(stderr, "worker %d: %s\n", i, w[i].first_error);
        assert_int_equal(w[i].failures, 0);
    }
}

static void test_memory_concurrent_put_get_from_4_threads(void **state) {
    fixture *f = *state;
    open_memory(f, NULL);
    run_workers(f, 5000);
}

static void test_memory_ping_is_always_ok(void **state) {
    fixture *f = *state;
    vx_error err = {0};
    char buf[128];

    open_memory(f, NULL);
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_OK);
    assert_int_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
}

/* ================================================================ redis */

static void test_redis_put_get_del_round_trip_with_ttl(void **state) {
    fixture *f = *state;
    char buf[64];
    vx_error err = {0};
    redisReply *r;

    open_shared(f, "t1:");
    assert_int_equal(store_put(f, "sess", "hello", 60), VX_OK);
    /* The key is prefixed and carries the TTL. */
    r = direct(shared_port, "TTL t1:sess");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 0 && r->integer <= 60);
    freeReplyObject(r);
    assert_int_equal(store_get_str(f, "sess", buf, sizeof(buf)), VX_OK);
    assert_string_equal(buf, "hello");
    assert_int_equal(f->plugin->store->del(f->inst, "sess", &err), VX_OK);
    assert_int_equal(store_get_str(f, "sess", buf, sizeof(buf)), VX_ENOTFOUND);
    r = direct(shared_port, "EXISTS t1:sess");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_redis_put_without_ttl_never_expires(void **state) {
    fixture *f = *state;
    redisReply *r;

    open_shared(f, "t2:");
    assert_int_equal(store_put(f, "forever", "x", 0), VX_OK);
    r = direct(shared_port, "TTL t2:forever");
    assert_non_null(r);
    assert_int_equal(r->integer, -1);
    freeReplyObject(r);
}

static void test_redis_binary_values_keep_nul_bytes(void **state) {
    fixture *f = *state;
    static const unsigned char bin[] = {0, 1, 0, 0xff, ' ', '%', 's', 0, '\r', '\n', 0};
    vx_error err = {0};
    void *val = NULL;
    size_t len = 0;

    open_shared(f, "t3:");
    assert_int_equal(f->plugin->store->put(f->inst, "b in", bin, sizeof(bin), 60, &err), VX_OK);
    assert_int_equal(f->plugin->store->get(f->inst, "b in", &val, &len, &err), VX_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(val, bin, sizeof(bin));
    ph_api.free(val);
}

static void test_redis_get_missing_key_is_enotfound(void **state) {
    fixture *f = *state;
    vx_error err = {0};
    void *val = NULL;
    size_t len = 0;

    open_shared(f, "t4:");
    assert_int_equal(f->plugin->store->get(f->inst, "nope", &val, &len, &err), VX_ENOTFOUND);
    assert_int_equal(err.code, VX_ENOTFOUND);
    assert_null(val);
}

static void test_redis_ping_ok(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    open_shared(f, "t5:");
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_OK);
}

static void test_redis_health_reports_connected(void **state) {
    fixture *f = *state;
    char buf[128], want[64];

    open_shared(f, "t6:");
    assert_int_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
    snprintf(want, sizeof(want), "connected to 127.0.0.1:%d", shared_port);
    assert_non_null(strstr(buf, want));
}

static void test_redis_db_selects_the_database(void **state) {
    fixture *f = *state;
    char addr[32];
    vx_error err = {0};
    redisReply *r;

    assert_int_equal(fx_open(f, rd_plugin, &err, "address", addr_of(shared_port, addr, 32),
                             "prefix", "t7:", "db", "3", NULL),
                     VX_OK);
    assert_int_equal(store_put(f, "k", "in db 3", 60), VX_OK);
    r = direct(shared_port, "EXISTS t7:k");
    assert_int_equal(r->integer, 0); /* not in db 0 */
    freeReplyObject(r);
    redisContext *c = redisConnect("127.0.0.1", shared_port);
    assert_non_null(c);
    freeReplyObject(redisCommand(c, "SELECT 3"));
    r = redisCommand(c, "GET t7:k");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "in db 3");
    freeReplyObject(r);
    redisFree(c);
}

static void test_redis_concurrent_put_get_from_4_threads(void **state) {
    fixture *f = *state;
    open_shared(f, "t8:");
    run_workers(f, 300);
}

/* Open a store on a server this test owns, with short timeouts. */
static void open_owned_backoff(fixture *f, int port, const char *password, const char *rmin,
                               const char *rmax) {
    char addr[32];
    vx_error err = {0};

    assert_int_equal(fx_open(f, rd_plugin, &err, "address", addr_of(port, addr, 32),
                             "command_timeout", "300ms", "connect_timeout", "300ms",
                             "reconnect_min", rmin, "reconnect_max", rmax, "password",
                             password, NULL),
                     VX_OK);
}

static void open_owned(fixture *f, int port, const char *password) {
    open_owned_backoff(f, port, password, "50ms", "500ms");
}

static void test_redis_ping_fails_fast_when_server_dies(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};
    uint64_t t0;

    f->servers[0] = redis_start(port, NULL);
    assert_true(f->servers[0] > 0);
    /* A long backoff, so the second ping surely falls inside it. */
    open_owned_backoff(f, port, NULL, "2s", "2s");
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_OK);

    redis_stop(f->servers[0]);
    f->servers[0] = 0;
    t0 = now_ms();
    int rc = f->plugin->store->ping(f->inst, &err);
    assert_true(now_ms() - t0 < 1000);
    assert_true(rc == VX_EUNAVAIL || rc == VX_ETIMEDOUT);
    assert_int_equal(err.code, rc);
    assert_true(err.retryable);

    /* Within the backoff the store does not even try: it fails at once. */
    memset(&err, 0, sizeof(err));
    t0 = now_ms();
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_EUNAVAIL);
    assert_true(now_ms() - t0 < 50);
    assert_true(err.retryable);
    assert_non_null(strstr(err.msg, "next reconnect in"));
}

static void test_redis_reconnects_after_server_restart(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};
    char buf[128];

    f->servers[0] = redis_start(port, NULL);
    assert_true(f->servers[0] > 0);
    open_owned(f, port, NULL);
    assert_int_equal(store_put(f, "k", "v", 60), VX_OK);
    redis_stop(f->servers[0]);
    f->servers[0] = 0;
    assert_int_not_equal(f->plugin->store->ping(f->inst, &err), VX_OK);
    assert_int_not_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "down"));

    f->servers[0] = redis_start(port, NULL);
    assert_true(f->servers[0] > 0);
    assert_int_equal(ping_until_ok(f, 3000), VX_OK);
    /* Every pooled connection recovers, not just the one ping used. */
    for (int i = 0; i < 8; i++) assert_int_equal(store_put(f, "k", "again", 60), VX_OK);
    assert_int_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
}

static void test_redis_command_times_out_when_server_hangs(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};
    uint64_t t0, took;

    f->servers[0] = redis_start(port, NULL);
    assert_true(f->servers[0] > 0);
    open_owned(f, port, NULL);
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_OK);

    kill(f->servers[0], SIGSTOP);
    t0 = now_ms();
    int rc = f->plugin->store->ping(f->inst, &err);
    took = now_ms() - t0;
    kill(f->servers[0], SIGCONT);
    assert_int_equal(rc, VX_ETIMEDOUT);
    assert_true(err.retryable);
    assert_true(took >= 250 && took < 1000);
}

static void test_redis_init_succeeds_while_server_down(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};
    char buf[128];

    open_owned(f, port, NULL); /* asserts init returned VX_OK */
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_EUNAVAIL);
    assert_true(err.retryable);
    assert_int_not_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "down"));

    f->servers[0] = redis_start(port, NULL);
    assert_true(f->servers[0] > 0);
    assert_int_equal(ping_until_ok(f, 3000), VX_OK);
    assert_int_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
}

static void test_redis_wrong_password_is_eauth_and_never_shown(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};
    char buf[256];

    f->servers[0] = redis_start(port, "right-horse-battery");
    assert_true(f->servers[0] > 0);
    open_owned(f, port, "hunter2-wrong");
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_EAUTH);
    assert_int_equal(err.code, VX_EAUTH);
    assert_false(err.retryable);
    assert_null(strstr(err.msg, "hunter2"));
    /* Fails the same way, fast, while backing off. */
    memset(&err, 0, sizeof(err));
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_EAUTH);
    assert_null(strstr(err.msg, "hunter2"));
    assert_int_not_equal(f->plugin->health(f->inst, buf, sizeof(buf)), VX_OK);
    assert_null(strstr(buf, "hunter2"));
    assert_null(strstr(f->host.log, "hunter2"));
}

static void test_redis_missing_password_is_eauth(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    vx_error err = {0};

    f->servers[0] = redis_start(port, "right-horse-battery");
    assert_true(f->servers[0] > 0);
    open_owned(f, port, NULL);
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_EAUTH);
    assert_false(err.retryable);
}

static void test_redis_acl_user_and_password_connect(void **state) {
    fixture *f = *state;
    int port = ph_free_port();
    char addr[32];
    vx_error err = {0};

    f->servers[0] = redis_start(port, "right-horse-battery");
    assert_true(f->servers[0] > 0);
    assert_int_equal(fx_open(f, rd_plugin, &err, "address", addr_of(port, addr, 32),
                             "username", "default", "password", "right-horse-battery", NULL),
                     VX_OK);
    assert_int_equal(f->plugin->store->ping(f->inst, &err), VX_OK);
    assert_int_equal(store_put(f, "k", "v", 10), VX_OK);
    assert_null(strstr(f->host.log, "right-horse-battery"));
}

static void test_redis_username_without_password_is_rejected(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_open(f, rd_plugin, &err, "username", "voxray", NULL), VX_EINVAL);
    assert_int_equal(err.code, VX_EINVAL);
    assert_null(f->inst);
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, shared_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptors_follow_the_abi),
        cmocka_unit_test(test_password_is_declared_secret),

        T(test_memory_put_get_del_round_trip),
        T(test_memory_binary_values_keep_nul_bytes),
        T(test_memory_entry_expires_after_ttl),
        T(test_memory_get_missing_key_is_enotfound),
        T(test_memory_max_keys_evicts_the_oldest_written),
        T(test_memory_max_memory_evicts_by_bytes),
        T(test_memory_expired_keys_go_before_live_ones),
        T(test_memory_expired_keys_do_not_count_against_max_keys),
        T(test_memory_keeps_every_key_across_table_growth),
        T(test_memory_concurrent_put_get_from_4_threads),
        T(test_memory_ping_is_always_ok),

        S(test_redis_put_get_del_round_trip_with_ttl),
        S(test_redis_put_without_ttl_never_expires),
        S(test_redis_binary_values_keep_nul_bytes),
        S(test_redis_get_missing_key_is_enotfound),
        S(test_redis_ping_ok),
        S(test_redis_health_reports_connected),
        S(test_redis_db_selects_the_database),
        S(test_redis_concurrent_put_get_from_4_threads),
        T(test_redis_ping_fails_fast_when_server_dies),
        T(test_redis_reconnects_after_server_restart),
        T(test_redis_command_times_out_when_server_hangs),
        T(test_redis_init_succeeds_while_server_down),
        T(test_redis_wrong_password_is_eauth_and_never_shown),
        T(test_redis_missing_password_is_eauth),
        T(test_redis_acl_user_and_password_connect),
        T(test_redis_username_without_password_is_rejected),
    };
#undef T
#undef S
    int failed;

    atexit(children_kill_all);
    mem_plugin = ph_plugin_load(STORE_MEMORY_SO, &mem_dl);
    rd_plugin = ph_plugin_load(STORE_REDIS_SO, &rd_dl);
    if (!mem_plugin || !rd_plugin) {
        fprintf(stderr, "cannot load the store plugins\n");
        return 1;
    }
    failed = cmocka_run_group_tests(tests, NULL, group_teardown);
    ph_plugin_unload(mem_dl);
    ph_plugin_unload(rd_dl);
    return failed ? 1 : 0;
}
