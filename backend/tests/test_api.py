"""The REST part of the backend, over real HTTP against a real server on a loopback port."""

from __future__ import annotations

import base64
import os
import re
import time
from typing import Any

import aiohttp
import pytest
from conftest import Server, ServerFactory

from videoconf.api import hub_key

ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
JSON = "application/json"


# --------------------------------------------------------------------------- helpers


async def call(
    server: Server,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request; returns (status, JSON body or None, response)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with server.session.request(
        method, f"{server.url}{path}", headers=all_headers, **kwargs
    ) as response:
        await response.read()
        body = await response.json() if response.content_type == JSON else None
        return response.status, body, response


def assert_error(body: Any, code: str | None = None) -> None:
    """The one error shape: {"error": {"code": str, "message": str}}."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


async def new_room(server: Server, token: str) -> str:
    status, body, _ = await call(server, "POST", "/api/rooms", token=token)
    assert status == 201, body
    room_id: str = body["roomId"]
    return room_id


def upgrade_headers() -> dict[str, str]:
    return {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Protocol": "videoconf.v1",
    }


# --------------------------------------------------------------------------- health


async def test_health(server: Server) -> None:
    status, body, response = await call(server, "GET", "/health")
    assert status == 200
    assert response.content_type == JSON
    assert body == {"status": "healthy"}


async def test_ready_then_draining(server: Server) -> None:
    status, body, _ = await call(server, "GET", "/ready")
    assert status == 200
    assert body == {"status": "ready"}

    server.app[hub_key].draining = True
    status, body, _ = await call(server, "GET", "/ready")
    assert status == 503
    assert body == {"status": "draining"}
    # Liveness is not readiness: the process is still healthy while it drains.
    status, body, _ = await call(server, "GET", "/health")
    assert (status, body) == (200, {"status": "healthy"})


async def test_websocket_upgrade_refused_while_draining(server: Server) -> None:
    token = (await server.guest("Dana"))["token"]
    server.app[hub_key].draining = True

    status, body, _ = await call(
        server, "GET", f"/ws/hub/room-x?token={token}", headers=upgrade_headers()
    )
    assert status == 503
    assert_error(body, "draining")

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await server.connect("room-x", token=token)
    assert refused.value.status == 503
    assert server.app[hub_key].rooms == {}


# --------------------------------------------------------------------------- metrics

METRIC_TYPES = {
    "websocket_connections_total": "gauge",
    "webrtc_rooms_active": "gauge",
    "room_participants": "histogram",
    "websocket_events_total": "counter",
    "message_processing_duration_seconds": "histogram",
    "webrtc_connection_success_rate_total": "counter",
}


async def test_metrics_exposition_names_and_types(server: Server) -> None:
    async with server.session.get(f"{server.url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        # Prometheus text exposition: a version parameter and UTF-8.
        assert "version=" in response.headers["Content-Type"]
        assert "charset=utf-8" in response.headers["Content-Type"].lower()
        text = await response.text()
    lines = text.splitlines()
    for name, kind in METRIC_TYPES.items():
        assert f"# TYPE {name} {kind}" in lines, name
        assert any(line.startswith(f"# HELP {name} ") for line in lines), name
    # Pre-created series exist from the start, so rate() has a zero to start from.
    assert 'webrtc_connection_success_rate_total{relayed="false",status="success"} 0.0' in lines
    assert "websocket_connections_total 0.0" in lines
    assert "webrtc_rooms_active 0.0" in lines
    assert 'room_participants_bucket{le="+Inf"} 0.0' in lines
    assert 'message_processing_duration_seconds_count{event_type="ping"} 0.0' in lines


async def test_metrics_count_events_and_carry_no_ids(server: Server) -> None:
    host = await server.guest("Hana")
    room_id = await new_room(server, host["token"])
    client = await server.connect(room_id, token=host["token"])
    state = await client.state()
    assert state["you"]["role"] == "host"
    before = await server.metrics()
    assert not any(line.startswith("websocket_events_total{") for line in before.splitlines())

    await client.send("ping", {"timestamp": 1.0})
    pong = await client.expect("pong")
    assert pong["timestamp"] == 1.0

    text = await server.metrics()
    lines = text.splitlines()
    assert "# TYPE websocket_events_total counter" in lines
    assert 'websocket_events_total{event_type="ping",status="ok"} 1.0' in lines
    assert 'message_processing_duration_seconds_count{event_type="ping"} 1.0' in lines
    assert "websocket_connections_total 1.0" in lines
    assert "webrtc_rooms_active 1.0" in lines
    assert "room_participants_count 1.0" in lines

    # Bounded labels: neither the room id nor the client id is ever a label value.
    assert room_id not in text
    assert host["clientId"] not in text
    assert host["displayName"] not in text
    await client.ws.close()


# --------------------------------------------------------------------------- guest sign-in


async def test_guest_sign_in(server: Server) -> None:
    before = int(time.time())
    status, body, response = await call(
        server, "POST", "/api/auth/guest", json={"displayName": "  Ada   Lovelace "}
    )
    assert status == 200
    assert response.content_type == JSON
    assert set(body) == {"token", "clientId", "displayName", "expiresAt"}
    assert body["token"].count(".") == 2
    assert body["clientId"].startswith("g_")
    assert body["displayName"] == "Ada Lovelace"  # trimmed, inner whitespace collapsed
    assert isinstance(body["expiresAt"], int)
    assert body["expiresAt"] > before + 60
    other = await server.guest("Ada Lovelace")
    assert other["clientId"] != body["clientId"]


@pytest.mark.parametrize(
    ("data", "headers", "code"),
    [
        pytest.param(b"", {}, "invalid_request", id="missing-body"),
        pytest.param(b"displayName=Ada", {}, "invalid_request", id="not-json"),
        pytest.param(b"{", {"Content-Type": JSON}, "invalid_request", id="truncated-json"),
        pytest.param(b"{}", {"Content-Type": JSON}, "invalid_request", id="no-display-name"),
        pytest.param(b"[]", {"Content-Type": JSON}, "invalid_request", id="array"),
        pytest.param(b"null", {"Content-Type": JSON}, "invalid_request", id="null"),
        pytest.param(
            b'{"displayName": 42}', {"Content-Type": JSON}, "invalid_request", id="number"
        ),
        pytest.param(
            b'{"displayName": ""}', {"Content-Type": JSON}, "invalid_display_name", id="empty"
        ),
        pytest.param(
            b'{"displayName": "   "}', {"Content-Type": JSON}, "invalid_display_name", id="blank"
        ),
        pytest.param(
            b'{"displayName": "' + b"a" * 51 + b'"}',
            {"Content-Type": JSON},
            "invalid_display_name",
            id="51-chars",
        ),
        pytest.param(
            b'{"displayName": "Ada\\u0000"}',
            {"Content-Type": JSON},
            "invalid_display_name",
            id="nul",
        ),
        pytest.param(
            b'{"displayName": "Ada\\u0007Bob"}',
            {"Content-Type": JSON},
            "invalid_display_name",
            id="bell",
        ),
        pytest.param(
            b'{"displayName": "Ada\\u202eBob"}',
            {"Content-Type": JSON},
            "invalid_display_name",
            id="bidi-override",
        ),
    ],
)
async def test_guest_sign_in_refuses_bad_bodies(
    server: Server, data: bytes, headers: dict[str, str], code: str
) -> None:
    status, body, response = await call(
        server, "POST", "/api/auth/guest", data=data, headers=headers
    )
    assert status == 400, body
    assert response.content_type == JSON
    assert_error(body, code)


async def test_guest_sign_in_accepts_exactly_50_chars(server: Server) -> None:
    status, body, _ = await call(server, "POST", "/api/auth/guest", json={"displayName": "a" * 50})
    assert status == 200, body
    assert body["displayName"] == "a" * 50


async def test_guest_sign_in_body_over_16_kib(server: Server) -> None:
    data = b'{"displayName": "' + b"a" * (16 * 1024) + b'"}'
    status, body, response = await call(
        server, "POST", "/api/auth/guest", data=data, headers={"Content-Type": JSON}
    )
    assert status == 413
    assert response.content_type == JSON
    assert_error(body)


async def test_guest_sign_in_disabled(make_server: ServerFactory) -> None:
    # An Auth0 tenant that is never contacted here: http:// is accepted for the domain.
    server = await make_server(
        guest_auth=False, auth0_domain="http://127.0.0.1:9", auth0_audience="x"
    )
    status, body, _ = await call(server, "POST", "/api/auth/guest", json={"displayName": "Ada"})
    assert status == 403
    assert_error(body, "guest_auth_disabled")
    status, body, _ = await call(server, "GET", "/api/config")
    assert status == 200
    assert body["auth"]["guest"] is False
    assert body["auth"]["auth0"] == {
        "domain": "http://127.0.0.1:9",
        "clientId": None,
        "audience": "x",
    }


async def test_guest_token_from_another_server_is_refused(make_server: ServerFactory) -> None:
    one = await make_server()
    two = await make_server(jwt_secret="another-secret-" + "y" * 32)
    token = (await one.guest("Ada"))["token"]
    status, body, _ = await call(two, "POST", "/api/rooms", token=token)
    assert status == 401
    assert_error(body, "invalid_token")


# --------------------------------------------------------------------------- refresh


async def test_refresh(server: Server) -> None:
    signed_in = await server.guest("Ada")
    status, body, _ = await call(server, "POST", "/api/auth/refresh", token=signed_in["token"])
    assert status == 200, body
    assert set(body) == {"token", "clientId", "displayName", "expiresAt"}
    assert body["clientId"] == signed_in["clientId"]
    assert body["displayName"] == "Ada"
    assert body["expiresAt"] >= signed_in["expiresAt"]
    # The refreshed token works as a token in its own right.
    status, again, _ = await call(server, "POST", "/api/auth/refresh", token=body["token"])
    assert status == 200
    assert again["clientId"] == signed_in["clientId"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        pytest.param(None, "missing_token", id="none"),
        pytest.param("Bearer ", "missing_token", id="empty-bearer"),
        pytest.param("Bearer garbage", "invalid_token", id="garbage"),
        pytest.param("Bearer a.b.c", "invalid_token", id="three-garbage-parts"),
        pytest.param("Basic dXNlcjpwYXNz", "missing_token", id="basic"),
    ],
)
async def test_refresh_refused(server: Server, authorization: str | None, code: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, body, _ = await call(server, "POST", "/api/auth/refresh", headers=headers)
    assert status == 401
    assert_error(body, code)


# --------------------------------------------------------------------------- rooms


async def test_create_room_needs_a_token(server: Server) -> None:
    status, body, _ = await call(server, "POST", "/api/rooms")
    assert status == 401
    assert_error(body, "missing_token")
    status, body, _ = await call(server, "POST", "/api/rooms", token="garbage")
    assert status == 401
    assert_error(body, "invalid_token")
    assert server.app[hub_key].rooms == {}


async def test_create_room(server: Server) -> None:
    token = (await server.guest("Ada"))["token"]
    status, body, response = await call(server, "POST", "/api/rooms", token=token)
    assert status == 201
    assert response.content_type == JSON
    assert set(body) == {"roomId", "path"}
    assert ROOM_ID.match(body["roomId"])
    assert body["path"] == f"/{body['roomId']}"
    second = await new_room(server, token)
    assert second != body["roomId"]
    assert ROOM_ID.match(second)


async def test_room_info_lifecycle(server: Server) -> None:
    host = await server.guest("Hana Host")
    room_id = await new_room(server, host["token"])

    status, body, _ = await call(server, "GET", f"/api/rooms/{room_id}")
    assert status == 200
    assert body == {"roomId": room_id, "exists": True, "participantCount": 0}

    client = await server.connect(room_id, token=host["token"])
    await client.state(lambda s: s["you"]["role"] == "host")

    # Anonymous: a count, no names.
    status, body, _ = await call(server, "GET", f"/api/rooms/{room_id}")
    assert status == 200
    assert body == {"roomId": room_id, "exists": True, "participantCount": 1}

    # The host, a member: names too.
    status, body, _ = await call(server, "GET", f"/api/rooms/{room_id}", token=host["token"])
    assert status == 200
    assert body["participantCount"] == 1
    assert body["participants"] == [{"clientId": host["clientId"], "displayName": "Hana Host"}]

    # Someone signed in but not in the room: no names.
    stranger = await server.guest("Stranger")
    status, body, _ = await call(server, "GET", f"/api/rooms/{room_id}", token=stranger["token"])
    assert status == 200
    assert body == {"roomId": room_id, "exists": True, "participantCount": 1}

    # Someone in the waiting room is not yet admitted: still no names, and not counted.
    waiting = await server.guest("Wanda")
    waiter = await server.connect(room_id, token=waiting["token"])
    await waiter.state(lambda s: s["you"]["role"] == "waiting")
    status, body, _ = await call(server, "GET", f"/api/rooms/{room_id}", token=waiting["token"])
    assert status == 200
    assert body == {"roomId": room_id, "exists": True, "participantCount": 1}

    await waiter.ws.close()
    await client.ws.close()


async def test_room_info_unknown_room(server: Server) -> None:
    status, body, _ = await call(server, "GET", "/api/rooms/no-such-room")
    assert status == 200
    assert body == {"roomId": "no-such-room", "exists": False, "participantCount": 0}
    # Asking does not create it.
    assert "no-such-room" not in server.app[hub_key].rooms


@pytest.mark.parametrize(
    "room_id",
    [
        pytest.param("a", id="too-short"),
        pytest.param("ab", id="two-chars"),
        pytest.param("bad%20id!", id="space-and-bang"),
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("caf%C3%A9", id="non-ascii"),
    ],
)
async def test_room_info_invalid_id(server: Server, room_id: str) -> None:
    status, body, response = await call(server, "GET", f"/api/rooms/{room_id}")
    assert status == 400
    assert response.content_type == JSON
    assert_error(body, "invalid_room_id")


async def test_room_info_accepts_64_chars(server: Server) -> None:
    status, body, _ = await call(server, "GET", f"/api/rooms/{'a' * 64}")
    assert status == 200
    assert body["exists"] is False


async def test_room_info_with_a_bad_token_is_401(server: Server) -> None:
    status, body, _ = await call(server, "GET", "/api/rooms/some-room", token="garbage")
    assert status == 401
    assert_error(body, "invalid_token")


async def test_max_rooms(make_server: ServerFactory) -> None:
    server = await make_server(max_rooms=1)
    token = (await server.guest("Ada"))["token"]
    await new_room(server, token)
    status, body, _ = await call(server, "POST", "/api/rooms", token=token)
    assert status == 503
    assert_error(body, "server_busy")
    assert len(server.app[hub_key].rooms) == 1


# --------------------------------------------------------------------------- config


async def test_client_config_defaults(server: Server) -> None:
    status, body, response = await call(server, "GET", "/api/config")
    assert status == 200
    assert response.content_type == JSON
    assert set(body) == {"auth", "iceServers", "iceServersExpiresAt", "websocket", "limits"}
    assert body["auth"] == {"guest": True, "auth0": None}
    assert body["iceServers"] == []
    assert body["iceServersExpiresAt"] is None
    assert body["websocket"] == {
        "path": "/ws/hub/{roomId}",
        "subprotocol": "videoconf.v1",
        "url": None,
    }
    settings = server.app[hub_key].settings
    assert body["limits"] == {
        "maxChatLength": 1000,
        "maxMessageBytes": settings.ws_max_message_bytes,
        "rateLimit": settings.ws_rate_limit,
        "rateBurst": settings.ws_rate_burst,
        "maxRoomSize": settings.max_room_size,
        "chatHistory": settings.chat_history,
        "reconnectGraceSeconds": settings.reconnect_grace,
    }


async def test_client_config_stun(make_server: ServerFactory) -> None:
    server = await make_server(stun_urls=("stun:127.0.0.1:3478",), max_room_size=7)
    status, body, _ = await call(server, "GET", "/api/config")
    assert status == 200
    assert body["iceServers"] == [{"urls": ["stun:127.0.0.1:3478"]}]
    assert body["limits"]["maxRoomSize"] == 7


# --------------------------------------------------------------------------- errors


async def test_unknown_path_is_json_404(server: Server) -> None:
    for path in ("/nope", "/api/nope", "/api/rooms/abc/extra"):
        status, body, response = await call(server, "GET", path)
        assert status == 404, path
        assert response.content_type == JSON, path
        assert_error(body, "not_found")


async def test_wrong_method_is_json_405(server: Server) -> None:
    for method, path in (
        ("DELETE", "/health"),
        ("POST", "/api/config"),
        ("GET", "/api/auth/guest"),
        ("PUT", "/api/rooms"),
    ):
        status, body, response = await call(server, method, path)
        assert status == 405, (method, path)
        assert response.content_type == JSON, (method, path)
        assert_error(body, "method_not_allowed")


async def test_405_says_which_methods_are_allowed(server: Server) -> None:
    # RFC 9110 section 15.5.6: a 405 response MUST carry an Allow header.
    status, _, response = await call(server, "GET", "/api/auth/guest")
    assert status == 405
    assert "POST" in response.headers.get("Allow", "")
