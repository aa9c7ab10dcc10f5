#!/bin/bash
# What idle sessions cost (prints figures, never fails on them): the
# server's CPU while SESSIONS sessions are open and silent.
#   tests/bench/idle.sh [BUILD_DIR] [SESSIONS] [SECONDS]
# BUILD_DIR may be another build of voxray (an older one, to compare).
set -u
top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
top_builddir=$(cd "${1:-$top_srcdir}" && pwd)
sessions=${2:-4000}
secs=${3:-20}
work=$(mktemp -d)
. "$top_srcdir/tests/bench/lib.sh"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
port=$("$top_srcdir/tests/tools/freeport")
cat >"$work/idle.ini" <<INI
[server]
listen = 127.0.0.1:$port
plugin_dir = $top_builddir/plugins/.built
max_sessions = $((sessions + 100))
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
bench_start_voxray "$work/idle.ini" "$port"
node "$top_srcdir/tests/bench/idle.mjs" "ws://127.0.0.1:$port/v1/realtime" "$sessions" "$secs" "$pid"
