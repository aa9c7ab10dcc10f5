/*
 * Per-client limits (host/net/client_limits.c): browser origins, who the client
 * is behind a proxy, concurrent sessions and upgrade rate per IP, and the
 * bound on the memory they take.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net/client_limits.h"

static void configure(const char *origins, const char *proxies, int per_ip, double rate)
{
    settings s;
    char err[256] = "";
    memset(&s, 0, sizeof s);
    s.allowed_origins = (char *)origins;
    s.trusted_proxies = (char *)proxies;
    s.max_sessions_per_ip = per_ip;
    s.max_upgrades_per_second_per_ip = rate;
    int rc = limits_configure(&s, err, sizeof err);
    if (rc != 0) fprintf(stderr, "# limits_configure: %s\n", err);
    assert_int_equal(rc, 0);
}

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return ss;
}

/* The client text limits_identify gives for peer and X-Forwarded-For. */
static const char *who(const char *peer, const char *xff)
{
    static limits_client c;
    struct sockaddr_storage ss = addr(peer);
    limits_identify((struct sockaddr *)&ss, xff, &c);
    return c.text;
}

static limits_client client(const char *ip)
{
    limits_client c;
    struct sockaddr_storage ss = addr(ip);
    limits_identify((struct sockaddr *)&ss, NULL, &c);
    return c;
}

static int teardown(void **st)
{
    (void)st;
    limits_free();
    return 0;
}

/* ------------------------------------------------------------ origins */

static void test_any_origin_passes_when_none_is_configured(void **st)
{
    (void)st;
    configure("", "", 0, 0);
    assert_true(limits_origin_allowed("https://evil.example"));
    assert_true(limits_origin_allowed(NULL));
}

static void test_only_listed_origins_pass_and_no_origin_always_does(void **st)
{
    (void)st;
    configure("https://app.example.com, http://localhost:8080/", "", 0, 0);
    assert_true(limits_origin_allowed("https://app.example.com"));
    assert_true(limits_origin_allowed("HTTPS://App.Example.com"));
    assert_true(limits_origin_allowed("http://localhost:8080"));
    assert_false(limits_origin_allowed("https://app.example.com.evil.example"));
    assert_false(limits_origin_allowed("http://app.example.com"));
    assert_false(limits_origin_allowed("http://localhost:8081"));
    assert_false(limits_origin_allowed("null"));
    assert_false(limits_origin_allowed(""));
    assert_true(limits_origin_allowed(NULL)); /* not a browser */
}

/* ------------------------------------------------------------ client address */

static void test_the_peer_is_the_client_without_trusted_proxies(void **st)
{
    (void)st;
    configure("", "", 0, 0);
    assert_string_equal(who("127.0.0.1", "203.0.113.7"), "127.0.0.1");
}

static void test_forwarded_for_counts_only_from_a_trusted_proxy(void **st)
{
    (void)st;
    configure("", "10.0.0.0/8", 0, 0);
    assert_string_equal(who("10.1.2.3", "203.0.113.7"), "203.0.113.7");
    assert_string_equal(who("192.0.2.9", "203.0.113.7"), "192.0.2.9");
    assert_string_equal(who("10.1.2.3", NULL), "10.1.2.3");
}

static void test_the_right_most_untrusted_hop_is_the_client(void **st)
{
    (void)st;
    configure("", "10.0.0.0/8, ::1/128", 0, 0);
    /* A client may write anything on the left; proxies append on the right. */
    assert_string_equal(who("10.1.2.3", "1.1.1.1, 203.0.113.7, 10.9.9.9"), "203.0.113.7");
    assert_string_equal(who("10.1.2.3", "10.5.5.5, 10.6.6.6"), "10.5.5.5"); /* all trusted: left-most */
    assert_string_equal(who("10.1.2.3", "203.0.113.7:4711"), "203.0.113.7");
    assert_string_equal(who("10.1.2.3", "[2001:db8::7]:443"), "2001:db8::7");
    assert_string_equal(who("::1", "2001:db8::8"), "2001:db8::8");
    /* Garbage stops the walk at the last hop that could be believed. */
    assert_string_equal(who("10.1.2.3", "203.0.113.7, unknown, 10.9.9.9"), "10.9.9.9");
    assert_string_equal(who("10.1.2.3", "203.0.113.7,"), "10.1.2.3");
}

/* ------------------------------------------------------------ sessions */

static void test_sessions_per_ip_are_capped_and_given_back(void **st)
{
    limits_client a[3], b = client("192.0.2.2");
    (void)st;
    configure("", "", 2, 0);
    for (int i = 0; i < 3; i++) a[i] = client("192.0.2.1");
    assert_int_equal(limits_admit(&a[0]), LIMITS_OK);
    assert_int_equal(limits_admit(&a[1]), LIMITS_OK);
    assert_int_equal(limits_admit(&a[2]), LIMITS_SESSIONS);
    assert_false(a[2].counted);
    assert_int_equal(limits_admit(&b), LIMITS_OK); /* another address */
    limits_release(&a[0]);
    limits_release(&a[0]); /* twice is harmless */
    assert_int_equal(limits_admit(&a[2]), LIMITS_OK);
    limits_release(&a[1]);
    limits_release(&a[2]);
    limits_release(&b);
    assert_int_equal(limits_tracked(), 0); /* nothing kept without a rate limit */
}

static void test_an_ipv6_client_is_limited_per_64(void **st)
{
    limits_client a = client("2001:db8:1:2::1"), b = client("2001:db8:1:2:ffff::9"), c = client("2001:db8:1:3::1");
    (void)st;
    configure("", "", 1, 0);
    assert_int_equal(limits_admit(&a), LIMITS_OK);
    assert_int_equal(limits_admit(&b), LIMITS_SESSIONS);
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    limits_release(&a);
    limits_release(&c);
}

static void test_the_upgrade_rate_is_a_token_bucket(void **st)
{
    limits_client c;
    struct timespec nap = {0, 120 * 1000000L};
    (void)st;
    configure("", "", 0, 10); /* 10 a second, bursts of 10 */
    for (int i = 0; i < 10; i++) {
        c = client("192.0.2.1");
        assert_int_equal(limits_admit(&c), LIMITS_OK);
        limits_release(&c);
    }
    c = client("192.0.2.1");
    assert_int_equal(limits_admit(&c), LIMITS_RATE);
    nanosleep(&nap, NULL); /* one token back */
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    limits_release(&c);
    assert_int_equal(limits_admit(&c), LIMITS_RATE);
}

static void test_a_rate_below_one_still_allows_one_upgrade(void **st)
{
    limits_client c = client("192.0.2.1");
    (void)st;
    configure("", "", 0, 0.2);
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    limits_release(&c);
    assert_int_equal(limits_admit(&c), LIMITS_RATE);
}

static void test_idle_entries_expire_once_their_bucket_is_full(void **st)
{
    limits_client c = client("192.0.2.1");
    struct timespec nap = {0, 150 * 1000000L};
    (void)st;
    configure("", "", 0, 10); /* full again after 1 s at most */
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    assert_int_equal(limits_tracked(), 1);
    limits_release(&c);
    assert_int_equal(limits_tracked(), 1);
    for (int i = 0; i < 8; i++) nanosleep(&nap, NULL);
    c = client("192.0.2.2"); /* any call expires the old ones */
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    limits_release(&c);
    assert_int_equal(limits_tracked(), 1);
}

static void test_memory_is_bounded_whatever_the_number_of_addresses(void **st)
{
    (void)st;
    configure("", "", 0, 0.001); /* an entry would matter for 1000 s */
    for (unsigned i = 0; i < LIMITS_MAX_IDLE + 5000; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        limits_client c = client(ip);
        assert_int_equal(limits_admit(&c), LIMITS_OK);
        limits_release(&c);
    }
    assert_true(limits_tracked() <= LIMITS_MAX_IDLE);
}

static void test_nothing_is_tracked_when_no_limit_is_set(void **st)
{
    limits_client c = client("192.0.2.1");
    (void)st;
    configure("", "", 0, 0);
    assert_int_equal(limits_admit(&c), LIMITS_OK);
    assert_false(c.counted);
    assert_int_equal(limits_tracked(), 0);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_any_origin_passes_when_none_is_configured),
        T(test_only_listed_origins_pass_and_no_origin_always_does),
        T(test_the_peer_is_the_client_without_trusted_proxies),
        T(test_forwarded_for_counts_only_from_a_trusted_proxy),
        T(test_the_right_most_untrusted_hop_is_the_client),
        T(test_sessions_per_ip_are_capped_and_given_back),
        T(test_an_ipv6_client_is_limited_per_64),
        T(test_the_upgrade_rate_is_a_token_bucket),
        T(test_a_rate_below_one_still_allows_one_upgrade),
        T(test_idle_entries_expire_once_their_bucket_is_full),
        T(test_memory_is_bounded_whatever_the_number_of_addresses),
        T(test_nothing_is_tracked_when_no_limit_is_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
