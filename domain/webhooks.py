"""Incoming webhooks of a workspace: each posts as a bot user of its own, named as the webhook is.

Secrets have 256 bits of entropy, so their SHA-256 is kept (domain.tokens.digest, as for tokens) and
compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid

from peewee import SQL

from domain.commands import Command
from domain.tokens import digest
from domain.writes import apply, create, update
from models import User, Webhook


class CreateWebhook(Command):
    webhook_id: uuid.UUID
    group_id: uuid.UUID
    name: str
    secret_hash: str
    default_channel_id: uuid.UUID | None
    bot_user_uid: uuid.UUID
    created_by: int
    at: dt.datetime


class UpdateWebhook(Command):
    webhook_id: uuid.UUID
    at: dt.datetime
    name: str | None = None
    default_channel_id: uuid.UUID | None = None
    clear_default_channel: bool = False
    is_active: bool | None = None
    secret_hash: str | None = None


class DeleteWebhook(Command):
    webhook_id: uuid.UUID


def secret_matches(webhook: Webhook, secret: str) -> bool:
    return hmac.compare_digest(webhook.secret_hash, digest(secret))


@apply.register
def _(cmd: CreateWebhook) -> None:
    create(User, uid=cmd.bot_user_uid, name=cmd.name, created_at=cmd.at, updated_at=cmd.at)
    bot_id = User.select(User.id).where(User.uid == cmd.bot_user_uid).scalar()
    create(Webhook, id=cmd.webhook_id, workspace=cmd.group_id, name=cmd.name, secret_hash=cmd.secret_hash,
           default_channel=cmd.default_channel_id, bot_user=bot_id, created_by=cmd.created_by,
           created_at=cmd.at, updated_at=cmd.at)


@apply.register
def _(cmd: UpdateWebhook) -> None:
    default = SQL("NULL") if cmd.clear_default_channel else cmd.default_channel_id  # update() skips None values
    values = {"name": cmd.name, "default_channel": default, "is_active": cmd.is_active,
              "secret_hash": cmd.secret_hash, "updated_at": cmd.at}
    update(Webhook, Webhook.id == cmd.webhook_id, values, "Webhook not found.")
    if cmd.name is not None:
        bot = Webhook.select(Webhook.bot_user).where(Webhook.id == cmd.webhook_id)
        User.update(name=cmd.name, updated_at=cmd.at).where(User.id.in_(bot)).execute()


@apply.register
def _(cmd: DeleteWebhook) -> None:
    # The bot user stays: the messages it posted keep their author.
    Webhook.delete().where(Webhook.id == cmd.webhook_id).execute()
