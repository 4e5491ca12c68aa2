"""Push devices: the signed-in user registers, lists and removes the devices that get notifications.

Registering is safe on every app launch: the token is the identity (domain/devices.py), so sending
it again refreshes the same device and answers 201 with it. The raw token is never shown or logged;
the lists show what the app sent beside it.
"""

from __future__ import annotations

import re

from sanic import Blueprint
from sanic.response import empty

from domain import commands as c
from domain import devices
from domain.errors import Invalid, NotFound
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.forms import Field, body, query, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.paging import PAGE, paginate
from handlers.rosetta.schemas import stamp
from handlers.writing import write
from models import Device, new_id, ulid_of, utcnow

bp = Blueprint("rosetta_devices", strict_slashes=False)

DEVICE_NOT_FOUND = "Device not found."

REGISTER = {
    "platform": Field(required=True, one_of=devices.PLATFORMS, example="ios",
                      description="OS family: `ios`, `android` or `web`."),
    "provider": Field(required=True, one_of=devices.PROVIDERS, example="fcm",
                      description="Push transport: `fcm` (any platform), `apns` (`ios` only) or `expo` (`ios`, "
                                  "`android`)."),
    "push_token": Field(required=True, max=4096, example="fGc1...token",
                        description="The token the gateway gave the app: for `apns` the device token in hex, for "
                                    "`expo` `ExponentPushToken[...]`, for `fcm` the registration token."),
    "device_id": Field(nullable=True, max=255, example="7B3F2A10-...",
                       description="The app install's stable identifier: a new token under the same one retires the "
                                   "old token's device."),
    "device_name": Field(nullable=True, max=255, example="John's iPhone", description="A label for the user."),
    "app_version": Field(nullable=True, max=64, example="1.4.2", description="The app's version."),
}
LIST = {
    "provider": Field(one_of=devices.PROVIDERS, example="fcm", description="Only devices of this transport."),
    "sort": Field(one_of=("last_used_at", "-last_used_at", "created_at", "-created_at"), example="-last_used_at",
                  description="`-last_used_at` (the default), `last_used_at`, `created_at` or `-created_at`."),
    **PAGE,
}

# What each gateway's tokens look like, and the platforms it reaches.
_TOKEN_SHAPES = {
    "apns": (re.compile(r"[0-9A-Fa-f]{64,200}"), "a hexadecimal APNs device token"),
    "expo": (re.compile(r"Expo(nent)?PushToken\[[^\]\s]+\]"), "an Expo push token (ExponentPushToken[...])"),
    "fcm": (re.compile(r"[\x21-\x7e]+"), "an FCM registration token"),
}
_PLATFORMS_OF = {"apns": ("ios",), "expo": ("ios", "android"), "fcm": devices.PLATFORMS}


def resource(device: Device) -> r.Device:
    return r.Device(ulid_of(device.id), device.platform, device.provider, device.device_name, device.device_id,
                    device.app_version, stamp(device.last_used_at), stamp(device.created_at))


def _checked(form: dict) -> dict:
    """The form, once its token fits its provider and the provider the platform (422 otherwise)."""
    provider = form["provider"]
    shape, words = _TOKEN_SHAPES[provider]
    if not shape.fullmatch(form["push_token"]):
        text = f"The push token must be {words}."
        raise Invalid(text, {"push_token": [text]})
    if form["platform"] not in _PLATFORMS_OF[provider]:
        text = f"The {provider} provider does not reach {form['platform']} devices."
        raise Invalid(text, {"provider": [text]})
    return form


@bp.post("/devices")
@signed_in
async def register_device(request):
    form = _checked(validate(body(request), REGISTER))
    user = request.ctx.user
    token_hash = devices.token_key(form["push_token"])
    command = devices.RegisterDevice(
        command_id=c.new_command_id(), device_id=new_id(), user_id=user.id, platform=form["platform"],
        provider=form["provider"], token_hash=token_hash, token_sealed=devices.sealed_token(form["push_token"]),
        client_device_id=form.get("device_id"), device_name=form.get("device_name"),
        app_version=form.get("app_version"), keep=request.app.ctx.settings.push.max_devices_per_user, at=utcnow())
    return await write(request, command, location="/api/v1/me/devices",
                       render=lambda: json(r.DeviceOne(resource(Device.get(Device.token_hash == token_hash))),
                                           status=201))


@bp.delete("/devices/<device_id:str>")
@signed_in
async def delete_device(request, device_id):
    key = path_ulid(device_id, DEVICE_NOT_FOUND)
    user_id = request.ctx.user.id
    if not Device.select().where((Device.id == key) & (Device.user == user_id)).exists():
        raise NotFound(DEVICE_NOT_FOUND)  # someone else's device is as unknown as no device
    return await write(request, devices.DeleteDevice(command_id=c.new_command_id(), device_id=key, user_id=user_id),
                       render=lambda: empty(status=204))


@bp.get("/me/devices")
@signed_in
async def list_my_devices(request):
    form = validate(query(request), LIST)
    rows = Device.select().where(Device.user == request.ctx.user.id)
    if form.get("provider"):
        rows = rows.where(Device.provider == form["provider"])
    sort = form.get("sort", "-last_used_at")
    column = Device.created_at if sort.endswith("created_at") else Device.last_used_at
    rows = rows.order_by(column.desc() if sort.startswith("-") else column, Device.id.desc())
    keep = {name: form[name] for name in ("provider", "sort") if name in form}
    items, meta, links = paginate(request, rows, resource, keep=keep)
    return json(r.DeviceList(items, meta, links))
