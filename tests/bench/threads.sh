#!/bin/bash
# Threads benchmark (prints figures, never fails on them): voxray with the
# sim providers of conf/examples/sim.ini (max_sessions = 10000), SESSIONS
# sessions of voxray-loadtest talking for DURATION seconds (generated speech
# in real time, --ramp RAMP sessions started per second), then one line:
# turns ok/total, the server's threads (most seen), CPU and RSS.
#   tests/bench/threads.sh [BUILD_DIR] [SESSIONS] [RAMP] [DURATION]
# LOADTEST: the voxray-loadtest to use (default BUILD_DIR's), so an older
# build's server can be measured with the same client.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
sessions=${2:-1000}
ramp=${3:-100}
duration=${4:-40}
loadtest=${LOADTEST:-$top_builddir/tools/voxray-loadtest}
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=$("$top_builddir/tests/tools/freeport")
sed -e "s|^listen = .*|listen = 127.0.0.1:$port\nplugin_dir = $top_builddir/plugins/.built\nmax_sessions = 10000|" \
    "$top_srcdir/conf/examples/sim.ini" >"$work/sim.ini"
printf '[log]\nlevel = warn\n' >>"$work/sim.ini"
bench_start_voxray "$work/sim.ini" "$port"
"$loadtest" -u "ws://127.0.0.1:$port/v1/realtime" -n "$sessions" -t 1000 --ramp "$ramp" \
    --duration "$duration" --json --pid "$pid" 2>"$work/lt.err" | tail -1 >"$work/lt.json"
jq -r --arg n "$sessions" '"\($n) sessions: turns \(.turns_ok)/\(.turns_total), server threads max \(.server_threads_max), CPU mean \(.server_cpu_percent_mean | floor) %, RSS max \(.server_rss_max_bytes / 1048576 | floor) MB"' "$work/lt.json"
