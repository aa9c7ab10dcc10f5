/*
 * rec_s3, tested through its built .so exactly as the host loads it, against
 * a real S3 server that checks SigV4 signatures: tests/tools/s3rver.mjs
 * (npm @20minutes/s3rver) on a free loopback port, started once for the
 * program with `node` ($NODE, else the one in PATH) and stopped by its PID.
 * Objects are read back with signed GETs through libcurl; the server's
 * request log (--log) shows which S3 calls were made. One test uses a small
 * fake S3 in a thread instead, to see the bytes and headers on the wire.
 */
#define _GNU_SOURCE 1 /* strcasestr */
#include <errno.h>
#include <fcntl.h>
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
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#ifndef PLUGIN_SO
#error "PLUGIN_SO must name the built rec_s3.so"
#endif
#ifndef S3RVER_MJS
#error "S3RVER_MJS must name tests/tools/s3rver.mjs"
#endif
#ifndef NODE_MODULES
#error "NODE_MODULES must name tests/node/node_modules"
#endif
#ifndef PLUGIN_CHECK
#error "PLUGIN_CHECK must name the built voxray-plugin-check"
#endif

#define KEY_ID "AKIDVOXRAYTEST01"
#define SECRET "vx-Test-Secret-7d1e5c0a9b"
#define BUCKET "voxray-rec"
#define MiB (1024u * 1024u)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void *dl;
static const vx_plugin_info *plug;

/* ---------------------------------------------------------------- the server */

static pid_t srv_pid;
static int srv_port, srv_out = -1;
static char srv_dir[64], srv_log[96], srv_endpoint[64];

static void srv_kill(void) {
    if (srv_pid > 0) {
        kill(srv_pid, SIGCONT); /* in case a test left it stopped */
        ph_child_stop(srv_pid, SIGKILL);
        srv_pid = 0;
    }
}

/* Start s3rver.mjs and wait for its "ready" line. 0 or -1. */
static int srv_start(void) {
    const char *node = getenv("NODE") ? getenv("NODE") : "node";
    char port[16], line[64];
    int fds[2];
    size_t got = 0;
    uint64_t t0 = ph_now_ns();

    snprintf(srv_dir, sizeof(srv_dir), "/tmp/vx_s3_XXXXXX");
    if (!mkdtemp(srv_dir) || pipe(fds) != 0) return -1;
    snprintf(srv_log, sizeof(srv_log), "%s.requests", srv_dir);
    srv_port = ph_free_port();
    snprintf(port, sizeof(port), "%d", srv_port);
    snprintf(srv_endpoint, sizeof(srv_endpoint), "http://127.0.0.1:%d", srv_port);
    char *argv[] = {(char *)node, S3RVER_MJS, "--port", port, "--dir", srv_dir,
                    "--bucket", BUCKET, "--key", KEY_ID, "--secret", SECRET,
                    "--log", srv_log, "--modules", NODE_MODULES, NULL};
    srv_pid = ph_child_start(argv, fds[1], SIGKILL);
    close(fds[1]);
    srv_out = fds[0];
    if (srv_pid < 0) return -1;
    while (got < sizeof(line) - 1 && ph_ms_since(t0) < 20000) {
        struct pollfd p = {srv_out, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = read(srv_out, line + got, sizeof(line) - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        line[got] = '\0';
        if (strstr(line, "ready\n")) {
            fprintf(stderr, "# s3rver ready on port %d after %llu ms\n", srv_port,
                    (unsigned long long)ph_ms_since(t0));
            return 0;
        }
    }
    fprintf(stderr, "# s3rver did not start (node: %s, modules: %s); "
                    "run: cd tests/node && npm ci\n", node, NODE_MODULES);
    srv_kill();
    return -1;
}

static int group_setup(void **state) {
    (void)state;
    return srv_start();
}

static int group_teardown(void **state) {
    char cmd[200];

    (void)state;
    srv_kill();
    if (srv_out >= 0) close(srv_out);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", srv_dir, srv_log);
    if (srv_dir[0] && system(cmd) != 0) fprintf(stderr, "# could not remove %s\n", srv_dir);
    return 0;
}

/* Lines of the server's request log containing every one of the needles
 * (NULL-terminated). */
static int srv_count(const char *needle, ...) {
    FILE *fp = fopen(srv_log, "r");
    char line[1024];
    int n = 0;

    if (!fp) return 0;
    while (fgets(line, sizeof(line), fp)) {
        va_list ap;
        int all = strstr(line, needle) != NULL;
        va_start(ap, needle);
        for (const char *x; (x = va_arg(ap, const char *)) != NULL;)
            if (!strstr(line, x)) all = 0;
        va_end(ap);
        n += all;
    }
    fclose(fp);
    return n;
}

/* ---------------------------------------------------------------- reading back */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

/* Grows the buffer geometrically: a multi-megabyte object arrives in 16 KiB
 * pieces, and a realloc per piece copies the whole body each time (under
 * AddressSanitizer, whose realloc always moves, that alone outlasted the
 * GET's timeout). */
static size_t buf_add(char *d, size_t size, size_t nmemb, void *ud) {
    buf *b = ud;
    size_t n = size * nmemb;

    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *p;

        while (cap < b->n + n + 1) cap *= 2;
        p = realloc(b->p, cap);
        if (!p) return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static void buf_free(buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* A signed GET of key from the test bucket: the HTTP status (0 when the
 * server did not answer); body and headers into the buffers. */
static long s3_get(const char *key, buf *body, buf *hdrs) {
    char url[600];
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256);
    long status = 0;
    CURLcode rc;

    assert_non_null(c);
    snprintf(url, sizeof(url), "%s/%s/%s", srv_endpoint, BUCKET, key);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(c, CURLOPT_USERNAME, KEY_ID);
    curl_easy_setopt(c, CURLOPT_PASSWORD, SECRET);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_add);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, buf_add);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "# GET %s: %s after %zu bytes\n", key, curl_easy_strerror(rc), body->n);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return status;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    unsigned char *p = NULL;
    long len;

    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    len = ftell(fp);
    rewind(fp);
    p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return p;
}

/* The object under key holds exactly the bytes of path. */
static void assert_object_is_file(const char *key, const char *path) {
    buf body = {0}, hdrs = {0};
    size_t n;
    unsigned char *want = slurp(path, &n);
    long status = s3_get(key, &body, &hdrs);

    if (status != 200) fprintf(stderr, "# GET %s: %ld %.300s\n", key, status, body.p ? (char *)body.p : "");
    assert_int_equal(status, 200);
    assert_int_equal(body.n, n);
    assert_memory_equal(body.p, want, n);
    free(want);
    buf_free(&body);
    buf_free(&hdrs);
}

static void assert_no_object(const char *key) {
    buf body = {0}, hdrs = {0};

    assert_int_equal(s3_get(key, &body, &hdrs), 404);
    assert_non_null(strstr((char *)body.p, "NoSuchKey"));
    buf_free(&body);
    buf_free(&hdrs);
}

/* ---------------------------------------------------------------- fixture */

static int fx_setup(void **state) {
    ph_fixture *f = ph_fx_new(plug);

    *state = f;
    return f ? 0 : -1;
}

static int fx_teardown(void **state) {
    ph_fx_free(*state);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    return 0;
}

/* Init an instance: the test server, bucket and credentials, path style,
 * short timeouts, overridden by the (key, value) pairs given (NULL ends
 * them). Returns init's code; the instance is f->inst[f->n_inst - 1]. */
static int sink_init(ph_fixture *f, vx_error *err, ...) {
    const char *base[][2] = {{"endpoint", srv_endpoint}, {"bucket", BUCKET},
                             {"path_style", "true"}, {"access_key_id", KEY_ID},
                             {"secret_access_key", SECRET}, {"connect_timeout", "2s"},
                             {"timeout", "20s"}};
    const char *given[32];
    size_t n_given = 0;
    va_list ap, cp;
    vx_host *h;

    va_start(ap, err);
    va_copy(cp, ap);
    for (const char *k; (k = va_arg(cp, const char *)) != NULL && n_given < 32;) {
        given[n_given++] = k;
        (void)va_arg(cp, const char *);
    }
    va_end(cp);
    h = ph_fx_host(f, "s3", ap);
    va_end(ap);
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        int set = 0;
        for (size_t j = 0; j < n_given; j++) set |= strcmp(given[j], base[i][0]) == 0;
        if (!set) assert_int_equal(ph_host_set(h, base[i][0], base[i][1]), 0);
    }
    return ph_fx_init(f, err);
}

/* An instance that must init; returns it. */
#define SINK(f, ...)                                                             \
    ({                                                                           \
        vx_error e_ = {0};                                                       \
        int rc_ = sink_init((f), &e_, ##__VA_ARGS__, NULL);                      \
        if (rc_ != VX_OK) fprintf(stderr, "# init: %d %s\n", rc_, e_.msg);       \
        assert_int_equal(rc_, VX_OK);                                            \
        (f)->inst[(f)->n_inst - 1];                                              \
    })
#define HOST(f) (&(f)->hosts[(f)->n_inst - 1])

/* A scratch file of size bytes: a RIFF WAVE header when wav, then bytes of
 * a fixed pseudo-random sequence from seed. Removed at teardown. */
static const char *make_file(ph_fixture *f, size_t size, unsigned seed, int wav) {
    char path[128];
    unsigned char *p = malloc(size ? size : 1);
    uint32_t x = seed * 2654435761u + 1;
    int fd;

    assert_non_null(p);
    for (size_t i = 0; i < size; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
    if (wav && size >= 44) {
        uint32_t data = (uint32_t)size - 44, riff = (uint32_t)size - 8, rate = 16000, br = 32000;
        memcpy(p, "RIFF", 4);
        memcpy(p + 4, &riff, 4);
        memcpy(p + 8, "WAVEfmt ", 8);
        memcpy(p + 16, "\x10\0\0\0\x01\0\x01\0", 8);
        memcpy(p + 24, &rate, 4);
        memcpy(p + 28, &br, 4);
        memcpy(p + 32, "\x02\0\x10\0data", 8);
        memcpy(p + 40, &data, 4);
    }
    snprintf(path, sizeof(path), "/tmp/vx_s3_rec_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, size), (ssize_t)size);
    close(fd);
    free(p);
    ph_fx_remove_later(f, path);
    return f->files[f->n_files - 1];
}

static const vx_kv test_meta[] = {
    {"instance", "eu-1"},
    {"status", "completed"},
    {"note", "has spaces"}, /* not a safe header value: left out */
};

/* A recording of path as the 1.2 host describes it. */
static vx_recording rec_of(const char *path, const char *name, const char *ctype) {
    struct stat st;
    vx_recording r;

    memset(&st, 0, sizeof(st));
    (void)stat(path, &st); /* some tests upload a file that is not there */
    memset(&r, 0, sizeof(r));
    r.struct_size = sizeof(r);
    r.path = path;
    r.session_id = "sess_abc";
    r.content_type = ctype;
    r.bytes = (uint64_t)st.st_size;
    r.duration_s = 12.5;
    r.started_unix_ms = (int64_t)time(NULL) * 1000;
    r.meta = test_meta;
    r.n_meta = sizeof(test_meta) / sizeof(test_meta[0]);
    r.name = name;
    return r;
}

static int upload(void *inst, const vx_recording *r, vx_error *err) {
    memset(err, 0, sizeof(*err));
    return plug->sink->upload(inst, r, err);
}

static int upload_path(void *inst, const char *path, const char *name, vx_error *err) {
    vx_recording r = rec_of(path, name, "audio/wav");
    return upload(inst, &r, err);
}

/* ================================================================ tests */

static void test_descriptor_is_a_sink_with_secret_credentials(void **state) {
    const vx_config_key *k;
    int seen = 0;

    (void)state;
    assert_int_equal(plug->kinds, VX_KIND_SINK);
    assert_string_equal(plug->name, "rec_s3");
    assert_non_null(plug->sink);
    assert_non_null(plug->sink->upload);
    assert_non_null(plug->health);
    assert_true(plug->abi_minor >= 2);
    for (k = plug->config; k->key; k++) {
        assert_non_null(k->help);
        if (strcmp(k->key, "bucket") == 0) seen |= 1, assert_true(k->flags & VX_CFG_REQUIRED);
        if (strcmp(k->key, "secret_access_key") == 0) seen |= 2, assert_true(k->flags & VX_CFG_SECRET);
        if (strcmp(k->key, "session_token") == 0) seen |= 4, assert_true(k->flags & VX_CFG_SECRET);
        if (strcmp(k->key, "access_key_id") == 0) seen |= 8, assert_false(k->flags & VX_CFG_SECRET);
        if (strcmp(k->key, "part_size") == 0) {
            seen |= 16;
            assert_string_equal(k->def, "8388608");
            assert_true(k->min == 5.0 * MiB); /* S3's minimum part */
        }
        if (strcmp(k->key, "multipart_threshold") == 0) seen |= 32, assert_string_equal(k->def, "16777216");
        if (strcmp(k->key, "endpoint") == 0) seen |= 64, assert_string_equal(k->def, "https://s3.amazonaws.com");
        if (strcmp(k->key, "region") == 0) seen |= 128, assert_string_equal(k->def, "us-east-1");
    }
    assert_int_equal(seen, 255);
}

static void test_small_wav_arrives_byte_identical_under_prefix_and_name(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "prefix", "/calls/eu/");
    const char *path = make_file(f, 48044, 1, 1);
    vx_error err;

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_small.wav", &err), VX_OK);
    assert_object_is_file("calls/eu/2026/12/04/sess_small.wav", path);
}

static void test_object_keeps_content_type_and_safe_metadata(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 1000, 2, 0);
    vx_recording r = rec_of(path, "2026/12/04/sess_meta.json", "application/json");
    buf body = {0}, hdrs = {0};
    vx_error err;

    assert_int_equal(upload(s, &r, &err), VX_OK);
    assert_int_equal(s3_get("2026/12/04/sess_meta.json", &body, &hdrs), 200);
    assert_non_null(strcasestr((char *)hdrs.p, "Content-Type: application/json"));
    assert_non_null(strcasestr((char *)hdrs.p, "x-amz-meta-session-id: sess_abc"));
    assert_non_null(strcasestr((char *)hdrs.p, "x-amz-meta-instance: eu-1"));
    assert_non_null(strcasestr((char *)hdrs.p, "x-amz-meta-status: completed"));
    assert_non_null(strcasestr((char *)hdrs.p, "x-amz-meta-duration-s: 12.500"));
    assert_null(strcasestr((char *)hdrs.p, "x-amz-meta-note"));
    buf_free(&body);
    buf_free(&hdrs);
}

/* The struct an ABI 1.1 host passes ends before `name`: whatever lies there
 * must not be read, and the plugin derives the 1.2 name itself. */
static void test_older_minor_recording_gets_the_derived_date_name(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "prefix", "old");
    const char *path = make_file(f, 20044, 3, 1);
    struct tm tm = {.tm_year = 2025 - 1900, .tm_mon = 2, .tm_mday = 7, .tm_hour = 23, .tm_min = 59};
    vx_recording r = rec_of(path, "must/not/be/read.wav", "audio/wav");
    vx_error err;

    r.struct_size = (uint32_t)(VX_RECORDING_SIZE_1_2 - sizeof(char *));
    r.session_id = "sess_old";
    r.started_unix_ms = (int64_t)timegm(&tm) * 1000 + 999;
    assert_int_equal(upload(s, &r, &err), VX_OK);
    assert_object_is_file("old/2025/03/07/sess_old.wav", path);
    assert_no_object("old/must/not/be/read.wav");
}

static void test_older_minor_json_sidecar_gets_the_json_extension(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 300, 4, 0);
    struct tm tm = {.tm_year = 2024 - 1900, .tm_mon = 11, .tm_mday = 31, .tm_hour = 12};
    vx_recording r = rec_of(path, NULL, "application/json");
    vx_error err;

    r.struct_size = (uint32_t)(VX_RECORDING_SIZE_1_2 - sizeof(char *));
    r.session_id = "sess_old";
    r.started_unix_ms = (int64_t)timegm(&tm) * 1000;
    assert_int_equal(upload(s, &r, &err), VX_OK);
    assert_object_is_file("2024/12/31/sess_old.json", path);
}

static void test_file_above_threshold_goes_multipart_and_arrives_byte_identical(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "multipart_threshold", "6291456", "part_size", "5242880");
    const char *path = make_file(f, 11 * MiB + 123, 5, 1); /* 5 + 5 + 1 MiB + 123 bytes */
    const char *key = "2026/12/04/sess_big.wav";
    uint64_t t0 = ph_now_ns();
    vx_error err;

    assert_int_equal(truncate(srv_log, 0), 0);
    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    fprintf(stderr, "# 11 MiB multipart upload: %llu ms\n", (unsigned long long)ph_ms_since(t0));
    assert_true(ph_logged(HOST(f), "in 3 parts"));
    assert_int_equal(srv_count("POST /" BUCKET "/", key, "?uploads= 200", NULL), 1);
    assert_int_equal(srv_count("PUT /" BUCKET "/", key, "?partNumber=", " 200", NULL), 3);
    assert_int_equal(srv_count("?partNumber=3&uploadId=", NULL), 1);
    assert_int_equal(srv_count("POST /" BUCKET "/", key, "?uploadId=", " 200", NULL), 1);
    assert_object_is_file(key, path);
}

static void test_file_at_threshold_is_one_put(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "multipart_threshold", "5242880");
    const char *path = make_file(f, 5 * MiB, 6, 1);
    const char *key = "2026/12/04/sess_edge.wav";
    vx_error err;

    assert_int_equal(truncate(srv_log, 0), 0);
    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    assert_int_equal(srv_count("PUT /" BUCKET "/", key, " 200", NULL), 1);
    assert_int_equal(srv_count("uploads", NULL), 0);
    assert_object_is_file(key, path);
}

static void test_wrong_secret_is_eauth_not_retryable_and_never_shown(void **state) {
    ph_fixture *f = *state;
    const char *wrong = "Wrong-Secret-Never-Shown-4411";
    void *s = SINK(f, "secret_access_key", wrong);
    const char *path = make_file(f, 4000, 7, 1);
    char health[256];
    vx_error err;

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_denied.wav", &err), VX_EAUTH);
    assert_int_equal(err.code, VX_EAUTH);
    assert_int_equal(err.retryable, 0);
    assert_int_equal(err.upstream_status, 403);
    assert_non_null(strstr(err.msg, "403 SignatureDoesNotMatch"));
    assert_null(strstr(err.msg, wrong));
    assert_true(plug->health(s, health, sizeof(health)) != VX_OK);
    assert_non_null(strstr(health, "failing: 403 SignatureDoesNotMatch"));
    assert_null(strstr(health, wrong));
    assert_true(ph_logged(HOST(f), "SignatureDoesNotMatch")); /* the log was written... */
    assert_false(ph_logged(HOST(f), wrong));                  /* ...without the secret */
    assert_no_object("2026/12/04/sess_denied.wav");
}

static void test_wrong_secret_on_a_multipart_upload_is_eauth_too(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "secret_access_key", "Another-Wrong-Secret-0000", "multipart_threshold",
                   "5242880");
    const char *path = make_file(f, 6 * MiB, 8, 1);
    vx_error err;

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_denied_mp.wav", &err), VX_EAUTH);
    assert_int_equal(err.retryable, 0);
    assert_int_equal(err.upstream_status, 403);
    assert_non_null(strstr(err.msg, "CreateMultipartUpload"));
    assert_no_object("2026/12/04/sess_denied_mp.wav");
}

static void test_server_down_is_retryable_eunavail_within_the_connect_timeout(void **state) {
    ph_fixture *f = *state;
    char endpoint[64];
    int port = ph_free_port(); /* nothing listens there */
    void *s;
    const char *path = make_file(f, 4000, 9, 1);
    uint64_t t0;
    vx_error err;

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    s = SINK(f, "endpoint", endpoint, "connect_timeout", "2s");
    t0 = ph_now_ns();
    assert_int_equal(upload_path(s, path, "2026/12/04/sess_down.wav", &err), VX_EUNAVAIL);
    assert_true(ph_ms_since(t0) < 2000);
    assert_int_equal(err.retryable, 1);
    assert_int_equal(err.upstream_status, 0);
}

static void test_missing_bucket_is_not_retryable(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "bucket", "no-such-bucket");
    const char *path = make_file(f, 4000, 10, 1);
    vx_error err;

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_nobucket.wav", &err), VX_EINVAL);
    assert_int_equal(err.retryable, 0);
    assert_int_equal(err.upstream_status, 404);
    assert_non_null(strstr(err.msg, "404 NoSuchBucket"));
}

static void test_same_upload_twice_is_idempotent(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 30044, 11, 1);
    const char *key = "2026/12/04/sess_twice.wav";
    vx_error err;

    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    assert_object_is_file(key, path);
}

static void test_same_multipart_upload_twice_is_idempotent(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "multipart_threshold", "5242880");
    const char *path = make_file(f, 7 * MiB, 12, 1);
    const char *key = "2026/12/04/sess_twice_mp.wav";
    vx_error err;

    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    assert_int_equal(upload_path(s, path, key, &err), VX_OK);
    assert_object_is_file(key, path);
}

static void test_health_reports_ok_after_success_and_failing_after_failure(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 4000, 13, 1);
    char health[128];
    vx_error err;

    assert_int_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "ok: no upload yet"));

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_health.wav", &err), VX_OK);
    assert_int_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "ok: last upload 0s ago"));

    assert_int_equal(upload_path(s, "/nonexistent/rec.wav", "2026/12/04/x.wav", &err), VX_EINVAL);
    assert_int_not_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "failing: "));
    assert_non_null(strstr(health, "(1 in a row"));
    assert_int_equal(upload_path(s, "/nonexistent/rec.wav", "2026/12/04/x.wav", &err), VX_EINVAL);
    assert_int_not_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "(2 in a row"));

    assert_int_equal(upload_path(s, path, "2026/12/04/sess_health.wav", &err), VX_OK);
    assert_int_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_non_null(strstr(health, "ok: last upload"));
    assert_true(ph_logged(HOST(f), "work again after 2 failures"));
}

static void test_health_does_no_network_io(void **state) {
    ph_fixture *f = *state;
    char endpoint[64], health[128];
    int port = ph_free_port();
    void *s;
    uint64_t t0;

    snprintf(endpoint, sizeof(endpoint), "http://10.255.255.1:%d", port);
    s = SINK(f, "endpoint", endpoint);
    t0 = ph_now_ns();
    for (int i = 0; i < 1000; i++) assert_int_equal(plug->health(s, health, sizeof(health)), VX_OK);
    assert_true(ph_ms_since(t0) < 200);
}

static void test_missing_file_is_einval_not_retryable(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    vx_error err;

    assert_int_equal(upload_path(s, "/nonexistent/rec.wav", "2026/12/04/sess_nofile.wav", &err),
                     VX_EINVAL);
    assert_int_equal(err.retryable, 0);
    assert_non_null(strstr(err.msg, "/nonexistent/rec.wav"));
}

static void test_unsafe_name_is_einval_and_sends_nothing(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 100, 14, 0);
    vx_error err;

    assert_int_equal(truncate(srv_log, 0), 0);
    assert_int_equal(upload_path(s, path, "2026/../../etc/passwd", &err), VX_EINVAL);
    assert_int_equal(err.retryable, 0);
    assert_int_equal(upload_path(s, path, "2026/12/04/a b.wav", &err), VX_EINVAL);
    ph_sleep_ms(50);
    assert_int_equal(srv_count(" ", NULL), 0);
}

static void test_init_without_credentials_fails_with_a_message(void **state) {
    ph_fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(sink_init(f, &err, "access_key_id", "", "secret_access_key", "", NULL),
                     VX_EINVAL);
    assert_null(f->inst[0]);
    assert_non_null(strstr(err.msg, "no credentials"));
    assert_non_null(strstr(err.msg, "AWS_ACCESS_KEY_ID"));
}

static void test_init_with_a_key_id_but_no_secret_fails(void **state) {
    ph_fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(sink_init(f, &err, "secret_access_key", "", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "secret access key missing"));
}

static void test_init_rejects_a_bad_endpoint(void **state) {
    ph_fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(sink_init(f, &err, "endpoint", "ftp://example.com", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "endpoint"));
}

static void test_credentials_from_aws_environment_variables_work(void **state) {
    ph_fixture *f = *state;
    void *s;
    const char *path = make_file(f, 4000, 15, 1);
    vx_error err;

    setenv("AWS_ACCESS_KEY_ID", KEY_ID, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
    s = SINK(f, "access_key_id", "", "secret_access_key", "");
    assert_true(ph_logged(HOST(f), "from AWS_ACCESS_KEY_ID"));
    assert_false(ph_logged(HOST(f), SECRET));
    assert_int_equal(upload_path(s, path, "2026/12/04/sess_env.wav", &err), VX_OK);
    assert_object_is_file("2026/12/04/sess_env.wav", path);
}

static void test_session_token_is_sent_signed_and_accepted(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "session_token", "FwoGZXIvYXdzEXAMPLETOKEN");
    const char *path = make_file(f, 4000, 16, 1);
    vx_error err;

    assert_false(ph_logged(HOST(f), "FwoGZXIvYXdzEXAMPLETOKEN"));
    assert_int_equal(upload_path(s, path, "2026/12/04/sess_token.wav", &err), VX_OK);
    assert_object_is_file("2026/12/04/sess_token.wav", path);
}

/* The server is frozen (SIGSTOP) as soon as the multipart upload has been
 * created: the part times out, the abort is attempted, and no object
 * appears even after the server resumes. */
typedef struct bg_upload {
    void *inst;
    const char *path, *name;
    int rc;
    vx_error err;
} bg_upload;

static void *bg_upload_main(void *a) {
    bg_upload *u = a;
    u->rc = upload_path(u->inst, u->path, u->name, &u->err);
    return NULL;
}

static void test_multipart_failure_part_way_leaves_no_object(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f, "multipart_threshold", "5242880", "timeout", "1s", "stall_timeout", "0");
    bg_upload u = {s, make_file(f, 12 * MiB, 17, 1), "2026/12/04/sess_cut.wav", 0, {0}};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, bg_upload_main, &u), 0);
    int started = ph_log_wait(HOST(f), "multipart upload of");
    kill(srv_pid, SIGSTOP);
    pthread_join(t, NULL);
    kill(srv_pid, SIGCONT);
    assert_true(started);
    assert_int_equal(u.rc, VX_ETIMEDOUT);
    assert_int_equal(u.err.retryable, 1);
    assert_true(ph_logged(HOST(f), "could not abort"));
    ph_sleep_ms(300); /* let the resumed server drain what was queued */
    assert_no_object(u.name);
}

typedef struct worker {
    void *inst;
    const char *path;
    int id, ok;
} worker;

static void *worker_main(void *a) {
    worker *w = a;
    char name[64];
    vx_error err;

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "2026/12/04/sess_w%d_%d.wav", w->id, i);
        w->ok += upload_path(w->inst, w->path, name, &err) == VX_OK;
    }
    return NULL;
}

static void test_concurrent_uploads_from_4_threads_all_arrive(void **state) {
    ph_fixture *f = *state;
    void *s = SINK(f);
    const char *path = make_file(f, 100044, 18, 1);
    worker w[4];
    pthread_t t[4];
    char key[64];

    for (int i = 0; i < 4; i++) {
        w[i] = (worker){s, path, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].ok, 3);
        for (int j = 0; j < 3; j++) {
            snprintf(key, sizeof(key), "2026/12/04/sess_w%d_%d.wav", i, j);
            assert_object_is_file(key, path);
        }
    }
}

/* ---------------------------------------------------------------- on the wire */

/* A fake S3 on a thread: answers CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload and PUT like S3, and records for every request
 * whether x-amz-content-sha256 was the SHA-256 of the body it received. */
typedef struct wire {
    int lfd, port;
    volatile int stop;
    int requests, hashes_ok, signed_hash, parts;
    uint64_t part_bytes;
    char first_bad[400];
    char first_line[300], first_host[100]; /* of the first request */
    /* When set, every request is answered with this status and an S3 error
     * document naming code; error_in_complete answers Complete with 200
     * and an error document, as S3 may. */
    int status;
    const char *code;
    int error_in_complete;
    pthread_t thread;
} wire;

static void sha256_hex(const unsigned char *p, size_t n, char *out) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;

    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

static const char *header_value(const char *head, const char *name, char *out, size_t len) {
    size_t nl = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(out, len, "%.*s", (int)(e - v), v);
            return out;
        }
    }
    return NULL;
}

/* Read one request on fd; 0 when answered, -1 when the connection ended. */
static int wire_one(wire *w, int fd) {
    static const char created[] = "<InitiateMultipartUploadResult><UploadId>up+load/id=1"
                                  "</UploadId></InitiateMultipartUploadResult>";
    char head[16384] = "", v[256], hash[65], reply[512];
    size_t hl = 0, cl = 0, have;
    unsigned char *body;
    char *end;

    while (!(end = strstr(head, "\r\n\r\n"))) {
        ssize_t n = read(fd, head + hl, sizeof(head) - 1 - hl);
        if (n <= 0) return -1;
        hl += (size_t)n;
        head[hl] = '\0';
        if (hl == sizeof(head) - 1) return -1;
    }
    if (header_value(head, "Content-Length", v, sizeof(v))) cl = strtoul(v, NULL, 10);
    if (header_value(head, "Expect", v, sizeof(v)) && strcasecmp(v, "100-continue") == 0)
        if (write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 25) return -1;
    body = malloc(cl + 1);
    if (!body) return -1;
    have = hl - (size_t)(end + 4 - head);
    memcpy(body, end + 4, have);
    while (have < cl) {
        ssize_t n = read(fd, body + have, cl - have);
        if (n <= 0) {
            free(body);
            return -1;
        }
        have += (size_t)n;
    }
    sha256_hex(body, cl, hash);
    if (w->requests++ == 0) {
        snprintf(w->first_line, sizeof(w->first_line), "%.*s", (int)strcspn(head, "\r"), head);
        if (!header_value(head, "Host", w->first_host, sizeof(w->first_host)))
            w->first_host[0] = '\0';
    }
    if (header_value(head, "x-amz-content-sha256", v, sizeof(v)) && strcmp(v, hash) == 0)
        w->hashes_ok++;
    else if (!w->first_bad[0])
        snprintf(w->first_bad, sizeof(w->first_bad), "%.60s: header %.70s, body %s", head,
                 header_value(head, "x-amz-content-sha256", v, sizeof(v)) ? v : "(none)", hash);
    if (header_value(head, "Authorization", v, sizeof(v)) && strstr(v, "x-amz-content-sha256"))
        w->signed_hash++;
    if (w->status) {
        char doc[300];
        snprintf(doc, sizeof(doc), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
                 "</Code><Message>forced by the test</Message></Error>", w->code);
        snprintf(reply, sizeof(reply), "HTTP/1.1 %d Forced\r\nContent-Type: application/xml\r\n"
                 "Content-Length: %zu\r\n\r\n%s", w->status, strlen(doc), doc);
    } else if (w->error_in_complete && strncmp(head, "POST ", 5) == 0 &&
               strstr(head, "?uploadId=")) {
        static const char doc[] = "<Error><Code>InternalError</Code><Message>We encountered an "
                                  "internal error. Please try again.</Message></Error>";
        snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                 "Content-Length: %zu\r\n\r\n%s", sizeof(doc) - 1, doc);
    } else if (strncmp(head, "POST ", 5) == 0 && strstr(head, "?uploads= "))
        snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                 "Content-Length: %zu\r\n\r\n%s", sizeof(created) - 1, created);
    else if (strncmp(head, "PUT ", 4) == 0 && strstr(head, "partNumber=")) {
        w->parts++;
        w->part_bytes += cl;
        snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nETag: \"%.32s\"\r\n"
                 "Content-Length: 0\r\n\r\n", hash);
    } else
        snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    free(body);
    return write(fd, reply, strlen(reply)) == (ssize_t)strlen(reply) ? 0 : -1;
}

static void *wire_main(void *a) {
    wire *w = a;

    while (!w->stop) {
        struct pollfd p = {w->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(w->lfd, NULL, NULL);
        if (fd < 0) continue;
        while (!w->stop && wire_one(w, fd) == 0)
            ;
        close(fd);
    }
    return NULL;
}

/* Start the fake S3 on a free loopback port (w zeroed, its answer fields
 * set); returns the port. */
static int wire_start(wire *w) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);

    w->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(w->lfd >= 0);
    assert_int_equal(bind(w->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(w->lfd, 8), 0);
    assert_int_equal(getsockname(w->lfd, (struct sockaddr *)&sa, &sl), 0);
    assert_int_equal(pthread_create(&w->thread, NULL, wire_main, w), 0);
    return w->port = ntohs(sa.sin_port);
}

static void wire_stop(wire *w) {
    w->stop = 1;
    pthread_join(w->thread, NULL);
    close(w->lfd);
    if (w->first_bad[0]) fprintf(stderr, "# %s\n", w->first_bad);
}

static void test_every_request_carries_the_real_sha256_of_its_body(void **state) {
    ph_fixture *f = *state;
    wire w = {0};
    char endpoint[64];
    void *s;
    const char *small = make_file(f, 3000, 19, 1), *big = make_file(f, 12 * MiB + 7, 20, 1);
    vx_error err;

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", wire_start(&w));
    s = SINK(f, "endpoint", endpoint, "multipart_threshold", "5242880", "part_size", "5242880");
    int rc1 = upload_path(s, small, "2026/12/04/sess_wire.wav", &err);
    int rc2 = upload_path(s, big, "2026/12/04/sess_wire_mp.wav", &err);
    wire_stop(&w);
    assert_int_equal(rc1, VX_OK);
    assert_int_equal(rc2, VX_OK);
    /* PUT, then Create, 3 parts of 5 + 5 + 2 MiB and Complete. */
    assert_int_equal(w.requests, 6);
    assert_int_equal(w.hashes_ok, 6);
    assert_int_equal(w.signed_hash, 6);
    assert_int_equal(w.parts, 3);
    assert_int_equal(w.part_bytes, 12 * MiB + 7);
}

static void test_s3_error_answers_map_to_codes_and_retryability(void **state) {
    static const struct {
        int status;
        const char *code;
        int vx, retryable;
    } cases[] = {
        {403, "AccessDenied", VX_EAUTH, 0},
        {401, "Unauthorized", VX_EAUTH, 0},
        {400, "ExpiredToken", VX_EAUTH, 0},
        {400, "InvalidArgument", VX_EINVAL, 0},
        {400, "RequestTimeout", VX_ETIMEDOUT, 1},
        {404, "NoSuchBucket", VX_EINVAL, 0},
        {429, "TooManyRequests", VX_ERATELIMIT, 1},
        {503, "SlowDown", VX_ERATELIMIT, 1},
        {503, "ServiceUnavailable", VX_EUNAVAIL, 1},
        {500, "InternalError", VX_EUNAVAIL, 1},
        {502, "BadGateway", VX_EUNAVAIL, 1},
    };
    ph_fixture *f = *state;
    const char *path = make_file(f, 3000, 23, 1);
    char endpoint[64], want[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wire w = {.status = cases[i].status, .code = cases[i].code};
        vx_error err;
        void *s;

        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", wire_start(&w));
        s = SINK(f, "endpoint", endpoint);
        int rc = upload_path(s, path, "2026/12/04/sess_err.wav", &err);
        wire_stop(&w);
        plug->shutdown(s); /* the fixture has room for 4 instances only */
        f->inst[--f->n_inst] = NULL;
        ph_host_release(&f->hosts[f->n_inst]);
        fprintf(stderr, "# %d %s -> %d retryable %d: %s\n", cases[i].status, cases[i].code, rc,
                err.retryable, err.msg);
        assert_int_equal(rc, cases[i].vx);
        assert_int_equal(err.code, cases[i].vx);
        assert_int_equal(err.retryable, cases[i].retryable);
        assert_int_equal(err.upstream_status, cases[i].status);
        snprintf(want, sizeof(want), "%d %s", cases[i].status, cases[i].code);
        assert_non_null(strstr(err.msg, want));
    }
}

static void test_error_inside_a_200_complete_answer_fails_and_aborts(void **state) {
    ph_fixture *f = *state;
    wire w = {.error_in_complete = 1};
    char endpoint[64];
    const char *path = make_file(f, 6 * MiB, 24, 1);
    void *s;
    vx_error err;

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", wire_start(&w));
    s = SINK(f, "endpoint", endpoint, "multipart_threshold", "5242880");
    int rc = upload_path(s, path, "2026/12/04/sess_complete.wav", &err);
    wire_stop(&w);
    assert_int_equal(rc, VX_EUNAVAIL);
    assert_int_equal(err.retryable, 1);
    assert_non_null(strstr(err.msg, "InternalError"));
    /* Create, one part, Complete, then the abort. */
    assert_int_equal(w.requests, 4);
    assert_false(ph_logged(HOST(f), "could not abort"));
}

/* The local S3 server cannot check virtual-host requests (see s3rver.mjs),
 * so the fake one shows where they go: curl resolves *.localhost itself. */
static void test_virtual_host_style_puts_the_bucket_in_the_host_name(void **state) {
    ph_fixture *f = *state;
    wire w = {0};
    char endpoint[64], host[100];
    void *s;
    const char *path = make_file(f, 3000, 22, 1);
    vx_error err;

    snprintf(endpoint, sizeof(endpoint), "http://localhost:%d", wire_start(&w));
    s = SINK(f, "endpoint", endpoint, "path_style", "false", "prefix", "p");
    int rc = upload_path(s, path, "2026/12/04/sess_vhost.wav", &err);
    wire_stop(&w);
    assert_int_equal(rc, VX_OK);
    assert_string_equal(w.first_line, "PUT /p/2026/12/04/sess_vhost.wav HTTP/1.1");
    snprintf(host, sizeof(host), BUCKET ".localhost:%d", w.port);
    assert_string_equal(w.first_host, host);
}

/* ---------------------------------------------------------------- conformance */

static void test_voxray_plugin_check_passes_against_the_test_server(void **state) {
    ph_fixture *f = *state;
    const char *path = make_file(f, 64044, 21, 1);
    char out[] = "/tmp/vx_s3_check_XXXXXX", c_endpoint[96], line[512];
    char *argv[] = {PLUGIN_CHECK, "--config", c_endpoint, "--config", "bucket=" BUCKET,
                    "--config", "path_style=true", "--config", "access_key_id=" KEY_ID,
                    "--config", "secret_access_key=" SECRET, "--config", "prefix=checker",
                    "--recording", (char *)path, PLUGIN_SO, NULL};
    int fd = mkstemp(out), st = -1, passed = 0;
    pid_t pid;
    FILE *fp;

    assert_true(fd >= 0);
    ph_fx_remove_later(f, out);
    snprintf(c_endpoint, sizeof(c_endpoint), "endpoint=%s", srv_endpoint);
    /* Its TAP goes to a file: on our stdout it would count as our own. */
    pid = ph_child_start(argv, fd, SIGKILL);
    close(fd);
    assert_true(pid > 0);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    assert_non_null(fp = fopen(out, "r"));
    while (fgets(line, sizeof(line), fp)) {
        fprintf(stderr, "#   | %s", line);
        passed |= strncmp(line, "ok ", 3) == 0 && strstr(line, "sink: upload") != NULL;
    }
    fclose(fp);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(passed);
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_sink_with_secret_credentials),
        T(test_small_wav_arrives_byte_identical_under_prefix_and_name),
        T(test_object_keeps_content_type_and_safe_metadata),
        T(test_older_minor_recording_gets_the_derived_date_name),
        T(test_older_minor_json_sidecar_gets_the_json_extension),
        T(test_file_above_threshold_goes_multipart_and_arrives_byte_identical),
        T(test_file_at_threshold_is_one_put),
        T(test_every_request_carries_the_real_sha256_of_its_body),
        T(test_virtual_host_style_puts_the_bucket_in_the_host_name),
        T(test_s3_error_answers_map_to_codes_and_retryability),
        T(test_error_inside_a_200_complete_answer_fails_and_aborts),
        T(test_wrong_secret_is_eauth_not_retryable_and_never_shown),
        T(test_wrong_secret_on_a_multipart_upload_is_eauth_too),
        T(test_server_down_is_retryable_eunavail_within_the_connect_timeout),
        T(test_missing_bucket_is_not_retryable),
        T(test_missing_file_is_einval_not_retryable),
        T(test_unsafe_name_is_einval_and_sends_nothing),
        T(test_same_upload_twice_is_idempotent),
        T(test_same_multipart_upload_twice_is_idempotent),
        T(test_health_reports_ok_after_success_and_failing_after_failure),
        T(test_health_does_no_network_io),
        T(test_init_without_credentials_fails_with_a_message),
        T(test_init_with_a_key_id_but_no_secret_fails),
        T(test_init_rejects_a_bad_endpoint),
        T(test_credentials_from_aws_environment_variables_work),
        T(test_session_token_is_sent_signed_and_accepted),
        T(test_concurrent_uploads_from_4_threads_all_arrive),
        T(test_multipart_failure_part_way_leaves_no_object),
        T(test_voxray_plugin_check_passes_against_the_test_server),
    };
#undef T
    int failed;

    /* Hermetic: credentials come only from what each test sets. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    atexit(srv_kill);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(plug = ph_plugin_load(PLUGIN_SO, &dl))) {
        fprintf(stderr, "cannot load %s\n", PLUGIN_SO);
        return 1;
    }
    failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    ph_plugin_unload(dl);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
