"""Incoming webhooks: admins manage a workspace's webhooks; an outside service posts with the secret.

The secret goes in `X-Webhook-Secret`, or as `Authorization: Bearer <secret>`. A wrong secret is
401, an inactive webhook 403, an unknown or deleted one 404; each webhook may post
`[throttle] webhook` messages a window (429 with Retry-After beyond).
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import empty

from domain import chat_access as access
from domain import commands as c
from domain.errors import Forbidden, Invalid, NotFound, Unauthenticated
from domain.signing import keyed_digest
from domain.tokens import digest
from domain.webhooks import CreateWebhook, DeleteWebhook, UpdateWebhook, secret_matches
from handlers.bodies import json, path_ulid
from handlers.rosetta import messages
from handlers.rosetta import resources as r
from handlers.rosetta import throttle
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.writing import claim_ids, write
from models import Channel, User, Webhook, ulid_of, utcnow

bp = Blueprint("rosetta_webhooks", strict_slashes=False)

_DEFAULT_CHANNEL = Field(nullable=True, max=64, example=None,
                         description="Where posts without a channel_id go: a channel of this workspace.")
WEBHOOK = {"name": Field(required=True, max=120, description="Shown as the author of its posts.", example="CI"),
           "default_channel_id": _DEFAULT_CHANNEL}
WEBHOOK_UPDATE = {"name": Field(max=120, description="Shown as the author of its posts.", example="CI"),
                  "default_channel_id": _DEFAULT_CHANNEL,
                  "is_active": Field(type="boolean", nullable=True, description="An inactive webhook is refused (403).",
                                     example=True),
                  "regenerate_secret": Field(type="boolean", nullable=True, example=False,
                                             description="Replace the secret; the answer shows the new one, once.")}
INCOMING = {**messages.WEBHOOK_MESSAGE,
            "channel_id": Field(nullable=True, max=64, example=None,
                                description="A channel of the webhook's workspace; its default channel when absent.")}
_ONE = "/workspaces/<workspace_id:str>/webhooks/<webhook_id:str>"


def _channel_of(workspace_id: uuid.UUID, channel_id: str | None, field: str) -> uuid.UUID | None:
    """The id of a standard channel of the workspace; a 422 on `field` for any other."""
    if channel_id is None:
        return None
    try:
        key = path_ulid(channel_id, "")
    except NotFound:
        key = None
    if key is None or not Channel.select().where((Channel.id == key) & (Channel.workspace == workspace_id)).exists():
        text = f"The selected {field.replace('_', ' ')} is invalid."
        raise Invalid(text, {field: [text]})
    return key


def _admin_workspace(request, workspace_id: str):
    return access.member_workspace(viewer_id=request.ctx.user.id, role="admin",
                                   workspace_id=path_ulid(workspace_id, "Workspace not found."))


def _webhook(workspace, webhook_id: str) -> Webhook:
    found = Webhook.get_or_none((Webhook.id == path_ulid(webhook_id, "Webhook not found."))
                                & (Webhook.workspace == workspace.id))
    if found is None:
        raise NotFound("Webhook not found.")
    return found


def _secret(command_id: str) -> str:
    # Derived from the command, so a retry under the same Idempotency-Key is shown the same secret.
    return "whsec_" + keyed_digest("webhook-secret", command_id)


@bp.get("/workspaces/<workspace_id:str>/webhooks")
@signed_in
async def list_webhooks(request, workspace_id):
    workspace = _admin_workspace(request, workspace_id)
    rows = Webhook.select().where(Webhook.workspace == workspace.id).order_by(Webhook.created_at, Webhook.id)
    return json(r.WebhookList([r.webhook(w) for w in rows]))


@bp.post("/workspaces/<workspace_id:str>/webhooks")
@signed_in
async def create_webhook(request, workspace_id):
    viewer = request.ctx.user
    workspace = _admin_workspace(request, workspace_id)
    form = validate(body(request), WEBHOOK)
    default_channel = _channel_of(workspace.id, form.get("default_channel_id"), "default_channel_id")
    ids = await claim_ids(request, f"user:{viewer.id}", "id", "bot")
    webhook_id, secret = uuid.UUID(ids["id"]), _secret(ids["command_id"])
    command = CreateWebhook(command_id=ids["command_id"], webhook_id=webhook_id, group_id=workspace.id,
                            name=form["name"], secret_hash=digest(secret), default_channel_id=default_channel,
                            bot_user_uid=uuid.UUID(ids["bot"]), created_by=viewer.id, at=utcnow())
    return await write(request, command, location=f"/api/v1/workspaces/{ulid_of(workspace.id)}/webhooks",
                       render=lambda: json(r.WebhookSecretOne(r.with_secret(Webhook.get_by_id(webhook_id), secret)),
                                           status=201))


@bp.put(_ONE)
@signed_in
async def update_webhook(request, workspace_id, webhook_id):
    workspace = _admin_workspace(request, workspace_id)
    found = _webhook(workspace, webhook_id)
    data = body(request)
    form = validate(data, WEBHOOK_UPDATE)
    cleared = "default_channel_id" in data and form.get("default_channel_id") is None
    command_id = c.new_command_id()
    secret = _secret(command_id) if form.get("regenerate_secret") else None
    command = UpdateWebhook(command_id=command_id, webhook_id=found.id, name=form.get("name"),
                            default_channel_id=_channel_of(workspace.id, form.get("default_channel_id"),
                                                           "default_channel_id"),
                            clear_default_channel=cleared,
                            is_active=form.get("is_active"), secret_hash=digest(secret) if secret else None,
                            at=utcnow())

    def render():
        updated = Webhook.get_by_id(found.id)
        return json(r.WebhookSecretOne(r.with_secret(updated, secret)) if secret else r.WebhookOne(r.webhook(updated)))

    return await write(request, command, render=render)


@bp.delete(_ONE)
@signed_in
async def delete_webhook(request, workspace_id, webhook_id):
    found = _webhook(_admin_workspace(request, workspace_id), webhook_id)
    return await write(request, DeleteWebhook(command_id=c.new_command_id(), webhook_id=found.id),
                       render=lambda: empty(status=204))


def _presented_secret(request) -> str:
    secret = request.headers.get("x-webhook-secret")
    authorization = request.headers.get("authorization") or ""
    if secret is None and authorization[:7].lower() == "bearer ":
        secret = authorization[7:].strip()
    if not secret:
        raise Unauthenticated("A webhook secret is required.")
    return secret


@bp.post("/webhooks/<webhook_id:str>/messages")
async def post_webhook_message(request, webhook_id):
    """An outside service's post, as the webhook's bot user (author kind `webhook`)."""
    found = Webhook.get_or_none(Webhook.id == path_ulid(webhook_id, "Webhook not found."))
    if found is None:
        raise NotFound("Webhook not found.")
    if not secret_matches(found, _presented_secret(request)):
        raise Unauthenticated("The webhook secret is not valid.")
    if not found.is_active:
        raise Forbidden("This webhook is inactive.")
    await throttle.hit(request, "webhook", {f"webhook:{found.id}": request.app.ctx.settings.throttle.webhook})
    form = validate(body(request), INCOMING)
    channel_id = _channel_of(found.workspace_id, form.get("channel_id"), "channel_id") or found.default_channel_id
    if channel_id is None:
        text = "The channel id field is required when the webhook has no default channel."
        raise Invalid(text, {"channel_id": [text]})
    bot = User.get_by_id(found.bot_user_id)
    location = f"/api/v1/workspaces/{ulid_of(found.workspace_id)}/channels/{ulid_of(channel_id)}/messages"
    return await messages.post(request, channel_id, bot.id, found.name, "webhook", form, location)

