#!/usr/bin/env python3
"""An independent WebRTC client (aiortc, not a browser): posts an SDP offer
to /v1/realtime/calls, opens the oai-events data channel, sends a WAV as
its microphone track and prints one JSON line: the events it got, the
transcript, and how much reply audio arrived on the remote track.

usage: webrtc_aiortc.py BASE_URL WAV [SECONDS]  (run by webrtc_aiortc.sh)
"""
import asyncio
import json
import sys
import time
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


async def main(base, wav, seconds):
    pc = RTCPeerConnection()
    events = []
    got = {"audio_frames": 0, "audio_peak": 0, "t_connected": None, "t_offer": None}
    done = asyncio.Event()

    dc = pc.createDataChannel("oai-events")

    @dc.on("message")
    def on_message(msg):
        ev = json.loads(msg)
        ev["_t"] = time.monotonic()
        events.append(ev)
        if ev.get("type") == "output_audio_buffer.stopped":
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
    answer = await asyncio.get_event_loop().run_in_executor(None, lambda: urllib.request.urlopen(req, timeout=15))
    status, location, sdp = answer.status, answer.headers.get("Location"), answer.read().decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    try:
        await asyncio.wait_for(done.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    req = urllib.request.Request(base + location, method="DELETE")
    deleted = await asyncio.get_event_loop().run_in_executor(None, lambda: urllib.request.urlopen(req, timeout=5).status)
    await pc.close()
    tr = [e.get("transcript") for e in events if e.get("type") == "conversation.item.input_audio_transcription.completed"]
    stop = [e["_t"] for e in events if e.get("type") == "input_audio_buffer.speech_stopped"]
    start = [e["_t"] for e in events if e.get("type") == "output_audio_buffer.started"]
    print(json.dumps({
        "status": status, "location": location, "deleted": deleted,
        "types": [e.get("type") for e in events], "transcripts": tr,
        "audio_frames": got["audio_frames"], "audio_peak": got["audio_peak"],
        "offer_to_connected_ms": round((got["t_connected"] - got["t_offer"]) * 1000) if got["t_connected"] else None,
        "speech_end_to_audio_ms": round((start[0] - stop[0]) * 1000) if stop and start else None,
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 30))
