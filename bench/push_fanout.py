"""Benchmark of push fan-out: one message to a channel of --devices devices across FCM, APNs and Expo.

Starts the three local gateways of tests/gateways.py (the real protocols: HTTP/2 over TLS, each in a
process of its own so they do not share one interpreter), every one answering each send request after
--delay-ms, served by tests/gateways.py's bare HTTP/2 server (--gateway-server hypercorn for hypercorn:
the gateways stand in for Google's and Apple's servers, whose CPU is not Sector's, and hypercorn's
~1 ms a request on the same 2 CPUs, and its latency, showed in the figures), and a stack of its own as bench/write_path.py does (production settings from config.toml,
embedded Redis and SQLite in a temp dir unless SECTOR_REDIS_URL / SECTOR_DATABASE_URL are set), with
`[push]` pointed at the gateways, `[push] concurrency` = --concurrency and --processes worker
processes. A public channel gets --devices / 2 members with two devices each, the providers in turn
(rows written straight into the database: signing up thousands of users is not what is measured).

After a warm-up message to a small channel (so every worker process has built its gateway clients and
connections), one message is posted to the big channel and the bench waits until every device's
notification was answered by its gateway. It prints, per gateway and in all:

  - notifications, requests (and requests per notification: 1 for FCM and APNs, 0.01 for Expo), the
    most requests in flight at once (at most processes x concurrency);
  - the time from the POST's 201 to the last answer, and notifications/s;
  - the ideal for the configured concurrency, in the same run: ceil(requests / (processes x
    concurrency)) x delay for each gateway (they run side by side), and the ratio ideal / measured
    (target >= 0.9);
  - CPU the worker processes used per notification, and the gateways' beside it;

and checks that every device got exactly one notification and that the database holds one `sent`
delivery for each. Exit status 1 when one is missing, doubled or not sent.
Run from the repository root: `python bench/push_fanout.py`.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from write_path import BenchStack  # noqa: E402  (puts the repository root on sys.path)

import psutil  # noqa: E402

import config  # noqa: E402
from benchutil import warn_if_busy  # noqa: E402
from tests.chat import channel, workspace  # noqa: E402
from tests.translating import reader  # noqa: E402

PROVIDERS = ("fcm", "apns", "expo")
TARGET = 0.9


def serve_gateway(kind: str, delay_s: float, server: str, pipe) -> None:
    """A child process: run one fake gateway until told to stop, then send back what it saw."""
    from tests import gateways

    fake = {"fcm": gateways.FakeFCM, "apns": gateways.FakeAPNs, "expo": gateways.FakeExpo}[kind](delay_s=delay_s,
                                                                                              server=server)
    fake.start()
    pipe.send((fake.env(), fake.ca.ca_file))
    while pipe.recv() == "report":
        pipe.send(([(r.tokens, r.time, r.answered, r.status) for r in fake.received], fake.max_in_flight))
    fake.stop()


class Gateway:
    """One fake gateway in a process of its own."""

    def __init__(self, kind: str, delay_s: float, server: str):
        self.kind = kind
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=serve_gateway,
                                                                    args=(kind, delay_s, server, child), daemon=True)
        self.process.start()
        self.env, self.ca_file = self.pipe.recv()

    def cpu_s(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def report(self) -> tuple[list, int]:
        self.pipe.send("report")
        return self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


def tokens(provider: str, n: int, seed: str) -> list[str]:
    """`n` distinct tokens of the shape `provider` gives; `seed` (hex digits) keeps two sets apart."""
    if provider == "apns":
        return [f"{seed}{i:0{64 - len(seed)}x}" for i in range(n)]
    if provider == "expo":
        return [f"ExponentPushToken[{seed}-{i}]" for i in range(n)]
    return [f"fcm-{seed}-{i:06d}-" + "x" * 120 for i in range(n)]


def add_members(models, workspace_id, count: int, seed: str) -> dict[str, list[str]]:
    """`count` // 2 users in the workspace with two devices each, the providers in turn; their tokens by provider."""
    from domain.devices import sealed_token, token_key

    now = models.utcnow()
    users = count // 2 + count % 2
    rows = [{"uid": models.new_id(), "name": f"Reader {i}", "preferred_language": "en", "created_at": now,
             "updated_at": now} for i in range(users)]
    with models.db.atomic():
        ids = []
        for start in range(0, len(rows), 500):
            ids += [u.id for u in models.User.insert_many(rows[start:start + 500]).returning(models.User.id).execute()]
        models.Membership.insert_many([{"workspace": workspace_id, "user": user_id, "role": "member",
                                        "created_at": now} for user_id in ids]).execute()
        per_provider = {p: tokens(p, math.ceil(count / 3), seed) for p in PROVIDERS}
        made, values = {p: [] for p in PROVIDERS}, []
        for i in range(count):
            provider = PROVIDERS[i % 3]
            token = per_provider[provider][i // 3]
            made[provider].append(token)
            values.append({"id": models.new_id(), "user": ids[i // 2], "platform": "android" if provider == "fcm" else "ios",
                           "provider": provider, "token_hash": token_key(token), "token_sealed": sealed_token(token),
                           "created_at": now, "last_used_at": now})
        for start in range(0, len(values), 500):
            models.Device.insert_many(values[start:start + 500]).execute()
    return made


def worker_cpu_s(stack) -> float:
    parent = psutil.Process(stack.worker.pid)
    return sum(p.cpu_times().user + p.cpu_times().system for p in [parent, *parent.children(recursive=True)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=float, default=250)
    parser.add_argument("--concurrency", type=int, default=16, help="[push] concurrency, per worker process")
    parser.add_argument("--processes", type=int, default=2, help="worker processes of each group")
    parser.add_argument("--batch-size", type=int, default=250, help="[push] batch_size")
    parser.add_argument("--threads", type=int, default=None, help="[workers] threads (config.toml's when absent)")
    parser.add_argument("--gateway-server", choices=("h2", "hypercorn"), default="h2",
                        help="what serves the fake gateways: tests/gateways.py's bare HTTP/2 server, or hypercorn")
    args = parser.parse_args()
    busy = warn_if_busy()
    delay_s = args.delay_ms / 1000
    gateways = {kind: Gateway(kind, delay_s, args.gateway_server) for kind in PROVIDERS}
    stack = BenchStack(http_workers=1, worker_processes=args.processes, worker_threads=args.threads)
    bundle = stack.data_dir / "gateways-ca.pem"
    bundle.write_bytes(b"".join(Path(g.ca_file).read_bytes() for g in gateways.values()))
    for g in gateways.values():
        stack.env.update(g.env)
    stack.env.update({"SSL_CERT_FILE": str(bundle), "SECTOR_PUSH_CONCURRENCY": str(args.concurrency),
                      "SECTOR_PUSH_BATCH_SIZE": str(args.batch_size), "SECTOR_PUSH_TIMEOUT_S": str(delay_s * 4 + 10)})
    stack.settings = config.load(environ=stack.env)
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("SECTOR_")})  # sealing: the stack's key
    print(f"machine {busy:.0f}% busy before the start; {args.devices} devices, gateways answer after "
          f"{args.delay_ms:g} ms, {args.processes} worker processes x [push] concurrency "
          f"{args.concurrency}, batches of at most {args.batch_size}, gateways on {args.gateway_server}")
    try:
        stack.start()
        import models

        models.open_database(stack.settings.database_url)
        author = reader(stack, "en", "Author")
        ws = workspace(author, "Bench", visibility="public")
        warm, big = channel(author, ws, "warm-up"), channel(author, ws, "everyone")
        from ulid import ULID
        ws_id = ULID.from_str(ws["id"].upper()).to_uuid()
        warm_tokens = add_members(models, ws_id, 6 * args.processes * 4, "a0")
        post = author.api.post(f"/workspaces/{ws['id']}/channels/{warm['id']}/messages", json={"content": "warm-up"})
        assert post.status_code == 201, post.text
        expected_warm = sum(len(t) for t in warm_tokens.values())
        deadline = time.monotonic() + 60
        while models.PushDelivery.select().where(models.PushDelivery.status == "sent").count() < expected_warm:
            if time.monotonic() > deadline:
                raise SystemExit("the warm-up message did not reach its devices within 60 s")
            time.sleep(0.1)
        # The big channel: everyone of the warm-up and the new members; only the new ones' devices are counted.
        made = add_members(models, ws_id, args.devices, "b0")
        sent_before = {kind: len(g.report()[0]) for kind, g in gateways.items()}
        cpu_before = worker_cpu_s(stack)
        gateways_cpu_before = sum(g.cpu_s() for g in gateways.values())
        started = time.monotonic()
        post = author.api.post(f"/workspaces/{ws['id']}/channels/{big['id']}/messages", json={"content": "hello all"})
        answered_201 = time.monotonic()
        assert post.status_code == 201, post.text
        message_id = ULID.from_str(post.json()["data"]["id"].upper()).to_uuid()
        total = args.devices + expected_warm
        deadline = time.monotonic() + 600
        while (models.PushDelivery.select().where((models.PushDelivery.message == message_id)
                                                  & (models.PushDelivery.status.in_(("sent", "failed")))).count()
               < total):
            if time.monotonic() > deadline:
                raise SystemExit("the notifications did not all go out within 10 minutes")
            time.sleep(0.05)
        cpu = worker_cpu_s(stack) - cpu_before
        gateways_cpu = sum(g.cpu_s() for g in gateways.values()) - gateways_cpu_before
        failures = 0
        rows = []
        last_all = 0.0
        for kind, gateway in gateways.items():
            received, max_in_flight = gateway.report()
            received = received[sent_before[kind]:]
            wanted = set(made[kind]) | set(warm_tokens[kind])
            counts: dict[str, int] = {}
            for request_tokens, _, _, status in received:
                for token in request_tokens:
                    counts[token] = counts.get(token, 0) + 1
            doubled = sum(1 for n in counts.values() if n > 1)
            missing = len(wanted - set(counts))
            failures += doubled + missing
            last = max(answered for _, _, answered, _ in received) - answered_201
            last_all = max(last_all, last)
            requests = len(received)
            ideal = math.ceil(requests / (args.processes * args.concurrency)) * delay_s
            first = min(arrived for _, arrived, _, _ in received)
            busy_s = sum(answered - arrived for _, arrived, answered, _ in received)
            mean_in_flight = busy_s / (max(answered for _, _, answered, _ in received) - first)
            rows.append((kind, len(wanted), requests, requests / len(wanted), max_in_flight, mean_in_flight,
                         first - answered_201, last, ideal, doubled, missing))
        statuses = dict(models.PushDelivery.select(models.PushDelivery.status, models.fn.COUNT(1))
                        .where(models.PushDelivery.message == message_id)
                        .group_by(models.PushDelivery.status).tuples())
        ideal_all = max(row[8] for row in rows)
        print(f"\nPOST 201 after {(answered_201 - started) * 1000:.0f} ms; then, per gateway (times from the 201):")
        print(f"  {'gateway':8} {'devices':>7} {'requests':>8} {'req/notif':>9} {'in flight max':>13} {'mean':>5} "
              f"{'first s':>7} {'last s':>6} {'ideal s':>7} {'ideal/meas.':>11} {'doubled':>7} {'missing':>7}")
        for kind, n, requests, per, in_flight, mean, first, last, ideal, doubled, missing in rows:
            print(f"  {kind:8} {n:7d} {requests:8d} {per:9.2f} {in_flight:13d} {mean:5.1f} {first:7.2f} {last:6.2f} "
                  f"{ideal:7.2f} {ideal / last:11.2f} {doubled:7d} {missing:7d}")
        notifications = sum(row[1] for row in rows)
        ratio = ideal_all / last_all
        print(f"  {'all':8} {notifications:7d} {sum(r[2] for r in rows):8d} "
              f"{sum(r[2] for r in rows) / notifications:9.2f} {'':13} {'':5} {'':7} {last_all:6.2f} {ideal_all:7.2f} "
              f"{ratio:11.2f}")
        print(f"\n{notifications / last_all:.0f} notifications/s (ideal {notifications / ideal_all:.0f}/s); "
              f"ideal/measured {ratio:.2f} (target >= {TARGET}); worker CPU {cpu / notifications * 1000:.2f} ms "
              f"a notification (the gateways' {gateways_cpu / notifications * 1000:.2f} ms); deliveries {statuses}")
        if failures or statuses.get("sent", 0) != total:
            print("FAILED: a device got its notification twice or not at all, or a delivery is not sent")
            return 1
        return 0
    finally:
        stack.stop()
        for g in gateways.values():
            g.stop()


if __name__ == "__main__":
    sys.exit(main())
