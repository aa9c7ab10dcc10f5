/*
 * Core settings (host/settings.c): defaults, environment overrides, and the
 * one-line errors for unknown sections, unknown keys and bad values.
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

#include "base/log.h"
#include "settings.h"

/* ------------------------------------------------------------ helpers */

/* No VOXRAY_* variable of the caller's environment may leak into a test. */
static void clear_env(void)
{
    char name[256];
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        cfg_env_name(k->section, k->k.key, name, sizeof name);
        unsetenv(name);
    }
    for (int i = 0; settings_histogram_families[i]; i++) {
        char key[128];
        snprintf(key, sizeof key, "buckets.%s", settings_histogram_families[i]);
        cfg_env_name("metrics", key, name, sizeof name);
        unsetenv(name);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static cfg_file *parse(const char *text)
{
    cfg_file *c = NULL;
    char err[512] = "";
    if (cfg_parse_string(text, "test.ini", &c, err, sizeof err) != 0)
        fail_msg("parse error: %s", err);
    return c;
}

/* Load text that must be accepted; the caller frees with settings_free. */
static void load_ok(const char *text, settings *s)
{
    cfg_file *c = parse(text);
    char err[1024] = "";
    int rc = settings_load(c, s, err, sizeof err);
    cfg_free(c);
    if (rc != 0) fail_msg("settings_load refused: %s", err);
}

/* Load text that must be refused; the message goes to err. */
static void load_refused(const char *text, char *err, size_t errlen)
{
    cfg_file *c = parse(text);
    settings s;
    err[0] = '\0';
    int rc = settings_load(c, &s, err, errlen);
    cfg_free(c);
    if (rc == 0) {
        settings_free(&s);
        fail_msg("accepted: %s", text);
    }
    assert_int_equal(rc, -1);
    fprintf(stderr, "# %s\n", err);
    assert_null(strchr(err, '\n'));
}

/* ------------------------------------------------------------ defaults */

static void empty_config_gives_the_defaults(void **state)
{
    (void)state;
    settings s;
    load_ok("", &s);
    assert_string_equal(s.listen, "0.0.0.0:8080");
    assert_int_equal(s.max_sessions, 1000);
    assert_int_equal(s.http_threads, 2);
    assert_int_equal(s.header_timeout_ms, 5000);
    assert_int_equal(s.idle_timeout_ms, 60000);
    assert_int_equal(s.max_pending, 1024);
    assert_int_equal(s.max_pending_per_ip, 64);
    assert_int_equal(s.drain_timeout_ms, 10000);
    assert_int_equal(s.health_interval_ms, 500);
    assert_int_equal(s.log_level, VX_LOG_INFO);
    assert_int_equal(s.log_json, 0);
    assert_int_equal(s.metrics_enabled, 1);
    assert_string_equal(s.metrics_allow, "");
    assert_int_equal(s.session_sample_rate, 100);
    assert_string_equal(s.store, "memory");
    assert_int_equal(s.session_ttl_ms, 3600000);
    for (int st = 0; st < STAGE_COUNT; st++) assert_string_equal(s.providers[st], "");
    assert_int_equal(s.n_buckets, 0);
    assert_non_null(s.plugin_dir);
    assert_true(s.plugin_dir[0] != '\0');
    settings_free(&s);
}

static void file_values_replace_the_defaults(void **state)
{
    (void)state;
    settings s;
    load_ok("[server]\n"
            "listen = 127.0.0.1:9000\n"
            "max_sessions = 5\n"
            "header_timeout = 2s\n"
            "health_interval = 250ms\n"
            "[log]\n"
            "level = warn\n"
            "json = yes\n"
            "[metrics]\n"
            "enabled = off\n"
            "allow = 127.0.0.0/8, ::1/128\n"
            "[session]\n"
            "store = redis\n"
            "ttl = 1m\n"
            "[stt]\n"
            "providers = a, b\n",
            &s);
    assert_string_equal(s.listen, "127.0.0.1:9000");
    assert_int_equal(s.max_sessions, 5);
    assert_int_equal(s.header_timeout_ms, 2000);
    assert_int_equal(s.health_interval_ms, 250);
    assert_int_equal(s.log_level, VX_LOG_WARN);
    assert_int_equal(s.log_json, 1);
    assert_int_equal(s.metrics_enabled, 0);
    assert_string_equal(s.metrics_allow, "127.0.0.0/8, ::1/128");
    assert_string_equal(s.store, "redis");
    assert_int_equal(s.session_ttl_ms, 60000);
    assert_string_equal(s.providers[STAGE_STT], "a, b");
    assert_string_equal(s.providers[STAGE_LLM], "");
    settings_free(&s);
}

static void every_known_key_is_marked_used(void **state)
{
    (void)state;
    cfg_file *c = parse("[server]\nmax_sessions = 5\n[log]\nlevel = debug\n"
                        "[metrics]\nbuckets.http_request_duration_seconds = 1, 2\n");
    settings s;
    char err[512] = "";
    assert_int_equal(settings_load(c, &s, err, sizeof err), 0);
    for (size_t i = 0; i < c->n; i++) assert_int_equal(c->items[i].used, 1);
    settings_free(&s);
    cfg_free(c);
}

/* ------------------------------------------------------------ errors */

static void unknown_section_error_lists_the_allowed_sections(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\nlisten = :80\n[sever]\nmax_sessions = 3\n", err, sizeof err);
    assert_contains(err, "test.ini:3: unknown section [sever]");
    assert_contains(err, "[sever]");
    assert_contains(err, "allowed: server, log, metrics, session, stt, llm, tts, recording, auth, plugin.NAME");
}

static void unknown_key_error_names_place_key_and_allowed_keys(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\nlisten = :80\n\nmax_session = 5\n", err, sizeof err);
    assert_contains(err, "test.ini:4:");
    assert_contains(err, "'max_session'");
    assert_contains(err, "[server]");
    assert_contains(err, "allowed: listen, plugin_dir, max_sessions, http_threads");
    assert_contains(err, "drain_timeout");
}

static void unknown_metrics_key_lists_bucket_keys_as_allowed(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[metrics]\nenable = true\n", err, sizeof err);
    assert_contains(err, "test.ini:2:");
    assert_contains(err, "'enable'");
    assert_contains(err, "enabled");
    assert_contains(err, "buckets.<histogram family>");
}

static void bad_value_error_names_place_key_value_and_allowed(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\nlisten = :80\nmax_sessions = lots\n", err, sizeof err);
    assert_string_equal(err, "test.ini:3: [server] max_sessions = \"lots\": "
                             "not an integer (allowed: integer 1..1000000)");
}

static void out_of_range_value_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\nhttp_threads = 65\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [server] http_threads = \"65\"");
    assert_contains(err, "out of range");
    assert_contains(err, "integer 1..64");
}

static void bad_enum_value_lists_the_choices(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[log]\nlevel = loud\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [log] level = \"loud\"");
    assert_contains(err, "debug|info|warn|error");
}

static void bad_duration_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[session]\nttl = forever\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [session] ttl = \"forever\"");
    assert_contains(err, "duration");
}

static void bad_listen_address_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\nlisten = 8080\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [server] listen = \"8080\"");
    assert_contains(err, "host:port");
}

static void empty_store_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[session]\nstore =\n", err, sizeof err);
    assert_contains(err, "[session] store");
}

static void plugin_sections_are_left_for_the_plugins(void **state)
{
    (void)state;
    settings s;
    load_ok("[plugin.redis]\nplugin = store_redis\nanything = goes\n", &s);
    settings_free(&s);
}

static void plugin_section_without_a_name_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[plugin.]\nplugin = x\n", err, sizeof err);
    assert_contains(err, "test.ini:1:");
    assert_contains(err, "[plugin.NAME]");
}

/* ------------------------------------------------------------ environment */

static void env_level_wins_over_the_file(void **state)
{
    (void)state;
    settings s;
    setenv("VOXRAY_LOG_LEVEL", "debug", 1);
    load_ok("[log]\nlevel = error\n", &s);
    unsetenv("VOXRAY_LOG_LEVEL");
    assert_int_equal(s.log_level, VX_LOG_DEBUG);
    settings_free(&s);
}

static void env_sets_a_key_missing_from_the_file(void **state)
{
    (void)state;
    settings s;
    setenv("VOXRAY_SERVER_MAX_SESSIONS", "7", 1);
    setenv("VOXRAY_SESSION_STORE", "redis-main", 1);
    load_ok("", &s);
    unsetenv("VOXRAY_SERVER_MAX_SESSIONS");
    unsetenv("VOXRAY_SESSION_STORE");
    assert_int_equal(s.max_sessions, 7);
    assert_string_equal(s.store, "redis-main");
    settings_free(&s);
}

static void bad_env_value_error_names_the_variable(void **state)
{
    (void)state;
    char err[1024];
    setenv("VOXRAY_LOG_LEVEL", "loud", 1);
    load_refused("[log]\nlevel = info\n", err, sizeof err);
    unsetenv("VOXRAY_LOG_LEVEL");
    assert_contains(err, "environment VOXRAY_LOG_LEVEL");
    assert_contains(err, "\"loud\"");
    assert_contains(err, "debug|info|warn|error");
}

static void env_buckets_override_is_read(void **state)
{
    (void)state;
    settings s;
    setenv("VOXRAY_METRICS_BUCKETS_HTTP_REQUEST_DURATION_SECONDS", "0.25, 2", 1);
    load_ok("", &s);
    unsetenv("VOXRAY_METRICS_BUCKETS_HTTP_REQUEST_DURATION_SECONDS");
    assert_int_equal(s.n_buckets, 1);
    assert_string_equal(s.buckets[0].family, "http_request_duration_seconds");
    assert_int_equal(s.buckets[0].n, 2);
    assert_true(s.buckets[0].bounds[0] == 0.25);
    assert_true(s.buckets[0].bounds[1] == 2.0);
    settings_free(&s);
}

/* ------------------------------------------------------------ metrics */

static void bucket_override_is_parsed(void **state)
{
    (void)state;
    settings s;
    load_ok("[metrics]\nbuckets.http_request_duration_seconds = 0.1, 0.5, 1\n", &s);
    assert_int_equal(s.n_buckets, 1);
    assert_string_equal(s.buckets[0].family, "http_request_duration_seconds");
    assert_int_equal(s.buckets[0].n, 3);
    assert_true(s.buckets[0].bounds[0] == 0.1);
    assert_true(s.buckets[0].bounds[1] == 0.5);
    assert_true(s.buckets[0].bounds[2] == 1.0);
    settings_free(&s);
}

static void bucket_override_for_an_unknown_family_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[metrics]\nbuckets.request_seconds = 0.1, 1\n", err, sizeof err);
    assert_contains(err, "test.ini:2:");
    assert_contains(err, "'request_seconds'");
    assert_contains(err, "http_request_duration_seconds");
    assert_contains(err, "voxray_plugin_call_duration_seconds");
}

static void decreasing_buckets_are_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[metrics]\nbuckets.voxray_plugin_call_duration_seconds = 1, 0.5\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [metrics] buckets.voxray_plugin_call_duration_seconds");
    assert_contains(err, "\"1, 0.5\"");
    assert_contains(err, "increasing");
}

static void non_numeric_buckets_are_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[metrics]\nbuckets.http_request_duration_seconds = 0.1, fast\n", err, sizeof err);
    assert_contains(err, "test.ini:2:");
    assert_contains(err, "fast");
}

static void allowlist_with_bad_prefix_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[metrics]\nallow = 10.0.0.0/33\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [metrics] allow");
    assert_contains(err, "10.0.0.0/33");
    assert_contains(err, "prefix length");
    assert_contains(err, "allowed: ");
}

/* ------------------------------------------------------------ providers */

static void provider_list_with_an_empty_name_is_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[stt]\nproviders = a,,b\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [stt] providers");
    assert_contains(err, "\"a,,b\"");
    assert_contains(err, "empty name");
}

static void split_list_trims_each_name(void **state)
{
    (void)state;
    char *out[4];
    assert_int_equal(settings_split_list("a, b ,c", out, 4), 3);
    assert_string_equal(out[0], "a");
    assert_string_equal(out[1], "b");
    assert_string_equal(out[2], "c");
    for (int i = 0; i < 3; i++) free(out[i]);
    assert_int_equal(settings_split_list("\tonly one ", out, 4), 1);
    assert_string_equal(out[0], "only one");
    free(out[0]);
}

static void split_list_of_nothing_is_empty(void **state)
{
    (void)state;
    char *out[4];
    assert_int_equal(settings_split_list("", out, 4), 0);
    assert_int_equal(settings_split_list("  \t ", out, 4), 0);
}

static void split_list_refuses_empty_elements(void **state)
{
    (void)state;
    static const char *const bad[] = {"a,,b", "a,", ",a", "a, ,b", ","};
    char *out[4];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (settings_split_list(bad[i], out, 4) != -1) fail_msg("\"%s\" accepted", bad[i]);
}

static void split_list_refuses_more_than_max(void **state)
{
    (void)state;
    char *out[3];
    assert_int_equal(settings_split_list("a,b,c,d", out, 3), -1);
    assert_int_equal(settings_split_list("a,b,c", out, 3), 3);
    for (int i = 0; i < 3; i++) free(out[i]);
}

/* ------------------------------------------------------------ paths */

static void relative_plugin_dir_is_resolved_against_the_config_directory(void **state)
{
    (void)state;
    char dir[256], path[320], want[1024], err[512] = "";
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vx-settings-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/voxray.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("[server]\nplugin_dir = plugins:/opt/voxray/plugins:more/so\n", f);
    assert_int_equal(fclose(f), 0);

    cfg_file *c = NULL;
    settings s;
    int rc = cfg_parse_file(path, &c, err, sizeof err);
    unlink(path);
    rmdir(dir);
    if (rc != 0) fail_msg("%s", err);
    rc = settings_load(c, &s, err, sizeof err);
    cfg_free(c);
    if (rc != 0) fail_msg("%s", err);

    snprintf(want, sizeof want, "%s/plugins:/opt/voxray/plugins:%s/more/so", dir, dir);
    assert_string_equal(s.plugin_dir, want);
    assert_string_equal(s.config_dir, dir);
    assert_string_equal(s.config_path, path);
    settings_free(&s);
}

/* ------------------------------------------------------------ auth and limits */

static void auth_and_limit_keys_default_to_off(void **state)
{
    (void)state;
    settings s;
    load_ok("", &s);
    assert_string_equal(s.auth_api_keys, "");
    assert_string_equal(s.auth_keys_file, "");
    assert_string_equal(s.allowed_origins, "");
    assert_string_equal(s.trusted_proxies, "");
    assert_int_equal(s.max_sessions_per_ip, 0);
    assert_true(s.max_upgrades_per_second_per_ip == 0);
    assert_int_equal(s.client_secret_max_ttl_ms, 7200000);
    assert_int_equal(s.max_client_secrets, 1000);
    settings_free(&s);
}

static void keys_file_is_relative_to_the_config_file(void **state)
{
    (void)state;
    settings s;
    cfg_file *c = NULL;
    char err[512] = "";
    assert_int_equal(cfg_parse_string("[auth]\nkeys_file = keys.txt\nmax_client_secrets = 5\n"
                                      "client_secret_max_ttl = 90s\n",
                                      "/etc/voxray/voxray.ini", &c, err, sizeof err), 0);
    if (settings_load(c, &s, err, sizeof err) != 0) fail_msg("%s", err);
    cfg_free(c);
    assert_string_equal(s.auth_keys_file, "/etc/voxray/keys.txt");
    assert_int_equal(s.max_client_secrets, 5);
    assert_int_equal(s.client_secret_max_ttl_ms, 90000);
    settings_free(&s);
}

static void a_bad_api_keys_value_is_never_repeated(void **state)
{
    (void)state;
    char err[1024];
    char big[70000];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *text = NULL;
    assert_true(asprintf(&text, "[auth]\napi_keys = %s\n", big) > 0);
    load_refused(text, err, sizeof err);
    free(text);
    assert_contains(err, "[auth] api_keys = \"***\": too long");
}

static void bad_trusted_proxies_are_refused(void **state)
{
    (void)state;
    char err[1024];
    load_refused("[server]\ntrusted_proxies = 10.0.0.0/8, proxy.example\n", err, sizeof err);
    assert_contains(err, "test.ini:2: [server] trusted_proxies = \"10.0.0.0/8, proxy.example\"");
    assert_contains(err, "'proxy.example': not an IP address");
}

static void allowed_origins_must_be_origins(void **state)
{
    (void)state;
    char err[1024];
    settings s;
    load_ok("[server]\nallowed_origins = https://app.example.com, http://localhost:8080/\n", &s);
    assert_string_equal(s.allowed_origins, "https://app.example.com, http://localhost:8080/");
    settings_free(&s);
    load_refused("[server]\nallowed_origins = https://app.example.com/voice\n", err, sizeof err);
    assert_contains(err, "'https://app.example.com/voice' is not an origin (scheme://host[:port], no path)");
    load_refused("[server]\nallowed_origins = app.example.com\n", err, sizeof err);
    assert_contains(err, "'app.example.com' is not an origin");
}

static void stage_names(void **state)
{
    (void)state;
    assert_string_equal(stage_name(STAGE_STT), "stt");
    assert_string_equal(stage_name(STAGE_LLM), "llm");
    assert_string_equal(stage_name(STAGE_TTS), "tts");
    assert_string_equal(stage_name(STAGE_COUNT), "?");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(empty_config_gives_the_defaults),
        T(file_values_replace_the_defaults),
        T(every_known_key_is_marked_used),
        T(unknown_section_error_lists_the_allowed_sections),
        T(unknown_key_error_names_place_key_and_allowed_keys),
        T(unknown_metrics_key_lists_bucket_keys_as_allowed),
        T(bad_value_error_names_place_key_value_and_allowed),
        T(out_of_range_value_is_refused),
        T(bad_enum_value_lists_the_choices),
        T(bad_duration_is_refused),
        T(bad_listen_address_is_refused),
        T(empty_store_is_refused),
        T(plugin_sections_are_left_for_the_plugins),
        T(plugin_section_without_a_name_is_refused),
        T(env_level_wins_over_the_file),
        T(env_sets_a_key_missing_from_the_file),
        T(bad_env_value_error_names_the_variable),
        T(env_buckets_override_is_read),
        T(bucket_override_is_parsed),
        T(bucket_override_for_an_unknown_family_is_refused),
        T(decreasing_buckets_are_refused),
        T(non_numeric_buckets_are_refused),
        T(allowlist_with_bad_prefix_is_refused),
        T(provider_list_with_an_empty_name_is_refused),
        T(split_list_trims_each_name),
        T(split_list_of_nothing_is_empty),
        T(split_list_refuses_empty_elements),
        T(split_list_refuses_more_than_max),
        T(relative_plugin_dir_is_resolved_against_the_config_directory),
        T(auth_and_limit_keys_default_to_off),
        T(keys_file_is_relative_to_the_config_file),
        T(a_bad_api_keys_value_is_never_repeated),
        T(bad_trusted_proxies_are_refused),
        T(allowed_origins_must_be_origins),
        T(stage_names),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
