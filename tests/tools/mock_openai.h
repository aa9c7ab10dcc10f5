/*
 * The test side of mock_openai, shared by the tests of the OpenAI-compatible
 * plugins: start and stop the server, read what it recorded, and the
 * fixture glue that points an instance at it. The test host, recorders and
 * fixture themselves are plugin_harness's.
 *
 * A test program defines PLUGIN_SO (the built .so) and MOCK_OPENAI (the
 * server binary), includes this file once, and calls oai_test_main().
 * Events arrive on the plugin's threads and are recorded under a mutex;
 * assertions run on the main thread only.
 */
#ifndef VX_TEST_MOCK_OPENAI_H
#define VX_TEST_MOCK_OPENAI_H

#include <errno.h>
#include <poll.h>
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
#include <curl/curl.h>
#include <jansson.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#if !defined(PLUGIN_SO) || !defined(MOCK_OPENAI)
#error "PLUGIN_SO and MOCK_OPENAI must name the plugin and the mock server"
#endif

#define WAIT_MS 20000 /* generous: valgrind and sanitizers are slow */
#define KEY_ENV "VX_TEST_OPENAI_KEY"

typedef ph_seen seen;
typedef ph_rec rec;
typedef ph_fixture fixture;

/* ---------------------------------------------------------------- the server */

typedef struct mock {
    pid_t pid;
    int port;
    char url[64]; /* base_url: http://127.0.0.1:PORT/v1 */
} mock;

static mock srv;

/* Start mock_openai on a port it picks and read the port it prints.
 * Returns 0, or -1 (the reason on stderr). */
static int mock_start(mock *m) {
    int fds[2];
    char line[32] = "";
    size_t got = 0;
    struct pollfd p;

    char *argv[] = {MOCK_OPENAI, "0", NULL};

    if (pipe(fds) != 0) return -1;
    m->pid = ph_child_start(argv, fds[1], SIGTERM);
    if (m->pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[1]);
    p.fd = fds[0];
    p.events = POLLIN;
    while (got < sizeof(line) - 1 && !strchr(line, '\n') && poll(&p, 1, WAIT_MS) > 0) {
        ssize_t n = read(fds[0], line + got, sizeof(line) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        line[got] = '\0';
    }
    close(fds[0]);
    m->port = atoi(line);
    if (m->port <= 0) {
        fprintf(stderr, "%s did not report a port\n", MOCK_OPENAI);
        ph_child_stop(m->pid, SIGTERM);
        return -1;
    }
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d/v1", m->port);
    return 0;
}

static void mock_stop(mock *m) {
    ph_child_stop(m->pid, SIGTERM);
    m->pid = 0;
}

static size_t mock_collect(char *p, size_t size, size_t n, void *ud) {
    char **buf = ud;
    size_t len = *buf ? strlen(*buf) : 0;
    char *b = realloc(*buf, len + size * n + 1);

    if (!b) return 0;
    memcpy(b + len, p, size * n);
    b[len + size * n] = '\0';
    *buf = b;
    return size * n;
}

/* GET (or DELETE) /__requests: the recorded requests, a new reference. */
static json_t *mock_requests_do(const char *method) {
    char url[96], *body = NULL;
    CURL *c = curl_easy_init();
    json_t *j = NULL;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/__requests", srv.port);
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mock_collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)WAIT_MS);
        if (curl_easy_perform(c) == CURLE_OK && body) j = json_loads(body, 0, NULL);
        curl_easy_cleanup(c);
    }
    free(body);
    if (!json_is_array(j)) fail_msg("GET /__requests failed");
    return j;
}

static json_t *mock_requests(void) {
    return mock_requests_do("GET");
}

static void mock_reset(void) {
    json_decref(mock_requests_do("DELETE"));
}

static inline size_t mock_count(void) {
    json_t *r = mock_requests();
    size_t n = json_array_size(r);
    json_decref(r);
    return n;
}

/* The last recorded request, a new reference. Fails the test when none. */
static json_t *mock_last(void) {
    json_t *r = mock_requests();
    json_t *last = json_array_get(r, json_array_size(r) - 1);

    if (!last) fail_msg("the server received no request");
    json_incref(last);
    json_decref(r);
    return last;
}

/* A port nothing listens on (it was free a moment ago). */
static inline int closed_port(void) {
    return ph_free_port();
}

/* ---------------------------------------------------------------- fixture */

static void *plug_dl;
static const vx_plugin_info *plug;

static vx_kind plug_kind(void) {
    return plug->llm ? VX_KIND_LLM : plug->stt ? VX_KIND_STT : VX_KIND_TTS;
}

static int fx_setup(void **state) {
    fixture *f = ph_fx_new(plug);

    if (!f) return -1;
    unsetenv(KEY_ENV);
    mock_reset();
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    ph_fx_free(*state);
    unsetenv(KEY_ENV);
    return 0;
}

/* Configure the next host slot with every schema key at its default (the
 * pairs, NULL-ended, are ph_fx_host's). */
static vx_host *fx_host(fixture *f, ...) {
    vx_host *h;
    va_list ap;

    va_start(ap, f);
    h = ph_fx_host(f, plug->name, ap);
    va_end(ap);
    return h;
}

/* Init an instance the way the host does: every schema key, its default,
 * except base_url (the mock) and api_key_env (KEY_ENV), then the given
 * pairs of key and value, ending with NULL. Returns its index. */
static size_t fx_inst(fixture *f, ...) {
    vx_host *h = fx_host(f, NULL);
    vx_error err = {0};
    va_list ap;
    int rc;

    ph_host_set(h, "base_url", srv.url);
    ph_host_set(h, "api_key_env", KEY_ENV);
    va_start(ap, f);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        assert_int_equal(ph_host_set(h, key, value), 0); /* a key the plugin declares */
    }
    va_end(ap);
    rc = ph_fx_init(f, &err);
    if (rc != VX_OK) fail_msg("init failed: %d %s", rc, err.msg);
    return f->n_inst - 1;
}

static rec *fx_rec(fixture *f) {
    return ph_fx_rec(f);
}

static void fx_track(fixture *f, vx_stream *s) {
    ph_fx_track(f, plug_kind(), s);
}

/* Close a tracked stream now and mark its recorder closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    ph_fx_close(f, s, r);
}

/* ---------------------------------------------------------------- JSON */

/* A string at a path of object keys ("headers", "authorization", NULL). */
static inline const char *jstr(const json_t *j, ...) {
    va_list ap;
    va_start(ap, j);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) j = json_object_get(j, k);
    va_end(ap);
    return json_string_value(j);
}

/* ---------------------------------------------------------------- main */

/* Start the server, load the plugin, run the group, clean up. */
static int oai_test_main(const struct CMUnitTest *tests, size_t n, const char *group) {
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (mock_start(&srv) != 0) return 1;
    plug = ph_plugin_load(PLUGIN_SO, &plug_dl);
    if (!plug) {
        mock_stop(&srv);
        return 1;
    }
    /* OAI_TEST_FILTER=test_cancel* runs a subset (e.g. under valgrind). */
    if (getenv("OAI_TEST_FILTER")) cmocka_set_test_filter(getenv("OAI_TEST_FILTER"));
    failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    ph_plugin_unload(plug_dl);
    mock_stop(&srv);
    curl_global_cleanup();
    return failed ? 1 : 0;
}

#endif
