"""GET /metrics: Prometheus text from every process of a real stack (HTTP, jobs, queues), for operators' tokens,
or without one on the metrics port; and the queue reader behind its gauges (actors/queues.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from actors import queues
from tests.rosetta import AppUser
from tests.stack import ROOT, Stack, free_port, run_python, wait_for

# Nobody reads `email` here (the verification mail of each sign-up waits in it), nor `webhooks`.
GROUPS = "writes,messages,expiry;translation,push"
WORKSPACE_ROUTE = "/api/v1/workspaces/<workspace_id:str>"


@pytest.fixture(scope="module")
def mstack():
    stack = Stack()
    stack.env["SECTOR_WORKERS_GROUPS"] = GROUPS
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api_url(mstack) -> str:
    return f"http://127.0.0.1:{mstack.port}"


@pytest.fixture(scope="module")
def operator(mstack, api_url) -> AppUser:
    user = AppUser(api_url + "/api/v1")
    app_py(mstack, "operators", "grant", "--email", user.email)
    return user


@pytest.fixture(scope="module")
def ops_token(mstack, operator) -> str:
    return app_py(mstack, "operators", "token", "--email", operator.email, "--name", "prometheus").strip()


@pytest.fixture(scope="module")
def second_server(mstack) -> tuple[int, int]:
    """Another `app.py serve` of the stack (its API port, and its metrics port): one more process counting."""
    metrics_port = free_port()
    return mstack.start_server(SECTOR_METRICS_PORT=str(metrics_port)), metrics_port


def app_py(stack: Stack, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], env=stack.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def scrape(url: str, token: str | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, by name and labels."""
    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")  # the Prometheus text format
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_to(samples: dict, route: str, status: str, method: str = "GET") -> float:
    return value(samples, "sector_http_request_duration_seconds_count", method=method, route=route, status=status)


# The HTTP side.

def test_metrics_answer_in_prometheus_text_for_an_operators_ops_token(api_url, ops_token):
    samples = scrape(api_url + "/metrics", ops_token)
    assert value(samples, "sector_queues_up") == 1
    assert ("sector_queue_depth", frozenset({("queue", "writes")})) in samples


def test_requests_to_two_ids_of_one_route_count_in_one_series(api_url, ops_token, operator):
    before = scrape(api_url + "/metrics", ops_token)
    ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    for workspace_id in ids:
        assert operator.api.get(f"/workspaces/{workspace_id}").status_code == 404
    after = scrape(api_url + "/metrics", ops_token)
    assert requests_to(after, WORKSPACE_ROUTE, "404") - requests_to(before, WORKSPACE_ROUTE, "404") == 2
    assert value(after, "sector_http_request_duration_seconds_bucket", method="GET", route=WORKSPACE_ROUTE,
                 status="404", le="+Inf") == requests_to(after, WORKSPACE_ROUTE, "404")
    assert not any(workspace_id in label for key in after for _, label in key[1] for workspace_id in ids)


def test_paths_no_route_matches_count_under_one_label(api_url, ops_token):
    before = scrape(api_url + "/metrics", ops_token)
    for path in ("/no/such/path", f"/nor/this/{uuid.uuid4().hex}"):
        assert httpx.get(api_url + path).status_code == 404
    after = scrape(api_url + "/metrics", ops_token)
    assert requests_to(after, "unmatched", "404") - requests_to(before, "unmatched", "404") == 2


def test_metrics_refuse_a_caller_without_a_token_or_without_the_ops_ability_or_not_an_operator(api_url, operator):
    assert httpx.get(api_url + "/metrics").status_code == 401
    assert httpx.get(api_url + "/metrics", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    narrow = operator.api.post("/me/tokens", json={"name": "bot", "abilities": ["automation:post"]})
    assert narrow.status_code == 201, narrow.text
    assert operator.with_token(narrow.json()["data"]["token"]).get(api_url + "/metrics").status_code == 403
    someone = AppUser(api_url + "/api/v1")  # a `*` token, but not an operator
    assert someone.api.get(api_url + "/metrics").status_code == 403
    # The operator's own `*` token passes.
    assert operator.api.get(api_url + "/metrics").status_code == 200


# Jobs, from the worker processes.

def test_a_job_a_worker_ran_is_counted_by_actor_and_outcome(api_url, ops_token):
    before = scrape(api_url + "/metrics", ops_token)
    AppUser(api_url + "/api/v1")  # its sign-up is a commit_writes job
    labels = {"actor": "commit_writes", "queue": "writes", "outcome": "success"}
    # The job answers the request before it is done, so its counts may land a moment later.
    assert wait_for(lambda: value(scrape(api_url + "/metrics", ops_token), "sector_jobs_total", **labels)
                    > value(before, "sector_jobs_total", **labels), timeout=10)
    after = scrape(api_url + "/metrics", ops_token)
    assert value(after, "sector_job_duration_seconds_count", **labels) > \
        value(before, "sector_job_duration_seconds_count", **labels)


def test_a_job_that_fails_is_counted_retried_then_failed_and_its_dead_letter_shows(mstack, api_url, ops_token):
    before = scrape(api_url + "/metrics", ops_token)
    # A batch the write actor cannot read fails every time; with one retry allowed it fails twice.
    run_python(mstack.env, textwrap.dedent("""
        import actors
        from actors.writes import commit_writes
        commit_writes.send_with_options(kwargs={"commands": [{"type": "NoSuchCommand"}]}, max_retries=1)
    """))
    failed = {"actor": "commit_writes", "queue": "writes", "outcome": "failed"}
    retried = {**failed, "outcome": "retried"}

    def one_more(samples, name, **labels) -> bool:
        return value(samples, name, **labels) == value(before, name, **labels) + 1

    def dead() -> bool:  # the dead letter lands just after the job's counts (the worker nacks once it is done)
        samples = scrape(api_url + "/metrics", ops_token)
        return one_more(samples, "sector_jobs_total", **failed) and one_more(samples, "sector_queue_dead", queue="writes")

    assert wait_for(dead, timeout=30)
    assert one_more(scrape(api_url + "/metrics", ops_token), "sector_jobs_total", **retried)


# The queues, read at each scrape.

def test_queue_gauges_show_what_waits_in_a_queue_no_worker_reads(mstack, api_url, ops_token):
    before = scrape(api_url + "/metrics", ops_token)
    AppUser(api_url + "/api/v1")  # its verification mail waits in `email`
    run_python(mstack.env, textwrap.dedent("""
        import actors
        from actors.email import send_verification_email
        send_verification_email.send_with_options(args=(0,), delay=600_000)
    """))
    assert wait_for(lambda: value(scrape(api_url + "/metrics", ops_token), "sector_queue_depth", queue="email")
                    > value(before, "sector_queue_depth", queue="email"), timeout=15)
    after = scrape(api_url + "/metrics", ops_token)
    assert value(after, "sector_queue_delayed", queue="email") == value(before, "sector_queue_delayed",
                                                                          queue="email") + 1
    assert value(after, "sector_queue_oldest_age_seconds", queue="email") > 0


def test_the_queue_snapshot_counts_waiting_delayed_and_dead_messages_and_the_oldest_age(mstack):
    client = redis.Redis.from_url(mstack.settings.redis_url)
    namespace = f"{mstack.settings.redis.namespace}:dramatiq"
    before = {state.name: state for state in queues.snapshot(client, namespace)}
    assert set(before) == set(queues.QUEUES)
    # Nobody reads `webhooks` here: messages of an actor declared just for this.
    run_python(mstack.env, textwrap.dedent("""
        import time
        import dramatiq
        import actors
        @dramatiq.actor(queue_name="webhooks", actor_name="probe_webhooks")
        def probe(n): ...
        probe.send(1)
        time.sleep(0.3)
        probe.send(2)
        probe.send_with_options(args=(3,), delay=600_000)
    """))
    states = {state.name: state for state in queues.snapshot(client, namespace)}
    hooks = states["webhooks"]
    assert hooks.depth == before["webhooks"].depth + 2
    assert hooks.delayed == before["webhooks"].delayed + 1
    assert hooks.dead == before["webhooks"].dead
    assert hooks.oldest_age_s is not None and hooks.oldest_age_s >= 0.3  # the first one's, not the second's
    assert states["expiry"].depth == 0 or states["expiry"].oldest_age_s is not None
    assert queues.snapshot(client, namespace, ["no-such-queue"]) == [
        queues.QueueState(name="no-such-queue", depth=0, delayed=0, dead=0, oldest_age_s=None)]


# Outside services.

def test_calls_to_outside_services_and_their_failures_are_counted(mstack, api_url, ops_token):
    """The mail waiting in `email` goes out once a worker reads it: first through an SMTP server that is not
    there (errors, no answer), then into the maildir."""
    before = scrape(api_url + "/metrics", ops_token)
    assert value(before, "sector_queue_depth", queue="email") >= 1
    unreachable = {"SECTOR_MAIL_TRANSPORT": "smtp", "SECTOR_MAIL_SMTP_PORT": str(free_port()),
                   "SECTOR_MAIL_SMTP_SECURITY": "none"}
    failing = mstack._spawn("worker", "-Q", "email", env={**mstack.env, **unreachable})
    try:
        def failed() -> bool:
            samples = scrape(api_url + "/metrics", ops_token)
            return value(samples, "sector_provider_errors_total", provider="smtp", operation="send",
                         error="unanswered") >= 1 \
                and value(samples, "sector_provider_calls_total", provider="smtp", operation="send") >= 1 \
                and value(samples, "sector_jobs_total", actor="send_email", queue="email", outcome="retried") >= 1
        assert wait_for(failed, timeout=30)
    finally:
        failing.terminate()  # Dramatiq puts back what it holds
        failing.wait(timeout=30)
    sending = mstack._spawn("worker", "-Q", "email")
    try:
        def sent() -> bool:
            samples = scrape(api_url + "/metrics", ops_token)
            return value(samples, "sector_queue_depth", queue="email") == 0 and \
                value(samples, "sector_provider_calls_total", provider="maildir", operation="send") >= 1
        assert wait_for(sent, timeout=60)
        after = scrape(api_url + "/metrics", ops_token)
    finally:
        sending.terminate()
        sending.wait(timeout=30)
    # (The failing worker's counts are gone: starting a worker clears the files of processes that exited.)
    assert value(after, "sector_provider_calls_total", provider="maildir", operation="send") >= 1
    assert value(after, "sector_provider_errors_total", provider="maildir", operation="send", error="unanswered") == 0
    assert value(after, "sector_provider_call_duration_seconds_count", provider="maildir", operation="send") >= 1
    assert value(after, "sector_jobs_total", actor="send_email", queue="email", outcome="success") >= 1


# Processes.

def test_counts_from_two_server_processes_are_summed(api_url, ops_token, second_server):
    port, _ = second_server
    before = scrape(api_url + "/metrics", ops_token)
    route = "/v1/api/health"
    for url in (api_url, api_url, f"http://127.0.0.1:{port}"):
        assert httpx.get(url + route).status_code == 200
    assert requests_to(scrape(api_url + "/metrics", ops_token), route, "200") - requests_to(before, route, "200") == 3
    assert requests_to(scrape(f"http://127.0.0.1:{port}/metrics", ops_token), route, "200") \
        == requests_to(scrape(api_url + "/metrics", ops_token), route, "200")


def test_the_metrics_port_serves_the_same_metrics_without_a_token(api_url, ops_token, second_server):
    _, metrics_port = second_server
    samples = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert value(samples, "sector_queues_up") == 1
    jobs = {"actor": "commit_writes", "queue": "writes", "outcome": "success"}
    assert value(samples, "sector_jobs_total", **jobs) >= 1
    assert value(samples, "sector_jobs_total", **jobs) == value(scrape(api_url + "/metrics", ops_token),
                                                                "sector_jobs_total", **jobs)


def test_metrics_files_of_processes_that_exited_are_cleared_at_start(mstack):
    leftover = mstack.settings.metrics_dir / "counter_999999999.db"
    leftover.write_bytes(b"")
    live = mstack.settings.metrics_dir / f"counter_{os.getpid()}.db"  # this test's process, which runs
    live.write_bytes(b"")
    try:
        out = run_python(mstack.env, "import json, telemetry; telemetry.clear_dead_processes(); "
                                     "print(json.dumps(sorted(p.name for p in telemetry.METRICS_DIR.glob('*.db'))))")
        names = json.loads(out.strip().splitlines()[-1])
        assert leftover.name not in names and live.name in names
        assert any(name.startswith("histogram_") for name in names)  # the live servers' and workers' own
    finally:
        live.unlink()
        leftover.unlink(missing_ok=True)
