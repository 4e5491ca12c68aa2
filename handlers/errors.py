"""One error handler for the app: framework and infrastructure errors become domain errors,
and each dialect renders a domain error in its own wire shape."""

from __future__ import annotations

import logging

import redis
from sanic import exceptions as sanic_errors
from sanic.constants import HTTP_METHODS
from sanic.response import HTTPResponse

import models
from domain import errors

logger = logging.getLogger(__name__)

# Sanic's own exceptions (unknown route, wrong method, body too large, bad framing) by status.
_BY_STATUS = {
    400: errors.BadRequest,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    413: errors.PayloadTooLarge,
}


def as_domain_error(exc: Exception) -> errors.DomainError | None:
    """The domain error a client should see for `exc`, or None if it is a bug."""
    if isinstance(exc, errors.DomainError):
        return exc
    if isinstance(exc, models.CONNECTION_ERRORS):
        logger.error("The database is unreachable: %s", exc)
        models.drop_connection()
        return errors.Unavailable("The database is unreachable; retry later.", 2)
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        logger.error("Redis is unreachable: %s", exc)
        return errors.Unavailable("A backing service is unreachable; retry later.", 5)
    if isinstance(exc, sanic_errors.MethodNotAllowed):
        error = errors.DomainError(str(exc))
        error.status, error.code = 405, "method_not_allowed"
        return error
    if isinstance(exc, sanic_errors.SanicException):
        cls = _BY_STATUS.get(exc.status_code)
        if cls is not None:
            return cls(str(exc.message or exc))
    return None


def _allowed_methods(request) -> list[str]:
    """The methods routed at this path; RFC 9110 wants them in a 405's Allow header."""
    # Sanic names them only for paths without parameters, so ask its router method by method.
    allowed = []
    for method in HTTP_METHODS:
        try:
            request.app.router.get(request.path, method, request.headers.get("host"))
        except sanic_errors.SanicException:
            continue
        allowed.append(method)
    return allowed


def install(app, renderers: dict[str, callable], default) -> None:
    """Route every exception to the renderer of the dialect whose path prefix matches."""

    def handle(request, exc):
        error = as_domain_error(exc)
        if error is None:
            logger.exception("Unhandled error on %s %s", request.method if request else "-", request.path if request else "-")
            error = errors.DomainError("Something went wrong on our side.")
            error.status, error.code = 500, "internal_error"
        path = request.path if request is not None else ""
        render = next((r for prefix, r in renderers.items() if path.startswith(prefix)), default)
        response: HTTPResponse = render(error)
        if isinstance(error, (errors.Unavailable, errors.TooManyAttempts)):
            response.headers["Retry-After"] = str(error.retry_after)
        if error.status == 405 and isinstance(exc, sanic_errors.MethodNotAllowed):
            allowed = exc.allowed_methods or _allowed_methods(request)
            if allowed:
                response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    app.error_handler.add(Exception, handle)
