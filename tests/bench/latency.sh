#!/bin/bash
# Benchmark (prints figures, never fails on time): end of user speech -> first
# reply audio on the offline default (pocketsphinx -> ELIZA -> flite, the
# shipped conf/voxray.ini), over N turns streamed in real time by
# voxray-client; then tests/bench/turns.mjs: whole sentences and sentences
# with a pause in the middle ("i would like to ... order a pizza"), for the
# false cut-off rate, speculative turns used/discarded, and the stages' share.
#   tests/bench/latency.sh [BUILD_DIR] [TURNS]
# Environment overrides apply to both (VOXRAY_TURN_DETECTION=server_vad
# VOXRAY_TURN_SPECULATIVE=false measures the turn-taking of before [turn]);
# TURNS_ROUNDS (default 2) repeats the turns.mjs corpus.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
turns=${2:-20}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$("$top_builddir/tests/tools/freeport")
VOXRAY_SERVER_LISTEN="127.0.0.1:$port" VOXRAY_SERVER_PLUGIN_DIR="$top_builddir/plugins/.built" \
    VOXRAY_LOG_LEVEL=warn "$top_builddir/voxray" -c "$top_srcdir/conf/voxray.ini" >"$work/v.log" 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
sentences=("hello how are you" "please tell me a story" "my mother does not understand me"
           "i would like a cup of coffee" "what time is it")
files=()
for i in $(seq 0 $((turns - 1))); do
    s=${sentences[$((i % ${#sentences[@]}))]}
    flite -voice slt -t "$s" -o "$work/t$i.wav"
    files+=("$work/t$i.wav")
done
"$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" --json "${files[@]}" >"$work/out.json" 2>/dev/null
echo "== voxray-client: turns: $(jq -s length "$work/out.json"), each reply played in full"
for field in ttfa_ms stop_to_audio_ms; do
    jq -s -r --arg f "$field" '[.[] | .[$f] | select(. != null)] | sort |
        "\($f): median \(.[(length / 2 | floor)]) ms, p95 \(.[((length * 0.95) | ceil) - 1]) ms, min \(.[0]) ms, max \(.[-1]) ms"' "$work/out.json"
done
curl -s "http://127.0.0.1:$port/metrics" | grep '^voxray_speculative_turns_total'
kill $pid; wait $pid 2>/dev/null
echo "== tests/bench/turns.mjs: whole sentences and paused ones"
export top_srcdir top_builddir
node "$top_srcdir/tests/bench/turns.mjs"
