#!/bin/bash
# Soak benchmark (prints figures, never fails on them): SESSIONS client slots
# talk to one voxray for MINUTES minutes; each slot runs voxray-client for
# TURNS spoken turns, then connects again, until the time is up. Providers
# are simulated and fail 10 % of the time (fallback to a second provider).
#   tests/bench/soak.sh [BUILD_DIR] [MINUTES] [SESSIONS]
# Environment: SOAK_TURNS (turns per connection, default 4), SOAK_SPEED
# (audio speed, default 2 = twice real time), SOAK_INTERVAL (seconds between
# samples, default 5), SOAK_TTL (how long ended sessions stay in the
# session store and their sampled series in /metrics, default 60s, so both
# caches fill within the warm-up; "default" keeps voxray's 1 h and 10 min:
# memory then grows until they are full, see BENCHMARKS.md), SOAK_CONF
# (extra INI lines appended to the config),
# SOAK_LOG (a file the server's log is copied to at the end, after it has
# stopped: with an ASan build, LeakSanitizer's report is in it).
#
# It samples the server's resident memory, threads, open files and /metrics
# series every SOAK_INTERVAL seconds and prints one line per minute, then the
# growth per minute after warm-up (least squares over the samples from the
# end of minute 2 on), and how the client runs ended (exit code of
# voxray-client: 0 ok, 1 failed turn or session, 3 no connection).
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
minutes=${2:-10}
sessions=${3:-100}
turns=${SOAK_TURNS:-4}
speed=${SOAK_SPEED:-2}
interval=${SOAK_INTERVAL:-5}
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "${SOAK_LOG:-}" ] && cp "$work/v.log" "$SOAK_LOG"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=$("$top_builddir/tests/tools/freeport")
cat >"$work/soak.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
[log]
level = warn
$(bench_flaky_providers)
$([ "${SOAK_TTL:-60s}" != default ] && printf '[session]\nttl = %s\n[metrics]\nseries_ttl = %s\n' "${SOAK_TTL:-60s}" "${SOAK_TTL:-60s}")
${SOAK_CONF:-}
INI
bench_start_voxray "$work/soak.ini" "$port"
sox -n -r 16000 -c 1 -b 16 -e signed-integer "$work/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
files=()
for _ in $(seq 1 "$turns"); do files+=("$work/turn.wav"); done

start=$(date +%s)
end=$((start + minutes * 60))
# One slot: connect, talk, record the exit code, again until the end.
slot() {
    local i=$1 n=0 rc
    while [ "$(date +%s)" -lt "$end" ]; do
        "$top_builddir/tools/voxray-client" -u "ws://127.0.0.1:$port/v1/realtime" -s "$speed" -q \
            "${files[@]}" >/dev/null 2>>"$work/err$i.txt"
        rc=$?
        echo "$rc" >>"$work/rc$i.txt"
        n=$((n + 1))
    done
}
for i in $(seq 1 "$sessions"); do slot "$i" & done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null; }
echo "soak: $sessions sessions x $turns turns per connection, audio at ${speed}x, $minutes min, 10 % provider failures, session and series TTL ${SOAK_TTL:-60s}"
printf '%6s %9s %8s %6s %7s %8s %8s\n' "t/s" "RSS/MB" "threads" "fds" "series" "sessions" "turns"
: >"$work/samples"
next_print=60
while :; do
    now=$(date +%s)
    t=$((now - start))
    [ "$t" -gt $((minutes * 60)) ] && break
    kill -0 "$pid" 2>/dev/null || { echo "soak: voxray died"; tail -20 "$work/v.log"; exit 1; }
    m=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics")
    series=$(grep -vc '^#' <<<"$m")
    sess=$(awk '/^voxray_sessions_total / { print $2 }' <<<"$m")
    turns_done=$(awk '/^voxray_turn_latency_seconds_count/ { s += $2 } END { print s + 0 }' <<<"$m")
    rss=$(rss_kb)
    echo "$t $rss $(threads) $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) $series ${sess:-0} $turns_done" >>"$work/samples"
    if [ "$t" -ge "$next_print" ] || [ "$t" -lt "$interval" ]; then
        tail -1 "$work/samples" | awk '{ printf "%6d %9.1f %8d %6d %7d %8d %8d\n", $1, $2 / 1024, $3, $4, $5, $6, $7 }'
        [ "$t" -ge "$next_print" ] && next_print=$((next_print + 60))
    fi
    sleep "$interval"
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
tail -1 "$work/samples" | awk '{ printf "%6d %9.1f %8d %6d %7d %8d %8d  (end)\n", $1, $2 / 1024, $3, $4, $5, $6, $7 }'

awk -v from=120 '$1 >= from { n++; sx += $1; sy += $2 / 1024; sxx += $1 * $1; sxy += $1 * $2 / 1024 }
    END {
        if (n < 3) { print "growth: too short a run to tell (needs more than 2 minutes)"; exit }
        b = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        printf "RSS growth after warm-up (least squares over %d samples from t=120 s): %+.2f MB per minute\n", n, b * 60
    }' "$work/samples"
half=$((minutes * 30))
awk -v from="$half" '$1 >= from { n++; sx += $1; sy += $2 / 1024; sxx += $1 * $1; sxy += $1 * $2 / 1024 }
    END {
        if (n < 3) exit
        b = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        printf "RSS growth over the second half (%d samples from t=%d s): %+.2f MB per minute\n", n, from, b * 60
    }' "$work/samples"
awk 'NR == 1 { min = $2 } { if ($2 > max) max = $2; if ($2 < min) min = $2 }
    END { printf "RSS: first sample %.1f MB, min %.1f MB, max %.1f MB\n", first / 1024, min / 1024, max / 1024 }
    NR == 1 { first = $2 }' "$work/samples"
cat "$work"/rc*.txt 2>/dev/null | sort | uniq -c | awk '
    { label = ($2 == 0 ? "ok" : $2 == 1 ? "failed turn/session" : $2 == 3 ? "no connection" : "exit " $2)
      printf "%s%d %s", (n++ ? ", " : "client runs: "), $1, label }
    END { print "" }'
if cat "$work"/err*.txt 2>/dev/null | grep -q .; then
    echo "client messages (most frequent first):"
    cat "$work"/err*.txt | sed -E 's/[0-9]+(\.[0-9]+)? ?(s|ms)\b/N\2/g; s/turn [0-9]+/turn N/' |
        sort | uniq -c | sort -rn | head -8
fi
m=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics")
grep -E '^voxray_plugin_store_memory_(keys|bytes|evicted_keys_total)' <<<"$m"
grep -E '^(stt|llm|tts)_fallback_total|^voxray_sessions_total|^voxray_active_sessions' <<<"$m"
ticks=$(getconf CLK_TCK)
read -r ut st < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
echo "server CPU: $(echo "scale=1; ($ut + $st) / $ticks" | bc) s over $minutes min"
