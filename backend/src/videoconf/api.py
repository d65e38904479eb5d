"""HTTP routes: health, metrics, REST API, and the WebSocket upgrade."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import WSMsgType, web

from .auth import Authenticator, AuthError, Identity, clean_display_name
from .cluster import ClusterUnavailable, Placement
from .cluster.forward import ASSERTION_HEADER, Forwarder, verify_assertion
from .config import Settings
from .hub import Hub
from .metrics import CONTENT_TYPE, Metrics
from .openapi import document as openapi_document
from .protocol import CLOSE_GRACE, MAX_CHAT_LENGTH, ROOM_ID_PATTERN, Role, encode
from .turn import ice_servers, ice_servers_payload, turn_expiry
from .wsio import ClientSocket, Frames, FrameWriter

SUBPROTOCOL: Final = "videoconf.v1"
ROOM_ID: Final = re.compile(ROOM_ID_PATTERN.strip("^$"))
LOCAL_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

settings_key: Final = web.AppKey("settings", Settings)
hub_key: Final = web.AppKey("hub", Hub)
metrics_key: Final = web.AppKey("metrics", Metrics)
auth_key: Final = web.AppKey("auth", Authenticator)
forwarder_key: Final = web.AppKey("forwarder", Forwarder)

routes = web.RouteTableDef()


class GuestRequest(msgspec.Struct, rename="camel"):
    display_name: str


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer` header (`headers` looked up in lower case)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def identify(request: web.Request, *, required: bool) -> Identity | None:
    token = bearer(request.headers)
    if token is None:
        if required:
            raise AuthError("missing_token", "sign in first: Authorization: Bearer <token>")
        return None
    return await request.app[auth_key].verify(token)


def token_response(token: str, identity: Identity) -> web.Response:
    return web.json_response(
        {
            "token": token,
            "clientId": identity.client_id,
            "displayName": identity.display_name,
            "expiresAt": identity.expires_at,
        }
    )


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    hub = request.app[hub_key]
    if hub.draining:
        return web.json_response({"status": "draining"}, status=503)
    if not hub.cluster.ready():
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[metrics_key].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


@routes.post("/api/auth/guest")
async def guest_sign_in(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    if not settings.guest_auth:
        return error(403, "guest_auth_disabled", "guest sign-in is turned off on this server")
    try:
        body = msgspec.json.decode(await request.read(), type=GuestRequest)
        token, identity = request.app[auth_key].issue_guest_token(body.display_name)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return error(400, "invalid_request", f'expected {{"displayName": string}}: {exc}')
    except ValueError as exc:
        return error(400, "invalid_display_name", str(exc))
    return token_response(token, identity)


@routes.post("/api/auth/refresh")
async def refresh(request: web.Request) -> web.Response:
    identity = await identify(request, required=True)
    assert identity is not None
    if identity.provider != "guest":
        return error(400, "not_a_guest_token", "refresh Auth0 tokens with Auth0")
    token, fresh = request.app[auth_key].refresh_guest_token(identity)
    return token_response(token, fresh)


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    await identify(request, required=True)
    room_id = await request.app[hub_key].create_room()
    if room_id is None:
        return error(503, "server_busy", "this server holds as many rooms as it may")
    return web.json_response({"roomId": room_id, "path": f"/{room_id}"}, status=201)


@routes.get("/api/rooms/{room_id}")
async def room_info(request: web.Request) -> web.Response:
    room_id = request.match_info["room_id"]
    if not ROOM_ID.fullmatch(room_id):
        return error(400, "invalid_room_id", "room ids are 3-64 letters, digits, - or _")
    identity = await identify(request, required=False)
    hub = request.app[hub_key]
    if room_id not in hub.rooms:
        address = await hub.cluster.owner_address(room_id)
        if address is not None:
            return await ask_owner(request, address)
    info = hub.room_info(room_id, identity.client_id if identity else None)
    body: dict[str, Any] = {
        "roomId": info.room_id,
        "exists": info.exists,
        "participantCount": info.participants,
    }
    if info.names is not None:
        body["participants"] = info.names
    return web.json_response(body)


async def ask_owner(request: web.Request, address: str) -> web.Response:
    """Another replica owns the room: it answers, with the caller's token."""
    headers = {}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(f"{address}{request.rel_url.path}", headers=headers) as reply,
        ):
            return web.Response(
                body=await reply.read(), status=reply.status, content_type="application/json"
            )
    except (aiohttp.ClientError, OSError, TimeoutError):
        return error(503, "unavailable", "the room's server cannot be reached right now")


@routes.get("/api/config")
async def client_config(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    # TURN credentials only for a signed-in participant; a token that is sent must be valid.
    identity = await identify(request, required=False)
    client_id = identity.client_id if identity is not None else None
    now = time.time()
    return web.json_response(
        {
            "auth": {
                "guest": settings.guest_auth,
                "auth0": {
                    "domain": settings.auth0_domain,
                    "clientId": settings.auth0_client_id,
                    "audience": settings.auth0_audience,
                }
                if settings.auth0_enabled
                else None,
            },
            "iceServers": ice_servers(settings, client_id, now),
            "iceServersExpiresAt": turn_expiry(settings, client_id, now),
            "websocket": {
                "path": "/ws/hub/{roomId}",
                "subprotocol": SUBPROTOCOL,
                "url": settings.public_ws_url,
            },
            "limits": {
                "maxChatLength": MAX_CHAT_LENGTH,
                "maxMessageBytes": settings.ws_max_message_bytes,
                "rateLimit": settings.ws_rate_limit,
                "rateBurst": settings.ws_rate_burst,
                "maxRoomSize": settings.max_room_size,
                "chatHistory": settings.chat_history,
                "reconnectGraceSeconds": settings.reconnect_grace,
            },
        },
        # Per-caller credentials: no cache, shared or private, may keep or reuse them.
        headers={"Cache-Control": "no-store"},
    )


def origin_allowed(origin: str | None, host: str, settings: Settings) -> bool:
    """Whether a page from `origin` may open a WebSocket here (`host`: the Host header)."""
    if origin is None:
        return True  # not a browser; origin checks guard against cross-site pages only
    if origin in settings.allowed_origins or "*" in settings.allowed_origins:
        return True
    if settings.allowed_origins or settings.production:
        return False
    hostname = urlsplit(origin).hostname or ""
    # Development default: any local page, or a page served from this very host.
    return hostname in LOCAL_HOSTS or hostname == (urlsplit(f"//{host}").hostname or "")


def websocket_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    token = query.get("token")
    if token:
        return token
    for value in headers.get("sec-websocket-protocol", "").split(","):
        value = value.strip()
        if value.count(".") == 2:
            return value
    return bearer(headers)


class Refused(Exception):
    """A WebSocket upgrade turned down, with the HTTP answer's status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class Admission:
    """Who connects to which room, and where the room is served."""

    room_id: str
    client_id: str
    display_name: str
    ticket_role: Role | None
    placement: Placement


async def admit(
    app: web.Application, room_id: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> Admission:
    """The checks of a `/ws/hub/{room_id}` upgrade, for aiohttp's handler (`websocket`) and
    for the endpoint's own (`endpoint.Front`). `headers` are looked up in lower case.
    Raises Refused or AuthError."""
    settings, hub = app[settings_key], app[hub_key]
    if not ROOM_ID.fullmatch(room_id):
        raise Refused(400, "invalid_room_id", "room ids are 3-64 letters, digits, - or _")
    if hub.draining:
        raise Refused(503, "draining", "this server is shutting down; connect again")
    if not hub.accepts(room_id):
        raise Refused(503, "server_busy", "this server holds as many rooms as it may")
    if not origin_allowed(headers.get("origin"), headers.get("host", ""), settings):
        raise Refused(403, "origin_not_allowed", "this page's origin may not connect")
    token = websocket_token(query, headers)
    if token is None:
        raise Refused(401, "missing_token", "pass a token as ?token= or a WebSocket subprotocol")
    identity = await app[auth_key].verify(token)
    display_name = identity.display_name
    if display_name is None:
        try:
            display_name = clean_display_name(query.get("displayName", ""))
        except ValueError as exc:
            raise Refused(400, "invalid_display_name", str(exc)) from None
    ticket_role = None
    ticket = query.get("ticket")
    if ticket:
        # A ticket that does not check out is ignored: the person simply waits to be let in.
        role_name = app[auth_key].verify_ticket(ticket, identity.client_id, room_id)
        if role_name is not None and role_name.upper() in Role.__members__:
            ticket_role = Role[role_name.upper()]
    try:
        placement = await hub.cluster.place(room_id, hub.clock(), hub.limits)
    except ClusterUnavailable:
        raise Refused(
            503, "unavailable", "rooms cannot be reached right now; connect again"
        ) from None
    if placement.local and placement.room is not None:
        hub.adopt(placement.room)
    return Admission(room_id, identity.client_id, display_name, ticket_role, placement)


@routes.get("/ws/hub/{room_id}")
async def websocket(request: web.Request) -> web.StreamResponse:
    """The upgrades the endpoint hands over (see endpoint.py): one on a kept-alive
    connection, one it turned down (this answers why), or one for a room another replica
    owns (this forwards it)."""
    try:
        entry = await admit(
            request.app, request.match_info["room_id"], request.query, request.headers
        )
    except Refused as refused:
        return error(refused.status, refused.code, refused.message)
    if not entry.placement.local:
        assert entry.placement.address is not None
        return await forward(
            request,
            entry.placement.address,
            entry.room_id,
            entry.client_id,
            entry.display_name,
            entry.ticket_role,
        )
    return await serve_here(
        request, entry.room_id, entry.client_id, entry.display_name, entry.ticket_role
    )


def ice_servers_message(settings: Settings, client_id: str) -> bytes:
    """The first message on every connection: STUN, and TURN credentials minted now for
    `client_id` (see `serve_here`)."""
    return encode("ice_servers", ice_servers_payload(settings, client_id, time.time()))


def client_gone() -> web.Response:
    """The answer to a client that left during its WebSocket upgrade: nobody will read it
    (aiohttp finds the connection closed and logs nothing), but a handler must return one."""
    return web.Response(status=400, text="client closed the connection")


def client_socket(settings: Settings, forwarded: bool = False) -> web.WebSocketResponse:
    """A client's socket: a `ClientSocket` when the hub serves it here (the hub keeps its
    heartbeat: Hub.heartbeat), aiohttp's own when its frames are piped to another replica."""
    return (web.WebSocketResponse if forwarded else ClientSocket)(
        protocols=(SUBPROTOCOL,),
        compress=False,  # permessage-deflate multiplies memory per connection 4-8x
        max_msg_size=settings.ws_max_message_bytes * 4,
        heartbeat=(settings.ws_heartbeat or None) if forwarded else None,
        decode_text=False,
        timeout=CLOSE_GRACE,  # how long a close we start waits for the client's (then cut)
    )


async def serve_here(
    request: web.Request,
    room_id: str,
    client_id: str,
    display_name: str,
    ticket_role: Role | None,
    *,
    counted: bool = True,
) -> web.StreamResponse:
    """This replica owns the room: run the connection in its hub.

    The first message on the connection is `ice_servers`: STUN, and TURN with credentials
    minted now for `client_id` (any authenticated connection, admitted or waiting, as
    `/api/config` gives them to any signed-in caller). It is sent here, before the hub takes
    the socket, so it comes before `room_state` and a rejoining client builds its peer
    connections with fresh credentials. A connection forwarded by an edge replica gets it
    from here too (the owner): the edge vouched for `client_id`, every replica has the same
    TURN settings, and the edge passes the owner's frames through in order."""
    settings = request.app[settings_key]
    socket = client_socket(settings)
    if not socket.can_prepare(request).ok:
        return error(400, "not_a_websocket", "this path takes WebSocket upgrades only")
    try:
        await socket.prepare(request)
    except ConnectionResetError:
        return client_gone()  # nothing joined; nothing to log
    try:
        # Not kept in a variable: this frame lives as long as the connection, and orjson's
        # output holds a 4 KiB buffer whatever its length.
        await socket.send_frame(ice_servers_message(settings, client_id), WSMsgType.TEXT)
    except (ConnectionError, RuntimeError):
        return socket  # gone already; nothing joined, nothing to clean up
    transport, hub = request.transport, request.app[hub_key]
    connection = hub.open(
        socket,
        room_id,
        client_id,
        display_name,
        WSMsgType.TEXT,
        abort=transport.abort if transport is not None else None,
        ticket_role=ticket_role,
        counted=counted,
        write_now=FrameWriter(transport, hub.outbox) if transport is not None else None,
    )
    await hub.serve(connection, Frames(socket))
    return socket


async def forward(
    request: web.Request,
    address: str,
    room_id: str,
    client_id: str,
    display_name: str,
    ticket_role: Role | None,
) -> web.StreamResponse:
    """Another replica owns the room: carry this client's frames to it and back."""
    hub, forwarder = request.app[hub_key], request.app[forwarder_key]
    socket = client_socket(request.app[settings_key], forwarded=True)
    if not socket.can_prepare(request).ok:
        return error(400, "not_a_websocket", "this path takes WebSocket upgrades only")
    try:
        owner = await forwarder.connect(
            address,
            room_id,
            client_id,
            display_name,
            ticket_role.name.lower() if ticket_role else None,
        )
    except (TimeoutError, aiohttp.ClientError, OSError):
        return error(503, "unavailable", "the room's server cannot be reached; connect again")
    try:
        await socket.prepare(request)
    except ConnectionResetError:
        await owner.close()
        return client_gone()
    hub.metrics.connections.inc()
    transport = request.transport
    try:
        await forwarder.pipe(socket, owner, transport.abort if transport is not None else None)
    finally:
        hub.metrics.connections.dec()
    return socket


@routes.get("/internal/ws/{room_id}")
async def internal_websocket(request: web.Request) -> web.StreamResponse:
    """A connection forwarded by another replica, which has checked the client already."""
    settings, hub = request.app[settings_key], request.app[hub_key]
    room_id = request.match_info["room_id"]
    claims = verify_assertion(
        settings.jwt_secret, request.headers.get(ASSERTION_HEADER, ""), room_id
    )
    if claims is None or not ROOM_ID.fullmatch(room_id):
        return error(401, "invalid_assertion", "not a replica of this platform")
    if hub.draining:
        return error(503, "draining", "this server is shutting down; connect again")
    try:
        placement = await hub.cluster.place(room_id, hub.clock(), hub.limits)
    except ClusterUnavailable:
        return error(503, "unavailable", "rooms cannot be reached right now; connect again")
    if not placement.local:
        return error(409, "not_the_owner", "the room has moved; connect again")
    if placement.room is not None:
        hub.adopt(placement.room)
    role_name = claims.get("ticketRole")
    ticket_role = (
        Role[role_name.upper()]
        if isinstance(role_name, str) and role_name.upper() in Role.__members__
        else None
    )
    return await serve_here(
        request, room_id, str(claims["sub"]), str(claims["name"]), ticket_role, counted=False
    )


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure is a JSON body with a code and a message, never a traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except AuthError as exc:
        status = 503 if exc.code == "auth_unavailable" else 401
        return error(status, exc.code, exc.message)
    except ClusterUnavailable:
        return error(503, "unavailable", "rooms cannot be reached right now; try again")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
