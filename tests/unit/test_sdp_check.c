/* The SDP offer checks of POST /v1/realtime/calls (host/net/sdp_check.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/sdp_check.h"

#define HEAD "v=0\r\no=- 46117 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
#define AUDIO "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" \
              "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n" \
              "a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=sendrecv\r\n" \
              "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
#define DATA "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n" \
             "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n" \
             "a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=sctp-port:5000\r\n"

static int check(const char *sdp, sdp_info *info, char *err)
{
    return sdp_check_offer(sdp, strlen(sdp), info, err, 200);
}

static void good_offer(void **state)
{
    (void)state;
    sdp_info info;
    char err[200] = "";
    assert_int_equal(check(HEAD AUDIO DATA, &info, err), 0);
    assert_int_equal(info.opus_pt, 111);
    assert_int_equal(info.audio_index, 0);
    assert_int_equal(info.has_datachannel, 1);
}

static void lf_only_and_other_pt(void **state)
{
    (void)state;
    const char *sdp = "v=0\no=- 1 2 IN IP4 0.0.0.0\ns=-\nt=0 0\na=ice-ufrag:x\na=fingerprint:sha-256 AA\n"
                      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\n"
                      "m=audio 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 OPUS/48000/2\n";
    sdp_info info;
    char err[200];
    assert_int_equal(check(sdp, &info, err), 0);
    assert_int_equal(info.opus_pt, 96);
    assert_int_equal(info.audio_index, 1);
}

/* The older data-channel form (draft-ietf-mmusic-sctp-sdp-05), as aiortc
 * offers it; an application section without sctpmap is not a channel. */
static void legacy_sctpmap(void **state)
{
    (void)state;
    const char *sdp = HEAD AUDIO "m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
                      "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
                      "a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=sctpmap:5000 webrtc-datachannel 65535\r\n";
    sdp_info info;
    char err[200];
    assert_int_equal(check(sdp, &info, err), 0);
    assert_int_equal(info.has_datachannel, 1);
    assert_int_equal(info.legacy_sctp, 1);
    assert_int_equal(check(HEAD AUDIO "m=application 9 DTLS/SCTP 5000\r\na=mid:1\r\n", &info, err), -1);
    assert_non_null(strstr(err, "no data channel"));
    /* sctpmap in the audio section does not count */
    assert_int_equal(check(HEAD AUDIO "a=sctpmap:5000 webrtc-datachannel 1\r\n", &info, err), -1);
    assert_int_equal(check(HEAD AUDIO DATA, &info, err), 0);
    assert_int_equal(info.legacy_sctp, 0);
}

static void refused(void **state)
{
    (void)state;
    char err[200];
    assert_int_equal(check("", NULL, err), -1);
    assert_int_equal(check("hello world", NULL, err), -1);
    assert_non_null(strstr(err, "x=value"));
    assert_int_equal(check("o=- 1 2 IN IP4 0.0.0.0\r\nv=0\r\n", NULL, err), -1);
    assert_non_null(strstr(err, "v=0"));
    assert_int_equal(check(HEAD DATA, NULL, err), -1);
    assert_non_null(strstr(err, "no audio"));
    assert_int_equal(check(HEAD AUDIO, NULL, err), -1);
    assert_non_null(strstr(err, "data channel"));
    assert_int_equal(check(HEAD "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n" DATA, NULL, err), -1);
    assert_non_null(strstr(err, "opus"));
    assert_int_equal(check("v=0\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
                           "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", NULL, err), -1);
    assert_non_null(strstr(err, "ice-ufrag"));
    char bad[] = HEAD AUDIO DATA;
    bad[5] = '\x01';
    assert_int_equal(check(bad, NULL, err), -1);
    assert_non_null(strstr(err, "control character"));
    static char big[SDP_MAX_BYTES + 10];
    memset(big, 'a', sizeof big - 1);
    assert_int_equal(check(big, NULL, err), -1);
    assert_non_null(strstr(err, "larger"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_offer),
        cmocka_unit_test(lf_only_and_other_pt),
        cmocka_unit_test(legacy_sctpmap),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
