#!/bin/bash
# Load benchmark (prints figures, never fails on time): N concurrent
# voxray-client sessions of T spoken turns each against simulated providers
# that fail 10% of the time (fallback to a second provider).
#   tests/bench/load.sh [BUILD_DIR] [SESSIONS] [TURNS]
# RECORD=1 records every session (rec_file into a temporary folder) and
# reports what the recordings cost: server CPU, bytes written, uploads.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
sessions=${2:-50}
turns=${3:-3}
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$("$top_builddir/tests/tools/freeport")
cat >"$work/load.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
[log]
level = warn
$(bench_flaky_providers)
[recording]
enabled = $([ "${RECORD:-0}" = 1 ] && echo true || echo false)
spool_dir = $work/spool
dead_letter_dir = $work/dead
[plugin.file]
plugin = rec_file
dir = $work/recordings
INI
mkdir -p "$work/recordings"
bench_start_voxray "$work/load.ini" "$port"
sox -n -r 16000 -c 1 -b 16 -e signed-integer "$work/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
files=()
for t in $(seq 1 "$turns"); do files+=("$work/turn.wav"); done
start=$(date +%s.%N)
for i in $(seq 1 "$sessions"); do
    "$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" -s 2 --json "${files[@]}" \
        >"$work/c$i.json" 2>/dev/null &
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
end=$(date +%s.%N)
echo "sessions: $sessions x $turns turns, audio at 2x real time, wall $(echo "$end - $start" | bc) s"
cat "$work"/c*.json | jq -s -r 'group_by(.status) | map("\(.[0].status): \(length)") | join(", ")'
cat "$work"/c*.json | jq -s -r '[.[].stop_to_audio_ms | select(. != null)] | sort |
    "speech_stopped -> first audio: median \(.[length / 2 | floor]) ms, p95 \(.[(length * 0.95 | ceil) - 1]) ms"'
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^(stt|llm|tts)_fallback_total|^voxray_sessions_total|^voxray_active_sessions'
if [ "${RECORD:-0}" = 1 ]; then
    for i in $(seq 1 100); do
        curl -s "http://127.0.0.1:$port/metrics" | grep -q "^recording_jobs_success_total $sessions$" && break
        sleep 0.1
    done
    curl -s "http://127.0.0.1:$port/metrics" | grep -E '^recording_|^voxray_recording_capture'
    echo "recordings: $(find "$work/recordings" -name '*.wav' | wc -l) WAVs, $(du -sk "$work/recordings" | cut -f1) KiB"
fi
ticks=$(getconf CLK_TCK)
read -r ut st < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
echo "server CPU: $(echo "scale=2; ($ut + $st) / $ticks" | bc) s (recording: ${RECORD:-0})"
