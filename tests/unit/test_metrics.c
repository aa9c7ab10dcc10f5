/*
 * Unit tests of the metrics library: validation, family identity, series
 * lifetime, histogram bucketing, concurrency and the exact exposition text
 * (compared byte-for-byte with tests/unit/golden/metrics.prom).
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR "tests/unit/golden"
#endif

/* ---- helpers ------------------------------------------------------------ */

static char *render(metrics_registry *r)
{
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(metrics_render(r, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

/* Does the exposition contain this exact line? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return 1;
        p += n;
    }
    return 0;
}

static void assert_line(metrics_registry *r, const char *line, int present)
{
    char *out = render(r);
    if (has_line(out, line) != present)
        fail_msg("line %s %s in:\n%s", line, present ? "missing" : "present", out);
    free(out);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (fp == NULL) return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, fp);
        buf[*len] = '\0';
    }
    fclose(fp);
    return buf;
}

/* ---- golden exposition -------------------------------------------------- */

static metrics_registry *golden_registry(void)
{
    static const char *const err_labels[] = {"provider", "error_type"};
    static const char *const sensor[] = {"sensor"};
    static const char *const stage[] = {"stage"};
    static const double bounds[] = {0.005, 0.01, 0.25, 1, 2.5};
    metrics_registry *r = metrics_registry_new();
    metrics_family *f;
    metrics_series *s;

    assert_non_null(r);

    f = metrics_counter_family(r, "voxray_test_requests_total", "Requests handled.", 0, NULL);
    s = metrics_series_get(f, NULL);
    metrics_counter_add(s, 42);
    metrics_series_release(s);

    f = metrics_counter_family(r, "voxray_test_errors_total",
                               "Errors by provider and type.\nA backslash \\ and a newline "
                               "in help are escaped.",
                               2, err_labels);
    s = metrics_series_get(f, (const char *const[]){"sim", "timeout"});
    metrics_counter_inc(s);
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"back\\slash", "say \"hi\""});
    metrics_counter_add(s, 2);
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"line1\nline2", "h\xc3\xa9llo \xe2\x9c\x93"});
    metrics_counter_add(s, 18446744073709551615u);
    metrics_series_release(s);

    f = metrics_gauge_family(r, "voxray_test_temperature_celsius", "Temperature by sensor.",
                             1, sensor);
    s = metrics_series_get(f, (const char *const[]){"outside"});
    metrics_gauge_set(s, -3.5);
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"fridge"});
    metrics_gauge_set(s, 0.1);
    metrics_gauge_add(s, 0.2); /* 0.30000000000000004: needs 17 digits */
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"office"});
    metrics_gauge_set(s, 21);
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"probe"});
    metrics_gauge_set(s, 1e-7);
    metrics_series_release(s);

    f = metrics_gauge_family(r, "voxray_test_queue_depth", "Jobs waiting.", 0, NULL);
    s = metrics_series_get(f, NULL);
    metrics_gauge_add(s, 3);
    metrics_series_release(s);

    f = metrics_histogram_family(r, "voxray_test_latency_seconds", "Stage latency.", 1, stage,
                                 bounds, 5);
    s = metrics_series_get(f, (const char *const[]){"stt"});
    metrics_histogram_observe(s, 0.003);
    metrics_histogram_observe(s, 0.005); /* equal to a bound: that bucket */
    metrics_histogram_observe(s, 0.2);
    metrics_histogram_observe(s, 1);
    metrics_histogram_observe(s, 3);     /* above every bound: +Inf only */
    metrics_series_release(s);
    s = metrics_series_get(f, (const char *const[]){"tts"});
    metrics_histogram_observe_ns(s, 10000000);
    metrics_series_release(s);

    f = metrics_histogram_family(r, "voxray_test_default_buckets_seconds",
                                 "Default buckets.", 0, NULL, NULL, 0);
    s = metrics_series_get(f, NULL);
    metrics_histogram_observe(s, 0.5);
    metrics_series_release(s);

    assert_non_null(metrics_counter_family(r, "voxray_test_dropped_total",
                                           "A family with no series yet.", 0, NULL));
    return r;
}

static void test_render_matches_golden_file(void **state)
{
    const char *top = getenv("top_srcdir");
    char path[4096];
    metrics_registry *r = golden_registry();
    char *out = render(r), *want;
    size_t want_len = 0, i;

    if (top && *top) snprintf(path, sizeof path, "%s/tests/unit/golden/metrics.prom", top);
    else snprintf(path, sizeof path, "%s/metrics.prom", GOLDEN_DIR);
    want = read_file(path, &want_len);
    if (want == NULL) fail_msg("cannot read %s", path);
    if (strcmp(out, want) != 0) {
        size_t line = 1, bol = 0;
        for (i = 0; out[i] && out[i] == want[i]; i++)
            if (out[i] == '\n') line++, bol = i + 1;
        fail_msg("%s:%zu differs\n want: %.*s\n  got: %.*s", path, line,
                 (int)strcspn(want + bol, "\n"), want + bol,
                 (int)strcspn(out + bol, "\n"), out + bol);
    }
    free(want);
    free(out);
    metrics_registry_free(r);
    (void)state;
}

/* ---- validation --------------------------------------------------------- */

static void test_bad_metric_names_are_rejected(void **state)
{
    static const char *const bad[] = {"", "1abc", "a-b", "a b", "caf\xc3\xa9", "a.b"};
    metrics_registry *r = metrics_registry_new();
    size_t i;

    assert_null(metrics_counter_family(r, NULL, "h", 0, NULL));
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_null(metrics_counter_family(r, bad[i], "h", 0, NULL));
    assert_non_null(metrics_counter_family(r, "ns:sub_total", "h", 0, NULL));
    assert_non_null(metrics_gauge_family(r, "_private9", "h", 0, NULL));
    metrics_registry_free(r);
    (void)state;
}

static void test_bad_label_names_are_rejected(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_null(metrics_counter_family(r, "a_total", "h", 1, (const char *const[]){"9x"}));
    assert_null(metrics_counter_family(r, "a_total", "h", 1, (const char *const[]){"a:b"}));
    assert_null(metrics_counter_family(r, "a_total", "h", 1, (const char *const[]){""}));
    assert_null(metrics_counter_family(r, "a_total", "h", 1, (const char *const[]){NULL}));
    assert_null(metrics_counter_family(r, "a_total", "h", 1, NULL));
    metrics_registry_free(r);
    (void)state;
}

static void test_reserved_label_prefix_is_rejected(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_null(metrics_gauge_family(r, "g", "h", 1, (const char *const[]){"__name__"}));
    assert_null(metrics_gauge_family(r, "g", "h", 1, (const char *const[]){"__x"}));
    assert_non_null(metrics_gauge_family(r, "g", "h", 1, (const char *const[]){"_x"}));
    metrics_registry_free(r);
    (void)state;
}

static void test_le_label_is_reserved_for_histograms_only(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_null(metrics_histogram_family(r, "h_seconds", "h", 1, (const char *const[]){"le"},
                                         NULL, 0));
    assert_non_null(metrics_gauge_family(r, "g", "h", 1, (const char *const[]){"le"}));
    metrics_registry_free(r);
    (void)state;
}

static void test_duplicate_label_names_are_rejected(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_null(metrics_counter_family(r, "a_total", "h", 3,
                                       (const char *const[]){"x", "y", "x"}));
    metrics_registry_free(r);
    (void)state;
}

static void test_more_than_max_labels_is_rejected(void **state)
{
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    metrics_registry *r = metrics_registry_new();

    assert_null(metrics_counter_family(r, "nine_total", "h", METRICS_MAX_LABELS + 1, names));
    assert_non_null(metrics_counter_family(r, "eight_total", "h", METRICS_MAX_LABELS, names));
    metrics_registry_free(r);
    (void)state;
}

static void test_bad_histogram_bounds_are_rejected(void **state)
{
    double many[METRICS_MAX_BUCKETS + 1];
    size_t i;
    metrics_registry *r = metrics_registry_new();

    for (i = 0; i < METRICS_MAX_BUCKETS + 1; i++) many[i] = (double)i;
    assert_null(metrics_histogram_family(r, "h1", "h", 0, NULL, (double[]){1, 1}, 2));
    assert_null(metrics_histogram_family(r, "h2", "h", 0, NULL, (double[]){2, 1}, 2));
    assert_null(metrics_histogram_family(r, "h3", "h", 0, NULL, (double[]){1, NAN}, 2));
    assert_null(metrics_histogram_family(r, "h4", "h", 0, NULL, (double[]){1, INFINITY}, 2));
    assert_null(metrics_histogram_family(r, "h5", "h", 0, NULL, many, METRICS_MAX_BUCKETS + 1));
    assert_non_null(metrics_histogram_family(r, "h6", "h", 0, NULL, many, METRICS_MAX_BUCKETS));
    metrics_registry_free(r);
    (void)state;
}

static void test_null_label_value_gets_no_series(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "a_total", "h", 2,
                                               (const char *const[]){"x", "y"});

    assert_null(metrics_series_get(f, (const char *const[]){"1", NULL}));
    assert_null(metrics_series_get(f, NULL));
    metrics_registry_free(r);
    (void)state;
}

/* ---- family identity ---------------------------------------------------- */

static void test_identical_registration_returns_existing_family(void **state)
{
    metrics_registry *r = metrics_registry_new();
    const char *const l[] = {"route", "status"};
    metrics_family *a = metrics_counter_family(r, "req_total", "Requests.", 2, l);
    metrics_family *b = metrics_counter_family(r, "req_total", "Other help.", 2,
                                               (const char *const[]){"route", "status"});
    char *out;

    assert_non_null(a);
    assert_ptr_equal(a, b);
    out = render(r);
    assert_string_equal(out, "# HELP req_total Requests.\n# TYPE req_total counter\n");
    free(out);
    metrics_registry_free(r);
    (void)state;
}

static void test_type_clash_returns_null(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_non_null(metrics_counter_family(r, "x_total", "h", 0, NULL));
    assert_null(metrics_gauge_family(r, "x_total", "h", 0, NULL));
    assert_null(metrics_histogram_family(r, "x_total", "h", 0, NULL, NULL, 0));
    metrics_registry_free(r);
    (void)state;
}

static void test_label_clash_returns_null(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_non_null(metrics_counter_family(r, "x_total", "h", 1, (const char *const[]){"a"}));
    assert_null(metrics_counter_family(r, "x_total", "h", 1, (const char *const[]){"b"}));
    assert_null(metrics_counter_family(r, "x_total", "h", 0, NULL));
    assert_null(metrics_counter_family(r, "x_total", "h", 2, (const char *const[]){"a", "b"}));
    metrics_registry_free(r);
    (void)state;
}

static void test_histogram_derived_names_clash(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_non_null(metrics_histogram_family(r, "lat_seconds", "h", 0, NULL, NULL, 0));
    assert_null(metrics_counter_family(r, "lat_seconds_count", "h", 0, NULL));
    assert_null(metrics_gauge_family(r, "lat_seconds_sum", "h", 0, NULL));
    assert_non_null(metrics_gauge_family(r, "other_bucket", "h", 0, NULL));
    assert_null(metrics_histogram_family(r, "other", "h", 0, NULL, NULL, 0));
    metrics_registry_free(r);
    (void)state;
}

/* ---- histograms --------------------------------------------------------- */

static void test_value_equal_to_bound_goes_into_that_bucket(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL,
                                                 (double[]){0.005, 0.1, 1, 2.5}, 4);
    metrics_series *s = metrics_series_get(f, NULL);
    char *out;

    metrics_histogram_observe(s, 0.005);
    metrics_histogram_observe(s, 0.1);
    metrics_histogram_observe_ns(s, 1000000000);
    metrics_histogram_observe(s, 2.5);
    metrics_histogram_observe(s, 2.5000001);
    out = render(r);
    assert_true(has_line(out, "h_seconds_bucket{le=\"0.005\"} 1"));
    assert_true(has_line(out, "h_seconds_bucket{le=\"0.1\"} 2"));
    assert_true(has_line(out, "h_seconds_bucket{le=\"1\"} 3"));
    assert_true(has_line(out, "h_seconds_bucket{le=\"2.5\"} 4"));
    assert_true(has_line(out, "h_seconds_bucket{le=\"+Inf\"} 5"));
    assert_true(has_line(out, "h_seconds_count 5"));
    assert_true(has_line(out, "h_seconds_sum 6.1050001"));
    free(out);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_value_just_above_bound_goes_into_next_bucket(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL,
                                                 (double[]){0.005, 0.01}, 2);
    metrics_series *s = metrics_series_get(f, NULL);

    metrics_histogram_observe_ns(s, 5000001);
    assert_line(r, "h_seconds_bucket{le=\"0.005\"} 0", 1);
    assert_line(r, "h_seconds_bucket{le=\"0.01\"} 1", 1);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_negative_and_nan_observations_count_as_zero(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL,
                                                 (double[]){0, 1}, 2);
    metrics_series *s = metrics_series_get(f, NULL);

    metrics_histogram_observe(s, -2);
    metrics_histogram_observe(s, NAN);
    assert_int_equal(metrics_histogram_count(s), 2);
    assert_true(metrics_histogram_sum(s) == 0);
    assert_line(r, "h_seconds_bucket{le=\"0\"} 2", 1);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_histogram_sum_renders_exact_seconds(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL, NULL, 0);
    metrics_series *s = metrics_series_get(f, NULL);

    metrics_histogram_observe_ns(s, 1);
    assert_line(r, "h_seconds_sum 0.000000001", 1);
    metrics_histogram_observe_ns(s, 2999999999u);
    assert_line(r, "h_seconds_sum 3", 1);
    assert_true(metrics_histogram_sum(s) == 3.0);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_default_buckets_are_used_without_bounds(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL, NULL, 0);
    metrics_series *s = metrics_series_get(f, NULL);
    static const char *const le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                     "0.5", "1", "2.5", "5", "10", "+Inf"};
    char line[64], *out = render(r);
    size_t i;

    for (i = 0; i < sizeof le / sizeof *le; i++) {
        snprintf(line, sizeof line, "h_seconds_bucket{le=\"%s\"} 0", le[i]);
        if (!has_line(out, line)) fail_msg("missing %s", line);
    }
    free(out);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_le_values_print_like_prometheus_clients(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(
        r, "h", "h", 0, NULL, (double[]){-1.5, 0.0001, 0.3, 100000, 1e6, 1.234567e7}, 6);
    metrics_series *s = metrics_series_get(f, NULL);
    char *out = render(r);

    assert_true(has_line(out, "h_bucket{le=\"-1.5\"} 0"));
    assert_true(has_line(out, "h_bucket{le=\"0.0001\"} 0"));
    assert_true(has_line(out, "h_bucket{le=\"0.3\"} 0"));
    assert_true(has_line(out, "h_bucket{le=\"100000\"} 0"));
    assert_true(has_line(out, "h_bucket{le=\"1e+06\"} 0"));
    assert_true(has_line(out, "h_bucket{le=\"1.234567e+07\"} 0"));
    free(out);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* ---- bucket overrides --------------------------------------------------- */

static void test_bucket_override_replaces_given_bounds(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f;
    metrics_series *s;
    char *out;

    assert_int_equal(metrics_set_buckets(r, "h_seconds", (double[]){0.5, 2}, 2), 0);
    f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL, (double[]){1, 10}, 2);
    s = metrics_series_get(f, NULL);
    out = render(r);
    assert_true(has_line(out, "h_seconds_bucket{le=\"0.5\"} 0"));
    assert_true(has_line(out, "h_seconds_bucket{le=\"2\"} 0"));
    assert_false(has_line(out, "h_seconds_bucket{le=\"10\"} 0"));
    free(out);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_bucket_override_after_creation_fails(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_non_null(metrics_histogram_family(r, "h_seconds", "h", 0, NULL, NULL, 0));
    assert_int_equal(metrics_set_buckets(r, "h_seconds", (double[]){1}, 1), -1);
    metrics_registry_free(r);
    (void)state;
}

static void test_bucket_override_rejects_bad_bounds(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_int_equal(metrics_set_buckets(r, "h", (double[]){2, 1}, 2), -1);
    assert_int_equal(metrics_set_buckets(r, "h", (double[]){1, NAN}, 2), -1);
    assert_int_equal(metrics_set_buckets(r, "h", (double[]){1}, 0), -1);
    assert_int_equal(metrics_set_buckets(r, "bad name", (double[]){1}, 1), -1);
    metrics_registry_free(r);
    (void)state;
}

static void test_parse_buckets_accepts_spaced_list(void **state)
{
    double b[8];
    char err[128];

    assert_int_equal(metrics_parse_buckets(" 0.005, 0.01,0.5 ,\t2 ", b, 8, err, sizeof err), 4);
    assert_true(b[0] == 0.005 && b[1] == 0.01 && b[2] == 0.5 && b[3] == 2);
    assert_int_equal(metrics_parse_buckets("1", b, 8, err, sizeof err), 1);
    (void)state;
}

static void test_parse_buckets_reports_errors(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"0.1, 0.05", "not increasing"},
        {"0.1, 0.1", "not increasing"},
        {"0.1, abc", "not a number"},
        {"0.1,, 0.2", "not a number"},
        {"0.1, 0.2,", "not a number"},
        {"0.1 0.2", "expected ','"},
        {"", "empty"},
        {"   ", "empty"},
        {"1, inf", "out of range"},
        {"nan", "out of range"},
        {"1e999", "out of range"},
        {"1,2,3,4,5", "too many"},
    };
    double b[4];
    char err[128];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = '\0';
        if (metrics_parse_buckets(cases[i].text, b, 4, err, sizeof err) != -1)
            fail_msg("\"%s\" was accepted", cases[i].text);
        if (strstr(err, cases[i].msg) == NULL)
            fail_msg("\"%s\": error \"%s\" lacks \"%s\"", cases[i].text, err, cases[i].msg);
    }
    assert_int_equal(metrics_parse_buckets("1, x", b, 4, NULL, 0), -1);
    (void)state;
}

/* ---- escaping and formatting -------------------------------------------- */

static void test_label_values_are_escaped(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "e_total", "h", 1, (const char *const[]){"v"});
    metrics_series *s = metrics_series_get(f, (const char *const[]){"a\\b\"c\nd"});

    assert_line(r, "e_total{v=\"a\\\\b\\\"c\\nd\"} 0", 1);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_help_is_escaped_but_quotes_are_kept(void **state)
{
    metrics_registry *r = metrics_registry_new();

    assert_non_null(metrics_gauge_family(r, "g", "say \"a\\b\"\nnext", 0, NULL));
    assert_line(r, "# HELP g say \"a\\\\b\"\\nnext", 1);
    metrics_registry_free(r);
    (void)state;
}

static void test_invalid_utf8_is_replaced(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "u_total", "h", 1, (const char *const[]){"v"});
    metrics_series *s = metrics_series_get(f, (const char *const[]){"a\xff" "b\xc3"});

    assert_line(r, "u_total{v=\"a\xef\xbf\xbd" "b\xef\xbf\xbd\"} 0", 1);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_gauge_values_format(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {3, "3"},           {-2, "-2"},          {0, "0"},
        {-0.25, "-0.25"},   {0.1, "0.1"},        {1e-7, "1e-07"},
        {123456789012.0, "123456789012"},        {2.5e20, "2.5e+20"},
        {1.0 / 3, "0.3333333333333333"},         {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"}, {NAN, "NaN"},
    };
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_gauge_family(r, "g", "h", 0, NULL);
    metrics_series *s = metrics_series_get(f, NULL);
    char line[64];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof *cases; i++) {
        metrics_gauge_set(s, cases[i].v);
        snprintf(line, sizeof line, "g %s", cases[i].text);
        assert_line(r, line, 1);
    }
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* ---- series lifetime ---------------------------------------------------- */

static void test_remove_with_handle_held_hides_series(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "s_total", "h", 1, (const char *const[]){"id"});
    metrics_series *s = metrics_series_get(f, (const char *const[]){"a"});
    metrics_series *fresh;

    metrics_counter_add(s, 5);
    assert_line(r, "s_total{id=\"a\"} 5", 1);
    assert_int_equal(metrics_series_remove(f, (const char *const[]){"a"}), 1);
    assert_line(r, "s_total{id=\"a\"} 5", 0);
    metrics_counter_add(s, 1); /* still valid, goes nowhere visible */
    assert_int_equal(metrics_counter_value(s), 6);
    fresh = metrics_series_get(f, (const char *const[]){"a"});
    assert_ptr_not_equal(fresh, s);
    assert_int_equal(metrics_counter_value(fresh), 0);
    metrics_series_release(s);
    metrics_series_release(fresh);
    assert_line(r, "s_total{id=\"a\"} 0", 1);
    metrics_registry_free(r);
    (void)state;
}

static void test_last_release_after_remove_frees_series(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_gauge_family(r, "g", "h", 0, NULL);
    metrics_series *a = metrics_series_get(f, NULL);
    metrics_series *b = metrics_series_get(f, NULL);

    assert_ptr_equal(a, b);
    assert_int_equal(metrics_series_remove(f, NULL), 1);
    metrics_series_release(a);
    metrics_gauge_set(b, 2); /* b still holds a reference */
    metrics_series_release(b);
    metrics_series_release(NULL);
    assert_int_equal(metrics_series_remove(f, NULL), 0);
    metrics_registry_free(r);
    (void)state;
}

static void test_release_without_remove_keeps_series(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "k_total", "h", 0, NULL);
    metrics_series *s = metrics_series_get(f, NULL);

    metrics_counter_add(s, 7);
    metrics_series_release(s);
    assert_line(r, "k_total 7", 1);
    metrics_registry_free(r);
    (void)state;
}

static void test_remove_without_match_returns_zero(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "k_total", "h", 1, (const char *const[]){"a"});

    metrics_series_release(metrics_series_get(f, (const char *const[]){"x"}));
    assert_int_equal(metrics_series_remove(f, (const char *const[]){"y"}), 0);
    assert_line(r, "k_total{a=\"x\"} 0", 1);
    metrics_registry_free(r);
    (void)state;
}

static void test_remove_matching_drops_only_matching_series(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "m_seconds", "h", 2,
                                                 (const char *const[]){"session", "stage"},
                                                 (double[]){1}, 1);
    metrics_series *held = metrics_series_get(f, (const char *const[]){"s1", "tts"});
    char *out;

    metrics_series_release(metrics_series_get(f, (const char *const[]){"s1", "stt"}));
    metrics_series_release(metrics_series_get(f, (const char *const[]){"s2", "stt"}));
    metrics_series_release(metrics_series_get(f, (const char *const[]){"s3", "s1"}));
    assert_int_equal(metrics_family_remove_matching(f, "session", "s1"), 2);
    assert_int_equal(metrics_family_remove_matching(f, "session", "s1"), 0);
    assert_int_equal(metrics_family_remove_matching(f, "nosuch", "s2"), 0);
    metrics_histogram_observe(held, 0.5);
    out = render(r);
    assert_null(strstr(out, "session=\"s1\""));
    assert_true(has_line(out, "m_seconds_count{session=\"s2\",stage=\"stt\"} 0"));
    assert_true(has_line(out, "m_seconds_count{session=\"s3\",stage=\"s1\"} 0"));
    free(out);
    metrics_series_release(held);
    metrics_registry_free(r);
    (void)state;
}

static void test_registry_free_releases_unreleased_handles(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "k_total", "h", 1, (const char *const[]){"a"});

    (void)metrics_series_get(f, (const char *const[]){"kept"});
    (void)metrics_series_get(f, (const char *const[]){"removed"});
    assert_int_equal(metrics_series_remove(f, (const char *const[]){"removed"}), 1);
    metrics_registry_free(r); /* valgrind/ASan report a leak if this misses one */
    (void)state;
}

static void test_many_series_are_found_again(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "k_total", "h", 1, (const char *const[]){"i"});
    metrics_series *s[1000];
    char v[16];
    int i;

    for (i = 0; i < 1000; i++) {
        snprintf(v, sizeof v, "%d", i);
        s[i] = metrics_series_get(f, (const char *const[]){v});
        metrics_counter_add(s[i], (uint64_t)i);
    }
    for (i = 0; i < 1000; i++) {
        metrics_series *t;
        snprintf(v, sizeof v, "%d", i);
        t = metrics_series_get(f, (const char *const[]){v});
        assert_ptr_equal(t, s[i]);
        metrics_series_release(t);
        metrics_series_release(s[i]);
    }
    assert_line(r, "k_total{i=\"999\"} 999", 1);
    metrics_registry_free(r);
    (void)state;
}

/* ---- concurrency -------------------------------------------------------- */

#define N_THREADS 4
#define N_ITER 200000

typedef struct {
    metrics_series *s;
    pthread_barrier_t *go;
} worker_arg;

static void *count_worker(void *p)
{
    worker_arg *a = p;
    int i;

    pthread_barrier_wait(a->go);
    for (i = 0; i < N_ITER; i++) metrics_counter_inc(a->s);
    return NULL;
}

static void *gauge_worker(void *p)
{
    worker_arg *a = p;
    int i;

    pthread_barrier_wait(a->go);
    for (i = 0; i < N_ITER; i++) metrics_gauge_add(a->s, 1.0);
    return NULL;
}

static void *observe_worker(void *p)
{
    worker_arg *a = p;
    int i;

    pthread_barrier_wait(a->go);
    for (i = 0; i < N_ITER; i++) metrics_histogram_observe_ns(a->s, (uint64_t)(i % 3) * 1000000);
    return NULL;
}

static void run_workers(void *(*fn)(void *), metrics_series *s)
{
    pthread_t t[N_THREADS];
    pthread_barrier_t go;
    worker_arg a = {s, &go};
    int i;

    pthread_barrier_init(&go, NULL, N_THREADS);
    for (i = 0; i < N_THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, fn, &a), 0);
    for (i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
}

static void test_concurrent_counter_increments_sum_exactly(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_series *s = metrics_series_get(metrics_counter_family(r, "c_total", "h", 0, NULL),
                                           NULL);

    run_workers(count_worker, s);
    assert_int_equal(metrics_counter_value(s), (uint64_t)N_THREADS * N_ITER);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

static void test_concurrent_gauge_adds_sum_exactly(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_series *s = metrics_series_get(metrics_gauge_family(r, "g", "h", 0, NULL), NULL);

    run_workers(gauge_worker, s);
    assert_true(metrics_gauge_value(s) == (double)N_THREADS * N_ITER);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* While 4 threads observe, every rendering must show _count equal to the
 * +Inf bucket. */
typedef struct {
    metrics_registry *r;
    atomic_int stop;
    int bad;
    atomic_int renders;
} render_arg;

static void *render_worker(void *p)
{
    render_arg *a = p;

    while (!a->stop) {
        char *out = NULL, *inf, *cnt;
        size_t len;
        if (metrics_render(a->r, &out, &len) != 0) continue;
        inf = strstr(out, "h_seconds_bucket{le=\"+Inf\"} ");
        cnt = strstr(out, "h_seconds_count ");
        if (inf == NULL || cnt == NULL ||
            strtoull(inf + 28, NULL, 10) != strtoull(cnt + 16, NULL, 10))
            a->bad++;
        a->renders++;
        free(out);
    }
    return NULL;
}

static void test_histogram_count_matches_inf_bucket_while_observing(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "h_seconds", "h", 0, NULL,
                                                 (double[]){0.001, 0.0015}, 2);
    metrics_series *s = metrics_series_get(f, NULL);
    render_arg ra = {r, 0, 0, 0};
    pthread_t rt;

    assert_int_equal(pthread_create(&rt, NULL, render_worker, &ra), 0);
    /* On a loaded machine the renderer may not run before the observers
     * are done: let it start first. */
    while (atomic_load(&ra.renders) == 0) sched_yield();
    run_workers(observe_worker, s);
    ra.stop = 1;
    pthread_join(rt, NULL);
    assert_int_equal(ra.bad, 0);
    assert_true(ra.renders > 0);
    assert_int_equal(metrics_histogram_count(s), (uint64_t)N_THREADS * N_ITER);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* observe_ns() compares integers against precomputed limits; each ns near
 * every bound (and around bounds below zero and far above 2^53 ns) must
 * land where observe(ns / 1e9) puts it. */
static void test_observe_ns_buckets_like_observe_of_seconds(void **state)
{
    static const double b[] = {-1, 0, 1e-9, 0.0001, 0.00025, 0.005, 0.1, 0.3, 1, 2.5, 10,
                               1e7, 1.8446744073709552e10};
    const size_t nb = sizeof b / sizeof b[0];
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "n_seconds", "h", 1,
                                                 (const char *const[]){"how"}, b, nb);
    metrics_series *a = metrics_series_get(f, (const char *const[]){"a"});
    metrics_series *d = metrics_series_get(f, (const char *const[]){"b"});
    char *out, *pa, *pb;
    size_t i;
    int k;

    for (i = 0; i < nb; i++) {
        double c = b[i] < 0 ? 0 : b[i] * 1e9;
        for (k = -3; k <= 3; k++) {
            uint64_t ns = c + k < 0 ? 0 : c + k >= 1.8446744073709552e19 ? UINT64_MAX
                                                                        : (uint64_t)(c + k);
            metrics_histogram_observe_ns(a, ns);
            metrics_histogram_observe(d, (double)ns / 1e9);
        }
    }
    out = render(r);
    /* the bucket lines of "a" and "b" read the same once the label is masked */
    for (pa = out; (pa = strstr(pa, "how=\"a\",le=")) != NULL; pa++) {
        char la[96], lb[96];
        size_t n = strcspn(pa, "\n");
        assert_true(n < sizeof la);
        memcpy(la, pa, n);
        la[n] = '\0';
        memcpy(lb, la, n + 1);
        lb[5] = 'b';
        pb = strstr(out, lb);
        if (pb == NULL) fail_msg("observe_ns gave \"%s\", observe differs", la);
    }
    free(out);
    metrics_series_release(a);
    metrics_series_release(d);
    metrics_registry_free(r);
    (void)state;
}

/* Sharded updates: N threads each doing K updates of one series of every
 * type must render exact totals once they are done, whatever shards the
 * updates landed in. */
#define EXACT_K 50000

typedef struct {
    metrics_series *c, *h, *g;
    pthread_barrier_t *go;
} mixed_arg;

static void *mixed_worker(void *p)
{
    mixed_arg *a = p;
    int i;

    pthread_barrier_wait(a->go);
    for (i = 0; i < EXACT_K; i++) {
        metrics_counter_add(a->c, 3);
        /* 0.5 ms, 1 ms (on a bound), 2 ms, 1 s: buckets le=0.001 twice,
         * le=0.0025 once, +Inf once per four. */
        static const uint64_t ns[4] = {500000, 1000000, 2000000, 1000000000};
        metrics_histogram_observe_ns(a->h, ns[i & 3]);
        metrics_gauge_add(a->g, (i & 1) ? -1.0 : 2.0);
    }
    return NULL;
}

static void expect_line(const char *out, const char *line)
{
    if (strstr(out, line) == NULL) fail_msg("missing line: %s\n--- got:\n%s", line, out);
}

static void test_concurrent_updates_render_exact_totals(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_series *c = metrics_series_get(metrics_counter_family(r, "x_total", "h", 0, NULL), NULL);
    metrics_series *h = metrics_series_get(
        metrics_histogram_family(r, "x_seconds", "h", 0, NULL, (double[]){0.001, 0.0025}, 2), NULL);
    metrics_series *g = metrics_series_get(metrics_gauge_family(r, "x_level", "h", 0, NULL), NULL);
    pthread_t t[N_THREADS];
    pthread_barrier_t go;
    mixed_arg a = {c, h, g, &go};
    char line[128], *out;
    const uint64_t n = (uint64_t)N_THREADS * EXACT_K; /* updates of each kind */
    int i;

    pthread_barrier_init(&go, NULL, N_THREADS);
    for (i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, mixed_worker, &a), 0);
    for (i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);

    out = render(r);
    snprintf(line, sizeof line, "\nx_total %llu\n", (unsigned long long)(3 * n));
    expect_line(out, line);
    snprintf(line, sizeof line, "\nx_seconds_bucket{le=\"0.001\"} %llu\n", (unsigned long long)(n / 2));
    expect_line(out, line);
    snprintf(line, sizeof line, "\nx_seconds_bucket{le=\"0.0025\"} %llu\n",
             (unsigned long long)(n / 4 * 3));
    expect_line(out, line);
    snprintf(line, sizeof line, "\nx_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)n);
    expect_line(out, line);
    snprintf(line, sizeof line, "\nx_seconds_count %llu\n", (unsigned long long)n);
    expect_line(out, line);
    /* per four observations: 0.0005 + 0.001 + 0.002 + 1 = 1.0035 s; the
     * sum is printed as exact decimal seconds without trailing zeros */
    {
        uint64_t ns = n / 4 * 1003500000u;
        size_t k;
        if (ns % 1000000000u == 0) {
            snprintf(line, sizeof line, "\nx_seconds_sum %llu\n",
                     (unsigned long long)(ns / 1000000000u));
        } else {
            snprintf(line, sizeof line, "\nx_seconds_sum %llu.%09llu",
                     (unsigned long long)(ns / 1000000000u),
                     (unsigned long long)(ns % 1000000000u));
            for (k = strlen(line); line[k - 1] == '0'; k--) line[k - 1] = '\0';
            strcat(line, "\n");
        }
    }
    expect_line(out, line);
    snprintf(line, sizeof line, "\nx_level %llu\n", (unsigned long long)(n / 2));
    expect_line(out, line);
    assert_int_equal(metrics_counter_value(c), 3 * n);
    assert_int_equal(metrics_histogram_count(h), n);
    assert_true(metrics_gauge_value(g) == (double)(n / 2));
    free(out);
    metrics_series_release(c);
    metrics_series_release(h);
    metrics_series_release(g);
    metrics_registry_free(r);
    (void)state;
}

/* +1 on some threads and -1 on others land in different shards; they must
 * still cancel exactly, and a value given to set() must read back as given. */
static void *inc_worker(void *p)
{
    worker_arg *a = p;
    int i;

    pthread_barrier_wait(a->go);
    for (i = 0; i < N_ITER; i++) metrics_gauge_add(a->s, 1);
    for (i = 0; i < N_ITER; i++) metrics_gauge_add(a->s, -1);
    return NULL;
}

static void test_gauge_adds_on_many_threads_cancel_exactly(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_series *s = metrics_series_get(metrics_gauge_family(r, "g", "h", 0, NULL), NULL);
    char *out;

    metrics_gauge_set(s, 0.1);
    run_workers(inc_worker, s);
    assert_true(metrics_gauge_value(s) == 0.1);
    out = render(r);
    assert_non_null(strstr(out, "\ng 0.1\n"));
    free(out);
    metrics_gauge_add(s, 5);
    metrics_gauge_add(s, 0.25);
    metrics_gauge_set(s, 0.3); /* drops every delta: exactly 0.3, not 0.3 + 0 */
    assert_true(metrics_gauge_value(s) == 0.3);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* set() racing with add(): every read shows the last set value plus at most
 * the adds in flight (each adder adds +1 then -1), never a mix of a set()
 * with deltas it dropped. */
typedef struct {
    metrics_registry *r;
    metrics_series *s;
    atomic_int stop;
    int bad;
} setter_arg;

static void *pulse_worker(void *p)
{
    setter_arg *a = p;

    while (!atomic_load(&a->stop)) {
        metrics_gauge_add(a->s, 1);
        metrics_gauge_add(a->s, -1);
    }
    return NULL;
}

static void test_gauge_set_racing_with_adds_never_shows_a_mix(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_series *s = metrics_series_get(metrics_gauge_family(r, "g", "h", 0, NULL), NULL);
    setter_arg a = {r, s, 0, 0};
    pthread_t t[3];
    int i;

    metrics_gauge_set(s, 100);
    for (i = 0; i < 3; i++) assert_int_equal(pthread_create(&t[i], NULL, pulse_worker, &a), 0);
    for (i = 0; i < 20000; i++) {
        double v;
        metrics_gauge_set(s, 100);
        v = metrics_gauge_value(s);
        /* An adder's +1 dropped by set() and its -1 kept gives 99. */
        if (v < 100 - 3 || v > 100 + 3) a.bad++;
    }
    atomic_store(&a.stop, 1);
    for (i = 0; i < 3; i++) pthread_join(t[i], NULL);
    assert_int_equal(a.bad, 0);
    metrics_gauge_set(s, 7);
    assert_true(metrics_gauge_value(s) == 7);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* Renders taken while threads observe never go backwards: every bucket, the
 * count and the sum of a later render are at least those of an earlier one. */
typedef struct {
    metrics_registry *r;
    atomic_int stop;
    int bad;
    atomic_int renders;
} mono_arg;

static void *mono_worker(void *p)
{
    mono_arg *a = p;
    unsigned long long prev[5] = {0}, cur[5];
    static const char *const keys[5] = {"m_seconds_bucket{le=\"0.001\"} ",
                                        "m_seconds_bucket{le=\"0.0015\"} ",
                                        "m_seconds_bucket{le=\"+Inf\"} ", "m_seconds_count ",
                                        "m_seconds_sum "};
    int k;

    while (!atomic_load(&a->stop)) {
        char *out = NULL, *at;
        size_t len;
        if (metrics_render(a->r, &out, &len) != 0) continue;
        for (k = 0; k < 5; k++) {
            at = strstr(out, keys[k]);
            if (at == NULL) {
                a->bad++;
                continue;
            }
            /* the sum in ns: whole seconds and nine decimals */
            at += strlen(keys[k]);
            if (k == 4) cur[k] = (unsigned long long)(strtod(at, NULL) * 1e6 + 0.5);
            else cur[k] = strtoull(at, NULL, 10);
            if (cur[k] < prev[k]) a->bad++;
            prev[k] = cur[k];
        }
        atomic_fetch_add(&a->renders, 1);
        free(out);
    }
    return NULL;
}

static void test_histogram_renders_never_go_backwards(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_histogram_family(r, "m_seconds", "h", 0, NULL,
                                                 (double[]){0.001, 0.0015}, 2);
    metrics_series *s = metrics_series_get(f, NULL);
    mono_arg ma = {r, 0, 0, 0};
    pthread_t rt;

    assert_int_equal(pthread_create(&rt, NULL, mono_worker, &ma), 0);
    while (atomic_load(&ma.renders) == 0) sched_yield();
    run_workers(observe_worker, s);
    atomic_store(&ma.stop, 1);
    pthread_join(rt, NULL);
    assert_int_equal(ma.bad, 0);
    metrics_series_release(s);
    metrics_registry_free(r);
    (void)state;
}

/* A series removed (and its family's reference dropped) while another
 * thread still updates it through a handle: the updates are safe (ASan
 * would flag a freed shard), the series is gone from the exposition, and
 * the handle's release frees it. */
typedef struct {
    metrics_series *c, *h, *g;
    atomic_int stop;
    atomic_long done;
} holder_arg;

static void *holder_worker(void *p)
{
    holder_arg *a = p;

    while (!atomic_load(&a->stop)) {
        metrics_counter_inc(a->c);
        metrics_histogram_observe(a->h, 0.002);
        metrics_gauge_add(a->g, 1);
        atomic_fetch_add(&a->done, 1);
    }
    metrics_series_release(a->c);
    metrics_series_release(a->h);
    metrics_series_release(a->g);
    return NULL;
}

static void test_series_removed_while_updated_is_safe(void **state)
{
    static const char *const lbl[] = {"session"};
    metrics_registry *r = metrics_registry_new();
    metrics_family *cf = metrics_counter_family(r, "rm_total", "h", 1, lbl);
    metrics_family *hf = metrics_histogram_family(r, "rm_seconds", "h", 1, lbl, NULL, 0);
    metrics_family *gf = metrics_gauge_family(r, "rm_level", "h", 1, lbl);
    int round;

    for (round = 0; round < 50; round++) {
        const char *const v[] = {"s1"};
        holder_arg a = {metrics_series_get(cf, v), metrics_series_get(hf, v),
                        metrics_series_get(gf, v), 0, 0};
        pthread_t t;
        long seen;
        char *out;

        assert_int_equal(pthread_create(&t, NULL, holder_worker, &a), 0);
        while (atomic_load(&a.done) == 0) sched_yield();
        assert_int_equal(metrics_series_remove(cf, v), 1);
        assert_int_equal(metrics_family_remove_matching(hf, "session", "s1"), 1);
        assert_int_equal(metrics_series_remove(gf, v), 1);
        /* keep updating the unlinked series for a while */
        seen = atomic_load(&a.done);
        while (atomic_load(&a.done) < seen + 1000) sched_yield();
        out = render(r);
        assert_null(strstr(out, "s1"));
        free(out);
        atomic_store(&a.stop, 1);
        pthread_join(t, NULL); /* the worker's releases free the series */
    }
    metrics_registry_free(r);
    (void)state;
}

/* Sessions come and go on worker threads while another thread drops their
 * series: no crash, no race (run under TSan/valgrind), nothing left behind. */
typedef struct {
    metrics_family *f;
    int id;
} churn_arg;

static void *churn_worker(void *p)
{
    churn_arg *a = p;
    char v[16];
    int i;

    for (i = 0; i < 20000; i++) {
        metrics_series *s;
        snprintf(v, sizeof v, "%d", (i + a->id) % 7);
        s = metrics_series_get(a->f, (const char *const[]){v});
        assert_non_null(s);
        metrics_counter_inc(s);
        if (a->id == 0 && i % 3 == 0) metrics_family_remove_matching(a->f, "session", v);
        if (a->id == 1 && i % 5 == 0) metrics_series_remove(a->f, (const char *const[]){v});
        metrics_series_release(s);
    }
    return NULL;
}

static void test_concurrent_get_remove_release_are_safe(void **state)
{
    metrics_registry *r = metrics_registry_new();
    metrics_family *f = metrics_counter_family(r, "x_total", "h", 1,
                                               (const char *const[]){"session"});
    churn_arg a[3] = {{f, 0}, {f, 1}, {f, 2}};
    pthread_t t[3];
    char *out;
    int i;

    for (i = 0; i < 3; i++) assert_int_equal(pthread_create(&t[i], NULL, churn_worker, &a[i]), 0);
    for (i = 0; i < 3; i++) pthread_join(t[i], NULL);
    metrics_family_remove_matching(f, "session", "0");
    out = render(r);
    assert_null(strstr(out, "session=\"0\""));
    free(out);
    metrics_registry_free(r);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_matches_golden_file),
        cmocka_unit_test(test_bad_metric_names_are_rejected),
        cmocka_unit_test(test_bad_label_names_are_rejected),
        cmocka_unit_test(test_reserved_label_prefix_is_rejected),
        cmocka_unit_test(test_le_label_is_reserved_for_histograms_only),
        cmocka_unit_test(test_duplicate_label_names_are_rejected),
        cmocka_unit_test(test_more_than_max_labels_is_rejected),
        cmocka_unit_test(test_bad_histogram_bounds_are_rejected),
        cmocka_unit_test(test_null_label_value_gets_no_series),
        cmocka_unit_test(test_identical_registration_returns_existing_family),
        cmocka_unit_test(test_type_clash_returns_null),
        cmocka_unit_test(test_label_clash_returns_null),
        cmocka_unit_test(test_histogram_derived_names_clash),
        cmocka_unit_test(test_value_equal_to_bound_goes_into_that_bucket),
        cmocka_unit_test(test_value_just_above_bound_goes_into_next_bucket),
        cmocka_unit_test(test_negative_and_nan_observations_count_as_zero),
        cmocka_unit_test(test_histogram_sum_renders_exact_seconds),
        cmocka_unit_test(test_default_buckets_are_used_without_bounds),
        cmocka_unit_test(test_le_values_print_like_prometheus_clients),
        cmocka_unit_test(test_bucket_override_replaces_given_bounds),
        cmocka_unit_test(test_bucket_override_after_creation_fails),
        cmocka_unit_test(test_bucket_override_rejects_bad_bounds),
        cmocka_unit_test(test_parse_buckets_accepts_spaced_list),
        cmocka_unit_test(test_parse_buckets_reports_errors),
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_help_is_escaped_but_quotes_are_kept),
        cmocka_unit_test(test_invalid_utf8_is_replaced),
        cmocka_unit_test(test_gauge_values_format),
        cmocka_unit_test(test_remove_with_handle_held_hides_series),
        cmocka_unit_test(test_last_release_after_remove_frees_series),
        cmocka_unit_test(test_release_without_remove_keeps_series),
        cmocka_unit_test(test_remove_without_match_returns_zero),
        cmocka_unit_test(test_remove_matching_drops_only_matching_series),
        cmocka_unit_test(test_registry_free_releases_unreleased_handles),
        cmocka_unit_test(test_many_series_are_found_again),
        cmocka_unit_test(test_concurrent_counter_increments_sum_exactly),
        cmocka_unit_test(test_concurrent_gauge_adds_sum_exactly),
        cmocka_unit_test(test_histogram_count_matches_inf_bucket_while_observing),
        cmocka_unit_test(test_concurrent_get_remove_release_are_safe),
        cmocka_unit_test(test_observe_ns_buckets_like_observe_of_seconds),
        cmocka_unit_test(test_concurrent_updates_render_exact_totals),
        cmocka_unit_test(test_gauge_adds_on_many_threads_cancel_exactly),
        cmocka_unit_test(test_gauge_set_racing_with_adds_never_shows_a_mix),
        cmocka_unit_test(test_histogram_renders_never_go_backwards),
        cmocka_unit_test(test_series_removed_while_updated_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
