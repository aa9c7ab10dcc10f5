#!/bin/bash
# tools/voxray-client against a real voxray with simulated providers: a WAV
# streamed in real time becomes a transcript, a reply and reply audio.
. "$top_srcdir/tests/integration/lib.sh"

CLIENT="$top_builddir/tools/voxray-client"
VX_PORT=$(free_port)
cat >"$WORK/c.ini" <<INI
[server]
listen = 127.0.0.1:$VX_PORT
plugin_dir = $PLUGIN_DIR
[plugin.sim]
plugin = sim
latency = 30ms
[stt]
providers = sim
[llm]
providers = sim
[tts]
providers = sim
INI
start_voxray "$WORK/c.ini" "$WORK/c.log" || not_ok "voxray starts" "$(cat "$WORK/c.log")"
URL="ws://127.0.0.1:$VX_PORT/v1/realtime"

# 0.3 s of silence, 1 s of "speech" (a tone), 16 kHz mono.
sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 1 sine 220 vol 0.4 pad 0.3 0 2>/dev/null
check "sox made a test WAV" test -s "$WORK/turn.wav"

"$CLIENT" -u "$URL" -s 2 --json -o "$WORK/reply.wav" "$WORK/turn.wav" "$WORK/turn.wav" >"$WORK/out.json" 2>"$WORK/err.txt"
rc=$?
check "voxray-client exits 0 after two turns" [ $rc -eq 0 ]
check "each turn reports the transcript" quiet jq -e -s 'length == 2 and all(.transcript == "hello world")' "$WORK/out.json"
check "each turn reports the reply text" quiet jq -e -s 'all(.reply == "You said: hello world.")' "$WORK/out.json"
check "each turn completed with reply audio" quiet jq -e -s 'all(.status == "completed" and .audio_ms > 0)' "$WORK/out.json"
check "time to first audio is reported" quiet jq -e -s 'all(.ttfa_ms != null and .ttfa_ms >= 0 and .stop_to_audio_ms >= 0)' "$WORK/out.json"
check "the reply audio is written as a 24 kHz WAV" bash -c "soxi -r '$WORK/reply.wav' | grep -qx 24000"
samples=$(soxi -s "$WORK/reply.wav" 2>/dev/null || echo 0)
check "the reply WAV holds the audio of both turns (> 1 s)" [ "${samples:-0}" -gt 24000 ]

"$CLIENT" -u "$URL" --manual -s 0 --json "$WORK/turn.wav" >"$WORK/manual.json" 2>>"$WORK/err.txt"
check "manual commit mode works too" quiet jq -e '.status == "completed" and .transcript == "hello world"' "$WORK/manual.json"

"$CLIENT" -u "$URL" --beta -s 0 --json "$WORK/turn.wav" >"$WORK/beta.json" 2>>"$WORK/err.txt"
check "the beta dialect works too" quiet jq -e '.status == "completed" and .reply == "You said: hello world."' "$WORK/beta.json"

"$CLIENT" -u "ws://127.0.0.1:$(free_port)/v1/realtime" "$WORK/turn.wav" >/dev/null 2>&1
check "an unreachable server gives exit code 3" [ $? -eq 3 ]
printf 'not a wav' >"$WORK/bad.wav"
"$CLIENT" -u "$URL" "$WORK/bad.wav" >/dev/null 2>&1
check "a file that is not a WAV gives exit code 2" [ $? -eq 2 ]
stop_pid "$VX_PID"

# A server that wants an API key: VOXRAY_API_KEY carries it.
KEY=sk-voxray-client-5e1f0a9c2b7d4836
VX_PORT=$(free_port)
sed -e "s/^listen = .*/listen = 127.0.0.1:$VX_PORT/" "$WORK/c.ini" >"$WORK/k.ini"
printf '[auth]\napi_keys = %s\n' "$KEY" >>"$WORK/k.ini"
start_voxray "$WORK/k.ini" "$WORK/k.log" || not_ok "voxray starts with [auth] api_keys" "$(cat "$WORK/k.log")"
URL="ws://127.0.0.1:$VX_PORT/v1/realtime"
VOXRAY_API_KEY=$KEY "$CLIENT" -u "$URL" -s 0 --json "$WORK/turn.wav" >"$WORK/key.json" 2>>"$WORK/err.txt"
check "VOXRAY_API_KEY opens a session on a server with keys" quiet jq -e '.status == "completed"' "$WORK/key.json"
"$CLIENT" -u "$URL" -s 0 "$WORK/turn.wav" >/dev/null 2>"$WORK/nokey.txt"
check "without the key the client cannot connect (exit code 3)" [ $? -eq 3 ]
stop_pid "$VX_PID"
done_testing
