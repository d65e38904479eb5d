"""Settings.from_env: defaults, production refusals, malformed values, and the CLI's exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
import pytest

from videoconf.config import ConfigError, Settings

SECRET = "prod-secret-0123456789-abcdefghijklmnop"  # 38 characters
PRODUCTION: dict[str, str] = {
    "APP_ENV": "production",
    "JWT_SECRET": SECRET,
    "GUEST_AUTH": "true",
    "ALLOWED_ORIGINS": "https://meet.example.com",
}


def refused(env: dict[str, str], variable: str) -> str:
    """from_env(env) raises ConfigError; its one-line message names `variable`."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert variable in message, message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- defaults


def test_development_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.environment == "development"
    assert not settings.production
    assert settings.port == 8080
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.guest_auth is True
    assert settings.jwt_secret_generated is True
    assert len(settings.jwt_secret) >= 32
    assert settings.log_level == "INFO"
    assert settings.allowed_origins == ()
    assert settings.stun_urls == ()
    assert settings.auth0_enabled is False
    assert settings.ws_rate_limit == 50.0
    # A generated secret is new each time, and never shown in the repr.
    assert Settings.from_env({}).jwt_secret != settings.jwt_secret
    assert settings.jwt_secret not in repr(settings)


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "PORT": "9000",
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "debug",
            "JWT_SECRET": "dev-secret",
            "GUEST_AUTH": "off",
            "AUTH0_DOMAIN": " tenant.eu.auth0.com ",
            "AUTH0_AUDIENCE": "api://videoconf",
            "AUTH0_CLIENT_ID": "abc",
            "ALLOWED_ORIGINS": "https://a.example, http://localhost:5173 ,",
            "STUN_URLS": "stun:stun.example.com:3478,stuns:stun.example.com:5349",
            "TURN_URLS": "turn:turn.example.com:3478",
            "TURN_SECRET": "north",
            "TURN_TTL": "600",
            "WS_RATE_LIMIT": "12.5",
            "MAX_ROOM_SIZE": "8",
            "MAX_ROOMS": "3",
        }
    )
    assert settings.port == 9000
    assert settings.host == "127.0.0.1"
    assert settings.log_level == "DEBUG"
    assert settings.jwt_secret == "dev-secret"
    assert settings.jwt_secret_generated is False
    assert settings.guest_auth is False
    assert settings.auth0_domain == "tenant.eu.auth0.com"
    assert settings.auth0_audience == "api://videoconf"
    assert settings.auth0_client_id == "abc"
    assert settings.allowed_origins == ("https://a.example", "http://localhost:5173")
    assert settings.stun_urls == ("stun:stun.example.com:3478", "stuns:stun.example.com:5349")
    assert settings.turn_urls == ("turn:turn.example.com:3478",)
    assert settings.turn_secret == "north"
    assert settings.turn_ttl == 600
    assert settings.ws_rate_limit == 12.5
    assert settings.max_room_size == 8
    assert settings.max_rooms == 3


@pytest.mark.parametrize("variable", ["APP_ENV", "GO_ENV"])
def test_production_environment_variable(variable: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "APP_ENV"}
    settings = Settings.from_env({**env, variable: "production"})
    assert settings.production
    assert settings.environment == "production"


def test_app_env_wins_over_go_env() -> None:
    settings = Settings.from_env({"APP_ENV": "development", "GO_ENV": "production"})
    assert not settings.production


def test_production_defaults() -> None:
    settings = Settings.from_env(
        {
            "GO_ENV": "production",
            "AUTH0_DOMAIN": "tenant.eu.auth0.com",
            "AUTH0_AUDIENCE": "api://videoconf",
            "ALLOWED_ORIGINS": "https://meet.example.com",
        }
    )
    assert settings.production
    assert settings.log_level == "WARNING"
    assert settings.guest_auth is False
    assert settings.auth0_enabled


def test_valid_production_config() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.production
    assert settings.guest_auth is True
    assert settings.jwt_secret == SECRET
    assert settings.jwt_secret_generated is False
    assert settings.allowed_origins == ("https://meet.example.com",)
    assert settings.log_level == "WARNING"
    assert SECRET not in repr(settings)


def test_rate_limit_zero_turns_limiting_off() -> None:
    assert Settings.from_env({"WS_RATE_LIMIT": "0"}).ws_rate_limit == 0
    assert Settings.from_env({**PRODUCTION, "WS_RATE_LIMIT": "0"}).ws_rate_limit == 0


def test_blank_values_mean_defaults() -> None:
    settings = Settings.from_env({"PORT": " ", "GUEST_AUTH": "", "LOG_LEVEL": ""})
    assert (settings.port, settings.guest_auth, settings.log_level) == (8080, True, "INFO")


# --------------------------------------------------------------------------- production


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in PRODUCTION.items() if k not in names}


def test_production_guest_needs_a_secret() -> None:
    refused(without("JWT_SECRET"), "JWT_SECRET")


def test_production_short_secret() -> None:
    refused({**PRODUCTION, "JWT_SECRET": "s" * 31}, "JWT_SECRET")
    assert Settings.from_env({**PRODUCTION, "JWT_SECRET": "s" * 32}).production


def test_production_needs_allowed_origins() -> None:
    refused(without("ALLOWED_ORIGINS"), "ALLOWED_ORIGINS")


def test_production_refuses_any_origin() -> None:
    refused({**PRODUCTION, "ALLOWED_ORIGINS": "*"}, "ALLOWED_ORIGINS")
    refused({**PRODUCTION, "ALLOWED_ORIGINS": "https://a.example,*"}, "ALLOWED_ORIGINS")


def test_production_needs_a_way_to_sign_in() -> None:
    message = refused(without("GUEST_AUTH", "JWT_SECRET"), "AUTH0_DOMAIN")
    assert "GUEST_AUTH" in message
    refused({**PRODUCTION, "GUEST_AUTH": "false"}, "AUTH0_DOMAIN")


def test_auth0_domain_needs_an_audience() -> None:
    refused({**PRODUCTION, "AUTH0_DOMAIN": "tenant.eu.auth0.com"}, "AUTH0_AUDIENCE")
    refused({"AUTH0_DOMAIN": "tenant.eu.auth0.com"}, "AUTH0_AUDIENCE")


def test_production_with_auth0_only_needs_no_secret() -> None:
    settings = Settings.from_env(
        {
            **without("JWT_SECRET", "GUEST_AUTH"),
            "AUTH0_DOMAIN": "tenant.eu.auth0.com",
            "AUTH0_AUDIENCE": "api://videoconf",
        }
    )
    assert settings.guest_auth is False
    assert settings.jwt_secret_generated is True


def test_development_allows_any_origin() -> None:
    assert Settings.from_env({"ALLOWED_ORIGINS": "*"}).allowed_origins == ("*",)


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "80.5"),
        ("PORT", "-1"),
        ("WS_RATE_LIMIT", "-1"),
        ("WS_RATE_LIMIT", "fast"),
        ("WS_RATE_BURST", "0"),
        ("WS_MAX_MESSAGE_BYTES", "100"),
        ("MAX_ROOM_SIZE", "1"),
        ("MAX_ROOMS", "0"),
        ("GUEST_TOKEN_TTL", "10"),
        ("RECONNECT_GRACE_SECONDS", "-5"),
    ],
)
def test_malformed_numbers(variable: str, value: str) -> None:
    message = refused({variable: value}, variable)
    assert value in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "nan"),
        ("PORT", "inf"),
        ("MAX_ROOMS", "nan"),
        ("WS_RATE_LIMIT", "nan"),
        ("WS_HEARTBEAT_SECONDS", "nan"),
    ],
)
def test_non_finite_numbers(variable: str, value: str) -> None:
    # float() accepts "nan" and "inf"; neither is a usable setting.
    refused({variable: value}, variable)


def test_port_out_of_range() -> None:
    refused({"PORT": "65536"}, "PORT")
    assert Settings.from_env({"PORT": "65535"}).port == 65535
    assert Settings.from_env({"PORT": "0"}).port == 0


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "yes please"])
def test_bad_booleans(value: str) -> None:
    message = refused({"GUEST_AUTH": value}, "GUEST_AUTH")
    assert repr(value) in message


@pytest.mark.parametrize("value", ["TRUE", " yes ", "1", "On"])
def test_good_booleans(value: str) -> None:
    assert Settings.from_env({"GUEST_AUTH": value}).guest_auth is True


@pytest.mark.parametrize(
    "origin",
    ["example.com", "ftp://example.com", "https://", "//example.com", "localhost:5173"],
)
def test_bad_origins(origin: str) -> None:
    refused({"ALLOWED_ORIGINS": origin}, "ALLOWED_ORIGINS")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STUN_URLS", "stun.example.com:3478"),
        ("STUN_URLS", "stun:ok.example.com,turn:turn.example.com"),
        ("STUN_URLS", "http://stun.example.com"),
        ("TURN_URLS", "stun:stun.example.com"),
    ],
)
def test_bad_ice_urls(variable: str, value: str) -> None:
    refused({variable: value, "TURN_SECRET": "north"}, variable)


def test_bad_log_level() -> None:
    refused({"LOG_LEVEL": "verbose"}, "LOG_LEVEL")


# --------------------------------------------------------------------------- the CLI


def cli_env(**values: str) -> dict[str, str]:
    """A minimal environment: what a process needs to run, plus the settings given."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    env.update(values)
    return env


def test_serve_refuses_unsafe_production_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "videoconf", "serve"],
        env=cli_env(APP_ENV="production", GUEST_AUTH="true"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "JWT_SECRET" in lines[0]
    assert lines[0].startswith("videoconf: ")
    assert result.stdout == ""


def test_serve_refuses_non_finite_port_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "videoconf", "serve"],
        env=cli_env(PORT="nan"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "PORT" in result.stderr


async def read_until_listening(stdout: asyncio.StreamReader, seen: list[str]) -> dict[str, Any]:
    while True:
        line = await stdout.readline()
        if not line:
            raise AssertionError(f"the server exited before listening: {seen}")
        text = line.decode()
        seen.append(text)
        entry: dict[str, Any] = orjson.loads(text)
        if entry.get("message") == "listening":
            return entry


async def test_serve_never_prints_the_secret() -> None:
    secret = "never-print-me-" + os.urandom(16).hex()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videoconf",
        "serve",
        env=cli_env(
            **{**PRODUCTION, "JWT_SECRET": secret},
            PORT="0",
            HOST="127.0.0.1",
            LOG_LEVEL="DEBUG",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    seen: list[str] = []
    try:
        listening = await asyncio.wait_for(read_until_listening(process.stdout, seen), 30)
        assert listening["level"] == "info"
        assert listening["environment"] == "production"
        port = listening["port"]
        assert isinstance(port, int) and port > 0
        # Exercise the paths that touch the secret: signing and verifying a token.
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/api/auth/guest", json={"displayName": "Ada"}
            ) as response:
                assert response.status == 200
                token = (await response.json())["token"]
            async with session.post(
                f"{base}/api/rooms", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 201
            async with session.post(
                f"{base}/api/rooms", headers={"Authorization": "Bearer bad.token.here"}
            ) as response:
                assert response.status == 401
        process.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, errors.decode()
    output = "".join(seen) + rest.decode()
    for line in output.splitlines():
        orjson.loads(line)  # every stdout line is one JSON record
    assert secret not in output
    assert secret not in errors.decode()
