"""The application factory: one settings object, one hub, one metrics registry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from .api import auth_key, errors, forwarder_key, hub_key, metrics_key, routes, settings_key
from .auth import Authenticator
from .cluster.forward import Forwarder
from .cluster.redis import RedisCluster
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
    hub = Hub(settings, metrics, tickets=authenticator.issue_ticket)
    if settings.redis_url is not None:
        assert settings.replica_address is not None  # Settings.check() makes sure
        hub.cluster = RedisCluster(
            settings.redis_url,
            settings.replica_address,
            settings.lease_seconds,
            rooms=lambda: hub.rooms,
            on_lost=hub.lose,
            chat_history=settings.chat_history,
        )
    app[hub_key] = hub
    app[forwarder_key] = Forwarder(settings.jwt_secret, settings.ws_heartbeat)
    app.add_routes(routes)
    app.cleanup_ctx.append(_background)
    return app


async def _background(app: web.Application) -> AsyncIterator[None]:
    hub = app[hub_key]
    await hub.cluster.start()
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(hub.sweep_forever())]
    heartbeat = app[settings_key].ws_heartbeat
    if heartbeat > 0:
        tasks.append(loop.create_task(hub.heartbeat_forever(heartbeat)))
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app[forwarder_key].close()
    await hub.cluster.close()
    await app[auth_key].close()
