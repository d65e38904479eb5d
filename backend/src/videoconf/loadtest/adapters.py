"""What the load generator speaks to: our backend, and the benchmark's two references.

Each adapter signs a participant in, names the WebSocket to open, encodes the generator's
messages and decodes the server's into our vocabulary (`event`, `payload`), so the runner
drives all three the same way:

- `videoconf`: this backend (guest sign-in, rooms, admission by the host, roles, rate limits).
- `relay`: `bench/ceiling.py`, a no-logic relay on the same stack (and its variants) that
  speaks our envelope: the ceiling for the stack.
- `peerjs`: the PeerJS server (npm `peer`): no rooms, no broadcast, its own envelope.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import aiohttp
import orjson

Message = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class Identity:
    client_id: str
    name: str
    token: str = ""


class SignInError(Exception):
    pass


def ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class Videoconf:
    """This backend's protocol (docs/protocol.md)."""

    name: ClassVar[str] = "videoconf"
    rooms: ClassVar[bool] = True  # room_state, admission by the host, hands
    broadcast: ClassVar[bool] = True

    async def sign_in(self, http: aiohttp.ClientSession, url: str, name: str) -> Identity:
        async with http.post(f"{url}/api/auth/guest", json={"displayName": name}) as response:
            if response.status != 200:
                try:
                    code = (await response.json())["error"]["code"]
                except (aiohttp.ContentTypeError, KeyError, TypeError, ValueError):
                    code = ""
                raise SignInError(f"guest sign-in: http {response.status} {code}".strip())
            body = await response.json()
        return Identity(body["clientId"], body["displayName"], body["token"])

    def websocket(self, url: str, room: str, who: Identity) -> tuple[str, dict[str, str]]:
        # The token goes in a header, not the query string, which ends up in access logs; the
        # room goes in the query string too, as the web app's: the Gateway hashes on it.
        return f"{ws_base(url)}/ws/hub/{quote(room)}?room={quote(room)}", {
            "Authorization": f"Bearer {who.token}"
        }

    def encode(self, event: str, payload: dict[str, Any]) -> bytes:
        return orjson.dumps({"event": event, "payload": payload})

    def relay(self, event: str, target: str, body: str) -> bytes:
        if event == "candidate":
            payload = {
                "targetClientId": target,
                "candidate": body,
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            }
        else:
            payload = {"targetClientId": target, "sdp": body, "type": event}
        return orjson.dumps({"event": event, "payload": payload})

    def chat(self, body: str) -> bytes:
        return orjson.dumps({"event": "add_chat", "payload": {"chatContent": body}})

    def leave(self) -> bytes | None:
        return b'{"event":"disconnect","payload":{}}'

    def rejoin_identity(self, who: Identity) -> Identity:
        """Who comes back after leaving: the same participant (its token is still good)."""
        return who

    def decode(self, data: bytes) -> Message:
        message = orjson.loads(data)
        return message["event"], message.get("payload") or {}


class Ceiling(Videoconf):
    """`bench/ceiling.py`: our envelope, no sign-in, no admission, no validation."""

    name: ClassVar[str] = "relay"
    rooms: ClassVar[bool] = False

    async def sign_in(self, http: aiohttp.ClientSession, url: str, name: str) -> Identity:
        return Identity("c_" + secrets.token_urlsafe(12), name)

    def websocket(self, url: str, room: str, who: Identity) -> tuple[str, dict[str, str]]:
        return f"{ws_base(url)}/ws/hub/{quote(room)}?id={quote(who.client_id)}", {}

    def leave(self) -> bytes | None:
        return None


class PeerJS:
    """The PeerJS server's protocol: `?key=&id=&token=`, `{type, dst, payload}` out and
    `{type, src, dst, payload}` in; an `OPEN` message once registered."""

    name: ClassVar[str] = "peerjs"
    rooms: ClassVar[bool] = False
    broadcast: ClassVar[bool] = False
    _types: ClassVar[dict[str, str]] = {
        "offer": "OFFER",
        "answer": "ANSWER",
        "candidate": "CANDIDATE",
    }

    async def sign_in(self, http: aiohttp.ClientSession, url: str, name: str) -> Identity:
        return Identity("p" + secrets.token_hex(8), name, secrets.token_hex(8))

    def websocket(self, url: str, room: str, who: Identity) -> tuple[str, dict[str, str]]:
        query = f"key=peerjs&id={who.client_id}&token={who.token}"
        return f"{ws_base(url)}/peerjs?{query}", {}

    def encode(self, event: str, payload: dict[str, Any]) -> bytes:
        raise NotImplementedError(f"PeerJS has no {event!r}")

    def relay(self, event: str, target: str, body: str) -> bytes:
        # The shape PeerJS clients send (peerjs 1.5): the description or candidate object
        # inside `payload`, with the connection's bookkeeping beside it.
        if event == "candidate":
            inner: dict[str, Any] = {
                "candidate": {"candidate": body, "sdpMid": "0", "sdpMLineIndex": 0}
            }
        else:
            inner = {"sdp": {"type": event, "sdp": body}}
        inner.update(type="media", connectionId="mc_loadtest", browser="chrome")
        return orjson.dumps({"type": self._types[event], "payload": inner, "dst": target})

    def chat(self, body: str) -> bytes:
        raise NotImplementedError("PeerJS has no broadcast")

    def rejoin_identity(self, who: Identity) -> Identity:
        """A new peer id: the PeerJS server hands a returning id (same token) the new socket
        without an `OPEN` while it has not yet seen the old socket close, so a generator
        could not tell when it is back. A PeerJS app that leaves and comes back is a new
        `Peer` anyway."""
        return Identity("p" + secrets.token_hex(8), who.name, secrets.token_hex(8))

    def leave(self) -> bytes | None:
        return None

    def decode(self, data: bytes) -> Message:
        message = orjson.loads(data)
        kind = str(message.get("type", "")).lower()
        inner = message.get("payload") or {}
        if kind in ("offer", "answer"):
            return kind, {"sdp": inner["sdp"]["sdp"], "clientId": message.get("src")}
        if kind == "candidate":
            return kind, {
                "candidate": inner["candidate"]["candidate"],
                "clientId": message.get("src"),
            }
        if kind == "open":
            return "open", {}
        return "error", {"code": kind, "message": str(inner.get("msg", ""))}


ADAPTERS: dict[str, type[Videoconf] | type[PeerJS]] = {
    "videoconf": Videoconf,
    "relay": Ceiling,
    "peerjs": PeerJS,
}
Adapter = Videoconf | PeerJS
