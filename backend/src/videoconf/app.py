"""The application factory: one settings object, one hub, one metrics registry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from .api import auth_key, errors, hub_key, metrics_key, routes, settings_key
from .auth import Authenticator
from .config import Settings
from .hub import Hub
from .metrics import Metrics


def create_app(settings: Settings) -> web.Application:
    # Request bodies of the REST API are tiny; WebSocket frames have their own limit.
    app = web.Application(middlewares=[errors], client_max_size=16 * 1024)
    metrics = Metrics()
    app[settings_key] = settings
    app[metrics_key] = metrics
    authenticator = Authenticator(settings)
    app[auth_key] = authenticator
    app[hub_key] = Hub(settings, metrics, tickets=authenticator.issue_ticket)
    app.add_routes(routes)
    app.cleanup_ctx.append(_background)
    return app


async def _background(app: web.Application) -> AsyncIterator[None]:
    sweeper = asyncio.get_running_loop().create_task(app[hub_key].sweep_forever())
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await app[auth_key].close()
