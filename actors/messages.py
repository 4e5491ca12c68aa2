"""The `messages` queue: what follows a message write once it has committed.

Each actor gets the ids of the messages that committed together (a busy channel's posts travel in
one Dramatiq message), re-reads them and passes over any that are gone, so a resend from the outbox
is harmless. They publish the messages' realtime events (actors/realtime.py): the write actor did
already, right after its commit, unless it crashed or Redis failed it, and an event id is published
once, so this is what makes the events survive a crash. `message_translated` does the same for the
translation actor's events. Translation and push have actors of their own
that the outbox sends the same follow-ups to (actors/translation.py, actors/push.py).
"""

from __future__ import annotations

import logging
import uuid

import dramatiq

from actors import realtime
from models import Message

logger = logging.getLogger(__name__)


def _note(message_ids: list[str], what: str) -> None:
    for message in Message.select().where(Message.id.in_([uuid.UUID(m) for m in message_ids])):
        logger.info("Message %s %s in channel %s by user %d (%s).", message.id, what, message.channel_id,
                    message.author_id, message.author_kind)


_POLICY = {"queue_name": "messages", "max_retries": 8, "min_backoff": 500, "max_backoff": 60_000, "time_limit": 60_000}


@dramatiq.actor(**_POLICY)
def message_posted(message_ids: list[str]) -> None:
    """Messages were posted."""
    _note(message_ids, "posted")
    realtime.publish_messages("message_posted", message_ids)


@dramatiq.actor(**_POLICY)
def message_edited(message_ids: list[str]) -> None:
    """Messages' content or pin changed."""
    _note(message_ids, "edited")
    realtime.publish_messages("message_edited", message_ids)


@dramatiq.actor(**_POLICY)
def message_deleted(message_ids: list[str]) -> None:
    """Messages were deleted (their tombstones stay)."""
    _note(message_ids, "deleted")
    realtime.publish_messages("message_deleted", message_ids)


@dramatiq.actor(**_POLICY)
def message_translated(message_ids: list[str]) -> None:
    """Messages' translations were stored, but their translation actor died before it published their
    realtime events (it sends none of these otherwise): publish them from what was stored."""
    realtime.publish_stored_translations(message_ids)
