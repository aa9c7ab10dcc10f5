/*
 * Plugin loader: which plugins load, which are refused, and the one line that
 * tells the operator why. The plugins live in tests/plugins, one per case.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugin/loader.h"
#include "plugin_harness.h"

#ifndef TEST_PLUGIN_DIR
#error "TEST_PLUGIN_DIR must name the directory of the built test plugins"
#endif

/* ------------------------------------------------------------ fixtures */

/* A scratch tree, made once per run:
 *   empty/                no plugins at all
 *   shadow/good_store.so  a second copy of good_store, earlier on a path
 *   scan/                 bad_magic.so, good_store.so, junk.so, notes.txt */
static char tmp[64];

static void path_in(char *buf, size_t len, const char *a, const char *b) {
    snprintf(buf, len, "%s/%s%s%s", tmp, a, b ? "/" : "", b ? b : "");
}

static void link_plugin(const char *dir, const char *name) {
    char src[512], dst[512];

    snprintf(src, sizeof(src), "%s/%s.so", TEST_PLUGIN_DIR, name);
    snprintf(dst, sizeof(dst), "%s/%s/%s.so", tmp, dir, name);
    assert_int_equal(symlink(src, dst), 0);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char f[512];
    FILE *fp;

    path_in(f, sizeof(f), dir, name);
    fp = fopen(f, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state) {
    static const char *dirs[] = { "empty", "shadow", "scan" };
    char d[512];
    size_t i;

    snprintf(tmp, sizeof(tmp), "/tmp/test_loader.XXXXXX");
    if (mkdtemp(tmp) == NULL) return -1;
    for (i = 0; i < 3; i++) {
        path_in(d, sizeof(d), dirs[i], NULL);
        if (mkdir(d, 0700) != 0) return -1;
    }
    link_plugin("shadow", "good_store");
    link_plugin("scan", "good_store");
    link_plugin("scan", "bad_magic");
    write_file("scan", "junk.so", "this is not an ELF file\n");
    write_file("scan", "notes.txt", "ignored: not a .so\n");
    return 0;
}

static int teardown(void **state) {
    static const char *files[][2] = {
        { "shadow", "good_store.so" }, { "scan", "good_store.so" },
        { "scan", "bad_magic.so" },    { "scan", "junk.so" },
        { "scan", "notes.txt" },       { "empty", NULL },
        { "shadow", NULL },            { "scan", NULL },
    };
    char f[512];
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        path_in(f, sizeof(f), files[i][0], files[i][1]);
        if (files[i][1]) unlink(f);
        else rmdir(f);
    }
    rmdir(tmp);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static char err[1024];
static char file[512];

/* Load tests/plugins/.libs/NAME.so; the path is left in `file`, the reason
 * in `err`. */
static loader_plugin *load(const char *name) {
    snprintf(file, sizeof(file), "%s/%s.so", TEST_PLUGIN_DIR, name);
    memset(err, 'x', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    return loader_open_file(file, &ph_api, err, sizeof(err));
}

#define assert_has(hay, needle) \
    do { \
        if (strstr((hay), (needle)) == NULL) \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay)); \
    } while (0)

/* A refusal: NULL, one line that names the file, plus the given words. */
static void assert_refused(loader_plugin *p, const char *name, ...) {
    va_list ap;
    const char *w;

    assert_null(p);
    assert_has(err, file);
    assert_null(strchr(err, '\n'));
    if (strncmp(err, "plugin ", 7) != 0) fail_msg("no 'plugin ' prefix: %s", err);
    va_start(ap, name);
    while ((w = va_arg(ap, const char *)) != NULL) assert_has(err, w);
    va_end(ap);
}

static const char *fmt(const char *f, ...) VX_PRINTF(1, 2);
static const char *fmt(const char *f, ...) {
    static char buf[4][256];
    static int n;
    va_list ap;
    char *b = buf[n++ % 4];

    va_start(ap, f);
    vsnprintf(b, sizeof(buf[0]), f, ap);
    va_end(ap);
    return b;
}

/* ------------------------------------------------------------ accepted */

static void test_valid_store_loads_with_its_vtable_copied(void **state) {
    loader_plugin *p = load("good_store");

    assert_non_null(p);
    assert_string_equal(err, "");
    assert_string_equal(p->path, file);
    assert_string_equal(p->info.name, "good_store");
    assert_string_equal(p->info.version, "1.0.0");
    assert_int_equal(p->info.kinds, VX_KIND_STORE);
    assert_int_equal(p->info.abi_minor, VX_ABI_MINOR);
    /* The host reads its own copy, never the plugin's struct. */
    assert_ptr_equal(p->info.store, &p->store);
    assert_int_equal(p->store.struct_size, sizeof(vx_store_vtable));
    assert_non_null(p->store.get);
    assert_non_null(p->store.put);
    assert_non_null(p->store.del);
    assert_non_null(p->store.ping);
    assert_non_null(p->info.health);
    assert_null(p->info.stt);
    assert_null(p->info.llm);
    assert_null(p->info.tts);
    assert_null(p->info.sink);
    loader_close(p);
}

static void test_copied_store_vtable_works_through_an_instance(void **state) {
    loader_plugin *p = load("good_store");
    vx_config cfg = { sizeof(vx_config), "mem", NULL, 0 };
    vx_error e;
    void *inst, *val = NULL;
    size_t len = 0;
    char status[64];

    assert_non_null(p);
    assert_int_equal(loader_instance_init(p, &ph_api, NULL, &cfg, &inst, err,
                                          sizeof(err)), VX_OK);
    assert_string_equal(err, "");
    assert_non_null(inst);
    memset(&e, 0, sizeof(e));
    assert_int_equal(p->info.store->put(inst, "k", "abc", 3, 0, &e), VX_OK);
    assert_int_equal(p->info.store->get(inst, "k", &val, &len, &e), VX_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(val, "abc", 3);
    ph_api.free(val);
    assert_int_equal(p->info.store->del(inst, "k", &e), VX_OK);
    assert_int_equal(p->info.store->get(inst, "k", &val, &len, &e), VX_ENOTFOUND);
    assert_int_equal(p->info.store->ping(inst, &e), VX_OK);
    assert_int_equal(p->info.health(inst, status, sizeof(status)), VX_OK);
    p->info.shutdown(inst);
    loader_close(p);
}

static void test_older_minor_is_accepted_and_health_reads_null(void **state) {
    loader_plugin *p = load("old_minor");

    assert_non_null(p);
    assert_int_equal(p->info.abi_minor, 0);
    assert_int_equal(p->info.struct_size, VX_PLUGIN_INFO_SIZE_1_0);
    /* The plugin's static struct has health set past its struct_size. */
    assert_null(p->info.health);
    assert_ptr_equal(p->info.tts, &p->tts);
    assert_non_null(p->tts.synthesize);
    loader_close(p);
}

static void test_one_plugin_may_offer_three_kinds(void **state) {
    loader_plugin *p = load("multi_kind");
    char kinds[64];
    size_t n = 0;

    assert_non_null(p);
    assert_string_equal(loader_kinds_str(p->info.kinds, kinds, sizeof(kinds)),
                        "stt,llm,tts");
    assert_ptr_equal(p->info.stt, &p->stt);
    assert_ptr_equal(p->info.llm, &p->llm);
    assert_ptr_equal(p->info.tts, &p->tts);
    assert_non_null(p->stt.feed);
    assert_non_null(p->llm.generate);
    assert_non_null(p->tts.synthesize);
    assert_null(p->info.store);
    assert_null(p->info.sink);
    assert_non_null(p->info.config);
    while (p->info.config[n].key) n++;
    assert_int_equal(n, 8);
    assert_string_equal(p->info.config[0].key, "api_key");
    assert_int_equal(p->info.config[0].flags, VX_CFG_REQUIRED | VX_CFG_SECRET);
    loader_close(p);
}

/* ------------------------------------------------------------ refused */

static void test_missing_file_is_refused_with_the_dlopen_reason(void **state) {
    snprintf(file, sizeof(file), "%s/no_such_plugin.so", TEST_PLUGIN_DIR);
    assert_refused(loader_open_file(file, &ph_api, err, sizeof(err)), file,
                   "cannot load it", "No such file", NULL);
}

static void test_file_that_is_not_a_shared_object_is_refused(void **state) {
    path_in(file, sizeof(file), "scan", "junk.so");
    assert_refused(loader_open_file(file, &ph_api, err, sizeof(err)), file,
                   "cannot load it", NULL);
}

static void test_missing_entry_symbol_is_refused(void **state) {
    assert_refused(load("no_entry"), "no_entry", "exports no vx_plugin_entry",
                   "VX_EXPORT", NULL);
}

static void test_entry_returning_null_is_refused(void **state) {
    assert_refused(load("null_entry"), "null_entry", "returned NULL", NULL);
}

static void test_bad_magic_is_refused(void **state) {
    assert_refused(load("bad_magic"), "bad_magic",
                   "not a voxray plugin (bad magic 0x12345678, expected 0x31505856)",
                   NULL);
}

static void test_other_major_is_refused(void **state) {
    assert_refused(load("bad_major"), "bad_major", "built for plugin ABI 2.0",
                   fmt("this voxray speaks %d.%d", VX_ABI_MAJOR, VX_ABI_MINOR),
                   fmt("rebuild it against voxray-plugin %d.x", VX_ABI_MAJOR), NULL);
}

static void test_newer_minor_is_refused(void **state) {
    assert_refused(load("newer_minor"), "newer_minor", "built for plugin ABI 1.7",
                   fmt("newer than this voxray's %d.%d", VX_ABI_MAJOR, VX_ABI_MINOR),
                   "upgrade voxray",
                   fmt("voxray-plugin %d.%d", VX_ABI_MAJOR, VX_ABI_MINOR), NULL);
}

static void test_descriptor_smaller_than_abi_1_0_is_refused(void **state) {
    assert_refused(load("small_struct"), "small_struct",
                   fmt("descriptor is 16 bytes, ABI 1.0 needs at least %zu",
                       (size_t)VX_PLUGIN_INFO_SIZE_1_0),
                   "rebuild it against voxray-plugin 1.x", NULL);
}

static void test_missing_mandatory_method_is_refused(void **state) {
    assert_refused(load("missing_method"), "missing_method",
                   "stt vtable lacks mandatory method 'feed'; implement it", NULL);
}

static void test_descriptor_without_name_is_refused(void **state) {
    assert_refused(load("no_name"), "no_name", "no name", "\"no_name\"", NULL);
}

static void test_name_other_than_file_base_name_is_refused(void **state) {
    assert_refused(load("wrong_name"), "wrong_name", "'rec_s3'", "wrong_name.so",
                   "base name", NULL);
}

static void test_descriptor_without_kind_is_refused(void **state) {
    assert_refused(load("no_kinds"), "no_kinds", "no kind", "VX_KIND_", NULL);
}

static void test_unknown_kind_bit_is_refused(void **state) {
    assert_refused(load("unknown_kind"), "unknown_kind", "unknown kind bits 0x40",
                   NULL);
}

static void test_claimed_kind_without_vtable_is_refused(void **state) {
    assert_refused(load("null_vtable"), "null_vtable",
                   "claims kind tts but its tts vtable is NULL", NULL);
}

static void test_vtable_smaller_than_abi_1_0_is_refused(void **state) {
    assert_refused(load("small_vtable"), "small_vtable",
                   fmt("store vtable is 8 bytes, ABI 1.0 needs at least %zu",
                       sizeof(vx_store_vtable)),
                   "voxray-plugin 1.x", NULL);
}

static void test_enum_key_without_choices_is_refused(void **state) {
    assert_refused(load("bad_schema"), "bad_schema", "'format'", "without choices",
                   NULL);
}

/* ------------------------------------------------------------ path search */

static void test_search_skips_a_directory_without_the_file(void **state) {
    char path[1024], empty[512];
    loader_plugin *p;

    path_in(empty, sizeof(empty), "empty", NULL);
    snprintf(path, sizeof(path), "%s:%s", empty, TEST_PLUGIN_DIR);
    p = loader_open(path, "good_store", &ph_api, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(p->path, TEST_PLUGIN_DIR "/good_store.so");
    loader_close(p);
}

static void test_search_takes_the_first_directory_that_has_the_file(void **state) {
    char path[1024], shadow[512], want[512];
    loader_plugin *p;

    path_in(shadow, sizeof(shadow), "shadow", NULL);
    path_in(want, sizeof(want), "shadow", "good_store.so");
    snprintf(path, sizeof(path), "%s:%s", shadow, TEST_PLUGIN_DIR);
    p = loader_open(path, "good_store", &ph_api, err, sizeof(err));
    assert_non_null(p);
    assert_string_equal(p->path, want);
    loader_close(p);
}

static void test_search_reports_where_it_looked(void **state) {
    assert_null(loader_open("/a:/b", "foo", &ph_api, err, sizeof(err)));
    assert_string_equal(err, "plugin 'foo' not found in /a:/b (looked for foo.so); "
                             "check [server] plugin_dir");
}

static void test_search_refuses_a_name_with_a_slash(void **state) {
    assert_null(loader_open(TEST_PLUGIN_DIR, "../plugins/.libs/good_store", &ph_api,
                            err, sizeof(err)));
    assert_has(err, "not a plugin name");
}

static void test_search_passes_on_the_refusal_of_the_file_it_found(void **state) {
    assert_null(loader_open(TEST_PLUGIN_DIR, "bad_major", &ph_api, err, sizeof(err)));
    assert_has(err, "bad_major.so: built for plugin ABI 2.0");
}

/* ------------------------------------------------------------ scan */

typedef struct seen {
    int n;
    char file[4][512];
    int loaded[4];
    char why[4][512];
} seen;

static void on_file(void *user, const char *f, const loader_plugin *p, const char *why) {
    seen *s = user;

    if (s->n >= 4) {
        s->n++;
        return;
    }
    snprintf(s->file[s->n], sizeof(s->file[0]), "%s", f);
    s->loaded[s->n] = p != NULL;
    snprintf(s->why[s->n], sizeof(s->why[0]), "%s", why ? why : "");
    if (p) assert_string_equal(p->path, f);
    s->n++;
}

static void test_scan_reports_every_so_file_sorted(void **state) {
    seen s;
    char dir[512], path[1024];

    memset(&s, 0, sizeof(s));
    path_in(dir, sizeof(dir), "scan", NULL);
    snprintf(path, sizeof(path), "%s:/nonexistent-voxray-dir", dir);
    assert_int_equal(loader_scan(path, &ph_api, on_file, &s, err, sizeof(err)), 3);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.file[0], fmt("%s/bad_magic.so", dir));
    assert_string_equal(s.file[1], fmt("%s/good_store.so", dir));
    assert_string_equal(s.file[2], fmt("%s/junk.so", dir));
    assert_false(s.loaded[0]);
    assert_has(s.why[0], "bad magic");
    assert_true(s.loaded[1]);
    assert_string_equal(s.why[1], "");
    assert_false(s.loaded[2]);
    assert_has(s.why[2], "cannot load it");
}

static void test_scan_of_no_readable_directory_fails(void **state) {
    seen s;

    memset(&s, 0, sizeof(s));
    assert_int_equal(loader_scan("/nonexistent-a:/nonexistent-b", &ph_api, on_file, &s,
                                 err, sizeof(err)), -1);
    assert_int_equal(s.n, 0);
    assert_has(err, "/nonexistent-a");
    assert_has(err, "plugin_dir");
}

/* ------------------------------------------------------------ instances */

static void test_failing_init_names_instance_message_and_code(void **state) {
    loader_plugin *p = load("init_fails");
    vx_config cfg = { sizeof(vx_config), "bar", NULL, 0 };
    void *inst = (void *)&cfg;
    char want[1024];

    assert_non_null(p);
    assert_int_equal(loader_instance_init(p, &ph_api, NULL, &cfg, &inst, err,
                                          sizeof(err)), VX_EAUTH);
    assert_null(inst);
    snprintf(want, sizeof(want),
             "plugin %s (instance 'bar'): init failed: api key rejected (auth)", file);
    assert_string_equal(err, want);
    loader_close(p);
}

static void test_plugin_without_init_gets_a_null_instance(void **state) {
    loader_plugin *p = load("old_minor");
    vx_config cfg = { sizeof(vx_config), "old", NULL, 0 };
    void *inst = (void *)&cfg;

    assert_non_null(p);
    assert_int_equal(loader_instance_init(p, &ph_api, NULL, &cfg, &inst, err,
                                          sizeof(err)), VX_OK);
    assert_null(inst);
    loader_close(p);
}

/* ------------------------------------------------------------ names */

static void test_error_names_are_the_metric_labels(void **state) {
    assert_string_equal(loader_error_name(VX_EINVAL), "invalid");
    assert_string_equal(loader_error_name(VX_ENOMEM), "nomem");
    assert_string_equal(loader_error_name(VX_ENOTSUP), "notsup");
    assert_string_equal(loader_error_name(VX_ETIMEDOUT), "timeout");
    assert_string_equal(loader_error_name(VX_EUNAVAIL), "unavailable");
    assert_string_equal(loader_error_name(VX_ERATELIMIT), "ratelimit");
    assert_string_equal(loader_error_name(VX_EAUTH), "auth");
    assert_string_equal(loader_error_name(VX_ECANCELED), "canceled");
    assert_string_equal(loader_error_name(VX_EPROTO), "protocol");
    assert_string_equal(loader_error_name(VX_EINTERNAL), "internal");
    assert_string_equal(loader_error_name(VX_ENOTFOUND), "notfound");
    assert_string_equal(loader_error_name(-12), "unknown");
    assert_string_equal(loader_error_name(7), "unknown");
}

static void test_kinds_str_lists_known_then_unknown_bits(void **state) {
    char buf[64], tiny[6];

    assert_string_equal(loader_kinds_str(0, buf, sizeof(buf)), "");
    assert_string_equal(loader_kinds_str(VX_KIND_STORE, buf, sizeof(buf)), "store");
    assert_string_equal(loader_kinds_str(VX_KIND_SINK | VX_KIND_STT, buf, sizeof(buf)),
                        "stt,sink");
    assert_string_equal(loader_kinds_str(VX_KIND_LLM | 0x40, buf, sizeof(buf)),
                        "llm,0x40");
    /* Truncated, still terminated. */
    assert_string_equal(loader_kinds_str(VX_KIND_STT | VX_KIND_LLM | VX_KIND_TTS,
                                         tiny, sizeof(tiny)), "stt,l");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_store_loads_with_its_vtable_copied),
        cmocka_unit_test(test_copied_store_vtable_works_through_an_instance),
        cmocka_unit_test(test_older_minor_is_accepted_and_health_reads_null),
        cmocka_unit_test(test_one_plugin_may_offer_three_kinds),
        cmocka_unit_test(test_missing_file_is_refused_with_the_dlopen_reason),
        cmocka_unit_test(test_file_that_is_not_a_shared_object_is_refused),
        cmocka_unit_test(test_missing_entry_symbol_is_refused),
        cmocka_unit_test(test_entry_returning_null_is_refused),
        cmocka_unit_test(test_bad_magic_is_refused),
        cmocka_unit_test(test_other_major_is_refused),
        cmocka_unit_test(test_newer_minor_is_refused),
        cmocka_unit_test(test_descriptor_smaller_than_abi_1_0_is_refused),
        cmocka_unit_test(test_missing_mandatory_method_is_refused),
        cmocka_unit_test(test_descriptor_without_name_is_refused),
        cmocka_unit_test(test_name_other_than_file_base_name_is_refused),
        cmocka_unit_test(test_descriptor_without_kind_is_refused),
        cmocka_unit_test(test_unknown_kind_bit_is_refused),
        cmocka_unit_test(test_claimed_kind_without_vtable_is_refused),
        cmocka_unit_test(test_vtable_smaller_than_abi_1_0_is_refused),
        cmocka_unit_test(test_enum_key_without_choices_is_refused),
        cmocka_unit_test(test_search_skips_a_directory_without_the_file),
        cmocka_unit_test(test_search_takes_the_first_directory_that_has_the_file),
        cmocka_unit_test(test_search_reports_where_it_looked),
        cmocka_unit_test(test_search_refuses_a_name_with_a_slash),
        cmocka_unit_test(test_search_passes_on_the_refusal_of_the_file_it_found),
        cmocka_unit_test(test_scan_reports_every_so_file_sorted),
        cmocka_unit_test(test_scan_of_no_readable_directory_fails),
        cmocka_unit_test(test_failing_init_names_instance_message_and_code),
        cmocka_unit_test(test_plugin_without_init_gets_a_null_instance),
        cmocka_unit_test(test_error_names_are_the_metric_labels),
        cmocka_unit_test(test_kinds_str_lists_known_then_unknown_bits),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
