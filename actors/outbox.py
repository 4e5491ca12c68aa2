"""The outbox: follow-ups of committed commands, never lost.

A command's follow-ups (domain.writes.after_commit) are rows written in the same transaction as
the command. After the commit the write actor sends each to its actors and deletes the rows; if
the worker dies in between, `resend_outbox` (run by the scheduler) sends the rows left behind
once they are older than `[writes] outbox_resend_s`. Consumers are idempotent, so a row sent twice
(a crash after sending, before deleting) does no harm beyond a repeated mail.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import dramatiq

from actors import email, messages
from config import settings
from models import Outbox, db, utcnow

logger = logging.getLogger(__name__)

# Which actors each kind of follow-up is sent to.
ACTORS = {
    "verification_email": [email.send_verification_email],
    "message_posted": [messages.message_posted],
    "message_edited": [messages.message_edited],
    "message_deleted": [messages.message_deleted],
}

#: Rows one sweep resends at most; the next sweep takes the rest.
SWEEP_MAX = 1000


def store(followups: list[tuple[str, dict]]) -> list[Outbox]:
    """Write follow-ups as outbox rows, inside the caller's transaction; returns them with their ids."""
    if not followups:
        return []
    now = utcnow()
    rows = [{"kind": kind, "arguments": json.dumps(arguments), "created_at": now} for kind, arguments in followups]
    return list(Outbox.insert_many(rows).returning(Outbox.id, Outbox.kind, Outbox.arguments).execute())


def deliver(rows: list[Outbox]) -> None:
    """Send each row to its actors, then delete the rows."""
    if not rows:
        return
    for row in rows:
        arguments = json.loads(row.arguments)
        for actor in ACTORS[row.kind]:
            actor.send(**arguments)
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
    with db.atomic():
        rows = list(Outbox.update(created_at=now).where(Outbox.id.in_(oldest) & (Outbox.created_at < cutoff))
                    .returning(Outbox.id, Outbox.kind, Outbox.arguments, Outbox.created_at).execute())
    deliver(rows)
    if rows:
        logger.warning("Resent %d follow-ups left in the outbox (first id %d).", len(rows), rows[0].id)
