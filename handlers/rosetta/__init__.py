"""The RosettaChat dialect, under /api/v1: accounts and sign-in (app tokens and web sessions), the
current user and personal access tokens; workspaces, members, channels, invites, channel and direct
messages, incoming webhooks and automation; files and message attachments; push devices; external
temporary rooms and their guests."""

from sanic import Blueprint

from handlers.rosetta import (auth, channels, devices, direct, docs, files, invites, me, members, messages, rooms,
                              social, webhooks, workspaces)

PREFIX = "/api/v1"
# Laravel Sanctum's SPA handshake lives outside the API prefix, where such clients look for it.
SANCTUM_PREFIX = "/sanctum"

blueprints = [
    Blueprint.group(auth.app_bp, auth.web_bp, social.bp, me.bp, docs.bp, workspaces.bp, members.bp, channels.bp,
                    invites.bp, messages.bp, direct.bp, webhooks.bp, files.bp, devices.bp, rooms.bp, url_prefix=PREFIX,
                    strict_slashes=False),
    me.csrf_bp,
]
