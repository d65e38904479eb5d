"""The artefacts the two images are made of, built and started here without Docker.

Backend: as backend.dockerfile's builder stage does, a wheel is built from a copy of
backend/pyproject.toml and backend/src, installed into a fresh virtualenv with its pinned
dependencies, and `videoconf serve` (the image's ENTRYPOINT and CMD) is started with the
backend Deployment's own environment, expanded as the kubelet does (Secrets filled with test
values, the pod's address 127.0.0.1): Redis mode, against a real redis-server started with the
redis Deployment's own arguments and password, on a free loopback port in place of
redis-service:6379; REPLICA_ADDRESS follows the free port the test listens on. /health, /ready
and /metrics answer, the image's HEALTHCHECK command passes; with Redis stopped /ready answers
503 {"status":"unavailable"} while /health stays 200 (what the Deployment's probes rely on);
SIGTERM exits 0 and no secret reaches the logs. One replica only: forwarding between replicas
is proven by backend/tests/cluster. The build is offline: the wheels come from
.venv/wheelhouse, which devops/tests/prepare-wheelhouse.sh fills from the package index
beforehand (make devops-test runs it). redis-server is Debian's (.ci/run installs it).

Frontend: the `npm run build` standalone output (frontend/.next/standalone) is started with
`node server.js` (the image's CMD) and the frontend Deployment's environment: /api/health
answers, the page and its static assets are served, the HEALTHCHECK command passes. When the
output is absent the test is skipped, saying so; under CI=true that is a failure.

What this cannot prove: the image layers themselves (base image, USER, read-only root file
system): there is no Docker engine here. The interpreter is this machine's Python 3.11 and
Node.js, not the images' python:3.11.14-slim and node:22.21.1-alpine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from devopslib import (
    DOCKER,
    ROOT,
    container,
    deployed_documents,
    expand,
    free_port,
    in_ci,
    index,
    resolved_env,
)
from test_dockerfiles import stages

WHEELHOUSE = Path(os.environ.get("WHEELHOUSE", ROOT / ".venv" / "wheelhouse"))
STANDALONE = ROOT / "frontend" / ".next" / "standalone"
SEED_METRICS = [
    "websocket_connections_total",
    "webrtc_rooms_active",
    "room_participants",
    "websocket_events_total",
    "message_processing_duration_seconds",
    "webrtc_connection_success_rate_total",
]


def missing(message: str) -> None:
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, body = get(url)
            if status == 200:
                return body
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{url} did not answer 200 within {timeout}s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            raise AssertionError("did not stop on SIGTERM") from None
    return process.returncode


POD_IP = "127.0.0.1"


def filled_value(name: str, source: dict[str, Any]) -> str | None:
    """A Secret key's test value (the same for every container that reads that key; none for
    optional keys), or the pod's address."""
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return None if ref.get("optional") else f"test-{ref['key'].lower()}-{'x' * 40}"
    assert source == {"fieldRef": {"fieldPath": "status.podIP"}}, (name, source)
    return POD_IP


def manifest_container(deployment: str, name: str) -> dict[str, Any]:
    return container(index(deployed_documents())[("Deployment", deployment)], name)


def manifest_env(deployment: str, name: str) -> dict[str, str]:
    """A container's environment from its manifest, expanded as the kubelet does."""
    env = resolved_env(manifest_container(deployment, name), filled_value)
    assert not [value for value in env.values() if "$(" in value], env
    return env


def redis_binary() -> str:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    raise AssertionError("unreachable")


def start_redis(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """redis-server with the redis Deployment's arguments (its password from the same test
    Secret the backend reads), on a free loopback port."""
    redis = manifest_container("redis-deployment", "redis")
    env = manifest_env("redis-deployment", "redis")
    args = [expand(arg, env) for arg in redis["args"]]
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    process = subprocess.Popen(
        [redis_binary(), *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise AssertionError(f"redis-server {args} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return process, port
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("redis-server did not listen within 10 s")
        time.sleep(0.05)


def wait_for_status(url: str, status: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        seen, body = get(url)
        if seen == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: {seen} {body!r}, not {status}, after {timeout}s")
        time.sleep(0.2)


def final_stage(name: str) -> dict[str, str]:
    return dict(stages(DOCKER / f"{name}.dockerfile")[-1])


def healthcheck_command(name: str) -> list[str]:
    healthcheck = final_stage(name)["HEALTHCHECK"]
    command: list[str] = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    return command


@pytest.mark.timeout(240)
def test_backend_wheel_installs_into_a_fresh_venv_and_serves(tmp_path: Path) -> None:
    if not any(WHEELHOUSE.glob("setuptools-*.whl")):
        missing(
            f"no wheelhouse at {WHEELHOUSE}: run devops/tests/prepare-wheelhouse.sh"
            " (make devops-test does)"
        )
    offline = [
        "--no-index",
        "--find-links",
        str(WHEELHOUSE),
        "--disable-pip-version-check",
        "--quiet",
    ]
    # Stage 1 of backend.dockerfile: COPY pyproject.toml and src, build the wheel, install it.
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "backend" / "pyproject.toml", source)
    shutil.copytree(
        ROOT / "backend" / "src",
        source / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *offline,
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    [wheel] = wheels.glob("videoconf-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", *offline, str(wheel)],
        check=True,
        timeout=180,
        capture_output=True,
    )
    subprocess.run(
        [str(venv / "bin" / "pip"), "uninstall", "--yes", "--quiet", "pip"], check=True, timeout=60
    )
    assert not (venv / "bin" / "pip").exists()
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "videoconf" / "cli.py").exists()
    assert not (site / "tests").exists(), "only the package, not its tests"

    # Stage 2: the image's environment, command and working directory, in Redis mode.
    stage = final_stage("backend")
    assert json.loads(stage["ENTRYPOINT"]) + json.loads(stage["CMD"]) == ["videoconf", "serve"]
    deployed = manifest_env("backend-deployment", "backend")
    assert deployed["REPLICA_ADDRESS"] == f"http://{POD_IP}:8080"
    assert deployed["REDIS_URL"].endswith("@redis-service:6379/0")
    redis, redis_port = start_redis(tmp_path)
    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        **deployed,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "REPLICA_ADDRESS": f"http://{POD_IP}:{port}",
        "REDIS_URL": deployed["REDIS_URL"].replace(
            "@redis-service:6379/", f"@127.0.0.1:{redis_port}/"
        ),
    }
    assert env["APP_ENV"] == "production"
    log = tmp_path / "backend.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(venv / "bin" / "videoconf"), "serve"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert json.loads(wait_for(f"{base}/health", process, log)) == {"status": "healthy"}
            assert json.loads(wait_for(f"{base}/ready", process, log)) == {"status": "ready"}
            metrics = wait_for(f"{base}/metrics", process, log).decode()
            for name in SEED_METRICS:
                assert f"# TYPE {name.removesuffix('_total')}" in metrics, name
            # The image's HEALTHCHECK, run with the venv's interpreter in place of the image's.
            command = healthcheck_command("backend")
            assert command[0] == "python"
            check = subprocess.run(
                [str(venv / "bin" / "python"), *command[1:]], env=env, timeout=10, check=False
            )
            assert check.returncode == 0
            # Redis gone: not ready (the pod leaves the Service's endpoints), still alive (the
            # liveness probe does not restart it).
            stop(redis, timeout=10)
            body = wait_for_status(f"{base}/ready", 503, timeout=15)
            assert json.loads(body) == {"status": "unavailable"}
            assert get(f"{base}/health")[0] == 200
        finally:
            code = stop(process, timeout=float(env["DRAIN_TIMEOUT_SECONDS"]) + 5)
            stop(redis, timeout=10)
    assert code == 0, log.read_text()
    text = log.read_text()
    assert "test-jwt_secret" not in text and "test-redis_password" not in text, "no secret in logs"


@pytest.mark.timeout(60)
def test_frontend_standalone_server_serves_health_and_pages(tmp_path: Path) -> None:
    server = STANDALONE / "server.js"
    if not server.exists():
        missing(
            f"{server.relative_to(ROOT)} is absent: build it with `cd frontend && npm run build`"
        )
    node = shutil.which("node")
    if node is None:
        missing("node is not on PATH")
    assert node is not None
    stage = final_stage("frontend")
    assert json.loads(stage["CMD"]) == ["node", "server.js"]
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **manifest_env("frontend-deployment", "frontend"),
        "HOSTNAME": "127.0.0.1",
        "PORT": str(port),
        "BACKEND_URL": "http://127.0.0.1:9",  # nothing there: the app must not need it to live
    }
    log = tmp_path / "frontend.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [node, "server.js"], env=env, cwd=STANDALONE, stdout=output, stderr=output
        )
        try:
            base = f"http://127.0.0.1:{port}"
            assert json.loads(wait_for(f"{base}/api/health", process, log)) == {"status": "healthy"}
            page = wait_for(f"{base}/", process, log).decode()
            assert "<html" in page.lower()
            assets = sorted({part.split('"')[0] for part in page.split("/_next/static/")[1:]})
            assert assets, "the page links its static assets"
            status, _ = get(f"{base}/_next/static/{assets[0]}")
            assert status == 200, (
                f"/_next/static/{assets[0]}: .next/static must be inside the standalone output"
            )
            command = healthcheck_command("frontend")
            assert command[0] == "node"
            check = subprocess.run([node, *command[1:]], env=env, timeout=10, check=False)
            assert check.returncode == 0
        finally:
            stop(process, timeout=10)


def test_standalone_output_would_fit_the_image(tmp_path: Path) -> None:
    """What the runtime stage copies: the standalone folder with server.js, .next/static and
    the node_modules Next traced, and no source maps of the server or dev dependencies."""
    if not (STANDALONE / "server.js").exists():
        missing("frontend/.next/standalone is absent: build it with `cd frontend && npm run build`")
    assert (STANDALONE / ".next" / "static").is_dir()
    modules = STANDALONE / "node_modules"
    assert (modules / "next").is_dir()
    for dev_only in ("typescript", "vitest", "@playwright", "jsdom"):
        assert not (modules / dev_only).exists(), dev_only
    size = sum(p.stat().st_size for p in STANDALONE.rglob("*") if p.is_file())
    assert size < 150 * 1024 * 1024, f"{size / 1e6:.0f} MB"
