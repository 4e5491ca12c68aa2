"""Structured logs and request ids: with `[logging] format = "json"` every process writes one JSON object a line,
one a request and one a job; X-Request-Id is taken or made, returned, and carried into the jobs a request
causes (its write, and the follow-ups the write sends)."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from tests.rosetta import PASSWORD, new_email
from tests.stack import Stack, wait_for

MADE = re.compile(r"[0-9a-f]{32}")


class LoggedStack(Stack):
    """A stack logging JSON at INFO, one line a request, its server's and worker's stderr kept in files."""

    def __init__(self):
        super().__init__()
        self.env.update({"SECTOR_LOGGING_FORMAT": "json", "SECTOR_LOGGING_LEVEL": "INFO",
                         "SECTOR_HTTP_ACCESS_LOG": "true"})
        self.worker_log = self.data_dir / "worker.log"
        self.server_log = self.data_dir / "server.log"

    def start_worker(self, stderr=None, **overrides):
        return super().start_worker(stderr=stderr or open(self.worker_log, "ab"), **overrides)

    def start_server(self, stderr=None, **overrides):
        return super().start_server(stderr=stderr or open(self.server_log, "ab"), **overrides)

    def lines(self, log) -> list[str]:
        return log.read_text(encoding="utf-8", errors="replace").splitlines()

    def records(self, log) -> list[dict]:
        return [json.loads(line) for line in self.lines(log)]


@pytest.fixture(scope="module")
def lstack():
    stack = LoggedStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def origin(lstack) -> str:
    return f"http://127.0.0.1:{lstack.port}"


def register(origin: str, **headers) -> httpx.Response:
    """A RosettaChat sign-up: a write, and its verification mail as a follow-up."""
    answer = httpx.post(origin + "/api/v1/auth/app/register", headers=headers, timeout=30, json={
        "name": "Logged User", "email": new_email("logs"), "password": PASSWORD, "password_confirmation": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer


def request_lines(stack: LoggedStack, rid: str) -> list[dict]:
    return [r for r in stack.records(stack.server_log) if r.get("request_id") == rid and r["logger"] == "sector.http"]


def job_lines(stack: LoggedStack, rid: str, actor: str) -> list[dict]:
    return [r for r in stack.records(stack.worker_log)
            if r["logger"] == "sector.jobs" and r.get("actor") == actor and rid in r.get("request_id", "").split(",")]


def test_a_sane_request_id_is_echoed_in_both_dialects_and_on_errors(origin):
    for path, status in (("/v1/api/health", 200), ("/api/v1/me", 401), ("/v1/api/no/such/route", 404)):
        answer = httpx.get(origin + path, headers={"X-Request-Id": "trace-01.A_b"})
        assert answer.status_code == status
        assert answer.headers["X-Request-Id"] == "trace-01.A_b"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "semi;colon", "caf\u00e9".encode()])
def test_a_missing_or_insane_request_id_is_replaced_by_a_made_one(origin, sent):
    headers = {} if sent is None else {"X-Request-Id": sent}
    answer = httpx.get(origin + "/v1/api/health", headers=headers)
    assert answer.status_code == 200
    assert MADE.fullmatch(answer.headers["X-Request-Id"])
    assert answer.headers["X-Request-Id"] != sent


def test_made_request_ids_differ_from_request_to_request(origin):
    ids = {httpx.get(origin + "/v1/api/health").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_each_request_is_one_json_line_with_its_route_status_duration_and_request_id(lstack, origin):
    rid = f"req-{uuid.uuid4().hex}"
    workspace_id = uuid.uuid4().hex
    assert httpx.get(f"{origin}/api/v1/workspaces/{workspace_id}", headers={"X-Request-Id": rid}).status_code == 401
    assert wait_for(lambda: request_lines(lstack, rid), timeout=10)
    [line] = request_lines(lstack, rid)
    assert line["method"] == "GET" and line["route"] == "/api/v1/workspaces/<workspace_id:str>"
    assert line["status"] == 401 and line["duration_ms"] >= 0 and line["level"] == "INFO"
    assert workspace_id not in json.dumps(line)  # the route, never the path
    assert {"time", "level", "logger", "message", "process"} <= set(line)


def test_the_request_id_reaches_the_write_job_and_the_follow_up_it_caused(lstack, origin):
    rid = f"signup-{uuid.uuid4().hex}"
    assert register(origin, **{"X-Request-Id": rid}).headers["X-Request-Id"] == rid
    assert wait_for(lambda: job_lines(lstack, rid, "send_verification_email"), timeout=20), \
        "the verification mail's job does not name the request"
    [write] = job_lines(lstack, rid, "commit_writes")
    assert write["outcome"] == "success" and write["queue"] == "writes" and write["duration_ms"] >= 0
    assert MADE.fullmatch(write["message_id"].replace("-", ""))
    [mail] = job_lines(lstack, rid, "send_verification_email")
    assert mail["queue"] == "email" and mail["outcome"] == "success"


def test_a_request_without_an_id_still_links_its_log_line_to_its_jobs(lstack, origin):
    rid = register(origin).headers["X-Request-Id"]
    assert MADE.fullmatch(rid)
    assert wait_for(lambda: job_lines(lstack, rid, "commit_writes"), timeout=20)
    assert wait_for(lambda: request_lines(lstack, rid), timeout=10)


def test_every_line_every_process_wrote_is_a_json_object(lstack, origin):
    register(origin)
    time.sleep(0.5)  # the follow-ups' lines
    for log in (lstack.server_log, lstack.worker_log):
        lines = lstack.lines(log)
        assert lines
        for line in lines:
            record = json.loads(line)
            assert isinstance(record, dict) and {"time", "level", "logger", "message", "process"} <= set(record), line
    ready = [r for r in lstack.records(lstack.worker_log) if r["message"] == "Worker process is ready for action."]
    assert len({r["process"] for r in ready}) >= 2  # Dramatiq's processes (one a group of queues) log so too


def test_the_openapi_documents_name_the_request_id_header_of_every_response(origin):
    for path in ("/v1/swagger.json", "/api/v1/openapi.json"):
        document = httpx.get(origin + path).json()
        assert document["components"]["headers"]["X-Request-Id"]["schema"]["pattern"] == "^[A-Za-z0-9._-]{1,128}$"
        responses = [response for item in document["paths"].values() for operation in item.values()
                     if isinstance(operation, dict) for response in operation.get("responses", {}).values()]
        responses = [document["components"]["responses"][r["$ref"].rsplit("/", 1)[1]] if "$ref" in r else r
                     for r in responses]
        assert responses and all("X-Request-Id" in response["headers"] for response in responses)
