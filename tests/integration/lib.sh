# Shared helpers for the integration tests (sourced, bash). Each test prints
# TAP: one "ok N - behaviour" line per behaviour and the plan at the end.
# Servers are started on free loopback ports and stopped by their PID.
set -u

: "${top_builddir:?run through make check}"
: "${top_srcdir:?run through make check}"

VOXRAY="$top_builddir/voxray"
FREEPORT="$top_builddir/tests/tools/freeport"
PLUGIN_DIR="$top_builddir/plugins/.built"
TEST_PLUGIN_DIR="$top_builddir/tests/plugins/.libs"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/voxray-test.XXXXXX")

_pids=""
_n=0
_failed=0

_cleanup() {
    for p in $_pids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap _cleanup EXIT

ok() { _n=$((_n + 1)); echo "ok $_n - $1"; }
not_ok() {
    _n=$((_n + 1)); _failed=$((_failed + 1))
    echo "not ok $_n - $1"; shift
    for l in "$@"; do printf '#   %s\n' "$l"; done
}
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d" "failed: $*"; fi; }
done_testing() { echo "1..$_n"; exit 0; }

# Print a string as a diagnostic block.
diag() { printf '%s\n' "$@" | sed 's/^/#   /'; }

free_port() { "$FREEPORT"; }

# track PID: kill it at exit if still running
track() { _pids="$_pids $1"; }

# http_code URL [curl args...]: print the status code (000 when no answer).
http_code() { local u=$1; shift; curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$u" || true; }

# wait_status URL CODE SECONDS: poll until URL answers CODE; 0 on success.
wait_status() {
    local url=$1 want=$2 secs=$3 i=0 got
    local tries=$((secs * 20))
    while [ $i -lt $tries ]; do
        got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
        [ "$got" = "$want" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# start_voxray CONF LOG [env assignments...]: start the daemon in the
# background, set VX_PID, wait until /health answers on $VX_PORT.
start_voxray() {
    local conf=$1 log=$2; shift 2
    env "$@" "$VOXRAY" -c "$conf" >"$log" 2>&1 &
    VX_PID=$!
    track "$VX_PID"
    wait_status "http://127.0.0.1:$VX_PORT/health" 200 10
}

# stop_pid PID: SIGTERM, wait up to 10 s (then SIGKILL); returns its status.
stop_pid() {
    local pid=$1 i=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    wait "$pid"
}

# A minimal config on a free port with the build tree's plugins.
# base_conf FILE [extra ini text]
base_conf() {
    local f=$1; shift
    VX_PORT=$(free_port)
    {
        printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\nhealth_interval = 200ms\n' "$VX_PORT" "$PLUGIN_DIR"
        printf '%s\n' "$@"
    } >"$f"
}

# redis_start PORT: start redis-server on 127.0.0.1:PORT, set REDIS_PID.
redis_start() {
    local port=$1 i=0
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --loglevel warning "${@:2}" >"$WORK/redis-$port.log" 2>&1 &
    REDIS_PID=$!
    track "$REDIS_PID"
    while [ $i -lt 100 ]; do
        redis-cli -p "$port" ${REDIS_AUTH:+-a "$REDIS_AUTH" --no-auth-warning} ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05; i=$((i + 1))
    done
    return 1
}

# metric_value NAME{labels} from a /metrics body on stdin ("" when absent).
metric_value() { awk -v k="$1" '$1 == k { print $2 }'; }

# quiet CMD...: run CMD with its stdout discarded (keeps the TAP stream clean).
quiet() { "$@" >/dev/null; }
