"""The served OpenAPI document of the RosettaChat dialect: placeholder, being written."""

from sanic import Blueprint

bp = Blueprint("rosetta_docs", strict_slashes=False)
