/*
 * SDP offer checks (see sdp_check.h). Lines are "x=value", CRLF or LF
 * terminated; session-level attributes apply to every media section.
 */
#include "config.h"

#include "net/sdp_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* "a=rtpmap:PT opus/48000[/2]": the payload type, or -1. */
static int opus_rtpmap(const char *v, size_t n)
{
    if (n < 8 || strncmp(v, "rtpmap:", 7) != 0) return -1;
    char buf[96];
    if (n - 7 >= sizeof buf) return -1;
    memcpy(buf, v + 7, n - 7);
    buf[n - 7] = '\0';
    char *end;
    long pt = strtol(buf, &end, 10);
    if (end == buf || *end != ' ' || pt < 0 || pt > 127) return -1;
    const char *codec = end + 1;
    if (strncasecmp(codec, "opus/48000", 10) != 0) return -1;
    if (codec[10] != '\0' && codec[10] != '/') return -1;
    return (int)pt;
}

int sdp_check_offer(const char *text, size_t len, sdp_info *out, char *err, size_t errlen)
{
    sdp_info info = {-1, -1, 0, 0};
    int session_ufrag = 0, session_fp = 0, media_ufrag_all = 1, media_fp_all = 1;
    int cur_ufrag = 0, cur_fp = 0;
    int mline = -1, cur_audio = 0, cur_app = 0, audio_seen = 0;
    if (text == NULL || len == 0) return fail(err, errlen, "the SDP offer is empty");
    if (len > SDP_MAX_BYTES) return fail(err, errlen, "the SDP offer is larger than %d bytes", SDP_MAX_BYTES);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\0' || (ch < 0x20 && ch != '\r' && ch != '\n' && ch != '\t'))
            return fail(err, errlen, "the SDP offer contains a control character at byte %zu", i);
    }
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && l[n - 1] == '\r') n--;
        lineno++;
        /* (checked before blank lines are skipped: "\nv=0" does not start with v=0) */
        if (lineno == 1 && !(n == 3 && memcmp(l, "v=0", 3) == 0)) {
            if (n < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z')
                return fail(err, errlen, "SDP line 1 is not of the form x=value");
            return fail(err, errlen, "the SDP offer must start with v=0");
        }
        if (n == 0) continue;
        if (n < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z')
            return fail(err, errlen, "SDP line %d is not of the form x=value", lineno);
        const char *v = l + 2;
        size_t vn = n - 2;
        if (l[0] == 'm') {
            if (mline >= 0) {
                media_ufrag_all &= cur_ufrag;
                media_fp_all &= cur_fp;
            }
            mline++;
            cur_ufrag = cur_fp = 0;
            cur_audio = vn >= 6 && strncmp(v, "audio ", 6) == 0;
            if (cur_audio) audio_seen = 1;
            cur_app = vn >= 12 && strncmp(v, "application ", 12) == 0 && memmem(v, vn, "SCTP", 4);
            if (cur_app && memmem(v, vn, "webrtc-datachannel", 18)) info.has_datachannel = 1;
        } else if (l[0] == 'a') {
            int is_ufrag = vn > 10 && strncmp(v, "ice-ufrag:", 10) == 0;
            int is_fp = vn > 12 && strncmp(v, "fingerprint:", 12) == 0;
            if (mline < 0) {
                session_ufrag |= is_ufrag;
                session_fp |= is_fp;
            } else {
                cur_ufrag |= is_ufrag;
                cur_fp |= is_fp;
            }
            if (vn == 13 && memcmp(v, "setup:passive", 13) == 0)
                return fail(err, errlen, "an offer must not be a=setup:passive (send actpass)");
            /* The older form (draft-ietf-mmusic-sctp-sdp-05, still sent
             * by some clients): "m=application P DTLS/SCTP 5000" with
             * "a=sctpmap:5000 webrtc-datachannel N". */
            if (cur_app && vn > 8 && strncmp(v, "sctpmap:", 8) == 0 && memmem(v, vn, " webrtc-datachannel", 19)) {
                info.has_datachannel = 1;
                info.legacy_sctp = 1;
            }
            if (cur_audio && info.opus_pt < 0) {
                int pt = opus_rtpmap(v, vn);
                if (pt >= 0) {
                    info.opus_pt = pt;
                    info.audio_index = mline;
                }
            }
        } else if (mline < 0 && l[0] == 'o' && vn < 11) {
            return fail(err, errlen, "SDP line %d: the o= line is incomplete", lineno);
        }
    }
    if (lineno == 0 || mline < 0) return fail(err, errlen, "the SDP offer has no media sections (m= lines)");
    media_ufrag_all &= cur_ufrag;
    media_fp_all &= cur_fp;
    if (!audio_seen) return fail(err, errlen, "the SDP offer has no audio (an m=audio section is required)");
    if (info.opus_pt < 0) return fail(err, errlen, "the audio section of the SDP offer does not offer opus/48000");
    if (!info.has_datachannel)
        return fail(err, errlen, "the SDP offer has no data channel (create the 'oai-events' data channel before the offer)");
    if (!session_ufrag && !media_ufrag_all) return fail(err, errlen, "the SDP offer has no a=ice-ufrag");
    if (!session_fp && !media_fp_all) return fail(err, errlen, "the SDP offer has no a=fingerprint (DTLS is required)");
    if (out) *out = info;
    return 0;
}
