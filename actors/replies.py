"""The reply channel from the write actor back to the handler awaiting its outcome.

Each HTTP worker process owns one Redis list; a command names it in `reply_to`. After the
commit the actor pushes one JSON item per batch there, mapping each command id to its outcome;
the HTTP process reads its list with a single BLPOP loop and wakes the requests waiting on them.
"""

from __future__ import annotations

import json
import uuid

#: Outcomes besides an error reply: applied by this very command, or found already applied
#: (a redelivery or a client retry), in which case the stored row may differ from the request.
APPLIED = "applied"
REPEAT = "repeat"

#: A list nobody reads any more (its HTTP process is gone) vanishes after this long.
REPLY_TTL_S = 120


def new_reply_key(namespace: str) -> str:
    return f"{namespace}:replies:{uuid.uuid4().hex}"


def publish(client, reply_to: str, outcomes: dict[str, str | dict]) -> None:
    """Push the outcome of each command of a batch: APPLIED, REPEAT or an error reply (a dict)."""
    with client.pipeline(transaction=False) as pipe:
        pipe.rpush(reply_to, json.dumps(outcomes))
        pipe.expire(reply_to, REPLY_TTL_S)
        pipe.execute()


def parse(raw: bytes) -> dict[str, str | dict]:
    return json.loads(raw)
