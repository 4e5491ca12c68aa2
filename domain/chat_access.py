"""Who may see and do what in RosettaChat workspaces, channels and direct conversations.

Each function returns what the viewer may see or raises: NotFound for what does not exist or is
hidden from them (a private workspace never shows a non-member that it exists), Forbidden for
what they can see but their role may not do.

- A workspace is `public` (anyone signed in may see and join it), `password` (anyone may see it;
  joining takes its password) or `private` (members only; invites add people).
- Roles: `owner` > `admin` > `member`. Admins manage members, channels, invites and webhooks; only
  an owner makes or unmakes owners, and changes or deletes the workspace.
- A channel is `public` (every member), `private` (its channel members, and admins) or `password`
  (listed to every member; entered with its password; admins enter without).
"""

from __future__ import annotations

import uuid

from peewee import JOIN, fn

from domain.errors import Forbidden, NotFound
from domain.languages import canonical
from models import Channel, ChannelMember, Membership, Prepared, User, Workspace

RANK = {"member": 1, "admin": 2, "owner": 3}
NOT_A_MEMBER = "You are not a member of this workspace."


def at_least(role: str, needed: str) -> bool:
    return RANK.get(role, 0) >= RANK[needed]


_workspace = Prepared(
    lambda workspace_id, viewer_id: Workspace.select(Workspace, Membership.role.alias("role"))
    .join(Membership, JOIN.LEFT_OUTER, on=(Membership.workspace == Workspace.id) & (Membership.user == viewer_id))
    .where(Workspace.id == workspace_id).objects(),
    workspace_id=uuid.UUID, viewer_id=int,
)


def workspace(*, viewer_id: int, workspace_id: uuid.UUID) -> Workspace:
    """The workspace, if the viewer may see it; `.role` is theirs, or None for a non-member."""
    found = _workspace.first(workspace_id=workspace_id, viewer_id=viewer_id)
    if found is None or (found.role is None and found.visibility == "private"):
        raise NotFound("Workspace not found.")
    return found


def member_workspace(*, viewer_id: int, workspace_id: uuid.UUID, role: str = "member") -> Workspace:
    """The workspace of a member whose role is at least `role`."""
    found = workspace(viewer_id=viewer_id, workspace_id=workspace_id)
    if found.role is None:
        raise Forbidden(NOT_A_MEMBER)
    if not at_least(found.role, role):
        raise Forbidden(f"Only the workspace's {role}s may do that." if role == "owner" else
                        "Only the workspace's owners and admins may do that.")
    return found


# The read every message request makes: the channel, the viewer's role and language in its workspace,
# and whether the viewer has entered it (channel members of a private or password channel).
_channel = Prepared(
    lambda workspace_id, channel_id, viewer_id: Channel.select(
        Channel, Membership.role.alias("role"), Membership.preferred_language.alias("member_language"),
        ChannelMember.id.alias("entered"))
    .join(Membership, on=(Membership.workspace == Channel.workspace) & (Membership.user == viewer_id))
    .join(ChannelMember, JOIN.LEFT_OUTER, src=Channel,
          on=(ChannelMember.channel == Channel.id) & (ChannelMember.user == viewer_id))
    .where((Channel.id == channel_id) & (Channel.workspace == workspace_id)).objects(),
    workspace_id=uuid.UUID, channel_id=uuid.UUID, viewer_id=int,
)


def may_enter(channel: Channel, role: str, entered: bool) -> bool:
    return channel.visibility == "public" or entered or at_least(role, "admin")


def may_see(channel: Channel, role: str, entered: bool) -> bool:
    """In the channel list: what the viewer may enter, and password channels they may enter with it."""
    return channel.visibility == "password" or may_enter(channel, role, entered)


def channel(*, viewer_id: int, workspace_id: uuid.UUID, channel_id: uuid.UUID, enter: bool = True) -> Channel:
    """A channel of the workspace the viewer may see (`enter`: may also read and post in); `.role` is the
    viewer's role in the workspace, `.member_language` their language there (None: their own)."""
    found = _channel.first(workspace_id=workspace_id, channel_id=channel_id, viewer_id=viewer_id)
    if found is None:
        member_workspace(viewer_id=viewer_id, workspace_id=workspace_id)
        raise NotFound("Channel not found.")
    entered = found.entered is not None
    if not may_see(found, found.role, entered):
        raise NotFound("Channel not found.")
    if enter and not may_enter(found, found.role, entered):
        raise Forbidden("This channel needs its password: join it first.")
    return found


def admin_channel(*, viewer_id: int, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    found = channel(viewer_id=viewer_id, workspace_id=workspace_id, channel_id=channel_id, enter=False)
    if not at_least(found.role, "admin"):
        raise Forbidden("Only the workspace's owners and admins may do that.")
    return found


_conversation = Prepared(
    lambda conversation_id, viewer_id: Channel.select(Channel, ChannelMember.last_read.alias("last_read"))
    .join(ChannelMember, on=(ChannelMember.channel == Channel.id) & (ChannelMember.user == viewer_id))
    .where((Channel.id == conversation_id) & (Channel.kind == "direct")).objects(),
    conversation_id=uuid.UUID, viewer_id=int,
)


def conversation(*, viewer_id: int, conversation_id: uuid.UUID) -> Channel:
    """A direct conversation the viewer takes part in; `.last_read` is their read mark."""
    found = _conversation.first(conversation_id=conversation_id, viewer_id=viewer_id)
    if found is None:
        raise NotFound("Conversation not found.")
    return found


def channels_open_to(viewer_id: int, *, listed: bool = False):
    """The ids of the workspace channels the viewer may enter (`listed`: or see in a list), as a subquery
    for searches across workspaces (the Sector dialect's)."""
    mine = Membership.select(Membership.workspace).where(Membership.user == viewer_id)
    managed = mine.where(Membership.role.in_(("owner", "admin")))
    entered = ChannelMember.select(ChannelMember.channel).where(ChannelMember.user == viewer_id)
    open_to_all = ("public", "password") if listed else ("public",)
    return Channel.select(Channel.id).where(Channel.workspace.in_(mine) & (
        Channel.visibility.in_(open_to_all) | Channel.workspace.in_(managed) | Channel.id.in_(entered)))


def membership(*, workspace_id: uuid.UUID, user_id: int) -> Membership:
    found = Membership.get_or_none((Membership.workspace == workspace_id) & (Membership.user == user_id))
    if found is None:
        raise NotFound("Member not found.")
    return found


def reader_languages(channel: Channel) -> set[str]:
    """The languages the readers of a channel read in (canonical tags): in a workspace, each reader's
    language there (the member's own for the workspace, else the user's); in a direct conversation,
    the two participants'."""
    if channel.kind == "direct":
        query = (User.select(User.preferred_language).join(ChannelMember, on=ChannelMember.user == User.id)
                 .where(ChannelMember.channel == channel.id))
    else:
        query = (Membership.select(fn.COALESCE(Membership.preferred_language, User.preferred_language))
                 .join(User).where(Membership.workspace == channel.workspace_id))
        if channel.visibility != "public":
            entered = ChannelMember.select(ChannelMember.user).where(ChannelMember.channel == channel.id)
            query = query.where(Membership.role.in_(("owner", "admin")) | Membership.user.in_(entered))
    return {canonical(language) for (language,) in query.distinct().tuples() if language}
