/*
 * CIDR allowlist (host/base/acl.c): which client addresses an entry list lets
 * through, and which lists are refused and why.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "base/acl.h"

/* ------------------------------------------------------------ helpers */

static int match_v4(const acl *a, const char *ip)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(4242);
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return acl_match(a, (const struct sockaddr *)&sin);
}

static int match_v6(const acl *a, const char *ip)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(4242);
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    return acl_match(a, (const struct sockaddr *)&sin6);
}

static acl *parse_ok(const char *list)
{
    acl *a = NULL;
    char why[256] = "";
    int rc = acl_parse(list, &a, why, sizeof why);
    if (rc != 0) fprintf(stderr, "# acl_parse(\"%s\"): %s\n", list, why);
    assert_int_equal(rc, 0);
    assert_non_null(a);
    return a;
}

/* Parse a list that must be refused; the reason must mention `expect`. */
static void parse_refused(const char *list, const char *expect)
{
    acl *a = (acl *)0x1;
    char why[256] = "";
    assert_int_equal(acl_parse(list, &a, why, sizeof why), -1);
    assert_null(a);
    fprintf(stderr, "# acl_parse(\"%s\") -> %s\n", list, why);
    assert_true(why[0] != '\0');
    assert_non_null(strstr(why, expect));
}

/* ------------------------------------------------------------ tests */

static void ipv4_cidr_matches_addresses_inside_the_prefix(void **state)
{
    (void)state;
    acl *a = parse_ok("10.0.0.0/8, 192.168.1.0/24");
    assert_true(match_v4(a, "10.0.0.1"));
    assert_true(match_v4(a, "10.255.255.255"));
    assert_true(match_v4(a, "192.168.1.77"));
    assert_false(match_v4(a, "11.0.0.1"));
    assert_false(match_v4(a, "192.168.2.1"));
    acl_free(a);
}

static void ipv4_prefix_not_on_a_byte_boundary(void **state)
{
    (void)state;
    acl *a = parse_ok("172.16.0.0/12");
    assert_true(match_v4(a, "172.16.0.1"));
    assert_true(match_v4(a, "172.31.255.254"));
    assert_false(match_v4(a, "172.32.0.1"));
    assert_false(match_v4(a, "172.15.255.255"));
    acl_free(a);
}

static void bare_address_is_a_single_host(void **state)
{
    (void)state;
    acl *a = parse_ok("127.0.0.1");
    assert_true(match_v4(a, "127.0.0.1"));
    assert_false(match_v4(a, "127.0.0.2"));
    acl_free(a);
}

static void slash_zero_matches_every_ipv4_address(void **state)
{
    (void)state;
    acl *a = parse_ok("0.0.0.0/0");
    assert_true(match_v4(a, "1.2.3.4"));
    assert_true(match_v4(a, "255.255.255.255"));
    assert_true(match_v4(a, "0.0.0.0"));
    /* An IPv4 entry says nothing about native IPv6 clients. */
    assert_false(match_v6(a, "2001:db8::1"));
    acl_free(a);
}

static void ipv6_loopback_host_entry(void **state)
{
    (void)state;
    acl *a = parse_ok("::1/128");
    assert_true(match_v6(a, "::1"));
    assert_false(match_v6(a, "::2"));
    assert_false(match_v4(a, "127.0.0.1"));
    acl_free(a);
}

static void ipv6_unique_local_prefix(void **state)
{
    (void)state;
    acl *a = parse_ok("fd00::/8");
    assert_true(match_v6(a, "fd00::1"));
    assert_true(match_v6(a, "fdff:ffff::1234"));
    assert_false(match_v6(a, "fc00::1"));
    assert_false(match_v6(a, "fe80::1"));
    acl_free(a);
}

static void ipv4_mapped_ipv6_client_matches_ipv4_entry(void **state)
{
    (void)state;
    acl *a = parse_ok("127.0.0.0/8");
    assert_true(match_v6(a, "::ffff:127.0.0.1"));
    assert_false(match_v6(a, "::ffff:10.0.0.1"));
    /* Not mapped: the IPv4-compatible look-alike must not match. */
    assert_false(match_v6(a, "::127.0.0.1"));
    acl_free(a);
}

static void non_matching_client_is_refused(void **state)
{
    (void)state;
    acl *a = parse_ok("10.0.0.0/8, ::1/128");
    assert_false(match_v4(a, "8.8.8.8"));
    assert_false(match_v6(a, "2001:db8::1"));
    acl_free(a);
}

static void empty_list_matches_nothing(void **state)
{
    (void)state;
    acl *a = parse_ok("");
    assert_false(match_v4(a, "127.0.0.1"));
    assert_false(match_v6(a, "::1"));
    acl_free(a);
}

static void prefix_length_over_32_is_refused(void **state)
{
    (void)state;
    parse_refused("10.0.0.0/33", "prefix length");
    parse_refused("10.0.0.0/33", "10.0.0.0/33");
}

static void prefix_length_over_128_is_refused(void **state)
{
    (void)state;
    parse_refused("::1/129", "prefix length");
}

static void malformed_prefix_length_is_refused(void **state)
{
    (void)state;
    parse_refused("10.0.0.0/", "prefix length");
    parse_refused("10.0.0.0/8x", "prefix length");
    parse_refused("10.0.0.0/-1", "prefix length");
}

static void octet_over_255_is_refused(void **state)
{
    (void)state;
    parse_refused("300.1.1.1", "not an IP address");
    parse_refused("300.1.1.1", "300.1.1.1");
}

static void word_is_refused(void **state)
{
    (void)state;
    parse_refused("abc", "not an IP address");
}

static void bad_entry_after_good_ones_is_refused(void **state)
{
    (void)state;
    parse_refused("127.0.0.0/8, ::1/128, abc", "abc");
}

static void empty_element_is_refused(void **state)
{
    (void)state;
    parse_refused("10.0.0.0/8,,", "empty");
    parse_refused(",10.0.0.0/8", "empty");
    parse_refused("10.0.0.0/8, ,::1", "empty");
}

static void unix_socket_client_never_matches(void **state)
{
    (void)state;
    acl *a = parse_ok("0.0.0.0/0, ::/0");
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, "/tmp/voxray.sock");
    assert_false(acl_match(a, (const struct sockaddr *)&sun));
    acl_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_cidr_matches_addresses_inside_the_prefix),
        cmocka_unit_test(ipv4_prefix_not_on_a_byte_boundary),
        cmocka_unit_test(bare_address_is_a_single_host),
        cmocka_unit_test(slash_zero_matches_every_ipv4_address),
        cmocka_unit_test(ipv6_loopback_host_entry),
        cmocka_unit_test(ipv6_unique_local_prefix),
        cmocka_unit_test(ipv4_mapped_ipv6_client_matches_ipv4_entry),
        cmocka_unit_test(non_matching_client_is_refused),
        cmocka_unit_test(empty_list_matches_nothing),
        cmocka_unit_test(prefix_length_over_32_is_refused),
        cmocka_unit_test(prefix_length_over_128_is_refused),
        cmocka_unit_test(malformed_prefix_length_is_refused),
        cmocka_unit_test(octet_over_255_is_refused),
        cmocka_unit_test(word_is_refused),
        cmocka_unit_test(bad_entry_after_good_ones_is_refused),
        cmocka_unit_test(empty_element_is_refused),
        cmocka_unit_test(unix_socket_client_never_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
