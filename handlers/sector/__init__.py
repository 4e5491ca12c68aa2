"""The Sector dialect, under /v1: ed25519 login, accounts, groups, channels, messages, search."""

from sanic import Blueprint

from handlers.sector import accounts, channels, groups, login, messages, misc

PREFIX = "/v1"

blueprints = Blueprint.group(
    misc.bp, accounts.bp, login.bp, groups.bp, channels.bp, messages.bp, url_prefix=PREFIX, strict_slashes=False
)
