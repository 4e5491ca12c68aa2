"""Benchmark of RosettaChat's channel messages beside Sector's, on one stack, in one run.

Starts the same stack as bench/write_path.py (embedded Redis unless SECTOR_REDIS_URL is set,
SQLite in a temp dir unless SECTOR_DATABASE_URL or --database is set, `app.py worker`,
`app.py serve`, production settings), then makes on it:

- a Sector account (real ed25519 login), a group, a channel and one message to read back;
- a RosettaChat user (POST /api/v1/auth/app/register), a workspace, a channel, and --seed
  messages in it (at least 200), so that the list returns a full page of 50;

and runs four wrk loads at --connections (32), --duration seconds each, one after another:

  1. Sector      POST /v1/api/group/{g}/channel/{c}/message            -> 201
  2. RosettaChat POST /api/v1/workspaces/{w}/channels/{c}/messages     -> 201
  3. Sector      GET  /v1/api/group/{g}/channel/{c}/message/{id}       -> 200
  4. RosettaChat GET  /api/v1/workspaces/{w}/channels/{c}/messages     -> 200 (newest 50)

It prints req/s, p50 and p99 of each, and the issue's two ratios against their targets:
RosettaChat POST / Sector POST >= 0.8, RosettaChat list / Sector GET by id >= 0.3. A response with
another status, a socket error, or a row count that does not match the 201s makes the exit status 1
(a missed target does not: it is a figure, not a failure). Between loads it waits for the queues to
drain, so no load pays for the follow-ups of the one before.

Compare the ratios, not the absolute numbers, across runs. Run from the repository root:
`python bench/rosetta_chat.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from write_path import (WRK_INSTALL_HINT, BenchStack, count_messages, rate, run_wrk,  # noqa: E402
                        sector_targets, wrk_errors)

import config  # noqa: E402  (write_path has put the repository root on sys.path)
from benchutil import warn_if_busy  # noqa: E402
from tests.rosetta import AppUser  # noqa: E402

POST_TARGET = 0.8  # RosettaChat POST / Sector POST
LIST_TARGET = 0.3  # RosettaChat list (newest 50) / Sector GET by id
PAGE = 50  # the list's default per_page


def settle(settings: config.Settings, timeout_s: float = 30) -> None:
    """Wait until no Dramatiq message of this stack is queued or in progress (the `messages`
    follow-ups of a POST load would otherwise run during the next load)."""
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    pattern = f"{settings.redis.namespace}:dramatiq:*.msgs"
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sum(client.hlen(key) for key in client.scan_iter(match=pattern)):
                return
            time.sleep(0.1)
        print(f"warning: the queues had not drained after {timeout_s:g} s", file=sys.stderr)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--seed", type=int, default=200,
                        help="RosettaChat messages posted before the list run (default 200, at least 200)")
    parser.add_argument("--database", default=None,
                        help="database URL, e.g. postgresql://postgres@127.0.0.1:5432/sector "
                             "(default: SECTOR_DATABASE_URL, else SQLite in the temp dir)")
    parser.add_argument("--http-workers", type=int, default=1, help="Sanic worker processes (default 1)")
    parser.add_argument("--worker-processes", type=int, default=1, help="Dramatiq worker processes (default 1)")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="threads per Dramatiq worker process (default: config.toml)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args(argv)
    if args.seed < 200:
        parser.error("--seed must be at least 200")
    if not shutil.which("wrk"):
        print(f"wrk is not installed; this benchmark needs it: {WRK_INSTALL_HINT}.", file=sys.stderr)
        return 2
    if args.database:
        os.environ["SECTOR_DATABASE_URL"] = args.database  # BenchStack's environment starts from os.environ

    busy = warn_if_busy()
    stack = BenchStack(http_workers=args.http_workers, worker_processes=args.worker_processes,
                       worker_threads=args.worker_threads)
    settings = stack.settings
    database = "SQLite" if settings.database.url == "embedded" else "database " + settings.database.url.split(":")[0]
    print(f"Starting Sector in {stack.data_dir} (redis: {settings.redis.url}, {database}, "
          f"{args.http_workers} HTTP worker(s), {args.worker_processes} worker process(es) x "
          f"{settings.workers.threads} threads) ...", file=sys.stderr, flush=True)
    failed = False
    runs: dict[str, dict[str, int]] = {}
    try:
        stack.start()
        base = f"http://127.0.0.1:{stack.port}"

        # Sector: account, group, channel, and the message the GET load reads.
        account, sector_post, sector_get = sector_targets(base)

        # RosettaChat: user, workspace, channel, and a channel long enough for a full page.
        user = AppUser(f"{base}/api/v1", name="Bench User")
        answer = user.api.post("/workspaces", json={"name": "Bench"})
        assert answer.status_code == 201, answer.text
        workspace_id = answer.json()["data"]["id"]
        answer = user.api.post(f"/workspaces/{workspace_id}/channels", json={"name": "bench"})
        assert answer.status_code == 201, answer.text
        rosetta_path = f"/api/v1/workspaces/{workspace_id}/channels/{answer.json()['data']['id']}/messages"
        print(f"Seeding the RosettaChat channel with {args.seed} messages ...", file=sys.stderr, flush=True)
        for n in range(args.seed):
            answer = user.api.post(rosetta_path.removeprefix("/api/v1"), json={"content": f"seed message {n}"})
            assert answer.status_code == 201, answer.text
        answer = user.api.get(rosetta_path.removeprefix("/api/v1"))
        assert answer.status_code == 200, answer.text
        listed = len(answer.json()["data"])
        assert listed == PAGE, f"the list returned {listed} messages, not {PAGE}"
        list_bytes = len(answer.content)
        settle(settings)
        before = count_messages(settings)

        loads = (
            ("Sector POST", "POST", sector_post, 201, json.dumps({"body": "hello from wrk"}), account.token),
            ("RosettaChat POST", "POST", rosetta_path, 201, json.dumps({"content": "hello from wrk"}), user.token),
            ("Sector GET by id", "GET", sector_get, 200, None, account.token),
            (f"RosettaChat list {PAGE}", "GET", rosetta_path, 200, None, user.token),
        )
        for label, method, path, expect, body, token in loads:
            print(f"wrk: {label} at {args.connections} connections for {args.duration:g} s ...",
                  file=sys.stderr, flush=True)
            runs[label] = run_wrk(base + path, connections=args.connections, duration_s=args.duration,
                                  method=method, expect=expect, token=token, body=body)
            settle(settings)
        after = count_messages(settings)
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(stack.data_dir, ignore_errors=True)

    # ------------------------------------------------------------ report
    print()
    print(f"RosettaChat channel messages beside Sector's: {os.cpu_count()} CPUs, {args.http_workers} HTTP "
          f"worker(s), {args.worker_processes} worker process(es) x {settings.workers.threads} threads, {database}, "
          f"{'embedded Redis' if settings.redis.url == 'embedded' else 'Redis ' + settings.redis.url}; "
          f"machine {busy:.0f}% busy before the start")
    print()
    print(f"Throughput (wrk, {args.connections} connections, {args.duration:g} s per run; RosettaChat channel "
          f"seeded with {args.seed} messages, list page {list_bytes} bytes)")
    print(f"  {'request':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}")
    for label, result in runs.items():
        print(f"  {label:<22}{rate(result):>9.0f}{result['p50_us'] / 1000:>9.2f}"
              f"{result['p99_us'] / 1000:>9.2f}{wrk_errors(result):>6}")
    for label, result in runs.items():
        if wrk_errors(result):
            failed = True
            print(f"  !! {label}: {result['unexpected']} responses with another status "
                  f"(first: {result['first_unexpected']}), socket errors connect={result['connect']} "
                  f"read={result['read']} write={result['write']} timeout={result['timeout']}")

    posted = sum(runs[label]["expected"] for label in ("Sector POST", "RosettaChat POST"))
    in_flight = 2 * args.connections  # POSTs in flight when a wrk run stops are committed, never answered
    if before is not None and after is not None:
        added = after - before
        note = f"messages added to the database: {added} (expected {posted} to {posted + in_flight})"
        if not posted <= added <= posted + in_flight:
            failed = True
            note += "  !! MISMATCH: a 201 without a row, or a duplicated row"
        print(f"  POSTs answered 201 by wrk: {posted}; {note}")

    print()
    for name, ours, theirs, target in (
        ("RosettaChat POST / Sector POST", "RosettaChat POST", "Sector POST", POST_TARGET),
        (f"RosettaChat list {PAGE} / Sector GET by id", f"RosettaChat list {PAGE}", "Sector GET by id", LIST_TARGET),
    ):
        ratio = rate(runs[ours]) / rate(runs[theirs])
        print(f"{name} = {ratio:.2f} (target >= {target:g}): {'met' if ratio >= target else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
