#!/bin/bash
# Capacity ladder (prints figures, never fails on time): for each step, a
# fresh voxray with simulated providers of known, fixed latency (STT 50 ms,
# LLM 150 ms to its whole answer, TTS 40 ms), and voxray-loadtest driving
# that many concurrent sessions of real-time speech, TURNS turns each, from
# the same machine. Per step: success fraction, host-added latency
# (speech_stopped -> first reply audio, minus the 240 ms the providers take)
# p50 and p99, the server's CPU, RSS and threads, and the load generator's
# own CPU (when it nears a core, the figures measure it, not the server).
#   tests/bench/capacity.sh [BUILD_DIR] [TURNS] [STEP...]
# Steps default to 250 500 1000 2000 4000; the ladder stops after the first
# step with failed turns. CAPACITY_RAMP (sessions started per second,
# default 250) and CAPACITY_P99_MS (the host-added p99 a step must keep to
# count, default 5) tune it. The capacity is the largest step with every
# turn ok and host-added p99 <= CAPACITY_P99_MS.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
turns=${2:-3}
shift 2 2>/dev/null || shift $#
steps=${*:-250 500 1000 2000 4000}
ramp=${CAPACITY_RAMP:-250}
p99_max=${CAPACITY_P99_MS:-5}
work=$(mktemp -d)
pid=
. "$top_srcdir/tests/bench/lib.sh"
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null

stt_ms=50 llm_ms=150 tts_ms=40
provider_ms=$((stt_ms + llm_ms + tts_ms))
printf '%-8s %8s %10s %10s %10s %9s %9s %8s %10s\n' sessions ok% added_p50 added_p99 e2e_p50 cpu% rss_MiB threads loadgen%
capacity=0
for n in $steps; do
    port=$("$top_builddir/tests/tools/freeport")
    cat >"$work/cap.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
max_sessions = $((n + 100))
max_sessions_per_ip = 0
max_upgrades_per_second_per_ip = 0
max_pending = 8192
max_pending_per_ip = 8192
[log]
level = warn
[plugin.sim_stt]
plugin = sim
transcript = hello world
latency = ${stt_ms}ms
[plugin.sim_llm]
plugin = sim
latency = ${llm_ms}ms
token_delay = 0ms
[plugin.sim_tts]
plugin = sim
latency = ${tts_ms}ms
sample_rate = 16000
[stt]
providers = sim_stt
[llm]
providers = sim_llm
[tts]
providers = sim_tts
INI
    bench_start_voxray "$work/cap.ini" "$port"
    "$top_builddir/tools/voxray-loadtest" -u "ws://127.0.0.1:$port/v1/realtime" -n "$n" -t "$turns" \
        --ramp "$ramp" --pid "$pid" --provider-latency "$stt_ms,$llm_ms,$tts_ms" --timeout 30 --json \
        >"$work/lt.json" 2>"$work/lt.err"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
    last=$(tail -n 1 "$work/lt.json")
    if ! echo "$last" | jq -e . >/dev/null 2>&1; then
        echo "$n: voxray-loadtest gave no result:"
        tail -5 "$work/lt.err"
        break
    fi
    row=$(echo "$last" | jq -r --argjson p "$provider_ms" --argjson wall 1 '[
        .sessions,
        (100 * .success_fraction),
        (.tts_start.p50 - $p), (.tts_start.p99 - $p), .end_to_end.p50,
        (.server_cpu_percent_mean // 0), ((.server_rss_max_bytes // 0) / 1048576), (.server_threads_max // 0),
        (100 * .loadgen_cpu_seconds / .wall_seconds)] | @tsv')
    read -r s ok a50 a99 e50 cpu rss thr lg <<<"$row"
    printf '%-8s %8.1f %10.1f %10.1f %10.1f %9.0f %9.0f %8s %10.0f\n' "$s" "$ok" "$a50" "$a99" "$e50" "$cpu" "$rss" "$thr" "$lg"
    errs=$(echo "$last" | jq -r '.errors | to_entries | map("\(.key) \(.value)") | join(", ")')
    [ -n "$errs" ] && echo "         errors: $errs"
    if [ "$(echo "$last" | jq '.turns_ok == .turns_total')" != true ]; then
        break
    fi
    if [ "$(echo "$a99 <= $p99_max" | bc)" = 1 ]; then capacity=$n; fi
done
echo "capacity: $capacity sessions (every turn ok, host-added p99 <= $p99_max ms; load generator on the same machine)"
