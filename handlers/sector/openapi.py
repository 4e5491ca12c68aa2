"""The OpenAPI 3 document of the Sector dialect as built."""

VERSION = "1.0.0"


def document() -> dict:
    return {"openapi": "3.0.3", "info": {"title": "Sector", "version": VERSION}, "paths": {}}
