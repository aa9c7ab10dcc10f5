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
    grep -q '"services":{"stt":"available","llm":"available","tts":"available","store":"available","recording":"disabled"}' \
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
rc=$?
if [ $rc -eq 0 ]; then ok "voxray-client completes every turn"
else not_ok "voxray-client completes every turn" "exit $rc; the client said:" "$(tail -5 "$WORK/client.err")" \
    "voxray said:" "$(grep -v ' INFO ' "$WORK/v.log" | tail -10)"; fi
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
check "stt_pocketsphinx calls are counted" grep -q 'voxray_plugin_calls_total{kind="stt",plugin="pocketsphinx",provider="pocketsphinx",op="transcribe",status="ok"} 5' <<<"$m"
check "llm_eliza calls are counted" grep -q 'voxray_plugin_calls_total{kind="llm",plugin="eliza",provider="eliza",op="generate",status="ok"} 5' <<<"$m"
stop_pid "$VX_PID"
check "voxray stops cleanly" [ $? -eq 0 ]

# The same bot with recording on, into the file sink (set from the
# environment only): the call arrives as a WAV and a sidecar whose turns are
# what the client saw.
mkdir -p "$WORK/recordings"
start_voxray "$top_srcdir/conf/voxray.ini" "$WORK/r.log" VOXRAY_RECORDING_ENABLED=true \
    VOXRAY_RECORDING_SPOOL_DIR="$WORK/spool" VOXRAY_RECORDING_DEAD_LETTER_DIR="$WORK/dead" \
    VOXRAY_PLUGIN_FILE_DIR="$WORK/recordings" || not_ok "voxray starts with recording on" "$(cat "$WORK/r.log")"
wait_status "http://127.0.0.1:$VX_PORT/ready" 200 20
"$CLIENT" -u "$URL" --json "${files[0]}" "${files[2]}" >"$WORK/rturns.json" 2>"$WORK/rclient.err"
check "a recorded call completes" [ $? -eq 0 ]
sid=$(sed -n 's/.*session \(sess_[A-Za-z0-9]*\).*/\1/p' "$WORK/rclient.err" | head -1)
i=0; while [ -z "$(find "$WORK/recordings" -name "$sid.json" 2>/dev/null)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wav=$(find "$WORK/recordings" -name "$sid.wav")
json=$(find "$WORK/recordings" -name "$sid.json")
check "rec_file holds <dir>/YYYY/MM/DD/<session>.wav and .json" \
    bash -c "[[ '$wav' =~ /recordings/[0-9]{4}/[0-9]{2}/[0-9]{2}/$sid\.wav$ ]] && [ -s '$json' ]"
check "the recording is a 16 kHz stereo WAV as long as the call" \
    bash -c "[ \$(soxi -c '$wav') = 2 ] && [ \$(soxi -r '$wav') = 16000 ] && awk -v d=\$(soxi -D '$wav') 'BEGIN { exit !(d > 4) }'"
check "the sidecar's transcripts are what the client was told" \
    bash -c "diff <(jq -r '.turns[] | select(.role == \"user\") | .transcript' '$json') <(jq -r .transcript '$WORK/rturns.json')"
check "the sidecar's replies are what the bot said" \
    bash -c "diff <(jq -r '.turns[] | select(.role == \"assistant\") | .text' '$json') <(jq -r .reply '$WORK/rturns.json')"
check "the sidecar names the offline providers" \
    quiet jq -e '.providers == {"stt": ["pocketsphinx"], "llm": ["eliza"], "tts": ["flite"]}' "$json"
check "both channels carry sound" bash -c "sox '$wav' -n remix 1 stat 2>&1 | awk '/RMS +amplitude/ { exit !(\$3 > 0.01) }' && \
    sox '$wav' -n remix 2 stat 2>&1 | awk '/RMS +amplitude/ { exit !(\$3 > 0.01) }'"
stop_pid "$VX_PID"
check "nothing is left to upload or dead-lettered" bash -c "[ -z \"\$(find '$WORK/spool' '$WORK/dead' -type f)\" ]"

# A fresh server's very first utterance in flite's default voice (kal, 8 kHz,
# as a new user tries it): every word is heard, though the recognizer's
# cepstral mean starts from its prior (stt_pocketsphinx cmn_restart).
flite -t "hello how are you" -o "$WORK/kal.wav"
start_voxray "$top_srcdir/conf/voxray.ini" "$WORK/k.log" || not_ok "voxray starts again" "$(cat "$WORK/k.log")"
wait_status "http://127.0.0.1:$VX_PORT/ready" 200 20
"$CLIENT" -u "$URL" --json "$WORK/kal.wav" >"$WORK/kal.json" 2>"$WORK/kal.err"
got=$(jq -r .transcript "$WORK/kal.json")
if [ "$got" = "hello how are you" ]; then ok "a fresh server hears its first utterance (kal, 8 kHz) whole"
else not_ok "a fresh server hears its first utterance (kal, 8 kHz) whole" "got \"$got\""; fi
stop_pid "$VX_PID"
done_testing
