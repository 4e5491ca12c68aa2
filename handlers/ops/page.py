"""The dashboard page at /ops/: plain HTML, CSS and JavaScript from handlers/ops/static, no build step.

Everything it shows comes from the JSON API (handlers/ops/api.py), which it polls every 2 s. It signs
in with the operator's email and password (a web session); the page hands the browser the XSRF-TOKEN
cookie the session's changes must echo.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint
from sanic.response import file

from handlers.rosetta import sessions

STATIC = Path(__file__).resolve().parent / "static"

# The page loads nothing from elsewhere, runs no inline script, and is never framed (its buttons act).
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

bp = Blueprint("ops_page", url_prefix="/ops", strict_slashes=False)
bp.static("/static", str(STATIC), name="ops_static")


@bp.get("/")
async def dashboard(request):
    """The page; with the XSRF-TOKEN cookie of the visitor's session (or a fresh one, for signing in)."""
    response = await file(STATIC / "index.html", headers=_HEADERS, mime_type="text/html; charset=utf-8")
    session = await sessions.load(request)
    sessions.set_xsrf_cookie(request, response, session["xsrf"] if session else sessions.new_xsrf_token())
    return response
