"""Tests of videoconf.auth against real PyJWT, real RSA keys and a real JWKS HTTP server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from videoconf.auth import (
    GUEST_AUDIENCE,
    GUEST_ISSUER,
    Authenticator,
    AuthError,
    Identity,
    clean_display_name,
)
from videoconf.config import Settings

SECRET = "s" * 64  # 64 bytes: long enough for HS512 too, so PyJWT never warns
AUDIENCE = "api://videoconf"


# --------------------------------------------------------------------------- helpers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Idp:
    """A fake Auth0 tenant: a real HTTP server publishing a JWKS."""

    server: TestServer
    keys: list[dict[str, Any]]
    requests: int = 0
    delay: float = 0.0
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def issuer(self) -> str:
        return self.domain + "/"


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "jwt_secret_generated": False,
        "guest_auth": True,
        "guest_token_ttl": 3600,
    }
    values.update(changes)
    return Settings(**values)


def _guest_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "g_abcdefghijklmnop",
        "name": "Ada",
        "iss": GUEST_ISSUER,
        "aud": GUEST_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "kind": "guest",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _error(coro: Any) -> AuthError:
    with pytest.raises(AuthError) as info:
        await coro
    return info.value


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def idp(rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Idp]:
    state: Idp

    async def jwks(_request: web.Request) -> web.Response:
        state.requests += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        if state.status != 200:
            return web.Response(status=state.status, text="down")
        return web.json_response({"keys": state.keys, **state.extra})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = TestServer(app, host="127.0.0.1", port=0)
    state = Idp(server=server, keys=[_jwk(rsa_key, "k1")])
    await server.start_server()
    try:
        yield state
    finally:
        await server.close()


@pytest.fixture
async def make_auth() -> AsyncIterator[Callable[..., Authenticator]]:
    made: list[Authenticator] = []

    def make(settings: Settings, **kwargs: Any) -> Authenticator:
        auth = Authenticator(settings, **kwargs)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        await auth.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth0(idp: Idp, make_auth: Callable[..., Authenticator], clock: FakeClock) -> Authenticator:
    auth = make_auth(_settings(auth0_domain=idp.domain, auth0_audience=AUDIENCE))
    auth._clock = clock
    return auth


@pytest.fixture
def sign(idp: Idp, rsa_key: rsa.RSAPrivateKey) -> Callable[..., str]:
    """Sign an Auth0-like access token; keyword arguments change or (None) drop claims."""

    def make(
        *, key: rsa.RSAPrivateKey | None = None, kid: str | None = "k1", **changes: Any
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "auth0|12345",
            "iss": idp.issuer,
            "aud": [AUDIENCE, idp.issuer + "userinfo"],
            "iat": now,
            "exp": now + 600,
            "name": "Grace Hopper",
            "nickname": "grace",
        }
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(claims, key or rsa_key, algorithm="RS256", headers=headers)

    return make


# --------------------------------------------------------------------------- display names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada  ", "Ada"),
        ("Ada   \t Lovelace", "Ada Lovelace"),
        ("Ada\nLovelace", "Ada Lovelace"),
        ("José Müller", "José Müller"),
        ("李小龙", "李小龙"),
        ("Мария Иванова", "Мария Иванова"),
        ("محمد", "محمد"),
        ("O'Brien & Co.", "O'Brien & Co."),
        ("x" * 50, "x" * 50),
        ("  " + "y" * 50 + "  ", "y" * 50),
        # Joiners are format characters that real names and emoji sequences need.
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("\U0001f469\u200d\U0001f4bb Ada", "\U0001f469\u200d\U0001f4bb Ada"),
    ],
)
def test_clean_display_name_accepts(raw: str, expected: str) -> None:
    assert clean_display_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "x" * 51,
        "Ada\x00",
        "Ada\x07Lovelace",
        "Ada\x1b[31m",
        "Ada\u200bLovelace",  # zero-width space
        "\u202eecilA",  # right-to-left override
        "Ada\u2066x\u2069",  # bidi isolates
        "Ada\ufeff",  # byte order mark
        "Ada\ue000",  # private use
        "Ada\U000e0001",  # language tag (format)
        "<script>",
        "a<b",
        "a>b",
    ],
)
def test_clean_display_name_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match="display name"):
        clean_display_name(raw)


# --------------------------------------------------------------------------- guest tokens


async def test_guest_token_round_trip(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    token, identity = auth.issue_guest_token("  Ada   Lovelace ")
    assert identity.provider == "guest"
    assert identity.display_name == "Ada Lovelace"
    assert identity.client_id.startswith("g_")
    assert len(identity.client_id) == 2 + 16
    assert abs(identity.expires_at - (time.time() + 3600)) < 5
    assert await auth.verify(token) == identity
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=GUEST_AUDIENCE)
    assert claims["kind"] == "guest"
    assert claims["iss"] == GUEST_ISSUER
    assert claims["name"] == "Ada Lovelace"
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 3600


async def test_guest_ids_are_unique(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    ids = {auth.issue_guest_token("Ada")[1].client_id for _ in range(50)}
    assert len(ids) == 50


async def test_guest_token_with_bad_name_is_refused(
    make_auth: Callable[..., Authenticator],
) -> None:
    auth = make_auth(_settings())
    with pytest.raises(ValueError, match="display name"):
        auth.issue_guest_token("<script>")


async def test_refresh_keeps_identity(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    _, old = auth.issue_guest_token("Ada")
    old = Identity(old.client_id, old.display_name, old.provider, old.expires_at - 1000)
    token, new = auth.refresh_guest_token(old)
    assert (new.client_id, new.display_name, new.provider) == (old.client_id, "Ada", "guest")
    assert new.expires_at > old.expires_at
    assert await auth.verify(token) == new


async def test_refresh_refuses_auth0_identity(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    with pytest.raises(AuthError) as info:
        auth.refresh_guest_token(Identity("auth0|1", "Grace", "auth0", int(time.time()) + 60))
    assert info.value.code == "invalid_token"


async def test_guest_disabled(make_auth: Callable[..., Authenticator]) -> None:
    enabled = make_auth(_settings())
    token, identity = enabled.issue_guest_token("Ada")
    auth = make_auth(
        _settings(guest_auth=False, auth0_domain="tenant.example.com", auth0_audience=AUDIENCE)
    )
    with pytest.raises(AuthError) as info:
        auth.issue_guest_token("Ada")
    assert info.value.code == "auth_unavailable"
    assert info.value.message
    with pytest.raises(AuthError) as info:
        auth.refresh_guest_token(identity)
    assert info.value.code == "auth_unavailable"
    assert (await _error(auth.verify(token))).code == "invalid_token"


async def test_missing_and_malformed_tokens(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    assert (await _error(auth.verify(""))).code == "missing_token"
    for garbage in ["x", "a.b.c", "Bearer abc", "....", "é.é.é", "\ud800.a.b", "a" * 20000]:
        assert (await _error(auth.verify(garbage))).code == "invalid_token", garbage


async def test_expired_guest_token(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    now = int(time.time())
    token = jwt.encode(_guest_claims(iat=now - 700, nbf=now - 700, exp=now - 60), SECRET)
    err = await _error(auth.verify(token))
    assert err.code == "expired_token"


async def test_guest_leeway(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    now = int(time.time())
    token = jwt.encode(_guest_claims(iat=now - 700, nbf=now - 700, exp=now - 10), SECRET)
    assert (await auth.verify(token)).client_id == "g_abcdefghijklmnop"


async def test_guest_wrong_secret(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(), "w" * 64, algorithm="HS256")
    assert (await _error(auth.verify(token))).code == "invalid_token"


async def test_tampered_guest_token(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    token, _ = auth.issue_guest_token("Ada")
    head, _payload, sig = token.split(".")
    forged = _b64(json.dumps(_guest_claims(sub="g_someone_else")).encode())
    assert (await _error(auth.verify(f"{head}.{forged}.{sig}"))).code == "invalid_token"


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "someone-else"},
        {"aud": "someone-else"},
        {"aud": [GUEST_AUDIENCE, "other"]},
        {"iss": None},
        {"aud": None},
        {"sub": None},
        {"sub": ""},
        {"sub": "has space"},
        {"sub": "tab\there"},
        {"sub": "x" * 129},
        {"sub": 12345},
        {"exp": None},
        {"kind": None},
        {"kind": "room-invite"},
        {"nbf": int(time.time()) + 3600},
    ],
)
async def test_guest_claims_checked(
    make_auth: Callable[..., Authenticator], changes: dict[str, Any]
) -> None:
    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(**changes), SECRET, algorithm="HS256")
    assert (await _error(auth.verify(token))).code == "invalid_token"


async def test_guest_name_invalid_in_token_becomes_none(
    make_auth: Callable[..., Authenticator],
) -> None:
    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(name="<b>"), SECRET, algorithm="HS256")
    assert (await auth.verify(token)).display_name is None


async def test_alg_none_refused(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(), None, algorithm="none")
    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert (await _error(auth.verify(token))).code == "invalid_token"
    # Also with variants of the spelling and an empty signature left in place.
    for alg in ["None", "NONE", "nOnE"]:
        head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        body = _b64(json.dumps(_guest_claims()).encode())
        assert (await _error(auth.verify(f"{head}.{body}."))).code == "invalid_token"


async def test_hs512_refused(make_auth: Callable[..., Authenticator]) -> None:
    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(), SECRET, algorithm="HS512")
    assert (await _error(auth.verify(token))).code == "invalid_token"


async def test_es256_refused(make_auth: Callable[..., Authenticator]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    auth = make_auth(_settings())
    token = jwt.encode(_guest_claims(), ec.generate_private_key(ec.SECP256R1()), "ES256")
    assert (await _error(auth.verify(token))).code == "invalid_token"


async def test_short_secret_works_without_warnings(
    make_auth: Callable[..., Authenticator],
) -> None:
    # pytest turns warnings into errors: PyJWT's InsecureKeyLengthWarning must not escape.
    auth = make_auth(_settings(jwt_secret="short"))
    token, identity = auth.issue_guest_token("Ada")
    assert await auth.verify(token) == identity


# --------------------------------------------------------------------------- Auth0 tokens


async def test_auth0_token(auth0: Authenticator, sign: Callable[..., str], idp: Idp) -> None:
    identity = await auth0.verify(sign())
    assert identity.client_id == "auth0|12345"
    assert identity.display_name == "Grace Hopper"
    assert identity.provider == "auth0"
    assert identity.expires_at > time.time()
    assert idp.requests == 1


async def test_auth0_single_audience_string(auth0: Authenticator, sign: Callable[..., str]) -> None:
    assert (await auth0.verify(sign(aud=AUDIENCE))).provider == "auth0"


async def test_auth0_name_fallbacks(auth0: Authenticator, sign: Callable[..., str]) -> None:
    assert (await auth0.verify(sign(name=None))).display_name == "grace"
    assert (await auth0.verify(sign(name="  Grace\u200b "))).display_name == "grace"
    assert (await auth0.verify(sign(name="  Grace   H. "))).display_name == "Grace H."
    assert (await auth0.verify(sign(name=None, nickname=None))).display_name is None
    assert (await auth0.verify(sign(name=42, nickname="<x>"))).display_name is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"aud": "api://someone-else"}, "invalid_token"),
        ({"aud": None}, "invalid_token"),
        ({"iss": "https://evil.example.com/"}, "invalid_token"),
        ({"sub": None}, "invalid_token"),
        ({"sub": "auth0|with space"}, "invalid_token"),
        ({"exp": None}, "invalid_token"),
        ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 700}, "expired_token"),
        ({"nbf": int(time.time()) + 3600}, "invalid_token"),
    ],
)
async def test_auth0_claims_checked(
    auth0: Authenticator, sign: Callable[..., str], changes: dict[str, Any], code: str
) -> None:
    assert (await _error(auth0.verify(sign(**changes)))).code == code


async def test_auth0_leeway(auth0: Authenticator, sign: Callable[..., str]) -> None:
    token = sign(exp=int(time.time()) - 10, iat=int(time.time()) - 700)
    assert (await auth0.verify(token)).provider == "auth0"


async def test_wrong_issuer_costs_no_fetch(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp
) -> None:
    assert (await _error(auth0.verify(sign(iss="https://evil/")))).code == "invalid_token"
    assert idp.requests == 0


async def test_auth0_signed_by_other_key(
    auth0: Authenticator, sign: Callable[..., str], other_rsa_key: rsa.RSAPrivateKey
) -> None:
    err = await _error(auth0.verify(sign(key=other_rsa_key)))
    assert err.code == "invalid_token"


async def test_auth0_without_kid(auth0: Authenticator, sign: Callable[..., str]) -> None:
    assert (await _error(auth0.verify(sign(kid=None)))).code == "invalid_token"


async def test_algorithm_confusion_public_key_as_hmac_secret(
    auth0: Authenticator, idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    """HS256 signed with the IdP's public key PEM must never verify (CVE-2022-29217 style)."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"sub": "auth0|admin", "iss": idp.issuer, "aud": AUDIENCE, "exp": now + 600}
    for header in [{"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "kid": "k1"}]:
        token = _hand_signed_hs256(header, claims, pem)
        assert (await _error(auth0.verify(token))).code == "invalid_token"
        # Same with the guest claims, in case the guest path were to be confused.
        token = _hand_signed_hs256(header, _guest_claims(), pem)
        assert (await _error(auth0.verify(token))).code == "invalid_token"
    # And RS256 in the header with an HMAC signature over the PEM.
    token = _hand_signed_hs256({"alg": "RS256", "kid": "k1"}, claims, pem)
    assert (await _error(auth0.verify(token))).code == "invalid_token"


async def test_rs256_refused_when_auth0_disabled(
    make_auth: Callable[..., Authenticator], sign: Callable[..., str], idp: Idp
) -> None:
    auth = make_auth(_settings())
    assert (await _error(auth.verify(sign()))).code == "invalid_token"
    assert idp.requests == 0


async def test_bare_domain_becomes_https_issuer(
    make_auth: Callable[..., Authenticator], rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = make_auth(_settings(auth0_domain="tenant.eu.auth0.com", auth0_audience=AUDIENCE))
    assert auth._issuer == "https://tenant.eu.auth0.com/"
    assert auth._jwks_url == "https://tenant.eu.auth0.com/.well-known/jwks.json"
    auth = make_auth(_settings(auth0_domain="https://t.auth0.com/", auth0_audience=AUDIENCE))
    assert auth._issuer == "https://t.auth0.com/"
    # A token for another tenant is refused before any network access.
    now = int(time.time())
    token = jwt.encode(
        {"sub": "a|b", "iss": "https://other/", "aud": AUDIENCE, "exp": now + 60},
        rsa_key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert (await _error(auth.verify(token))).code == "invalid_token"


# --------------------------------------------------------------------------- JWKS caching


async def test_jwks_fetched_once_for_many_verifications(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp
) -> None:
    for i in range(20):
        assert (await auth0.verify(sign(sub=f"auth0|{i}"))).client_id == f"auth0|{i}"
    assert idp.requests == 1


async def test_concurrent_verifications_share_one_fetch(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp
) -> None:
    idp.delay = 0.2
    tokens = [sign(sub=f"auth0|{i}") for i in range(25)]
    identities = await asyncio.gather(*(auth0.verify(t) for t in tokens))
    assert [i.client_id for i in identities] == [f"auth0|{i}" for i in range(25)]
    assert idp.requests == 1


async def test_cancelled_verification_does_not_cancel_shared_fetch(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp
) -> None:
    idp.delay = 0.2
    first = asyncio.ensure_future(auth0.verify(sign()))
    second = asyncio.ensure_future(auth0.verify(sign()))
    await asyncio.sleep(0.05)
    first.cancel()
    assert (await second).provider == "auth0"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert idp.requests == 1


async def test_cache_expires(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, clock: FakeClock
) -> None:
    await auth0.verify(sign())
    clock.advance(599)
    await auth0.verify(sign())
    assert idp.requests == 1
    clock.advance(2)
    await auth0.verify(sign())
    assert idp.requests == 2


async def test_custom_cache_duration(
    idp: Idp,
    make_auth: Callable[..., Authenticator],
    clock: FakeClock,
    sign: Callable[..., str],
) -> None:
    auth = make_auth(
        _settings(auth0_domain=idp.domain, auth0_audience=AUDIENCE), jwks_cache_seconds=60
    )
    auth._clock = clock
    await auth.verify(sign())
    clock.advance(61)
    await auth.verify(sign())
    assert idp.requests == 2


async def test_unknown_kid_refetches_at_most_every_30_seconds(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, clock: FakeClock
) -> None:
    await auth0.verify(sign())
    assert idp.requests == 1
    clock.advance(31)
    # The first unknown kid since then triggers one refetch, then is refused.
    assert (await _error(auth0.verify(sign(kid="nope")))).code == "invalid_token"
    assert idp.requests == 2
    # A spray of unknown kids within the next 30 s costs the IdP nothing.
    for i in range(20):
        assert (await _error(auth0.verify(sign(kid=f"spray{i}")))).code == "invalid_token"
    clock.advance(29)
    assert (await _error(auth0.verify(sign(kid="nope")))).code == "invalid_token"
    assert idp.requests == 2
    clock.advance(2)
    assert (await _error(auth0.verify(sign(kid="nope")))).code == "invalid_token"
    assert idp.requests == 3
    # Known keys keep working throughout.
    assert (await auth0.verify(sign())).provider == "auth0"
    assert idp.requests == 3


async def test_concurrent_unknown_kids_share_one_refetch(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, clock: FakeClock
) -> None:
    await auth0.verify(sign())
    clock.advance(31)
    idp.delay = 0.1
    results = await asyncio.gather(
        *(auth0.verify(sign(kid=f"x{i}")) for i in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, AuthError) and r.code == "invalid_token" for r in results)
    assert idp.requests == 2


async def test_key_rotation_picked_up(
    auth0: Authenticator,
    sign: Callable[..., str],
    idp: Idp,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    await auth0.verify(sign())
    idp.keys = [_jwk(other_rsa_key, "k2"), _jwk(rsa_key, "k1")]
    clock.advance(31)
    assert (await auth0.verify(sign(key=other_rsa_key, kid="k2"))).provider == "auth0"
    assert idp.requests == 2
    # The right kid with the wrong key is still refused.
    assert (await _error(auth0.verify(sign(key=rsa_key, kid="k2")))).code == "invalid_token"


async def test_jwks_down_with_nothing_cached(
    make_auth: Callable[..., Authenticator], sign: Callable[..., str], clock: FakeClock
) -> None:
    auth = make_auth(
        _settings(auth0_domain=f"http://127.0.0.1:{_free_port()}", auth0_audience=AUDIENCE)
    )
    auth._clock = clock
    # The token's issuer must match the configured one to get as far as the JWKS.
    token = sign(iss=auth._issuer)
    assert (await _error(auth.verify(token))).code == "auth_unavailable"


async def test_jwks_error_status_then_recovery(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, clock: FakeClock
) -> None:
    idp.status = 503
    assert (await _error(auth0.verify(sign()))).code == "auth_unavailable"
    assert idp.requests == 1
    # Failures are not retried for a few seconds, then are.
    assert (await _error(auth0.verify(sign()))).code == "auth_unavailable"
    assert idp.requests == 1
    idp.status = 200
    clock.advance(6)
    assert (await auth0.verify(sign())).provider == "auth0"
    assert idp.requests == 2


@pytest.mark.parametrize(
    "document",
    [
        {"keys": []},
        {"keys": "nope"},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]},
        {"keys": [{"kty": "RSA", "kid": "k1", "n": "bad", "e": "AQAB"}]},
    ],
)
async def test_unusable_jwks_is_unavailable(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, document: dict[str, Any]
) -> None:
    idp.keys = []
    idp.extra = document
    assert (await _error(auth0.verify(sign()))).code == "auth_unavailable"


async def test_hmac_key_in_jwks_is_ignored(
    auth0: Authenticator, idp: Idp, rsa_key: rsa.RSAPrivateKey
) -> None:
    """A symmetric key slipped into the JWKS must never verify an HS256 or RS256 token."""
    secret = b"published-secret-published-secret"
    idp.keys = [
        {"kty": "oct", "kid": "sym", "k": _b64(secret), "alg": "HS256"},
        _jwk(rsa_key, "k1"),
    ]
    now = int(time.time())
    claims = {"sub": "auth0|x", "iss": idp.issuer, "aud": AUDIENCE, "exp": now + 60}
    for alg in ["RS256", "HS256"]:
        token = _hand_signed_hs256({"alg": alg, "kid": "sym"}, claims, secret)
        assert (await _error(auth0.verify(token))).code == "invalid_token"


async def test_stale_keys_used_while_idp_down(
    auth0: Authenticator, sign: Callable[..., str], idp: Idp, clock: FakeClock
) -> None:
    await auth0.verify(sign())
    idp.status = 500
    clock.advance(700)
    assert (await auth0.verify(sign())).provider == "auth0"
    assert idp.requests == 2
    # No hammering: the next attempt waits for the cooldown.
    assert (await auth0.verify(sign())).provider == "auth0"
    assert idp.requests == 2


async def test_close_is_idempotent(auth0: Authenticator, sign: Callable[..., str]) -> None:
    await auth0.verify(sign())
    await auth0.close()
    await auth0.close()


async def test_close_during_fetch(auth0: Authenticator, sign: Callable[..., str], idp: Idp) -> None:
    idp.delay = 1.0
    pending = asyncio.ensure_future(auth0.verify(sign()))
    await asyncio.sleep(0.1)
    await auth0.close()
    # The waiting verification gets an AuthError, not a stray CancelledError.
    assert (await _error(pending)).code == "auth_unavailable"
