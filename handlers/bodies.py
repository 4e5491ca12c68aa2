"""Request bodies in, JSON out: msgspec decoding with errors a client can act on."""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

import msgspec
from sanic.response import HTTPResponse
from ulid import ULID

from domain.errors import BadRequest, Invalid, NotFound

T = TypeVar("T")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")


def _invalid(error: msgspec.ValidationError) -> Invalid:
    """The 422 for a validation error, naming the field it is about."""
    message = str(error)
    match = _AT_PATH.search(message)
    field = re.sub(r"\[\d+\]$", "", match.group(1)) if match and match.group(1) else None
    missing = _MISSING.match(message)
    if missing:  # blame the absent field, not the object that lacks it
        field = f"{field}.{missing.group(1)}" if field else missing.group(1)
    field = field or "body"
    text = _AT_PATH.sub("", message)
    return Invalid(f"{field}: {text}", {field: [text]})


def parse(request, schema: type[T]) -> T:
    """Decode the JSON body into `schema`; 400 if it is not JSON, 422 naming the field if it does not fit."""
    if not request.body:
        raise BadRequest("A JSON body is required.")
    try:
        return msgspec.json.decode(request.body, type=schema)
    except msgspec.ValidationError as e:
        raise _invalid(e) from None
    except (msgspec.DecodeError, RecursionError) as e:  # RecursionError: nested deeper than the decoder goes
        raise BadRequest(f"The body is not valid JSON: {e}") from None


def parse_query(request, schema: type[T]) -> T:
    """The query string (first value of each name) as `schema`; 422 naming the field if it does not fit."""
    try:
        return msgspec.convert({name: values[0] for name, values in request.args.items()}, type=schema)
    except msgspec.ValidationError as e:
        raise _invalid(e) from None


def path_id(value: str, name: str) -> uuid.UUID:
    """A path segment that must be a UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"{name} must be a UUID.", {name: ["Must be a UUID."]}) from None


def path_ulid(value: str, missing: str) -> uuid.UUID:
    """A path segment that must be a ULID (RosettaChat ids); anything else names nothing: 404."""
    try:
        return ULID.from_str(value.upper()).to_uuid()
    except ValueError:
        raise NotFound(missing) from None


_encoder = msgspec.json.Encoder()


def bodiless(status: int, headers: dict | None = None) -> HTTPResponse:
    """An answer without a body that is not a 204 or 304 (a 202, a 416). Sanic's empty() would send
    `Content-Type: None` with those."""
    return HTTPResponse(b"", status=status, headers=headers, content_type="text/plain; charset=utf-8")


def json(data, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    """A JSON response of any msgspec-encodable value."""
    return HTTPResponse(_encoder.encode(data), status=status, headers=headers, content_type="application/json")
