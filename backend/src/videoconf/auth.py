"""Tokens: HS256 guest tokens and RS256 tokens from Auth0 via JWKS.

Guest tokens are issued and verified here with the shared secret `settings.jwt_secret`.
Auth0 tokens are verified against the tenant's JSON Web Key Set, fetched over HTTP, cached,
and refetched sparingly. The algorithm a token claims in its header only selects which of
the two paths is tried; each path then verifies with exactly one hard-coded algorithm, so a
token can never choose how it is checked (no `none`, no HS256 signed with a public key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import secrets
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
import jwt

from .config import Settings
from .protocol import valid_client_id

__all__ = [
    "GUEST_AUDIENCE",
    "GUEST_ISSUER",
    "AuthError",
    "Authenticator",
    "Identity",
    "clean_display_name",
]

log = logging.getLogger(__name__)

GUEST_ISSUER = "videoconf"
GUEST_AUDIENCE = "videoconf"
TICKET_AUDIENCE = "videoconf:ticket"

LEEWAY_SECONDS = 30
MAX_DISPLAY_NAME = 50
MAX_TOKEN_CHARS = 16 * 1024
JWKS_TIMEOUT_SECONDS = 5.0
# After any JWKS fetch (success or failure) no other fetch for an unknown `kid`, or to replace
# an expired cache while the IdP is down, happens for this long: a spray of tokens with random
# key ids costs the IdP at most one request per period.
JWKS_REFETCH_COOLDOWN = 30.0
# With nothing cached, a failed fetch is not retried for this long; in between, verification
# answers "auth_unavailable" at once.
JWKS_FAILURE_COOLDOWN = 5.0
MAX_JWKS_BYTES = 512 * 1024

_GUEST_ALG = "HS256"
_AUTH0_ALG = "RS256"
_HMAC_MIN_BYTES = 32
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Joiners are format characters that real names need (Persian, Indic scripts, emoji sequences).
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"})
_WHITESPACE = re.compile(r"\s+")

ErrorCode = Literal["missing_token", "invalid_token", "expired_token", "auth_unavailable"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified token speaks for."""

    client_id: str
    display_name: str | None
    provider: Literal["guest", "auth0"]
    expires_at: int


class AuthError(Exception):
    """A token was refused, or cannot be checked right now.

    `code` is one of "missing_token", "invalid_token", "expired_token", "auth_unavailable";
    `message` is a short human explanation, safe to show to the client.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def clean_display_name(raw: str) -> str:
    """Return `raw` trimmed with inner whitespace runs collapsed, or raise ValueError.

    Any script is allowed. Refused: empty, longer than 50 characters, control, format
    (zero-width, bidi overrides), surrogate, private-use or unassigned characters, and < >.
    """
    if not isinstance(raw, str):
        raise ValueError("display name must be text")
    name = _WHITESPACE.sub(" ", raw).strip()
    if not name:
        raise ValueError("display name must not be empty")
    if len(name) > MAX_DISPLAY_NAME:
        raise ValueError(f"display name must be at most {MAX_DISPLAY_NAME} characters")
    for char in name:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES and char not in _ALLOWED_FORMAT:
            raise ValueError("display name must not contain control or invisible characters")
        if char in "<>":
            raise ValueError("display name must not contain < or >")
    return name


def _optional_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return clean_display_name(value)
    except ValueError:
        return None


def _valid_sub(value: object) -> str:
    if not isinstance(value, str) or not valid_client_id(value):
        raise AuthError("invalid_token", "token subject is missing or malformed")
    return value


def _auth0_issuer(domain: str) -> str:
    """`tenant.eu.auth0.com` or `https://tenant.eu.auth0.com[/]` -> `https://tenant.eu.auth0.com/`."""
    value = domain.strip()
    if "://" not in value:
        value = f"https://{value}"
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"AUTH0_DOMAIN must be a host name or an http(s) URL, got {domain!r}")
    return value.rstrip("/") + "/"


class Authenticator:
    """Issues guest tokens and verifies guest and Auth0 tokens. Call `close()` at shutdown."""

    def __init__(self, settings: Settings, *, jwks_cache_seconds: float = 600.0) -> None:
        self._settings = settings
        self._secret = settings.jwt_secret.encode()
        self._short_secret = len(self._secret) < _HMAC_MIN_BYTES
        if settings.guest_auth and self._short_secret:
            log.warning(
                "JWT_SECRET is shorter than %d bytes; guest tokens are weakly signed",
                _HMAC_MIN_BYTES,
            )
        self._issuer: str | None = None
        self._jwks_url: str | None = None
        self._audience: str | None = None
        if settings.auth0_domain is not None:
            if not settings.auth0_audience:
                raise ValueError("AUTH0_AUDIENCE is required when AUTH0_DOMAIN is set")
            self._issuer = _auth0_issuer(settings.auth0_domain)
            self._jwks_url = self._issuer + ".well-known/jwks.json"
            self._audience = settings.auth0_audience
        self._cache_seconds = jwks_cache_seconds
        # Monotonic clock for the JWKS cache; tests may replace it.
        self._clock: Callable[[], float] = time.monotonic
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = -math.inf  # last successful fetch
        self._attempted_at = -math.inf  # end of the last fetch, successful or not
        self._inflight: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # ----------------------------------------------------------------- guest tokens

    def issue_guest_token(self, display_name: str) -> tuple[str, Identity]:
        """Sign a new guest token for a new guest; ValueError if the name is unacceptable."""
        self._require_guest()
        name = clean_display_name(display_name)
        return self._sign_guest("g_" + secrets.token_urlsafe(12), name)

    def refresh_guest_token(self, identity: Identity) -> tuple[str, Identity]:
        """Sign a fresh token for the same guest (same client id and name)."""
        self._require_guest()
        if identity.provider != "guest":
            raise AuthError("invalid_token", "only guest tokens can be refreshed here")
        return self._sign_guest(identity.client_id, identity.display_name)

    def _require_guest(self) -> None:
        if not self._settings.guest_auth:
            raise AuthError("auth_unavailable", "guest sign-in is disabled")

    def _sign_guest(self, client_id: str, name: str | None) -> tuple[str, Identity]:
        now = int(time.time())
        expires_at = now + self._settings.guest_token_ttl
        claims: dict[str, Any] = {
            "sub": client_id,
            "iss": GUEST_ISSUER,
            "aud": GUEST_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "kind": "guest",
        }
        if name is not None:
            claims["name"] = name
        with self._hmac_warnings():
            token = jwt.encode(claims, self._secret, algorithm=_GUEST_ALG)
        return token, Identity(client_id, name, "guest", expires_at)

    # ------------------------------------------------------------ admission tickets

    def issue_ticket(self, client_id: str, room_id: str, role: str) -> tuple[str, int]:
        """A signed note that this identity held `role` in this room, for reconnecting to a
        room the server has lost (restart) without going through the waiting room again."""
        now = int(time.time())
        expires_at = now + self._settings.ticket_ttl
        claims = {
            "sub": client_id,
            "room": room_id,
            "role": role,
            "iss": GUEST_ISSUER,
            "aud": TICKET_AUDIENCE,
            "iat": now,
            "exp": expires_at,
            "kind": "ticket",
        }
        with self._hmac_warnings():
            return jwt.encode(claims, self._secret, algorithm=_GUEST_ALG), expires_at

    def verify_ticket(self, ticket: str, client_id: str, room_id: str) -> str | None:
        """The role a ticket grants this identity in this room, or None if it grants none."""
        if len(ticket) > MAX_TOKEN_CHARS:
            return None
        try:
            with self._hmac_warnings():
                claims = jwt.decode(
                    ticket,
                    self._secret,
                    algorithms=[_GUEST_ALG],
                    audience=TICKET_AUDIENCE,
                    issuer=GUEST_ISSUER,
                    options={"require": ["exp", "sub"]},
                )
        except jwt.PyJWTError:
            return None
        if (
            claims.get("kind") != "ticket"
            or claims.get("sub") != client_id
            or claims.get("room") != room_id
            or not isinstance(claims.get("role"), str)
        ):
            return None
        role: str = claims["role"]
        return role

    @contextlib.contextmanager
    def _hmac_warnings(self) -> Iterator[None]:
        """Silence PyJWT's per-call short-key warning; __init__ already logged it once."""
        if not self._short_secret:
            yield
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            yield

    # ----------------------------------------------------------------- verification

    async def verify(self, token: str) -> Identity:
        """Return the identity a token proves, or raise AuthError."""
        if not token:
            raise AuthError("missing_token", "a token is required")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("invalid_token", "token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError):
            raise AuthError("invalid_token", "malformed token") from None
        alg = header.get("alg")
        if alg == _GUEST_ALG:
            return self._verify_guest(token)
        if alg == _AUTH0_ALG:
            return await self._verify_auth0(token, header)
        raise AuthError("invalid_token", "unsupported token algorithm")

    def _verify_guest(self, token: str) -> Identity:
        if not self._settings.guest_auth:
            raise AuthError("invalid_token", "guest sign-in is disabled")
        with self._hmac_warnings(), _token_errors():
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[_GUEST_ALG],
                audience=GUEST_AUDIENCE,
                issuer=GUEST_ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"], "strict_aud": True},
            )
        if payload.get("kind") != "guest":
            raise AuthError("invalid_token", "not a guest token")
        return Identity(
            client_id=_valid_sub(payload.get("sub")),
            display_name=_optional_name(payload.get("name")),
            provider="guest",
            expires_at=int(payload["exp"]),
        )

    async def _verify_auth0(self, token: str, header: dict[str, Any]) -> Identity:
        issuer, audience = self._issuer, self._audience
        if issuer is None or audience is None:
            raise AuthError("invalid_token", "Auth0 sign-in is not configured")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("invalid_token", "token has no key id")
        # Cheap pre-check so that tokens minted for another issuer never cost a JWKS fetch.
        with _token_errors():
            unverified = jwt.decode(token, options={"verify_signature": False})
        if unverified.get("iss") != issuer:
            raise AuthError("invalid_token", "token issuer is not accepted")
        key = await self._signing_key(kid)
        with _token_errors():
            payload = jwt.decode(
                token,
                key,
                algorithms=[_AUTH0_ALG],
                audience=audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        name = _optional_name(payload.get("name")) or _optional_name(payload.get("nickname"))
        return Identity(
            client_id=_valid_sub(payload.get("sub")),
            display_name=name,
            provider="auth0",
            expires_at=int(payload["exp"]),
        )

    # ----------------------------------------------------------------- JWKS

    async def _signing_key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        since_attempt = now - self._attempted_at
        keys = self._keys
        if keys is not None:
            key = keys.get(kid)
            if key is not None and now - self._fetched_at < self._cache_seconds:
                return key
            if since_attempt < JWKS_REFETCH_COOLDOWN:
                if key is not None:
                    return key  # cache expired but the IdP was asked (or failed) just now
                raise AuthError("invalid_token", "token signing key is unknown")
        elif since_attempt < JWKS_FAILURE_COOLDOWN:
            raise AuthError("auth_unavailable", "the identity provider is unreachable")
        await self._refresh()
        if self._keys is None:
            raise AuthError("auth_unavailable", "the identity provider is unreachable")
        key = self._keys.get(kid)
        if key is None:
            raise AuthError("invalid_token", "token signing key is unknown")
        return key

    async def _refresh(self) -> None:
        """Fetch the key set once, however many verifications are waiting for it."""
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_and_store())
            self._inflight = task
        # A cancelled verification must not cancel the fetch others are waiting for.
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                # The fetch itself was cancelled by close(), not this verification.
                raise AuthError("auth_unavailable", "authentication is shutting down") from None
            raise

    async def _fetch_and_store(self) -> None:
        try:
            keys = await self._fetch_keys()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, jwt.PyJWTError) as error:
            log.warning(
                "JWKS fetch from %s failed: %s", self._jwks_url, str(error) or type(error).__name__
            )
        else:
            self._keys = keys
            self._fetched_at = self._clock()
        finally:
            self._attempted_at = self._clock()
            self._inflight = None

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        assert self._jwks_url is not None
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=JWKS_TIMEOUT_SECONDS)
            )
        async with self._session.get(
            self._jwks_url, headers={"Accept": "application/json"}
        ) as response:
            if response.status != 200:
                raise ValueError(f"HTTP status {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("key set is too large")
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JSON Web Key Set")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"]:
            if (
                not isinstance(entry, dict)
                or entry.get("kty") != "RSA"
                or entry.get("use", "sig") != "sig"
                or entry.get("alg", _AUTH0_ALG) != _AUTH0_ALG
                or not isinstance(entry.get("kid"), str)
            ):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=_AUTH0_ALG)
            except jwt.PyJWTError as error:
                log.warning("skipping unusable JWKS key %r: %s", entry["kid"], error)
        if not keys:
            raise ValueError("key set has no usable RS256 signing key")
        return keys

    async def close(self) -> None:
        """Stop any JWKS fetch and close the HTTP session."""
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()


@contextlib.contextmanager
def _token_errors() -> Iterator[None]:
    """Translate PyJWT's exceptions into AuthError codes."""
    try:
        yield
    except jwt.ExpiredSignatureError:
        raise AuthError("expired_token", "token has expired") from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise AuthError("invalid_token", _reason(error)) from None


def _reason(error: Exception) -> str:
    if isinstance(error, jwt.InvalidAudienceError):
        return "token audience is not accepted"
    if isinstance(error, jwt.InvalidIssuerError):
        return "token issuer is not accepted"
    if isinstance(error, jwt.InvalidSignatureError):
        return "token signature is invalid"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"token lacks the {error.claim!r} claim"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "token is not valid yet"
    return "token is invalid"
