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

# What callers say is personal data: it reaches INFO lines only with
# [log] transcripts = true; DEBUG shows it.
sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
talk_log() { # talk_log LOG [transcripts] [env...]: one spoken turn, then stop
    local log=$1 tr=$2; shift 2
    VX_PORT=$(free_port)
    printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[log]\ntranscripts = %s\n[plugin.sim]\ntranscript = secret plans here\n[stt]\nproviders = sim\n[llm]\nproviders = sim\n[tts]\nproviders = sim\n' \
        "$VX_PORT" "$PLUGIN_DIR" "$tr" >"$WORK/t.ini"
    start_voxray "$WORK/t.ini" "$log" "$@" && wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
    "$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -s 0 "$WORK/turn.wav" >/dev/null 2>&1
    stop_pid "$VX_PID"
}
talk_log "$WORK/quiet.log" false
check "by default the transcript is logged as a word count" grep -q 'INFO stt transcript received .*words=3' "$WORK/quiet.log"
check "... and neither what the caller said nor the reply appears" bash -c "! grep -q 'secret plans' '$WORK/quiet.log'"
talk_log "$WORK/loud.log" true
check "[log] transcripts = true logs what the caller said" grep -q 'INFO stt transcript received .*text="secret plans here"' "$WORK/loud.log"
check "... and the reply" grep -q 'INFO response done .*text="You said: secret plans here."' "$WORK/loud.log"
talk_log "$WORK/dbg.log" false VOXRAY_LOG_LEVEL=debug
check "DEBUG lines carry the texts" grep -q 'DEBUG stt transcript .*text="secret plans here"' "$WORK/dbg.log"
done_testing
