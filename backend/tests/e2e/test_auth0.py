"""Auth0 (RS256) sign-in end to end: a real key pair, a JWKS served on loopback, a real room."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from conftest import Client, ServerFactory
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "https://api.videoconf.test"


@pytest.fixture
async def identity_provider() -> AsyncIterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", key
    finally:
        await runner.cleanup()


def auth0_token(issuer: str, key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "sub": "auth0|12345",
        "iss": f"{issuer}/",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def test_auth0_user_joins_and_bad_tokens_are_refused(
    make_server: ServerFactory,
    identity_provider: tuple[str, rsa.RSAPrivateKey],
) -> None:
    issuer, key = identity_provider
    server = await make_server(auth0_domain=issuer, auth0_audience=AUDIENCE, guest_auth=False)
    good = auth0_token(issuer, key, name="Grace Hopper")
    client = await server.connect("auth0-room", token=good)
    state = await client.state()
    assert state["you"] == {
        "clientId": "auth0|12345",
        "displayName": "Grace Hopper",
        "role": "host",
    }
    # No name in the token: the display name comes from the query, validated.
    nameless = auth0_token(issuer, key, sub="auth0|777")
    other = Client(
        await server.session.ws_connect(
            f"{server.ws_url}/ws/hub/auth0-room",
            params={"token": nameless, "displayName": "Ada L."},
        ),
        nameless,
    )
    assert (await other.state())["you"]["displayName"] == "Ada L."

    refused = {
        "wrong audience": auth0_token(issuer, key, aud="https://other.test"),
        "wrong issuer": auth0_token(issuer, key, iss="https://evil.test/"),
        "expired": auth0_token(issuer, key, exp=int(time.time()) - 600),
        "other key": auth0_token(
            issuer, rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
    }
    for why, token in refused.items():
        with pytest.raises(aiohttp.WSServerHandshakeError) as error:
            await server.session.ws_connect(
                f"{server.ws_url}/ws/hub/auth0-room", params={"token": token}
            )
        assert error.value.status == 401, why
    # Guest sign-in is off on this server, and an HS256 token is not accepted.
    async with server.session.post(
        f"{server.url}/api/auth/guest", json={"displayName": "G"}
    ) as response:
        assert response.status == 403
    await client.ws.close()
    await other.ws.close()
