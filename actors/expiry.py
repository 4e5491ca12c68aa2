"""The `expiry` queue: sweeps that delete what has outlived its use. Staged files are swept in
actors/files.py, temporary rooms in actors/rooms.py."""

from __future__ import annotations

import datetime as dt
import logging

import dramatiq

from actors.database import one_writer
from config import settings
from models import AppliedCommand, Invite, Token, utcnow

logger = logging.getLogger(__name__)

#: Rows one transaction deletes at most, so that a sweep after a long outage never holds the (SQLite)
#: writer for long: the write path's commits go between its batches.
BATCH = 1000


def _delete_in_batches(model, condition) -> int:
    """Delete the rows `condition` names, a batch at a time. Safe beside another run of the same sweep:
    a row the other deleted first is simply not deleted twice."""
    total = 0
    while True:
        ids = [row_id for (row_id,) in model.select(model._meta.primary_key).where(condition)
               .limit(BATCH).tuples()]
        if not ids:
            return total
        with one_writer():
            total += model.delete().where(model._meta.primary_key.in_(ids) & condition).execute()
        if len(ids) < BATCH:
            return total


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_applied_commands() -> None:
    """Forget applied command ids older than the retention window."""
    cutoff = utcnow() - dt.timedelta(hours=settings().writes.applied_retention_h)
    count = _delete_in_batches(AppliedCommand, AppliedCommand.applied_at < cutoff)
    logger.info("Forgot %d applied command ids older than %s.", count, cutoff.isoformat())


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_tokens() -> None:
    """Delete tokens that expired or were revoked more than a day ago."""
    cutoff = utcnow() - dt.timedelta(days=1)
    count = _delete_in_batches(Token, (Token.expires_at < cutoff) | (Token.revoked_at < cutoff))
    logger.info("Deleted %d expired or revoked tokens.", count)


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_invites() -> None:
    """Delete invites that expired or were revoked more than a day ago (until then a link says why it fails)."""
    cutoff = utcnow() - dt.timedelta(days=1)
    count = _delete_in_batches(Invite, (Invite.expires_at < cutoff) | (Invite.revoked_at < cutoff))
    logger.info("Deleted %d expired or revoked invites.", count)
