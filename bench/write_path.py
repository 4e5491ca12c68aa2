"""Benchmark of Sector's write path: message POSTs against a GET read of the same server, same run.

Starts a full stack of its own (embedded Redis unless SECTOR_REDIS_URL is set, SQLite in a temp
dir unless SECTOR_DATABASE_URL is set, `app.py worker`, `app.py serve`), signs up an account with a
real ed25519 login, creates a group and a channel, then measures:

1. idle latency: one Python client on one keep-alive connection, sequential requests with a pause
   between them, so every write finds the server, the queue and the worker idle: p50/p99 of
   POST message (201) and of GET message (200); and a few POSTs after a longer quiet period, when
   an idle consumer has backed off to its longest wait;
2. throughput with wrk at 1 and at 32 connections, for POST message and for GET message: req/s,
   p50/p99, and the ratio POST/GET at each concurrency. Every response must have the expected
   status (201 / 200); anything else is counted and printed, and makes the exit status 1.

The load generator shares the machine with the server: compare the ratios, not the absolute
numbers, across runs and machines. Run from the repository root: `python bench/write_path.py`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import config  # noqa: E402
from benchutil import percentile, warn_if_busy  # noqa: E402
from tests.api import Account  # noqa: E402
from tests.stack import Stack  # noqa: E402

WRK_SCRIPT = BENCH / "wrk.lua"
IDLE_TARGET_MS = 10  # the target for an idle POST-to-201, p50
WRK_INSTALL_HINT = "install it with `apt-get update && apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`"


class BenchStack(Stack):
    """tests.stack.Stack with production settings instead of the test suite's overrides
    (the suite runs queue maintenance on 20% of broker commands and 4 worker threads)."""

    def __init__(self, *, http_workers: int, worker_processes: int, worker_threads: int | None):
        super().__init__()
        self.env = {
            **os.environ,
            "SECTOR_PATHS_DATA_DIR": str(self.data_dir),
            "SECTOR_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
            "SECTOR_LOGGING_LEVEL": "WARNING",
            "SECTOR_HTTP_WORKERS": str(http_workers),
            "SECTOR_WORKERS_PROCESSES": str(worker_processes),
        }
        if worker_threads:
            self.env["SECTOR_WORKERS_THREADS"] = str(worker_threads)
        self.settings = config.load(environ=self.env)




# ---------------------------------------------------------------- idle latency (Python client)

class Client:
    """One keep-alive HTTP/1.1 connection; http.client costs far less per request than httpx."""

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def timed(self, method: str, path: str, body: bytes | None = None) -> tuple[float, int, bytes]:
        """(milliseconds, status, body) of one request."""
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return (time.perf_counter() - start) * 1000, response.status, data

    def close(self) -> None:
        self.conn.close()


def idle_latency(port: int, token: str, post_path: str, count: int, pause_s: float,
                 quiet_count: int, quiet_s: float) -> dict[str, list[float]]:
    client = Client(port, token)
    results: dict[str, list[float]] = {"post": [], "get": [], "post_quiet": []}

    def post(key: str) -> str:
        ms, status, data = client.timed("POST", post_path, json.dumps({"body": "idle bench"}).encode())
        if status != 201:
            raise SystemExit(f"idle POST answered {status}: {data[:300]!r}")
        results[key].append(ms)
        return json.loads(data)["id"]

    try:
        for _ in range(3):  # warm-up: first requests pay for imports, prepared statements, connections
            client.timed("GET", f"{post_path}/{post('post')}")
        results["post"].clear()
        for _ in range(count):
            time.sleep(pause_s)
            message_id = post("post")
            time.sleep(pause_s)
            ms, status, data = client.timed("GET", f"{post_path}/{message_id}")
            if status != 200:
                raise SystemExit(f"idle GET answered {status}: {data[:300]!r}")
            results["get"].append(ms)
        for _ in range(quiet_count):
            time.sleep(quiet_s)
            post("post_quiet")
    finally:
        client.close()
    return results


# ---------------------------------------------------------------- throughput (wrk)

def run_wrk(url: str, *, connections: int, duration_s: float, method: str, expect: int, token: str,
            body: str | None = None) -> dict[str, int]:
    threads = max(1, min(connections, os.cpu_count() or 1))
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_TOKEN": token, "BENCH_EXPECT": str(expect)}
    if body is not None:
        env["BENCH_BODY"] = body
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), url]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    match = re.search(r"^WRK_RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}


def wrk_errors(result: dict[str, int]) -> int:
    return result["unexpected"] + sum(result[k] for k in ("connect", "read", "write", "timeout"))


def rate(result: dict[str, int]) -> float:
    return result["requests"] / (result["duration_us"] / 1e6)


# ---------------------------------------------------------------- main

def sector_targets(base: str) -> tuple[Account, str, str]:
    """A logged-in Sector account with a group and channel: (it, the path to POST messages to, the path
    of the one message the GET load reads)."""
    account = Account(f"{base}/v1/api")
    channel = account.channel(account.group("Bench"), "bench")
    post_path = f"/v1/api/group/{channel['group']}/channel/{channel['id']}/message"
    seed = account.post(channel, "the message the GET benchmark reads")
    assert seed.status_code == 201, seed.text
    return account, post_path, f"{post_path}/{seed.json()['id']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run (default 8)")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 32],
                        help="comma-separated wrk connection counts (default 1,32)")
    parser.add_argument("--http-workers", type=int, default=1, help="Sanic worker processes (default 1)")
    parser.add_argument("--worker-processes", type=int, default=1, help="Dramatiq worker processes (default 1)")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="threads per Dramatiq worker process (default: config.toml)")
    parser.add_argument("--idle-requests", type=int, default=150, help="idle POST+GET pairs (default 150)")
    parser.add_argument("--idle-pause-ms", type=float, default=25, help="pause before each idle request (default 25)")
    parser.add_argument("--quiet-requests", type=int, default=5,
                        help="POSTs after a long quiet period, when idle consumers wait longest (default 5)")
    parser.add_argument("--quiet-s", type=float, default=1.5, help="that quiet period in seconds (default 1.5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)

    wrk = shutil.which("wrk")
    if not wrk:
        print(f"wrk is not installed: only the latency part will run. To measure throughput, {WRK_INSTALL_HINT}.",
              file=sys.stderr)

    busy = warn_if_busy()
    stack = BenchStack(http_workers=args.http_workers, worker_processes=args.worker_processes,
                       worker_threads=args.worker_threads)
    settings = stack.settings
    print(f"Starting Sector in {stack.data_dir} (redis: {settings.redis.url}, database: "
          f"{'sqlite' if settings.database.url == 'embedded' else settings.database.url.split(':')[0]}, "
          f"{args.http_workers} HTTP worker(s), {args.worker_processes} worker process(es) x "
          f"{settings.workers.threads} threads) ...", file=sys.stderr, flush=True)
    failed = False
    try:
        stack.start()
        base = f"http://127.0.0.1:{stack.port}"
        account, post_path, get_path = sector_targets(base)

        print(f"Idle latency: {args.idle_requests} POST+GET pairs, {args.idle_pause_ms:g} ms pause; "
              f"{args.quiet_requests} POSTs after {args.quiet_s:g} s quiet ...", file=sys.stderr, flush=True)
        idle = idle_latency(stack.port, account.token, post_path, args.idle_requests, args.idle_pause_ms / 1000,
                            args.quiet_requests, args.quiet_s)

        runs: dict[tuple[int, str], dict[str, int]] = {}
        if wrk:
            for connections in args.connections:
                for what, method, path, expect, body in (
                    ("POST", "POST", post_path, 201, json.dumps({"body": "hello from wrk"})),
                    ("GET", "GET", get_path, 200, None),
                ):
                    print(f"wrk: {what} at {connections} connection(s) for {args.duration:g} s ...",
                          file=sys.stderr, flush=True)
                    runs[connections, what] = run_wrk(base + path, connections=connections,
                                                      duration_s=args.duration, method=method, expect=expect,
                                                      token=account.token, body=body)
        committed = count_messages(settings)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(stack.data_dir, ignore_errors=True)

    # ------------------------------------------------------------ report
    print()
    print(f"Sector write path: {os.cpu_count()} CPUs, {args.http_workers} HTTP worker(s), "
          f"{args.worker_processes} worker process(es) x {settings.workers.threads} threads, "
          f"{'SQLite' if settings.database.url == 'embedded' else 'database ' + settings.database.url.split(':')[0]}, "
          f"{'embedded Redis' if settings.redis.url == 'embedded' else 'Redis ' + settings.redis.url}; "
          f"machine {busy:.0f}% busy before the start")
    print()
    print(f"Idle latency (one keep-alive connection, http.client, {args.idle_pause_ms:g} ms pause before each request)")
    print(f"  {'request':<34}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, key in (("POST message -> 201", "post"), ("GET message -> 200", "get"),
                       (f"POST after {args.quiet_s:g} s quiet -> 201", "post_quiet")):
        samples = idle[key]
        if samples:
            print(f"  {label:<34}{len(samples):>5}{percentile(samples, 50):>9.2f}{percentile(samples, 99):>9.2f}"
                  f"{max(samples):>9.2f}")
    if idle["post"]:
        p50 = percentile(idle["post"], 50)
        print(f"  idle POST p50 {p50:.2f} ms: {'within' if p50 < IDLE_TARGET_MS else 'OVER'} the "
              f"{IDLE_TARGET_MS:g} ms target")
    if runs:
        print()
        print(f"Throughput (wrk, {args.duration:g} s per run; every response must be 201 for POST, 200 for GET)")
        print(f"  {'conns':>5}  {'request':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}{'POST/GET':>10}")
        for connections in args.connections:
            post, get = runs[connections, "POST"], runs[connections, "GET"]
            for what, result in (("POST", post), ("GET", get)):
                ratio = f"{rate(post) / rate(get):>10.2f}" if what == "POST" else ""
                print(f"  {connections:>5}  {what:<8}{rate(result):>9.0f}{result['p50_us'] / 1000:>9.2f}"
                      f"{result['p99_us'] / 1000:>9.2f}{wrk_errors(result):>6}{ratio}")
        bad = {key: result for key, result in runs.items() if wrk_errors(result)}
        for (connections, what), result in bad.items():
            failed = True
            print(f"  !! {what} at {connections}: {result['unexpected']} responses with another status "
                  f"(first: {result['first_unexpected']}), socket errors connect={result['connect']} "
                  f"read={result['read']} write={result['write']} timeout={result['timeout']}")
        created = sum(result["expected"] for (_, what), result in runs.items() if what == "POST")
        answered = created + len(idle["post"]) + len(idle["post_quiet"]) + 4  # + the seed and 3 warm-up POSTs
        # POSTs still in flight when a wrk run stops are committed too, but never answered: at most one per connection.
        in_flight = sum(args.connections)
        note = ""
        if committed is not None:
            note = f"; messages in the database: {committed} (expected {answered} to {answered + in_flight})"
            if not answered <= committed <= answered + in_flight:
                failed = True
                note += "  !! MISMATCH: a 201 without a row, or a duplicated row"
        print(f"  POSTs answered 201 by wrk: {created}{note}")
    else:
        print(f"\nThroughput: skipped, wrk is not installed ({WRK_INSTALL_HINT}).")
    return 1 if failed else 0


def count_messages(settings: config.Settings) -> int | None:
    """Rows in the message table, to check that every 201 was a committed row."""
    import models

    try:
        models.open_database(settings.database_url)
        try:
            return models.Message.select().count()
        finally:
            models.db.close()
    except Exception as e:  # a check, not the benchmark: report and carry on
        print(f"could not count messages: {e}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
