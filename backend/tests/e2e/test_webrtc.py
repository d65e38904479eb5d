"""Two real aiortc peers that find each other only through this server, and exchange media.

Runs inside a loopback-only network namespace (scripts/in-loopback-netns); aioice's host
addresses are pointed at 127.0.0.1, so every ICE pair must be 127.0.0.1 -> 127.0.0.1.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from typing import Any

import aioice.ice
import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp, candidate_to_sdp
from conftest import Client, Server

WAIT = 20.0  # every wait on the peers is bounded: a broken call shows up as a hang
WIDTH, HEIGHT = 320, 240
SAMPLE_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
TONE_HZ = 400  # a whole number of periods per 20 ms frame, so one buffer repeats cleanly


def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """aioice's get_host_addresses, but only loopback (which aioice itself leaves out)."""
    return ["127.0.0.1"] if use_ipv4 else []


class PatternVideoTrack(VideoStreamTrack):
    """320x240 frames whose brightness changes every frame."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma, *chroma = frame.planes
        luma.update(bytes([16 + (self.count * 7) % 220]) * luma.buffer_size)
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.count += 1
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A 400 Hz sine, 48 kHz mono, in 20 ms frames, paced in real time."""

    def __init__(self) -> None:
        super().__init__()
        wave = array.array(
            "h",
            (
                int(8000 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE))
                for i in range(AUDIO_SAMPLES)
            ),
        )
        self.samples = wave.tobytes()
        self.start: float | None = None
        self.pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.start is None:
            self.start = time.monotonic()
        else:
            self.pts += AUDIO_SAMPLES
            await asyncio.sleep(self.start + self.pts / SAMPLE_RATE - time.monotonic())
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        frame.planes[0].update(self.samples)
        frame.pts = self.pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class Peer:
    """One side of the call: a signaling client and an aiortc peer connection."""

    def __init__(self, client: Client) -> None:
        self.client = client
        # No STUN servers: nothing to reach outside loopback (and aiortc's default is Google's).
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.local: list[MediaStreamTrack] = [PatternVideoTrack(), ToneAudioTrack()]
        self.remote: dict[str, MediaStreamTrack] = {}
        self.settled = asyncio.Event()  # connected or failed
        self.states: list[str] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.remote[track.kind] = track

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            self.states.append(self.pc.connectionState)
            if self.pc.connectionState in ("connected", "failed", "closed"):
                self.settled.set()

    @property
    def client_id(self) -> str:
        assert self.client.client_id is not None
        return self.client.client_id

    def add_tracks(self) -> None:
        for track in self.local:
            self.pc.addTrack(track)

    async def send_description(self, peer: Peer) -> None:
        description = self.pc.localDescription
        await self.client.send(
            description.type,
            {"targetClientId": peer.client_id, "sdp": description.sdp, "type": description.type},
        )

    async def apply_description(self, event: str, sender: Peer) -> None:
        relayed = await self.client.expect(event, timeout=WAIT)
        assert relayed["clientId"] == sender.client_id
        assert relayed["targetClientId"] == self.client_id
        assert relayed["type"] == event
        assert relayed["sdp"] == sender.pc.localDescription.sdp
        await asyncio.wait_for(
            self.pc.setRemoteDescription(RTCSessionDescription(relayed["sdp"], relayed["type"])),
            WAIT,
        )

    async def send_candidate(self, peer: Peer) -> RTCIceCandidate:
        """Send the first candidate of our first m-line, the way a browser trickles one."""
        media = SessionDescription.parse(self.pc.localDescription.sdp).media[0]
        candidate = media.ice_candidates[0]
        candidate.sdpMid = media.rtp.muxId
        candidate.sdpMLineIndex = 0
        await self.client.send(
            "candidate",
            {
                "targetClientId": peer.client_id,
                "candidate": "candidate:" + candidate_to_sdp(candidate),
                "sdpMid": candidate.sdpMid,
                "sdpMLineIndex": candidate.sdpMLineIndex,
            },
        )
        return candidate

    async def apply_candidate(self, sender: Peer, sent: RTCIceCandidate) -> None:
        relayed = await self.client.expect("candidate", timeout=WAIT)
        assert relayed["clientId"] == sender.client_id
        assert relayed["targetClientId"] == self.client_id
        assert relayed["candidate"] == "candidate:" + candidate_to_sdp(sent)
        assert (relayed["sdpMid"], relayed["sdpMLineIndex"]) == (sent.sdpMid, 0)
        candidate = candidate_from_sdp(relayed["candidate"].removeprefix("candidate:"))
        candidate.sdpMid = relayed["sdpMid"]
        candidate.sdpMLineIndex = relayed["sdpMLineIndex"]
        assert candidate == sent
        # Already in the SDP (aiortc does not trickle): a harmless duplicate.
        await asyncio.wait_for(self.pc.addIceCandidate(candidate), WAIT)

    def nominated_pairs(self) -> set[tuple[str, str, str, str]]:
        """(local host, remote host, transport, local type) of each nominated ICE pair."""
        pairs = set()
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for pair in connection._nominated.values():
                local, remote = pair.local_candidate, pair.remote_candidate
                pairs.add((local.host, remote.host, local.transport.lower(), local.type))
        return pairs

    async def packets_received(self) -> dict[str, int]:
        report = await asyncio.wait_for(self.pc.getStats(), WAIT)
        return {
            stats.kind: stats.packetsReceived
            for stats in report.values()
            if stats.type == "inbound-rtp"
        }

    async def close(self) -> None:
        await asyncio.wait_for(self.pc.close(), WAIT)
        for track in self.local:
            track.stop()


async def receive_video(track: MediaStreamTrack, count: int = 5) -> list[av.VideoFrame]:
    return [await track.recv() for _ in range(count)]  # type: ignore[misc]


async def receive_audio(track: MediaStreamTrack, count: int = 10) -> list[av.AudioFrame]:
    return [await track.recv() for _ in range(count)]  # type: ignore[misc]


async def admitted_pair(server: Server, room: str) -> tuple[Client, Client]:
    host = await server.connect(room, "Ada")
    await host.state(lambda s: s["you"]["role"] == "host")
    guest = await server.connect(room, "Bob")
    assert (await guest.state())["you"]["role"] == "waiting"
    request = await host.expect("waiting_request")
    assert request["displayName"] == "Bob"
    await host.send("accept_waiting", {"clientId": guest.client_id})
    await guest.expect("accept_waiting")
    await guest.state(lambda s: s["you"]["role"] == "participant")
    await host.state(lambda s: len(s["participants"]) == 2)
    return host, guest


async def metrics_line(server: Server, line: str, timeout: float = 5.0) -> str:
    """The /metrics exposition once it contains `line` (the reports are processed async)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = await server.metrics()
        if line in text.splitlines() or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.05)


@pytest.mark.timeout(60)
async def test_two_aiortc_peers_connect_through_the_relay_and_exchange_media(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", loopback_host_addresses)
    host_client, guest_client = await admitted_pair(server, "webrtc-room")
    host, guest = Peer(host_client), Peer(guest_client)
    try:
        # Offer: host -> server -> guest, plus one candidate trickled through the relay.
        host.add_tracks()
        await asyncio.wait_for(host.pc.setLocalDescription(await host.pc.createOffer()), WAIT)
        await host.send_description(guest)
        host_candidate = await host.send_candidate(guest)
        await guest.apply_description("offer", host)
        await guest.apply_candidate(host, host_candidate)

        # Answer: guest -> server -> host, and a candidate back the same way.
        guest.add_tracks()
        await asyncio.wait_for(guest.pc.setLocalDescription(await guest.pc.createAnswer()), WAIT)
        await guest.send_description(host)
        guest_candidate = await guest.send_candidate(host)
        await host.apply_description("answer", guest)
        await host.apply_candidate(guest, guest_candidate)

        for peer in (host, guest):
            await asyncio.wait_for(peer.settled.wait(), WAIT)
            assert peer.pc.connectionState == "connected", peer.states
            assert peer.pc.iceConnectionState == "completed"
            # Only loopback exists here: the nominated pair is 127.0.0.1 -> 127.0.0.1 over UDP.
            assert peer.nominated_pairs() == {("127.0.0.1", "127.0.0.1", "udp", "host")}
            assert set(peer.remote) == {"video", "audio"}

        # Real media both ways: decoded video at the size sent, and the tone (not silence).
        videos, audios = await asyncio.wait_for(
            asyncio.gather(
                asyncio.gather(*(receive_video(peer.remote["video"]) for peer in (host, guest))),
                asyncio.gather(*(receive_audio(peer.remote["audio"]) for peer in (host, guest))),
            ),
            WAIT,
        )
        for frames in videos:
            assert len(frames) == 5
            assert all((f.width, f.height) == (WIDTH, HEIGHT) for f in frames)
        for samples in audios:
            assert all(f.samples > 0 and f.sample_rate == SAMPLE_RATE for f in samples)
            assert any(any(bytes(f.planes[0])) for f in samples), "only silence arrived"

        # RTP keeps flowing: inbound packet counts grow over about a second.
        before = [await peer.packets_received() for peer in (host, guest)]
        await asyncio.sleep(1.0)
        after = [await peer.packets_received() for peer in (host, guest)]
        for first, then in zip(before, after, strict=True):
            assert set(then) == {"video", "audio"}
            assert all(then[kind] > first[kind] for kind in then), (first, then)

        # Report the outcome through the protocol; the server counts one success per side.
        await host.client.send(
            "connection_state", {"peerClientId": guest.client_id, "state": "connected"}
        )
        await guest.client.send(
            "connection_state", {"peerClientId": host.client_id, "state": "connected"}
        )
        expected = 'webrtc_connection_success_rate_total{relayed="false",status="success"} 2.0'
        exposition = await metrics_line(server, expected)
        assert expected in exposition.splitlines(), [
            line for line in exposition.splitlines() if "webrtc_connection" in line
        ]
        for peer in (host, guest):
            errors: list[dict[str, Any]] = [
                m for m in await peer.client.quiet(0.1) if m["event"] == "error"
            ]
            assert errors == []
    finally:
        for peer in (host, guest):
            await peer.close()
        for client in (host_client, guest_client):
            await client.send("disconnect")
            code, _ = await client.closed()
            assert code == 1000
