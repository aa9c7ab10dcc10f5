#!/bin/bash
# tools/voxray-loadtest against a real voxray with simulated providers:
# concurrent sessions, every turn timed per stage, failures counted by kind,
# the server's process sampled, and clear exit codes.
. "$top_srcdir/tests/integration/lib.sh"

LOADTEST="$top_builddir/tools/voxray-loadtest"

# sim_conf FILE [extra [plugin.sim] lines...]: one sim instance serves all
# three stages.
sim_conf() {
    local f=$1; shift
    VX_PORT=$(free_port)
    {
        printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n' "$VX_PORT" "$PLUGIN_DIR"
        printf '[log]\nlevel = warn\n'
        printf '[plugin.sim]\nplugin = sim\nlatency = 20ms\n'
        printf '%s\n' "$@"
        printf '[stt]\nproviders = sim\n[llm]\nproviders = sim\n[tts]\nproviders = sim\n'
    } >"$f"
}

sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 0.6 sine 220 vol 0.4 pad 0.2 0 2>/dev/null
check "sox made a test WAV" test -s "$WORK/turn.wav"

sim_conf "$WORK/ok.ini"
start_voxray "$WORK/ok.ini" "$WORK/ok.log" || not_ok "voxray starts" "$(cat "$WORK/ok.log")"
URL="ws://127.0.0.1:$VX_PORT/v1/realtime"

"$LOADTEST" -u "$URL" -n 5 -t 2 --think 100 --json --pid "$VX_PID" \
    --provider-latency 20,20,20 "$WORK/turn.wav" >"$WORK/ok.json" 2>"$WORK/ok.err"
rc=$?
check "a run against a healthy server exits 0" [ $rc -eq 0 ]
tail -n 1 "$WORK/ok.json" >"$WORK/ok.last"
check "the last line of stdout is one JSON object" quiet jq -e 'type == "object"' "$WORK/ok.last"
check "it counts 5 sessions and 10 turns, all ok" \
    quiet jq -e '.sessions == 5 and .turns_total == 10 and .turns_ok == 10 and .success_fraction == 1' "$WORK/ok.last"
check "no error is counted" quiet jq -e '.errors == {}' "$WORK/ok.last"
for st in turn_detection stt llm tts_start end_to_end; do
    check "stage $st has 10 samples with p50 <= p90 <= p95 <= p99" \
        quiet jq -e --arg s "$st" '.[$s] | .count == 10 and .p50 <= .p90 and .p90 <= .p95 and .p95 <= .p99 and .mean > 0' "$WORK/ok.last"
done
check "stages follow each other: stt <= llm <= tts_start, and end to end covers turn detection" \
    quiet jq -e '.stt.p50 <= .llm.p50 and .llm.p50 <= .tts_start.p50 and .end_to_end.p50 >= .turn_detection.p50' "$WORK/ok.last"
check "the server process was sampled (threads, CPU, RSS)" \
    quiet jq -e '.server_threads_max > 0 and .server_rss_max_bytes > 0 and (.server_cpu_percent_mean | type) == "number"' "$WORK/ok.last"
check "host_added is reported for stt, llm and tts_start" \
    quiet jq -e '.host_added | has("stt") and has("llm") and has("tts_start")' "$WORK/ok.last"
check "the server's own /metrics saw the 10 turns" \
    quiet jq -e '.server_metrics.voxray_turn_latency_seconds.count == 10' "$WORK/ok.last"
check "its own CPU and the audio it sent are reported" \
    quiet jq -e '.loadgen_cpu_seconds > 0 and .audio_seconds_sent > 0' "$WORK/ok.last"
check "the human report goes to stderr with --json" grep -q '^end_to_end ' "$WORK/ok.err"
check "progress lines go to stderr" grep -q 'sessions .* connected' "$WORK/ok.err"

"$LOADTEST" -u "$URL" -n 5 -t 2 --think 100 --json --send-interval 100 \
    "$WORK/turn.wav" >"$WORK/iv.json" 2>"$WORK/iv.err"
tail -n 1 "$WORK/iv.json" >"$WORK/iv.last"
check "--send-interval 100: every turn still completes" \
    quiet jq -e '.turns_ok == 10 and .errors == {} and .send_interval_ms == 100' "$WORK/iv.last"
check "--send-interval 100: the same 20 ms append messages are sent" \
    quiet jq -e --slurpfile a "$WORK/ok.last" '.chunks_sent == $a[0].chunks_sent and .audio_seconds_sent == $a[0].audio_seconds_sent' "$WORK/iv.last"
check "by default a chunk is written when due (20 ms)" quiet jq -e '.send_interval_ms == 20' "$WORK/ok.last"
check "its CPU per connected session-second is reported" \
    quiet jq -e '.loadgen_cpu_ms_per_session_second > 0 and .session_seconds > 0' "$WORK/ok.last"

"$LOADTEST" -u "$URL" -n 2 -t 1 --think 0 --json >"$WORK/gen.json" 2>"$WORK/gen.err"
check "without a WAV the generated signal makes complete turns" \
    quiet jq -e '.turns_ok == 2' <(tail -n 1 "$WORK/gen.json")
"$LOADTEST" -u "$URL" -n 2 -t 1 "$WORK/turn.wav" >"$WORK/text.out" 2>/dev/null
check "without --json the report goes to stdout" grep -q '^turns: 2 ok of 2' "$WORK/text.out"
stop_pid "$VX_PID"

# The only provider always fails: no turn completes, and the kind is named.
sim_conf "$WORK/bad.ini" "failure_rate = 1"
start_voxray "$WORK/bad.ini" "$WORK/bad.log" || not_ok "voxray starts with a failing provider" "$(cat "$WORK/bad.log")"
"$LOADTEST" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -n 3 -t 2 --think 0 --timeout 10 --json \
    "$WORK/turn.wav" >"$WORK/bad.json" 2>"$WORK/bad.err"
rc=$?
tail -n 1 "$WORK/bad.json" >"$WORK/bad.last"
check "failing turns still exit 0 (the test ran)" [ $rc -eq 0 ]
check "no turn is ok out of 6" quiet jq -e '.turns_ok == 0 and .turns_total == 6 and .success_fraction == 0' "$WORK/bad.last"
check "the errors name the failure: transcription_failed" \
    quiet jq -e '.errors.transcription_failed == 6' "$WORK/bad.last"
stop_pid "$VX_PID"

# A server that wants a key: refused upgrades are counted by HTTP status.
KEY=sk-loadtest-7c1d3e5f9a2b4c6d
sim_conf "$WORK/key.ini" "[auth]" "api_keys = $KEY"
start_voxray "$WORK/key.ini" "$WORK/key.log" || not_ok "voxray starts with [auth]" "$(cat "$WORK/key.log")"
URL="ws://127.0.0.1:$VX_PORT/v1/realtime"
"$LOADTEST" -u "$URL" -n 2 -t 1 --json "$WORK/turn.wav" >"$WORK/nokey.json" 2>"$WORK/nokey.err"
rc=$?
check "without the key nothing connects: exit 1" [ $rc -eq 1 ]
check "the refusal is counted as http_401" quiet jq -e '.errors.http_401 == 2' <(tail -n 1 "$WORK/nokey.json")
"$LOADTEST" -u "$URL" -n 2 -t 1 --key "$KEY" --json "$WORK/turn.wav" >"$WORK/key.json" 2>/dev/null
check "--key opens the sessions" quiet jq -e '.turns_ok == 2' <(tail -n 1 "$WORK/key.json")
VOXRAY_API_KEY=$KEY "$LOADTEST" -u "$URL" -n 1 -t 1 --json "$WORK/turn.wav" >"$WORK/envkey.json" 2>/dev/null
check "VOXRAY_API_KEY works as well" quiet jq -e '.turns_ok == 1' <(tail -n 1 "$WORK/envkey.json")
stop_pid "$VX_PID"

# wss://: nginx terminates TLS (self-signed certificate) in front of voxray.
sim_conf "$WORK/tls.ini"
start_voxray "$WORK/tls.ini" "$WORK/tls.log" || not_ok "voxray starts for the TLS run" "$(cat "$WORK/tls.log")"
TLS_PORT=$(free_port)
mkdir -p "$WORK/nginx/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$WORK/nginx/key.pem" \
    -out "$WORK/nginx/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
cat >"$WORK/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $WORK/nginx/cert.pem;
        ssl_certificate_key $WORK/nginx/key.pem;
        location / {
            proxy_pass http://127.0.0.1:$VX_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}
NGINX
/usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
    >"$WORK/nginx/out.log" 2>&1 &
NGINX_PID=$!
track "$NGINX_PID"
for _ in $(seq 1 100); do
    curl -skf "https://127.0.0.1:$TLS_PORT/health" >/dev/null && break
    sleep 0.1
done
TLS_URL="wss://127.0.0.1:$TLS_PORT/v1/realtime"
"$LOADTEST" -u "$TLS_URL" -n 3 -t 2 --think 100 --insecure --json \
    --metrics "http://127.0.0.1:$VX_PORT/metrics" "$WORK/turn.wav" >"$WORK/tls.json" 2>"$WORK/tls.err"
check "wss:// with --insecure: every turn completes over TLS" \
    quiet jq -e '.turns_ok == 6 and .turns_total == 6 and .errors == {}' <(tail -n 1 "$WORK/tls.json")
"$LOADTEST" -u "$TLS_URL" -n 3 -t 2 --think 100 --insecure --send-interval 60 --json \
    --metrics "http://127.0.0.1:$VX_PORT/metrics" "$WORK/turn.wav" >"$WORK/tls2.json" 2>/dev/null
check "wss:// with --send-interval 60: every turn completes" \
    quiet jq -e '.turns_ok == 6 and .errors == {}' <(tail -n 1 "$WORK/tls2.json")
"$LOADTEST" -u "$TLS_URL" -n 2 -t 1 --json --metrics "http://127.0.0.1:$VX_PORT/metrics" \
    "$WORK/turn.wav" >"$WORK/tlsbad.json" 2>"$WORK/tlsbad.err"
rc=$?
check "wss:// without --insecure refuses the self-signed certificate: exit 1" [ $rc -eq 1 ]
check "and names the certificate problem" grep -q 'certificate' "$WORK/tlsbad.err"
kill "$NGINX_PID" 2>/dev/null
stop_pid "$VX_PID"

# Nothing listens: exit 1 with a message that says so.
"$LOADTEST" -u "ws://127.0.0.1:$(free_port)/v1/realtime" -n 2 -t 1 "$WORK/turn.wav" >/dev/null 2>"$WORK/closed.err"
rc=$?
check "a closed port exits 1" [ $rc -eq 1 ]
check "and says no session could connect" grep -q 'no session could connect to ws://127.0.0.1:' "$WORK/closed.err"

# Usage errors exit 2.
"$LOADTEST" -n 2 -t 1 >/dev/null 2>&1
check "a missing -u is a usage error (exit 2)" [ $? -eq 2 ]
"$LOADTEST" -u "$URL" -n zero -t 1 >/dev/null 2>&1
check "a bad -n is a usage error (exit 2)" [ $? -eq 2 ]
"$LOADTEST" -u "$URL" -n 1 -t 1 --send-interval 10 >/dev/null 2>&1
check "a --send-interval under 20 ms is a usage error (exit 2)" [ $? -eq 2 ]
"$LOADTEST" -u "http://127.0.0.1:1/" -n 1 -t 1 >/dev/null 2>&1
check "a URL that is not ws:// or wss:// is a usage error (exit 2)" [ $? -eq 2 ]
printf 'not a wav' >"$WORK/bad.wav"
"$LOADTEST" -u "$URL" -n 1 -t 1 "$WORK/bad.wav" >/dev/null 2>"$WORK/badwav.err"
check "an unreadable WAV exits 2 and names the file" bash -c "[ $? -eq 2 ] && grep -q 'bad.wav' '$WORK/badwav.err'"

"$LOADTEST" --help >"$WORK/help.txt" 2>&1
check "--help exits 0" [ $? -eq 0 ]
missing=""
for o in -u --url -n --sessions -t --turns --ramp --key --pid --json --think --speed --duration \
         --timeout --silence --output-rate --provider-latency --metrics --insecure --send-interval \
         --help --version; do
    grep -q -- "$o\\b" "$WORK/help.txt" || missing="$missing $o"
done
check "--help mentions every option" [ -z "$missing" ]
[ -n "$missing" ] && diag "missing:$missing"
check "--help documents the exit codes" grep -q 'Exit status: 0' "$WORK/help.txt"
"$LOADTEST" --version | grep -q '^voxray-loadtest '
check "--version names the program" [ $? -eq 0 ]
done_testing
