"""Searches of each resource, scoped to what the viewer may see, ordered by creation, paged by cursor.

Filters combine with AND; within a list filter (ids, members, channels, authors) any value
matches, except `members`, where a group must have every listed account. Name and body
filters are case-insensitive substrings (a message's body in any language it was translated
into matches too); `since`/`until` bound created_at inclusively.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from peewee import SQL, NodeList, Tuple, fn

from domain.chat_access import channels_open_to
from domain.errors import Invalid
from models import Channel, Membership, Message, Translation, User, Workspace, folded, fold_text


class Page:
    """A window of a search: at most `limit` rows after the cursor `after`."""

    def __init__(self, limit: int, after: str | None):
        self.limit = limit
        self.after = decode_cursor(after) if after else None


def encode_cursor(created_at: dt.datetime, key) -> str:
    raw = f"{created_at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("|", 1)
        return dt.datetime.fromisoformat(at), key
    except (ValueError, UnicodeDecodeError):
        raise Invalid("The cursor is not one this server issued.", {"cursor": ["Invalid cursor."]}) from None


def contains(column, needle: str):
    """`column` holds `needle`, in any case, with `%` and `_` in it matched as themselves."""
    escaped = fold_text(needle).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((folded(column), SQL("LIKE"), f"%{escaped}%", SQL("ESCAPE '\\'")))


def _window(query, created, key, page: Page, key_type=str):
    if page.after is not None:
        at, last = page.after
        try:
            last = key_type(last)
        except ValueError:
            raise Invalid("The cursor is not one this server issued.", {"cursor": ["Invalid cursor."]}) from None
        # Tuple() does not pass values through the fields' converters, so convert them here.
        query = query.where(Tuple(created, key) > Tuple(created.db_value(at), key.db_value(last)))
    rows = list(query.order_by(created, key).limit(page.limit + 1))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (encode_cursor(rows[-1].created_at, getattr(rows[-1], key.name)) if more else None)


def _between(query, column, since, until):
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column <= until)
    return query


def accounts(*, ids=None, username=None, since=None, until=None, page: Page):
    """Accounts are public to every signed-in user (that is how members are found)."""
    # Sector accounts only: RosettaChat users, who have no username (Sector shows them as `rosetta-<id>`),
    # are not listed to every Sector user; the group or message that names one gives its id to read.
    query = User.select().where(User.username.is_null(False))
    if ids is not None:
        query = query.where(User.uid.in_(ids))
    if username:
        query = query.where(contains(User.username, username))
    query = _between(query, User.created_at, since, until)
    return _window(query, User.created_at, User.uid, page, uuid.UUID)


def _viewer_groups(viewer: User):
    return Membership.select(Membership.workspace).where(Membership.user == viewer.id)


def groups(*, viewer: User, ids=None, members=None, name=None, since=None, until=None, page: Page):
    query = Workspace.select().where(Workspace.id.in_(_viewer_groups(viewer)))
    if ids is not None:
        query = query.where(Workspace.id.in_(ids))
    if members:
        having_all = (
            Membership.select(Membership.workspace)
            .join(User)
            .where(User.uid.in_(members))
            .group_by(Membership.workspace)
            .having(fn.COUNT(Membership.user.distinct()) == len(set(members)))
        )
        query = query.where(Workspace.id.in_(having_all))
    if name:
        query = query.where(contains(Workspace.name, name))
    query = _between(query, Workspace.created_at, since, until)
    return _window(query, Workspace.created_at, Workspace.id, page, uuid.UUID)


def channels(*, viewer: User, ids=None, groups=None, name=None, since=None, until=None, page: Page):
    query = Channel.select().where(Channel.id.in_(channels_open_to(viewer.id, listed=True)))
    if ids is not None:
        query = query.where(Channel.id.in_(ids))
    if groups is not None:
        query = query.where(Channel.workspace.in_(groups))
    if name:
        query = query.where(contains(Channel.name, name))
    query = _between(query, Channel.created_at, since, until)
    return _window(query, Channel.created_at, Channel.id, page, uuid.UUID)


def messages(*, viewer: User, ids=None, channels=None, authors=None, body=None, pinned=None,
             since=None, until=None, page: Page):
    query = (
        Message.select(Message, User.uid)
        .join(User)
        .where(Message.channel.in_(channels_open_to(viewer.id)) & Message.deleted_at.is_null())
    )
    if ids is not None:
        query = query.where(Message.id.in_(ids))
    if channels is not None:
        query = query.where(Message.channel.in_(channels))
    if authors is not None:
        query = query.where(User.uid.in_(authors))
    if body:
        # Also in any language a message was translated into: a reader finds it in their own.
        translated = Message.alias()
        current = (Translation.select(Translation.message)
                   .join(translated, on=translated.id == Translation.message)
                   .where((Translation.version == translated.version) & contains(Translation.body, body)))
        query = query.where(contains(Message.body, body) | Message.id.in_(current))
    if pinned is not None:
        query = query.where(Message.pinned == pinned)
    query = _between(query, Message.created_at, since, until)
    return _window(query, Message.created_at, Message.id, page, uuid.UUID)
