#!/bin/bash
# The HTTP surface on one port: probes, /v1/health, /metrics switches and
# the HTTP metric families with route templates.
. "$top_srcdir/tests/integration/lib.sh"

VX_PORT=$(free_port)
cat >"$WORK/a.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
header_timeout = 300ms
[metrics]
buckets.http_request_duration_seconds = 0.001, 0.01, 0.1
INI
B="http://127.0.0.1:$VX_PORT"
if ! start_voxray "$WORK/a.ini" "$WORK/a.log"; then
    not_ok "voxray starts on the default config" "$(cat "$WORK/a.log")"
    done_testing
fi
ok "voxray starts and /health answers"

check "GET /health is 200" [ "$(http_code "$B/health")" = 200 ]
check "GET /ready is 200 with the memory store" [ "$(http_code "$B/ready")" = 200 ]
body=$(curl -s "$B/ready")
check "/ready body is JSON with status ok" grep -q '"status":"ok"' <<<"$body"

body=$(curl -s "$B/v1/health")
check "/v1/health names every stage" grep -q '"services":{"stt":"unconfigured","llm":"unconfigured","tts":"unconfigured","store":"available","recording":"disabled"}' <<<"$body"
check "/v1/health lists the store provider" grep -q '"name":"memory","plugin":"store_memory","status":"available"' <<<"$body"

check "unknown path is 404" [ "$(http_code "$B/no/such/thing")" = 404 ]
check "POST /health is 405" [ "$(http_code "$B/health" -X POST -d x=1)" = 405 ]
hdr=$(curl -s -I "$B/health")
check "HEAD /health is 200" grep -q '^HTTP/1.1 200' <<<"$hdr"

ctype=$(curl -s -o /dev/null -w '%{content_type}' "$B/metrics")
check "/metrics has the 0.0.4 content type" [ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ]

# Keep-alive: two requests on one connection (libmicrohttpd closes
# connections when handlers answer on the first call).
conns=$(curl -s -v "$B/health" "$B/health" 2>&1 | grep -c 'Re-using existing connection\|Connection #0 to host .* left intact')
check "keep-alive connections are reused" [ "$conns" -ge 2 ]

# Slow client: a partial head gets 408 after header_timeout.
resp=$(exec 3<>"/dev/tcp/127.0.0.1/$VX_PORT"; printf 'GET /ready HTTP/1.1\r\nHost: x\r\n' >&3; timeout 3 head -1 <&3 | tr -d '\r')
check "an incomplete request head gets 408" [ "$resp" = "HTTP/1.1 408 Request Timeout" ]
# Heads no careful server passes on are refused at once with 400.
raw() { (exec 3<>"/dev/tcp/127.0.0.1/$VX_PORT"; printf "$1" >&3; timeout 2 head -1 <&3 | tr -d '\r'); }
t0=$(date +%s%N)
resp=$(raw 'GET /health HTTP/1.1\nHost: x\n\n')
t1=$(date +%s%N)
check "a head with bare LF line ends gets 400" [ "$resp" = "HTTP/1.1 400 Bad Request" ]
check "... at once, not after the head timeout" [ $(( (t1 - t0) / 1000000 )) -lt 1500 ]
# (the head alone: a body sent after the refused head would race the close)
resp=$(raw 'POST /v1/realtime/client_secrets HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n')
check "Content-Length with Transfer-Encoding (request smuggling) gets 400" [ "$resp" = "HTTP/1.1 400 Bad Request" ]
check "... counted as a 400" bash -c "curl -s 'http://127.0.0.1:$VX_PORT/metrics' | grep -q 'status_code=\"400\"'"
check "a well-formed request still works" [ "$(http_code "http://127.0.0.1:$VX_PORT/health")" = 200 ]

# A client speaking TLS to the plain port (the openai SDK dials wss:// even
# for an http:// base URL) is closed at once, not after header_timeout.
t0=$(date +%s%N)
timeout 5 openssl s_client -connect "127.0.0.1:$VX_PORT" </dev/null >"$WORK/tls.out" 2>&1
t1=$(date +%s%N)
check "a TLS handshake on the plain port is closed within a second" [ $(((t1 - t0) / 1000000)) -lt 1000 ]
check "the TLS handshake is logged with what to do" grep -q 'TLS handshake on the plain-HTTP port from 127.0.0.1: terminate TLS in front of voxray' "$WORK/a.log"

m=$(curl -s "$B/metrics")
v=$(metric_value 'http_errors_total{method="OTHER",route="unmatched",error_type="tls_on_plain_port"}' <<<"$m")
check "the TLS handshake is counted as http_errors_total{error_type=\"tls_on_plain_port\"}" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_requests_total{method="GET",route="/health",status_code="200"}' <<<"$m")
check "http_requests_total counts GET /health (>= 3)" [ "${v:-0}" -ge 3 ]
v=$(metric_value 'http_requests_total{method="GET",route="unmatched",status_code="404"}' <<<"$m")
check "unknown paths are counted under route=unmatched" [ "${v:-0}" = 1 ]
check "raw paths never become labels" bash -c '! grep -q "no/such/thing" <<<"$1"' _ "$m"
v=$(metric_value 'http_errors_total{method="GET",route="unmatched",error_type="404"}' <<<"$m")
check "http_errors_total counts the 404 by status code" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_errors_total{method="POST",route="/health",error_type="405"}' <<<"$m")
check "http_errors_total counts the 405" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_timeout_total{method="GET",route="/ready"}' <<<"$m")
check "http_timeout_total counts the slow head" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_requests_total{method="GET",route="/ready",status_code="408"}' <<<"$m")
check "the 408 is counted as a request" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_active_connections{route="/metrics"}' <<<"$m")
check "http_active_connections counts the request being served" [ "${v:-0}" = 1 ]
v=$(metric_value 'http_active_connections{route="/health"}' <<<"$m")
check "http_active_connections falls back to 0" [ "${v:-x}" = 0 ]
check "bucket override from the INI is used" grep -q 'http_request_duration_seconds_bucket{method="GET",route="/health",status_code="200",le="0.01"}' <<<"$m"
check "default buckets are replaced" bash -c '! grep -q "http_request_duration_seconds_bucket{.*le=\"0.0025\"}" <<<"$1"' _ "$m"
c=$(metric_value 'http_request_duration_seconds_count{method="GET",route="/health",status_code="200"}' <<<"$m")
inf=$(metric_value 'http_request_duration_seconds_bucket{method="GET",route="/health",status_code="200",le="+Inf"}' <<<"$m")
check "duration histogram +Inf bucket equals _count" [ -n "$c" -a "$c" = "$inf" ]
check "voxray_plugin_info names the store instance" grep -q 'voxray_plugin_info{plugin="memory",provider="memory",module="store_memory",version="[^"]*",abi="1\.[0-9]*"} 1' <<<"$m"
v=$(metric_value 'voxray_plugin_calls_total{kind="store",plugin="memory",provider="memory",op="ping",status="ok"}' <<<"$m")
check "store pings go through the call gate (calls_total)" [ "${v:-0}" -ge 1 ]
v=$(metric_value 'voxray_plugin_call_duration_seconds_count{kind="store",plugin="memory",provider="memory",op="ping"}' <<<"$m")
check "store pings are timed (call_duration_seconds)" [ "${v:-0}" -ge 1 ]
v=$(metric_value 'voxray_plugin_inflight{kind="store",plugin="memory",provider="memory"}' <<<"$m")
check "voxray_plugin_inflight is back to 0 between calls" [ "${v:-x}" = 0 ]

# Port already in use: one clear line, non-zero exit.
"$VOXRAY" -c "$WORK/a.ini" >"$WORK/b.log" 2>&1
rc=$?
check "a second instance on the same port exits non-zero" [ $rc -ne 0 ]
check "and says the address is in use in one line" grep -q "ERROR listen 127.0.0.1:$VX_PORT: Address already in use" "$WORK/b.log"
check "the running instance still answers" [ "$(http_code "$B/health")" = 200 ]

stop_pid "$VX_PID"
check "SIGTERM stops voxray with status 0" [ $? -eq 0 ]
check "shutdown is logged" grep -q 'INFO voxray stopped' "$WORK/a.log"

# [metrics] enabled = false -> 404; allowlist -> 403 / 200.
VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[metrics]\nenabled = false\n' "$VX_PORT" "$PLUGIN_DIR" >"$WORK/c.ini"
start_voxray "$WORK/c.ini" "$WORK/c.log"
check "/metrics is 404 when disabled" [ "$(http_code "http://127.0.0.1:$VX_PORT/metrics")" = 404 ]
stop_pid "$VX_PID"

VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[metrics]\nallow = 10.0.0.0/8, fd00::/8\n' "$VX_PORT" "$PLUGIN_DIR" >"$WORK/d.ini"
start_voxray "$WORK/d.ini" "$WORK/d.log"
check "/metrics is 403 from outside the allowlist" [ "$(http_code "http://127.0.0.1:$VX_PORT/metrics")" = 403 ]
check "other routes ignore the metrics allowlist" [ "$(http_code "http://127.0.0.1:$VX_PORT/health")" = 200 ]
stop_pid "$VX_PID"

VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[metrics]\nallow = 10.0.0.0/8, 127.0.0.1\n' "$VX_PORT" "$PLUGIN_DIR" >"$WORK/e.ini"
start_voxray "$WORK/e.ini" "$WORK/e.log"
check "/metrics is 200 from inside the allowlist" [ "$(http_code "http://127.0.0.1:$VX_PORT/metrics")" = 200 ]
stop_pid "$VX_PID"

# The demo page's folder: regular files only, never a symlink out of it.
mkdir -p "$WORK/web"
printf '<!doctype html><title>t</title>\n' >"$WORK/web/index.html"
ln -s /etc/passwd "$WORK/web/leak.txt"
ln -s index.html "$WORK/web/alias.html"
VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\nweb_root = %s\n' "$VX_PORT" "$PLUGIN_DIR" "$WORK/web" >"$WORK/w.ini"
start_voxray "$WORK/w.ini" "$WORK/w.log"
check "the demo page is served from web_root" [ "$(http_code "http://127.0.0.1:$VX_PORT/")" = 200 ]
check "a symlink in web_root to a file outside it is not followed (404)" \
    [ "$(http_code "http://127.0.0.1:$VX_PORT/leak.txt")" = 404 ]
check "... nor one to a file inside it" [ "$(http_code "http://127.0.0.1:$VX_PORT/alias.html")" = 404 ]
check "... and the file's content never leaks" bash -c "! curl -s 'http://127.0.0.1:$VX_PORT/leak.txt' | grep -q root:"
stop_pid "$VX_PID"

done_testing
