#!/bin/bash
# Benchmark (prints figures, never fails on them): GET /health answered by
# voxray's HTTP server against a bare libmicrohttpd server sending the same
# bytes (tests/bench/bare_health), both on loopback, driven in turn by the
# same keep-alive client (tests/bench/bench_http) for ROUNDS rounds each so
# drift in the machine's load hits both alike.
#   tests/bench/bench_http.sh [BUILD_DIR] [SECONDS per round] [CONNECTIONS] [ROUNDS]
# BUILD_DIR may be another build of voxray; the client and the bare server
# come from it when it has them, else from this source tree's build.
# OTHER_BUILD=DIR adds a second voxray (an older build, say) to the rounds.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
secs=${2:-3}
conns=${3:-4}
rounds=${4:-3}
other=${OTHER_BUILD:-}
tools=$top_builddir
[ -x "$tools/tests/bench/bench_http" ] || tools=$top_srcdir
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
opid=
bare=
trap 'for p in $pid $opid $bare; do kill $p 2>/dev/null && wait $p 2>/dev/null; done; rm -rf "$work"' EXIT
# voxray's configuration for a build dir and a port: sim providers, no log noise.
health_ini() {
    cat <<INI
[server]
listen = 127.0.0.1:$2
plugin_dir = $1/plugins/.built
[log]
level = warn
[plugin.sim]
plugin = sim
[stt]
providers = sim
[llm]
providers = sim
[tts]
providers = sim
INI
}
port=$("$top_srcdir/tests/tools/freeport")
bport=$("$top_srcdir/tests/tools/freeport")
health_ini "$top_builddir" "$port" >"$work/health.ini"
bench_start_voxray "$work/health.ini" "$port"
if [ -n "$other" ]; then
    oport=$("$top_srcdir/tests/tools/freeport")
    mainpid=$pid
    health_ini "$other" "$oport" >"$work/other.ini"
    saved=$top_builddir
    top_builddir=$other
    bench_start_voxray "$work/other.ini" "$oport"
    top_builddir=$saved
    opid=$pid
    pid=$mainpid
fi
"$tools/tests/bench/bare_health" "$bport" 2 &
bare=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$bport/health" >/dev/null && break; sleep 0.1; done
echo "GET /health, $conns keep-alive connections, $rounds rounds of $secs s each, alternating"
# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
# One round of the client against NAME on PORT served by process SPID; the
# server's CPU per request beside what the client saw (the client shares
# the machine, so requests/s is partly its own limit; CPU per request is the
# server's alone).
hit() {
    local c0 c1 out n
    c0=$(cpu_ticks "$3")
    out=$("$tools/tests/bench/bench_http" "http://127.0.0.1:$2/health" "$secs" "$conns" "ok
")
    c1=$(cpu_ticks "$3")
    n=$(echo "$out" | sed -n 's/.*requests \([0-9]*\).*/\1/p')
    printf '%-8s round %d %s  server CPU %s us/request\n' "$1" "$r" "$out" \
        "$(awk -v c=$((c1 - c0)) -v t="$tick" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.1f", c / t * 1e6 / n; else print "-" }')"
}
for r in $(seq 1 "$rounds"); do
    hit voxray "$port" "$pid"
    [ -n "$other" ] && hit other "$oport" "$opid"
    hit bare "$bport" "$bare"
done
