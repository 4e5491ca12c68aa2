"""Workspaces (Sector groups), their members, channels and invites: the commands RosettaChat adds,
and how every command of this area applies."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid

from peewee import SQL, IntegrityError

from domain import commands as c
from domain import realtime as rt
from domain.commands import Command
from domain.errors import Invalid, NotFound
from domain.writes import apply, create, update
from models import Channel, ChannelMember, Invite, Membership, Workspace, db

ROLES = ("owner", "admin", "member")
LAST_OWNER = "The workspace must keep at least one owner."
SLUG_TAKEN = "The slug has already been taken."


class ChangeMember(Command):
    """A member's role or per-workspace language; the last owner cannot stop being one."""

    group_id: uuid.UUID
    user_id: int
    role: str | None = None
    preferred_language: str | None = None
    clear_language: bool = False  # null was asked for: the user's own language applies again


class AddChannelMember(Command):
    channel_id: uuid.UUID
    user_id: int
    at: dt.datetime


class CreateInvite(Command):
    invite_id: uuid.UUID
    group_id: uuid.UUID
    token_hash: str
    created_by: int
    expires_at: dt.datetime | None
    at: dt.datetime


class RevokeInvite(Command):
    invite_id: uuid.UUID
    at: dt.datetime


def slugify(name: str) -> str:
    """A slug from a name: ASCII letters and digits joined by dashes, at most 80 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:72].strip("-")


def _free_slug(taken, name: str) -> str:
    """The slug of `name`, with the first free numeric suffix when it is taken (`taken(slug)` says)."""
    base = slugify(name) or "w"
    slug, n = base, 1
    while taken(slug):
        n += 1
        slug = f"{base}-{n}"
    return slug


def _workspace_slug_taken(slug: str, group_id: uuid.UUID) -> bool:
    return Workspace.select().where((Workspace.slug == slug) & (Workspace.id != group_id)).exists()


def _channel_slug_taken(slug: str, group_id: uuid.UUID, channel_id: uuid.UUID) -> bool:
    return Channel.select().where((Channel.workspace == group_id) & (Channel.slug == slug)
                                  & (Channel.id != channel_id)).exists()


def _chosen_slug(slug: str, taken: bool) -> str:
    if taken:
        raise Invalid(SLUG_TAKEN, {"slug": [SLUG_TAKEN]})
    return slug


@apply.register
def _(cmd: c.CreateGroup) -> None:
    slug = (_chosen_slug(cmd.slug, _workspace_slug_taken(cmd.slug, cmd.group_id)) if cmd.slug
            else _free_slug(lambda s: _workspace_slug_taken(s, cmd.group_id), cmd.name))
    create(Workspace, id=cmd.group_id, name=cmd.name, description=cmd.description, owner=cmd.owner_id, slug=slug,
           visibility=cmd.visibility, password_hash=cmd.password_hash, created_at=cmd.at, updated_at=cmd.at)
    members = [cmd.owner_id] + [m for m in dict.fromkeys(cmd.member_ids) if m != cmd.owner_id]
    rows = [{"workspace": cmd.group_id, "user": m, "role": "owner" if m == cmd.owner_id else "member",
             "created_at": cmd.at} for m in members]
    try:
        with db.atomic():
            Membership.insert_many(rows).execute()
    except IntegrityError as e:
        raise NotFound("A member account does not exist.", {"members": ["A member account does not exist."]}) from e
    for row in rows[1:]:  # the owner made it
        rt.announce(cmd.command_id, rt.MEMBERSHIP_ADDED, f"{cmd.group_id.hex}:{row['user']}",
                    rt.membership_data(cmd.group_id, row["user"], row["role"]), members)


def _visibility_values(cmd) -> dict:
    """What an update's visibility and password change: leaving "password" drops the password."""
    if cmd.visibility is not None and cmd.visibility != "password":
        return {"visibility": cmd.visibility, "password_hash": SQL("NULL")}  # update() skips None values
    return {"visibility": cmd.visibility, "password_hash": cmd.password_hash}


@apply.register
def _(cmd: c.UpdateGroup) -> None:
    values = {"name": cmd.name, "description": cmd.description, "updated_at": cmd.at, **_visibility_values(cmd)}
    if cmd.slug is not None:
        values["slug"] = _chosen_slug(cmd.slug, _workspace_slug_taken(cmd.slug, cmd.group_id))
    update(Workspace, Workspace.id == cmd.group_id, values, "Group not found.")


@apply.register
def _(cmd: c.DeleteGroup) -> None:
    Workspace.delete().where(Workspace.id == cmd.group_id).execute()


@apply.register
def _(cmd: c.AddMember) -> None:
    already = Membership.select().where((Membership.workspace == cmd.group_id) & (Membership.user == cmd.user_id))
    if not already.exists():
        create(Membership, workspace=cmd.group_id, user=cmd.user_id, role=cmd.role, created_at=cmd.at)
        rt.announce(cmd.command_id, rt.MEMBERSHIP_ADDED, f"{cmd.group_id.hex}:{cmd.user_id}",
                    rt.membership_data(cmd.group_id, cmd.user_id, cmd.role), rt.members(cmd.group_id))


def _owners(group_id: uuid.UUID):
    return Membership.select().where((Membership.workspace == group_id) & (Membership.role == "owner"))


def _membership(group_id: uuid.UUID, user_id: int) -> Membership:
    member = Membership.get_or_none((Membership.workspace == group_id) & (Membership.user == user_id))
    if member is None:
        raise NotFound("Member not found.")
    return member


@apply.register
def _(cmd: ChangeMember) -> None:
    member = _membership(cmd.group_id, cmd.user_id)
    values = {}
    if cmd.role is not None and cmd.role != member.role:
        if member.role == "owner" and _owners(cmd.group_id).count() == 1:
            raise Invalid(LAST_OWNER, {"role": [LAST_OWNER]})
        values["role"] = cmd.role
    if cmd.preferred_language is not None or cmd.clear_language:
        values["preferred_language"] = cmd.preferred_language
    if values:
        Membership.update(**values).where(Membership.id == member.id).execute()
    if "role" in values:
        rt.announce(cmd.command_id, rt.MEMBERSHIP_ROLE_CHANGED, f"{cmd.group_id.hex}:{cmd.user_id}",
                    rt.membership_data(cmd.group_id, cmd.user_id, cmd.role, previous_role=member.role),
                    rt.members(cmd.group_id))


@apply.register
def _(cmd: c.RemoveMember) -> None:
    member = Membership.get_or_none((Membership.workspace == cmd.group_id) & (Membership.user == cmd.user_id))
    if member is None:
        return
    owners = list(_owners(cmd.group_id).order_by(Membership.created_at, Membership.id))
    if member.role == "owner" and len(owners) == 1:
        raise Invalid(LAST_OWNER, {"role": [LAST_OWNER]})
    rt.announce(cmd.command_id, rt.MEMBERSHIP_REMOVED, f"{cmd.group_id.hex}:{cmd.user_id}",
                rt.membership_data(cmd.group_id, cmd.user_id, member.role), rt.members(cmd.group_id))
    member.delete_instance()
    channels = Channel.select(Channel.id).where(Channel.workspace == cmd.group_id)
    ChannelMember.delete().where((ChannelMember.user == cmd.user_id) & ChannelMember.channel.in_(channels)).execute()
    # The creator (Sector's owner of the group) leaving hands that role to the longest-standing owner.
    heir = next((o.user_id for o in owners if o.user_id != cmd.user_id), None)
    if heir is not None:
        Workspace.update(owner=heir).where((Workspace.id == cmd.group_id) & (Workspace.owner == cmd.user_id)).execute()


@apply.register
def _(cmd: c.CreateChannel) -> None:
    taken = lambda s: _channel_slug_taken(s, cmd.group_id, cmd.channel_id)  # noqa: E731
    slug = _chosen_slug(cmd.slug, taken(cmd.slug)) if cmd.slug else _free_slug(taken, cmd.name)
    create(Channel, id=cmd.channel_id, workspace=cmd.group_id, name=cmd.name, description=cmd.description, slug=slug,
           visibility=cmd.visibility, password_hash=cmd.password_hash, created_by=cmd.created_by,
           created_at=cmd.at, updated_at=cmd.at)
    if cmd.visibility != "public":
        ChannelMember.insert(channel=cmd.channel_id, user=cmd.created_by, created_at=cmd.at).execute()
    _announce_channel(cmd.command_id, rt.CHANNEL_CREATED, cmd.channel_id)


def _announce_channel(command_id: str, type_: str, channel_id: uuid.UUID) -> None:
    channel = Channel.get_or_none(Channel.id == channel_id)
    if channel is not None:
        rt.announce(command_id, type_, channel_id.hex, rt.channel_data(channel), rt.channel_viewers(channel))


@apply.register
def _(cmd: c.UpdateChannel) -> None:
    values = {"name": cmd.name, "description": cmd.description, "updated_at": cmd.at, **_visibility_values(cmd)}
    if cmd.slug is not None:
        channel = Channel.get_or_none(Channel.id == cmd.channel_id)
        if channel is None:
            raise NotFound("Channel not found.")
        values["slug"] = _chosen_slug(cmd.slug, _channel_slug_taken(cmd.slug, channel.workspace_id, cmd.channel_id))
    update(Channel, Channel.id == cmd.channel_id, values, "Channel not found.")
    _announce_channel(cmd.command_id, rt.CHANNEL_UPDATED, cmd.channel_id)


@apply.register
def _(cmd: c.DeleteChannel) -> None:
    _announce_channel(cmd.command_id, rt.CHANNEL_DELETED, cmd.channel_id)  # while its viewers are known
    Channel.delete().where(Channel.id == cmd.channel_id).execute()


@apply.register
def _(cmd: AddChannelMember) -> None:
    ChannelMember.insert(channel=cmd.channel_id, user=cmd.user_id, created_at=cmd.at).on_conflict_ignore().execute()


@apply.register
def _(cmd: CreateInvite) -> None:
    create(Invite, id=cmd.invite_id, workspace=cmd.group_id, token_hash=cmd.token_hash, created_by=cmd.created_by,
           expires_at=cmd.expires_at, created_at=cmd.at)


@apply.register
def _(cmd: RevokeInvite) -> None:
    Invite.update(revoked_at=cmd.at).where((Invite.id == cmd.invite_id) & Invite.revoked_at.is_null()).execute()
