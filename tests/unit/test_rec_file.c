/*
 * The file recording sink, tested through its built .so exactly as the host
 * loads it: dlopen, vx_plugin_entry, init with a config, then upload and
 * health. Every test gets a fresh folder under /tmp and removes it. Tests
 * run as root here, so unwritable destinations are made with what stops
 * root too: a file where a folder must be, a file size limit (RLIMIT_FSIZE,
 * in a forked child) for a full disk.
 */
#define _GNU_SOURCE /* timegm */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#include "plugin_harness.h"

#ifndef REC_FILE_SO
#error "REC_FILE_SO must name the built rec_file.so"
#endif

static void *rf_dl;
static const vx_plugin_info *rf;

/* ---------------------------------------------------------------- fixture */

typedef struct fx {
    ph_fixture *f;
    char root[64]; /* scratch folder of this test, removed at teardown */
    char dir[96];  /* root/rec: the sink's folder */
} fx;

static int fx_setup(void **state) {
    fx *x = calloc(1, sizeof(*x));

    if (!x || !(x->f = ph_fx_new(rf))) {
        free(x);
        return -1;
    }
    snprintf(x->root, sizeof(x->root), "/tmp/test_rec_file_XXXXXX");
    if (!mkdtemp(x->root)) return -1;
    snprintf(x->dir, sizeof(x->dir), "%s/rec", x->root);
    if (mkdir(x->dir, 0755) != 0) return -1;
    *state = x;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int fx_teardown(void **state) {
    fx *x = *state;

    ph_fx_free(x->f);
    nftw(x->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(x);
    return 0;
}

/* An instance that must init; pairs of key, value end with NULL. */
static void *inst(fx *x, ...) {
    va_list ap;
    size_t i;

    va_start(ap, x);
    i = ph_fx_vinst(x->f, "file", ap);
    va_end(ap);
    return x->f->inst[i];
}

/* Init that may fail: its code, err filled. */
static int init_rc(fx *x, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = ph_fx_vinit(x->f, "file", err, ap);
    va_end(ap);
    return rc;
}

/* ---------------------------------------------------------------- files */

/* A file of n bytes at root/name whose content depends on seed. */
static const char *make_src(fx *x, const char *name, size_t n, unsigned seed) {
    static char path[8][160];
    static int next;
    char *p = path[next++ % 8];
    FILE *fp;

    snprintf(p, sizeof(path[0]), "%s/%s", x->root, name);
    assert_non_null(fp = fopen(p, "wb"));
    for (size_t i = 0; i < n; i++) fputc((int)((i * 31 + seed * 7 + i / 251) & 0xff), fp);
    assert_int_equal(fclose(fp), 0);
    return p;
}

/* 1 when the files at a and b exist and hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb, same = fa && fb;

    while (same && ((ca = fgetc(fa)) != EOF) | ((cb = fgetc(fb)) != EOF)) same = ca == cb;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static char *tree_buf;
static size_t tree_len, tree_root_len;

static int tree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)ftw;
    if (strlen(path) <= tree_root_len) return 0;
    tree_len += (size_t)snprintf(tree_buf + tree_len, 8192 - tree_len, "%s%s\n",
                                 path + tree_root_len + 1, flag == FTW_D ? "/" : "");
    return tree_len >= 8192;
}

static int line_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything below dir, one path per line, sorted, folders ending in '/':
 * what a reader of the folder would find, hidden files included. */
static const char *tree(const char *dir) {
    static char out[8192];
    char buf[8192], *lines[256], *save = NULL;
    size_t n = 0;

    tree_buf = buf;
    tree_len = 0;
    tree_root_len = strlen(dir);
    buf[0] = '\0';
    nftw(dir, tree_one, 16, FTW_PHYS);
    for (char *l = strtok_r(buf, "\n", &save); l && n < 256; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof(lines[0]), line_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    return out;
}

static const char *at(fx *x, const char *name) {
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", x->dir, name);
    return p;
}

/* ---------------------------------------------------------------- uploads */

/* 2026-12-04 23:30:00 UTC: already 2026-12-05 east of UTC+0:30. */
static int64_t late_on_dec_4(void) {
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = 4, .tm_hour = 23,
                    .tm_min = 30};
    return (int64_t)timegm(&tm) * 1000;
}

static vx_recording recording(const char *src, const char *session, const char *type,
                              const char *name) {
    struct stat st;
    vx_recording r = {0};

    r.struct_size = sizeof(r);
    r.path = src;
    r.session_id = session;
    r.content_type = type;
    r.bytes = stat(src, &st) == 0 ? (uint64_t)st.st_size : 0;
    r.duration_s = 12.5;
    r.started_unix_ms = late_on_dec_4();
    r.name = name;
    return r;
}

static int upload(void *in, const vx_recording *r, vx_error *err) {
    memset(err, 0, sizeof(*err));
    return rf->sink->upload(in, r, err);
}

static void assert_has(const char *text, const char *needle) {
    if (!strstr(text, needle)) fail_msg("'%s' not in '%s'", needle, text);
}

/* ================================================================ tests */

static void test_descriptor_is_a_sink_named_rec_file_with_health(void **state) {
    const char *keys[] = {"dir", "fsync", "file_mode", "dir_mode"};
    const char *defs[] = {"/var/lib/voxray/recordings", "true", "0640", "0750"};

    (void)state;
    assert_int_equal(rf->kinds, VX_KIND_SINK);
    assert_string_equal(rf->name, "rec_file");
    assert_int_equal(rf->abi_major, VX_ABI_MAJOR);
    assert_int_equal(rf->abi_minor, VX_ABI_MINOR);
    assert_non_null(rf->sink);
    assert_non_null(rf->sink->upload);
    assert_non_null(rf->health);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const vx_config_key *k = rf->config;
        while (k->key && strcmp(k->key, keys[i]) != 0) k++;
        assert_non_null(k->key);
        assert_string_equal(k->def, defs[i]);
    }
}

static void test_wav_and_json_are_byte_identical_copies_at_their_dated_names(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 300000, 1), *json = make_src(x, "in.json", 700, 2);
    vx_recording rw = recording(wav, "sess_abc", "audio/wav", "2026/12/04/sess_abc.wav");
    vx_recording rj = recording(json, "sess_abc", "application/json", "2026/12/04/sess_abc.json");
    vx_error err;

    assert_int_equal(upload(in, &rw, &err), VX_OK);
    assert_int_equal(upload(in, &rj, &err), VX_OK);
    assert_true(same_bytes(wav, at(x, "2026/12/04/sess_abc.wav")));
    assert_true(same_bytes(json, at(x, "2026/12/04/sess_abc.json")));
    assert_true(access(wav, F_OK) == 0); /* the host deletes its copy, not the sink */
}

static void test_older_minor_derives_the_same_layout_from_the_utc_start(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 4000, 3), *json = make_src(x, "in.json", 90, 4);
    /* A 1.1 host's struct ends before `name`; whatever follows must not be read. */
    vx_recording rw = recording(wav, "sess_old", "audio/wav", "wrong/place.wav");
    vx_recording rj = recording(json, "sess_old", "application/json", "wrong/place.json");
    char *tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    vx_error err;
    int rc_w, rc_j;

    rw.struct_size = rj.struct_size = VX_RECORDING_SIZE_1_2 - sizeof(char *);
    setenv("TZ", "XST-14", 1); /* UTC+14: local time is already December 5th */
    tzset();
    rc_w = upload(in, &rw, &err);
    rc_j = upload(in, &rj, &err);
    if (tz) setenv("TZ", tz, 1);
    else unsetenv("TZ");
    tzset();
    free(tz);

    assert_int_equal(rc_w, VX_OK);
    assert_int_equal(rc_j, VX_OK);
    assert_true(same_bytes(wav, at(x, "2026/12/04/sess_old.wav")));
    assert_true(same_bytes(json, at(x, "2026/12/04/sess_old.json")));
    assert_string_equal(tree(x->dir), "2026/\n2026/12/\n2026/12/04/\n"
                                      "2026/12/04/sess_old.json\n2026/12/04/sess_old.wav\n");
}

static void test_repeated_upload_replaces_the_file_and_succeeds(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *first = make_src(x, "a.wav", 5000, 5), *second = make_src(x, "b.wav", 3000, 6);
    vx_recording r1 = recording(first, "sess_r", "audio/wav", "2026/12/04/sess_r.wav");
    vx_recording r2 = recording(second, "sess_r", "audio/wav", "2026/12/04/sess_r.wav");
    vx_error err;

    assert_int_equal(upload(in, &r1, &err), VX_OK);
    assert_int_equal(upload(in, &r1, &err), VX_OK);
    assert_true(same_bytes(first, at(x, "2026/12/04/sess_r.wav")));
    assert_int_equal(upload(in, &r2, &err), VX_OK);
    assert_true(same_bytes(second, at(x, "2026/12/04/sess_r.wav")));
    assert_string_equal(tree(x->dir), "2026/\n2026/12/\n2026/12/04/\n2026/12/04/sess_r.wav\n");
}

static void test_no_temporary_file_remains_after_success(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 100000, 7);
    vx_recording r = recording(wav, "sess_t", "audio/wav", "2026/12/04/sess_t.wav");
    vx_error err;

    assert_int_equal(upload(in, &r, &err), VX_OK);
    assert_string_equal(tree(x->dir), "2026/\n2026/12/\n2026/12/04/\n2026/12/04/sess_t.wav\n");
}

/* What the child of the full-disk test reports. */
typedef struct child_result {
    int rc;
    vx_error err;
} child_result;

static void test_full_disk_is_retryable_unavail_and_leaves_no_file(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "big.wav", 256 * 1024, 8);
    vx_recording r = recording(wav, "sess_full", "audio/wav", "2026/12/04/sess_full.wav");
    child_result res = {0};
    int fds[2], st;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Files may not grow past 64 KiB: writes beyond fail with EFBIG, as
         * they fail with ENOSPC on a full disk, whoever the user is. */
        struct rlimit rl = {64 * 1024, 64 * 1024};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        res.rc = rf->sink->upload(in, &r, &res.err);
        _exit(write(fds[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 3);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &res, sizeof(res)), (ssize_t)sizeof(res));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    assert_int_equal(res.rc, VX_EUNAVAIL);
    assert_int_equal(res.err.code, VX_EUNAVAIL);
    assert_true(res.err.retryable);
    assert_has(res.err.msg, at(x, "2026/12/04/sess_full.wav"));
    assert_has(res.err.msg, strerror(EFBIG));
    assert_string_equal(tree(x->dir), "2026/\n2026/12/\n2026/12/04/\n");
}

static void test_destination_that_cannot_be_created_fails_clearly_without_leftovers(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 1000, 9);
    vx_recording r = recording(wav, "sess_b", "audio/wav", "2026/12/04/sess_b.wav");
    char blocker[160];
    vx_error err;
    FILE *fp;

    /* A file where the year folder must be: stops root as well. */
    snprintf(blocker, sizeof(blocker), "%s/2026", x->dir);
    assert_non_null(fp = fopen(blocker, "w"));
    fclose(fp);

    assert_int_not_equal(upload(in, &r, &err), VX_OK);
    assert_int_equal(err.code, VX_EUNAVAIL);
    assert_false(err.retryable);
    assert_has(err.msg, blocker);
    assert_has(err.msg, strerror(ENOTDIR));
    assert_string_equal(tree(x->dir), "2026\n");
}

static void test_name_that_leaves_the_folder_is_refused(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 1000, 10);
    const char *bad[] = {"2026/../../escape.wav", "../escape.wav", "2026/12/..", "/tmp/escape.wav"};
    char before[8192];
    vx_error err;

    snprintf(before, sizeof(before), "%s", tree(x->root));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vx_recording r = recording(wav, "sess_e", "audio/wav", bad[i]);
        assert_int_equal(upload(in, &r, &err), VX_EINVAL);
        assert_int_equal(err.code, VX_EINVAL);
        assert_false(err.retryable);
        assert_has(err.msg, bad[i]);
    }
    assert_string_equal(tree(x->root), before);
    assert_int_equal(access("/tmp/escape.wav", F_OK), -1);
}

static void test_missing_source_file_is_einval_not_retryable(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    char missing[160];
    vx_recording r;
    vx_error err;

    snprintf(missing, sizeof(missing), "%s/never-written.wav", x->root);
    r = recording(missing, "sess_m", "audio/wav", "2026/12/04/sess_m.wav");
    assert_int_equal(upload(in, &r, &err), VX_EINVAL);
    assert_int_equal(err.code, VX_EINVAL);
    assert_false(err.retryable);
    assert_has(err.msg, missing);
    assert_has(err.msg, strerror(ENOENT));
    assert_int_equal(access(at(x, "2026/12/04/sess_m.wav"), F_OK), -1);
}

static void test_recording_that_already_is_the_destination_is_refused(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 2000, 11);
    vx_recording r = recording(wav, "sess_s", "audio/wav", "2026/12/04/sess_s.wav");
    vx_recording self;
    vx_error err;

    assert_int_equal(upload(in, &r, &err), VX_OK);
    /* The host would delete its local file after VX_OK: here that is the upload. */
    self = recording(at(x, "2026/12/04/sess_s.wav"), "sess_s", "audio/wav",
                     "2026/12/04/sess_s.wav");
    assert_int_equal(upload(in, &self, &err), VX_EINVAL);
    assert_false(err.retryable);
    assert_true(same_bytes(wav, at(x, "2026/12/04/sess_s.wav")));
}

static void test_folder_that_does_not_exist_is_retryable_and_not_created(void **state) {
    fx *x = *state;
    char unmounted[160];
    void *in;
    const char *wav = make_src(x, "in.wav", 1000, 12);
    vx_recording r = recording(wav, "sess_u", "audio/wav", "2026/12/04/sess_u.wav");
    vx_error err;

    snprintf(unmounted, sizeof(unmounted), "%s/not-mounted", x->root);
    in = inst(x, "dir", unmounted, NULL);
    assert_true(ph_logged(&x->f->hosts[0], "not-mounted"));
    assert_int_equal(upload(in, &r, &err), VX_EUNAVAIL);
    assert_true(err.retryable);
    assert_has(err.msg, unmounted);
    assert_has(err.msg, "does not exist");
    assert_int_equal(access(unmounted, F_OK), -1);
}

static void test_relative_dir_is_refused_at_init(void **state) {
    fx *x = *state;
    vx_error err = {0};

    assert_int_equal(init_rc(x, &err, "dir", "var/recordings", NULL), VX_EINVAL);
    assert_int_equal(err.code, VX_EINVAL);
    assert_has(err.msg, "var/recordings");
    assert_has(err.msg, "absolute");
}

static void test_malformed_modes_are_refused_at_init(void **state) {
    fx *x = *state;
    vx_error err = {0};

    assert_int_equal(init_rc(x, &err, "dir", x->dir, "file_mode", "0689", NULL), VX_EINVAL);
    assert_has(err.msg, "file_mode '0689'");
    memset(&err, 0, sizeof(err));
    assert_int_equal(init_rc(x, &err, "dir", x->dir, "file_mode", "rw-r", NULL), VX_EINVAL);
    memset(&err, 0, sizeof(err));
    assert_int_equal(init_rc(x, &err, "dir", x->dir, "dir_mode", "0640", NULL), VX_EINVAL);
    assert_has(err.msg, "dir_mode '0640'");
}

static void test_files_and_created_folders_get_the_configured_modes_whatever_the_umask(
    void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, "file_mode", "0604", "dir_mode", "0755", NULL);
    const char *wav = make_src(x, "in.wav", 1000, 13);
    vx_recording r = recording(wav, "sess_p", "audio/wav", "2026/12/04/sess_p.wav");
    const char *dirs[] = {"2026", "2026/12", "2026/12/04"};
    mode_t old = umask(077);
    struct stat st;
    vx_error err;
    int rc = upload(in, &r, &err);

    umask(old);
    assert_int_equal(rc, VX_OK);
    assert_int_equal(stat(at(x, "2026/12/04/sess_p.wav"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0604);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(stat(at(x, dirs[i]), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
    }
}

static void test_without_fsync_the_copy_is_the_same(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, "fsync", "false", NULL);
    const char *wav = make_src(x, "in.wav", 70000, 14);
    vx_recording r = recording(wav, "sess_n", "audio/wav", "2026/12/04/sess_n.wav");
    vx_error err;

    assert_int_equal(upload(in, &r, &err), VX_OK);
    assert_true(same_bytes(wav, at(x, "2026/12/04/sess_n.wav")));
    assert_string_equal(tree(x->dir), "2026/\n2026/12/\n2026/12/04/\n2026/12/04/sess_n.wav\n");
}

static void test_health_reports_ok_with_the_free_space(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    char buf[256], want[160];
    regex_t re;

    assert_int_equal(rf->health(in, buf, sizeof(buf)), VX_OK);
    assert_int_equal(regcomp(&re, "^ok: [0-9.]+ (B|KiB|MiB|GiB|TiB|PiB) free in ",
                             REG_EXTENDED), 0);
    if (regexec(&re, buf, 0, NULL, 0) != 0) fail_msg("health says '%s'", buf);
    regfree(&re);
    snprintf(want, sizeof(want), "free in %s", x->dir);
    assert_has(buf, want);
}

static void test_health_fails_when_the_folder_is_removed(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    char buf[256];

    assert_int_equal(rf->health(in, buf, sizeof(buf)), VX_OK);
    assert_int_equal(rmdir(x->dir), 0);
    assert_int_equal(rf->health(in, buf, sizeof(buf)), VX_EUNAVAIL);
    assert_has(buf, x->dir);
    assert_has(buf, strerror(ENOENT));
}

static void test_health_shows_the_outcome_of_the_last_upload(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    const char *wav = make_src(x, "in.wav", 1000, 15);
    vx_recording ok = recording(wav, "sess_h", "audio/wav", "2026/12/04/sess_h.wav");
    vx_recording bad = recording("/nonexistent/x.wav", "sess_h", "audio/wav",
                                 "2026/12/04/sess_h.wav");
    char buf[512];
    vx_error err;

    assert_int_equal(upload(in, &ok, &err), VX_OK);
    assert_int_equal(rf->health(in, buf, sizeof(buf)), VX_OK);
    assert_has(buf, "last upload ok");
    assert_int_equal(upload(in, &bad, &err), VX_EINVAL);
    assert_int_equal(rf->health(in, buf, sizeof(buf)), VX_OK); /* the folder is fine */
    assert_has(buf, "last upload failed");
    assert_has(buf, "/nonexistent/x.wav");
}

/* One upload thread of the concurrency test. */
typedef struct uploader {
    pthread_barrier_t *go;
    void *in;
    vx_recording rec;
    char name[64], session[16];
    int rc;
    vx_error err;
} uploader;

static void *upload_main(void *arg) {
    uploader *u = arg;

    pthread_barrier_wait(u->go);
    u->rc = rf->sink->upload(u->in, &u->rec, &u->err);
    return NULL;
}

static void test_eight_threads_upload_into_one_new_date_folder(void **state) {
    fx *x = *state;
    void *in = inst(x, "dir", x->dir, NULL);
    enum { N = 8 };
    uploader u[N];
    pthread_t t[N];
    pthread_barrier_t go;
    char want[2048] = "2026/\n2026/12/\n2026/12/04/\n";

    assert_int_equal(pthread_barrier_init(&go, NULL, N), 0);
    memset(u, 0, sizeof(u));
    for (int i = 0; i < N; i++) {
        char src[16];
        snprintf(src, sizeof(src), "in%d.wav", i);
        snprintf(u[i].session, sizeof(u[i].session), "sess_%d", i);
        snprintf(u[i].name, sizeof(u[i].name), "2026/12/04/sess_%d.wav", i);
        u[i].go = &go;
        u[i].in = in;
        u[i].rec = recording(make_src(x, src, 40000 + (size_t)i * 1000, 20 + (unsigned)i),
                             u[i].session, "audio/wav", u[i].name);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, upload_main, &u[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);

    for (int i = 0; i < N; i++) {
        if (u[i].rc != VX_OK) fail_msg("upload %d: %d %s", i, u[i].rc, u[i].err.msg);
        assert_true(same_bytes(u[i].rec.path, at(x, u[i].name)));
        strcat(want, u[i].name);
        strcat(want, "\n");
    }
    assert_string_equal(tree(x->dir), want);
}

/* ================================================================ main */

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_sink_named_rec_file_with_health),
        T(test_wav_and_json_are_byte_identical_copies_at_their_dated_names),
        T(test_older_minor_derives_the_same_layout_from_the_utc_start),
        T(test_repeated_upload_replaces_the_file_and_succeeds),
        T(test_no_temporary_file_remains_after_success),
        T(test_full_disk_is_retryable_unavail_and_leaves_no_file),
        T(test_destination_that_cannot_be_created_fails_clearly_without_leftovers),
        T(test_name_that_leaves_the_folder_is_refused),
        T(test_missing_source_file_is_einval_not_retryable),
        T(test_recording_that_already_is_the_destination_is_refused),
        T(test_folder_that_does_not_exist_is_retryable_and_not_created),
        T(test_relative_dir_is_refused_at_init),
        T(test_malformed_modes_are_refused_at_init),
        T(test_files_and_created_folders_get_the_configured_modes_whatever_the_umask),
        T(test_without_fsync_the_copy_is_the_same),
        T(test_health_reports_ok_with_the_free_space),
        T(test_health_fails_when_the_folder_is_removed),
        T(test_health_shows_the_outcome_of_the_last_upload),
        T(test_eight_threads_upload_into_one_new_date_folder),
    };
#undef T
    int failed;

    rf = ph_plugin_load(REC_FILE_SO, &rf_dl);
    if (!rf) return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    ph_plugin_unload(rf_dl);
    return failed ? 1 : 0;
}
