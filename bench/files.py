"""Benchmark of RosettaChat file uploads and downloads beside a plain `cp`, and of the server's memory
during a large upload, on one stack, in one run.

Starts the same stack as bench/write_path.py (embedded Redis unless SECTOR_REDIS_URL is set, SQLite
in a temp dir unless SECTOR_DATABASE_URL is set, `app.py worker`, `app.py serve`, production settings),
with `[files] max_bytes` raised (SECTOR_FILES_MAX_BYTES) so that the large upload fits, makes a
RosettaChat user (POST /api/v1/auth/app/register), and measures:

1. throughput of a --size-mib (50) MiB random file, written into the stack's data dir, so that all
   three copies below read and write the same disk:
   - `cp` of it to another file in the same dir (a subprocess, timed from start to exit);
   - POST /api/v1/files with httpx, the multipart body streamed from the file by a generator
     (preamble, 256 KiB pieces of the file, epilogue) with a Content-Length, until the 201;
   - GET /api/v1/files/{id}/download with httpx, streamed (iter_bytes) into a file until its end;
   each --runs (3) times, the median; MB/s (10^6 bytes a second) of each, the CPU seconds of the
   serving Sanic worker and of the copier (cp, or this process), and the ratios upload/cp and
   download/cp. The server's SHA-256 and size of every upload must match the file's, and so must
   the SHA-256 of every download (hashed after the timing). Each round ends by DELETEing its upload
   and waiting for its bytes to leave the store, so that all three copies of the next round write
   into just-freed page-cache pages alike (on a VM, never-used pages cost far more to fill);
2. the API server's RSS during one --big-mib (1024) MiB upload, generated on the fly from a 1 MiB
   random block repeated (no 1 GiB file on the client): the RSS of the `app.py serve` process tree
   (the Sanic manager and its children, among them the worker that serves HTTP) and of the serving
   worker alone, sampled every 50 ms from 1 s before the upload (the idle baseline) to 1 s after
   its 201; idle, peak, peak - idle against the issue's target (< 100 MiB more than idle), the RSS
   after the upload, and the upload's MB/s.

A response with another status, a size or digest that does not match, or stored bytes still on disk
15 s after their DELETE makes the exit status 1;
a missed target does not. The page cache serves cp, the uploads and the downloads alike (caches
cannot be dropped here): read the figures as the cost of Sector's code path on top of a copy, not
as disk speed. The client shares the CPUs with the server. Compare the ratios, not the absolute
numbers, across runs. Run from the repository root: `python bench/files.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from write_path import BenchStack  # noqa: E402

import config  # noqa: E402  (write_path has put the repository root on sys.path)
import httpx  # noqa: E402
import psutil  # noqa: E402
from benchutil import warn_if_busy  # noqa: E402
from tests.rosetta import AppUser  # noqa: E402
from tests.stack import wait_for  # noqa: E402

MiB = 1024 * 1024
PIECE = 256 * 1024  # what the upload generator reads from the file at a time
RSS_TARGET_MIB = 100  # the target: peak RSS during a 1 GiB upload, over idle
SAMPLE_S = 0.05
IDLE_S = 1.0  # RSS sampled this long before the big upload (the baseline) and after its 201


# ---------------------------------------------------------------- multipart body, streamed

def multipart(pieces: Iterator[bytes], size: int, name: str) -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart/form-data body with one `file` part of `size` bytes, as a generator, and its headers
    (Content-Type with the boundary, Content-Length: httpx then sends it as is, not chunked)."""
    boundary = f"sector-bench-{secrets.token_hex(12)}"
    preamble = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield preamble
        sent = 0
        for piece in pieces:
            sent += len(piece)
            yield piece
        assert sent == size, f"the file part had {sent} bytes, not {size}"
        yield epilogue

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(preamble) + size + len(epilogue))}
    return body(), headers


def file_pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            yield piece


def repeated(block: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield block


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(MiB):
            digest.update(piece)
    return digest.hexdigest()


# ---------------------------------------------------------------- RSS of the server's process tree

class RssSampler(threading.Thread):
    """Samples (seconds, RSS of the tree, RSS of the serving worker) every SAMPLE_S until stopped."""

    def __init__(self, root_pid: int, port: int):
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.worker = serving_worker(self.root, port)
        self.samples: list[tuple[float, int, int]] = []
        self.marks: dict[str, float] = {}
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic() - self._t0

    def run(self) -> None:
        while not self._done.is_set():
            tree = 0
            for process in [self.root, *self.root.children(recursive=True)]:
                try:
                    tree += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.samples.append((time.monotonic() - self._t0, tree, self.worker.memory_info().rss))
            self._done.wait(SAMPLE_S)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def between(self, start: str, end: str | None = None) -> list[tuple[float, int, int]]:
        until = self.marks[end] if end else float("inf")
        return [s for s in self.samples if self.marks[start] <= s[0] < until]


def serving_worker(root: psutil.Process, port: int) -> psutil.Process:
    """The child of the Sanic manager that listens on the port (the manager listens too; the resource
    tracker and Sanic's other helper process do not)."""
    for process in root.children(recursive=True):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp")):
                return process
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError(f"no child of the server process {root.pid} listens on port {port}")


# ---------------------------------------------------------------- timed copies

class Timed:
    """Wall seconds of a block, the CPU seconds the serving worker used in it, and those of the copier:
    this process (the httpx client), or the children it waited for (cp)."""

    def __init__(self, worker: psutil.Process, children: bool = False):
        self.worker, self.who = worker, resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF

    def __enter__(self) -> "Timed":
        self._cpu = self.worker.cpu_times()
        self._own = resource.getrusage(self.who)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        own, cpu = resource.getrusage(self.who), self.worker.cpu_times()
        self.server_cpu = cpu.user + cpu.system - self._cpu.user - self._cpu.system
        self.copier_cpu = own.ru_utime + own.ru_stime - self._own.ru_utime - self._own.ru_stime


def upload(api: httpx.Client, pieces: Iterator[bytes], size: int, name: str) -> httpx.Response:
    body, headers = multipart(pieces, size, name)
    return api.post("/files", content=body, headers=headers)


def download(api: httpx.Client, url: str, target: Path) -> tuple[int, int]:
    """(status, bytes written) of one download streamed into `target`."""
    written = 0
    with api.stream("GET", url) as answer, open(target, "wb") as out:
        if answer.status_code == 200:
            for piece in answer.iter_bytes():
                out.write(piece)
                written += len(piece)
    return answer.status_code, written


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=50, help="the file cp, upload and download copy (default 50)")
    parser.add_argument("--big-mib", type=int, default=1024,
                        help="the upload during which the server's RSS is sampled (default 1024; 0: skip)")
    parser.add_argument("--runs", type=int, default=3, help="timed repetitions of each copy, the median (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (the test files go anyway)")
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.runs < 1 or args.big_mib < 0:
        parser.error("--size-mib and --runs must be at least 1, --big-mib at least 0")

    busy = warn_if_busy()
    stack = BenchStack(http_workers=1, worker_processes=1, worker_threads=None)
    max_bytes = (max(args.size_mib, args.big_mib) + 64) * MiB  # + a margin over the largest upload
    stack.env["SECTOR_FILES_MAX_BYTES"] = str(max_bytes)
    stack.settings = settings = config.load(environ=stack.env)
    database = "SQLite" if settings.database.url == "embedded" else "database " + settings.database.url.split(":")[0]
    print(f"Starting Sector in {stack.data_dir} (redis: {settings.redis.url}, {database}, 1 HTTP worker, "
          f"[files] max_bytes {max_bytes // MiB} MiB, storage {settings.files.storage}) ...",
          file=sys.stderr, flush=True)

    size = args.size_mib * MiB
    source = stack.data_dir / "bench-source.bin"
    copy = stack.data_dir / "bench-cp.bin"
    fetched = stack.data_dir / "bench-download.bin"
    store_root = stack.data_dir / settings.files.local_dir
    failures: list[str] = []
    runs: dict[str, list[Timed]] = {"cp": [], "upload": [], "download": []}
    rss: dict[str, float] = {}
    big = None
    uploaded: list[str] = []
    api = None
    try:
        stack.start()
        base = f"http://127.0.0.1:{stack.port}"
        user = AppUser(f"{base}/api/v1", name="Bench User")
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=600,
                           headers={"Authorization": f"Bearer {user.token}"})
        sampler = RssSampler(stack.servers[0].pid, stack.port)
        worker = sampler.worker
        sampler.start()
        sampler.mark("start")

        def check_upload(answer: httpx.Response, want_size: int, want_sha: str, what: str) -> dict | None:
            if answer.status_code != 201:
                failures.append(f"{what}: POST /files answered {answer.status_code}: {answer.text[:300]}")
                return None
            data = answer.json()["data"]
            uploaded.append(data["id"])
            if data["size"] != want_size or data["sha256"] != want_sha:
                failures.append(f"{what}: the server stored {data['size']} bytes, sha256 {data['sha256']}; "
                                f"sent {want_size}, {want_sha}")
            return data

        def stored() -> int:
            return sum(1 for path in store_root.glob("??/??/*") if path.is_file())

        def delete_uploads() -> None:
            """DELETE what this run uploaded, and wait until its bytes have left the local store: then every
            copy of the next run writes into freshly freed page-cache pages, as cp's does (on this kind of VM,
            pages never used before cost several times more to fill, see bench/README.md)."""
            while uploaded:
                file_id = uploaded.pop()
                answer = api.delete(f"/files/{file_id}")
                if answer.status_code != 204:
                    failures.append(f"DELETE /files/{file_id} answered {answer.status_code}")
            if settings.files.storage == "local" and not wait_for(lambda: stored() == 0, timeout=15, interval=0.02):
                failures.append(f"{stored()} stored files still on disk 15 s after their DELETE")

        # Warm-up: the first upload and download pay for the route, the connection and first imports.
        small = os.urandom(64 * 1024)
        data = check_upload(upload(api, iter([small]), len(small), "warm-up.bin"), len(small),
                            hashlib.sha256(small).hexdigest(), "warm-up")
        if data:
            download(api, data["download_url"].removeprefix("/api/v1"), fetched)
        delete_uploads()
        sampler.mark("warm")

        print(f"Writing a {args.size_mib} MiB random file into the data dir ...", file=sys.stderr, flush=True)
        digest = hashlib.sha256()
        with open(source, "wb") as out:
            for _ in range(args.size_mib):
                block = os.urandom(MiB)
                digest.update(block)
                out.write(block)
        source_sha = digest.hexdigest()

        print(f"cp, upload, download of it, {args.runs} runs each ...", file=sys.stderr, flush=True)
        subprocess.run(["cp", str(source), str(copy)], check=True)  # untimed: cp itself into the page cache
        copy.unlink()
        for run in range(1, args.runs + 1):
            with Timed(worker, children=True) as timed:
                subprocess.run(["cp", str(source), str(copy)], check=True)
            runs["cp"].append(timed)
            copy.unlink()

            with Timed(worker) as timed:
                answer = upload(api, file_pieces(source), size, "bench.bin")
            data = check_upload(answer, size, source_sha, f"upload {run}")
            if data is None:
                continue
            runs["upload"].append(timed)

            with Timed(worker) as timed:
                status, written = download(api, data["download_url"].removeprefix("/api/v1"), fetched)
            if status != 200 or written != size:
                failures.append(f"download {run}: status {status}, {written} bytes of {size}")
            else:
                runs["download"].append(timed)
                got = sha256_of(fetched)
                if got != source_sha:
                    failures.append(f"download {run}: sha256 {got}, uploaded {source_sha}")
            fetched.unlink(missing_ok=True)
            delete_uploads()
        source.unlink()
        sampler.mark("small done")

        if args.big_mib:
            block = os.urandom(MiB)
            big_sha = hashlib.sha256()
            for piece in repeated(block, args.big_mib):
                big_sha.update(piece)
            print(f"Uploading {args.big_mib} MiB (a 1 MiB random block repeated) while sampling the server's RSS "
                  f"every {SAMPLE_S * 1000:g} ms ...", file=sys.stderr, flush=True)
            time.sleep(IDLE_S)  # let the server settle after the small runs
            sampler.mark("idle")
            time.sleep(IDLE_S)
            sampler.mark("big")
            with Timed(worker) as timed:
                answer = upload(api, repeated(block, args.big_mib), args.big_mib * MiB, "big.bin")
            sampler.mark("big done")
            if check_upload(answer, args.big_mib * MiB, big_sha.hexdigest(), "big upload"):
                big = timed
            time.sleep(IDLE_S)
            sampler.mark("after")
        sampler.stop()

        start_tree, start_worker = sampler.between("start", "warm")[0][1:]
        rss = {"start tree": start_tree, "start worker": start_worker}
        if args.big_mib:
            idle, during, after = (sampler.between("idle", "big"), sampler.between("big", "big done"),
                                   sampler.between("big done", "after"))
            for key, column in (("tree", 1), ("worker", 2)):
                rss[f"idle {key}"] = statistics.median(s[column] for s in idle)
                rss[f"peak {key}"] = max(s[column] for s in during + after)
                rss[f"after {key}"] = after[-1][column]
            rss["samples"] = len(during)
            rss["peak at"] = max(during + after, key=lambda s: s[2])[0] - sampler.marks["big"]
        delete_uploads()
    finally:
        if api is not None:
            api.close()
        for path in (source, copy, fetched):
            path.unlink(missing_ok=True)
        stack.stop()
        if not args.keep:
            shutil.rmtree(stack.data_dir, ignore_errors=True)

    # ------------------------------------------------------------ report
    print()
    print(f"RosettaChat files: {os.cpu_count()} CPUs, 1 HTTP worker, {database}, "
          f"{'embedded Redis' if settings.redis.url == 'embedded' else 'Redis ' + settings.redis.url}, "
          f"storage {settings.files.storage}; machine {busy:.0f}% busy before the start")
    print()
    print(f"Throughput: a {args.size_mib} MiB random file on the data dir's disk, median of {args.runs} runs "
          "(page cache warm for all three; CPU: seconds of the Sanic worker, and of cp or the httpx client)")
    print(f"  {'copy':<44}{'median s':>9}{'MB/s':>7}{'min-max MB/s':>14}{'server CPU':>12}{'copier CPU':>12}")
    labels = {"cp": "cp (subprocess, same dir)", "upload": "upload: POST /files, multipart -> 201",
              "download": "download: GET /files/{id}/download -> file"}
    medians = {}
    for key, label in labels.items():
        if runs[key]:
            seconds = [t.seconds for t in runs[key]]
            medians[key] = statistics.median(seconds)
            span = f"{mbps(size, max(seconds)):.0f}-{mbps(size, min(seconds)):.0f}"
            print(f"  {label:<44}{medians[key]:>9.3f}{mbps(size, medians[key]):>7.0f}{span:>14}"
                  f"{statistics.median(t.server_cpu for t in runs[key]):>12.3f}"
                  f"{statistics.median(t.copier_cpu for t in runs[key]):>12.3f}")
    if "cp" in medians:
        for key in ("upload", "download"):
            if key in medians:
                print(f"  {key} / cp = {medians['cp'] / medians[key]:.2f}")
    if args.big_mib:
        print()
        print(f"Server RSS during a {args.big_mib} MiB upload (`app.py serve` and its children; sampled every "
              f"{SAMPLE_S * 1000:g} ms, {rss.get('samples', 0)} samples during the upload)")
        print(f"  {'MiB':<36}{'tree':>8}{'worker':>8}")
        for label, key in (("after start-up, before any file", "start"), ("idle before the upload (median)", "idle"),
                           ("peak (upload to 1 s after the 201)", "peak"), ("1 s after the 201", "after")):
            if f"{key} tree" in rss:
                print(f"  {label:<36}{rss[f'{key} tree'] / MiB:>8.1f}{rss[f'{key} worker'] / MiB:>8.1f}")
        if "peak tree" in rss:
            grew = (rss["peak tree"] - rss["idle tree"]) / MiB
            grew_worker = (rss["peak worker"] - rss["idle worker"]) / MiB
            when = f"   (the worker's peak {rss['peak at']:.1f} s after the upload began)" if grew_worker >= 1 else ""
            print(f"  {'peak - idle':<36}{grew:>8.1f}{grew_worker:>8.1f}{when}")
            print(f"  peak - idle {grew:.1f} MiB (target < {RSS_TARGET_MIB} MiB): "
                  f"{'met' if grew < RSS_TARGET_MIB else 'MISSED'}")
        if big:
            print(f"  the upload: {big.seconds:.2f} s, {mbps(args.big_mib * MiB, big.seconds):.0f} MB/s; server CPU "
                  f"{big.server_cpu:.2f} s, client CPU {big.copier_cpu:.2f} s")
    for failure in failures:
        print(f"  !! {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
