"""Settings from the environment, read and validated once at start-up."""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the message says which in one line."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    value = _number(env, name, default, minimum)
    if value != int(value):
        raise ConfigError(f"{name} must be a whole number, got {env.get(name)!r}")
    return int(value)


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _ice_urls(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
    urls = _list(env, name)
    for url in urls:
        if not url.startswith(tuple(f"{scheme}:" for scheme in schemes)):
            raise ConfigError(f"{name} entries must start with {' or '.join(schemes)}: {url!r}")
    return urls


def _ws_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip().rstrip("/")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"ws", "wss"} or not parts.netloc or parts.path or parts.query:
        raise ConfigError(f"{name} must be ws(s)://host[:port] with nothing after, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Every setting of the backend. Build it with `Settings.from_env()`."""

    environment: str = "development"
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = 8080
    log_level: str = "INFO"
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    jwt_secret_generated: bool = True
    guest_auth: bool = True
    guest_token_ttl: int = 4 * 3600
    ticket_ttl: int = 12 * 3600
    auth0_domain: str | None = None
    auth0_audience: str | None = None
    auth0_client_id: str | None = None
    allowed_origins: tuple[str, ...] = ()
    public_ws_url: str | None = None
    redis_url: str | None = None
    replica_address: str | None = None
    lease_seconds: float = 5.0
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: int = 4 * 3600
    # Protective limits; each one is documented in the README.
    ws_rate_limit: float = 50.0
    ws_rate_burst: int = 200
    ws_max_message_bytes: int = 64 * 1024
    ws_send_queue: int = 512
    ws_heartbeat: float = 20.0
    max_room_size: int = 50
    max_rooms: int = 10_000
    chat_history: int = 200
    reconnect_grace: float = 30.0
    empty_room_ttl: float = 300.0
    drain_timeout: float = 10.0
    shutdown_delay: float = 0.0

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def auth0_enabled(self) -> bool:
        return self.auth0_domain is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = (env.get("APP_ENV") or env.get("GO_ENV") or "development").strip().lower()
        if environment not in {"development", "production"}:
            raise ConfigError(f"APP_ENV must be development or production, got {environment!r}")
        production = environment == "production"
        secret = env.get("JWT_SECRET", "")
        guest_auth = _bool(env, "GUEST_AUTH", default=not production)
        auth0_domain = env.get("AUTH0_DOMAIN", "").strip() or None
        origins = _list(env, "ALLOWED_ORIGINS")
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.netloc):
                raise ConfigError(
                    f"ALLOWED_ORIGINS entries must be scheme://host[:port]: {origin!r}"
                )
        settings = cls(
            environment=environment,
            host=env.get("HOST", cls.host),
            port=_int(env, "PORT", 8080, minimum=0),
            log_level=(env.get("LOG_LEVEL") or ("WARNING" if production else "INFO")).upper(),
            jwt_secret=secret or secrets.token_urlsafe(32),
            jwt_secret_generated=not secret,
            guest_auth=guest_auth,
            guest_token_ttl=_int(env, "GUEST_TOKEN_TTL", 4 * 3600, minimum=60),
            ticket_ttl=_int(env, "TICKET_TTL", 12 * 3600, minimum=60),
            auth0_domain=auth0_domain,
            auth0_audience=env.get("AUTH0_AUDIENCE", "").strip() or None,
            auth0_client_id=env.get("AUTH0_CLIENT_ID", "").strip() or None,
            allowed_origins=origins,
            public_ws_url=_ws_url(env, "PUBLIC_WS_URL"),
            redis_url=env.get("REDIS_URL", "").strip() or None,
            replica_address=env.get("REPLICA_ADDRESS", "").strip().rstrip("/") or None,
            lease_seconds=_number(env, "LEASE_SECONDS", 5.0, minimum=1),
            stun_urls=_ice_urls(env, "STUN_URLS", ("stun", "stuns")),
            turn_urls=_ice_urls(env, "TURN_URLS", ("turn", "turns")),
            turn_secret=env.get("TURN_SECRET") or None,
            turn_ttl=_int(env, "TURN_TTL", 4 * 3600, minimum=60),
            ws_rate_limit=_number(env, "WS_RATE_LIMIT", 50.0),
            ws_rate_burst=_int(env, "WS_RATE_BURST", 200, minimum=1),
            ws_max_message_bytes=_int(env, "WS_MAX_MESSAGE_BYTES", 64 * 1024, minimum=1024),
            ws_send_queue=_int(env, "WS_SEND_QUEUE", 512, minimum=8),
            ws_heartbeat=_number(env, "WS_HEARTBEAT_SECONDS", 20.0),
            max_room_size=_int(env, "MAX_ROOM_SIZE", 50, minimum=2),
            max_rooms=_int(env, "MAX_ROOMS", 10_000, minimum=1),
            chat_history=_int(env, "CHAT_HISTORY", 200, minimum=1),
            reconnect_grace=_number(env, "RECONNECT_GRACE_SECONDS", 30.0),
            empty_room_ttl=_number(env, "EMPTY_ROOM_TTL_SECONDS", 300.0),
            drain_timeout=_number(env, "DRAIN_TIMEOUT_SECONDS", 10.0),
            shutdown_delay=_number(env, "SHUTDOWN_DELAY_SECONDS", 0.0),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse unsafe or impossible combinations, in one line each."""
        if self.redis_url is not None:
            if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError("REDIS_URL must be redis://, rediss:// or unix://")
            if self.replica_address is None:
                raise ConfigError(
                    "REDIS_URL needs REPLICA_ADDRESS: the http://host:port other replicas "
                    "reach this one at (in Kubernetes, http://$(POD_IP):8080)"
                )
            if self.jwt_secret_generated:
                raise ConfigError("REDIS_URL needs JWT_SECRET, the same on every replica")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"PORT must be between 0 and 65535, got {self.port}")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}"
            )
        if not self.guest_auth and not self.auth0_enabled:
            raise ConfigError("no way to sign in: set AUTH0_DOMAIN or GUEST_AUTH=true")
        if self.auth0_enabled and not self.auth0_audience:
            raise ConfigError("AUTH0_AUDIENCE is required when AUTH0_DOMAIN is set")
        if self.turn_urls and not self.turn_secret:
            raise ConfigError(
                "TURN_URLS needs TURN_SECRET, the static-auth-secret shared with the TURN server"
            )
        if self.turn_ttl < 60:
            raise ConfigError(f"TURN_TTL must be at least 60 seconds, got {self.turn_ttl}")
        if self.production:
            if self.jwt_secret_generated and self.guest_auth:
                raise ConfigError("APP_ENV=production with GUEST_AUTH=true needs JWT_SECRET")
            if self.guest_auth and len(self.jwt_secret) < 32:
                raise ConfigError("JWT_SECRET must be at least 32 characters in production")
            if self.turn_urls and len(self.turn_secret or "") < 32:
                raise ConfigError("TURN_SECRET must be at least 32 characters in production")
            if not self.allowed_origins:
                raise ConfigError("APP_ENV=production needs ALLOWED_ORIGINS (comma-separated)")
            if "*" in self.allowed_origins:
                raise ConfigError("ALLOWED_ORIGINS=* is refused in production")
