"""Reads that authorize: each returns a row the viewer may see, or raises NotFound/Forbidden.

A non-member is told a group, channel or message does not exist (404), so ids cannot be
probed; a member who may see but not change a thing is told 403.
"""

from __future__ import annotations

import uuid

from domain import chat_access
from domain.errors import Forbidden, Invalid, NotFound
from models import Channel, Membership, Message, Prepared, User, Workspace


def account(*, uid: uuid.UUID) -> User:
    user = User.get_or_none(User.uid == uid)
    if user is None:
        raise NotFound("Account not found.")
    return user


def account_by_username(username: str) -> User | None:
    return User.get_or_none(User.username_key == username.casefold())


def accounts(*, uids: list[uuid.UUID]) -> list[User]:
    """The accounts with these ids, in the same order; Invalid names any that are missing."""
    found = {u.uid: u for u in User.select().where(User.uid.in_(uids))}
    missing = [str(uid) for uid in uids if uid not in found]
    if missing:
        text = "No such account: " + ", ".join(missing)
        raise Invalid(text, {"members": [text]})
    return [found[uid] for uid in uids]


def membership(*, viewer: User, group_id: uuid.UUID) -> Membership | None:
    return Membership.get_or_none((Membership.workspace == group_id) & (Membership.user == viewer.id))


# The reads every request makes are prepared once (see models.Prepared), and join the viewer's
# membership so one query both finds and authorizes.
_group = Prepared(
    lambda group_id, viewer_id: Workspace.select().join(Membership)
    .where((Workspace.id == group_id) & (Membership.user == viewer_id)),
    group_id=uuid.UUID, viewer_id=int,
)
_channel = Prepared(
    lambda group_id, channel_id, viewer_id: Channel.select(Channel, Workspace).join(Workspace)
    .join(Membership).where((Channel.id == channel_id) & (Channel.workspace == group_id) & (Membership.user == viewer_id)),
    group_id=uuid.UUID, channel_id=uuid.UUID, viewer_id=int,
)
_message = Prepared(
    lambda group_id, channel_id, message_id, viewer_id: Message.select(Message, User, Channel, Workspace)
    .join(User).switch(Message).join(Channel).join(Workspace).join(Membership)
    .where((Message.id == message_id) & (Message.channel == channel_id) & (Channel.workspace == group_id)
           & (Membership.user == viewer_id) & Message.deleted_at.is_null()),
    group_id=uuid.UUID, channel_id=uuid.UUID, message_id=uuid.UUID, viewer_id=int,
)


def group_for_member(*, viewer: User, group_id: uuid.UUID) -> Workspace:
    group = _group.first(group_id=group_id, viewer_id=viewer.id)
    if group is None:
        raise NotFound("Group not found.")
    return group


def group_for_owner(*, viewer: User, group_id: uuid.UUID) -> Workspace:
    group = group_for_member(viewer=viewer, group_id=group_id)
    if group.owner_id != viewer.id:
        raise Forbidden("Only the group's owner may do that.")
    return group


def channel_for_member(*, viewer: User, group_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    """The channel, with its group loaded (`channel.workspace`)."""
    channel = _channel.first(group_id=group_id, channel_id=channel_id, viewer_id=viewer.id)
    if channel is None:
        group_for_member(viewer=viewer, group_id=group_id)
        raise NotFound("Channel not found.")
    if channel.visibility != "public":  # a RosettaChat private or password channel: its own rules hold here too
        chat_access.channel(viewer_id=viewer.id, workspace_id=group_id, channel_id=channel_id)
    return channel


def message_for_member(*, viewer: User, group_id: uuid.UUID, channel_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    """The live message, with its author and its channel's group loaded."""
    message = _message.first(group_id=group_id, channel_id=channel_id, message_id=message_id, viewer_id=viewer.id)
    if message is None:
        channel_for_member(viewer=viewer, group_id=group_id, channel_id=channel_id)
        raise NotFound("Message not found.")
    if message.channel.visibility != "public":
        chat_access.channel(viewer_id=viewer.id, workspace_id=group_id, channel_id=channel_id)
    return message


def member_uids(group: Workspace) -> list[uuid.UUID]:
    """Member account ids of a group, the owner first, then by joining time."""
    query = (
        User.select(User.uid)
        .join(Membership)
        .where(Membership.workspace == group.id)
        .order_by((Membership.role != "owner"), Membership.created_at, User.id)
    )
    return [row.uid for row in query]


def member_uids_of(groups: list[Workspace]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Member ids of many groups in one query (search results)."""
    out: dict[uuid.UUID, list[uuid.UUID]] = {g.id: [] for g in groups}
    if not groups:
        return out
    query = (
        Membership.select(Membership.workspace, User.uid)
        .join(User)
        .where(Membership.workspace.in_(list(out)))
        .order_by((Membership.role != "owner"), Membership.created_at, User.id)
    )
    for row in query:
        out[row.workspace_id].append(row.user.uid)
    return out
