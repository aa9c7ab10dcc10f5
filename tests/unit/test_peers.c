/*
 * Connections grouped by client address (host/net/peers.c): which addresses
 * count as one client, arrival order within a group, and that a group lives
 * exactly as long as it has links.
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
#include <stdlib.h>
#include <string.h>

#include "net/peers.h"

/* The key of a textual address, asserting it has one. */
static void key_of(const char *ip, unsigned char key[16])
{
    struct sockaddr_storage ss;
    socklen_t len;

    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        len = sizeof *a;
    }
    assert_int_equal(peers_key((struct sockaddr *)&ss, len, key), 0);
}

static int same_client(const char *a, const char *b)
{
    unsigned char ka[16], kb[16];
    key_of(a, ka);
    key_of(b, kb);
    return memcmp(ka, kb, 16) == 0;
}

static void ipv4_addresses_are_clients_of_their_own(void **st)
{
    (void)st;
    assert_true(same_client("192.0.2.7", "192.0.2.7"));
    assert_false(same_client("192.0.2.7", "192.0.2.8"));
    assert_false(same_client("127.0.0.1", "127.0.0.2"));
}

static void ipv4_mapped_ipv6_is_the_ipv4_client(void **st)
{
    (void)st;
    assert_true(same_client("::ffff:192.0.2.7", "192.0.2.7"));
    assert_false(same_client("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
}

static void one_ipv6_64_is_one_client(void **st)
{
    (void)st;
    assert_true(same_client("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"));
    assert_false(same_client("2001:db8:1:2::1", "2001:db8:1:3::1"));
}

static void other_families_have_no_key(void **st)
{
    (void)st;
    struct sockaddr_storage ss;
    unsigned char key[16];
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    assert_int_equal(peers_key((struct sockaddr *)&ss, sizeof ss, key), -1);
    assert_int_equal(peers_key(NULL, 0, key), -1);
    ss.ss_family = AF_INET; /* too short to be one */
    assert_int_equal(peers_key((struct sockaddr *)&ss, 2, key), -1);
}

static void links_count_per_address_oldest_first(void **st)
{
    (void)st;
    peers *t = peers_new(16);
    peers_link l[5];
    unsigned char a[16], b[16];

    assert_non_null(t);
    memset(l, 0, sizeof l);
    key_of("198.51.100.1", a);
    key_of("198.51.100.2", b);
    assert_int_equal(peers_add(t, a, &l[0]), 1);
    assert_int_equal(peers_add(t, b, &l[1]), 1);
    assert_int_equal(peers_add(t, a, &l[2]), 2);
    assert_int_equal(peers_add(t, a, &l[3]), 3);
    assert_int_equal(peers_groups(t), 2);
    assert_ptr_equal(peers_oldest(&l[3]), &l[0]);
    assert_ptr_equal(peers_oldest(&l[1]), &l[1]);
    assert_int_equal(peers_count(&l[2]), 3);

    peers_remove(t, &l[0]); /* the oldest goes: the next becomes the oldest */
    assert_ptr_equal(peers_oldest(&l[3]), &l[2]);
    assert_int_equal(peers_count(&l[3]), 2);
    assert_int_equal(peers_count(&l[0]), 0);
    peers_remove(t, &l[0]); /* not in a table any more: no-op */
    peers_remove(t, &l[3]); /* the newest: order of the rest kept */
    assert_ptr_equal(peers_oldest(&l[2]), &l[2]);
    assert_int_equal(peers_count(&l[2]), 1);

    peers_remove(t, &l[1]);
    assert_int_equal(peers_groups(t), 1); /* b's group went with its last link */
    peers_remove(t, &l[2]);
    assert_int_equal(peers_groups(t), 0);
    assert_int_equal(peers_add(t, a, &l[4]), 1); /* a fresh group */
    peers_free(t);
}

/* Many more addresses than buckets: every group stays apart and all are
 * gone once their links are. */
static void many_addresses_share_buckets_without_mixing(void **st)
{
    (void)st;
    enum { N = 20000 };
    peers *t = peers_new(64);
    peers_link *l = calloc(2 * N, sizeof *l);
    char ip[32];
    unsigned char k[16];

    assert_non_null(t);
    assert_non_null(l);
    for (int i = 0; i < N; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        key_of(ip, k);
        assert_int_equal(peers_add(t, k, &l[2 * i]), 1);
        assert_int_equal(peers_add(t, k, &l[2 * i + 1]), 2);
    }
    assert_int_equal(peers_groups(t), N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(peers_oldest(&l[2 * i + 1]), &l[2 * i]);
        peers_remove(t, &l[2 * i]);
        assert_int_equal(peers_count(&l[2 * i + 1]), 1);
    }
    for (int i = 0; i < N; i++) peers_remove(t, &l[2 * i + 1]);
    assert_int_equal(peers_groups(t), 0);
    free(l);
    peers_free(t);
}

static void freeing_a_table_with_groups_left_leaks_nothing(void **st)
{
    (void)st;
    peers *t = peers_new(0);
    peers_link l[3];
    unsigned char k[16];

    memset(l, 0, sizeof l);
    key_of("2001:db8::1", k);
    peers_add(t, k, &l[0]);
    peers_add(t, k, &l[1]);
    key_of("203.0.113.9", k);
    peers_add(t, k, &l[2]);
    peers_free(t); /* ASan/valgrind runs check this */
    peers_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_addresses_are_clients_of_their_own),
        cmocka_unit_test(ipv4_mapped_ipv6_is_the_ipv4_client),
        cmocka_unit_test(one_ipv6_64_is_one_client),
        cmocka_unit_test(other_families_have_no_key),
        cmocka_unit_test(links_count_per_address_oldest_first),
        cmocka_unit_test(many_addresses_share_buckets_without_mixing),
        cmocka_unit_test(freeing_a_table_with_groups_left_leaks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
