"""Sector's open endpoints: the API index, the health check and the OpenAPI document."""

from sanic import Blueprint
from sanic.response import text

from handlers.bodies import json
from handlers.sector import openapi
from handlers.sector import schemas as s

bp = Blueprint("sector_misc", strict_slashes=False)


@bp.get("/api")
async def root(request):
    return json(s.Index(name="Sector API", version=openapi.VERSION, openapi="/v1/swagger.json",
                        health="/v1/api/health"))


@bp.get("/api/health")
async def health(request):
    return text("OK")


@bp.get("/swagger.json")
async def swagger(request):
    return json(openapi.document())
