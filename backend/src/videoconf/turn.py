"""ICE servers for browsers: STUN URLs, and TURN with short-lived credentials.

The credentials follow the "TURN REST API" scheme that coturn checks with `use-auth-secret`
and `static-auth-secret`: the username is `<expiry>:<clientId>` (expiry in Unix seconds) and
the credential is base64(HMAC-SHA1(secret, username)). coturn recomputes the credential from
the username with the same secret and refuses a username whose expiry has passed, so nothing
is stored anywhere and the backend never talks to coturn.

Pure functions: the caller passes the settings, who is asking and the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from typing import Any

from .config import Settings


def turn_username(client_id: str, expires_at: int) -> str:
    """`<expiry>:<clientId>`: coturn reads the expiry before the first colon."""
    return f"{expires_at}:{client_id}"


def turn_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)), the password coturn expects for `username`."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_expiry(settings: Settings, client_id: str | None, now: float) -> int | None:
    """When TURN credentials minted now stop working (Unix seconds), or None when none are
    handed out: no TURN server configured, or nobody signed in."""
    if not settings.turn_urls or settings.turn_secret is None or client_id is None:
        return None
    return math.floor(now) + settings.turn_ttl


def ice_servers(settings: Settings, client_id: str | None, now: float) -> list[dict[str, Any]]:
    """The `iceServers` of an `RTCConfiguration` for `client_id` at time `now`.

    STUN servers go to anyone. TURN servers relay media at the operator's cost, so they and
    their credentials go only to a signed-in participant (`client_id` known).
    """
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    expires_at = turn_expiry(settings, client_id, now)
    if expires_at is not None and client_id is not None and settings.turn_secret is not None:
        username = turn_username(client_id, expires_at)
        servers.append(
            {
                "urls": list(settings.turn_urls),
                "username": username,
                "credential": turn_credential(settings.turn_secret, username),
            }
        )
    return servers


def ice_servers_payload(settings: Settings, client_id: str | None, now: float) -> dict[str, Any]:
    """The payload of the `ice_servers` WebSocket event: the same servers and expiry that
    `/api/config` answers as `iceServers` and `iceServersExpiresAt`, minted at `now`."""
    return {
        "iceServers": ice_servers(settings, client_id, now),
        "expiresAt": turn_expiry(settings, client_id, now),
    }
