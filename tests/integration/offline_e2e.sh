#!/bin/bash
# The shipped default configuration (conf/voxray.ini: pocketsphinx -> ELIZA
# -> flite) hears spoken English and answers it with speech, offline.
# Sentences are synthesized with flite and streamed in real time by
# tools/voxray-client.
. "$top_srcdir/tests/integration/lib.sh"

CLIENT="$top_builddir/tools/voxray-client"
VX_PORT=$(free_port)
# The shipped file, on a test port, with the build tree's plugins.
export VOXRAY_SERVER_LISTEN="127.0.0.1:$VX_PORT"
export VOXRAY_SERVER_PLUGIN_DIR="$PLUGIN_DIR"
export VOXRAY_SERVER_WEB_ROOT="$top_srcdir/web"
start_voxray "$top_srcdir/conf/voxray.ini" "$WORK/v.log" || not_ok "voxray starts on conf/voxray.ini" "$(cat "$WORK/v.log")"
# /health answers as soon as the process does; sessions wait for /ready
# (the speech models load first).
check "voxray becomes ready on the default configuration" wait_status "http://127.0.0.1:$VX_PORT/ready" 200 20
check "the default configuration serves the offline voice bot" \
    grep -q '"services":{"stt":"available","llm":"available","tts":"available","store":"available"}' \
    <(curl -s "http://127.0.0.1:$VX_PORT/v1/health")
URL="ws://127.0.0.1:$VX_PORT/v1/realtime"

SENTENCES=("hello how are you" "please tell me a story" "my mother does not understand me"
           "i would like a cup of coffee" "what time is it")
files=()
for i in "${!SENTENCES[@]}"; do
    flite -voice slt -t "${SENTENCES[$i]}" -o "$WORK/s$i.wav"
    files+=("$WORK/s$i.wav")
done
check "flite synthesized the test sentences" test -s "$WORK/s4.wav"

"$CLIENT" -u "$URL" --json -o "$WORK/reply.wav" "${files[@]}" >"$WORK/turns.json" 2>"$WORK/client.err"
check "voxray-client completes every turn" [ $? -eq 0 ]
for i in "${!SENTENCES[@]}"; do
    got=$(jq -r -s ".[$i].transcript" "$WORK/turns.json")
    if [ "$got" = "${SENTENCES[$i]}" ]; then ok "transcript $((i + 1)) is exactly \"${SENTENCES[$i]}\""
    else not_ok "transcript $((i + 1)) is exactly \"${SENTENCES[$i]}\"" "got \"$got\""; fi
done
check "ELIZA answers every turn with text" quiet jq -e -s 'all(.reply | length > 3)' "$WORK/turns.json"
check "every answer comes with speech" quiet jq -e -s 'all(.audio_ms > 300)' "$WORK/turns.json"
check "ELIZA reflects the user (\"my mother\" -> \"your mother\")" \
    quiet jq -e -s '.[2].reply | test("your mother|family"; "i")' "$WORK/turns.json"
check "the reply audio file holds speech" bash -c "[ \$(soxi -s '$WORK/reply.wav') -gt 24000 ]"
diag "$(jq -r -s '.[] | "you: \(.transcript) | bot: \(.reply) | ttfa \(.ttfa_ms) ms"' "$WORK/turns.json")"
m=$(curl -s "http://127.0.0.1:$VX_PORT/metrics")
check "stt_pocketsphinx calls are counted" grep -q 'voxray_plugin_calls_total{kind="stt",plugin="pocketsphinx",op="transcribe",status="ok"} 5' <<<"$m"
check "llm_eliza calls are counted" grep -q 'voxray_plugin_calls_total{kind="llm",plugin="eliza",op="generate",status="ok"} 5' <<<"$m"
stop_pid "$VX_PID"
check "voxray stops cleanly" [ $? -eq 0 ]
done_testing
