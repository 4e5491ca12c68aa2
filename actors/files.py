"""The `expiry` queue's file work: staged files nobody claimed are deleted past their TTL, row and bytes;
a deleted file's bytes are removed after the commit that deleted it; bytes no live row refers to (left
by a crash between storing and recording an upload, or between the two halves of a delete) are swept.

Each step is safe to run twice at once and after a crash halfway: bytes are deleted before rows
(deleting bytes twice is nothing), and a row goes only once its bytes are gone.
"""

from __future__ import annotations

import functools
import logging
import time

import dramatiq

from actors.database import one_writer
from config import settings
from domain.files import EXPIRY_GRACE
from models import File, utcnow
from providers import storage as stores

logger = logging.getLogger(__name__)

#: Rows one sweep takes at most; the next sweep takes the rest.
BATCH = 500
#: Bytes younger than this are never taken for orphans: their upload may still be being recorded.
ORPHAN_AGE_S = 3600


@functools.cache
def store() -> stores.Storage:
    return stores.build(settings().files, settings().data_dir)


@dramatiq.actor(queue_name="expiry", max_retries=8, min_backoff=1000, max_backoff=300_000)
def file_deleted(storage_keys: list[str]) -> None:
    """Remove the bytes of files that were deleted."""
    for key in storage_keys:
        store().delete(key)


@dramatiq.actor(queue_name="expiry", max_retries=3, time_limit=600_000)
def expire_files() -> None:
    """Delete staged files past their TTL (and its grace), then sweep orphaned bytes and stale uploads."""
    cutoff = utcnow() - EXPIRY_GRACE
    total = 0
    while True:
        expired = list(File.select(File.id, File.storage_key).where(
            File.claimed_at.is_null() & File.expires_at.is_null(False) & (File.expires_at < cutoff))
            .order_by(File.expires_at).limit(BATCH).tuples())
        if not expired:
            break
        for _, key in expired:
            store().delete(key)
        with one_writer():
            File.delete().where(File.id.in_([file_id for file_id, _ in expired]) & File.claimed_at.is_null()).execute()
        total += len(expired)
        if len(expired) < BATCH:
            break
    orphans = _sweep_orphans()
    if total or orphans:
        logger.info("Deleted %d staged files past their TTL and %d orphaned stored files.", total, orphans)


def _sweep_orphans() -> int:
    """Delete stored bytes that no live file row refers to, and uploads left half-written."""
    old = time.time() - ORPHAN_AGE_S
    for path in stores.staging_dir(settings().data_dir).iterdir():
        if path.is_file() and path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
    swept = 0
    batch: list[str] = []
    for key, mtime in store().keys():
        if mtime < old:
            batch.append(key)
        if len(batch) == BATCH:
            swept += _delete_unreferenced(batch)
            batch = []
    return swept + (_delete_unreferenced(batch) if batch else 0)


def _delete_unreferenced(keys: list[str]) -> int:
    live = {key for (key,) in File.select(File.storage_key).where(
        File.storage_key.in_(keys) & File.deleted_at.is_null()).tuples()}
    gone = [key for key in keys if key not in live]
    for key in gone:
        store().delete(key)
    return len(gone)
