"""Message bodies of realistic sizes, each carrying a sequence number the receiver reads
back to match a delivery to its send.

An offer or answer is an SDP of 2-6 KB (a browser's audio+video offer is about 4 KB), an
ICE candidate about 120 bytes, a chat line 40-200 characters. Negotiations send about one
offer, one answer and eight candidates, so a relay message averages about 1 KB.
"""

from __future__ import annotations

import random
from typing import Final

RELAY_KINDS: Final = ("offer", "answer", "candidate")
RELAY_WEIGHTS: Final = (1, 1, 8)
SDP_SIZE: Final = (2000, 6000)
CHAT_SIZE: Final = (40, 200)

_SDP_HEAD: Final = "v=0\r\no=- "
_SDP_REST: Final = (
    " 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
)
_SDP_LINE: Final = "a=rtcp-fb:96 goog-remb\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
_FILLER: Final = _SDP_LINE * (SDP_SIZE[1] // len(_SDP_LINE) + 1)
_CANDIDATE_HEAD: Final = "candidate:"
_WORDS: Final = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 4


def sdp(seq: int, size: int) -> str:
    head = f"{_SDP_HEAD}{seq}{_SDP_REST}"
    return head + _FILLER[: max(0, size - len(head))]


def candidate(seq: int) -> str:
    port = 10000 + seq % 55000
    return (
        f"{_CANDIDATE_HEAD}{seq} 1 udp 2122260223 127.0.0.1 {port} typ host "
        "generation 0 ufrag lT3x network-id 1 network-cost 10"
    )


def chat(seq: int, size: int) -> str:
    head = f"{seq} "
    return head + _WORDS[: max(1, size - len(head))].strip()


def relay_body(kind: str, seq: int, rng: random.Random) -> str:
    if kind == "candidate":
        return candidate(seq)
    return sdp(seq, rng.randint(*SDP_SIZE))


def seq_of(event: str, payload: dict[str, object]) -> int | None:
    """The sequence number in a delivered message, or None when it is not one of ours."""
    try:
        if event == "candidate":
            body = payload["candidate"]
            assert isinstance(body, str)
            return int(body[10 : body.index(" ", 10)])
        if event in ("offer", "answer"):
            body = payload["sdp"]
            assert isinstance(body, str)
            return int(body[9 : body.index(" ", 9)])
        if event == "add_chat":
            body = payload["chatContent"]
            assert isinstance(body, str)
            return int(body[: body.index(" ")])
    except (KeyError, ValueError, AssertionError):
        return None
    return None
