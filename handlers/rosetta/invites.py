"""Invite links to a RosettaChat workspace: admins create, list and revoke them; anyone may preview
one before signing in; a signed-in user accepts one to join.

A token is 256 bits (an HMAC of its command id under the deployment's key) and only its SHA-256 is
stored, as for bearer tokens.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from peewee import fn
from sanic import Blueprint
from sanic.response import empty

from domain import chat_access as access
from domain import commands as c
from domain.errors import NotFound
from domain.signing import keyed_digest
from domain.tokens import digest
from domain.workspaces import CreateInvite, RevokeInvite
from handlers.bodies import json, path_ulid
from handlers.rosetta import resources as r
from handlers.rosetta.forms import Field, body, validate
from handlers.rosetta.guard import signed_in
from handlers.rosetta.members import member_resource
from handlers.rosetta.paging import paginate
from handlers.rosetta.schemas import stamp
from handlers.writing import claim_ids, write
from models import Invite, Membership, Workspace, ulid_of, utcnow

bp = Blueprint("rosetta_invites", strict_slashes=False)

INVITE = {"expires_in_days": Field(type="integer", min=1, max=365, nullable=True, example=7,
                                   description="Days until the link stops working; never when absent.")}
NOT_VALID = "This invite link is not valid."


def _live():
    now = utcnow()
    return Invite.revoked_at.is_null() & (Invite.expires_at.is_null() | (Invite.expires_at > now))


def invite_resource(invite: Invite) -> r.Invite:
    return r.Invite(ulid_of(invite.id), ulid_of(invite.workspace_id), invite.created_by_id, stamp(invite.expires_at),
                    stamp(invite.created_at))


def _invite_url(request, token: str) -> str:
    settings = request.app.ctx.settings.auth
    if settings.frontend_url:
        return f"{settings.frontend_url.rstrip('/')}/invites/{token}"
    return f"{settings.app_url.rstrip('/')}/api/v1/invites/{token}"


def _by_token(token: str) -> Invite:
    invite = Invite.get_or_none((Invite.token_hash == digest(token)) & _live()) if len(token) <= 200 else None
    if invite is None:
        raise NotFound(NOT_VALID)
    return invite


def _admin_workspace(request, workspace_id: str):
    return access.member_workspace(viewer_id=request.ctx.user.id, role="admin",
                                   workspace_id=path_ulid(workspace_id, "Workspace not found."))


@bp.get("/workspaces/<workspace_id:str>/invites")
@signed_in
async def list_invites(request, workspace_id):
    workspace = _admin_workspace(request, workspace_id)
    live = (Invite.select().where((Invite.workspace == workspace.id) & _live())
            .order_by(Invite.created_at.desc(), Invite.id.desc()))
    items, meta, links = paginate(request, live, invite_resource)
    return json(r.InviteList(items, meta, links))


@bp.post("/workspaces/<workspace_id:str>/invites")
@signed_in
async def create_invite(request, workspace_id):
    viewer = request.ctx.user
    workspace = _admin_workspace(request, workspace_id)
    form = validate(body(request), INVITE)
    days = form.get("expires_in_days")
    ids = await claim_ids(request, f"user:{viewer.id}", "id")
    # Derived from the command, so a retry under the same Idempotency-Key is shown the same token.
    token = keyed_digest("invite-token", ids["command_id"])
    invite_id = uuid.UUID(ids["id"])
    now = utcnow()
    command = CreateInvite(command_id=ids["command_id"], invite_id=invite_id, group_id=workspace.id,
                           token_hash=digest(token), created_by=viewer.id,
                           expires_at=now + dt.timedelta(days=days) if days else None, at=now)

    def created():
        shown = msgspec.structs.asdict(invite_resource(Invite.get_by_id(invite_id)))
        return json(r.InviteCreated(r.NewInvite(**shown, token=token, url=_invite_url(request, token))), status=201)

    return await write(request, command, location=f"/api/v1/workspaces/{ulid_of(workspace.id)}/invites",
                       render=created)


@bp.delete("/workspaces/<workspace_id:str>/invites/<invite_id:str>")
@signed_in
async def revoke_invite(request, workspace_id, invite_id):
    workspace = _admin_workspace(request, workspace_id)
    key = path_ulid(invite_id, "Invite not found.")
    invite = Invite.get_or_none((Invite.id == key) & (Invite.workspace == workspace.id) & Invite.revoked_at.is_null())
    if invite is None:
        raise NotFound("Invite not found.")
    return await write(request, RevokeInvite(command_id=c.new_command_id(), invite_id=key, at=utcnow()),
                       render=lambda: empty(status=204))


@bp.get("/invites/<token:str>")
async def preview_invite(request, token):
    """Open to all, so the join screen can show what the link leads to before sign-in."""
    invite = _by_token(token)
    workspace = Workspace.get_by_id(invite.workspace_id)
    count = Membership.select(fn.COUNT(Membership.id)).where(Membership.workspace == workspace.id).scalar()
    return json(r.InvitePreviewOne(r.InvitePreview(
        r.InviteWorkspace(ulid_of(workspace.id), workspace.name, workspace.visibility, count),
        stamp(invite.expires_at))))


@bp.post("/invites/<token:str>/accept")
@signed_in
async def accept_invite(request, token):
    """Join the invite's workspace: 201 with the membership, or 200 with it when already a member."""
    viewer = request.ctx.user
    invite = _by_token(token)
    existing = Membership.get_or_none((Membership.workspace == invite.workspace_id) & (Membership.user == viewer.id))
    if existing is not None:
        return json(r.MemberOne(member_resource(existing, viewer)))
    command = c.AddMember(command_id=c.new_command_id(), group_id=invite.workspace_id, user_id=viewer.id, at=utcnow())
    return await write(request, command, render=lambda: json(r.MemberOne(member_resource(
        access.membership(workspace_id=invite.workspace_id, user_id=viewer.id), viewer)), status=201))
