#!/bin/bash
# Logs on stdout: the reference text format, JSON lines with [log] json,
# VOXRAY_LOG_LEVEL winning over the file, and secrets never printed.
. "$top_srcdir/tests/integration/lib.sh"

VX_PORT=$(free_port)
RPORT=$(free_port)   # nothing listens here: the store logs its failure
cat >"$WORK/l.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
[log]
level = warn
[session]
store = redis
[plugin.redis]
address = 127.0.0.1:$RPORT
password = Pa55-w0rd-XYZ
INI
start_voxray "$WORK/l.ini" "$WORK/text.log"
stop_pid "$VX_PID"
check "text lines follow 'YYYY/MM/DD HH:MM:SS LEVEL msg key=value'" \
    grep -Eq '^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} ERROR session store check failed store=redis error="redis 127\.0\.0\.1:[0-9]+: ' "$WORK/text.log"
check "every line has the timestamp and level prefix" \
    bash -c "! grep -Ev '^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} (DEBUG|INFO|WARN|ERROR) ' '$WORK/text.log'"
check "[log] level = warn drops info lines" bash -c "! grep -q ' INFO ' '$WORK/text.log'"
check "the Redis password never appears in the log" bash -c "! grep -q 'Pa55-w0rd-XYZ' '$WORK/text.log'"

start_voxray "$WORK/l.ini" "$WORK/debug.log" VOXRAY_LOG_LEVEL=debug
stop_pid "$VX_PID"
check "VOXRAY_LOG_LEVEL=debug wins over [log] level = warn" grep -q ' INFO voxray started ' "$WORK/debug.log"
check "the password stays hidden at debug level" bash -c "! grep -q 'Pa55-w0rd-XYZ' '$WORK/debug.log'"

start_voxray "$WORK/l.ini" "$WORK/json.log" VOXRAY_LOG_JSON=true VOXRAY_LOG_LEVEL=info
stop_pid "$VX_PID"
check "json = true writes one JSON object per line" quiet jq -e -s 'length > 2 and all(type == "object")' "$WORK/json.log"
check "each JSON line has time, level and msg first" \
    quiet jq -e -s 'all(keys_unsorted[0:3] == ["time","level","msg"])' "$WORK/json.log"
check "JSON time is RFC 3339 UTC with milliseconds" \
    quiet jq -e -s 'all(.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))' "$WORK/json.log"
check "JSON fields carry the structured values" \
    quiet jq -e -s 'any(.msg == "session store check failed" and .level == "error" and .store == "redis")' "$WORK/json.log"
check "the password never appears in JSON logs" bash -c "! grep -q 'Pa55-w0rd-XYZ' '$WORK/json.log'"
done_testing
