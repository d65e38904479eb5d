"""The load test's flags: who to load, how many, what mix, for how long."""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass, field

OPERATIONS = ("relay", "chat", "hand")


@dataclass(frozen=True, slots=True)
class Options:
    urls: tuple[str, ...]
    target: str = "videoconf"
    participants: int = 20
    rooms: int = 4
    duration: float = 10.0
    messages: int = 0  # stop after this many operations (0: the duration decides)
    rate: float = 100.0  # operations per second offered in total; 0: saturate
    window: int = 4  # saturation: operations in flight per participant
    mix: dict[str, float] = field(default_factory=lambda: {"relay": 1.0})
    churn: float = 0.0  # leaves-and-rejoins per second
    idle: bool = False
    media: int = 0
    connect_concurrency: int = 64
    join_timeout: float = 60.0
    settle: float = 5.0
    seed: int | None = None
    server_pids: tuple[int, ...] = ()
    room_prefix: str = "loadtest"
    name_prefix: str = "Load"
    placement: str = "spread"  # over several URLs: "spread" (round-robin) or "room"


def parse_mix(text: str) -> dict[str, float]:
    """`relay=70,chat=20,hand=10` (weights; a bare name weighs 1)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in OPERATIONS:
            raise argparse.ArgumentTypeError(f"unknown operation {name!r}: use {OPERATIONS}")
        try:
            mix[name] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad weight in {part!r}") from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"negative weight in {part!r}")
    if not mix:
        raise argparse.ArgumentTypeError("the mix is empty")
    return mix


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        nargs="+",
        help="base URL of the deployment (http://host:8080); several URLs (replicas) share "
        "the participants (see --placement)",
    )
    parser.add_argument(
        "--placement",
        choices=("spread", "room"),
        default="spread",
        help="with several URLs: spread each room's participants over them round-robin, so "
        "most connections are forwarded to their room's owner (default), or put each room's "
        "participants on one URL, as the Gateway's hash on the room does",
    )
    parser.add_argument("-n", "--participants", type=_positive_int, default=20)
    parser.add_argument("-r", "--rooms", type=_positive_int, default=4)
    parser.add_argument(
        "-d", "--duration", type=_non_negative, default=10.0, help="seconds of load (default 10)"
    )
    parser.add_argument(
        "-m", "--messages", type=int, default=0, help="stop after this many operations"
    )
    parser.add_argument(
        "--rate",
        type=_non_negative,
        default=100.0,
        help="operations per second offered in total (default 100); 0 saturates: every "
        "participant keeps --window operations in flight",
    )
    parser.add_argument("--window", type=_positive_int, default=4)
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default={"relay": 1.0},
        help="weights of relay (offer/answer/candidate to one peer), chat (broadcast to the "
        "room) and hand (raise and lower); default relay",
    )
    parser.add_argument(
        "--churn",
        type=_non_negative,
        default=0.0,
        help="participants leaving and rejoining "
        "per second (each rejoin waits for the host to admit it)",
    )
    parser.add_argument(
        "--idle", action="store_true", help="join and hold the connections, send nothing"
    )
    parser.add_argument(
        "--media",
        type=int,
        default=0,
        help="this many extra participants are real WebRTC peers (aiortc) with synthetic "
        "audio and video; measures media set-up through the signaling",
    )
    parser.add_argument(
        "--target",
        choices=("videoconf", "relay", "peerjs"),
        default="videoconf",
        help="the server's protocol: videoconf (default), relay (bench/ceiling.py) or peerjs",
    )
    parser.add_argument("--connect-concurrency", type=_positive_int, default=64)
    parser.add_argument("--join-timeout", type=_non_negative, default=60.0)
    parser.add_argument(
        "--settle", type=_non_negative, default=5.0, help="seconds to wait for what is in flight"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="a local server's process id (repeat for replicas): report its memory per "
        "connection and the CPU time it spent, so throughput can be given per CPU-second",
    )
    parser.add_argument(
        "--room-prefix", default=None, help="room names are <prefix>-<n> (default: random)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no live progress")


def from_arguments(args: argparse.Namespace) -> Options:
    return Options(
        urls=tuple(u.rstrip("/") for u in args.url),
        target=args.target,
        participants=args.participants,
        rooms=min(args.rooms, args.participants),
        duration=args.duration,
        messages=args.messages,
        rate=args.rate,
        window=args.window,
        mix=args.mix,
        churn=args.churn,
        idle=args.idle,
        media=args.media,
        connect_concurrency=args.connect_concurrency,
        join_timeout=args.join_timeout,
        settle=args.settle,
        seed=args.seed,
        server_pids=tuple(args.server_pid),
        room_prefix=args.room_prefix or f"loadtest-{secrets.token_hex(3)}",
        placement=args.placement,
    )
