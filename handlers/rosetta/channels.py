"""Channels of a RosettaChat workspace: members list them; admins create, change and delete them;
a member joins a password channel with its password, and admins add members to private ones."""

from __future__ import annotations

import uuid

from peewee import JOIN
from sanic import Blueprint
from sanic.response import empty

from domain import chat_access as access
from domain import commands as c
from domain.errors import Invalid, NotFound
from domain.workspaces import AddChannelMember
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.accounts import check_shared_password
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.workspaces import JOIN_FORM, PASSWORD, SLUG, password_values, slug_free
from handlers.rosetta.schemas import stamp
from handlers.writing import claim_ids, write
from models import Channel, ChannelMember, ulid_of, utcnow

bp = Blueprint("rosetta_channels", strict_slashes=False)

_VISIBILITY = Field(one_of=("public", "private", "password"), nullable=True, example="public",
                    description="`public`: every member; `private`: its channel members (and admins); `password`: "
                                "listed to every member, entered with its password. `public` when absent.")
CHANNEL = {"name": Field(required=True, max=120, description="The channel's name.", example="general"),
           "slug": SLUG, "visibility": _VISIBILITY, "password": PASSWORD,
           "description": Field(max=2000, description="What the channel is for.", example="")}
CHANNEL_UPDATE = {**CHANNEL, "name": Field(max=120, description="The channel's name.", example="general")}
CHANNEL_MEMBER = {"user_id": Field(type="integer", required=True, min=1, max=2**53,
                                   description="A member of the workspace.", example=42)}
_ONE = "/workspaces/<workspace_id:str>/channels/<channel_id:str>"


def channel_resource(ch: Channel, entered: bool) -> r.Channel:
    return r.Channel(ulid_of(ch.id), ulid_of(ch.workspace_id), ch.name, ch.slug, ch.description, ch.visibility,
                     ch.kind, entered, stamp(ch.created_at), stamp(ch.updated_at))


def _render(viewer_id: int, workspace_id, channel_id, status: int = 200):
    found = access.channel(viewer_id=viewer_id, workspace_id=workspace_id, channel_id=channel_id, enter=False)
    entered = access.may_enter(found, found.role, found.entered is not None)
    return json(r.ChannelOne(channel_resource(found, entered)), status=status)


def _slug_taken(workspace_id, slug, channel_id=None):
    taken = Channel.select().where((Channel.workspace == workspace_id) & (Channel.slug == slug))
    return taken.where(Channel.id != channel_id) if channel_id else taken


def _workspace(request, workspace_id: str, role: str = "member"):
    return access.member_workspace(viewer_id=request.ctx.user.id, role=role,
                                   workspace_id=path_ulid(workspace_id, "Workspace not found."))


@bp.get("/workspaces/<workspace_id:str>/channels")
@signed_in
async def list_channels(request, workspace_id):
    viewer = request.ctx.user
    workspace = _workspace(request, workspace_id)
    rows = (Channel.select(Channel, ChannelMember.id.alias("entered"))
            .join(ChannelMember, JOIN.LEFT_OUTER,
                  on=(ChannelMember.channel == Channel.id) & (ChannelMember.user == viewer.id))
            .where(Channel.workspace == workspace.id).order_by(Channel.created_at, Channel.id).objects())
    seen = [(ch, access.may_enter(ch, workspace.role, ch.entered is not None)) for ch in rows
            if access.may_see(ch, workspace.role, ch.entered is not None)]
    return json(r.ChannelList([channel_resource(ch, entered) for ch, entered in seen]))


@bp.post("/workspaces/<workspace_id:str>/channels")
@signed_in
async def create_channel(request, workspace_id):
    viewer = request.ctx.user
    workspace = _workspace(request, workspace_id, role="admin")
    form = validate(body(request), CHANNEL)
    visibility = form.get("visibility") or "public"
    slug_free(form.get("slug"), _slug_taken(workspace.id, form.get("slug")))
    password_hash = await password_values(request, form, visibility)
    ids = await claim_ids(request, f"user:{viewer.id}", "id")
    channel_id = uuid.UUID(ids["id"])
    command = c.CreateChannel(command_id=ids["command_id"], channel_id=channel_id, group_id=workspace.id,
                              created_by=viewer.id, name=form["name"], description=form.get("description") or "",
                              slug=form.get("slug"), visibility=visibility, password_hash=password_hash, at=utcnow())
    return await write(request, command,
                       location=f"/api/v1/workspaces/{ulid_of(workspace.id)}/channels/{ulid_of(channel_id)}",
                       render=lambda: _render(viewer.id, workspace.id, channel_id, status=201))


@bp.put(_ONE)
@signed_in
async def update_channel(request, workspace_id, channel_id):
    viewer = request.ctx.user
    workspace = _workspace(request, workspace_id)
    found = access.admin_channel(viewer_id=viewer.id, workspace_id=workspace.id,
                                 channel_id=path_ulid(channel_id, "Channel not found."))
    form = validate(body(request), CHANNEL_UPDATE)
    slug_free(form.get("slug"), _slug_taken(workspace.id, form.get("slug"), found.id))
    visibility = form.get("visibility")
    password_hash = await password_values(request, form, visibility, had_password=found.password_hash is not None)
    command = c.UpdateChannel(command_id=c.new_command_id(), channel_id=found.id, name=form.get("name"),
                              description=form.get("description"), slug=form.get("slug"), visibility=visibility,
                              password_hash=password_hash, at=utcnow())
    return await write(request, command, render=lambda: _render(viewer.id, workspace.id, found.id))


@bp.delete(_ONE)
@signed_in
async def delete_channel(request, workspace_id, channel_id):
    workspace = _workspace(request, workspace_id)
    found = access.admin_channel(viewer_id=request.ctx.user.id, workspace_id=workspace.id,
                                 channel_id=path_ulid(channel_id, "Channel not found."))
    return await write(request, c.DeleteChannel(command_id=c.new_command_id(), channel_id=found.id),
                       render=lambda: empty(status=204))


@bp.post(_ONE + "/join")
@signed_in
async def join_channel(request, workspace_id, channel_id):
    """Enter a password channel with its password (any other channel the caller may see: at once)."""
    viewer = request.ctx.user
    workspace = _workspace(request, workspace_id)
    found = access.channel(viewer_id=viewer.id, workspace_id=workspace.id,
                           channel_id=path_ulid(channel_id, "Channel not found."), enter=False)
    form = validate(body(request), JOIN_FORM)
    if access.may_enter(found, found.role, found.entered is not None):
        return _render(viewer.id, workspace.id, found.id)
    if not await check_shared_password(request, form.get("password") or "", found.password_hash):
        raise Invalid("The password is incorrect.", {"password": ["The password is incorrect."]})
    command = AddChannelMember(command_id=c.new_command_id(), channel_id=found.id, user_id=viewer.id, at=utcnow())
    return await write(request, command, render=lambda: _render(viewer.id, workspace.id, found.id))


@bp.post(_ONE + "/members")
@signed_in
async def add_channel_member(request, workspace_id, channel_id):
    """Admins let a member of the workspace into a private or password channel."""
    viewer = request.ctx.user
    workspace = _workspace(request, workspace_id)
    found = access.admin_channel(viewer_id=viewer.id, workspace_id=workspace.id,
                                 channel_id=path_ulid(channel_id, "Channel not found."))
    form = validate(body(request), CHANNEL_MEMBER)
    try:
        access.membership(workspace_id=workspace.id, user_id=form["user_id"])
    except NotFound:
        raise Invalid("The selected user id is invalid.", {"user_id": ["The selected user id is invalid."]}) from None
    command = AddChannelMember(command_id=c.new_command_id(), channel_id=found.id, user_id=form["user_id"],
                               at=utcnow())
    return await write(request, command, render=lambda: _render(viewer.id, workspace.id, found.id))
