"""A second ceiling, on another stack: the same no-logic relay as `bench/ceiling.py`, served
by picows (a Cython WebSocket server) with orjson and uvloop. Not a candidate for the
backend as it is (picows serves WebSockets only, the backend's HTTP API shares the port);
measured to show what a change of WebSocket stack would buy.

    python bench/ceiling_picows.py --port 18083
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs, urlsplit

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

clients: dict[str, WSTransport] = {}
rooms: dict[str, dict[str, WSTransport]] = {}


class Relay(WSListener):
    def __init__(self, room_id: str, client_id: str) -> None:
        self.room_id = room_id
        self.client_id = client_id

    def on_ws_connected(self, transport: WSTransport) -> None:
        rooms.setdefault(self.room_id, {})[self.client_id] = transport
        clients[self.client_id] = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = orjson.loads(frame.get_payload_as_bytes())
        payload = message["payload"]
        payload["clientId"] = self.client_id
        if message["event"] == "add_chat":
            data = orjson.dumps(message)
            for other in rooms.get(self.room_id, {}).values():
                other.send(WSMsgType.TEXT, data)
        else:
            target = clients.get(payload["targetClientId"])
            if target is not None:
                target.send(WSMsgType.TEXT, orjson.dumps(message))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        room = rooms.get(self.room_id, {})
        room.pop(self.client_id, None)
        clients.pop(self.client_id, None)
        if not room:
            rooms.pop(self.room_id, None)


def listener(request: WSUpgradeRequest) -> Relay | None:
    url = urlsplit(request.path.decode())
    if not url.path.startswith("/ws/hub/"):
        return None
    return Relay(url.path.removeprefix("/ws/hub/"), parse_qs(url.query)["id"][0])


async def serve(host: str, port: int) -> None:
    server = await ws_create_server(listener, host, port)
    async with server:
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18083)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
