#!/bin/bash
# Benchmark (prints figures, never fails on time): GET /health and GET /ready
# latency from 127.0.0.1 with no attack, then while slow clients hold
# request heads open (tests/tools/slowloris), on the default [server] limits.
#   tests/bench/slowloris.sh [BUILD_DIR] [PROBES]
# BUILD_DIR may be another build of voxray (an older one, to compare); the
# slowloris tool is taken from this tree's build.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
probes=${2:-500}
slow="$top_srcdir/tests/tools/slowloris"
[ -x "$slow" ] || slow="$top_builddir/tests/tools/slowloris"
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null
port=$("$top_builddir/tests/tools/freeport")
cat >"$work/v.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
[log]
level = warn
INI
"$top_builddir/voxray" -c "$work/v.ini" >"$work/v.log" 2>&1 &
pid=$!
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
run() {
    echo "== $1"
    shift
    "$slow" hold "$port" "$@" | grep -v '^probe_failed' | sed 's/^/   /'
}
run "no attack" 0 2 2 0 "$probes"
run "1000 slow heads from one address (127.0.0.2)" 1000 2 2 1500 "$probes"
run "1100 slow heads from 253 addresses" 1100 2 254 1500 "$probes"
run "4000 slow heads from 253 addresses" 4000 2 254 1500 "$probes"
run "1100 slow heads from 253 addresses, one byte a second each" 1100 2 254 3000 "$probes" 1000
run "no attack, again" 0 2 2 0 "$probes"
