#!/bin/bash
# /ready follows a real Redis session store: 200 while it answers, 503 within
# 2 s of its death, 200 again once it is back; Redis down at start-up.
. "$top_srcdir/tests/integration/lib.sh"

RPORT=$(free_port)
if ! redis_start "$RPORT"; then
    not_ok "redis-server starts" "$(cat "$WORK/redis-$RPORT.log")"
    done_testing
fi
VX_PORT=$(free_port)
cat >"$WORK/r.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
health_interval = 200ms
[session]
store = redis
[plugin.redis]
plugin = store_redis
address = 127.0.0.1:$RPORT
connect_timeout = 300ms
command_timeout = 300ms
reconnect_min = 50ms
reconnect_max = 500ms
INI
B="http://127.0.0.1:$VX_PORT"
start_voxray "$WORK/r.ini" "$WORK/r.log"
check "voxray starts with store = redis" [ "$(http_code "$B/health")" = 200 ]
check "/ready is 200 while Redis answers" wait_status "$B/ready" 200 2
v=$(curl -s "$B/metrics" | metric_value 'voxray_plugin_calls_total{kind="store",plugin="redis",provider="redis",op="ping",status="ok"}')
check "Redis pings are counted as ok calls" [ "${v:-0}" -ge 1 ]

kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
t0=$(date +%s%N)
if wait_status "$B/ready" 503 2; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    ok "/ready turns 503 within 2 s of Redis dying (${ms} ms)"
else
    not_ok "/ready turns 503 within 2 s of Redis dying"
fi
body=$(curl -s "$B/ready")
check "the 503 body names the failing check" grep -q '"failing":"session_store"' <<<"$body"
check "/health stays 200 while Redis is down (liveness is not readiness)" [ "$(http_code "$B/health")" = 200 ]
m=$(curl -s "$B/metrics")
check "failed pings are counted with their error status" grep -Eq 'voxray_plugin_calls_total\{kind="store",plugin="redis",provider="redis",op="ping",status="(unavailable|timeout)"\} [1-9]' <<<"$m"
v=$(metric_value 'http_requests_total{method="GET",route="/ready",status_code="503"}' <<<"$m")
check "the 503 from /ready is counted as a request" [ "${v:-0}" -ge 1 ]
check "... but not as an HTTP error (a readiness state must not raise the 5xx alert)" \
    bash -c '! grep -q "^http_errors_total{method=\"GET\",route=\"/ready\"" <<<"$1"' _ "$m"
check "voxray logged the store failure once" [ "$(grep -c 'ERROR session store check failed' "$WORK/r.log")" = 1 ]

redis_start "$RPORT" || not_ok "redis-server restarts on the same port"
check "/ready is 200 again after Redis returns" wait_status "$B/ready" 200 3
check "the recovery is logged" grep -q 'INFO session store is reachable store=redis' "$WORK/r.log"
stop_pid "$VX_PID"
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null

# Redis down at start: voxray starts, says so in one line, reports not ready.
start_voxray "$WORK/r.ini" "$WORK/r2.log"
check "voxray starts while Redis is down" [ "$(http_code "$B/health")" = 200 ]
check "/ready is 503 while Redis has never been up" [ "$(http_code "$B/ready")" = 503 ]
check "one error line names the store and the address" grep -q "ERROR session store check failed store=redis error=.*127.0.0.1:$RPORT" "$WORK/r2.log"
redis_start "$RPORT" || not_ok "redis-server starts late"
check "/ready becomes 200 when Redis comes up late" wait_status "$B/ready" 200 3
stop_pid "$VX_PID"
check "voxray exits 0 on SIGTERM" [ $? -eq 0 ]
done_testing
