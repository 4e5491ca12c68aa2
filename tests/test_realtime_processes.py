"""Realtime events when API processes die, stop or are held up: 100 clients of a process killed -9 resume
on another with nothing lost and nothing twice; a stopping process closes its clients 1012; a client
that stops reading is closed 4008 without holding up the others; a flood of frames, or one connection too
many, is closed 4029."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time

import pytest
import websockets

from tests.api import Account
from tests.realtime_clients import bearer, post_many, quiet, recv, recv_events, uid_of, ws_url
from tests.stack import wait_for


@pytest.fixture(scope="module")
def survivor(stack) -> int:
    """The API process clients move to: the stack's own."""
    return stack.port


def resume_query(frame: dict) -> str:
    """Resume after `frame`: an event, or the hello of a session that got none (its seq is the top then)."""
    ts = f"&last_ts={frame['ts']}" if frame.get("ts") else ""
    return f"?epoch={frame['epoch']}&last_seq={frame['seq']}{ts}"


class Client:
    """One WebSocket client that follows the protocol: it keeps the last event it processed and, when its
    connection ends, reconnects to the survivor with a resume from there."""

    def __init__(self, account: Account, dialect: str):
        self.account, self.dialect = account, dialect
        self.hellos: list[dict] = []
        self.events: list[dict] = []
        self.closes: list[int] = []

    @property
    def last(self) -> dict:
        return self.events[-1] if self.events else self.hellos[0]

    async def connect(self, port: int, query: str = ""):
        ws = await websockets.connect(ws_url(port, self.dialect, query), additional_headers=bearer(self.account.token))
        self.hellos.append(await recv(ws))
        return ws

    async def follow(self, ws, survivor: int, wanted: int, deadline: float) -> None:
        """Read events until `wanted` message.created have come, resuming on `survivor` when cut off."""
        while sum(e["type"] == "message.created" for e in self.events) < wanted and time.monotonic() < deadline:
            try:
                frame = await recv(ws, max(0.1, deadline - time.monotonic()))
            except websockets.ConnectionClosed:
                self.closes.append(ws.close_code)
                ws = await self.connect(survivor, resume_query(self.last))
                continue
            except asyncio.TimeoutError:
                break
            assert "seq" in frame, frame  # a resync_required here would be a loss
            self.events.append(frame)
        self.events += [frame for frame in await quiet(ws, 0.5)]  # nothing more may come
        await ws.close()


def test_a_hundred_clients_of_a_process_killed_mid_burst_resume_on_another_with_nothing_lost_or_twice(
        stack, base_url, survivor):
    author = Account(base_url)
    readers = [Account(base_url) for _ in range(25)]
    channel = author.channel(author.group(members=readers))
    doomed = stack.start_server()
    process = stack.servers[-1]
    clients = [Client(reader, dialect) for reader in readers for dialect in ("sector", "rosetta", "sector", "rosetta")]
    posted: list[str] = []
    count, kill_after = 60, 20

    def burst():
        for n in range(count):
            answer = author.post(channel, f"burst {n}")
            assert answer.status_code == 201, answer.text
            posted.append(answer.json()["id"])
            if n + 1 == kill_after:
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.02)

    async def run():
        sockets = await asyncio.gather(*(client.connect(doomed) for client in clients))
        poster = threading.Thread(target=burst)
        poster.start()
        deadline = time.monotonic() + 60
        await asyncio.gather(*(c.follow(ws, survivor, count, deadline) for c, ws in zip(clients, sockets)))
        poster.join()

    asyncio.run(run())
    process.wait()
    assert len(posted) == count
    for client in clients:
        ids = [uid_of(e["data"]["id"]) for e in client.events if e["type"] == "message.created"]
        assert sorted(ids) == sorted(uid_of(m) for m in posted), (client.account.username, len(ids), len(set(ids)))  # 0 lost, 0 twice
        seqs = [e["seq"] for e in client.events]
        assert seqs == list(range(client.hellos[0]["seq"] + 1, client.hellos[0]["seq"] + len(seqs) + 1))
        assert client.closes == [1006] and [h["resumed"] for h in client.hellos] == [False, True]


def test_a_process_that_stops_closes_its_clients_1012_and_they_resume_elsewhere(stack, base_url, survivor):
    author, reader = Account(base_url), Account(base_url)
    channel = author.channel(author.group(members=[reader]))
    stopping = stack.start_server()
    process = stack.servers[-1]
    # Sanic 25.12's manager, sent SIGTERM while it still waits for its worker's startup ack (it may, for a
    # second after the worker already answers), loops on its own shutdown message until a second signal.
    time.sleep(2)

    async def run():
        async with websockets.connect(ws_url(stopping), additional_headers=bearer(reader.token)) as ws:
            await recv(ws)
            author.post(channel, "before the restart")
            (last,) = await recv_events(ws, 1)
            process.terminate()
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws, 15)
            assert (ws.close_code, ws.close_reason) == (1012, "service_restart")
        missed = post_many(author, channel, 3)
        async with websockets.connect(ws_url(survivor, query=resume_query(last)),
                                      additional_headers=bearer(reader.token)) as ws:
            hello = await recv(ws)
            assert hello["resumed"] is True and hello["epoch"] == last["epoch"]
            replayed = await recv_events(ws, 3)
            assert sorted(e["data"]["id"] for e in replayed) == sorted(missed)

    asyncio.run(run())
    assert process.wait(timeout=15) is not None


def test_a_client_that_stops_reading_is_closed_4008_and_holds_up_no_one(stack, base_url, survivor, tmp_path):
    author, stalled, reader = Account(base_url), Account(base_url), Account(base_url)
    channel = author.channel(author.group(members=[stalled, reader]))
    send_timeout_s = 4
    log = (tmp_path / "server.log").open("w+")
    port = stack.start_server(stderr=log, SECTOR_REALTIME_SEND_TIMEOUT_S=str(send_timeout_s), SECTOR_LOGGING_LEVEL="INFO")
    body = "x" * 9000 + " {n}"  # about 9 kB an event: the socket buffers fill within a few dozen
    latencies: list[float] = []

    async def run():
        # max_queue=1: the client's library stops reading its socket once a frame waits unread, so TCP
        # pushes back on the server as soon as the socket buffers are full.
        slow = await websockets.connect(ws_url(port), additional_headers=bearer(stalled.token), max_queue=1)
        hello = await recv(slow)
        async with websockets.connect(ws_url(port), additional_headers=bearer(reader.token), max_size=None) as ws:
            await recv(ws)
            for n in range(120):
                sent = time.monotonic()
                answer = author.post(channel, body.format(n=n))
                assert answer.status_code == 201, answer.text
                (frame,) = await recv_events(ws, 1)
                latencies.append(time.monotonic() - sent)
        # The stalled client's sends timed out (or its queue filled): the server closed it as a slow consumer.
        assert wait_for(lambda: "4008 slow_consumer" in _read(log), send_timeout_s + 10), _read(log)[-2000:]
        got = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                got.append(await recv(slow, 10))
        # What it had read before the close is kept; a resume fetches the rest, in order, exactly once.
        last = got[-1] if got else hello
        async with websockets.connect(ws_url(survivor, query=resume_query(last)),
                                      additional_headers=bearer(stalled.token), max_size=None) as ws:
            again = await recv(ws)
            assert again["resumed"] is True
            rest = await recv_events(ws, 120 - len(got))
            assert [e["seq"] for e in got + rest] == list(range(hello["seq"] + 1, hello["seq"] + 121))

    asyncio.run(run())
    # Each post reached the reader at its usual pace while the stalled one's sends hung for send_timeout_s.
    assert max(latencies) < send_timeout_s / 2, sorted(latencies)[-5:]


def _read(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def test_a_flood_of_frames_or_a_connection_too_many_is_closed_4029(stack, base_url, survivor):
    flooder = Account(base_url)
    limit = stack.settings.realtime.client_frames_max

    async def run():
        async with websockets.connect(ws_url(survivor), additional_headers=bearer(flooder.token)) as ws:
            await recv(ws)
            for _ in range(limit + 1):
                await ws.send(json.dumps({"type": "ping"}))
            pongs = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    pongs.append(await recv(ws))
            assert ws.close_code == 4029 and len(pongs) <= limit
        held = []
        for _ in range(stack.settings.realtime.max_connections_per_user):
            held.append(await websockets.connect(ws_url(survivor), additional_headers=bearer(flooder.token)))
            await recv(held[-1])
        async with websockets.connect(ws_url(survivor, "rosetta"), additional_headers=bearer(flooder.token)) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)
            assert (ws.close_code, ws.close_reason) == (4029, "rate_limited")
        for ws in held:
            await ws.close()

    asyncio.run(run())
