"""Worker middleware that binds the models to the configured database in each worker process, and
the one-writer lock of a worker process on SQLite."""

import contextlib
import logging
import threading

from dramatiq import Middleware

import models
from config import settings

logger = logging.getLogger(__name__)


class DatabaseSetup(Middleware):
    """Open the database when a worker process boots, reconnect after the database dropped a
    connection (Dramatiq retries the message), close each thread's connection at shutdown."""

    def after_process_boot(self, broker):
        models.open_database(settings().database_url)
        logger.debug("Worker process bound to database %r.", settings().database.url)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        # SQLite's "database is locked" is an OperationalError too, but the connection is fine.
        if isinstance(exception, models.CONNECTION_ERRORS) and "locked" not in str(exception):
            logger.warning("Database connection lost in %s; reconnecting for the retry.", message.actor_name)
            models.drop_connection()

    def after_worker_thread_shutdown(self, broker, thread):
        if not models.db.is_closed():
            models.db.close()


# SQLite has one writer at a time, and its busy handler sleeps in steps of up to 100 ms while it
# waits; worker threads of one process queue here instead and go the moment the writer is done.
_sqlite_writer = threading.Lock()


def one_writer():
    """Hold this around every write transaction of a worker thread (a no-op on PostgreSQL)."""
    return contextlib.nullcontext() if models.is_postgres() else _sqlite_writer


@contextlib.contextmanager
def read_then_write():
    """one_writer() and a transaction for work that reads before it writes. On SQLite it takes the
    write lock at BEGIN (IMMEDIATE): a deferred transaction that read first fails at once when another
    process commits before its first write (SQLITE_BUSY_SNAPSHOT), while a lock taken at BEGIN waits
    out busy_timeout like any other."""
    with one_writer(), (models.db.atomic() if models.is_postgres() else models.db.atomic("IMMEDIATE")):
        yield
