"""Graceful drain of a real `videoconf serve` process on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from conftest import Client, start_serve

SECRET = "shutdown-test-secret-" + "s" * 32


@pytest.fixture
async def backend() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", ""),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "INFO",
        "JWT_SECRET": SECRET,
        "DRAIN_TIMEOUT_SECONDS": "3",
        "SHUTDOWN_DELAY_SECONDS": "1",
    }
    process, record = await start_serve(env, stderr=asyncio.subprocess.PIPE)
    try:
        yield process, f"127.0.0.1:{record['port']}"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_drains_and_exits_zero(
    backend: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, address = backend
    # A connection per request: the upgrades reach the endpoint's own path, as a browser's do.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def token(name: str) -> str:
            async with http.post(
                f"http://{address}/api/auth/guest", json={"displayName": name}
            ) as response:
                return str((await response.json())["token"])

        host_token = await token("Host")
        host = Client(
            await http.ws_connect(
                f"ws://{address}/ws/hub/drain-room", params={"token": host_token}
            ),
            host_token,
        )
        await host.state()
        process.send_signal(signal.SIGTERM)
        # During the shutdown delay: not ready, newcomers refused, the call goes on.
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            async with http.get(f"http://{address}/ready") as response:
                if response.status == 503:
                    assert await response.json() == {"status": "draining"}
                    break
            assert asyncio.get_running_loop().time() < deadline
        async with http.get(f"http://{address}/health") as response:
            assert response.status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"ws://{address}/ws/hub/drain-room", params={"token": host_token})
        assert refused.value.status == 503
        await host.send("ping")
        await host.expect("pong")
        # Then everyone is told to reconnect, and the process exits 0.
        code, seen = await host.closed()
        assert code == 1012
        assert seen[-1] == {
            "event": "disconnect",
            "payload": {"reason": "server_shutdown", "reconnect": True},
        }
        returncode = await asyncio.wait_for(process.wait(), 10)
    assert returncode == 0
    assert process.stdout is not None and process.stderr is not None
    out = (await process.stdout.read()).decode()
    err = (await process.stderr.read()).decode()
    assert SECRET not in out + err
    for line in out.splitlines():
        orjson.loads(line)  # one JSON object per line, nothing else


STUCK = """
import asyncio
from videoconf import cli, logs

async def stuck_deep_down():
    await asyncio.Event().wait()

async def main():
    logs.configure("WARNING")
    asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="never-done")
    asyncio.get_running_loop().call_later(0.05, cli._shutdown_stuck)
    await stuck_deep_down()

asyncio.run(main())
"""


async def test_a_stuck_shutdown_names_what_waits_and_exits_one() -> None:
    """The shutdown watchdog (cli.serve arms it on SIGTERM): a task that never finishes
    cannot keep the process alive past its budget, and the one error line says where it
    waits. Driven directly: no real fault in the server is known to hang a shutdown."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        STUCK,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 1, err.decode()
    [line] = out.decode().splitlines()
    record = orjson.loads(line)
    assert record["level"] == "error" and record["message"] == "shutdown stuck; exiting"
    tasks = record["tasks"]
    assert any(task.startswith("never-done at ") for task in tasks), record
    # The innermost await, not the outermost coroutine: main waits in an Event's wait,
    # which stuck_deep_down awaits.
    main = [task for task in tasks if not task.startswith("never-done")]
    assert len(main) == 1 and main[0].endswith("(wait)") and "locks.py" in main[0], record
