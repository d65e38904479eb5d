"""The same no-logic relay as `bench/ceiling.py` on aiohttp's own WebSocket path (a request,
a handler task and `WebSocketResponse` per connection) + orjson + uvloop: the stack the
backend's WebSockets used before it had an endpoint of its own, kept for comparison.

It speaks our envelope so the load generator drives it like the backend (`--target relay`):
a message with `payload.targetClientId` goes to that client with the sender's id added;
`add_chat` goes to everyone in the room, the sender included. Connect to
`/ws/hub/{room}?id={clientId}`.

    python bench/ceiling_aiohttp.py --port 18084
"""

from __future__ import annotations

import argparse

import orjson
import uvloop
from aiohttp import WSMsgType, web

clients: dict[str, web.WebSocketResponse] = {}
rooms: dict[str, dict[str, web.WebSocketResponse]] = {}


async def hub(request: web.Request) -> web.WebSocketResponse:
    room_id, client_id = request.match_info["room"], request.query["id"]
    ws = web.WebSocketResponse(compress=False, decode_text=False)
    await ws.prepare(request)
    room = rooms.setdefault(room_id, {})
    room[client_id] = clients[client_id] = ws
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            message = orjson.loads(msg.data)
            payload = message["payload"]
            payload["clientId"] = client_id
            if message["event"] == "add_chat":
                data = orjson.dumps(message)
                for other in room.values():
                    await other.send_frame(data, WSMsgType.TEXT)
            else:
                target = clients.get(payload["targetClientId"])
                if target is not None:
                    await target.send_frame(orjson.dumps(message), WSMsgType.TEXT)
    finally:
        room.pop(client_id, None)
        clients.pop(client_id, None)
        if not room:
            rooms.pop(room_id, None)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/ws/hub/{room}", hub)
    uvloop.run(web._run_app(app, host=args.host, port=args.port, print=None, access_log=None))


if __name__ == "__main__":
    main()
