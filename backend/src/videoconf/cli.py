"""The `videoconf` command: `videoconf serve` runs the backend until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import sys

from aiohttp import web

from . import loadtest as load
from . import logs
from .api import forwarder_key, hub_key
from .app import create_app
from .config import ConfigError, Settings
from .endpoint import listen
from .loadtest.options import add_arguments as add_load_arguments

log = logging.getLogger("videoconf")

# Seconds allowed after the drain for the hand-over to Redis and the server's clean-up.
SHUTDOWN_SLACK = 8.0


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    server, endpoint = await listen(app, runner, settings.host, settings.port)
    port = server.sockets[0].getsockname()[1] if server.sockets else settings.port
    log.info(
        "listening",
        extra={"host": settings.host, "port": port, "environment": settings.environment},
    )
    if settings.jwt_secret_generated:
        log.warning(
            "JWT_SECRET is not set: signing with a secret generated at start-up; "
            "tokens stop working when this process restarts"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    # Bounded whatever hangs: past the drain's own budget and the clean-up's, say what is
    # still running and go (Kubernetes would kill us at its grace period anyway). Left armed:
    # it covers the loop's own teardown (cancelling leftover tasks) after we return.
    loop.call_later(
        settings.shutdown_delay + settings.drain_timeout + SHUTDOWN_SLACK, _shutdown_stuck
    )
    # Graceful drain: /ready turns 503, clients are told to reconnect, then we go.
    await app[hub_key].drain(
        settings.drain_timeout, settings.shutdown_delay, also=app[forwarder_key].drain
    )
    server.close()
    endpoint.close()
    await runner.cleanup()


def _innermost(awaitable: object) -> str:
    """Where a coroutine is suspended: the end of its chain of awaits (a task's own stack
    stops at its outermost coroutine), as `file:line (function)`."""
    where = None
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            break
        where = frame
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    if where is None:
        return repr(awaitable)
    return f"{where.f_code.co_filename}:{where.f_lineno} ({where.f_code.co_name})"


def _shutdown_stuck() -> None:
    """One error line naming where every unfinished task waits, then exit 1."""
    waiting = []
    for task in asyncio.all_tasks():
        waiting.append(f"{task.get_name()} at {_innermost(task.get_coro())}")
    log.error("shutdown stuck; exiting", extra={"tasks": sorted(waiting)[:50]})
    logging.shutdown()
    os._exit(1)


def raise_file_limit() -> None:
    """Every connection is a file descriptor: take the hard limit (Go does the same)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="videoconf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the signaling backend (settings from the environment)")
    loadtest = commands.add_parser(
        "loadtest",
        help="simulated participants against a deployment: throughput and latency",
        description=load.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_arguments(loadtest)
    args = parser.parse_args(argv)
    raise_file_limit()
    if args.command == "loadtest":
        raise SystemExit(load.main(args))
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"videoconf: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log_level)
    if args.command == "serve":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency; this is for odd platforms
            asyncio.run(serve(settings))
        else:
            uvloop.run(serve(settings))
