"""Bearer-token authentication for handlers of either dialect."""

from functools import wraps

from domain import tokens


def authenticated(handler):
    """Require a valid bearer token; the caller's User is then `request.ctx.user`."""

    @wraps(handler)
    async def wrapper(request, *args, **kwargs):
        request.ctx.user, request.ctx.token = tokens.authenticate(request.headers.get("authorization"))
        return await handler(request, *args, **kwargs)

    return wrapper
