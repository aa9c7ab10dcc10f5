#!/bin/bash
# Recordings into S3 through rec_s3, against a local S3 server that checks
# SigV4 signatures (@20minutes/s3rver, tests/tools/s3rver.mjs): a recorded
# call arrives as objects; a wrong secret is refused, dead-lettered at once
# and replayed once the secret is fixed; the server down means retries,
# then a dead letter, replayed when it is back. Objects are compared byte
# for byte with the dead letters they came from.
. "$top_srcdir/tests/integration/lib.sh"

CLIENT="$top_builddir/tools/voxray-client"
S3DIR="$WORK/s3" SPOOL="$WORK/spool" DEAD="$WORK/dead"
KEY=AKIAVOXRAYTEST SECRET=voxray-test-secret-4f2a9c WRONG=not-the-secret-77e1
S3_PORT=$(free_port)

# s3_start: the S3 server on S3_PORT, S3_PID set, waits for "ready".
s3_start() {
    rm -f "$WORK/s3.ready"
    node "$top_srcdir/tests/tools/s3rver.mjs" --port "$S3_PORT" --dir "$S3DIR" --bucket recordings --bucket voxray-recordings \
        --key "$KEY" --secret "$SECRET" --log "$WORK/s3.requests" >"$WORK/s3.ready" 2>>"$WORK/s3.err" &
    S3_PID=$!
    track "$S3_PID"
    local i=0
    while ! grep -qx ready "$WORK/s3.ready" 2>/dev/null; do
        [ $i -ge 200 ] && return 1
        kill -0 "$S3_PID" 2>/dev/null || return 1
        sleep 0.05; i=$((i + 1))
    done
}
s3_stop() { kill -TERM "$S3_PID" 2>/dev/null; wait "$S3_PID" 2>/dev/null; }

# conf FILE [recording keys...]: sim providers, recording into rec_s3.
conf() {
    local f=$1; shift
    base_conf "$f" "$(printf '%s\n' \
        '[plugin.sim]' 'plugin = sim' 'latency = 20ms' \
        '[stt]' 'providers = sim' '[llm]' 'providers = sim' '[tts]' 'providers = sim' \
        '[recording]' 'enabled = true' 'sink = s3' "spool_dir = $SPOOL" "dead_letter_dir = $DEAD" \
        'retry_backoff = 100ms' "$@" \
        '[plugin.s3]' 'plugin = rec_s3' "endpoint = http://127.0.0.1:$S3_PORT" 'bucket = recordings' \
        'prefix = calls' 'path_style = true' "access_key_id = $KEY" 'connect_timeout = 1s' 'timeout = 10s')"
}
start() {
    VX_PORT=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$1")
    local f=$1 log=$2; shift 2
    start_voxray "$f" "$log" "$@" && wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
}
call() { # call LOG: one recorded session; prints its id
    sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
    "$CLIENT" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -s 0 "$WORK/turn.wav" >/dev/null 2>"$1"
    sed -n 's/.*session \(sess_[A-Za-z0-9]*\).*/\1/p' "$1" | head -1
}
object() { find "$S3DIR/recordings/calls" -name "$1._S3rver_object" 2>/dev/null | head -1; }
wait_for() { local i=0; while ! "$@" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done; "$@"; }
has_object() { [ -n "$(object "$1.wav")" ] && [ -n "$(object "$1.json")" ]; }
is_dead() { [ -s "$DEAD/$1.wav" ] && [ -s "$DEAD/$1.json" ]; }
metric() { curl -s "http://127.0.0.1:$VX_PORT/metrics" | metric_value "$1"; }
same() { [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]; }

out=$("$VOXRAY" --list-plugins --plugin-dir "$PLUGIN_DIR")
check "--list-plugins shows the S3 sink" grep -Eq '^rec_s3 +sink ' <<<"$out"
check "--list-plugins shows the file sink" grep -Eq '^rec_file +sink ' <<<"$out"

check "the S3 server starts" s3_start

# ---------------------------------------------------------------- happy path
conf "$WORK/ok.ini"
start "$WORK/ok.ini" "$WORK/ok.log" VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$SECRET" ||
    not_ok "voxray starts" "$(cat "$WORK/ok.log")"
id=$(call "$WORK/c1.err")
check "a recorded call arrives in the bucket under prefix/YYYY/MM/DD/" wait_for has_object "$id"
wav=$(object "$id.wav")
check "... as a WAV the sidecar describes (size, session)" \
    bash -c "[ \"\$(jq -r .audio.bytes '$(object "$id.json")')\" = \"\$(stat -c %s '$wav')\" ] && \
             [ \"\$(jq -r .session_id '$(object "$id.json")')\" = '$id' ]"
check "... filed by the UTC date of the call" \
    bash -c "[[ '$wav' == */recordings/calls/$(date -u +%Y/%m/%d)/$id.wav._S3rver_object ]]"
check "the uploads were signed and accepted (2 PUTs, 200)" \
    bash -c "[ \$(grep -c \"^PUT /recordings/calls/.*/$id\\.\\(wav\\|json\\) 200\$\" '$WORK/s3.requests') -eq 2 ]"
check "voxray_plugin_calls_total counts the S3 uploads" \
    [ "$(metric 'voxray_plugin_calls_total{kind="sink",plugin="s3",provider="s3",op="upload",status="ok"}')" = 2 ]
stop_pid "$VX_PID"

# ---------------------------------------------------------------- the example
# conf/examples/recording-s3.ini as shipped, pointed at the local server
# from the environment only.
VX_PORT=$(free_port)
start_voxray "$top_srcdir/conf/examples/recording-s3.ini" "$WORK/ex.log" \
    VOXRAY_SERVER_LISTEN="127.0.0.1:$VX_PORT" VOXRAY_SERVER_PLUGIN_DIR="$PLUGIN_DIR" \
    VOXRAY_RECORDING_SPOOL_DIR="$WORK/ex-spool" VOXRAY_RECORDING_DEAD_LETTER_DIR="$WORK/ex-dead" \
    VOXRAY_PLUGIN_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" VOXRAY_PLUGIN_S3_PATH_STYLE=true \
    VOXRAY_PLUGIN_S3_REGION=us-east-1 \
    VOXRAY_PLUGIN_S3_ACCESS_KEY_ID="$KEY" VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$SECRET" &&
    wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10 || not_ok "the example starts" "$(cat "$WORK/ex.log")"
idx=$(call "$WORK/cx.err")
has_example() { [ -n "$(find "$S3DIR/voxray-recordings/calls" -name "$idx.json._S3rver_object" 2>/dev/null)" ]; }
check "conf/examples/recording-s3.ini works: the call lands in s3://voxray-recordings/calls/" wait_for has_example
stop_pid "$VX_PID"

# ---------------------------------------------------------------- wrong secret
conf "$WORK/wrong.ini" 'max_retries = 3'
start "$WORK/wrong.ini" "$WORK/wrong.log" VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$WRONG" ||
    not_ok "voxray starts" "$(cat "$WORK/wrong.log")"
id2=$(call "$WORK/c2.err")
check "a wrong secret dead-letters the recording" wait_for is_dead "$id2"
check "... at once: one refused attempt, no retry" \
    [ "$(metric 'voxray_plugin_calls_total{kind="sink",plugin="s3",provider="s3",op="upload",status="auth"}')" = 1 ]
check "... counted as a failed job" [ "$(metric 'recording_jobs_failed_total')" = 1 ]
check "... with the S3 error in its .error file" grep -q 'reason: not_retryable' "$DEAD/$id2.error"
check "... naming SignatureDoesNotMatch" grep -q 'SignatureDoesNotMatch' "$DEAD/$id2.error"
check "/ready stays 200 while recordings fail" [ "$(http_code "http://127.0.0.1:$VX_PORT/ready")" = 200 ]
# The health thread reads the sink's status every health_interval: wait for
# the round after the failure rather than racing it.
sink_failing() {
    curl -s "http://127.0.0.1:$VX_PORT/v1/health" |
        quiet jq -e '.services.recording == "unavailable" and .providers.recording[0].dead_letter_jobs == 1'
}
check "/v1/health shows the sink failing and the dead letter" wait_for sink_failing
stop_pid "$VX_PID"
check "the secret appears in no log" bash -c "! grep -q -e '$WRONG' -e '$SECRET' '$WORK/wrong.log' '$WORK/ok.log' '$DEAD/$id2.error'"
cp "$DEAD/$id2.wav" "$WORK/dl2.wav"
cp "$DEAD/$id2.json" "$WORK/dl2.json"
VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$WRONG" "$VOXRAY" --replay-recordings -c "$WORK/wrong.ini" >"$WORK/r1.out" 2>&1
rc=$?
check "--replay-recordings with the wrong secret still fails (exit 1) and keeps the files" \
    bash -c "[ $rc -eq 1 ] && [ -s '$DEAD/$id2.wav' ] && [ -s '$DEAD/$id2.json' ]"
VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$SECRET" "$VOXRAY" --replay-recordings -c "$WORK/wrong.ini" >"$WORK/r2.out" 2>&1
rc=$?
check "--replay-recordings with the secret fixed uploads it (exit 0)" [ "$rc" -eq 0 ]
check "... the WAV object is byte-identical to the dead letter" same "$WORK/dl2.wav" "$(object "$id2.wav")"
check "... and the sidecar too" same "$WORK/dl2.json" "$(object "$id2.json")"
check "... and the dead-letter folder is empty" bash -c "[ -z \"\$(ls -A '$DEAD')\" ]"

# ---------------------------------------------------------------- server down
s3_stop
# The default replay_interval (5m): no re-submission of the dead letter can
# add attempts while they are counted here.
conf "$WORK/down.ini" 'max_retries = 2'
start "$WORK/down.ini" "$WORK/down.log" VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$SECRET" ||
    not_ok "voxray starts" "$(cat "$WORK/down.log")"
id3=$(call "$WORK/c3.err")
check "with S3 down the upload is retried, then dead-lettered" wait_for is_dead "$id3"
# replay_interval may already have sent the dead letter round again (S3 is
# still down): every round is max_retries + 1 attempts and one dead letter.
# One snapshot; a round may be under way.
snap=$(curl -s "http://127.0.0.1:$VX_PORT/metrics")
rounds=$(metric_value 'voxray_recording_dead_letter_total{reason="retries_exhausted"}' <<<"$snap")
attempts=$(metric_value 'voxray_plugin_calls_total{kind="sink",plugin="s3",provider="s3",op="upload",status="unavailable"}' <<<"$snap")
retries=$(metric_value 'voxray_recording_upload_retries_total' <<<"$snap")
rounds=${rounds:-0}
check "... dead-lettered as retries_exhausted" [ "$rounds" -ge 1 ]
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
check "... after max_retries + 1 attempts a round" in_range "${attempts:-0}" $((3 * rounds)) $((3 * rounds + 2))
check "... counted as retries" in_range "${retries:-0}" $((2 * rounds)) $((2 * rounds + 2))
check "/ready stays 200 with S3 down" [ "$(http_code "http://127.0.0.1:$VX_PORT/ready")" = 200 ]
cp "$DEAD/$id3.wav" "$WORK/dl3.wav"
stop_pid "$VX_PID"
# A voxray started while S3 is still down re-submits the dead letter at
# start (in vain: it stays), then every replay_interval.
conf "$WORK/replay.ini" 'max_retries = 2' 'replay_interval = 1s'
start "$WORK/replay.ini" "$WORK/replay.log" VOXRAY_PLUGIN_S3_SECRET_ACCESS_KEY="$SECRET" ||
    not_ok "voxray starts" "$(cat "$WORK/replay.log")"
check "the S3 server comes back" s3_start
check "the dead letter is replayed by the running voxray once S3 is back" wait_for has_object "$id3"
check "... byte-identical" same "$WORK/dl3.wav" "$(object "$id3.wav")"
check "... and leaves the dead-letter folder" wait_for bash -c "[ -z \"\$(ls -A '$DEAD')\" ]"
check "... and the dead-letter gauge returns to 0" [ "$(metric 'voxray_recording_dead_letter_jobs')" = 0 ]
stop_pid "$VX_PID"
check "voxray exits 0" [ $? -eq 0 ]
s3_stop
done_testing
