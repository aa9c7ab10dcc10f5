#!/bin/bash
# An independent WebRTC client, not a browser: aiortc (Debian's
# python3-aiortc) posts an SDP offer to /v1/realtime/calls, opens the
# oai-events data channel and sends a flite sentence as its microphone
# track to the shipped offline default; the turn comes back as events on
# the channel and as Opus audio on the remote track.
. "$top_srcdir/tests/integration/lib.sh"

# Debian's interpreter: python3-aiortc is installed for it, not for
# whichever python3 is first on PATH.
PY=/usr/bin/python3
if ! "$PY" -c 'import aiortc' 2>/dev/null; then
    echo "1..0 # SKIP aiortc is not importable by $PY (apt-get install python3-aiortc)"
    exit 0
fi

VX_PORT=$(free_port)
export VOXRAY_SERVER_LISTEN="127.0.0.1:$VX_PORT"
export VOXRAY_SERVER_PLUGIN_DIR="$PLUGIN_DIR"
start_voxray "$top_srcdir/conf/voxray.ini" "$WORK/v.log" || not_ok "voxray starts on conf/voxray.ini" "$(cat "$WORK/v.log")"
check "voxray becomes ready on the default configuration" wait_status "http://127.0.0.1:$VX_PORT/ready" 200 20

SAID="hello how are you"
flite -voice slt -t "$SAID" -o "$WORK/raw.wav"
# Leading silence: the track starts playing as the call connects, before
# the session listens.
sox "$WORK/raw.wav" "$WORK/said.wav" pad 1.5 2
check "flite synthesized the sentence" test -s "$WORK/said.wav"

"$PY" "$top_srcdir/tests/integration/webrtc_aiortc.py" "http://127.0.0.1:$VX_PORT" "$WORK/said.wav" 30 \
    >"$WORK/out.json" 2>"$WORK/client.err"
check "the aiortc client runs to the end" [ $? -eq 0 ]
[ -s "$WORK/client.err" ] && diag "$(tail -20 "$WORK/client.err")"
diag "$(cat "$WORK/out.json")"
J="$WORK/out.json"
# jqc FILTER: the client's JSON line satisfies FILTER (false when it printed none).
jqc() { [ -s "$J" ] && jq -e "$@" "$J" >/dev/null; }
check "the offer is answered 201 with a Location naming the call" \
    jqc '.status == 201 and (.location | test("^/v1/realtime/calls/rtc_"))'
check "session.created arrives first on oai-events" jqc '.types[0] == "session.created"'
check "the sentence is transcribed exactly" jqc --arg s "$SAID" '.transcripts[0] == $s'
check "a response completes" jqc '.types | index("response.done") != null'
check "reply audio is played out (output_audio_buffer.started, then stopped)" \
    jqc '(.types | index("output_audio_buffer.started")) as $a | (.types | index("output_audio_buffer.stopped")) as $b | $a != null and $b != null and $a < $b'
check "the remote track carries non-silent Opus audio" jqc '.audio_frames > 50 and .audio_peak > 1000'
check "DELETE on the call answers 200" jqc '.deleted == 200'
metrics() { curl -s "http://127.0.0.1:$VX_PORT/metrics" >"$WORK/m.txt"; }
mv_() { metric_value "$1" <"$WORK/m.txt"; }
i=0
metrics
while [ "$(mv_ webrtc_peer_connections_active)" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); metrics; done
check "the call is over (webrtc_peer_connections_active 0)" [ "$(mv_ webrtc_peer_connections_active)" = 0 ]
check "it was counted connected, then closed" \
    [ "$(mv_ 'webrtc_peer_connections_total{state="connected"}')/$(mv_ 'webrtc_peer_connections_total{state="closed"}')" = 1/1 ]
fails=$(awk '/^webrtc_connection_failures_total\{/ { s += $2 } END { print s + 0 }' "$WORK/m.txt")
check "no connection failure is counted" [ "$fails" = 0 ]
check "bytes went both ways" awk '/^webrtc_bytes_(sent|received)_total / && $2 > 10000 { n++ } END { exit n != 2 }' "$WORK/m.txt"
check "the turn fed the pipeline families" awk '/^voxray_turn_latency_seconds_count / { exit !($2 >= 1) }' "$WORK/m.txt"

# The client hangs up by closing its peer connection, no DELETE: a normal
# hang-up (closed), seen at once, not after [webrtc] rtp_timeout (20 s).
"$PY" "$top_srcdir/tests/integration/webrtc_aiortc.py" --no-delete "http://127.0.0.1:$VX_PORT" "$WORK/said.wav" 30 \
    >"$WORK/out2.json" 2>"$WORK/client2.err"
check "a second call completes its turn" jq -e '.transcripts[0] != null and .deleted == null' "$WORK/out2.json"
i=0
metrics
while [ "$(mv_ webrtc_peer_connections_active)" != 0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); metrics; done
check "closing the peer connection ends the call within 5 s" [ "$(mv_ webrtc_peer_connections_active)" = 0 ]
check "... counted closed, not as a failure" \
    [ "$(mv_ 'webrtc_peer_connections_total{state="closed"}')/$(mv_ 'webrtc_peer_connections_total{state="failed"}')" = 2/0 ]
check "the server log says the peer closed" grep -q 'webrtc call ended .*reason=peer_closed' "$WORK/v.log"
stop_pid "$VX_PID"
check "voxray stops cleanly" [ $? -eq 0 ]
done_testing
