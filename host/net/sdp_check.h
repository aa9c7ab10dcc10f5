/*
 * A first look at a WebRTC SDP offer, before the WebRTC stack sees it:
 * enough to answer a malformed or unusable offer with a clear 400 instead
 * of a failed negotiation. It checks the shape, not every rule of RFC 8866.
 */
#ifndef VOXRAY_SDP_CHECK_H
#define VOXRAY_SDP_CHECK_H

#include <stddef.h>

#define SDP_MAX_BYTES 65536

typedef struct sdp_info {
    int opus_pt;       /* payload type of opus/48000/2 in the first audio m-line */
    int audio_index;   /* m-line index of that audio section */
    int has_datachannel;
    int legacy_sctp;   /* the data channel in the older sctpmap form (see webrtc.c) */
} sdp_info;

/* 0 when text (len bytes, no NUL needed) is a usable offer: "v=0", an
 * audio m-line offering opus/48000, a data-channel m-line
 * (UDP/DTLS/SCTP webrtc-datachannel, or the older DTLS/SCTP with
 * a=sctpmap:PORT webrtc-datachannel), ICE credentials and a DTLS
 * fingerprint. Otherwise -1 with a one-line reason for the client in err. */
int sdp_check_offer(const char *text, size_t len, sdp_info *out, char *err, size_t errlen);

#endif
