#!/bin/bash
# Recordings across process life: SIGTERM under live sessions (every
# recording ends up in the sink or the dead-letter folder, intact), a hung
# sink at shutdown, voxray --replay-recordings, replay at start, a crash
# mid-call (salvaged), a full disk (counted, never a crash) and the
# [recording] configuration checks. The sink is the test plugin
# sink_faulty: successful uploads are copies under its dir.
. "$top_srcdir/tests/integration/lib.sh"

CLIENT="$top_builddir/tools/voxray-client"
SPOOL="$WORK/spool" DEAD="$WORK/dead" SINK="$WORK/sink"
mkdir -p "$SINK"

# conf FILE [sink keys...] -- [recording keys...]
conf() {
    local f=$1; shift
    local sink="" rec=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do sink="$sink$1"$'\n'; shift; done
    [ $# -gt 0 ] && shift
    while [ $# -gt 0 ]; do rec="$rec$1"$'\n'; shift; done
    base_conf "$f" "$(cat <<INI
plugin_dir = $PLUGIN_DIR:$TEST_PLUGIN_DIR
drain_timeout = 1s
[plugin.sim]
plugin = sim
latency = 30ms
ms_per_char = 20
[stt]
providers = sim
[llm]
providers = sim
[tts]
providers = sim
[recording]
enabled = true
sink = faulty
spool_dir = $SPOOL
dead_letter_dir = $DEAD
retry_backoff = 50ms
$rec
[plugin.faulty]
plugin = sink_faulty
dir = $SINK
$sink
INI
)"
    # base_conf wrote [server] first; plugin_dir above overrides its default.
    sed -i "0,/^plugin_dir = /{/^plugin_dir = .*\.built$/d}" "$f"
}

sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
URL() { echo "ws://127.0.0.1:$VX_PORT/v1/realtime"; }
# start CONF LOG: start_voxray on the port written in CONF.
start() {
    VX_PORT=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$1")
    start_voxray "$1" "$2" && wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
}
# count WORDS: how many ids were given.
count() { echo $#; }

# Session ids voxray-client printed on stderr.
ids_of() { sed -n 's/.*session \(sess_[A-Za-z0-9]*\).*/\1/p' "$@" | sort -u; }
# A complete job: <dir>/<id>.wav and .json, the sidecar's byte count and
# session id matching.
job_ok() {
    local wav=$1 json=${1%.wav}.json id=$2
    [ -s "$wav" ] && [ -s "$json" ] || return 1
    [ "$(jq -r .audio.bytes "$json")" = "$(stat -c %s "$wav")" ] || return 1
    [ "$(jq -r .session_id "$json")" = "$id" ] || return 1
    [ "$(soxi -c "$wav" 2>/dev/null)" = 2 ]
}
in_sink() { local f; f=$(find "$SINK" -name "$1.wav" | head -1); [ -n "$f" ] && job_ok "$f" "$1"; }
in_dead() { job_ok "$DEAD/$1.wav" "$1"; }

# ---------------------------------------------------------------- config
conf "$WORK/bad.ini" -- "queue_size = 0"
out=$("$VOXRAY" --check-config -c "$WORK/bad.ini" 2>&1)
check "a bad [recording] value is refused naming the key and what is allowed" \
    grep -q 'queue_size = "0": .*allowed: integer 1\.\.' <<<"$out"
conf "$WORK/same.ini" -- "dead_letter_dir = $SPOOL"
sed -i "0,/^dead_letter_dir = .*dead$/{//d}" "$WORK/same.ini"
out=$("$VOXRAY" --check-config -c "$WORK/same.ini" 2>&1)
check "spool_dir and dead_letter_dir must differ" grep -q 'spool_dir and dead_letter_dir are the same folder' <<<"$out"
conf "$WORK/ok.ini"
out=$("$VOXRAY" --check-config -c "$WORK/ok.ini" 2>&1)
check "--check-config names the recording sink" grep -q 'recording=faulty' <<<"$out"
touch "$WORK/notadir"
conf "$WORK/nodir.ini" -- "spool_dir = $WORK/notadir/spool"
sed -i "0,/^spool_dir = .*spool$/{//d}" "$WORK/nodir.ini"
"$VOXRAY" -c "$WORK/nodir.ini" >"$WORK/nodir.log" 2>&1
rc=$?
check "a spool folder that cannot be created stops start-up with a clear error" \
    bash -c "[ $rc -ne 0 ] && grep -q 'spool_dir: cannot create or write $WORK/notadir/spool' '$WORK/nodir.log'"

# ---------------------------------------------------------------- SIGTERM
# Three sessions talking when SIGTERM arrives; drain_timeout cuts them; a
# slow sink (400 ms per upload) still gets every job within the deadline.
conf "$WORK/term.ini" "delay = 400ms" -- "shutdown_upload_timeout = 20s"
start "$WORK/term.ini" "$WORK/term.log" || not_ok "voxray starts" "$(cat "$WORK/term.log")"
for i in 1 2 3; do
    "$CLIENT" -u "$(URL)" "$WORK/turn.wav" "$WORK/turn.wav" "$WORK/turn.wav" "$WORK/turn.wav" \
        >/dev/null 2>"$WORK/term-c$i.err" &
    track $!
done
sleep 2.5
stop_pid "$VX_PID"
rc=$?
check "SIGTERM under live sessions exits 0" [ "$rc" -eq 0 ]
ids=$(ids_of "$WORK"/term-c*.err)
check "three sessions were live" [ "$(count $ids)" -eq 3 ]
all=1
for id in $ids; do in_sink "$id" || all=0; done
check "every session cut by the drain was recorded and uploaded before exit" [ $all -eq 1 ]
check "the drained sessions' sidecars say server_shutdown" \
    bash -c "for id in $(echo $ids); do jq -e '.end_reason == \"server_shutdown\"' \$(find '$SINK' -name \$id.json) >/dev/null || exit 1; done"
check "nothing is left in the spool" bash -c "[ -z \"\$(find '$SPOOL' -type f)\" ]"

# ---------------------------------------------------------------- hung sink
# The sink hangs (30 s per upload) and shutdown_upload_timeout is 1 s: the
# jobs go to the dead-letter folder and voxray still exits 0, promptly.
rm -rf "$SINK"/*
conf "$WORK/hang.ini" "delay = 30s" -- "shutdown_upload_timeout = 1s"
start "$WORK/hang.ini" "$WORK/hang.log" || not_ok "voxray starts" "$(cat "$WORK/hang.log")"
for i in 1 2; do
    "$CLIENT" -u "$(URL)" -s 0 "$WORK/turn.wav" >/dev/null 2>"$WORK/hang-c$i.err"
done
t0=$(date +%s)
stop_pid "$VX_PID"
rc=$?
t1=$(date +%s)
check "SIGTERM with a hung sink exits 0" [ "$rc" -eq 0 ]
check "... within the upload deadline plus a grace (< 8 s)" [ $((t1 - t0)) -lt 8 ]
hang_ids=$(ids_of "$WORK"/hang-c*.err)
check "two sessions ran" [ "$(count $hang_ids)" -eq 2 ]
all=1
for id in $hang_ids; do in_dead "$id" || all=0; done
check "both recordings wait intact in the dead-letter folder" [ $all -eq 1 ]
check "... each with an .error naming the reason" \
    bash -c "for id in $(echo $hang_ids); do grep -q 'reason: shutdown' '$DEAD/'\$id.error || exit 1; done"
check "the log says why they were dead-lettered" grep -q 'recording dead-lettered .*reason=shutdown' "$WORK/hang.log"
sums=$(cd "$DEAD" && sha256sum *.wav *.json)

# ---------------------------------------------------------------- replay CLI
conf "$WORK/fail.ini" "fail_all = true" "error = auth"
"$VOXRAY" --replay-recordings -c "$WORK/fail.ini" >"$WORK/replay1.out" 2>&1
rc=$?
check "--replay-recordings with a sink that still refuses exits 1" [ "$rc" -eq 1 ]
check "... and says what is still dead-lettered" grep -q '0 uploaded, 2 still dead-lettered' "$WORK/replay1.out"
check "... and the files stay" bash -c "[ \$(ls '$DEAD'/*.wav | wc -l) -eq 2 ]"
conf "$WORK/fixed.ini"
"$VOXRAY" --replay-recordings -c "$WORK/fixed.ini" >"$WORK/replay2.out" 2>&1
rc=$?
check "--replay-recordings with a working sink exits 0" [ "$rc" -eq 0 ] 
check "... one line per job" bash -c "[ \$(grep -c ' uploaded$' '$WORK/replay2.out') -eq 2 ]"
check "... the dead-letter folder is empty afterwards" bash -c "[ -z \"\$(ls -A '$DEAD')\" ]"
all=1
for id in $hang_ids; do in_sink "$id" || all=0; done
check "... and the recordings are in the sink" [ $all -eq 1 ]
check "... byte-identical to the dead letters" bash -c "cd '$SINK' && diff <(echo '$sums' | awk '{print \$1}' | sort) \
    <(find . -name '*.wav' -o -name '*.json' | xargs sha256sum | awk '{print \$1}' | sort)"

# ---------------------------------------------------------------- replay at start
rm -rf "$SINK"/*
conf "$WORK/dl.ini" "fail_all = true" "error = auth"
start "$WORK/dl.ini" "$WORK/dl.log" || not_ok "voxray starts" "$(cat "$WORK/dl.log")"
"$CLIENT" -u "$(URL)" -s 0 "$WORK/turn.wav" >/dev/null 2>"$WORK/dl-c.err"
dl_id=$(ids_of "$WORK/dl-c.err")
check "the refused session is known" [ "$(count $dl_id)" -eq 1 ]
i=0; while ! in_dead "$dl_id" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "a refused upload is dead-lettered" in_dead "$dl_id"
stop_pid "$VX_PID"
start "$WORK/fixed.ini" "$WORK/fixed.log" || not_ok "voxray starts" "$(cat "$WORK/fixed.log")"
i=0; while ! in_sink "$dl_id" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "dead letters are re-submitted at start" in_sink "$dl_id"
check "... and leave the folder once uploaded" bash -c "[ -z \"\$(ls -A '$DEAD')\" ]"
stop_pid "$VX_PID"

# ---------------------------------------------------------------- two processes
# The daemon (slow sink) is uploading two dead letters when an operator
# runs --replay-recordings: the CLI leaves them alone, nothing is uploaded
# twice or lost.
rm -rf "$SINK"/*
start "$WORK/dl.ini" "$WORK/dl3.log" || not_ok "voxray starts" "$(cat "$WORK/dl3.log")"
"$CLIENT" -u "$(URL)" -s 0 "$WORK/turn.wav" >/dev/null 2>"$WORK/two-c1.err"
"$CLIENT" -u "$(URL)" -s 0 "$WORK/turn.wav" >/dev/null 2>"$WORK/two-c2.err"
two_ids=$(ids_of "$WORK"/two-c*.err)
i=0; while [ "$(ls "$DEAD"/*.wav 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
stop_pid "$VX_PID"
check "two recordings are dead-lettered" [ "$(ls "$DEAD"/*.wav 2>/dev/null | wc -l)" -eq 2 ]
conf "$WORK/slow.ini" "delay = 3s"
start "$WORK/slow.ini" "$WORK/slow.log" || not_ok "voxray starts" "$(cat "$WORK/slow.log")"
sleep 1
"$VOXRAY" --replay-recordings -c "$WORK/fixed.ini" >"$WORK/replay3.out" 2>&1
rc=$?
check "--replay-recordings skips the jobs a running voxray is uploading" \
    bash -c "[ $rc -eq 1 ] && [ \$(grep -c 'skipped (another voxray process is uploading it now)' '$WORK/replay3.out') -eq 2 ]"
all=1
for id in $two_ids; do
    i=0; while ! in_sink "$id" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    in_sink "$id" || all=0
done
check "... and the daemon's uploads complete" [ $all -eq 1 ]
check "... once each" bash -c "[ \$(find '$SINK' -name '*.wav' | wc -l) -eq 2 ]"
i=0; while [ -n "$(ls -A "$DEAD")" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "... and the dead-letter folder empties" bash -c "[ -z \"\$(ls -A '$DEAD')\" ]"
stop_pid "$VX_PID"

# ---------------------------------------------------------------- crash
# kill -9 in the middle of a call: the raw audio on disk is salvaged into a
# recording marked incomplete at the next start, and uploaded.
rm -rf "$SINK"/*
start "$WORK/fixed.ini" "$WORK/crash.log" || not_ok "voxray starts" "$(cat "$WORK/crash.log")"
"$CLIENT" -u "$(URL)" "$WORK/turn.wav" "$WORK/turn.wav" "$WORK/turn.wav" >/dev/null 2>"$WORK/crash-c.err" &
cpid=$!
track $cpid
sleep 2
kill -9 "$VX_PID"
wait "$VX_PID" 2>/dev/null
wait $cpid 2>/dev/null
crash_id=$(ids_of "$WORK/crash-c.err")
check "the crashed session is known" [ "$(count $crash_id)" -eq 1 ]
check "the crashed call left its raw audio in the spool" test -s "$SPOOL/live/$crash_id/user.raw"
start "$WORK/fixed.ini" "$WORK/crash2.log" || not_ok "voxray starts" "$(cat "$WORK/crash2.log")"
i=0; while ! in_sink "$crash_id" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "the interrupted call is salvaged and uploaded at the next start" in_sink "$crash_id"
j=$(find "$SINK" -name "$crash_id.json")
check "... marked incomplete and recovered" quiet jq -e '.complete == false and .recovered == true' "$j"
w=$(find "$SINK" -name "$crash_id.wav")
secs=$(soxi -D "$w" 2>/dev/null || echo 0)
check "... with the audio heard before the crash (>= 1 s)" awk -v s="$secs" 'BEGIN { exit !(s >= 1) }'
check "... and the live folder is gone" test ! -e "$SPOOL/live/$crash_id"
stop_pid "$VX_PID"

# ---------------------------------------------------------------- full disk
# A file size limit of 48 KiB makes every recording write past it fail
# (EFBIG, as a full disk would): counted and logged, the call goes on.
rm -rf "$SINK"/*
conf "$WORK/full.ini"
VX_PORT=$(sed -n 's/^listen = 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/full.ini")
prlimit --fsize=49152 "$VOXRAY" -c "$WORK/full.ini" >"$WORK/full.log" 2>&1 &
VX_PID=$!
track $VX_PID
wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
"$CLIENT" -u "$(URL)" --json "$WORK/turn.wav" "$WORK/turn.wav" >"$WORK/full.json" 2>"$WORK/full-c.err"
rc=$?
check "with the disk full the call still completes" bash -c "[ $rc -eq 0 ] && jq -e -s 'length == 2 and all(.status == \"completed\")' '$WORK/full.json' >/dev/null"
m=$(curl -s "http://127.0.0.1:$VX_PORT/metrics")
check "the write failure is counted" awk '$1 == "voxray_recording_capture_errors_total{reason=\"disk_full\"}" && $2 >= 1 { f = 1 } END { exit !f }' <<<"$m"
check "... and logged" grep -q 'recording capture failed.*File too large' "$WORK/full.log"
check "voxray keeps serving" [ "$(http_code "http://127.0.0.1:$VX_PORT/health")" = 200 ]
stop_pid "$VX_PID"
rc=$?
check "... and exits 0 on SIGTERM" [ "$rc" -eq 0 ]
full_id=$(ids_of "$WORK/full-c.err")
check "the full-disk session is known" [ "$(count $full_id)" -eq 1 ]
# What reached the disk is not lost: the next start (without the limit)
# salvages it.
start "$WORK/fixed.ini" "$WORK/full2.log" || not_ok "voxray starts" "$(cat "$WORK/full2.log")"
i=0; while ! in_sink "$full_id" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "the audio written before the disk filled is salvaged at the next start" in_sink "$full_id"
stop_pid "$VX_PID"

done_testing
