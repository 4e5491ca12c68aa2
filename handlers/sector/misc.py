"""Sector's open endpoints: the API index, the health check and its details, and the OpenAPI document."""

import logging

from redis.exceptions import RedisError
from sanic import Blueprint
from sanic.response import text

import models
from handlers.bodies import json
from handlers.sector import openapi
from handlers.sector import schemas as s
from providers import push as push_gateways

logger = logging.getLogger(__name__)

bp = Blueprint("sector_misc", strict_slashes=False)


@bp.get("/api")
async def root(request):
    return json(s.Index(name="Sector API", version=openapi.VERSION, openapi="/v1/swagger.json",
                        health="/v1/api/health"))


@bp.get("/api/health")
async def health(request):
    return text("OK")


_TRANSLATION_OFF = "Translation is off: messages are marked skipped and every reader sees the original."


@bp.get("/api/health/details")
async def health_details(request):
    """200 when the database and Redis answer, else 503; and how translation and push are set up."""
    try:
        models.db.execute_sql("SELECT 1")
        database = "ok"
    except models.CONNECTION_ERRORS:
        models.drop_connection()
        database = "unreachable"
    try:
        await request.app.ctx.redis.ping()
        redis = "ok"
    except (RedisError, OSError):
        redis = "unreachable"
    config = request.app.ctx.settings.translation
    enabled = config.provider != "none"
    detail = (f"Messages are translated by {config.provider} into each reader's language." if enabled
              else _TRANSLATION_OFF)
    ok = database == redis == "ok"
    details = s.HealthDetails("ok" if ok else "degraded", database, redis,
                              s.TranslationHealth(config.provider, enabled, config.detect, detail),
                              _push_health(request.app.ctx.settings.push))
    return json(details, status=200 if ok else 503)


def _push_health(config) -> s.PushHealth:
    gateways = {name: s.GatewayHealth(reason is None, reason or f"Notifications to {name} devices are sent.")
                for name, reason in push_gateways.disabled(config).items()}
    return s.PushHealth(**gateways)


@bp.get("/swagger.json")
async def swagger(request):
    return json(openapi.document())
