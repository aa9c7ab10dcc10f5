/*
 * Logging (host/base/log.c): the exact text and JSON line formats, escaping that
 * keeps every event on one line, secret masking, level filtering and whole
 * lines under concurrent writers.
 *
 * Rendering is checked through log_format_line() with a fixed clock; the
 * emitting functions are checked through a pipe given to log_set_fd().
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

/* 2026-05-15 12:34:56.123 UTC */
#define NOW_MS 1778848496123LL

#define TEXT_LINE_RE                                                            \
    "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} "                   \
    "(DEBUG|INFO|WARN|ERROR) [^\n]*\n$"
#define RFC3339_MS_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"

/* ------------------------------------------------------------ helpers */

static void reset_logger(void)
{
    log_set_json(0);
    log_set_level(VX_LOG_INFO);
    log_clear_secrets();
    /* Never stdout: that is where the TAP report goes. */
    log_set_fd(STDERR_FILENO);
}

static int setup(void **state)
{
    (void)state;
    reset_logger();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    reset_logger();
    return 0;
}

static void assert_matches(const char *s, const char *re)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&rx, s, 0, NULL, 0);
    regfree(&rx);
    if (rc != 0) fail_msg("\"%s\" does not match /%s/", s, re);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL) hay = "(null)";
    if (strstr(hay, needle) == NULL) fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (hay == NULL) fail_msg("(null) checked for \"%s\"", needle);
    else if (strstr(hay, needle) != NULL) fail_msg("\"%s\" contains \"%s\"", hay, needle);
}

/* A line is one line: its only newline is the last byte. */
static void assert_one_line(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 0);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    assert_null(memchr(line, '\r', n));
}

static char *text_line(int level, const char *msg, const char *const *kv, size_t n_kv)
{
    char *line = log_format_line(level, NOW_MS, msg, kv, n_kv);
    assert_non_null(line);
    return line;
}

/* Parse a JSON line; fails the test unless it is one valid JSON object. */
static json_t *json_line(const char *line)
{
    json_error_t e;
    assert_one_line(line);
    json_t *o = json_loads(line, 0, &e);
    if (o == NULL) fail_msg("not JSON (%s): %s", e.text, line);
    assert_true(json_is_object(o));
    return o;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    if (s == NULL) fail_msg("field '%s' missing or not a string", key);
    return s ? s : "";
}

/* Decode the key=value fields of a text line whose message is one word, the
 * way a log reader would: bare values end at a space, quoted values use the
 * escapes \" \\ \n \r \t \xHH. Returns the number of fields, or -1 if the
 * line cannot be read back unambiguously. */
enum { MAX_FIELDS = 16, FIELD_LEN = 256 };
static int decode_fields(const char *line, char keys[][FIELD_LEN], char vals[][FIELD_LEN])
{
    const char *p = line;
    for (int skip = 0; skip < 3; skip++) { /* date, time, level */
        p = strchr(p, ' ');
        if (p == NULL) return -1;
        p++;
    }
    p += strcspn(p, " \n"); /* the one-word message */
    int n = 0;
    while (*p == ' ') {
        p++;
        if (n == MAX_FIELDS) return -1;
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq == p || (size_t)(eq - p) >= FIELD_LEN) return -1;
        memcpy(keys[n], p, (size_t)(eq - p));
        keys[n][eq - p] = '\0';
        if (strpbrk(keys[n], " \"\\")) return -1;
        p = eq + 1;
        size_t o = 0;
        if (*p == '"') {
            p++;
            while (*p != '"') {
                unsigned char c = (unsigned char)*p;
                if (c == '\0' || c == '\n') return -1;
                if (c == '\\') {
                    p++;
                    switch (*p) {
                    case '"': c = '"'; break;
                    case '\\': c = '\\'; break;
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'x': {
                        unsigned v;
                        if (sscanf(p + 1, "%2x", &v) != 1) return -1;
                        c = (unsigned char)v;
                        p += 2;
                        break;
                    }
                    default: return -1;
                    }
                }
                if (o + 1 >= FIELD_LEN) return -1;
                vals[n][o++] = (char)c;
                p++;
            }
            p++;
        } else {
            while (*p && *p != ' ' && *p != '\n') {
                if (*p == '"' || *p == '=' || *p == '\\' || o + 1 >= FIELD_LEN) return -1;
                vals[n][o++] = *p++;
            }
        }
        vals[n][o] = '\0';
        n++;
    }
    return strcmp(p, "\n") == 0 ? n : -1;
}

/* Everything written to a pipe between capture_start and capture_end. */
typedef struct capture {
    int fds[2];
} capture;

static void capture_start(capture *c)
{
    assert_int_equal(pipe(c->fds), 0);
    log_set_fd(c->fds[1]);
}

/* Small outputs only: the writer does not block as long as everything fits
 * in the pipe buffer. Returns a malloc'd string. */
static char *capture_end(capture *c)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    assert_non_null(buf);
    log_set_fd(STDERR_FILENO);
    close(c->fds[1]);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = read(c->fds[0], buf + len, cap - len - 1);
        assert_true(r >= 0);
        if (r == 0) break;
        len += (size_t)r;
    }
    close(c->fds[0]);
    buf[len] = '\0';
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

/* ------------------------------------------------------------ text format */

static void text_line_is_time_level_message_and_fields(void **state)
{
    (void)state;
    const char *kv[] = {"session_id", "abc", "transport", "websocket"};
    char *line = text_line(VX_LOG_INFO, "session started", kv, 2);
    assert_string_equal(line,
                        "2026/05/15 12:34:56 INFO session started session_id=abc transport=websocket\n");
    free(line);
}

static void text_line_uses_upper_case_level_names(void **state)
{
    (void)state;
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    for (int lv = VX_LOG_DEBUG; lv <= VX_LOG_ERROR; lv++) {
        char *line = text_line(lv, "hello", NULL, 0);
        char want[64];
        snprintf(want, sizeof want, "2026/05/15 12:34:56 %s hello\n", names[lv]);
        assert_string_equal(line, want);
        assert_matches(line, TEXT_LINE_RE);
        free(line);
    }
}

static void text_line_matches_the_reference_pattern(void **state)
{
    (void)state;
    const char *kv[] = {"path", "/metrics", "status", "200"};
    char *line = text_line(VX_LOG_WARN, "slow request", kv, 2);
    assert_matches(line, TEXT_LINE_RE);
    assert_matches(line, " WARN slow request path=/metrics status=200\n$");
    free(line);
}

static void plain_values_are_not_quoted(void **state)
{
    (void)state;
    const char *kv[] = {"addr", "127.0.0.1:8080", "id", "a-b_c.d/e", "utf8", "caf\xc3\xa9"};
    char *line = text_line(VX_LOG_INFO, "m", kv, 3);
    assert_contains(line, " addr=127.0.0.1:8080 id=a-b_c.d/e utf8=caf\xc3\xa9\n");
    free(line);
}

static void special_values_are_quoted_and_escaped(void **state)
{
    (void)state;
    const char *kv[] = {
        "space", "two words",   "eq",   "a=b",       "quote", "say \"hi\"",
        "bs",    "C:\\dir",     "nl",   "one\ntwo",  "tab",   "a\tb",
        "ctl",   "bell\x07",    "empty", "",         "cr",    "x\ry",
    };
    char *line = text_line(VX_LOG_INFO, "m", kv, 9);
    fprintf(stderr, "# %s", line);
    assert_one_line(line);
    assert_contains(line, " space=\"two words\"");
    assert_contains(line, " eq=\"a=b\"");
    assert_contains(line, " quote=\"say \\\"hi\\\"\"");
    assert_contains(line, " bs=\"C:\\\\dir\"");
    assert_contains(line, " nl=\"one\\ntwo\"");
    assert_contains(line, " tab=\"a\\tb\"");
    assert_contains(line, " ctl=\"bell\\x07\"");
    assert_contains(line, " empty=\"\"");
    assert_contains(line, " cr=\"x\\ry\"");
    free(line);
}

static void quoted_values_parse_back_to_the_originals(void **state)
{
    (void)state;
    const char *kv[] = {
        "space", "two words", "eq",    "a=b",     "quote", "say \"hi\" \\\"",
        "bs",    "C:\\dir\\", "nl",    "one\ntwo", "tab",  "a\tb",
        "ctl",   "\x01\x1f\x7f", "empty", "",     "null", NULL,
        "plain", "ok",
    };
    const size_t n = sizeof kv / sizeof *kv / 2;
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    char *line = text_line(VX_LOG_INFO, "m", kv, n);
    assert_one_line(line);
    int got = decode_fields(line, keys, vals);
    if (got < 0) fail_msg("cannot read back: %s", line);
    assert_int_equal(got, (int)n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(keys[i], kv[2 * i]);
        assert_string_equal(vals[i], kv[2 * i + 1] ? kv[2 * i + 1] : "");
    }
    free(line);
}

static void value_cannot_forge_another_field(void **state)
{
    (void)state;
    const char *kv[] = {"user", "bob level=ERROR admin=true"};
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    char *line = text_line(VX_LOG_INFO, "m", kv, 1);
    assert_int_equal(decode_fields(line, keys, vals), 1);
    assert_string_equal(keys[0], "user");
    assert_string_equal(vals[0], "bob level=ERROR admin=true");
    free(line);
}

static void key_with_odd_characters_cannot_forge_a_field(void **state)
{
    (void)state;
    const char *kv[] = {"a b=c", "v", "k\n", "w"};
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    char *line = text_line(VX_LOG_INFO, "m", kv, 2);
    assert_one_line(line);
    assert_int_equal(decode_fields(line, keys, vals), 2);
    assert_string_equal(keys[0], "invalid_key");
    assert_string_equal(vals[0], "v");
    assert_string_equal(keys[1], "invalid_key");
    free(line);
}

static void message_with_newline_stays_on_one_line(void **state)
{
    (void)state;
    char *line = text_line(VX_LOG_ERROR, "first\nsecond\r\nthird\x1b[31m", NULL, 0);
    assert_one_line(line);
    assert_matches(line, TEXT_LINE_RE);
    assert_string_equal(line, "2026/05/15 12:34:56 ERROR first\\nsecond\\r\\nthird\\x1b[31m\n");
    free(line);
}

static void null_message_gives_an_empty_message(void **state)
{
    (void)state;
    char *line = text_line(VX_LOG_INFO, NULL, NULL, 0);
    assert_string_equal(line, "2026/05/15 12:34:56 INFO \n");
    free(line);
}

/* ------------------------------------------------------------ JSON format */

static void json_line_is_one_valid_object_with_the_envelope(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"session_id", "abc", "transport", "websocket"};
    char *line = text_line(VX_LOG_INFO, "session started", kv, 2);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "time"), "2026-05-15T12:34:56.123Z");
    assert_matches(jstr(o, "time"), RFC3339_MS_RE);
    assert_string_equal(jstr(o, "level"), "info");
    assert_string_equal(jstr(o, "msg"), "session started");
    assert_string_equal(jstr(o, "session_id"), "abc");
    assert_string_equal(jstr(o, "transport"), "websocket");
    assert_int_equal(json_object_size(o), 5);
    json_decref(o);
    free(line);
}

static void json_fields_follow_the_envelope_in_order(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"zeta", "1", "alpha", "2", "mid", "3"};
    char *line = text_line(VX_LOG_WARN, "ordered", kv, 3);
    static const char *const order[] = {"\"time\":", "\"level\":", "\"msg\":",
                                        "\"zeta\":", "\"alpha\":", "\"mid\":"};
    const char *prev = line;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const char *at = strstr(line, order[i]);
        if (at == NULL || at < prev) fail_msg("%s out of order in %s", order[i], line);
        prev = at;
    }
    assert_int_equal(strncmp(line, "{\"time\":", 8), 0);
    free(line);
}

static void json_levels_are_lower_case(void **state)
{
    (void)state;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    log_set_json(1);
    for (int lv = VX_LOG_DEBUG; lv <= VX_LOG_ERROR; lv++) {
        char *line = text_line(lv, "x", NULL, 0);
        json_t *o = json_line(line);
        assert_string_equal(jstr(o, "level"), names[lv]);
        json_decref(o);
        free(line);
    }
}

static void json_time_is_utc_with_zero_padded_milliseconds(void **state)
{
    (void)state;
    log_set_json(1);
    char *line = log_format_line(VX_LOG_INFO, 1778848496007LL, "x", NULL, 0);
    assert_non_null(line);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "time"), "2026-05-15T12:34:56.007Z");
    json_decref(o);
    free(line);
}

static void json_fields_cannot_override_the_envelope(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"time", "1999-01-01T00:00:00.000Z", "level", "debug",
                        "msg", "forged", "real", "yes"};
    char *line = text_line(VX_LOG_ERROR, "genuine", kv, 4);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "time"), "2026-05-15T12:34:56.123Z");
    assert_string_equal(jstr(o, "level"), "error");
    assert_string_equal(jstr(o, "msg"), "genuine");
    assert_string_equal(jstr(o, "real"), "yes");
    assert_lacks(line, "forged");
    assert_lacks(line, "1999");
    json_decref(o);
    free(line);
}

static void json_escapes_quotes_and_control_characters(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"v", "say \"hi\"\n\t\\ \x01"};
    char *line = text_line(VX_LOG_INFO, "line1\nline2", kv, 1);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "msg"), "line1\nline2");
    assert_string_equal(jstr(o, "v"), "say \"hi\"\n\t\\ \x01");
    json_decref(o);
    free(line);
}

static void json_stays_valid_with_invalid_utf8(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"bad", "\xc3\x28 \xff\xfe", "ok", "caf\xc3\xa9", "k\xff", "v"};
    char *line = text_line(VX_LOG_INFO, "broken \xe2\x82 text \x80", kv, 3);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "level"), "info");
    assert_string_equal(jstr(o, "ok"), "caf\xc3\xa9");
    assert_non_null(json_object_get(o, "bad"));
    json_decref(o);
    free(line);
}

/* ------------------------------------------------------------ secrets */

static void registered_secret_never_appears_in_text(void **state)
{
    (void)state;
    log_add_secret("hunter2-secret");
    const char *kv[] = {"note", "pass was hunter2-secret!", "other", "hunter2-secrethunter2-secret"};
    char *line = text_line(VX_LOG_INFO, "login with hunter2-secret ok", kv, 2);
    assert_lacks(line, "hunter2");
    assert_contains(line, "login with *** ok");
    assert_contains(line, "note=\"pass was ***!\"");
    assert_contains(line, "other=******");
    free(line);
}

static void registered_secret_never_appears_in_json(void **state)
{
    (void)state;
    log_add_secret("hunter2-secret");
    log_set_json(1);
    const char *kv[] = {"note", "pass was hunter2-secret!"};
    char *line = text_line(VX_LOG_INFO, "login with hunter2-secret ok", kv, 1);
    json_t *o = json_line(line);
    assert_lacks(line, "hunter2");
    assert_string_equal(jstr(o, "msg"), "login with *** ok");
    assert_string_equal(jstr(o, "note"), "pass was ***!");
    json_decref(o);
    free(line);
}

/* A secret holding characters that the formats escape must be masked too:
 * a reader who decodes the line must not get it back (log.c masks the
 * message and values before quoting them). */
static void secret_with_escaped_characters_is_masked(void **state)
{
    (void)state;
    static const char secret[] = "pa\"ss\\w0rd";
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    log_add_secret(secret);
    const char *kv[] = {"note", secret};

    char *line = text_line(VX_LOG_INFO, "m", kv, 1);
    assert_int_equal(decode_fields(line, keys, vals), 1);
    fprintf(stderr, "# text: %s", line);
    assert_lacks(vals[0], "ss\\w0");
    assert_contains(vals[0], "***");
    free(line);

    log_set_json(1);
    line = text_line(VX_LOG_INFO, "m", kv, 1);
    json_t *o = json_line(line);
    fprintf(stderr, "# json: %s", line);
    assert_lacks(jstr(o, "note"), "ss\\w0");
    assert_contains(jstr(o, "note"), "***");
    json_decref(o);
    free(line);
}

static void secret_shorter_than_four_bytes_is_ignored(void **state)
{
    (void)state;
    log_add_secret("abc");
    char *line = text_line(VX_LOG_INFO, "abc and abcd", NULL, 0);
    assert_contains(line, "abc and abcd");
    assert_lacks(line, "***");
    free(line);
}

static void credential_field_names_are_always_masked(void **state)
{
    (void)state;
    const char *kv[] = {"password", "p4ss", "api_key", "k-123", "Authorization", "Bearer xyz",
                        "secret", "s3", "token", "t0k", "apikey", "ak", "user", "bob"};
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    char *line = text_line(VX_LOG_INFO, "m", kv, 7);
    assert_int_equal(decode_fields(line, keys, vals), 7);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(keys[i], kv[2 * i]);
        assert_string_equal(vals[i], "***");
    }
    assert_string_equal(vals[6], "bob");
    assert_lacks(line, "p4ss");
    assert_lacks(line, "Bearer");
    free(line);
}

/* Only the credential word itself or a "_word" suffix is masked: counters
 * such as prompt_tokens stay readable. */
static void credential_suffixes_are_masked_but_lookalikes_are_not(void **state)
{
    (void)state;
    const char *kv[] = {"client_secret", "cs-1", "access_token", "at-2",
                        "prompt_tokens", "42", "secret_name", "prod"};
    char keys[MAX_FIELDS][FIELD_LEN], vals[MAX_FIELDS][FIELD_LEN];
    char *line = text_line(VX_LOG_INFO, "m", kv, 4);
    assert_int_equal(decode_fields(line, keys, vals), 4);
    assert_string_equal(vals[0], "***");
    assert_string_equal(vals[1], "***");
    assert_string_equal(vals[2], "42");
    assert_string_equal(vals[3], "prod");
    free(line);
}

static void credential_field_names_are_masked_in_json(void **state)
{
    (void)state;
    log_set_json(1);
    const char *kv[] = {"password", "p4ss", "API_KEY", "k-123", "authorization", "Bearer xyz"};
    char *line = text_line(VX_LOG_INFO, "m", kv, 3);
    json_t *o = json_line(line);
    assert_string_equal(jstr(o, "password"), "***");
    assert_string_equal(jstr(o, "API_KEY"), "***");
    assert_string_equal(jstr(o, "authorization"), "***");
    assert_lacks(line, "p4ss");
    json_decref(o);
    free(line);
}

static void cleared_secrets_are_no_longer_masked(void **state)
{
    (void)state;
    log_add_secret("hunter2-secret");
    char *line = text_line(VX_LOG_INFO, "x hunter2-secret", NULL, 0);
    assert_lacks(line, "hunter2");
    free(line);
    log_clear_secrets();
    line = text_line(VX_LOG_INFO, "x hunter2-secret", NULL, 0);
    assert_contains(line, "x hunter2-secret");
    free(line);
}

/* ------------------------------------------------------------ levels */

static void level_below_the_threshold_is_dropped(void **state)
{
    (void)state;
    capture c;
    log_set_level(VX_LOG_WARN);
    assert_int_equal(log_get_level(), VX_LOG_WARN);
    capture_start(&c);
    log_debug("dropped debug");
    log_info("dropped info", "k", "v");
    log_warn("kept warn", "k", "v");
    log_error("kept error");
    log_fmt(VX_LOG_INFO, "dropped %d", 3);
    log_fmt(VX_LOG_ERROR, "kept %s %d", "fmt", 4);
    char *out = capture_end(&c);
    assert_int_equal(count_lines(out), 3);
    assert_lacks(out, "dropped");
    assert_matches(out, "^[^\n]* WARN kept warn k=v\n[^\n]* ERROR kept error\n[^\n]* ERROR kept fmt 4\n$");
    free(out);
}

static void emitted_lines_are_well_formed(void **state)
{
    (void)state;
    capture c;
    log_set_level(VX_LOG_DEBUG);
    capture_start(&c);
    log_debug("debug line", "a", "1");
    log_info("info line", "b", "two words");
    char *out = capture_end(&c);
    char *second = strchr(out, '\n');
    assert_non_null(second);
    second++;
    char first[512];
    snprintf(first, sizeof first, "%.*s", (int)(second - out), out);
    assert_matches(first, TEXT_LINE_RE);
    assert_matches(first, " DEBUG debug line a=1\n$");
    assert_matches(second, TEXT_LINE_RE);
    assert_matches(second, " INFO info line b=\"two words\"\n$");
    free(out);
}

static void emitted_json_lines_parse(void **state)
{
    (void)state;
    capture c;
    log_set_json(1);
    capture_start(&c);
    log_info("started", "port", "8080");
    char *out = capture_end(&c);
    json_t *o = json_line(out);
    assert_string_equal(jstr(o, "msg"), "started");
    assert_string_equal(jstr(o, "port"), "8080");
    assert_matches(jstr(o, "time"), RFC3339_MS_RE);
    json_decref(o);
    free(out);
}

static void invalid_level_is_ignored_by_set_level(void **state)
{
    (void)state;
    log_set_level(VX_LOG_ERROR);
    log_set_level(17);
    log_set_level(-1);
    assert_int_equal(log_get_level(), VX_LOG_ERROR);
}

static void level_parse_accepts_names_case_insensitively(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), VX_LOG_DEBUG);
    assert_int_equal(log_level_parse("info"), VX_LOG_INFO);
    assert_int_equal(log_level_parse("warn"), VX_LOG_WARN);
    assert_int_equal(log_level_parse("warning"), VX_LOG_WARN);
    assert_int_equal(log_level_parse("error"), VX_LOG_ERROR);
    assert_int_equal(log_level_parse("DEBUG"), VX_LOG_DEBUG);
    assert_int_equal(log_level_parse("Info"), VX_LOG_INFO);
    assert_int_equal(log_level_parse("WARNING"), VX_LOG_WARN);
    assert_int_equal(log_level_parse("eRRoR"), VX_LOG_ERROR);
}

static void level_parse_rejects_other_words(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "verbose", "trace", "fatal", "err", "warn ",
                                      " info", "infos", "0", "3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (log_level_parse(bad[i]) != -1) fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(log_level_parse(NULL), -1);
}

static void level_names_round_trip(void **state)
{
    (void)state;
    for (int lv = VX_LOG_DEBUG; lv <= VX_LOG_ERROR; lv++)
        assert_int_equal(log_level_parse(log_level_name(lv)), lv);
}

/* ------------------------------------------------------------ threads */

enum { N_WRITERS = 4, LINES_PER_WRITER = 1000 };

typedef struct sink {
    int fd;
    char *buf;
    size_t len, cap;
    int failed;
} sink;

static void *reader_main(void *arg)
{
    sink *s = arg;
    for (;;) {
        if (s->cap - s->len < 65536) {
            size_t cap = s->cap ? s->cap * 2 : 1 << 20;
            char *nb = realloc(s->buf, cap);
            if (nb == NULL) {
                s->failed = 1;
                return NULL;
            }
            s->buf = nb;
            s->cap = cap;
        }
        ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
        if (r < 0) {
            s->failed = 1;
            return NULL;
        }
        if (r == 0) break;
        s->len += (size_t)r;
    }
    s->buf[s->len] = '\0';
    return NULL;
}

static void *writer_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    char tid[16], seq[16], pad[301];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    snprintf(tid, sizeof tid, "%d", id);
    for (int i = 0; i < LINES_PER_WRITER; i++) {
        snprintf(seq, sizeof seq, "%d", i);
        log_info("concurrent line", "writer", tid, "seq", seq, "pad", pad);
    }
    return NULL;
}

static void concurrent_writers_never_interleave_lines(void **state)
{
    (void)state;
    int fds[2];
    sink s = {0};
    pthread_t reader, writers[N_WRITERS];
    static unsigned char seen[N_WRITERS][LINES_PER_WRITER];
    memset(seen, 0, sizeof seen);

    assert_int_equal(pipe(fds), 0);
    s.fd = fds[0];
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &s), 0);
    log_set_fd(fds[1]);
    for (int i = 0; i < N_WRITERS; i++)
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N_WRITERS; i++) pthread_join(writers[i], NULL);
    log_set_fd(STDERR_FILENO);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);
    assert_false(s.failed);

    regex_t rx;
    assert_int_equal(regcomp(&rx,
                             "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} INFO "
                             "concurrent line writer=([0-3]) seq=([0-9]+) pad=([a-d]{300})$",
                             REG_EXTENDED),
                     0);
    int lines = 0, bad = 0;
    char *save = NULL;
    for (char *l = strtok_r(s.buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[4];
        lines++;
        if (regexec(&rx, l, 4, m, 0) != 0) {
            if (bad++ < 3) fprintf(stderr, "# malformed line: %.120s\n", l);
            continue;
        }
        int w = l[m[1].rm_so] - '0';
        int seq = atoi(l + m[2].rm_so);
        /* The padding letter must belong to the writer named on the line. */
        if (l[m[3].rm_so] != 'a' + w || seq >= LINES_PER_WRITER || seen[w][seq]++) bad++;
    }
    regfree(&rx);
    free(s.buf);
    assert_int_equal(bad, 0);
    assert_int_equal(lines, N_WRITERS * LINES_PER_WRITER);
}

int main(void)
{
    /* Text lines use local time: pin it so the expected strings are exact. */
    setenv("TZ", "UTC", 1);
    tzset();

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(text_line_is_time_level_message_and_fields),
        T(text_line_uses_upper_case_level_names),
        T(text_line_matches_the_reference_pattern),
        T(plain_values_are_not_quoted),
        T(special_values_are_quoted_and_escaped),
        T(quoted_values_parse_back_to_the_originals),
        T(value_cannot_forge_another_field),
        T(key_with_odd_characters_cannot_forge_a_field),
        T(message_with_newline_stays_on_one_line),
        T(null_message_gives_an_empty_message),
        T(json_line_is_one_valid_object_with_the_envelope),
        T(json_fields_follow_the_envelope_in_order),
        T(json_levels_are_lower_case),
        T(json_time_is_utc_with_zero_padded_milliseconds),
        T(json_fields_cannot_override_the_envelope),
        T(json_escapes_quotes_and_control_characters),
        T(json_stays_valid_with_invalid_utf8),
        T(registered_secret_never_appears_in_text),
        T(registered_secret_never_appears_in_json),
        T(secret_with_escaped_characters_is_masked),
        T(secret_shorter_than_four_bytes_is_ignored),
        T(credential_field_names_are_always_masked),
        T(credential_suffixes_are_masked_but_lookalikes_are_not),
        T(credential_field_names_are_masked_in_json),
        T(cleared_secrets_are_no_longer_masked),
        T(level_below_the_threshold_is_dropped),
        T(emitted_lines_are_well_formed),
        T(emitted_json_lines_parse),
        T(invalid_level_is_ignored_by_set_level),
        T(level_parse_accepts_names_case_insensitively),
        T(level_parse_rejects_other_words),
        T(level_names_round_trip),
        T(concurrent_writers_never_interleave_lines),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
