"""Which stored translation a reader reads: the first of the languages they accept (most wanted first)
that the message has a translation into, unless the message is written in one they accept before it."""

from __future__ import annotations

import uuid

from domain.languages import same, variant
from models import Message, Translation


def chosen(messages: list[Message], wanted: list[str]) -> dict[uuid.UUID, tuple[str, str]]:
    """(language tag, text) of the translation each message is read in; a message read as written is absent."""
    if not wanted or not messages:
        return {}
    stored: dict[uuid.UUID, dict[str, tuple[str, str]]] = {}
    for message_id, tag, body in (Translation.select(Translation.message, Translation.language, Translation.body)
                                  .join(Message).where(Translation.message.in_([m.id for m in messages])
                                                       & (Translation.version == Message.version)).tuples()):
        stored.setdefault(uuid.UUID(str(message_id)), {})[variant(tag)] = (tag, body)
    out = {}
    for message in messages:
        for tag in wanted:
            if message.language and same(tag, message.language):
                break
            found = stored.get(message.id, {}).get(variant(tag))
            if found is not None:
                out[message.id] = found
                break
    return out
