#!/bin/bash
# Benchmark (prints figures, never fails on them): GET /health answered by
# voxray's HTTP server against a bare libmicrohttpd server sending the same
# bytes (tests/bench/bare_health), both on loopback, driven in turn by the
# same keep-alive client (tests/bench/bench_http) for ROUNDS rounds each so
# drift in the machine's load hits both alike.
#   tests/bench/bench_http.sh [BUILD_DIR] [SECONDS per round] [CONNECTIONS] [ROUNDS]
# BUILD_DIR may be another build of voxray (an older one, to compare); the
# client and the bare server come from it too.
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
secs=${2:-3}
conns=${3:-4}
rounds=${4:-3}
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
bare=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null
      [ -n "$bare" ] && kill $bare 2>/dev/null && wait $bare 2>/dev/null; rm -rf "$work"' EXIT
port=$("$top_srcdir/tests/tools/freeport")
bport=$("$top_srcdir/tests/tools/freeport")
cat >"$work/health.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
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
bench_start_voxray "$work/health.ini" "$port"
"$top_builddir/tests/bench/bare_health" "$bport" 2 &
bare=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$bport/health" >/dev/null && break; sleep 0.1; done
echo "GET /health, $conns keep-alive connections, $rounds rounds of $secs s each, alternating"
for r in $(seq 1 "$rounds"); do
    printf '%-8s round %d %s\n' voxray "$r" \
        "$("$top_builddir/tests/bench/bench_http" "http://127.0.0.1:$port/health" "$secs" "$conns" "ok
")"
    printf '%-8s round %d %s\n' bare "$r" \
        "$("$top_builddir/tests/bench/bench_http" "http://127.0.0.1:$bport/health" "$secs" "$conns" "ok
")"
done
