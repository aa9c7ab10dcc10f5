#!/bin/bash
# The live /metrics output passes `promtool check metrics` with no complaint,
# after traffic that creates series in every family voxray registers.
. "$top_srcdir/tests/integration/lib.sh"

RPORT=$(free_port)
redis_start "$RPORT" || not_ok "redis-server starts"
VX_PORT=$(free_port)
cat >"$WORK/m.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
header_timeout = 200ms
health_interval = 100ms
[session]
store = redis
[plugin.redis]
address = 127.0.0.1:$RPORT
INI
B="http://127.0.0.1:$VX_PORT"
start_voxray "$WORK/m.ini" "$WORK/m.log" || not_ok "voxray starts" "$(cat "$WORK/m.log")"
for p in /health /ready /v1/health /metrics /nope '/a"b\c' ; do curl -s -o /dev/null "$B$p"; done
curl -s -o /dev/null -X DELETE "$B/ready"
(exec 3<>"/dev/tcp/127.0.0.1/$VX_PORT"; printf 'GET /x HTTP/1.1\r\n' >&3; sleep 0.5) 2>/dev/null
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
wait_status "$B/ready" 503 2
curl -s "$B/metrics" >"$WORK/metrics.txt"

promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ ! -s "$WORK/promtool.out" ]; then
    ok "promtool check metrics accepts the live exposition"
else
    not_ok "promtool check metrics accepts the live exposition" "exit $rc" "$(head -20 "$WORK/promtool.out")"
fi
for fam in http_requests_total http_request_duration_seconds http_active_connections \
           http_errors_total http_timeout_total voxray_plugin_calls_total \
           voxray_plugin_call_duration_seconds voxray_plugin_inflight voxray_plugin_info; do
    check "family $fam has HELP, TYPE and at least one sample" bash -c \
        "grep -q '^# HELP $fam ' '$WORK/metrics.txt' && grep -q '^# TYPE $fam ' '$WORK/metrics.txt' && grep -Eq '^${fam}(_bucket|_sum|_count)?\{' '$WORK/metrics.txt'"
done
stop_pid "$VX_PID"
done_testing
