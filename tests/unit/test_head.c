/*
 * Header fields out of a raw request head (host/net/head.c).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/head.h"

static const char HEAD[] =
    "GET /v1/realtime HTTP/1.1\r\n"
    "Host: x\r\n"
    "x-forwarded-for:  10.0.0.1 , 10.0.0.2\r\n"
    "Sec-WebSocket-Protocol: realtime\r\n"
    "X-Forwarded-For: 192.0.2.7\t\r\n"
    "Empty:\r\n"
    "\r\n"
    "X-Forwarded-For: after the blank line\r\n";

static void test_a_field_is_found_whatever_the_case_and_trimmed(void **st)
{
    char v[64];
    (void)st;
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "sec-websocket-protocol", v, sizeof v), 1);
    assert_string_equal(v, "realtime");
}

static void test_repeated_lines_are_joined_in_order_up_to_the_blank_line(void **st)
{
    char v[64];
    (void)st;
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "X-Forwarded-For", v, sizeof v), 2);
    assert_string_equal(v, "10.0.0.1 , 10.0.0.2, 192.0.2.7");
}

static void test_an_absent_field_gives_zero_and_an_empty_value_one(void **st)
{
    char v[64] = "junk";
    (void)st;
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "Authorization", v, sizeof v), 0);
    assert_string_equal(v, "");
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "Empty", v, sizeof v), 1);
    assert_string_equal(v, "");
}

static void test_a_name_prefix_is_not_a_match(void **st)
{
    char v[64];
    (void)st;
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "Sec-WebSocket", v, sizeof v), 0);
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "X-Forwarded-Fo", v, sizeof v), 0);
}

static void test_a_value_that_does_not_fit_is_refused_not_cut(void **st)
{
    char v[20] = "junk";
    (void)st;
    assert_int_equal(head_values(HEAD, sizeof HEAD - 1, "X-Forwarded-For", v, sizeof v), -1);
    assert_string_equal(v, "");
}

static void test_the_request_line_is_never_a_field(void **st)
{
    static const char h[] = "GET /Host: evil HTTP/1.1\r\n\r\n";
    char v[64];
    (void)st;
    assert_int_equal(head_values(h, sizeof h - 1, "GET /Host", v, sizeof v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_field_is_found_whatever_the_case_and_trimmed),
        cmocka_unit_test(test_repeated_lines_are_joined_in_order_up_to_the_blank_line),
        cmocka_unit_test(test_an_absent_field_gives_zero_and_an_empty_value_one),
        cmocka_unit_test(test_a_name_prefix_is_not_a_match),
        cmocka_unit_test(test_a_value_that_does_not_fit_is_refused_not_cut),
        cmocka_unit_test(test_the_request_line_is_never_a_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
