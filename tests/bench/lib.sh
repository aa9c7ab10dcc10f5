# tests/bench/lib.sh: what the benchmark scripts share. Source it after
# setting top_builddir and work (a scratch folder).

# The providers of the load benchmarks: "flaky" (20 ms latency, 30 ms jitter,
# fails 10 % of its calls) in front of "steady" for every stage. Prints INI.
bench_flaky_providers() {
    cat <<INI
[plugin.flaky]
plugin = sim
latency = 20ms
jitter = 30ms
failure_rate = 0.1
[plugin.steady]
plugin = sim
[stt]
providers = flaky, steady
[llm]
providers = flaky, steady
[tts]
providers = flaky, steady
INI
}

# Start voxray on CONFIG (its log in $work/v.log), set pid, and wait until
# /ready answers on PORT; exit 1 with its log when it does not.
bench_start_voxray() {
    local conf=$1 port=$2
    "$top_builddir/voxray" -c "$conf" >"$work/v.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && return 0; sleep 0.1; done
    echo "voxray did not start:"
    cat "$work/v.log"
    exit 1
}
