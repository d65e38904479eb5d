"""`--media N`: real WebRTC peers (aiortc) that set up calls through the signaling server.

The media participants join like everyone else (the host admits them) and pair up within
their room: one sends a real offer (audio and a synthetic video pattern), the other answers,
both through the server. What is measured is the set-up a person waits for: offer created
-> both peer connections connected -> the first video frame decoded at the answerer. Each
side then reports `connection_state` to the server as a browser does.

The peers run in the generator's process, so they connect over loopback: host candidates
on 127.0.0.1 only (aioice leaves loopback out by default, so its address lookup is replaced
in this process), no STUN or TURN, whatever the server's network. Video costs CPU (VP8):
keep N small next to a throughput run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from typing import TYPE_CHECKING, Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack
from av import VideoFrame

if TYPE_CHECKING:
    from .runner import Member, Run

SETUP_TIMEOUT = 20.0


def loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


class PatternTrack(VideoStreamTrack):
    """320x240 at 15 fps: a moving gradient (black frames would compress to nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> VideoFrame:
        pts, _ = await self.next_timestamp()
        self.count += 1
        frame = VideoFrame(width=320, height=240, format="yuv420p")
        for index, plane in enumerate(frame.planes):
            plane.update(bytes([(self.count * 3 + index * 60) % 256]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class MediaPeer:
    """A media participant's peer connection and the signaling messages meant for it."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        aioice.ice.get_host_addresses = loopback_only
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(PatternTrack())
        self.first_frame: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.readers: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            reader = asyncio.ensure_future(self._read(track))
            self.readers.add(reader)
            reader.add_done_callback(self.readers.discard)

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            await track.recv()
            if not self.first_frame.done():
                self.first_frame.set_result(None)
            while True:  # keep draining so the decoder keeps up
                await track.recv()

    async def expect(self, event: str) -> dict[str, Any]:
        while True:
            kind, payload = await self.inbox.get()
            if kind == event:
                return payload

    async def connected(self) -> None:
        while self.pc.connectionState != "connected":
            if self.pc.connectionState in ("failed", "closed"):
                raise ConnectionError(f"peer connection {self.pc.connectionState}")
            await asyncio.sleep(0.01)


async def call(run: Run, offerer: MediaPeer, answerer: MediaPeer) -> None:
    """One call set up through the server; records its set-up time or an error."""

    def send(member: Member, data: bytes) -> None:
        if member.wire is not None:
            member.wire.send(data)

    a, b = offerer.member, answerer.member
    assert a.identity is not None
    assert b.identity is not None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(SETUP_TIMEOUT):
            await offerer.pc.setLocalDescription(await offerer.pc.createOffer())
            send(
                a, run.adapter.relay("offer", b.identity.client_id, offerer.pc.localDescription.sdp)
            )
            offer = await answerer.expect("offer")
            await answerer.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await answerer.pc.setLocalDescription(await answerer.pc.createAnswer())
            answer_sdp = answerer.pc.localDescription.sdp
            send(b, run.adapter.relay("answer", a.identity.client_id, answer_sdp))
            answer = await offerer.expect("answer")
            await offerer.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await asyncio.gather(offerer.connected(), answerer.connected(), answerer.first_frame)
    except (TimeoutError, ConnectionError) as exc:
        run.stats.error(f"media: {type(exc).__name__}")
        outcome = "failed"
    else:
        run.stats.delivered("media", time.perf_counter() - started)
        outcome = "connected"
    if run.adapter.rooms:  # tell the server, as a browser does (its success-rate metric)
        for me, peer in ((a, b), (b, a)):
            assert peer.identity is not None
            payload = {"peerClientId": peer.identity.client_id, "state": outcome}
            send(me, run.adapter.encode("connection_state", payload))


async def run_calls(run: Run, peers: list[MediaPeer]) -> None:
    """Pair the media peers within each room and set up every call at once."""
    by_room: dict[str, list[MediaPeer]] = {}
    for peer in peers:
        if peer.member.state == "joined":
            by_room.setdefault(peer.member.room.name, []).append(peer)
    calls = []
    for room_peers in by_room.values():
        for i in range(0, len(room_peers) - 1, 2):
            calls.append(call(run, room_peers[i], room_peers[i + 1]))
    await asyncio.gather(*calls)


async def close(peers: list[MediaPeer]) -> None:
    await asyncio.gather(*(p.pc.close() for p in peers), return_exceptions=True)
