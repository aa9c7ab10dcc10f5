#!/bin/bash
# SIGHUP re-reads the configuration: [log] and [metrics] enabled/allow apply
# at once, other changes are named as needing a restart, and a broken file
# changes nothing.
. "$top_srcdir/tests/integration/lib.sh"

VX_PORT=$(free_port)
B="http://127.0.0.1:$VX_PORT"
write() { # write LEVEL ENABLED ALLOW HTTP_THREADS
    printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\nhttp_threads = %s\n[log]\nlevel = %s\n[metrics]\nenabled = %s\n%s\n' \
        "$VX_PORT" "$PLUGIN_DIR" "$4" "$1" "$2" "${3:+allow = $3}" >"$WORK/r.ini"
}
hup() { kill -HUP "$VX_PID"; sleep 0.3; }

write warn true "" 2
start_voxray "$WORK/r.ini" "$WORK/r.log"
check "/metrics answers before the reload" [ "$(http_code "$B/metrics")" = 200 ]

write info false "" 2
hup
check "the reload is logged (and [log] level = info now applies)" grep -q 'INFO SIGHUP: configuration reloaded' "$WORK/r.log"
check "[metrics] enabled = false applies without a restart" [ "$(http_code "$B/metrics")" = 404 ]
check "nothing else changed, so no restart is asked for" grep -q 'restart_needed=no' "$WORK/r.log"

write info true "10.0.0.0/8" 2
hup
check "[metrics] allow applies without a restart" [ "$(http_code "$B/metrics")" = 403 ]

write info true "127.0.0.1" 3
hup
check "/metrics is open again for the allowed address" [ "$(http_code "$B/metrics")" = 200 ]
check "a change that needs a restart is named" grep -q 'WARN SIGHUP: this section changed; restart voxray to apply it section=\[server\]' "$WORK/r.log"

printf '[server]\nlisten = nonsense\n' >"$WORK/r.ini"
hup
check "a broken file is refused with one error line" grep -q 'ERROR SIGHUP: the configuration has errors; keeping the running one' "$WORK/r.log"
check "and voxray keeps serving with the previous settings" [ "$(http_code "$B/metrics")" = 200 ]
metrics=$(curl -s "$B/metrics")
check "the refused file is a failed reload in the metrics" \
    grep -q '^voxray_config_last_reload_successful 0$' <<<"$metrics"
check "... counted, after the reloads that applied" \
    grep -q '^voxray_config_reloads_total{result="failure"} 1$' <<<"$metrics"
stop_pid "$VX_PID"
check "voxray exits 0 after reloads" [ $? -eq 0 ]

# A plugin key set only in the environment (the Redis password) is no
# change: the file did not change, so no restart is asked for.
RPORT=$(free_port)
redis_start "$RPORT" --requirepass 'env-only-Pa55'
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[session]\nstore = redis\n[plugin.redis]\naddress = 127.0.0.1:%s\n' \
    "$VX_PORT" "$PLUGIN_DIR" "$RPORT" >"$WORK/p.ini"
start_voxray "$WORK/p.ini" "$WORK/p.log" VOXRAY_PLUGIN_REDIS_PASSWORD=env-only-Pa55
check "the store connects with the password from the environment" wait_status "$B/ready" 200 10
kill -HUP "$VX_PID"; sleep 0.5
check "SIGHUP with an unchanged file asks for no restart" grep -q 'SIGHUP: configuration reloaded.*restart_needed=no' "$WORK/p.log"
check "... and names no changed section" bash -c "! grep -q 'this section changed' '$WORK/p.log'"
check "... and the password never appears" bash -c "! grep -q 'env-only-Pa55' '$WORK/p.log'"
stop_pid "$VX_PID"
done_testing
