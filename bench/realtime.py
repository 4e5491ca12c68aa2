"""Realtime fan-out: one API process holding N WebSocket subscribers of one channel.

For N = 1, 100, 1000, 5000 (--sizes) it posts --messages messages, one at a time, and prints the time from
sending the POST to each subscriber's receipt of its `message.created` (p50, p99) and to the last
subscriber's (time-to-last, the mean over messages), and the API process's RSS per 1,000 connections. Then
the replay of 100 and 1,000 missed events to a client that resumes (from the upgrade to the last replayed
event), and the p99 of 1,000 subscribers while one more stops reading (its send queue and socket buffers
fill; it is closed 4008), beside the p99 of the same 1,000 without it, in the same run.

The POST's own time (the write committed, ~6 ms idle) is inside every figure. The subscribers run in
--client-processes processes on the same machine as the server and workers (2 cores here), as the
issue's baseline did: N=1000 p50 67 ms / p99 290 ms, N=5000 p50 288 ms / p99 1.0 s, ~45 KB a connection.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import psutil  # noqa: E402

import config  # noqa: E402
from benchutil import percentile, warn_if_busy  # noqa: E402
from tests import chat  # noqa: E402
from tests.translating import reader  # noqa: E402
from write_path import BenchStack  # noqa: E402

BASELINE = {1000: (67, 290), 5000: (288, 1000)}  # ms, p50 and p99 of the naive prototype
BASELINE_KB_PER_CONN = 45


# ---------------------------------------------------------------- subscriber processes

_CREATED = re.compile(rb'"type":"message\.created","ts":\d+,"data":\{"id":"([0-9a-z]{26})"')
_HELLO = b'"type":"hello"'


class RawSubscriber(asyncio.Protocol):
    """A WebSocket subscriber at the least CPU a load generator can spend: it upgrades, then scans what
    arrives for `message.created` ids (server frames are unmasked text) without parsing frames. It never
    answers pings; the bench's server pings once in 10 minutes. A stalled one stops reading after hello."""

    def __init__(self, request: bytes, received: list, opened: asyncio.Future, stalled: bool):
        self.request, self.received, self.opened, self.stalled = request, received, opened, stalled
        self.buffer, self.upgraded, self.transport = b"", False, None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        at = time.time()
        self.buffer += data
        if not self.upgraded:
            if _HELLO not in self.buffer:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(self.buffer[:200].decode(errors="replace")))
                return
            self.upgraded, self.buffer = True, self.buffer[self.buffer.index(_HELLO) + len(_HELLO):]
            self.opened.set_result(None)
            if self.stalled:
                self.transport.pause_reading()
        end = 0
        for match in _CREATED.finditer(self.buffer):
            self.received.append((match.group(1).decode(), at))
            end = match.end()
        self.buffer = self.buffer[end:][-400:]  # what may be the start of the next match

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before hello"))


def subscribers(port: int, tokens: list[str], pipe, stalled: bool) -> None:
    """Hold a subscriber per token; report (message id, receipt time) of every message.created until told to stop."""
    import uvloop

    async def run():
        loop = asyncio.get_running_loop()
        received: list[tuple[str, float]] = []
        transports = []
        for start in range(0, len(tokens), 200):  # in waves, so the server's accept backlog never overflows
            opening = []
            for token in tokens[start:start + 200]:
                key = base64.b64encode(os.urandom(16)).decode()
                request = (f"GET /api/v1/realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode()
                opened = loop.create_future()
                transport, _ = await loop.create_connection(
                    lambda: RawSubscriber(request, received, opened, stalled), "127.0.0.1", port)
                transports.append(transport)
                opening.append(opened)
            await asyncio.wait_for(asyncio.gather(*opening), 120)
        pipe.send("ready")
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "report":
                pipe.send(received[:])
                received.clear()
            elif command == "stop":
                for transport in transports:
                    transport.close()
                pipe.send("stopped")
                return

    uvloop.run(run())


class Subscribers:
    """N subscribers spread over client processes."""

    def __init__(self, port: int, tokens: list[str], processes: int, stalled: bool = False):
        self.pipes, self.procs = [], []
        shares = [tokens[i::processes] for i in range(processes)]
        for share in shares:
            if not share:
                continue
            ours, theirs = multiprocessing.Pipe()
            proc = multiprocessing.Process(target=subscribers, args=(port, share, theirs, stalled), daemon=True)
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)
        for pipe in self.pipes:
            if not pipe.poll(300):
                raise SystemExit("the subscribers did not connect within 300 s")
            assert pipe.recv() == "ready"

    def report(self) -> list[tuple[str, float]]:
        for pipe in self.pipes:
            pipe.send("report")
        return [item for pipe in self.pipes for item in pipe.recv()]

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for pipe, proc in zip(self.pipes, self.procs):
            pipe.poll(60) and pipe.recv()
            proc.join(10)


# ---------------------------------------------------------------- the server side

def add_subscribers(models, workspace_id, channel_id, n: int) -> list[str]:
    """n users in the workspace and its (private) channel, each with a bearer token; the tokens."""
    from domain import tokens as minting

    now = models.utcnow()
    made, values = [], []
    with models.db.atomic():
        rows = [{"uid": models.new_id(), "name": f"Sub {i}", "preferred_language": "en", "created_at": now,
                 "updated_at": now} for i in range(n)]
        ids = []
        for start in range(0, n, 500):
            ids += [u.id for u in models.User.insert_many(rows[start:start + 500]).returning(models.User.id).execute()]
        for start in range(0, n, 500):
            models.Membership.insert_many([{"workspace": workspace_id, "user": user_id, "role": "member",
                                            "created_at": now} for user_id in ids[start:start + 500]]).execute()
            models.ChannelMember.insert_many([{"channel": channel_id, "user": user_id, "created_at": now}
                                              for user_id in ids[start:start + 500]]).execute()
        for user_id in ids:
            token_id, token, digest = minting.mint()
            made.append(token)
            values.append({"id": token_id, "user": user_id, "name": "bench", "secret_hash": digest, "created_at": now})
        for start in range(0, n, 500):
            models.Token.insert_many(values[start:start + 500]).execute()
    return made


def private_channel(author, ws, name: str) -> tuple[dict, object]:
    """A private channel (only its members read it, so each phase's events go to its own subscribers)."""
    from ulid import ULID

    ch = chat.channel(author, ws, name, visibility="private")
    return ch, ULID.from_str(ch["id"].upper()).to_uuid()


def server_rss(stack) -> int:
    """RSS of the API process that serves (Sanic's worker, a child of `app.py serve`), in bytes."""
    parent = psutil.Process(stack.servers[0].pid)
    children = [p for p in parent.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
    return max(p.memory_info().rss for p in children or [parent])


def fan_out(author, ws, ch, subs: Subscribers, n: int, messages: int, body: str = "fan-out {n}") -> dict:
    """Post `messages` messages one at a time; latencies from each POST to each subscriber's receipt."""
    latencies, to_last = [], []
    for i in range(messages):
        sent = time.time()
        posted = chat.post(author, ws, ch, body.format(n=i))
        deadline = time.monotonic() + 60
        got: list[tuple[str, float]] = []
        while True:
            got += [item for item in subs.report() if item[0] == posted["id"]]
            if len(got) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if len(got) < n:
            raise SystemExit(f"message {i}: only {len(got)} of {n} subscribers got it within 60 s")
        samples = [(at - sent) * 1000 for _, at in got]
        latencies += samples
        to_last.append(max(samples))
        time.sleep(0.05)
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "to_last": sum(to_last) / len(to_last)}


def replay(stack, author, ws, ch, token: str, missed: int) -> float:
    """ms from the upgrade with a resume to the last of `missed` replayed events."""
    import websockets

    url = f"ws://127.0.0.1:{stack.port}/api/v1/realtime"
    headers = {"Authorization": f"Bearer {token}"}

    async def hello():
        async with websockets.connect(url, additional_headers=headers) as conn:
            import json
            return json.loads(await conn.recv())

    first = asyncio.run(hello())
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: chat.post(author, ws, ch, f"missed {i}"), range(missed)))
    time.sleep(1)  # the last publishes land in the stream

    async def resume():
        import json
        started = time.monotonic()
        query = f"?epoch={first['epoch']}&last_seq={first['seq']}"
        async with websockets.connect(url + query, additional_headers=headers, max_size=None) as conn:
            again = json.loads(await conn.recv())
            assert again["resumed"] and again["replayed"] >= missed, again
            for _ in range(missed):
                await conn.recv()
            return (time.monotonic() - started) * 1000

    return asyncio.run(resume())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,100,1000,5000", help="subscriber counts, comma-separated")
    parser.add_argument("--messages", type=int, default=20, help="messages posted for each size")
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    busy = warn_if_busy()
    stack = BenchStack(http_workers=1, worker_processes=2, worker_threads=None)
    # The subscribers never answer pings: one in 10 minutes keeps them from being dropped mid-run.
    stack.env.update({"SECTOR_REALTIME_SEND_TIMEOUT_S": "5", "SECTOR_REALTIME_HEARTBEAT_S": "600"})
    stack.settings = config.load(environ=stack.env)
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("SECTOR_")})
    print(f"machine {busy:.0f}% busy before the start; one API process (1 Sanic worker), 2 worker processes, "
          f"subscribers in {args.client_processes} processes on the same machine; {args.messages} messages a size")
    try:
        stack.start()
        import models
        from ulid import ULID

        models.open_database(stack.settings.database_url)
        author = reader(stack, "en", "Author")
        ws = chat.workspace(author, "Bench", visibility="public")
        ws_id = ULID.from_str(ws["id"].upper()).to_uuid()
        print(f"{'N':>6} {'p50 ms':>8} {'p99 ms':>8} {'to last':>8} {'KB/conn':>8}   vs baseline p50/p99")
        results = {}
        for n in sizes:
            ch, ch_id = private_channel(author, ws, f"fan-out-{n}")
            tokens = add_subscribers(models, ws_id, ch_id, n)
            rss_before = server_rss(stack)
            subs = Subscribers(stack.port, tokens, min(args.client_processes, n))
            time.sleep(1)
            kb = (server_rss(stack) - rss_before) / n / 1024
            fan_out(author, ws, ch, subs, n, 2)  # warm-up
            figures = fan_out(author, ws, ch, subs, n, args.messages)
            subs.stop()
            results[n] = figures
            base = BASELINE.get(n)
            versus = f"   {figures['p50'] / base[0]:.2f} / {figures['p99'] / base[1]:.2f}" if base else ""
            print(f"{n:>6} {figures['p50']:>8.1f} {figures['p99']:>8.1f} {figures['to_last']:>8.1f} {kb:>8.1f}{versus}")
        ch, ch_id = private_channel(author, ws, "replay")
        token = add_subscribers(models, ws_id, ch_id, 1)[0]
        for missed in (100, 1000):
            print(f"replay of {missed} missed events: {replay(stack, author, ws, ch, token, missed):.0f} ms")
        n = 1000
        ch, ch_id = private_channel(author, ws, "stalled")
        tokens = add_subscribers(models, ws_id, ch_id, n + 1)
        subs = Subscribers(stack.port, tokens[:n], min(args.client_processes, n))
        # 3.9 kB events: the stalled one's socket buffers ([realtime] socket_send_buffer_bytes, and its own
        # receive buffer) fill within a few hundred kB, then its sends wait until send_timeout_s closes it.
        body = "x" * 3900 + " {n}"
        fan_out(author, ws, ch, subs, n, 2, body)
        rounds = max(args.messages, 100)  # as many as it takes the stalled one's buffers to fill, both times
        calm = fan_out(author, ws, ch, subs, n, rounds, body)
        stalled = Subscribers(stack.port, tokens[n:], 1, stalled=True)
        held = fan_out(author, ws, ch, subs, n, rounds, body)
        print(f"{n} subscribers of 3.9 kB events, p99: {calm['p99']:.0f} ms alone, {held['p99']:.0f} ms while one "
              f"more stops reading ({held['p99'] / calm['p99']:.2f}x); p50 {calm['p50']:.0f} / {held['p50']:.0f} ms")
        stalled.stop()
        subs.stop()
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    sys.exit(main())
