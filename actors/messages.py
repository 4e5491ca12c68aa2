"""The `messages` queue: what follows a message write once it has committed.

Each actor re-reads the message by id and returns quietly if it is gone, so a resend from the
outbox is harmless. For now they record that the message is ready for the work that comes next
(translation into each reader's language, push fan-out, outgoing events), which later fan out
from here.
"""

from __future__ import annotations

import logging
import uuid

import dramatiq

from models import Message

logger = logging.getLogger(__name__)


def _message(message_id: str) -> Message | None:
    return Message.get_or_none(Message.id == uuid.UUID(message_id))


@dramatiq.actor(queue_name="messages", max_retries=8, min_backoff=500, max_backoff=60_000, time_limit=60_000)
def message_posted(message_id: str) -> None:
    """A message was posted."""
    message = _message(message_id)
    if message is None:
        return
    logger.info("Message %s posted in channel %s by user %d (%s).", message_id, message.channel_id,
                message.author_id, message.author_kind)


@dramatiq.actor(queue_name="messages", max_retries=8, min_backoff=500, max_backoff=60_000, time_limit=60_000)
def message_edited(message_id: str) -> None:
    """A message's content or pin changed."""
    message = _message(message_id)
    if message is None:
        return
    logger.info("Message %s edited in channel %s.", message_id, message.channel_id)


@dramatiq.actor(queue_name="messages", max_retries=8, min_backoff=500, max_backoff=60_000, time_limit=60_000)
def message_deleted(message_id: str) -> None:
    """A message was deleted (its tombstone stays)."""
    message = _message(message_id)
    if message is None:
        return
    logger.info("Message %s deleted in channel %s.", message_id, message.channel_id)
