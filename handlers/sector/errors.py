"""The Sector dialect's error shape: `{"error": code, "message": text, "errors": {field: [text]}}`."""

from handlers.bodies import json
from handlers.sector.schemas import Error


def render(error) -> object:
    return json(Error(error.code, error.message, error.errors), status=error.status)
