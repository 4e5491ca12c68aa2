"""Realtime events over WebSocket and server-sent events, for both dialects (docs/realtime.md).

`install(app)` adds the routes (`/v1/api/realtime...` and `/api/v1/realtime...`) and starts one hub a
worker process: the pub/sub listener and its connections (hub.py).
"""

from __future__ import annotations

from handlers.realtime import render
from handlers.realtime.hub import Hub
from handlers.realtime.routes import blueprint

SECTOR_PREFIX, ROSETTA_PREFIX = "/v1/api", "/api/v1"


def install(app, settings) -> None:
    """The realtime routes of both dialects, and the hub started and stopped with the server."""
    config = settings.realtime
    # Sanic pings every heartbeat_s and drops a client that has not answered as long again.
    app.config.WEBSOCKET_PING_INTERVAL = config.heartbeat_s
    app.config.WEBSOCKET_PING_TIMEOUT = config.heartbeat_s
    app.config.WEBSOCKET_MAX_SIZE = config.max_frame_bytes

    app.blueprint(blueprint(render.SECTOR, SECTOR_PREFIX))
    app.blueprint(blueprint(render.ROSETTA, ROSETTA_PREFIX))

    @app.before_server_start
    async def start_hub(app):
        app.ctx.realtime = Hub(settings)
        await app.ctx.realtime.start()

    # Stop listeners run last-registered first: this closes the clients 1012 before Sanic's own listener,
    # registered with the first WebSocket route above, would cancel them with a 1000.
    @app.before_server_stop
    async def stop_hub(app):
        await app.ctx.realtime.stop()
