"""The outbox: follow-ups of committed commands, never lost.

A command's follow-ups (domain.writes.after_commit) are written in the same transaction as the
command, one row for each kind a commit asked for (its `arguments` list every follow-up of that
kind). After the commit the process's relay (actors/relay.py) sends them to their actors and
deletes the rows; if the worker dies in between, `resend_outbox` (run by the scheduler) sends the
rows left behind once they are older than `[writes] outbox_resend_s`. Consumers are idempotent, so
a row sent twice (a crash after sending, before deleting) does no harm beyond a repeated mail.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from itertools import groupby

import dramatiq

import telemetry
from actors import email, files, messages, push, realtime, rooms, translation
from actors.database import one_writer
from config import settings
from models import Outbox, db, utcnow

logger = logging.getLogger(__name__)

# Which actors each kind of follow-up is sent to, and the argument by which the rows of one kind
# travel together (as a list, `message_ids`) or None for one Dramatiq message a row. A busy channel's
# batch of 64 posts is then one message to each actor, not 64: Redis round trips and Dramatiq's own
# work per message were most of what a post cost the worker.
ACTORS = {
    "verification_email": ([email.send_verification_email], None),
    "message_posted": ([messages.message_posted, translation.translate_messages, push.fan_out], "message_id"),
    "message_edited": ([messages.message_edited, translation.translate_messages], "message_id"),
    "message_deleted": ([messages.message_deleted], "message_id"),
    # Written by the translation actor itself, and deleted once it published (actors/translation.py).
    "message_translated": ([messages.message_translated], "message_id"),
    "file_deleted": ([files.file_deleted], "storage_key"),
    "room_expiry": ([rooms.expire_room], None),
    "realtime": ([realtime.publish_announced], None),
}

#: Ids one Dramatiq message carries at most.
BATCH_MAX = 100

#: Rows one sweep resends at most; the next sweep takes the rest.
SWEEP_MAX = 1000


def store(followups: list[tuple[str, dict]]) -> list[Outbox]:
    """Write follow-ups as outbox rows, one a kind, inside the caller's transaction; returns the rows."""
    if not followups:
        return []
    now = utcnow()
    by_kind: dict[str, list[dict]] = {}
    for kind, arguments in followups:
        by_kind.setdefault(kind, []).append(arguments)
    rid = telemetry.request_id.get()  # the commit's requests, so the follow-ups' jobs name them too
    rows = [{"kind": kind, "arguments": json.dumps(calls), "created_at": now, "request_id": rid}
            for kind, calls in by_kind.items()]
    return list(Outbox.insert_many(rows).returning(Outbox.id, Outbox.kind, Outbox.arguments, Outbox.request_id)
                .execute())


def _messages(rows: list[Outbox]) -> list[tuple[dramatiq.Actor, dict]]:
    """(actor, arguments) of each Dramatiq message the rows make."""
    sends = []
    for kind, group in groupby(sorted(rows, key=lambda row: (row.kind, row.id)), key=lambda row: row.kind):
        actors, together_by = ACTORS[kind]
        arguments = [call for row in group for call in json.loads(row.arguments)]
        if together_by is not None:
            ids = [a[together_by] for a in arguments]
            arguments = [{together_by + "s": ids[i:i + BATCH_MAX]} for i in range(0, len(ids), BATCH_MAX)]
        sends += [(actor, a) for actor in actors for a in arguments]
    return sends


def deliver(rows: list[Outbox]) -> None:
    """Send the rows to their actors, then delete them. A follow-up with `not_before_ms` (Unix time in ms)
    is delayed until then (a room's expiry)."""
    if not rows:
        return
    # The messages carry the request ids of the rows' commits (JobTelemetry.before_enqueue).
    sending = telemetry.request_id.set(telemetry.joined(row.request_id for row in rows))
    try:
        for actor, arguments in _messages(rows):
            not_before_ms = arguments.pop("not_before_ms", None)
            if not_before_ms is None:
                actor.send(**arguments)
            else:
                actor.send_with_options(kwargs=arguments, delay=max(0, not_before_ms - int(time.time() * 1000)))
    finally:
        telemetry.request_id.reset(sending)
    with one_writer():
        Outbox.delete().where(Outbox.id.in_([row.id for row in rows])).execute()


@dramatiq.actor(queue_name="writes", max_retries=3, time_limit=300_000)
def resend_outbox() -> None:
    """Send the follow-ups whose write actor died between its commit and sending them.

    Rows are claimed before they are sent (their time moves to now, in one conditional UPDATE), so
    sweeps that run at once (queued while the workers were down) send each row once; a row claimed by
    a sweep that dies comes round again after another `outbox_resend_s`.
    """
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=settings().writes.outbox_resend_s)
    oldest = Outbox.select(Outbox.id).where(Outbox.created_at < cutoff).order_by(Outbox.id).limit(SWEEP_MAX)
    with one_writer(), db.atomic():
        rows = list(Outbox.update(created_at=now).where(Outbox.id.in_(oldest) & (Outbox.created_at < cutoff))
                    .returning(Outbox.id, Outbox.kind, Outbox.arguments, Outbox.created_at, Outbox.request_id)
                    .execute())
    deliver(rows)
    if rows:
        logger.warning("Resent %d follow-ups left in the outbox (first id %d).", len(rows), rows[0].id)
