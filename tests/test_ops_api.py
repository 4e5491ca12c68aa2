"""The ops JSON API against real queues and a real worker: failed jobs with their tracebacks, retry, delete,
purge, pause and resume, delayed jobs run now, the queues' sampled depth and latency, search, the scheduler,
operators only, and the audit log."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import hypothesis
import pytest
import schemathesis

from actors.queues import QUEUES
from handlers.ops import openapi as ops_openapi
from tests import fuzzing
from tests.ops_world import SAMPLE_EVERY_S, OpsWorld, cli, pretty, sampling_stack
from tests.rosetta import mails_to
from tests.stack import wait_for


@pytest.fixture(scope="module")
def stack():
    stack = sampling_stack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def world(stack) -> OpsWorld:
    return OpsWorld(stack)


def confirm(client, path: str):
    return client.post(path, json={"confirm": True})


def test_a_failing_job_lands_in_the_failed_list_with_its_traceback(world):
    (message_id,) = world.failing_mails()
    listed = world.dead(message_id)
    assert listed["actor"] == "send_email" and listed["queue"] == "email" and listed["state"] == "dead"
    assert listed["arguments"] == {"sealed": "[redacted]"}
    assert listed["exception"].startswith("SealBroken")
    assert listed["attempts"] == 1 and listed["first_failed_at"] <= listed["last_failed_at"]
    one = world.ops.get(f"/failed/{message_id}")
    assert one.status_code == 200, pretty(one)
    assert "Traceback (most recent call last)" in one.json()["traceback"]
    assert "unseal" in one.json()["traceback"]


def test_retry_runs_a_dead_job_again_and_is_audited(world):
    (message_id,) = world.failing_mails()
    first = world.dead(message_id)
    answer = confirm(world.ops, f"/failed/{message_id}/retry")
    assert answer.status_code == 200, pretty(answer)
    # It ran again on the worker, failed again for the same reason, and is dead again.
    assert wait_for(lambda: world.record(message_id).get("attempts") == "2" and
                    world.record(message_id).get("dead") == "1", timeout=20)
    again = world.dead(message_id)
    assert again["attempts"] == 2 and again["last_failed_at"] > first["last_failed_at"]
    assert again["first_failed_at"] == first["first_failed_at"]
    entry = next(e for e in world.audit() if e["target"] == f"email/{message_id}")
    assert entry["action"] == "retry" and entry["email"] == world.operator.email


def test_delete_removes_a_dead_job(world):
    (message_id,) = world.dead_mails()
    assert confirm(world.ops, f"/failed/{message_id}/delete").status_code == 200
    assert world.ops.get(f"/failed/{message_id}").status_code == 404
    assert confirm(world.ops, f"/failed/{message_id}/retry").status_code == 404
    assert any(e["action"] == "delete" and e["target"] == f"email/{message_id}" for e in world.audit())


def test_purge_removes_every_dead_job_of_a_queue(world):
    world.dead_mails(3)
    answer = confirm(world.ops, "/queues/email/purge")
    assert answer.status_code == 200 and answer.json()["count"] >= 3, pretty(answer)
    page = world.ops.get("/failed", params={"queue": "email"}).json()
    assert page["dead"] == 0 and page["items"] == []
    assert any(e["action"] == "purge" and e["target"] == "email" for e in world.audit())


def test_retry_all_sends_every_dead_job_of_a_queue_again(world):
    ids = world.dead_mails(2)
    answer = confirm(world.ops, "/queues/email/retry-all")
    assert answer.status_code == 200 and answer.json()["count"] >= 2, pretty(answer)
    assert wait_for(lambda: all(world.record(i).get("attempts") == "2" and world.record(i).get("dead") == "1"
                                for i in ids), timeout=20)


def test_actions_that_lose_or_rerun_jobs_need_confirming(world):
    (message_id,) = world.dead_mails()
    for body in (None, {}, {"confirm": False}, {"confirm": "yes"}):
        answer = world.ops.post(f"/failed/{message_id}/delete", json=body) if body is not None else \
            world.ops.post(f"/failed/{message_id}/delete")
        assert answer.status_code in (400, 422), pretty(answer)
        assert set(answer.json()) == {"error", "message", "errors"}
    assert world.ops.get(f"/failed/{message_id}").status_code == 200  # still there


def test_unknown_jobs_and_queues_are_404(world):
    assert world.ops.get("/failed/00000000-0000-4000-8000-000000000000").status_code == 404
    assert world.ops.get("/failed/not-an-id").status_code == 404
    assert confirm(world.ops, "/failed/00000000-0000-4000-8000-000000000000/retry").status_code == 404
    assert world.ops.post("/queues/nope/pause").status_code == 404
    assert world.ops.get("/queues/nope/delayed").status_code == 404
    assert world.ops.get("/failed", params={"queue": "nope"}).status_code == 404
    assert world.ops.get("/failed", params={"limit": "lots"}).status_code == 422


def test_pausing_a_queue_stops_consumption_and_resuming_restarts_it(world):
    assert world.ops.post("/queues/email/pause").status_code == 200
    assert next(q for q in world.ops.get("/overview").json()["queues"] if q["name"] == "email")["paused"]
    time.sleep(1.0)  # workers look at the flag every half second
    ids = world.failing_mails(3)
    assert wait_for(lambda: world.depth("email") >= 3, timeout=5)
    time.sleep(2.0)
    assert world.depth("email") >= 3, "a worker consumed a paused queue"
    assert all(not world.record(i) for i in ids)
    queue = next(q for q in world.ops.get("/overview").json()["queues"] if q["name"] == "email")
    assert queue["latency_s"] is not None and queue["latency_s"] >= 2
    assert world.ops.post("/queues/email/resume").status_code == 200
    assert wait_for(lambda: world.depth("email") == 0, timeout=3), "resume did not restart consumption in time"
    for message_id in ids:
        world.dead(message_id)
    actions = [e["action"] for e in world.audit() if e["target"] == "email"]
    assert "pause" in actions and "resume" in actions


def test_the_series_samples_each_queue_s_depth_and_latency_on_the_server(world):
    """A worker records the gauges into the series (every SAMPLE_EVERY_S here, once a minute by default), so
    the API serves their history: a paused queue's backlog shows in the sampled depth and latency, the
    drained queue in a later sample, and a minute no worker sampled is null."""

    def sample_where(fits) -> dict:
        found = {}

        def sampled():
            found.update(minute if (minute := world.sampled("expiry")) and fits(minute) else {})
            return bool(found)

        wait_for(sampled, timeout=20 * SAMPLE_EVERY_S, interval=0.5)
        return found

    assert world.ops.post("/queues/expiry/pause").status_code == 200
    try:
        time.sleep(1.0)  # workers look at the flag every half second
        ids = world.send("from actors.files import file_deleted\n"
                         "for i in range(4): print(file_deleted.send([f'files/sampled-{i}']).message_id)")
        assert len(ids) == 4
        backlog = sample_where(lambda m: m["depth"] >= 4 and m["oldest_age_s"] > 0)
        assert backlog, "no sample of the paused queue's depth and latency reached the series"
        assert isinstance(backlog["delayed"], int) and isinstance(backlog["dead"], int)
    finally:
        assert world.ops.post("/queues/expiry/resume").status_code == 200
    assert wait_for(lambda: world.depth("expiry") == 0, timeout=10)
    assert sample_where(lambda m: m["depth"] == 0 and m["oldest_age_s"] == 0), \
        "no sample of the drained queue reached the series"
    # The hour's first minute was before this stack ran: no worker sampled it.
    first = next(q for q in world.ops.get("/overview").json()["queues"] if q["name"] == "expiry")["minutes"][0]
    gauges = ("depth", "delayed", "dead", "oldest_age_s")
    assert {name: first[name] for name in gauges} == dict.fromkeys(gauges), first


def test_the_overview_shows_each_queue_its_last_hour_and_only_consumer_workers(world):
    world.dead_mails()
    time.sleep(1.5)  # a worker writes its counts every second
    overview = world.ops.get("/overview").json()
    assert [q["name"] for q in overview["queues"]] == ["writes", "messages", "translation", "push", "webhooks",
                                                       "email", "expiry"]
    email = next(q for q in overview["queues"] if q["name"] == "email")
    assert len(email["minutes"]) == 60 and email["minutes"][-1]["failed"] >= 1
    assert email["failed_per_min"] > 0 and email["p95_ms"] is not None and email["dead"] >= 1
    writes = next(q for q in overview["queues"] if q["name"] == "writes")
    assert writes["minutes"][-1]["processed"] >= 1 or sum(m["processed"] for m in writes["minutes"]) >= 1
    # One consumer process a group of queues ([workers] groups), and no API process.
    workers = overview["workers"]
    assert sorted(tuple(w["queues"]) for w in workers) == [("email", "expiry", "messages", "writes"),
                                                           ("push", "translation", "webhooks")]
    assert all(w["heartbeat_age_s"] < 5 and w["threads"] == 4 and w["failed"] >= 0 for w in workers)
    assert sum(w["processed"] + w["failed"] for w in workers) >= 2


def test_a_delayed_job_is_listed_and_runs_now_when_asked(world, stack):
    user_id = world.outsider.id
    before = len(mails_to(stack, world.outsider.email, "verify"))
    (message_id,) = world.send(f"from actors.email import send_verification_email\n"
                               f"print(send_verification_email.send_with_options(args=({user_id},), "
                               f"delay=3_600_000).message_id)")
    listed = world.ops.get("/queues/email/delayed").json()
    job = next(j for j in listed["items"] if j["message_id"] == message_id)
    assert job["actor"] == "send_verification_email" and job["arguments"] == {"user_id": user_id}
    assert job["eta"] > time.time() + 3000
    answer = world.ops.post(f"/queues/email/delayed/{message_id}/run")
    assert answer.status_code == 200, pretty(answer)
    assert wait_for(lambda: len(mails_to(stack, world.outsider.email, "verify")) == before + 1, timeout=20)
    assert all(j["message_id"] != message_id for j in world.ops.get("/queues/email/delayed").json()["items"])
    assert world.ops.post(f"/queues/email/delayed/{message_id}/run").status_code == 404
    assert any(e["action"] == "run_now" for e in world.audit())


def test_search_finds_jobs_by_actor_message_id_and_argument_value(world):
    world.ops.post("/queues/expiry/pause")
    try:
        time.sleep(1.0)
        (message_id,) = world.send("from actors.files import file_deleted\n"
                                   "print(file_deleted.send(['files/needle-4711']).message_id)")
        by_value = world.ops.get("/search", params={"q": "needle-4711"}).json()["items"]
        assert [j["message_id"] for j in by_value] == [message_id] and by_value[0]["state"] == "queued"
        assert any(j["message_id"] == message_id for j in world.ops.get("/search", params={"q": message_id}).json()["items"])
        assert any(j["message_id"] == message_id
                   for j in world.ops.get("/search", params={"q": "file_deleted", "limit": 200}).json()["items"])
        # Redacted values are not searchable: a secret cannot be confirmed by guessing it.
        world.dead_mails()
        assert world.ops.get("/search", params={"q": "not-sealed-"}).json()["items"] == []
    finally:
        world.ops.post("/queues/expiry/resume")


def test_the_schedule_shows_each_periodic_job_and_the_leader(world, stack):
    scheduler = stack._spawn("scheduler", env={**stack.env, "SECTOR_SCHEDULER_SWEEP_INTERVAL_S": "1",
                                               "SECTOR_SCHEDULER_LOCK_TTL_S": "3"})
    try:
        def recorded():
            answer = world.ops.get("/schedule").json()
            return answer["leader"]["token"] and any(j["name"] == "expire_tokens" for j in answer["jobs"]) and answer
        assert wait_for(recorded, timeout=30)
        answer = world.ops.get("/schedule").json()
        job = next(j for j in answer["jobs"] if j["name"] == "expire_tokens")
        assert job["outcome"] == "sent" and job["next_run_at"] > job["last_run_at"] and job["every_s"] > 0
        assert answer["leader"]["token"] in job["ran_by"] and answer["leader"]["expires_in_s"] > 0
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(scheduler.pid, signal.SIGKILL)


def test_a_non_operator_is_refused(world):
    anonymous = world.client(None)
    assert anonymous.get("/overview").status_code == 401
    assert world.client("garbage|token").get("/overview").status_code == 401
    refused = world.client(world.outsider.token).get("/overview")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden", pretty(refused)
    assert world.client(world.outsider.token).post("/queues/email/pause").status_code == 403
    # The operator's own tokens: `*` works, a narrow token without `ops` does not.
    assert world.client(world.operator.token).get("/overview").status_code == 200
    narrow = world.operator.api.post("/me/tokens", json={"name": "rooms", "abilities": ["temporary-rooms:create"]})
    assert narrow.status_code in (200, 201), narrow.text
    assert world.client(narrow.json()["data"]["token"]).get("/overview").status_code == 403
    assert all(e["email"] == world.operator.email for e in world.audit())


def test_the_dashboard_session_signs_in_operators_only(world):
    import httpx

    browser = httpx.Client(base_url=world.origin, timeout=30)
    page = browser.get("/ops/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    xsrf = {"X-XSRF-TOKEN": browser.cookies["XSRF-TOKEN"]}
    assert browser.post("/ops/api/session", json={"email": world.operator.email, "password": "wrong"},
                        headers=xsrf).status_code == 422
    assert browser.post("/ops/api/session", json={"email": world.outsider.email,
                                                  "password": world.outsider.password}, headers=xsrf).status_code == 403
    assert browser.get("/ops/api/overview").status_code == 401
    assert browser.post("/ops/api/session", json={"email": world.operator.email,
                                                  "password": world.operator.password}).status_code == 419
    signed = browser.post("/ops/api/session", json={"email": world.operator.email,
                                                    "password": world.operator.password}, headers=xsrf)
    assert signed.status_code == 200, pretty(signed)
    assert browser.get("/ops/api/overview").status_code == 200
    assert browser.post("/ops/api/queues/expiry/pause").status_code == 419  # a change needs the session's XSRF
    xsrf = {"X-XSRF-TOKEN": browser.cookies["XSRF-TOKEN"]}
    assert browser.delete("/ops/api/session", headers=xsrf).status_code == 200
    assert browser.get("/ops/api/overview").status_code == 401


def test_the_operators_command_grants_revokes_and_lists(world, stack):
    listed = cli(stack, "operators", "list")
    assert world.operator.email in listed.stdout and world.outsider.email not in listed.stdout
    assert "Granted." in cli(stack, "operators", "grant", "--email", world.outsider.email).stdout
    assert "already" in cli(stack, "operators", "grant", "--email", world.outsider.email).stdout
    assert world.client(world.outsider.token).get("/overview").status_code == 200
    assert world.outsider.email in cli(stack, "operators", "list").stdout
    assert "Revoked." in cli(stack, "operators", "revoke", "--email", world.outsider.email).stdout
    assert world.client(world.outsider.token).get("/overview").status_code == 403
    assert cli(stack, "operators", "grant", "--email", "nobody@example.com").returncode != 0
    assert cli(stack, "operators", "token", "--email", world.outsider.email).returncode != 0


# The OpenAPI document, and schemathesis against it with a real operator's token. Last in the module: fuzzing
# pauses queues and takes dead jobs.

_world: OpsWorld | None = None
FUZZED = 4
schema = fuzzing.load(ops_openapi.document(), fuzzed=FUZZED, steps=3)
fuzzing.use_bearer_token(schema, lambda: _world.token if _world is not None else "pending")


class Targets:
    """Dead jobs for generated cases to name: two positive cases of three that name a job get a real one (the
    third keeps its random id, so the 404s are exercised too)."""

    def __init__(self, world: OpsWorld):
        import httpx

        self.world = world
        self.xsrf = httpx.get(f"{world.origin}/ops/").cookies["XSRF-TOKEN"]
        self.dead = world.dead_mails(6)
        self.seen = 0

    def adapt(self, case) -> None:
        fuzzing.drop_framing_headers(case)
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        if case.operation.label == "POST /ops/api/session":  # what the page sends: real credentials, the XSRF pair
            case.body = {"email": self.world.operator.email, "password": self.world.operator.password}
            case.headers = {**(case.headers or {}), "X-XSRF-TOKEN": self.xsrf}
            case.cookies = {**(case.cookies or {}), "XSRF-TOKEN": self.xsrf}
        if "message_id" in (case.path_parameters or {}):
            self.seen += 1
            if self.seen % 3:
                case.path_parameters["message_id"] = self.dead[self.seen % len(self.dead)]


@pytest.fixture(scope="module")
def targets(world):
    global _world
    _world = world
    yield Targets(world)
    for queue in QUEUES:  # fuzzed cases may have paused some
        world.ops.post(f"/queues/{queue}/resume")
    _world = None


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
def test_every_ops_operation_keeps_to_the_document(case, targets, world):
    targets.adapt(case)
    case.call_and_validate(base_url=world.origin)


def test_every_ops_route_is_in_the_document(app):
    undocumented, unserved = fuzzing.undocumented_and_unserved(app, ops_openapi.document(), ("ops/api",))
    assert undocumented == set(), "routes missing from the ops OpenAPI document"
    assert unserved == set(), "documented operations that no route serves"


def test_the_served_ops_document_is_valid(world):
    import httpx

    document = httpx.get(f"{world.origin}/ops/api/openapi.json").json()
    assert document == ops_openapi.document()
    schemathesis.openapi.from_dict(document).validate()
    open_operations = {(method, path) for path, ops in document["paths"].items() for method, op in ops.items()
                       if op["security"] == []}
    assert open_operations == {("get", "/ops/api/openapi.json"), ("post", "/ops/api/session")}
