"""Realtime events (docs/realtime.md) over WebSocket and SSE, through two API processes on one Redis, with
real workers publishing: delivery across processes in both dialects' shapes, lossless resume, resync when
the stream is gone or too short, typing, guests, tickets and first-frame auth (processes that die, stop or
stall: tests/test_realtime_processes.py)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import redis
import websockets

from domain.realtime import Keys
from tests.api import Account
from tests.realtime_clients import bearer, post_many, quiet, recv, recv_events, sse_events, uid_of, user_id, ws_url
from tests.rosetta import AppUser
from tests.stack import wait_for


@pytest.fixture(scope="module")
def ports(stack) -> dict:
    """The stack's API process `a`, and a second one `b` on the same Redis and database."""
    return {"a": stack.port, "b": stack.start_server()}


@pytest.fixture(scope="module")
def rdb(stack):
    client = redis.Redis.from_url(stack.settings.redis_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def keys(stack) -> Keys:
    return Keys(stack.settings.redis.namespace)


@pytest.fixture
def team(base_url):
    """A Sector group of alice and bob with a channel."""
    alice, bob = Account(base_url), Account(base_url)
    group = alice.group(members=[bob])
    return alice, bob, alice.channel(group)


def test_a_message_posted_through_one_process_reaches_websockets_on_another_in_both_dialects(team, ports):
    alice, bob, channel = team

    async def run():
        async with websockets.connect(ws_url(ports["b"]), additional_headers=bearer(bob.token)) as sector, \
                websockets.connect(ws_url(ports["b"], "rosetta"), additional_headers=bearer(bob.token)) as rosetta:
            for ws in (sector, rosetta):
                hello = await recv(ws)
                assert hello["type"] == "hello" and hello["resumed"] is False and hello["replayed"] == 0
            posted = alice.post(channel, "across processes").json()  # through process a
            (s,), (r,) = await recv_events(sector, 1), await recv_events(rosetta, 1)
            assert s["type"] == r["type"] == "message.created" and s["seq"] == r["seq"] and s["id"] == r["id"]
            assert s["data"]["id"] == posted["id"] and s["data"]["channel"] == channel["id"]
            assert s["data"]["author"] == alice.id and s["data"]["body"] == "across processes"
            assert {"author", "body", "channel", "created_at", "id", "pinned"} <= set(s["data"])
            assert uid_of(r["data"]["id"]) == uuid.UUID(posted["id"]) and r["data"]["id"].islower()
            assert isinstance(r["data"]["author"]["id"], int)
            assert r["data"]["display_content"] == "across processes" and r["data"]["display_source"] == "original"
            assert uid_of(r["data"]["channel_id"]) == uuid.UUID(channel["id"])

    asyncio.run(run())


def test_a_client_that_resumes_gets_exactly_the_missed_events_in_order_and_then_live_ones(team, ports):
    alice, bob, channel = team
    MISSED = 1000

    async def run():
        async with websockets.connect(ws_url(ports["a"]), additional_headers=bearer(bob.token)) as ws:
            hello = await recv(ws)
            alice.post(channel, "before")
            (last,) = await recv_events(ws, 1)
        missed = post_many(alice, channel, MISSED, threads=4)
        query = f"?epoch={last['epoch']}&last_seq={last['seq']}&last_ts={last['ts']}"
        async with websockets.connect(ws_url(ports["b"], query=query), additional_headers=bearer(bob.token)) as ws:
            again = await recv(ws)
            # The last few may still be on their way to the stream (published after the 201): they come live.
            assert (again["resumed"], again["epoch"]) == (True, hello["epoch"]) and again["replayed"] > MISSED - 50
            replayed = await recv_events(ws, MISSED)
            assert [f["seq"] for f in replayed] == list(range(last["seq"] + 1, last["seq"] + MISSED + 1))
            # Exactly the missed ones, in seq order. Not necessarily in commit order: the write actor publishes
            # after it answered, on several threads, so two quick posts may reach the stream swapped.
            assert sorted(f["data"]["id"] for f in replayed) == sorted(missed)
            live = alice.post(channel, "after").json()
            (frame,) = await recv_events(ws, 1)
            assert (frame["seq"], frame["data"]["id"]) == (last["seq"] + MISSED + 1, live["id"])
            assert await quiet(ws) == []

    asyncio.run(run())


def test_a_resume_after_the_users_keys_are_lost_or_the_stream_is_too_short_is_told_to_resync(
        team, ports, rdb, keys, database):
    alice, bob, channel = team
    bob_id = user_id(database, bob)

    async def resume_from(last: dict) -> tuple[dict, dict]:
        query = f"?epoch={last['epoch']}&last_seq={last['seq']}&last_ts={last['ts']}"
        async with websockets.connect(ws_url(ports["b"], query=query), additional_headers=bearer(bob.token)) as ws:
            return await recv(ws), await recv(ws)

    async def last_event() -> dict:
        async with websockets.connect(ws_url(ports["a"]), additional_headers=bearer(bob.token)) as ws:
            await recv(ws)
            alice.post(channel, "seen")
            return (await recv_events(ws, 1))[0]

    async def run():
        last = await last_event()
        rdb.delete(keys.stream(bob_id), keys.seq(bob_id), keys.epoch(bob_id))  # as a FLUSHALL would
        hello, resync = await resume_from(last)
        assert hello["resumed"] is False and hello["epoch"] != last["epoch"]
        assert resync["type"] == "resync_required" and resync["reason"] == "unknown_user_stream"

        last = await last_event()
        rdb.delete(keys.stream(bob_id), keys.seq(bob_id), keys.epoch(bob_id))
        alice.post(channel, "published into a new epoch")  # the publisher starts one before bob is back
        assert wait_for(lambda: rdb.get(keys.seq(bob_id)) == b"1", 10)
        hello, resync = await resume_from(last)
        assert resync["reason"] == "epoch_changed" and resync["top_seq"] == 1
        assert resync["channels_changed"] == [{"channel": channel["id"], "group": channel["group"], "direct": False}]

        last = await last_event()
        post_many(alice, channel, 3)
        assert wait_for(lambda: int(rdb.get(keys.seq(bob_id)) or 0) == last["seq"] + 3, 10)  # all published
        # What MAXLEN ~ replay_max_events does to a long absence: the oldest entries are gone.
        rdb.xtrim(keys.stream(bob_id), minid=f"{last['seq'] + 3}-0", approximate=False)
        hello, resync = await resume_from(last)
        assert resync["reason"] == "window_exceeded" and resync["top_seq"] == last["seq"] + 3

    asyncio.run(run())


def test_typing_reaches_the_other_readers_live_and_is_never_replayed(team, ports):
    alice, bob, channel = team

    async def run():
        async with websockets.connect(ws_url(ports["a"]), additional_headers=bearer(alice.token)) as typer, \
                websockets.connect(ws_url(ports["b"]), additional_headers=bearer(bob.token)) as reader:
            await recv(typer)
            hello = await recv(reader)
            await typer.send(json.dumps({"type": "typing", "channel_id": channel["id"]}))
            frame = await recv(reader)
            assert frame["type"] == "typing.started" and "seq" not in frame
            assert frame["data"]["user"] == alice.id and frame["data"]["channel"] == channel["id"]
            await typer.send(json.dumps({"type": "typing", "channel_id": channel["id"]}))  # within the interval
            assert await quiet(reader) == []
            assert await quiet(typer, 0.3) == []  # not to the typist itself
        query = f"?epoch={hello['epoch']}&last_seq={hello['seq']}"
        async with websockets.connect(ws_url(ports["b"], query=query), additional_headers=bearer(bob.token)) as ws:
            assert (await recv(ws))["replayed"] == 0
            assert await quiet(ws) == []

    asyncio.run(run())


def test_a_guest_sees_only_its_rooms_events(rosetta_url, ports):
    owner = AppUser(rosetta_url, name="Owner")
    room = owner.api.post("/external/rooms", json={"name": "Support"}).json()["data"]
    joined = httpx.post(f"{rosetta_url}/external/rooms/{room['room_id']}/guests",
                        json={"nickname": "Mei", "preferred_language": "en"}).json()["data"]
    guest = {"X-Rosetta-Guest-Token": joined["session"]["token"]}
    ws_id = owner.api.post("/workspaces", json={"name": "Elsewhere", "visibility": "public"}).json()["data"]["id"]
    other = owner.api.post(f"/workspaces/{ws_id}/channels", json={"name": "other"}).json()["data"]["id"]

    async def run():
        async with websockets.connect(ws_url(ports["b"], "rosetta"), additional_headers=guest) as ws:
            assert (await recv(ws))["type"] == "hello"
            assert owner.api.post(f"/workspaces/{ws_id}/channels/{other}/messages",
                                  json={"content": "not for guests"}).status_code == 201
            posted = httpx.post(f"{rosetta_url}/external/rooms/{room['room_id']}/messages", headers=guest,
                                json={"content": "hello from the guest"}).json()["data"]
            events = await recv_events(ws, 1)
            assert [e["data"]["id"] for e in events] == [posted["id"]]
            assert events[0]["data"]["author"]["kind"] == "guest"
            assert [e for e in await quiet(ws) if e.get("type") == "message.created"] == []

    asyncio.run(run())


def test_server_sent_events_deliver_and_resume_with_last_event_id(team, ports):
    alice, bob, channel = team
    url = f"http://127.0.0.1:{ports['b']}/v1/api/realtime/events"
    headers = {**bearer(bob.token), "Accept": "text/event-stream"}
    with httpx.stream("GET", url, headers=headers, timeout=20) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        (_, kind, hello), = sse_events(lines, 1)
        assert kind == "hello"
        alice.post(channel, "over SSE")
        (event_id, kind, data), = sse_events(lines, 1)
    assert (kind, data["data"]["body"]) == ("message.created", "over SSE")
    assert event_id == f"{hello['epoch']}:{data['seq']}"
    missed = post_many(alice, channel, 3)
    with httpx.stream("GET", url, headers={**headers, "Last-Event-ID": event_id}, timeout=20) as response:
        frames = sse_events(response.iter_lines(), 4)
    assert frames[0][1] == "hello" and frames[0][2]["resumed"] is True and frames[0][2]["replayed"] == 3
    assert sorted(data["data"]["id"] for _, _, data in frames[1:]) == sorted(missed)
    snapshot = httpx.get(url, headers=bearer(bob.token), timeout=10)  # not an EventSource: a finite answer
    assert snapshot.status_code == 200 and snapshot.text.startswith("event: hello\n")


def test_a_ticket_opens_one_connection_and_a_first_frame_authenticates(team, ports):
    alice, bob, _ = team
    ticket = httpx.post(f"http://127.0.0.1:{ports['a']}/v1/api/realtime/tickets", headers=bearer(bob.token)).json()
    assert ticket["expires_in"] == 30 and ticket["ticket"]

    async def run():
        async with websockets.connect(ws_url(ports["b"], query=f"?ticket={ticket['ticket']}")) as ws:
            assert (await recv(ws))["type"] == "hello"
        async with websockets.connect(ws_url(ports["b"], query=f"?ticket={ticket['ticket']}")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 4001
        async with websockets.connect(ws_url(ports["a"], "rosetta")) as ws:
            await ws.send(json.dumps({"type": "auth", "token": bob.token}))
            assert (await recv(ws))["type"] == "hello"
        async with websockets.connect(ws_url(ports["a"])) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "01jd5xq8aaaaaaaaaaaaaaaaaa|nope"}))
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 4001
        async with websockets.connect(ws_url(ports["a"]), additional_headers=bearer("garbage")) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 4001

    asyncio.run(run())
    plain = f"http://127.0.0.1:{ports['a']}/api/v1/realtime"  # a GET that is no upgrade
    assert httpx.get(plain).status_code == 401
    assert httpx.get(plain, headers=bearer(bob.token)).text.startswith("event: hello\n")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_the_fast_paths_frames_are_the_ones_websockets_would_send(size):
    from websockets.frames import Frame, Opcode

    from handlers.realtime.routes import text_frame

    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
