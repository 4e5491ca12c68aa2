"""Push devices: a user's phones and browsers that get a notification of each new message.

The push token is the device's identity. Only its keyed hash (`token_key`, for look-ups) and the token
sealed under the deployment's key (domain/sealing.py) are stored, so a leaked database gives no one a
way to push to anybody. Registering a token again refreshes its device; registering it from another
account moves the device there, so a phone handed on never shows the last owner's messages. A token
that replaces an older one of the same app install (the same `device_id` and gateway) retires the
older one, and a user keeps at most `[push] max_devices_per_user` devices: the least recently used go.
"""

from __future__ import annotations

import datetime as dt
import uuid

from domain.commands import Command
from domain.sealing import seal, unseal
from domain.signing import keyed_digest
from domain.writes import apply
from models import Device

PLATFORMS = ("ios", "android", "web")
PROVIDERS = ("fcm", "expo", "apns")


class RegisterDevice(Command):
    device_id: uuid.UUID  # the id a new device gets; a known token keeps its own
    user_id: int
    platform: str
    provider: str
    token_hash: str
    token_sealed: str
    client_device_id: str | None
    device_name: str | None
    app_version: str | None
    keep: int  # devices the user keeps at most
    at: dt.datetime


class DeleteDevice(Command):
    device_id: uuid.UUID
    user_id: int


def token_key(token: str) -> str:
    """The keyed hash a device is found by."""
    return keyed_digest("push-token", token)


def sealed_token(token: str) -> str:
    return seal({"token": token})


def token_of(sealed: str) -> str:
    """The token a device's `token_sealed` holds."""
    return unseal(sealed)["token"]


@apply.register
def _(cmd: RegisterDevice) -> None:
    values = {Device.user: cmd.user_id, Device.platform: cmd.platform, Device.provider: cmd.provider,
              Device.token_sealed: cmd.token_sealed, Device.device_id: cmd.client_device_id,
              Device.device_name: cmd.device_name, Device.app_version: cmd.app_version, Device.last_used_at: cmd.at}
    known = Device.get_or_none(Device.token_hash == cmd.token_hash)
    if known is not None and known.user_id == cmd.user_id:
        # A refresh: what the app did not send this time stays as it was.
        values = {column: value for column, value in values.items() if value is not None}
    # Insert-or-update in one statement: two registrations of one token at once make one device.
    Device.insert({Device.id: cmd.device_id, Device.token_hash: cmd.token_hash, Device.created_at: cmd.at, **values}
                  ).on_conflict(conflict_target=[Device.token_hash], update=values).execute()
    mine = Device.user == cmd.user_id
    if cmd.client_device_id is not None:
        Device.delete().where(mine & (Device.device_id == cmd.client_device_id) & (Device.provider == cmd.provider)
                              & (Device.token_hash != cmd.token_hash)).execute()
    kept = Device.select(Device.id).where(mine).order_by(Device.last_used_at.desc(), Device.id.desc()).limit(cmd.keep)
    Device.delete().where(mine & Device.id.not_in(kept)).execute()


@apply.register
def _(cmd: DeleteDevice) -> None:
    Device.delete().where((Device.id == cmd.device_id) & (Device.user == cmd.user_id)).execute()
