"""The OpenAPI document: valid, complete, and true to what the real server answers."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from conftest import Server, ServerFactory
from cryptography.hazmat.primitives.asymmetric import rsa
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from videoconf.api import hub_key

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})
WEBSOCKET_PATH = "/ws/hub/{room_id}"
# Replica-to-replica forwarding: a WebSocket too, and not part of the public API.
INTERNAL_PATH = "/internal/ws/{room_id}"


async def fetch_document(server: Server) -> dict[str, Any]:
    async with server.session.get(f"{server.url}/api/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        document: dict[str, Any] = await response.json()
        return document


def app_operations(server: Server) -> set[tuple[str, str]]:
    """(path, method) of every route the app registers, but HEAD and the WebSocket."""
    operations = set()
    for route in server.app.router.routes():
        method = route.method.lower()
        path = route.resource.canonical if route.resource is not None else ""
        if method == "head" or path in (WEBSOCKET_PATH, INTERNAL_PATH):
            continue
        operations.add((path, method))
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


async def test_document_is_valid_openapi(server: Server) -> None:
    document = await fetch_document(server)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_route_is_documented_and_every_documented_route_exists(
    server: Server,
) -> None:
    document = await fetch_document(server)
    in_app = app_operations(server)
    in_doc = documented_operations(document)
    assert in_app, "the app registers no routes?"
    assert in_app - in_doc == set(), "routes missing from the OpenAPI document"
    assert in_doc - in_app == set(), "documented operations the app does not serve"
    # The WebSocket route is left out on purpose (described in docs/protocol.md), and the
    # path parameters are spelled the same way as aiohttp's.
    assert WEBSOCKET_PATH not in document["paths"]
    assert INTERNAL_PATH not in document["paths"]
    assert "/api/rooms/{room_id}" in document["paths"]
    params = document["paths"]["/api/rooms/{room_id}"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in params] == [("room_id", "path")]


# --------------------------------------------------------------------------- responses


class Contract:
    """Validates real responses against the document's schema for their status code."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, path: str, method: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.document["paths"][path][method.lower()]
        return operation

    def check(self, path: str, method: str, status: int, body: Any) -> None:
        responses = self.operation(path, method)["responses"]
        assert str(status) in responses, (
            f"{method} {path} answered {status}, which the document does not list "
            f"(it lists {sorted(responses)})"
        )
        content = responses[str(status)].get("content", {})
        assert "application/json" in content, f"{method} {path} {status} is not JSON in the doc"
        schema = content["application/json"]["schema"]
        # "$ref": "#/components/..." resolves against the root: carry the components along.
        root = {**schema, "components": self.document["components"]}
        Draft202012Validator.check_schema(root)
        validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{list(e.absolute_path)}: {e.message}" for e in errors
        )
        self.checked.add((path, method.lower(), status))


Request = Callable[..., Awaitable[tuple[int, Any]]]


def requester(server: Server) -> Request:
    async def request(
        method: str,
        path: str,
        *,
        token: str | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with server.session.request(
            method, f"{server.url}{path}", headers=headers, **kwargs
        ) as response:
            assert response.content_type == "application/json", (method, path)
            return response.status, await response.json()

    return request


async def test_responses_match_the_documented_schemas(server: Server) -> None:
    contract = Contract(await fetch_document(server))
    request = requester(server)

    async def check(
        method: str, doc_path: str, path: str, expected: int, **kwargs: Any
    ) -> dict[str, Any]:
        status, body = await request(method, path, **kwargs)
        assert status == expected, (method, path, body)
        contract.check(doc_path, method, status, body)
        result: dict[str, Any] = body
        return result

    await check("GET", "/health", "/health", 200)
    await check("GET", "/ready", "/ready", 200)
    await check("GET", "/api/openapi.json", "/api/openapi.json", 200)
    await check("GET", "/api/config", "/api/config", 200)

    signed_in = await check(
        "POST", "/api/auth/guest", "/api/auth/guest", 200, json={"displayName": "Ada"}
    )
    await check("POST", "/api/auth/guest", "/api/auth/guest", 400, json={"displayName": ""})
    await check("POST", "/api/auth/guest", "/api/auth/guest", 400, data=b"not json")

    token = signed_in["token"]
    await check("GET", "/api/config", "/api/config", 200, token=token)
    await check("GET", "/api/config", "/api/config", 401, token="garbage")
    await check("POST", "/api/auth/refresh", "/api/auth/refresh", 200, token=token)
    await check("POST", "/api/auth/refresh", "/api/auth/refresh", 401)
    await check("POST", "/api/auth/refresh", "/api/auth/refresh", 401, token="garbage")

    created = await check("POST", "/api/rooms", "/api/rooms", 201, token=token)
    await check("POST", "/api/rooms", "/api/rooms", 401)

    room = "/api/rooms/{room_id}"
    room_id = created["roomId"]
    await check("GET", room, f"/api/rooms/{room_id}", 200)
    await check("GET", room, "/api/rooms/unknown-room", 200)
    await check("GET", room, "/api/rooms/a", 400)
    await check("GET", room, "/api/rooms/some-room", 401, token="garbage")

    # A member's view, with names, is documented too.
    client = await server.connect(room_id, token=token)
    await client.state(lambda s: s["you"]["role"] == "host")
    info = await check("GET", room, f"/api/rooms/{room_id}", 200, token=token)
    assert info["participants"][0]["displayName"] == "Ada"

    server.app[hub_key].draining = True
    await check("GET", "/ready", "/ready", 503)
    await client.ws.close()

    assert len(contract.checked) == 15


async def test_error_statuses_of_other_configurations(make_server: ServerFactory) -> None:
    busy = await make_server(max_rooms=1)
    contract = Contract(await fetch_document(busy))
    request = requester(busy)
    token = (await busy.guest("Ada"))["token"]
    status, body = await request("POST", "/api/rooms", token=token)
    contract.check("/api/rooms", "POST", status, body)
    status, body = await request("POST", "/api/rooms", token=token)
    assert status == 503
    contract.check("/api/rooms", "POST", status, body)

    no_guests = await make_server(
        guest_auth=False, auth0_domain="http://127.0.0.1:9", auth0_audience="x"
    )
    request = requester(no_guests)
    status, body = await request("POST", "/api/auth/guest", json={"displayName": "Ada"})
    assert status == 403
    contract.check("/api/auth/guest", "POST", status, body)
    status, body = await request("GET", "/api/config")
    assert status == 200
    contract.check("/api/config", "GET", status, body)
    assert body["auth"]["auth0"] is not None

    stun = await make_server(stun_urls=("stun:127.0.0.1:3478",))
    status, body = await requester(stun)("GET", "/api/config")
    contract.check("/api/config", "GET", status, body)

    turn = await make_server(
        stun_urls=("stun:127.0.0.1:3478",),
        turn_urls=("turn:127.0.0.1:3478?transport=udp", "turns:127.0.0.1:5349"),
        turn_secret="north",
    )
    token = (await turn.guest("Ada"))["token"]
    status, body = await requester(turn)("GET", "/api/config", token=token)
    assert status == 200
    assert [set(server) for server in body["iceServers"]] == [
        {"urls"},
        {"urls", "username", "credential"},
    ]
    assert isinstance(body["iceServersExpiresAt"], int)
    contract.check("/api/config", "GET", status, body)


async def test_metrics_is_documented_as_text(server: Server) -> None:
    document = await fetch_document(server)
    responses = document["paths"]["/metrics"]["get"]["responses"]
    async with server.session.get(f"{server.url}/metrics") as response:
        assert str(response.status) in responses
        assert response.content_type in responses[str(response.status)]["content"]


async def test_oversized_guest_body_status_is_documented(server: Server) -> None:
    contract = Contract(await fetch_document(server))
    data = b'{"displayName": "' + b"a" * (16 * 1024) + b'"}'
    status, body = await requester(server)("POST", "/api/auth/guest", data=data)
    assert status == 413
    contract.check("/api/auth/guest", "POST", status, body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/api/rooms", id="create-room"),
        pytest.param("GET", "/api/rooms/some-room", id="room-info"),
        pytest.param("POST", "/api/auth/refresh", id="refresh"),
        pytest.param("GET", "/api/config", id="config"),
    ],
)
async def test_identity_provider_down_status_is_documented(
    make_server: ServerFactory, method: str, path: str
) -> None:
    """An Auth0 token while the IdP cannot be reached is answered 503 auth_unavailable."""
    issuer = "http://127.0.0.1:9/"  # nothing listens on the discard port
    server = await make_server(auth0_domain=issuer.rstrip("/"), auth0_audience="api://x")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"sub": "auth0|abc", "iss": issuer, "aud": "api://x", "iat": now, "exp": now + 600},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    contract = Contract(await fetch_document(server))
    status, body = await requester(server)(method, path, token=token)
    assert status == 503
    assert body["error"]["code"] == "auth_unavailable"
    doc_path = "/api/rooms/{room_id}" if path.startswith("/api/rooms/") else path
    contract.check(doc_path, method, status, body)
