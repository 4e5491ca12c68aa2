"""The `expiry` queue: sweeps that delete what has outlived its use. Staged files are swept in
actors/files.py, temporary rooms in actors/rooms.py."""

from __future__ import annotations

import datetime as dt
import logging

import dramatiq

from config import settings
from models import AppliedCommand, Invite, Token, utcnow

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_applied_commands() -> None:
    """Forget applied command ids older than the retention window."""
    cutoff = utcnow() - dt.timedelta(hours=settings().writes.applied_retention_h)
    count = AppliedCommand.delete().where(AppliedCommand.applied_at < cutoff).execute()
    logger.info("Forgot %d applied command ids older than %s.", count, cutoff.isoformat())


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_tokens() -> None:
    """Delete tokens that expired or were revoked more than a day ago."""
    cutoff = utcnow() - dt.timedelta(days=1)
    count = Token.delete().where((Token.expires_at < cutoff) | (Token.revoked_at < cutoff)).execute()
    logger.info("Deleted %d expired or revoked tokens.", count)


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=300_000)
def expire_invites() -> None:
    """Delete invites that expired or were revoked more than a day ago (until then a link says why it fails)."""
    cutoff = utcnow() - dt.timedelta(days=1)
    count = Invite.delete().where((Invite.expires_at < cutoff) | (Invite.revoked_at < cutoff)).execute()
    logger.info("Deleted %d expired or revoked invites.", count)
