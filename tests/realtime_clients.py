"""Realtime test clients: WebSocket URLs, frames received with timeouts, SSE parsing, posting in bulk."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from ulid import ULID

from tests.api import Account


def ws_url(port: int, dialect: str = "sector", query: str = "") -> str:
    return f"ws://127.0.0.1:{port}{'/v1/api' if dialect == 'sector' else '/api/v1'}/realtime{query}"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def recv(ws, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_events(ws, count: int, timeout: float = 20) -> list[dict]:
    """The next `count` event frames (those with a seq), skipping nothing else silently: a control frame
    in between fails the test."""
    got = []
    while len(got) < count:
        frame = await recv(ws, timeout)
        assert "seq" in frame, frame
        got.append(frame)
    return got


async def quiet(ws, seconds: float = 1.0) -> list[dict]:
    """What arrives within `seconds` (nothing, usually)."""
    got = []
    try:
        while True:
            got.append(await recv(ws, seconds))
    except asyncio.TimeoutError:
        return got


def uid_of(value: str) -> uuid.UUID:
    return uuid.UUID(value) if "-" in value else ULID.from_str(value.upper()).to_uuid()


def user_id(database, account: Account) -> int:
    return database.User.get(database.User.uid == uuid.UUID(account.id)).id


def post_many(author: Account, channel: dict, count: int, threads: int = 1, body: str = "message {n}") -> list[str]:
    """Post `count` messages (from `threads` at once); their ids, in no particular order when threads > 1."""
    def post(n: int) -> str:
        answer = author.post(channel, body.format(n=n))
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    if threads == 1:
        return [post(n) for n in range(count)]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, range(count)))


def sse_events(lines, count: int) -> list[tuple[str | None, str, dict]]:
    """(id, event, data) of the next `count` events of a text/event-stream's lines, heartbeats skipped."""
    got, fields = [], {}
    for line in lines:
        if line.startswith(":"):
            continue
        if line == "":
            if fields:
                got.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
                fields = {}
                if len(got) == count:
                    return got
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    return got
