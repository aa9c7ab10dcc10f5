#!/bin/bash
# WebRTC figures (printed, never asserted), on the offline default
# (conf/voxray.ini: pocketsphinx, ELIZA, flite) with aiortc as the client:
#  - time from the offer (POST /v1/realtime/calls) to ICE connected;
#  - end of speech (input_audio_buffer.speech_stopped) to the first reply
#    audio, over WebRTC (the first sound on the remote track: a sample
#    above 1000, flite starts its reply with ~240 ms below that; and the
#    output_audio_buffer.started event) and over the WebSocket
#    (voxray-client's stop_to_audio_ms: the first response.output_audio.delta),
#    with the same WAV in the same run;
#  - CPU per WebRTC call: utime+stime of the voxray process over a window
#    with CALLS concurrent talking calls, minus the same window idle; and
#    the same for CALLS WebSocket sessions streaming the same WAV (the
#    difference is what the WebRTC transport costs: Opus, SRTP, ICE, SCTP).
#   tests/bench/webrtc.sh [BUILD_DIR] [TURNS] [CALLS] [SECONDS]
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
turns=${2:-5}
calls=${3:-4}
secs=${4:-20}
PY=/usr/bin/python3
CLIENT_PY="$top_srcdir/tests/integration/webrtc_aiortc.py"
"$PY" -c 'import aiortc' 2>/dev/null || { echo "skipped: aiortc is not importable by $PY (python3-aiortc)"; exit 0; }
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$("$top_builddir/tests/tools/freeport")
export VOXRAY_SERVER_LISTEN="127.0.0.1:$port" VOXRAY_SERVER_PLUGIN_DIR="$top_builddir/plugins/.built"
bench_start_voxray "$top_srcdir/conf/voxray.ini" "$port"
base="http://127.0.0.1:$port"

flite -voice slt -t "hello how are you" -o "$work/raw.wav"
sox "$work/raw.wav" "$work/said.wav" pad 1.5 2
n=0
for t in "please tell me a story" "my mother does not understand me" "i would like a cup of coffee"; do
    n=$((n + 1))
    flite -voice slt -t "$t" -o "$work/l$n.wav"
    sox "$work/l$n.wav" "$work/lp$n.wav" pad 1.5 3
done
sox "$work/lp1.wav" "$work/lp2.wav" "$work/lp3.wav" "$work/long.wav"

stats() { sort -n | awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "median %d ms, min %d, max %d, mean %.0f (n=%d)\n", v[int((NR + 1) / 2)], v[1], v[NR], s / NR, NR; else print "no data" }'; }

echo "-- $turns WebRTC calls, one turn each (aiortc, $(basename "$work")/said.wav)"
for i in $(seq 1 "$turns"); do
    "$PY" "$CLIENT_PY" "$base" "$work/said.wav" 30 >>"$work/rtc.jsonl" 2>>"$work/rtc.err"
done
printf 'offer -> ICE connected:                        '; jq -r '.offer_to_connected_ms // empty' "$work/rtc.jsonl" | stats
printf 'end of speech -> first sound on the track:      '; jq -r '.speech_end_to_track_audio_ms // empty' "$work/rtc.jsonl" | stats
printf 'end of speech -> output_audio_buffer.started:  '; jq -r '.speech_end_to_audio_ms // empty' "$work/rtc.jsonl" | stats
echo "transcripts: $(jq -r '.transcripts[0]' "$work/rtc.jsonl" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"

echo "-- the same WAV over the WebSocket, $turns turns (voxray-client)"
files=()
for i in $(seq 1 "$turns"); do files+=("$work/said.wav"); done
"$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" --json "${files[@]}" >"$work/ws.jsonl" 2>"$work/ws.err"
printf 'end of speech -> first audio delta:            '; jq -r '.stop_to_audio_ms // empty' "$work/ws.jsonl" | stats

# The recognizer's decoders adapt their cepstral mean to the voice over the
# first turns they hear (pocketsphinx decodes an utterance again when the
# mean moves); warm CALLS decoders on the same WAV first, so that neither
# transport's window pays for it.
echo "-- warming $calls speech decoders ($calls concurrent WebSocket sessions, long.wav)"
cpids=
for i in $(seq 1 "$calls"); do
    "$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" --json "$work/long.wav" \
        >/dev/null 2>"$work/warm$i.err" &
    cpids="$cpids $!"
done
wait $cpids
cpids=

# CPU: the voxray process's utime + stime (clock ticks) over a window.
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
sleep 2
a=$(ticks); sleep "$secs"; b=$(ticks)
idle=$(((b - a)))
echo "-- CPU: $calls concurrent WebRTC calls talking for ${secs} s ($(basename "$work")/long.wav: three turns)"
for i in $(seq 1 "$calls"); do
    "$PY" "$CLIENT_PY" "$base" "$work/long.wav" 1 "$((secs + 6))" >"$work/cpu$i.json" 2>"$work/cpu$i.err" &
    cpids="${cpids:-} $!"
done
sleep 4
a=$(ticks); sleep "$secs"; b=$(ticks)
busy=$((b - a))
wait $cpids

echo "-- CPU: $calls concurrent WebSocket sessions streaming the same WAV for ${secs} s (voxray-client)"
cpids=
for i in $(seq 1 "$calls"); do
    "$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" --json "$work/long.wav" \
        >"$work/wscpu$i.json" 2>"$work/wscpu$i.err" &
    cpids="$cpids $!"
done
sleep 4
a=$(ticks); sleep "$secs"; b=$(ticks)
wsbusy=$((b - a))
wait $cpids
awk -v busy="$busy" -v ws="$wsbusy" -v idle="$idle" -v hz="$hz" -v s="$secs" -v n="$calls" 'BEGIN {
    printf "voxray CPU idle: %.1f %% of a core\n", 100 * idle / hz / s
    printf "%d WebRTC calls: %.1f %% of a core, %.1f %% per call\n", n, 100 * busy / hz / s, 100 * (busy - idle) / hz / s / n
    printf "%d WebSocket sessions: %.1f %% of a core, %.1f %% per session\n", n, 100 * ws / hz / s, 100 * (ws - idle) / hz / s / n
    printf "the WebRTC transport per call: %.1f %% of a core\n", 100 * (busy - ws) / hz / s / n }'
echo "calls that heard their first sentence: $(cat "$work"/cpu*.json | jq -r '.transcripts | length > 0' | grep -c true) of $calls"
m=$(curl -s "$base/metrics")
echo "webrtc_connection_failures_total: $(awk '/^webrtc_connection_failures_total\{/ { s += $2 } END { print s + 0 }' <<<"$m")," \
    "connected $(awk '$1 == "webrtc_peer_connections_total{state=\"connected\"}" { print $2 }' <<<"$m")"
