/*
 * Configuration parsing and value checks (host/base/cfg.c): INI files and strings
 * through inih with line tracking, VOXRAY_<SECTION>_<KEY> overrides, and the
 * checker every schema key goes through.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cfg.h"

/* ------------------------------------------------------------ helpers */

/* A private directory for the files one test writes; removed afterwards. */
typedef struct tmpdir {
    char dir[256];
    char files[8][320];
    int n;
} tmpdir;

static int tmp_setup(void **state)
{
    tmpdir *t = calloc(1, sizeof *t);
    const char *base = getenv("TMPDIR");
    if (t == NULL) return -1;
    snprintf(t->dir, sizeof t->dir, "%s/vx-cfg-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static int tmp_teardown(void **state)
{
    tmpdir *t = *state;
    for (int i = 0; i < t->n; i++) unlink(t->files[i]);
    rmdir(t->dir);
    free(t);
    return 0;
}

/* Write text as NAME in the test's directory; returns the full path. */
static const char *write_file(tmpdir *t, const char *name, const char *text)
{
    char full[sizeof t->files[0]];
    assert_true(t->n < 8);
    snprintf(full, sizeof full, "%s/%s", t->dir, name);
    char *path = t->files[t->n++];
    memcpy(path, full, sizeof full);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

/* A malloc'd string of n characters cycling through the digits, so that a
 * value cut anywhere no longer compares equal. */
static char *pattern(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) s[i] = (char)('0' + i % 10);
    s[n] = '\0';
    return s;
}

static cfg_file *parse_string_ok(const char *text)
{
    cfg_file *c = NULL;
    char err[512] = "";
    int rc = cfg_parse_string(text, "test.ini", &c, err, sizeof err);
    if (rc != 0) fprintf(stderr, "# unexpected parse error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

/* Parse text that must fail; err receives the message. */
static void parse_string_fails(const char *text, char *err, size_t errlen)
{
    cfg_file *c = (cfg_file *)0x1;
    err[0] = '\0';
    assert_int_equal(cfg_parse_string(text, "test.ini", &c, err, errlen), -1);
    assert_null(c);
    fprintf(stderr, "# %s\n", err);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void assert_starts_with(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

/* ------------------------------------------------------------ parsing */

static void file_is_parsed_into_entries_with_lines(void **state)
{
    tmpdir *t = *state;
    const char *path = write_file(t, "voxray.ini",
                                  "[server]\n"
                                  "listen = 127.0.0.1:9000\n"
                                  "\n"
                                  "[plugin.redis]\n"
                                  "address = 127.0.0.1:6379\n");
    cfg_file *c = NULL;
    char err[512] = "";
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), 0);
    assert_non_null(c);
    assert_string_equal(c->path, path);
    assert_int_equal(c->n, 2);

    cfg_item *it = cfg_find(c, "server", "listen");
    assert_non_null(it);
    assert_string_equal(it->value, "127.0.0.1:9000");
    assert_int_equal(it->line, 2);
    assert_null(it->env);

    it = cfg_find(c, "plugin.redis", "address");
    assert_non_null(it);
    assert_string_equal(it->value, "127.0.0.1:6379");
    assert_int_equal(it->line, 5);
    cfg_free(c);
}

static void string_is_parsed_into_entries_with_lines(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[log]\nlevel = debug\njson=true\n");
    assert_string_equal(c->path, "test.ini");
    assert_int_equal(c->n, 2);
    cfg_item *it = cfg_find(c, "log", "level");
    assert_non_null(it);
    assert_string_equal(it->value, "debug");
    assert_int_equal(it->line, 2);
    it = cfg_find(c, "log", "json");
    assert_non_null(it);
    assert_string_equal(it->value, "true");
    assert_int_equal(it->line, 3);
    cfg_free(c);
}

static void last_line_without_newline_is_read(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[log]\nlevel = warn");
    cfg_item *it = cfg_find(c, "log", "level");
    assert_non_null(it);
    assert_string_equal(it->value, "warn");
    assert_int_equal(it->line, 2);
    cfg_free(c);
}

static void empty_text_gives_no_entries(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("");
    assert_int_equal(c->n, 0);
    assert_null(cfg_find(c, "server", "listen"));
    cfg_free(c);
}

static void missing_file_error_names_the_path(void **state)
{
    tmpdir *t = *state;
    char path[400], err[512] = "";
    cfg_file *c = (cfg_file *)0x1;
    snprintf(path, sizeof path, "%s/does-not-exist.ini", t->dir);
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), -1);
    assert_null(c);
    assert_starts_with(err, path);
}

static void find_marks_the_entry_used(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\nlisten = :80\nmax_sessions = 3\n");
    assert_int_equal(c->items[0].used, 0);
    assert_int_equal(c->items[1].used, 0);
    assert_non_null(cfg_find(c, "server", "listen"));
    assert_int_equal(c->items[0].used, 1);
    assert_int_equal(c->items[1].used, 0);
    assert_null(cfg_find(c, "server", "nope"));
    assert_null(cfg_find(c, "log", "listen"));
    cfg_free(c);
}

static void key_outside_a_section_is_an_error_naming_the_line(void **state)
{
    (void)state;
    char err[512];
    parse_string_fails("; header comment\n\nlisten = :8080\n[server]\n", err, sizeof err);
    assert_starts_with(err, "test.ini:3:");
    assert_contains(err, "listen");
    assert_contains(err, "outside");
}

static void duplicate_key_names_both_lines(void **state)
{
    (void)state;
    char err[512];
    parse_string_fails("[server]\n"
                       "listen = :8080\n"
                       "; again\n"
                       "max_sessions = 4\n"
                       "listen = :9090\n",
                       err, sizeof err);
    assert_starts_with(err, "test.ini:5:");
    assert_contains(err, "listen");
    assert_contains(err, "line 2");
}

static void same_key_in_two_sections_is_not_a_duplicate(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[stt]\nproviders = a\n[tts]\nproviders = b\n");
    assert_string_equal(cfg_find(c, "stt", "providers")->value, "a");
    assert_string_equal(cfg_find(c, "tts", "providers")->value, "b");
    cfg_free(c);
}

static void syntax_error_reports_its_line_in_a_file(void **state)
{
    tmpdir *t = *state;
    const char *path = write_file(t, "broken.ini",
                                  "; voxray test configuration\n"   /* 1 */
                                  "\n"                              /* 2 */
                                  "[server]\n"                      /* 3 */
                                  "# a hash comment\n"              /* 4 */
                                  "listen = :8080\n"                /* 5 */
                                  "\n"                              /* 6 */
                                  "this line has no equals sign\n"  /* 7 */
                                  "max_sessions = 5\n");            /* 8 */
    cfg_file *c = (cfg_file *)0x1;
    char err[512] = "", want[400];
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), -1);
    assert_null(c);
    fprintf(stderr, "# %s\n", err);
    snprintf(want, sizeof want, "%s:7: syntax error", path);
    assert_starts_with(err, want);
}

/* A NUL byte (a binary file, or one saved as UTF-16) is refused with the
 * line it is on, not read as a line cut short (which miscounted every line
 * after it and lost the section header that followed). */
static void nul_byte_in_a_file_is_refused_with_its_line(void **state)
{
    tmpdir *t = *state;
    static const char text[] = "[server]\nlisten = :8080\nmax_sessions = 5\0junk\n[log]\nlevel = debug\n";
    const char *path = write_file(t, "nul.ini", "");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
    assert_int_equal(fclose(f), 0);
    cfg_file *c = (cfg_file *)0x1;
    char err[512] = "", want[400];
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), -1);
    assert_null(c);
    snprintf(want, sizeof want, "%s:3: NUL byte", path);
    assert_starts_with(err, want);
}

static void unterminated_section_header_is_a_syntax_error(void **state)
{
    (void)state;
    char err[512];
    parse_string_fails("[server]\nlisten = :80\n[log\nlevel = info\n", err, sizeof err);
    assert_starts_with(err, "test.ini:3: syntax error");
}

static void inline_semicolon_comment_is_stripped(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\n"
                                  "listen = :8080   ; one port for everything\n"
                                  "max_sessions = 10 ;no space after\n");
    assert_string_equal(cfg_find(c, "server", "listen")->value, ":8080");
    assert_string_equal(cfg_find(c, "server", "max_sessions")->value, "10");
    cfg_free(c);
}

static void semicolon_inside_a_value_is_kept(void **state)
{
    (void)state;
    /* Only "; " after whitespace starts a comment, so a password or URL that
     * holds ';' survives. */
    cfg_file *c = parse_string_ok("[plugin.x]\npassword = abc;def\n");
    assert_string_equal(cfg_find(c, "plugin.x", "password")->value, "abc;def");
    cfg_free(c);
}

static void whitespace_around_key_and_value_is_trimmed(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\n   listen   =    :8080   \n");
    assert_string_equal(cfg_find(c, "server", "listen")->value, ":8080");
    cfg_free(c);
}

/* The regression: inih's default limit of 200 bytes split longer lines into
 * a truncated value plus a bogus next line. */
static void long_value_in_a_string_is_read_whole(void **state)
{
    (void)state;
    static const size_t sizes[] = {300, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *v = pattern(sizes[i]);
        char *text = NULL;
        assert_true(asprintf(&text, "[plugin.x]\nshort = a\nlong = %s\nafter = b\n", v) > 0);
        cfg_file *c = parse_string_ok(text);
        cfg_item *it = cfg_find(c, "plugin.x", "long");
        assert_non_null(it);
        assert_int_equal(strlen(it->value), sizes[i]);
        assert_string_equal(it->value, v);
        assert_int_equal(it->line, 3);
        assert_int_equal(c->n, 3);
        cfg_free(c);
        free(text);
        free(v);
    }
}

static void long_value_in_a_file_is_read_whole(void **state)
{
    tmpdir *t = *state;
    static const size_t sizes[] = {300, 5000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *v = pattern(sizes[i]);
        char *text = NULL, name[32];
        assert_true(asprintf(&text, "[plugin.x]\nshort = a\nlong = %s\nafter = b\n", v) > 0);
        snprintf(name, sizeof name, "long%zu.ini", sizes[i]);
        const char *path = write_file(t, name, text);
        cfg_file *c = NULL;
        char err[512] = "";
        assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), 0);
        cfg_item *it = cfg_find(c, "plugin.x", "long");
        assert_non_null(it);
        assert_int_equal(strlen(it->value), sizes[i]);
        assert_string_equal(it->value, v);
        assert_int_equal(c->n, 3);
        cfg_free(c);
        free(text);
        free(v);
    }
}

static void lines_after_a_long_line_keep_their_numbers(void **state)
{
    tmpdir *t = *state;
    char *v = pattern(5000);
    char *text = NULL;
    assert_true(asprintf(&text, "[plugin.x]\nlong = %s\n\nafter = b\n", v) > 0);
    const char *path = write_file(t, "after.ini", text);
    cfg_file *c = NULL;
    char err[512] = "";
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), 0);
    cfg_item *it = cfg_find(c, "plugin.x", "after");
    assert_non_null(it);
    assert_int_equal(it->line, 4);
    cfg_free(c);
    free(text);
    free(v);
}

static void syntax_error_after_a_long_line_reports_its_line(void **state)
{
    (void)state;
    char *v = pattern(5000);
    char *text = NULL, err[512];
    assert_true(asprintf(&text, "[plugin.x]\nlong = %s\nok = 1\n\nbroken\n", v) > 0);
    parse_string_fails(text, err, sizeof err);
    assert_starts_with(err, "test.ini:5: syntax error");
    free(text);
    free(v);
}

static void duplicate_after_a_long_line_names_both_lines(void **state)
{
    (void)state;
    char *v = pattern(5000);
    char *text = NULL, err[512];
    assert_true(asprintf(&text, "[plugin.x]\nlong = %s\nok = 1\nlong = 2\n", v) > 0);
    parse_string_fails(text, err, sizeof err);
    assert_starts_with(err, "test.ini:4:");
    assert_contains(err, "line 2");
    free(text);
    free(v);
}

static void line_over_one_mebibyte_is_refused(void **state)
{
    tmpdir *t = *state;
    char *v = pattern((1u << 20) + 100);
    char *text = NULL, want[400];
    assert_true(asprintf(&text, "[plugin.x]\nok = 1\nhuge = %s\nafter = 2\n", v) > 0);
    const char *path = write_file(t, "huge.ini", text);
    cfg_file *c = (cfg_file *)0x1;
    char err[512] = "";
    assert_int_equal(cfg_parse_file(path, &c, err, sizeof err), -1);
    assert_null(c);
    fprintf(stderr, "# %s\n", err);
    snprintf(want, sizeof want, "%s:3: line longer than", path);
    assert_starts_with(err, want);
    free(text);
    free(v);
}

static void line_over_one_mebibyte_in_a_string_is_refused(void **state)
{
    (void)state;
    char *v = pattern((1u << 20) + 100);
    char *text = NULL, err[512];
    assert_true(asprintf(&text, "[plugin.x]\nhuge = %s\n", v) > 0);
    parse_string_fails(text, err, sizeof err);
    assert_starts_with(err, "test.ini:2: line longer than");
    free(text);
    free(v);
}

static void line_of_almost_one_mebibyte_is_accepted(void **state)
{
    (void)state;
    char *v = pattern(1000000);
    char *text = NULL;
    assert_true(asprintf(&text, "[plugin.x]\nbig = %s\nafter = 1\n", v) > 0);
    cfg_file *c = parse_string_ok(text);
    assert_string_equal(cfg_find(c, "plugin.x", "big")->value, v);
    assert_int_equal(cfg_find(c, "plugin.x", "after")->line, 3);
    cfg_free(c);
    free(text);
    free(v);
}

/* ------------------------------------------------------------ environment */

static void env_name_upper_cases_and_replaces_dots_and_dashes(void **state)
{
    (void)state;
    char buf[128];
    cfg_env_name("plugin.redis-main", "address", buf, sizeof buf);
    assert_string_equal(buf, "VOXRAY_PLUGIN_REDIS_MAIN_ADDRESS");
    cfg_env_name("server", "max_sessions", buf, sizeof buf);
    assert_string_equal(buf, "VOXRAY_SERVER_MAX_SESSIONS");
}

static void env_override_replaces_a_file_value(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\nlisten = :8080\n");
    char where[256];
    setenv("VOXRAY_SERVER_LISTEN", "127.0.0.1:9999", 1);
    int rc = cfg_apply_env(c, "server", "listen");
    unsetenv("VOXRAY_SERVER_LISTEN");
    assert_int_equal(rc, 1);
    assert_int_equal(c->n, 1);
    cfg_item *it = cfg_find(c, "server", "listen");
    assert_string_equal(it->value, "127.0.0.1:9999");
    assert_string_equal(it->env, "VOXRAY_SERVER_LISTEN");
    assert_int_equal(it->line, 0);
    assert_string_equal(cfg_where(c, it, where, sizeof where),
                        "environment VOXRAY_SERVER_LISTEN");
    cfg_free(c);
}

static void env_override_adds_a_missing_entry(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\nlisten = :8080\n");
    char where[256];
    setenv("VOXRAY_PLUGIN_REDIS_MAIN_ADDRESS", "10.0.0.5:6379", 1);
    int rc = cfg_apply_env(c, "plugin.redis-main", "address");
    unsetenv("VOXRAY_PLUGIN_REDIS_MAIN_ADDRESS");
    assert_int_equal(rc, 1);
    assert_int_equal(c->n, 2);
    cfg_item *it = cfg_find(c, "plugin.redis-main", "address");
    assert_non_null(it);
    assert_string_equal(it->value, "10.0.0.5:6379");
    assert_string_equal(cfg_where(c, it, where, sizeof where),
                        "environment VOXRAY_PLUGIN_REDIS_MAIN_ADDRESS");
    /* The file's own entry is untouched. */
    assert_string_equal(cfg_find(c, "server", "listen")->value, ":8080");
    cfg_free(c);
}

static void unset_env_leaves_the_file_value(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\nlisten = :8080\n");
    unsetenv("VOXRAY_SERVER_LISTEN");
    assert_int_equal(cfg_apply_env(c, "server", "listen"), 0);
    assert_string_equal(cfg_find(c, "server", "listen")->value, ":8080");
    assert_null(cfg_find(c, "server", "listen")->env);
    cfg_free(c);
}

static void where_names_file_line_section_and_key(void **state)
{
    (void)state;
    cfg_file *c = parse_string_ok("[server]\n\nmax_sessions = 7\n");
    char where[256];
    cfg_item *it = cfg_find(c, "server", "max_sessions");
    assert_string_equal(cfg_where(c, it, where, sizeof where),
                        "test.ini:3: [server] max_sessions");
    cfg_free(c);
}

/* ------------------------------------------------------------ values */

static vx_config_key key_of(vx_config_type type, double min, double max,
                            const char *choices, unsigned flags)
{
    vx_config_key k = {"k", type, NULL, "test key", min, max, choices, flags};
    return k;
}

static void check_ok(const vx_config_key *k, const char *value)
{
    char why[256] = "";
    if (cfg_check_value(k, value, why, sizeof why) != 0)
        fail_msg("\"%s\" refused: %s", value, why);
}

/* The value must be refused and why must name the problem and what is
 * allowed. */
static void check_refused(const vx_config_key *k, const char *value,
                          const char *problem, const char *allowed)
{
    char why[256] = "";
    if (cfg_check_value(k, value, why, sizeof why) == 0)
        fail_msg("\"%s\" accepted", value);
    assert_contains(why, problem);
    assert_contains(why, "allowed: ");
    assert_contains(why, allowed);
}

static void int_within_range_is_accepted(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 1, 10, NULL, 0);
    check_ok(&k, "1");
    check_ok(&k, "10");
    check_ok(&k, "+5");
}

static void int_out_of_range_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 1, 10, NULL, 0);
    check_refused(&k, "0", "out of range", "integer 1..10");
    check_refused(&k, "11", "out of range", "integer 1..10");
    check_refused(&k, "-3", "out of range", "integer 1..10");
}

static void int_that_is_not_a_number_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 1, 10, NULL, 0);
    check_refused(&k, "lots", "not an integer", "integer 1..10");
    check_refused(&k, "", "not an integer", "integer 1..10");
    check_refused(&k, "2.5", "not an integer", "integer 1..10");
    check_refused(&k, "99999999999999999999999", "not an integer", "integer");
}

static void int_with_trailing_junk_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 1, 10, NULL, 0);
    check_refused(&k, "5x", "not an integer", "integer 1..10");
    check_refused(&k, "5 ", "not an integer", "integer 1..10");
}

static void int_with_leading_space_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 1, 10, NULL, 0);
    check_refused(&k, " 5", "not an integer", "integer 1..10");
}

static void int_without_range_takes_any_integer(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_INT, 0, 0, NULL, 0);
    check_ok(&k, "-123456789012");
    check_ok(&k, "0");
    check_refused(&k, "x", "not an integer", "integer");
}

static void float_within_range_is_accepted(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_FLOAT, 0, 1, NULL, 0);
    check_ok(&k, "0");
    check_ok(&k, "0.25");
    check_ok(&k, "1e-3");
    check_ok(&k, "1");
}

static void float_out_of_range_or_not_a_number_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_FLOAT, 0, 1, NULL, 0);
    check_refused(&k, "1.5", "out of range", "number 0..1");
    check_refused(&k, "-0.1", "out of range", "number 0..1");
    check_refused(&k, "half", "not a number", "number 0..1");
    check_refused(&k, "0.5x", "not a number", "number 0..1");
    check_refused(&k, " 0.5", "not a number", "number 0..1");
    check_refused(&k, "nan", "not a number", "number 0..1");
    check_refused(&k, "inf", "not a number", "number 0..1");
    check_refused(&k, "", "not a number", "number 0..1");
}

static void bool_accepts_every_documented_spelling(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "no", "off", "0", "False", "NO", "Off"};
    vx_config_key k = key_of(VX_CFG_BOOL, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        int b = -1;
        assert_int_equal(cfg_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
        check_ok(&k, yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        int b = -1;
        assert_int_equal(cfg_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
        check_ok(&k, no[i]);
    }
}

static void bool_refuses_maybe(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_BOOL, 0, 0, NULL, 0);
    int b = 7;
    assert_int_equal(cfg_parse_bool("maybe", &b), -1);
    assert_int_equal(b, 7);
    check_refused(&k, "maybe", "not a boolean", "true|false");
    check_refused(&k, "", "not a boolean", "true|false");
    check_refused(&k, "2", "not a boolean", "yes|no");
}

static void enum_accepts_only_its_choices(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_ENUM, 0, 0, "debug|info|warn|error", 0);
    check_ok(&k, "debug");
    check_ok(&k, "info");
    check_ok(&k, "error");
    check_refused(&k, "loud", "not an allowed value", "one of debug|info|warn|error");
    /* Whole choices only: neither a prefix nor a run across the bar. */
    check_refused(&k, "inf", "not an allowed value", "debug|info|warn|error");
    check_refused(&k, "info|warn", "not an allowed value", "debug|info|warn|error");
    check_refused(&k, "", "not an allowed value", "debug|info|warn|error");
}

static void duration_accepts_units_and_bare_milliseconds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long ms;
    } cases[] = {
        {"250ms", 250}, {"2s", 2000}, {"1m", 60000}, {"1.5s", 1500},
        {"300", 300},   {"0", 0},     {"1h", 3600000},
    };
    vx_config_key k = key_of(VX_CFG_DURATION, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long long ms = -1;
        if (cfg_parse_duration_ms(cases[i].text, &ms) != 0)
            fail_msg("duration \"%s\" refused", cases[i].text);
        assert_int_equal(ms, cases[i].ms);
        check_ok(&k, cases[i].text);
    }
}

static void duration_refuses_negative_unknown_unit_and_empty(void **state)
{
    (void)state;
    static const char *const bad[] = {"-1s", "5x", "", "s", "ms", " 2s", "2 s", "2sec", "1.5.5s"};
    vx_config_key k = key_of(VX_CFG_DURATION, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long long ms = -7;
        if (cfg_parse_duration_ms(bad[i], &ms) == 0)
            fail_msg("duration \"%s\" accepted as %lld ms", bad[i], ms);
        check_refused(&k, bad[i], "not a duration", "duration (e.g. 250ms, 2s");
    }
}

static void duration_out_of_range_is_refused_in_milliseconds(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_DURATION, 100, 600000, NULL, 0);
    check_ok(&k, "100ms");
    check_ok(&k, "10m");
    check_refused(&k, "50ms", "out of range", "duration 100ms..600000ms");
    check_refused(&k, "11m", "out of range", "duration 100ms..600000ms");
}

static void duration_ns_keeps_fractions_of_a_millisecond(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long ns;
    } cases[] = {
        {"1.5s", 1500000000LL}, {"0.25ms", 250000LL}, {"2", 2000000LL},
        {"1m", 60000000000LL},  {"0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        long long ns = -1;
        if (cfg_parse_duration_ns(cases[i].text, &ns) != 0)
            fail_msg("duration \"%s\" refused", cases[i].text);
        assert_int_equal(ns, cases[i].ns);
    }
    long long ns = -7;
    assert_int_equal(cfg_parse_duration_ns("-1s", &ns), -1);
    assert_int_equal(cfg_parse_duration_ns("3 s", &ns), -1);
    assert_int_equal(ns, -7);
}

static void size_accepts_binary_and_decimal_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned long long bytes;
    } cases[] = {
        {"4096", 4096},        {"64k", 65536},          {"64K", 65536},
        {"64KiB", 65536},      {"64kB", 64000},         {"16M", 16777216},
        {"16MiB", 16777216},   {"16MB", 16000000},      {"1G", 1073741824ULL},
        {"1GB", 1000000000ULL}, {"1.5k", 1536},         {"0", 0},
        {"512B", 512},
    };
    vx_config_key k = key_of(VX_CFG_SIZE, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned long long b = 1;
        if (cfg_parse_size(cases[i].text, &b) != 0) fail_msg("size \"%s\" refused", cases[i].text);
        assert_true(b == cases[i].bytes);
        check_ok(&k, cases[i].text);
    }
    static const char *const bad[] = {"-1", "1x", "", "k", " 1k", "1 k", "0.5", "1.1k", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned long long b = 7;
        if (cfg_parse_size(bad[i], &b) == 0) fail_msg("size \"%s\" accepted as %llu", bad[i], b);
        check_refused(&k, bad[i], "not a size", "size in bytes (e.g. 4096, 64k");
    }
    vx_config_key r = key_of(VX_CFG_SIZE, 1024, 1048576, NULL, 0);
    check_ok(&r, "1k");
    check_ok(&r, "1M");
    check_refused(&r, "1023", "out of range", "size 1024..1048576 bytes");
    check_refused(&r, "2M", "out of range", "size 1024..1048576 bytes");
}

/* The typed getters of host API 1.6 (the daemon's and the checker's). */
static void kv_get_parses_each_type_and_reports_missing_and_bad(void **state)
{
    (void)state;
    static const vx_kv kv[] = {
        {"count", "42"},     {"ratio", "0.5"},  {"on", "yes"},   {"wait", "1.5s"},
        {"buf", "64k"},      {"unset", NULL},   {"empty", ""},   {"word", "hello"},
        {"neg", "-3"},
    };
    const size_t n = sizeof kv / sizeof *kv;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    double d = 0;
    int b = -1;

    assert_int_equal(cfg_kv_get(kv, n, "count", CFG_GET_INT, &i64), VX_OK);
    assert_int_equal(i64, 42);
    assert_int_equal(cfg_kv_get(kv, n, "neg", CFG_GET_INT, &i64), VX_OK);
    assert_int_equal(i64, -3);
    assert_int_equal(cfg_kv_get(kv, n, "ratio", CFG_GET_FLOAT, &d), VX_OK);
    assert_true(d == 0.5);
    assert_int_equal(cfg_kv_get(kv, n, "count", CFG_GET_FLOAT, &d), VX_OK);
    assert_true(d == 42.0);
    assert_int_equal(cfg_kv_get(kv, n, "on", CFG_GET_BOOL, &b), VX_OK);
    assert_int_equal(b, 1);
    assert_int_equal(cfg_kv_get(kv, n, "wait", CFG_GET_DURATION_MS, &i64), VX_OK);
    assert_int_equal(i64, 1500);
    assert_int_equal(cfg_kv_get(kv, n, "wait", CFG_GET_DURATION_NS, &i64), VX_OK);
    assert_int_equal(i64, 1500000000LL);
    assert_int_equal(cfg_kv_get(kv, n, "count", CFG_GET_DURATION_MS, &i64), VX_OK);
    assert_int_equal(i64, 42); /* a bare number is milliseconds */
    assert_int_equal(cfg_kv_get(kv, n, "buf", CFG_GET_SIZE, &u64), VX_OK);
    assert_true(u64 == 65536);

    /* Unknown key, no value, empty value: VX_ENOTFOUND, *out untouched. */
    i64 = 99;
    assert_int_equal(cfg_kv_get(kv, n, "nope", CFG_GET_INT, &i64), VX_ENOTFOUND);
    assert_int_equal(cfg_kv_get(kv, n, "unset", CFG_GET_INT, &i64), VX_ENOTFOUND);
    assert_int_equal(cfg_kv_get(kv, n, "empty", CFG_GET_INT, &i64), VX_ENOTFOUND);
    assert_int_equal(i64, 99);
    /* A value of another type: VX_EINVAL, *out untouched. */
    assert_int_equal(cfg_kv_get(kv, n, "word", CFG_GET_INT, &i64), VX_EINVAL);
    assert_int_equal(cfg_kv_get(kv, n, "word", CFG_GET_BOOL, &b), VX_EINVAL);
    assert_int_equal(cfg_kv_get(kv, n, "ratio", CFG_GET_INT, &i64), VX_EINVAL);
    assert_int_equal(cfg_kv_get(kv, n, "neg", CFG_GET_DURATION_MS, &i64), VX_EINVAL);
    assert_int_equal(cfg_kv_get(kv, n, "wait", CFG_GET_SIZE, &u64), VX_EINVAL);
    assert_int_equal(i64, 99);
    assert_int_equal(b, 1);
    assert_int_equal(cfg_kv_get(kv, n, NULL, CFG_GET_INT, &i64), VX_EINVAL);
}

static void address_accepts_host_port_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text, *host;
        int port;
    } cases[] = {
        {"0.0.0.0:8080", "0.0.0.0", 8080},
        {":8080", "", 8080},
        {"[::1]:9000", "::1", 9000},
        {"localhost:6379", "localhost", 6379},
        {"127.0.0.1:65535", "127.0.0.1", 65535},
    };
    vx_config_key k = key_of(VX_CFG_ADDRESS, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char host[256] = "unset";
        int port = -1;
        if (cfg_parse_address(cases[i].text, host, sizeof host, &port) != 0)
            fail_msg("address \"%s\" refused", cases[i].text);
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
        check_ok(&k, cases[i].text);
    }
}

static void address_refuses_missing_or_bad_port_and_bare_ipv6(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "8080", "host:", "host:70000", "host:-1", "host:80x", "host: 80",
        "::1:80", "[::1]9000", "[::1", "", "my host:80",
    };
    vx_config_key k = key_of(VX_CFG_ADDRESS, 0, 0, NULL, 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char host[256];
        int port = -1;
        if (cfg_parse_address(bad[i], host, sizeof host, &port) == 0)
            fail_msg("address \"%s\" accepted as host '%s' port %d", bad[i], host, port);
        check_refused(&k, bad[i], "not an address", "host:port, [ipv6]:port or :port");
    }
}

static void address_host_longer_than_the_buffer_is_refused(void **state)
{
    (void)state;
    char host[8];
    int port;
    assert_int_equal(cfg_parse_address("abcdefghijk:80", host, sizeof host, &port), -1);
    assert_int_equal(cfg_parse_address("abcdefg:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "abcdefg");
}

static void string_longer_than_max_is_refused(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_STRING, 0, 5, NULL, 0);
    check_ok(&k, "");
    check_ok(&k, "12345");
    check_refused(&k, "123456", "too long", "text of at most 5 bytes");
}

static void string_without_max_takes_any_length(void **state)
{
    (void)state;
    vx_config_key k = key_of(VX_CFG_STRING, 0, 0, NULL, 0);
    char *v = pattern(100000);
    check_ok(&k, v);
    free(v);
}

static void required_key_refuses_an_empty_value(void **state)
{
    (void)state;
    vx_config_key s = key_of(VX_CFG_STRING, 0, 64, NULL, VX_CFG_REQUIRED);
    check_ok(&s, "x");
    check_refused(&s, "", "must not be empty", "text of at most 64 bytes");
    vx_config_key a = key_of(VX_CFG_ADDRESS, 0, 0, NULL, VX_CFG_REQUIRED);
    check_refused(&a, "", "not an address", "host:port");
}

static void allowed_text_describes_each_type(void **state)
{
    (void)state;
    char buf[160];
    vx_config_key k;
    k = key_of(VX_CFG_INT, 1, 1000000, NULL, 0);
    assert_string_equal(cfg_allowed(&k, buf, sizeof buf), "integer 1..1000000");
    k = key_of(VX_CFG_FLOAT, 0, 0.5, NULL, 0);
    assert_string_equal(cfg_allowed(&k, buf, sizeof buf), "number 0..0.5");
    k = key_of(VX_CFG_ENUM, 0, 0, "a|b", 0);
    assert_string_equal(cfg_allowed(&k, buf, sizeof buf), "one of a|b");
    k = key_of(VX_CFG_DURATION, 0, 0, NULL, 0);
    assert_contains(cfg_allowed(&k, buf, sizeof buf), "duration (e.g. 250ms, 2s");
    k = key_of(VX_CFG_BOOL, 0, 0, NULL, 0);
    assert_contains(cfg_allowed(&k, buf, sizeof buf), "true|false");
    k = key_of(VX_CFG_ADDRESS, 0, 0, NULL, 0);
    assert_contains(cfg_allowed(&k, buf, sizeof buf), "host:port");
}

static void core_sections_are_known(void **state)
{
    (void)state;
    static const char *const core[] = {"server", "log", "metrics", "session", "stt", "llm", "tts"};
    for (size_t i = 0; i < sizeof core / sizeof *core; i++)
        assert_true(cfg_is_core_section(core[i]));
    assert_false(cfg_is_core_section("plugin.redis"));
    assert_false(cfg_is_core_section("serverx"));
    assert_false(cfg_is_core_section(""));
}

static void core_schema_defaults_pass_their_own_checks(void **state)
{
    (void)state;
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        char why[256] = "";
        if (cfg_check_value(&k->k, k->k.def ? k->k.def : "", why, sizeof why) != 0)
            fail_msg("[%s] %s default \"%s\": %s", k->section, k->k.key, k->k.def, why);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(file_is_parsed_into_entries_with_lines),
        T(string_is_parsed_into_entries_with_lines),
        T(last_line_without_newline_is_read),
        T(empty_text_gives_no_entries),
        T(missing_file_error_names_the_path),
        T(find_marks_the_entry_used),
        T(key_outside_a_section_is_an_error_naming_the_line),
        T(duplicate_key_names_both_lines),
        T(same_key_in_two_sections_is_not_a_duplicate),
        T(syntax_error_reports_its_line_in_a_file),
        T(nul_byte_in_a_file_is_refused_with_its_line),
        T(unterminated_section_header_is_a_syntax_error),
        T(inline_semicolon_comment_is_stripped),
        T(semicolon_inside_a_value_is_kept),
        T(whitespace_around_key_and_value_is_trimmed),
        T(long_value_in_a_string_is_read_whole),
        T(long_value_in_a_file_is_read_whole),
        T(lines_after_a_long_line_keep_their_numbers),
        T(syntax_error_after_a_long_line_reports_its_line),
        T(duplicate_after_a_long_line_names_both_lines),
        T(line_over_one_mebibyte_is_refused),
        T(line_over_one_mebibyte_in_a_string_is_refused),
        T(line_of_almost_one_mebibyte_is_accepted),
        T(env_name_upper_cases_and_replaces_dots_and_dashes),
        T(env_override_replaces_a_file_value),
        T(env_override_adds_a_missing_entry),
        T(unset_env_leaves_the_file_value),
        T(where_names_file_line_section_and_key),
        T(int_within_range_is_accepted),
        T(int_out_of_range_is_refused),
        T(int_that_is_not_a_number_is_refused),
        T(int_with_trailing_junk_is_refused),
        T(int_with_leading_space_is_refused),
        T(int_without_range_takes_any_integer),
        T(float_within_range_is_accepted),
        T(float_out_of_range_or_not_a_number_is_refused),
        T(bool_accepts_every_documented_spelling),
        T(bool_refuses_maybe),
        T(enum_accepts_only_its_choices),
        T(duration_accepts_units_and_bare_milliseconds),
        T(duration_refuses_negative_unknown_unit_and_empty),
        T(duration_out_of_range_is_refused_in_milliseconds),
        T(duration_ns_keeps_fractions_of_a_millisecond),
        T(size_accepts_binary_and_decimal_units),
        T(kv_get_parses_each_type_and_reports_missing_and_bad),
        T(address_accepts_host_port_forms),
        T(address_refuses_missing_or_bad_port_and_bare_ipv6),
        T(address_host_longer_than_the_buffer_is_refused),
        T(string_longer_than_max_is_refused),
        T(string_without_max_takes_any_length),
        T(required_key_refuses_an_empty_value),
        T(allowed_text_describes_each_type),
        T(core_sections_are_known),
        T(core_schema_defaults_pass_their_own_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
