/*
 * API keys and client secrets (host/net/auth.c): which credentials open a
 * session, how the keys file is read and re-read, what a client secret
 * allows and for how long.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/auth.h"
#include "base/log.h"

#define KEY_A "sk-alpha-0123456789abcdef"
#define KEY_B "sk-bravo-0123456789abcdef"
#define KEY_C "sk-charlie-0123456789abcdef"

static char g_dir[] = "/tmp/voxray-test-auth-XXXXXX";
static char g_log[256];

static settings base(const char *keys, const char *file)
{
    settings s;
    memset(&s, 0, sizeof s);
    s.auth_api_keys = (char *)keys;
    s.auth_keys_file = (char *)(file ? file : "");
    s.client_secret_max_ttl_ms = 7200000;
    s.max_client_secrets = 1000;
    return s;
}

static void load_ok(const settings *s)
{
    char err[512] = "";
    int rc = auth_load(s, err, sizeof err);
    if (rc != 0) fprintf(stderr, "# auth_load: %s\n", err);
    assert_int_equal(rc, 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static char *path_in_dir(const char *name)
{
    static char p[4][300];
    static int i;
    char *out = p[i++ % 4];
    snprintf(out, sizeof p[0], "%s/%s", g_dir, name);
    return out;
}

static auth_result redeem(const char *cred)
{
    char *session = NULL;
    auth_result r = auth_redeem(cred, &session);
    free(session);
    return r;
}

/* The whole log written so far. */
static char *log_text(void)
{
    static char buf[65536];
    FILE *f = fopen(g_log, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

static int setup(void **st)
{
    (void)st;
    auth_free();
    return 0;
}

/* ------------------------------------------------------------ keys */

static void test_auth_is_off_without_any_key_source(void **st)
{
    settings s = base("", NULL);
    (void)st;
    load_ok(&s);
    assert_false(auth_enabled());
}

static void test_a_configured_key_is_accepted_and_another_refused(void **st)
{
    settings s = base(KEY_A ", " KEY_B, NULL);
    (void)st;
    load_ok(&s);
    assert_true(auth_enabled());
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_B), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_C), AUTH_INVALID);
    assert_int_equal(auth_check_key(KEY_A "x"), AUTH_INVALID);
    assert_int_equal(auth_check_key("sk-alpha-0123456789abcde"), AUTH_INVALID);
    assert_int_equal(auth_check_key(""), AUTH_INVALID);
    assert_int_equal(auth_check_key(NULL), AUTH_MISSING);
    assert_int_equal(redeem(KEY_A), AUTH_OK);
    assert_int_equal(redeem(KEY_A), AUTH_OK); /* a key is not used up */
}

static void test_a_bad_key_is_refused_at_load_without_being_repeated(void **st)
{
    char err[512] = "";
    settings ok = base(KEY_A, NULL), bad = base(KEY_B ", short-secret", NULL);
    (void)st;
    load_ok(&ok);
    assert_int_equal(auth_load(&bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "the 2nd key is shorter than 16 characters"));
    assert_null(strstr(err, "short-secret"));
    assert_null(strstr(err, KEY_B));
    /* What was in force stays. */
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_B), AUTH_INVALID);

    bad = base(KEY_B ",," KEY_C, NULL);
    assert_int_equal(auth_load(&bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "the 2nd key is empty"));
    bad = base("sk-has/slash-0123456789", NULL);
    assert_int_equal(auth_load(&bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds a character other than"));
}

static void test_the_keys_file_takes_one_key_a_line_with_comments(void **st)
{
    char *f = path_in_dir("keys");
    settings s = base(KEY_C, f);
    (void)st;
    write_file(f, "# the team's keys\n\n  " KEY_A "   # alice\n" KEY_B "\n   # retired: sk-old-0123456789abcdef\n");
    load_ok(&s);
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_B), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_C), AUTH_OK); /* api_keys too */
    assert_int_equal(auth_check_key("sk-old-0123456789abcdef"), AUTH_INVALID);
}

static void test_reloading_the_keys_file_adds_and_removes_keys(void **st)
{
    char *f = path_in_dir("keys");
    settings s = base("", f);
    (void)st;
    write_file(f, KEY_A "\n");
    load_ok(&s);
    write_file(f, KEY_B "\n");
    load_ok(&s);
    assert_int_equal(auth_check_key(KEY_A), AUTH_INVALID);
    assert_int_equal(auth_check_key(KEY_B), AUTH_OK);
}

static void test_a_broken_or_missing_keys_file_keeps_the_keys_in_force(void **st)
{
    char err[512] = "";
    char *f = path_in_dir("keys");
    settings s = base("", f), gone = base("", path_in_dir("no-such-file"));
    (void)st;
    write_file(f, KEY_A "\n");
    load_ok(&s);
    write_file(f, "# fine\n" KEY_B "\n" KEY_C " trailing words\n");
    assert_int_equal(auth_load(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: the key is followed by more than a # comment"));
    assert_null(strstr(err, KEY_C));
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_B), AUTH_INVALID);

    assert_int_equal(auth_load(&gone, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
}

static void test_an_empty_keys_file_turns_auth_on_and_refuses_everyone(void **st)
{
    char *f = path_in_dir("keys");
    settings s = base("", f);
    (void)st;
    write_file(f, "# nobody yet\n");
    load_ok(&s);
    assert_true(auth_enabled());
    assert_int_equal(auth_check_key(KEY_A), AUTH_INVALID);
}

static void test_check_settings_changes_nothing(void **st)
{
    char err[512];
    settings s = base(KEY_A, NULL), other = base(KEY_B, NULL);
    (void)st;
    load_ok(&s);
    assert_int_equal(auth_check_settings(&other, err, sizeof err), 0);
    assert_int_equal(auth_check_key(KEY_A), AUTH_OK);
    assert_int_equal(auth_check_key(KEY_B), AUTH_INVALID);
}

/* ------------------------------------------------------------ credentials */

static void test_the_credential_comes_from_bearer_or_the_subprotocol(void **st)
{
    char c[128];
    (void)st;
    assert_int_equal(auth_credential("Bearer " KEY_A, NULL, c, sizeof c), 1);
    assert_string_equal(c, KEY_A);
    assert_int_equal(auth_credential("  bearer   " KEY_A "  ", NULL, c, sizeof c), 1);
    assert_string_equal(c, KEY_A);
    assert_int_equal(auth_credential(NULL, "realtime, openai-insecure-api-key." KEY_B ", openai-beta.realtime-v1",
                                     c, sizeof c), 1);
    assert_string_equal(c, KEY_B);
    /* Authorization wins over the subprotocol. */
    assert_int_equal(auth_credential("Bearer " KEY_A, "realtime, openai-insecure-api-key." KEY_B, c, sizeof c), 1);
    assert_string_equal(c, KEY_A);
    /* Another scheme is a credential that matches nothing. */
    assert_int_equal(auth_credential("Basic dXNlcjpwYXNz", NULL, c, sizeof c), 1);
    assert_string_equal(c, "");
    assert_int_equal(auth_credential(NULL, "realtime", c, sizeof c), 0);
    assert_int_equal(auth_credential(NULL, NULL, c, sizeof c), 0);
}

/* ------------------------------------------------------------ secrets */

static void test_a_client_secret_opens_one_session_with_its_configuration(void **st)
{
    settings s = base(KEY_A, NULL);
    char v[AUTH_SECRET_LEN + 1], *session = NULL;
    long long exp = 0;
    time_t now = time(NULL);
    (void)st;
    load_ok(&s);
    assert_int_equal(auth_mint(600, "{\"instructions\":\"Be brief.\"}", v, sizeof v, &exp), 0);
    assert_int_equal(strlen(v), AUTH_SECRET_LEN);
    assert_memory_equal(v, "ek_", 3);
    assert_true(exp >= now + 599 && exp <= now + 601);
    assert_int_equal(auth_check_key(v), AUTH_INVALID); /* cannot mint secrets */
    assert_int_equal(auth_redeem(v, &session), AUTH_OK);
    assert_string_equal(session, "{\"instructions\":\"Be brief.\"}");
    free(session);
    assert_int_equal(auth_redeem(v, &session), AUTH_REUSED);
    assert_null(session);
}

static void test_two_secrets_are_never_alike(void **st)
{
    char a[AUTH_SECRET_LEN + 1], b[AUTH_SECRET_LEN + 1];
    long long exp;
    settings s = base(KEY_A, NULL);
    (void)st;
    load_ok(&s);
    assert_int_equal(auth_mint(60, NULL, a, sizeof a, &exp), 0);
    assert_int_equal(auth_mint(60, NULL, b, sizeof b, &exp), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(redeem(a), AUTH_OK);
    assert_int_equal(redeem(b), AUTH_OK);
}

static void test_an_expired_secret_is_refused_as_expired(void **st)
{
    char v[AUTH_SECRET_LEN + 1];
    long long exp;
    struct timespec nap = {1, 100 * 1000000L};
    settings s = base(KEY_A, NULL);
    (void)st;
    load_ok(&s);
    assert_int_equal(auth_mint(1, NULL, v, sizeof v, &exp), 0);
    nanosleep(&nap, NULL);
    assert_int_equal(redeem(v), AUTH_EXPIRED);
    assert_int_equal(redeem("ek_0000000000000000000000000000000000000000000000000000000000000000"), AUTH_INVALID);
}

static void test_the_max_ttl_setting_caps_secret_lifetimes(void **st)
{
    settings s = base(KEY_A, NULL);
    (void)st;
    s.client_secret_max_ttl_ms = 30000;
    load_ok(&s);
    assert_int_equal(auth_max_ttl_s(), 30);
    s.client_secret_max_ttl_ms = 1500;
    load_ok(&s);
    assert_int_equal(auth_max_ttl_s(), 1);
}

static void test_outstanding_secrets_are_bounded_and_a_used_one_frees_its_slot(void **st)
{
    char v[3][AUTH_SECRET_LEN + 1];
    long long exp;
    settings s = base(KEY_A, NULL);
    (void)st;
    s.max_client_secrets = 2;
    load_ok(&s);
    assert_int_equal(auth_mint(60, NULL, v[0], sizeof v[0], &exp), 0);
    assert_int_equal(auth_mint(60, NULL, v[1], sizeof v[1], &exp), 0);
    assert_int_equal(auth_mint(60, NULL, v[2], sizeof v[2], &exp), -1);
    assert_string_equal(v[2], "");
    assert_int_equal(redeem(v[0]), AUTH_OK);
    assert_int_equal(auth_mint(60, NULL, v[2], sizeof v[2], &exp), 0);
    assert_int_equal(redeem(v[2]), AUTH_OK);
    /* Thousands minted and used: memory stays bounded (used ones are
     * dropped once they outnumber the bound twice over). */
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(auth_mint(60, "{}", v[0], sizeof v[0], &exp), 0);
        assert_int_equal(redeem(v[0]), AUTH_OK);
    }
}

/* ------------------------------------------------------------ logs */

static void test_refusals_are_logged_without_the_credential_and_rate_limited(void **st)
{
    char *f = path_in_dir("keys");
    settings s = base(KEY_A, f);
    (void)st;
    write_file(f, KEY_B "\n");
    load_ok(&s);
    for (int i = 0; i < 50; i++) auth_refused(AUTH_INVALID, "/v1/realtime", "192.0.2.1");
    auth_refused(AUTH_MISSING, "/v1/realtime", "192.0.2.1");
    const char *t = log_text();
    assert_non_null(strstr(t, "request refused: invalid API key reason=invalid route=/v1/realtime client=192.0.2.1"));
    assert_null(strstr(t, KEY_A));
    assert_null(strstr(t, KEY_B));
    int lines = 0;
    for (const char *p = t; (p = strstr(p, "request refused")) != NULL; p++) lines++;
    assert_true(lines <= 2 * 5); /* at most 5 a second, in at most two seconds */
}

static void test_a_world_readable_keys_file_is_warned_about(void **st)
{
    char *f = path_in_dir("keys-open");
    settings s = base("", f);
    (void)st;
    write_file(f, KEY_A "\n");
    chmod(f, 0644);
    load_ok(&s);
    assert_non_null(strstr(log_text(), "the API keys file is readable by every user"));
}

static int group_setup(void **st)
{
    (void)st;
    if (mkdtemp(g_dir) == NULL) return -1;
    snprintf(g_log, sizeof g_log, "%s/log", g_dir);
    int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    log_set_fd(fd);
    return 0;
}

static int group_teardown(void **st)
{
    char cmd[400];
    (void)st;
    auth_free();
    log_clear_secrets();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define T(name) cmocka_unit_test_setup(name, setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_auth_is_off_without_any_key_source),
        T(test_a_configured_key_is_accepted_and_another_refused),
        T(test_a_bad_key_is_refused_at_load_without_being_repeated),
        T(test_the_keys_file_takes_one_key_a_line_with_comments),
        T(test_reloading_the_keys_file_adds_and_removes_keys),
        T(test_a_broken_or_missing_keys_file_keeps_the_keys_in_force),
        T(test_an_empty_keys_file_turns_auth_on_and_refuses_everyone),
        T(test_check_settings_changes_nothing),
        T(test_the_credential_comes_from_bearer_or_the_subprotocol),
        T(test_a_client_secret_opens_one_session_with_its_configuration),
        T(test_two_secrets_are_never_alike),
        T(test_an_expired_secret_is_refused_as_expired),
        T(test_the_max_ttl_setting_caps_secret_lifetimes),
        T(test_outstanding_secrets_are_bounded_and_a_used_one_frees_its_slot),
        T(test_refusals_are_logged_without_the_credential_and_rate_limited),
        T(test_a_world_readable_keys_file_is_warned_about),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
