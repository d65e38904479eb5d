"""The `videoconf` command: `videoconf serve` runs the backend until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from . import logs
from .api import forwarder_key, hub_key
from .app import create_app
from .config import ConfigError, Settings

log = logging.getLogger("videoconf")


async def serve(settings: Settings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
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
    # Graceful drain: /ready turns 503, clients are told to reconnect, then we go.
    await app[hub_key].drain(
        settings.drain_timeout, settings.shutdown_delay, also=app[forwarder_key].drain
    )
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="videoconf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the signaling backend (settings from the environment)")
    args = parser.parse_args(argv)
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
