"""The served OpenAPI document of the RosettaChat dialect."""

from sanic import Blueprint

from handlers.bodies import json
from handlers.rosetta import openapi

bp = Blueprint("rosetta_docs", strict_slashes=False)


@bp.get("/openapi.json")
async def openapi_json(request):
    """Open to all: the document of this deployment (its session cookie, its enabled OAuth providers)."""
    return json(openapi.document_for(request.app.ctx.settings))
