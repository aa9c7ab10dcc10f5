#!/bin/bash
# The OpenAI-compatible providers inside the daemon: a spoken turn through
# stt_openai -> llm_openai -> tts_openai against a local server that replays
# the documented response shapes; then the same with a failing LLM service,
# which falls back to ELIZA.
. "$top_srcdir/tests/integration/lib.sh"

CLIENT="$top_builddir/tools/voxray-client"
MOCK="$top_builddir/tests/tools/mock_openai"
"$MOCK" 0 >"$WORK/mock.port" 2>"$WORK/mock.log" &
MOCK_PID=$!
track "$MOCK_PID"
for i in $(seq 1 100); do [ -s "$WORK/mock.port" ] && break; sleep 0.05; done
MPORT=$(head -1 "$WORK/mock.port")
BASE="http://127.0.0.1:$MPORT/v1"

conf() { # conf LLM_MODEL
    VX_PORT=$(free_port)
    cat >"$WORK/o.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
[plugin.ostt]
plugin = stt_openai
base_url = $BASE
model = whisper-1
api_key_env = VOXRAY_TEST_KEY
[plugin.ollm]
plugin = llm_openai
base_url = $BASE
model = $1
api_key_env = VOXRAY_TEST_KEY
[plugin.otts]
plugin = tts_openai
base_url = $BASE
model = tts-1
api_key_env = VOXRAY_TEST_KEY
[plugin.eliza]
plugin = llm_eliza
[stt]
providers = ostt
[llm]
providers = ollm, eliza
retries = 1
retry_backoff = 50ms
[tts]
providers = otts
INI
}

sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null

conf ok
start_voxray "$WORK/o.ini" "$WORK/v1.log" VOXRAY_TEST_KEY=sk-test-0123456789
wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
"$CLIENT" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -s 0 --json "$WORK/turn.wav" >"$WORK/t1.json" 2>"$WORK/c1.err"
check "a turn through the OpenAI-compatible providers completes" quiet jq -e '.status == "completed"' "$WORK/t1.json"
check "the transcript comes from /audio/transcriptions" quiet jq -e '.transcript | length > 0' "$WORK/t1.json"
check "the reply is the streamed chat completion" quiet jq -e '.reply == "Hello there! The café opens at 8 — see you soon."' "$WORK/t1.json"
check "the reply audio comes from /audio/speech" quiet jq -e '.audio_ms > 0' "$WORK/t1.json"
reqs=$(curl -s "http://127.0.0.1:$MPORT/__requests")
check "the chat request streams with usage" quiet jq -e 'any(.[]; .path == "/v1/chat/completions" and .json.stream == true and .json.stream_options.include_usage == true)' <<<"$reqs"
check "the key from the environment is sent as a bearer token" quiet jq -e 'all(.[]; .headers.authorization == "Bearer sk-test-0123456789")' <<<"$reqs"
check "the speech request asks for raw PCM" quiet jq -e 'any(.[]; .path == "/v1/audio/speech" and .json.response_format == "pcm")' <<<"$reqs"
check "the key never reaches the log" bash -c "! grep -q sk-test-0123456789 '$WORK/v1.log'"
stop_pid "$VX_PID"

# The LLM service answers 500: retried once, then ELIZA answers.
conf e500
start_voxray "$WORK/o.ini" "$WORK/v2.log" VOXRAY_TEST_KEY=sk-test-0123456789
wait_status "http://127.0.0.1:$VX_PORT/ready" 200 10
"$CLIENT" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -s 0 --json "$WORK/turn.wav" >"$WORK/t2.json" 2>"$WORK/c2.err"
check "with the LLM service failing, the turn still completes" quiet jq -e '.status == "completed" and (.reply | length) > 0' "$WORK/t2.json"
m=$(curl -s "http://127.0.0.1:$VX_PORT/metrics")
check "the 5xx is counted as a retryable LLM error" grep -q 'llm_errors_total{model="ollm",provider="ollm",error_type="unavailable"} 2' <<<"$m"
check "the retry is counted" grep -q 'llm_retries_total{model="ollm",provider="ollm"} 1' <<<"$m"
check "the fallback to ELIZA is counted" grep -q 'llm_fallback_total{from="ollm",to="eliza"} 1' <<<"$m"
stop_pid "$VX_PID"
kill "$MOCK_PID" 2>/dev/null
done_testing
