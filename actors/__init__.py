"""Dramatiq actors, one module per queue family. Importing this package configures the broker.

Run workers with `python app.py worker [-Q queue ...]`; the dramatiq CLI imports this package.
"""

import dramatiq
from dramatiq.middleware import default_middleware
from dramatiq.middleware.asyncio import AsyncIO

from actors.broker import build_broker
from actors.database import DatabaseSetup
from config import settings

# AsyncIO: an event loop thread in each worker process, where the push gateways' clients live (actors/push.py).
broker = build_broker(settings(), middleware=[m() for m in default_middleware] + [DatabaseSetup(), AsyncIO()])
dramatiq.set_broker(broker)

# Registers the actors on the broker.
from actors import email, expiry, files, messages, ops, outbox, push, realtime, relay, rooms, translation, writes  # noqa: E402,F401

broker.add_middleware(relay.RelayShutdown())
broker.add_middleware(ops.OpsMiddleware())  # the dashboard's series, worker registry and failures (docs/operations.md)
from actors import telemetry  # noqa: E402
telemetry.install(broker)  # request ids across messages, a metric sample and a log line a job (docs/operations.md)

from actors.queues import QUEUES  # noqa: E402,F401  (the queues, by name: actors/queues.py)
