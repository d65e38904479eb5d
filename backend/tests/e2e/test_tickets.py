"""Admission tickets: after the server loses a room (restart), admitted people keep their roles."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from conftest import Client, Server, free_port, start_serve

from videoconf.auth import Authenticator
from videoconf.config import Settings

SECRET = "ticket-test-secret-" + "t" * 32

Restartable = Callable[[], Awaitable[None]]


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Server, Restartable]]:
    """A real `videoconf serve` process that the test can SIGKILL and start again."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JWT_SECRET": SECRET,
        "LOG_LEVEL": "INFO",
    }
    processes: list[asyncio.subprocess.Process] = []

    async def start() -> None:
        process, _ = await start_serve(env)
        processes.append(process)

    async def restart() -> None:
        processes[-1].send_signal(signal.SIGKILL)  # no goodbye: the room is simply gone
        await processes[-1].wait()
        await start()

    await start()
    session = aiohttp.ClientSession()
    try:
        yield Server(None, None, f"http://127.0.0.1:{port}", session), restart  # type: ignore[arg-type]
    finally:
        await session.close()
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def rejoin(server: Server, client: Client, ticket: str | None) -> Client:
    params = {"token": client.token}
    if ticket is not None:
        params["ticket"] = ticket
    ws = await server.session.ws_connect(f"{server.ws_url}/ws/hub/ticket-room", params=params)
    return Client(ws, client.token)


async def test_roles_survive_a_restart(backend: tuple[Server, Restartable]) -> None:
    server, restart = backend
    host = await server.connect("ticket-room", "Host")
    await host.state()
    host_ticket = await host.expect("ticket")
    assert host_ticket["role"] == "host"
    guest = await server.connect("ticket-room", "Guest")
    await guest.state()
    await host.send("accept_waiting", {"clientId": guest.client_id})
    guest_ticket = await guest.expect("ticket")
    assert guest_ticket["role"] == "participant"
    late = await server.connect("ticket-room", "Late")
    await late.state()  # still waiting when the server dies: no ticket

    await restart()
    for client in (host, guest, late):
        await client.closed()
    # The guest comes back first; then the host; then the one who was waiting.
    guest2 = await rejoin(server, guest, guest_ticket["ticket"])
    assert (await guest2.state())["you"]["role"] in {"participant", "host"}
    host2 = await rejoin(server, host, host_ticket["ticket"])
    state = await host2.state()
    assert state["you"]["role"] == "host"
    assert {m["clientId"] for m in state["participants"]} == {host.client_id, guest.client_id}
    late2 = await rejoin(server, late, None)
    assert (await late2.state())["you"]["role"] == "waiting"
    # A ticket is bound to its holder and room: another identity cannot use it.
    thief = await server.connect("ticket-room", "Thief")
    await thief.ws.close()
    stolen = await rejoin(server, thief, host_ticket["ticket"])
    assert (await stolen.state())["you"]["role"] == "waiting"
    for client in (guest2, host2, late2, stolen):
        await client.ws.close()


async def test_a_ticket_does_not_undo_a_kick(backend: tuple[Server, Restartable]) -> None:
    server, _ = backend
    host = await server.connect("ticket-room", "Host")
    await host.state()
    guest = await server.connect("ticket-room", "Guest")
    await guest.state()
    await host.send("accept_waiting", {"clientId": guest.client_id})
    ticket = (await guest.expect("ticket"))["ticket"]
    await host.send("kick", {"clientId": guest.client_id})
    await guest.closed()
    back = await rejoin(server, guest, ticket)
    assert (await back.state())["you"]["role"] == "waiting"
    for client in (host, back):
        await client.ws.close()


def test_tickets_are_bound_and_signed() -> None:
    auth = Authenticator(Settings(jwt_secret=SECRET, jwt_secret_generated=False))
    ticket, expires_at = auth.issue_ticket("g_abc", "room-1", "host")
    assert expires_at > time.time() + 3600
    assert auth.verify_ticket(ticket, "g_abc", "room-1") == "host"
    assert auth.verify_ticket(ticket, "g_other", "room-1") is None
    assert auth.verify_ticket(ticket, "g_abc", "room-2") is None
    head, body, signature = ticket.split(".")
    assert auth.verify_ticket(f"{head}.{body}.{signature[::-1]}", "g_abc", "room-1") is None
    other = Authenticator(
        Settings(jwt_secret="another-secret-" + "o" * 32, jwt_secret_generated=False)
    )
    assert other.verify_ticket(ticket, "g_abc", "room-1") is None
    # A guest token is not a ticket, and a ticket is not a guest token.
    token, _ = auth.issue_guest_token("Ada")
    assert auth.verify_ticket(token, "g_abc", "room-1") is None
