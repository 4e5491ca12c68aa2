"""The relay of a worker process: sends the outbox rows its write actors committed, many commits at once.

Sending each batch's follow-ups from the write actor itself cost a Dramatiq message and a delete per
batch, which more than halved the posts a worker commits (1,044 -> 389 req/s in bench/write_path.py).
Instead the write actor hands its committed rows to this process's relay thread and returns. The
thread sends what it holds the moment it has any, then waits `[writes] followup_window_ms`, and what
commits meanwhile goes out together: idle, a follow-up leaves at once; busy, one message and one
delete carry the follow-ups of many batches.

The rows are in the outbox table already, so nothing is lost if the process dies holding some:
`outbox.resend_outbox` sends them after `[writes] outbox_resend_s`.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from dramatiq import Middleware
from peewee import PeeweeException

from actors import outbox
import models
from config import settings
from models import Outbox

logger = logging.getLogger(__name__)


class _Relay:
    def __init__(self):
        self._held: list[Outbox] = []
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def hand_over(self, rows: list[Outbox]) -> None:
        """Send these committed rows soon, with whatever else this process committed meanwhile."""
        if not rows:
            return
        with self._lock:
            self._held += rows
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sector-relay", daemon=True)
                self._thread.start()
            self._ready.notify()

    def flush(self) -> None:
        """Send what is held now, on the caller's thread (at shutdown)."""
        self._send(self._take())

    def _take(self) -> list[Outbox]:
        with self._lock:
            rows, self._held = self._held, []
            return rows

    def _run(self) -> None:
        window = settings().writes.followup_window_ms / 1000
        while True:
            with self._lock:
                self._ready.wait_for(lambda: self._held)
            self._send(self._take())
            time.sleep(window)  # what commits meanwhile goes out together

    def _send(self, rows: list[Outbox]) -> None:
        try:
            outbox.deliver(rows)
        except (redis.RedisError, PeeweeException) as e:  # still in the outbox: the sweep resends them
            logger.error("Could not send %d follow-ups (%s); the outbox sweep will.", len(rows), e)
            if isinstance(e, models.CONNECTION_ERRORS):
                models.drop_connection()  # this thread reconnects on its next send


_relay = _Relay()
hand_over = _relay.hand_over


class RelayShutdown(Middleware):
    """Sends the follow-ups the relay still holds when the worker process stops."""

    def before_worker_shutdown(self, broker, worker):
        _relay.flush()
