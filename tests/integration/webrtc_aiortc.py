#!/usr/bin/env python3
"""An independent WebRTC client (aiortc, not a browser): posts an SDP offer
to /v1/realtime/calls, opens the oai-events data channel, sends a WAV as
its microphone track and prints one JSON line: the events it got, the
transcript, and how much reply audio arrived on the remote track.

usage: webrtc_aiortc.py [--no-delete] BASE_URL WAV [SECONDS [HOLD]]
  --no-delete  hang up by closing the peer connection only (no DELETE)
  SECONDS  longest wait for the reply to end (default 30)
  HOLD     keep the call up at least this long after the offer (the WAV
           plays on), then hang up (tests/bench/webrtc.sh)
(run by tests/integration/webrtc_aiortc.sh and tests/bench/webrtc.sh)
"""
import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


async def main(base, wav, seconds, hold, delete):
    pc = RTCPeerConnection()
    events = []
    got = {"audio_frames": 0, "audio_peak": 0, "t_connected": None, "t_offer": None,
           "t_stopped": None, "t_track_audio": None}
    done = asyncio.Event()

    dc = pc.createDataChannel("oai-events")

    @dc.on("message")
    def on_message(msg):
        ev = json.loads(msg)
        ev["_t"] = time.monotonic()
        events.append(ev)
        if ev.get("type") == "input_audio_buffer.speech_stopped" and got["t_stopped"] is None:
            got["t_stopped"] = ev["_t"]
        if ev.get("type") == "output_audio_buffer.stopped":
            done.set()

    @dc.on("close")
    def on_close():
        got["dc_closed"] = True
        done.set()

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                got["audio_frames"] += 1
                data = frame.to_ndarray()
                peak = int(abs(data).max()) if data.size else 0
                got["audio_peak"] = max(got["audio_peak"], peak)
                # The reply's first sound on the track after the end of speech.
                if peak > 1000 and got["t_stopped"] is not None and got["t_track_audio"] is None:
                    got["t_track_audio"] = time.monotonic()
        asyncio.ensure_future(read())

    @pc.on("iceconnectionstatechange")
    def on_ice():
        if pc.iceConnectionState == "completed" and got["t_connected"] is None:
            got["t_connected"] = time.monotonic()

    # The track plays the WAV from the moment the call connects, a little
    # before the session listens: the WAV starts with silence.
    player = MediaPlayer(wav)
    pc.addTrack(player.audio)
    await pc.setLocalDescription(await pc.createOffer())
    got["t_offer"] = time.monotonic()
    req = urllib.request.Request(base + "/v1/realtime/calls", data=pc.localDescription.sdp.encode(),
                                 headers={"Content-Type": "application/sdp"}, method="POST")
    loop = asyncio.get_event_loop()

    def http(r, timeout):
        try:
            with urllib.request.urlopen(r, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Location"), resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, None, e.read().decode()

    status, location, deleted = None, None, None
    try:
        status, location, sdp = await loop.run_in_executor(None, http, req, 15)
        if status == 201:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            try:
                await asyncio.wait_for(done.wait(), seconds)
            except asyncio.TimeoutError:
                pass
            if hold > 0 and not got.get("dc_closed"):
                await asyncio.sleep(max(0.0, got["t_offer"] + hold - time.monotonic()))
            if delete:
                req = urllib.request.Request(base + location, method="DELETE")
                deleted = (await loop.run_in_executor(None, http, req, 5))[0]
        else:
            print(sdp, file=sys.stderr)
    finally:
        await pc.close()
        if player.audio:
            player.audio.stop()
    tr = [e.get("transcript") for e in events if e.get("type") == "conversation.item.input_audio_transcription.completed"]
    stop = [e["_t"] for e in events if e.get("type") == "input_audio_buffer.speech_stopped"]
    start = [e["_t"] for e in events if e.get("type") == "output_audio_buffer.started"]
    print(json.dumps({
        "status": status, "location": location, "deleted": deleted, "channel_closed": bool(got.get("dc_closed")),
        "types": [e.get("type") for e in events], "transcripts": tr,
        "audio_frames": got["audio_frames"], "audio_peak": got["audio_peak"],
        "offer_to_connected_ms": round((got["t_connected"] - got["t_offer"]) * 1000) if got["t_connected"] else None,
        "speech_end_to_audio_ms": round((start[0] - stop[0]) * 1000) if stop and start else None,
        "speech_end_to_track_audio_ms": round((got["t_track_audio"] - got["t_stopped"]) * 1000)
        if got["t_track_audio"] else None,
    }))


if __name__ == "__main__":
    args = sys.argv[1:]
    delete = "--no-delete" not in args
    args = [a for a in args if a != "--no-delete"]
    asyncio.run(main(args[0], args[1], float(args[2]) if len(args) > 2 else 30,
                     float(args[3]) if len(args) > 3 else 0, delete))
