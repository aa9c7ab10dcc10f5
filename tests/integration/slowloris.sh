#!/bin/bash
# Slow clients (slowloris) cannot take the port from anyone else: a cap on
# request heads waiting per client address, total head deadlines (first
# heads and the later heads of kept-alive connections), /health and /ready
# answering 200 while the table of waiting heads is full, and refused
# requests closed so that a client still sending reads its answer.
# The slow connections come from 127.0.0.2 .. 127.0.0.254 (any 127/8
# address is this host) through tests/tools/slowloris.
. "$top_srcdir/tests/integration/lib.sh"

SLOW="$top_builddir/tests/tools/slowloris"
# 1100 slow connections on each side, plus the server's own descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 3000 ]; then
    echo "1..0 # SKIP open file limit $(ulimit -n) is below the 3000 this test needs"
    exit 0
fi

base_conf "$WORK/a.ini" "header_timeout = 2s"
B="http://127.0.0.1:$VX_PORT"
if ! start_voxray "$WORK/a.ini" "$WORK/a.log"; then
    not_ok "voxray starts" "$(cat "$WORK/a.log")"
    done_testing
fi
ok "voxray starts (max_pending_per_ip: the default, 64)"

# below N LIMIT: N is a number smaller than LIMIT.
below() { [ "$1" -eq "$1" ] 2>/dev/null && [ "$1" -lt "$2" ]; }
# value KEY...: the rest of the line starting with KEY in $out.
value() { awk -v k="$*" 'index($0, k " ") == 1 { print substr($0, length(k) + 2); exit }' <<<"$out"; }

# One address opens 200 heads it never finishes: once they have waited out
# the grace period (1 s: half of header_timeout, at most 1 s) it keeps 64
# waiting, the 136 that waited longest are answered 429 and closed.
out=$("$SLOW" hold "$VX_PORT" 200 2 2 1300 5)
diag "$out"
check "one address with 200 slow heads keeps exactly max_pending_per_ip (64) waiting" [ "$(value still_waiting)" = 64 ]
check "... the 136 others are answered 429" [ "$(value answered 429)" = 136 ]
check "... and /health answers 200 meanwhile" grep -q '^probes /health ok 5 of 5 ' <<<"$out"
m=$(curl -s "$B/metrics")
v=$(metric_value 'voxray_rate_limited_total{limit="pending_per_ip"}' <<<"$m")
check "they are counted in voxray_rate_limited_total{limit=\"pending_per_ip\"}" [ "${v:-0}" = 136 ]
v=$(metric_value 'http_errors_total{method="GET",route="/health",error_type="429"}' <<<"$m")
check "... and in http_errors_total{error_type=\"429\"}" [ "${v:-0}" = 136 ]

# 1100 slow heads from 253 addresses (5 each at most, under the per-address
# cap) fill the table of 1024: probes still get 200 from /health and /ready,
# because the head that has waited longest gives way to a new one.
out=$("$SLOW" hold "$VX_PORT" 1100 2 254 300 20)
diag "$out"
check "with 1100 slow heads from 253 addresses, /health answers 200 (20 of 20)" grep -q '^probes /health ok 20 of 20 ' <<<"$out"
check "... and /ready answers 200 (20 of 20)" grep -q '^probes /ready ok 20 of 20 ' <<<"$out"
w=$(value still_waiting)
check "... at most max_pending (1024) heads wait" below "$w" 1025
a=$(value answered 503)
check "... the oldest heads were answered 503 to make room" [ "${a:-0}" -ge 76 ]
check "... none of the slow connections got a reset" [ "$(value reset)" = 0 ]
body=$(curl -s "$B/ready")
check "/ready reports the real checks, not the table of waiting heads" grep -q '"status":"ok"' <<<"$body"

# Total deadlines: a head dripped one byte every 300 ms is cut at
# header_timeout (2 s) however active it is...
out=$("$SLOW" drip "$VX_PORT" 300 8000)
diag "$out"
ms=$(value closed_after_ms)
check "a first head dripped byte by byte is answered 408 at header_timeout" [ "$(value answer)" = 408 ]
check "... after about 2 s, not later (${ms} ms)" below "$ms" 3500
# ... and so is the second head of a kept-alive connection, which
# libmicrohttpd reads itself (its idle timeout is reset by every byte).
out=$("$SLOW" drip "$VX_PORT" 300 8000 keepalive)
diag "$out"
ms=$(value closed_after_ms)
check "a kept-alive connection served its first request" [ "$(value first_status)" = 200 ]
check "... and its next head, dripped, is cut at header_timeout too (${ms} ms)" below "$ms" 3500
v=$(curl -s "$B/metrics" | metric_value 'http_timeout_total{method="OTHER",route="unmatched"}')
check "... counted in http_timeout_total" [ "${v:-0}" -ge 1 ]
check "an idle kept-alive connection still serves a second request" \
    bash -c "[ \$(curl -s -v '$B/health' '$B/health' 2>&1 | grep -c 'Re-using existing connection\|left intact') -ge 2 ]"

# Lingering close: a head too large, followed by 2 MB of body sent in paced
# pieces; the client sends it all and reads the 431 instead of a reset.
out=$("$SLOW" linger "$VX_PORT" 2000000)
diag "$out"
check "a refused client still sending its body sends it all (no reset)" [ "$(value sent_all)" = 1 ]
check "... and reads the complete status line" [ "$(value status_line)" = "HTTP/1.1 431 Request Header Fields Too Large" ]

check "voxray is still serving" [ "$(http_code "$B/health")" = 200 ]
check "the front logged the per-address cap" grep -q 'max_pending_per_ip' "$WORK/a.log"
stop_pid "$VX_PID"
check "and stops cleanly" [ $? -eq 0 ]

# trusted_proxies are exempt from the per-address cap: every client of a
# load balancer comes from its address.
base_conf "$WORK/b.ini" "header_timeout = 2s" "max_pending_per_ip = 8" "trusted_proxies = 127.0.0.2/32"
if ! start_voxray "$WORK/b.ini" "$WORK/b.log"; then
    not_ok "voxray starts with trusted_proxies" "$(cat "$WORK/b.log")"
    done_testing
fi
out=$("$SLOW" hold "$VX_PORT" 40 2 2 1300 2)
check "a trusted proxy's 40 slow heads all wait (cap 8 does not apply to it)" [ "$(value still_waiting)" = 40 ]
out=$("$SLOW" hold "$VX_PORT" 40 3 3 1300 2)
check "... while another address is held to 8" [ "$(value still_waiting)" = 8 ]

# A burst from one address whose heads are on their way is not refused: 300
# WebSocket-sized requests connected at once, heads sent only after all
# connected.
out=$("$SLOW" burst "$VX_PORT" 300)
diag "$out"
check "300 connections opened at once from one address, heads sent after, all get answers" [ "$(value answered 200)" = 300 ]
stop_pid "$VX_PID"

done_testing
