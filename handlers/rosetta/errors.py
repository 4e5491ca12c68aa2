"""The RosettaChat dialect's errors, as a Laravel API answers them: `{"message": ...}`, plus
`errors` by field on a 422 and `errors.code` where the spec names a machine-readable code (the
temporary rooms' 403 and 410), and `Unauthenticated.` on every 401."""

from handlers.bodies import json

INVALID = "The given data was invalid."


def render(error) -> object:
    if error.status == 401:
        return json({"message": "Unauthenticated."}, status=401)
    if error.status == 422 and error.errors:
        return json({"message": INVALID, "errors": error.errors}, status=422)
    if "code" in error.errors:
        return json({"message": error.message, "errors": {"code": error.errors["code"]}}, status=error.status)
    return json({"message": error.message}, status=error.status)
