"""The write path: retries never duplicate, 202 on request, 503 when no worker or no Redis,
and a worker killed in the middle of a write loses nothing and doubles nothing."""

import sqlite3
import time
import uuid
from contextlib import contextmanager

import httpx
import pytest

from tests.api import Account
from tests.stack import send_commands, wait_for


def messages_with(account: Account, text: str) -> list[dict]:
    response = account.api.post("/message/search", json={"body": text})
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def channel(alice):
    return alice.channel(alice.group())


def test_a_repeated_idempotency_key_returns_the_first_message_and_creates_no_second(alice, channel):
    text = f"once {uuid.uuid4().hex}"
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    first = alice.api.post(url, json={"body": text}, headers=headers)
    second = alice.api.post(url, json={"body": text}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(messages_with(alice, text)) == 1


def test_reusing_an_idempotency_key_for_another_request_is_refused(alice, channel):
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    assert alice.post(channel, "first").status_code == 201
    assert alice.api.post(f"/group/{channel['group']}/channel/{channel['id']}/message",
                          json={"body": "one"}, headers=headers).status_code == 201
    reused = alice.api.post(f"/group/{channel['group']}/channel/{channel['id']}/message",
                            json={"body": "two"}, headers=headers)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["errors"]


def test_idempotency_keys_are_per_caller(alice, bob):
    channel = alice.channel(alice.group(members=[bob]))
    headers = {"Idempotency-Key": "shared-key"}
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    mine = alice.api.post(url, json={"body": "same"}, headers=headers).json()
    theirs = bob.api.post(url, json={"body": "same"}, headers=headers).json()
    assert mine["id"] != theirs["id"]


def test_a_client_chosen_message_id_makes_a_retry_safe_and_cannot_be_taken_by_another(alice, bob):
    channel = alice.channel(alice.group(members=[bob]))
    message_id = str(uuid.uuid4())
    first = alice.post(channel, "chosen id", id=message_id)
    again = alice.post(channel, "chosen id", id=message_id)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] == message_id
    assert bob.post(channel, "stolen id", id=message_id).status_code == 409
    assert len(messages_with(alice, "chosen id")) >= 1
    assert [m["id"] for m in alice.api.post("/message/search", json={"id": [message_id]}).json()] == [message_id]


def test_prefer_respond_async_answers_202_with_a_location_that_soon_exists(alice, channel, base_url):
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    response = alice.api.post(url, json={"body": "later"}, headers={"Prefer": "respond-async"})
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "respond-async"
    location = response.headers["location"]
    assert location.startswith("/v1/api/group/")
    origin = base_url.removesuffix("/v1/api")
    assert wait_for(lambda: alice.api.get(origin + location).status_code == 200, timeout=10)


def test_redis_unreachable_is_a_quick_503_not_a_hang(stack, alice, channel):
    port = stack.start_server(SECTOR_REDIS_URL="redis://127.0.0.1:1/0")
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1/api", headers=alice.api.headers, timeout=30)
    started = time.monotonic()
    response = api.post(f"/group/{channel['group']}/channel/{channel['id']}/message", json={"body": "lost?"})
    assert response.status_code == 503
    assert time.monotonic() - started < 10
    assert response.json()["error"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert api.get("/challenge", params={"username": alice.username}).status_code == 503
    # Reads that need no Redis still work.
    assert api.get(f"/group/{channel['group']}").status_code == 200


def test_without_a_worker_a_write_is_503_then_applied_exactly_once_when_one_comes(stack, alice, channel):
    port = stack.start_server(SECTOR_WRITES_REPLY_TIMEOUT_MS="700")
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1/api", headers=alice.api.headers, timeout=30)
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    text = f"queued {uuid.uuid4().hex}"
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    stack.kill_worker()
    try:
        first = api.post(url, json={"body": text}, headers=headers)
        assert first.status_code == 503
        assert int(first.headers["retry-after"]) > 0
        retry = api.post(url, json={"body": text}, headers=headers)
        assert retry.status_code == 503
    finally:
        stack.start_worker()
    assert wait_for(lambda: len(messages_with(alice, text)) > 0)
    after = api.post(url, json={"body": text}, headers=headers)
    assert after.status_code == 201
    time.sleep(0.5)
    found = messages_with(alice, text)
    assert [m["id"] for m in found] == [after.json()["id"]]


def unacked_writes(stack) -> int:
    import redis

    client = redis.Redis.from_url(stack.settings.redis_url)
    keys = client.keys(f"{stack.settings.redis.namespace}:dramatiq:__acks__.*.writes")
    return sum(client.scard(key) for key in keys)


@contextmanager
def writes_blocked(stack):
    """Hold the database's write lock, so a worker's commit waits inside its transaction."""
    if stack.is_postgres:
        import psycopg2

        conn = psycopg2.connect(stack.settings.database_url)
        conn.cursor().execute("LOCK TABLE message IN EXCLUSIVE MODE")
    else:
        conn = sqlite3.connect(stack.settings.database_url.removeprefix("sqlite:///"), timeout=5,
                               isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_a_worker_killed_mid_write_leaves_exactly_one_row_after_redelivery(stack, alice, channel, base_url):
    url = f"/group/{channel['group']}/channel/{channel['id']}/message"
    text = f"survivor {uuid.uuid4().hex}"
    with writes_blocked(stack):
        response = alice.api.post(url, json={"body": text}, headers={"Prefer": "respond-async"})
        assert response.status_code == 202
        # The worker has taken the message (it sits in Dramatiq's unacked set) and waits on the lock.
        assert wait_for(lambda: unacked_writes(stack) > 0, timeout=10)
        time.sleep(0.3)
        stack.kill_worker()
    location = base_url.removesuffix("/v1/api") + response.headers["location"]
    assert alice.api.get(location).status_code == 404
    stack.start_worker()
    # Dramatiq gives the dead worker's unacked message to a live one once its heartbeat lapses.
    assert wait_for(lambda: alice.api.get(location).status_code == 200, timeout=60)
    time.sleep(1)
    assert len(messages_with(alice, text)) == 1


def test_concurrent_writes_commit_once_each_and_a_refused_one_fails_alone(alice, bob, channel, base_url):
    import asyncio

    text = f"burst {uuid.uuid4().hex}"
    url = f"{base_url}/group/{channel['group']}/channel/{channel['id']}/message"
    taken = f"race-{uuid.uuid4().hex[:10]}"

    async def burst():
        async with httpx.AsyncClient(headers=alice.api.headers, timeout=30) as client:
            posts = [client.post(url, json={"body": f"{text} {i}"}) for i in range(40)]
            # Two sign-ups racing for one username ride in the same batches as the posts.
            signups = [client.post(f"{base_url}/account/", json={"username": taken, "pubkey": alice.pubkey})
                       for _ in range(2)]
            return await asyncio.gather(*posts, *signups)

    responses = asyncio.run(burst())
    posts, signups = responses[:40], responses[40:]
    assert all(r.status_code == 201 for r in posts), [r.text for r in posts if r.status_code != 201]
    assert len({r.json()["id"] for r in posts}) == 40
    assert len(messages_with(alice, text)) == 40
    assert sorted(r.status_code for r in signups) == [201, 409]
    assert len(alice.api.post("/account/search", json={"username": taken}).json()) == 1


def test_a_value_the_database_refuses_fails_its_own_command_without_retries(stack, alice, channel):
    """PostgreSQL refuses NUL in text; the API rejects it up front, the actor must not retry it forever."""
    from domain import commands as c
    from models import new_id, utcnow

    def post(body):
        command = c.PostMessage(command_id=c.new_command_id(), message_id=new_id(), channel_id=uuid.UUID(channel["id"]),
                                author_id=author_id(stack, alice), body=body, pinned=False, at=utcnow())
        return c.to_wire(command)

    tag = uuid.uuid4().hex
    good, odd = post(f"fine {tag}"), post(f"nul \x00 {tag}")
    outcomes = send_commands(stack, [good, odd])
    assert outcomes[good["command_id"]] == "applied"
    if stack.is_postgres:
        assert outcomes[odd["command_id"]]["kind"] == "Invalid"
    else:  # SQLite stores NUL like any other character
        assert outcomes[odd["command_id"]] == "applied"
    assert len(messages_with(alice, f"fine {tag}")) == 1


def author_id(stack, account) -> int:
    import models

    models.open_database(stack.settings.database_url)
    try:
        return models.User.get(models.User.uid == uuid.UUID(account.id)).id
    finally:
        models.db.close()


def test_a_client_chosen_id_used_for_another_request_is_a_conflict_not_a_repeat(alice, base_url):
    import base64

    from nacl.signing import SigningKey

    one, two = alice.group(), alice.group()
    channel_id = str(uuid.uuid4())
    created = alice.api.post(f"/group/{one['id']}/channel/", json={"id": channel_id, "name": "first"})
    assert created.status_code == 201
    elsewhere = alice.api.post(f"/group/{two['id']}/channel/", json={"id": channel_id, "name": "first"})
    assert elsewhere.status_code == 409

    channel = created.json()
    message_id = str(uuid.uuid4())
    assert alice.post(channel, "original", id=message_id).status_code == 201
    assert alice.post(channel, "different text", id=message_id).status_code == 409

    account_id = str(uuid.uuid4())
    key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    first = httpx.post(f"{base_url}/account/", json={"id": account_id, "username": f"u-{account_id[:8]}", "pubkey": key})
    other = httpx.post(f"{base_url}/account/", json={"id": account_id, "username": f"v-{account_id[:8]}", "pubkey": key})
    assert (first.status_code, other.status_code) == (201, 409)


def test_after_the_database_drops_every_connection_the_server_and_worker_reconnect(stack, alice, channel):
    """A PostgreSQL restart or failover: a 503 at worst, never a 500, and service comes back by itself."""
    if not stack.is_postgres:
        pytest.skip("SQLite has no server whose connections can drop; CI's PostgreSQL run covers this")
    import psycopg2

    admin = psycopg2.connect(stack.settings.database_url)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    admin.close()
    url = f"/group/{channel['group']}/channel/{channel['id']}"
    statuses = []

    def read_and_write_work():
        read = alice.api.get(url).status_code
        written = alice.post(channel, "after the restart").status_code
        statuses.extend([read, written])
        return (read, written) == (200, 201)

    assert wait_for(read_and_write_work, timeout=30, interval=0.2)
    assert set(statuses) <= {200, 201, 503}, statuses
