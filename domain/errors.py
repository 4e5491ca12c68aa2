"""Domain errors: raised anywhere, turned into a wire shape by each dialect's one error handler."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a client can be told about."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def to_reply(self) -> dict:
        """A form that crosses the writes queue back to the waiting handler."""
        return {"kind": type(self).__name__, "message": self.message, "errors": self.errors}

    @staticmethod
    def from_reply(reply: dict) -> "DomainError":
        cls = KINDS.get(reply.get("kind"), DomainError)
        return cls(reply.get("message", "Request failed."), reply.get("errors"))


class BadRequest(DomainError):
    status, code = 400, "bad_request"


class Unauthenticated(DomainError):
    status, code = 401, "unauthenticated"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class Gone(DomainError):
    """What was there is no more, for good (an expired temporary room)."""

    status, code = 410, "gone"


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


class Invalid(DomainError):
    status, code = 422, "invalid"


class CsrfMismatch(DomainError):
    """A cookie-authenticated change without the matching X-XSRF-TOKEN header (Laravel's 419)."""

    status, code = 419, "csrf_mismatch"


class TooManyAttempts(DomainError):
    """Rate limited; the client may retry after `retry_after` seconds."""

    status, code = 429, "too_many_attempts"

    def __init__(self, message: str = "Too Many Attempts.", retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """The service cannot take the request now; the client may retry after `retry_after` seconds."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


KINDS = {cls.__name__: cls for cls in (BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, Gone, Invalid)}
