"""Benchmark of automatic message translation: engine calls per message, and how long a burst takes.

Starts a local translation engine (tests/engines.py: the real wire protocol of LibreTranslate, DeepL or
an OpenAI-compatible endpoint, answering every translate call after --delay-ms) and a stack of its own
as bench/write_path.py does (embedded Redis unless SECTOR_REDIS_URL is set, SQLite in a temp dir unless
SECTOR_DATABASE_URL is set, `app.py worker` with --processes worker processes, `app.py serve`,
production settings from config.toml) with `[translation]` pointed at that engine. On it: five
RosettaChat users who read in en, zh-CN, ja, th and id, in one workspace with a public channel.

Each user posts chat lines of their own language (bench/chat_lines.py), so a burst carries five
source languages and every message needs the other four. After a warm-up burst (so every worker
process has loaded its language detector and asked the engine for its languages) it posts two bursts
of --messages messages from --clients concurrent httpx clients: the second repeats the first's texts
(same authors, same texts), so every translation of it must come from the cache. For each burst it
prints:

  (a) engine calls per message: target <= languages - 1 = 4; for the repeated burst, 0;
  (b) the time from the burst's last 201 until every one of its messages is out of `pending`
      (the bench polls the database directly every 10 ms, not the API), beside the ideal of the same
      run: calls x delay / allowed concurrency, and their ratio (target <= 1.3);

and the engine's calls, texts per call, most calls in flight at once (must not exceed --concurrency)
and mean calls in flight while the bench waited, the messages' statuses, and a per-batch profile from
the worker's log (the translation actor's "Translated N of M messages ..." lines).

A POST answered 503 (the write was queued, but no worker committed it within the reply timeout) is
counted and printed; its message still commits later, so the bench waits for it before the next burst
and counts its engine calls, but times only the messages answered 201. Exit status 1 when a POST was
not answered 201, a burst did not finish within its timeout, or the engine saw more calls in flight
than allowed; a missed target is a figure, not a failure.
Run from the repository root: `python bench/translation.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from write_path import BenchStack  # noqa: E402  (puts the repository root on sys.path)

import httpx  # noqa: E402
import psutil  # noqa: E402
from ulid import ULID  # noqa: E402

import config  # noqa: E402
from benchutil import percentile, warn_if_busy  # noqa: E402
from chat_lines import LINES, LONGER  # noqa: E402
from tests.chat import channel, join, messages_path, workspace  # noqa: E402
from tests.engines import FakeDeepL, FakeLibreTranslate, FakeOpenAI  # noqa: E402
from tests.translating import engine_settings, reader, rosetta_url  # noqa: E402

LANGUAGES = ("en", "zh-CN", "ja", "th", "id")
CALLS_TARGET = len(LANGUAGES) - 1  # engine calls per message, at most
RATIO_TARGET = 1.3  # time after the last 201 / ideal, at most
POLL_S = 0.010
BATCH_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}).*?(\d+) \S+ INFO Translated (\d+) of (\d+) messages "
                        r"with \S+: (\d+) calls, (\d+) from the cache, (\d+) ms\.")


def timed(engine_class):
    """The fake engine, also noting when each translate call started and ended (time.monotonic())."""

    class Timed(engine_class):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.spans: list[tuple[float, float]] = []

        def _translate_call(self, request):
            start = time.monotonic()
            try:
                return super()._translate_call(request)
            finally:
                with self._lock:
                    self.spans.append((start, time.monotonic()))

        def reset(self):
            super().reset()
            with self._lock:
                self.spans.clear()

    Timed.__name__ = engine_class.__name__
    return Timed


ENGINES = {"libretranslate": timed(FakeLibreTranslate), "deepl": timed(FakeDeepL), "openai": timed(FakeOpenAI)}
# What the fakes serve: every language local detection may answer ([translation] detect_languages), as
# LibreTranslate and DeepL do, so a short line taken for Polish is translated, not failed. (The
# OpenAI fake takes any language.)
ENGINE_LANGUAGES = {
    "libretranslate": ["en", "zh", "zt", "ja", "th", "id", "ms", "ko", "vi", "tl", "es", "fr", "de", "pt", "it", "ru",
                       "ar", "hi", "tr", "nl", "pl"],
    "deepl": ["AR", "DE", "EN-GB", "EN-US", "ES", "FR", "ID", "IT", "JA", "KO", "NL", "PL", "PT-BR", "PT-PT", "RU",
              "TH", "TR", "VI", "ZH", "ZH-HANS", "ZH-HANT"],
}


class TranslationStack(BenchStack):
    """BenchStack whose worker logs at INFO into a file (the bench reads the translation actor's lines)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.log_path = self.data_dir / "worker.log"
        self.log_file = None

    def start_worker(self, stderr=None, **overrides: str):
        if stderr is None:
            self.log_file = self.log_file or open(self.log_path, "ab")
            stderr = self.log_file
        return super().start_worker(stderr=stderr, **{"SECTOR_LOGGING_LEVEL": "INFO", **overrides})

    def stop(self) -> None:
        super().stop()
        if self.log_file is not None:
            self.log_file.close()

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0


def texts_of(count: int) -> list[tuple[str, str]]:
    """(language, text) of `count` messages: the languages in turn, each line of a language once
    (chat lines, then longer messages), then again with a round number so no two texts repeat."""
    out = []
    for i in range(count):
        language = LANGUAGES[i % len(LANGUAGES)]
        pool = LINES[language] + LONGER[language]
        k = i // len(LANGUAGES)
        text = pool[k % len(pool)]
        out.append((language, text if k < len(pool) else f"{text} ({k // len(pool) + 1})"))
    return out


class Poster:
    """--clients threads, each with a keep-alive httpx client of its own, posting as the messages' authors."""

    def __init__(self, base_url: str, path: str, tokens: dict[str, str], clients: int):
        self.base_url, self.path, self.tokens = base_url, path, tokens
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(clients, thread_name_prefix="poster")
        self.clients: list[httpx.Client] = []
        self.lock = threading.Lock()
        barrier = threading.Barrier(clients)
        # Every thread opens its connection now, so the bursts do not pay for connects.
        list(self.pool.map(lambda _: (barrier.wait(), self._client().get("/me", headers=self._auth("en"))),
                           range(clients)))

    def _auth(self, language: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[language]}"}

    def _client(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(base_url=self.base_url, timeout=60)
            with self.lock:
                self.clients.append(client)
        return client

    def _post(self, language: str, text: str) -> tuple[int, str, float, float]:
        start = time.monotonic()
        answer = self._client().post(self.path, json={"content": text}, headers=self._auth(language))
        done = time.monotonic()
        return (answer.status_code, answer.json()["data"]["id"] if answer.status_code == 201 else answer.text, done,
                done - start)

    def burst(self, messages: list[tuple[str, str]]) -> dict:
        """Post them all at once; the ids (as UUIDs), and when the first POST left and the last 201 came."""
        start = time.monotonic()
        results = list(self.pool.map(lambda m: self._post(*m), messages))
        good = [(body, done) for status, body, done, _ in results if status == 201]
        if not good:
            raise SystemExit(f"no POST was answered 201; first answer: {results[0][0]} {results[0][1][:300]}")
        return {"ids": [ULID.from_str(body).to_uuid() for body, _ in good], "start": start,
                "last_201": max(done for _, done in good), "post_ms": [took * 1000 for _, _, _, took in results],
                "bad_posts": [(status, body) for status, body, _, _ in results if status != 201]}

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients:
            client.close()


def pending(models, ids: list) -> int:
    """How many of these messages are still pending (in chunks, under any database's parameter limit)."""
    return sum(models.Message.select().where(models.Message.id.in_(ids[i:i + 500])
                                             & (models.Message.translation_status == "pending")).count()
               for i in range(0, len(ids), 500))


def wait_translated(models, ids: list, timeout_s: float) -> tuple[float | None, list[tuple[float, int]]]:
    """Poll every 10 ms until none of `ids` is pending: when that was first seen (None after the
    timeout), and the (time, pending) samples."""
    samples = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = pending(models, ids)
        now = time.monotonic()
        samples.append((now, left))
        if left == 0:
            return now, samples
        time.sleep(POLL_S)
    return None, samples


def outcome(models, ids: list) -> dict:
    """Statuses, stored translations and detected languages of these messages."""
    from peewee import fn

    M, T = models.Message, models.Translation
    statuses, detected, translations = {}, {}, 0
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for status, count in M.select(M.translation_status, fn.COUNT(M.id)).where(M.id.in_(chunk)) \
                .group_by(M.translation_status).tuples():
            statuses[status] = statuses.get(status, 0) + count
        for language, count in M.select(M.language, fn.COUNT(M.id)).where(M.id.in_(chunk)) \
                .group_by(M.language).tuples():
            detected[language] = detected.get(language, 0) + count
        translations += T.select().where(T.message.in_(chunk)).count()
    errors = [e for (e,) in M.select(M.translation_error)
              .where(M.id.in_(ids[:500]) & M.translation_error.is_null(False)).limit(3).tuples()]
    return {"statuses": statuses, "detected": detected, "translations": translations, "errors": errors}


def in_flight_between(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Mean engine calls in flight from `start` to `end`."""
    if end <= start:
        return 0.0
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans) / (end - start)


def batches_in_log(path: Path, begin: int, end: int) -> tuple[list[dict], list[str]]:
    """The translation actor's per-batch lines written between two offsets of the worker's log, and
    the errors that made Dramatiq retry one of its messages (the exception's last line)."""
    with open(path, "rb") as log:
        log.seek(begin)
        text = log.read(end - begin).decode("utf-8", "replace")
    errors, current, where = [], None, None
    for line in text.splitlines() + ["0000-00-00 end"]:
        if re.match(r"\d{4}-\d\d-\d\d ", line):
            if current is not None:
                errors.append(current + (f" (at {where})" if where else ""))
            current = "an exception" if "ERROR Failed to process message translate_messages" in line else None
            where = None
        elif current is not None:
            if place := re.search(rf'File "{re.escape(str(BENCH.parent))}/(?!\.venv/)(\S+?\.py)", line (\d+)', line):
                where = f"{place.group(1)}:{place.group(2)}"  # the innermost of Sector's frames
            elif re.match(r"[A-Za-z_][\w.]*(Error|Exception)\b", line):
                current = line.strip()
    found = []
    for match in BATCH_LINE.finditer(text):
        at = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logged
        took_ms = int(match.group(7))
        found.append({"end": at, "start": at - took_ms / 1000, "pid": int(match.group(2)),
                      "stored": int(match.group(3)), "messages": int(match.group(4)), "calls": int(match.group(5)),
                      "cached": int(match.group(6)), "ms": took_ms})
    return found, errors


def settle(models, channel_id, timeout_s: float) -> None:
    """Wait until no message of the channel is pending: a POST answered 503 was still queued, and its
    message's engine calls must not be counted in the next burst."""
    M = models.Message
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not M.select().where((M.channel == channel_id) & (M.translation_status == "pending")).count():
            return
        time.sleep(0.1)
    print(f"warning: messages of the channel still pending after {timeout_s:g} s", file=sys.stderr)


def run_burst(label: str, poster: Poster, messages: list[tuple[str, str]], engine, models, stack: TranslationStack,
              delay_s: float, concurrency: int, channel_id) -> dict:
    engine.reset()
    offset = stack.log_offset()
    wall_minus_mono = time.time() - time.monotonic()
    print(f"{label}: posting {len(messages)} messages ...", file=sys.stderr, flush=True)
    psutil.cpu_percent(interval=None)
    since = models.utcnow() - dt.timedelta(milliseconds=1)
    posted = poster.burst(messages)
    until = models.utcnow() + dt.timedelta(milliseconds=1)
    worst_case = len(messages) * CALLS_TARGET * delay_s / concurrency
    done, samples = wait_translated(models, posted["ids"], timeout_s=60 + 3 * worst_case)
    cpu = psutil.cpu_percent(interval=None)
    settle(models, channel_id, timeout_s=60 + worst_case)
    time.sleep(0.5)  # the last batch logs its line just after its commit
    # Every message the burst committed: those answered 201, and those answered 503 whose write was
    # still queued (the handler stamped them all between `since` and `until`).
    M = models.Message
    committed = [m for (m,) in M.select(M.id).where((M.channel == channel_id) & (M.created_at >= since)
                                                   & (M.created_at <= until)).tuples()]
    result = {**posted, "done": done, "samples": samples, "cpu": cpu, "messages": len(messages),
              "calls": engine.translate_calls(), "ok_calls": engine.translate_calls(200),
              "texts": [len(call.texts) for call in engine.calls], "max_in_flight": engine.max_in_flight,
              "spans": list(engine.spans), "committed": len(committed), **outcome(models, committed)}
    batches, result["failures"] = batches_in_log(stack.log_path, offset, stack.log_offset())
    result["batches"] = [{**b, "start": b["start"] - wall_minus_mono, "end": b["end"] - wall_minus_mono}
                         for b in batches]
    # The ideal of the messages waited for: with every POST answered 201, all the calls. (The messages of
    # POSTs answered 503 were committed later; their calls may come after `done`.)
    result["calls_by_done"] = sum(1 for a, _ in result["spans"] if done is None or a <= done)
    result["ideal"] = result["calls_by_done"] * delay_s / concurrency
    # The calls still to start at the last 201 (calls in flight then count for the part still to run).
    result["ideal_after"] = sum(min(1.0, (b - posted["last_201"]) / (b - a)) for a, b in result["spans"]
                                if b > posted["last_201"]) * delay_s / concurrency
    if done is not None:
        result["after_201"] = done - posted["last_201"]
        result["mean_in_flight"] = in_flight_between(result["spans"], posted["last_201"], done)
    return result


def quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[0]:g} / {statistics.median(ordered):g} / {ordered[-1]:g}"


def report(results: list[dict], concurrency: int, delay_s: float) -> bool:
    """Print the figures of each burst; whether one of them failed."""
    failed = False
    width = 22
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, cells) -> None:
        rows.append((name, list(cells)))

    row("POSTs answered 201", (f"{len(r['ids'])} of {r['messages']} in {r['last_201'] - r['start']:.2f} s"
                               for r in results))
    row("messages committed", (str(r["committed"]) for r in results))
    row("POST -> 201 p50 / p99 ms", (f"{percentile(r['post_ms'], 50):.0f} / {percentile(r['post_ms'], 99):.0f}"
                                     for r in results))
    row("engine calls (answered 200)", (f"{r['calls']} ({r['ok_calls']})" for r in results))
    row("calls per message", (f"{r['calls'] / r['messages']:.2f}" for r in results))
    row("  target", (f"<= {CALLS_TARGET}" if i == 0 else "0" for i, _ in enumerate(results)))
    row("calls per translation stored", (f"{r['calls'] / r['translations']:.2f}" if r["translations"] else "-"
                                         for r in results))
    row("texts per call min/med/max", (quantiles(r["texts"]) for r in results))
    row("engine max in flight", (f"{r['max_in_flight']} (allowed {concurrency})" for r in results))
    row("last 201 -> all translated", (f"{r['after_201']:.3f} s" if r["done"] else "TIMED OUT" for r in results))
    row("ideal: calls x delay / conc.", (f"{r['ideal']:.3f} s" for r in results))
    if any(r["calls_by_done"] != r["calls"] for r in results):
        row("  of the calls made by then", (str(r["calls_by_done"]) for r in results))
    row("ratio to ideal (<= 1.3)", (f"{r['after_201'] / r['ideal']:.2f}" if r["done"] and r["ideal"] else "-"
                                   for r in results))
    row("first POST -> all translated", (f"{r['done'] - r['start']:.3f} s" if r["done"] else "-" for r in results))
    row("mean calls in flight after 201", (f"{r['mean_in_flight']:.2f} of {concurrency}" if r["done"] else "-"
                                          for r in results))
    row("engine calls after last 201", (str(sum(1 for a, _ in r["spans"] if a >= r["last_201"])) for r in results))
    row("  their ideal; ratio", (f"{r['ideal_after']:.3f} s; {r['after_201'] / r['ideal_after']:.2f}"
                                if r["done"] and r["ideal_after"] else "-" for r in results))
    row("machine busy, 1st POST -> done", (f"{r['cpu']:.0f}%" for r in results))
    row("translate_messages failed", (str(len(r["failures"])) for r in results))
    row("statuses", (", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())) for r in results))
    row("translations stored / message", (f"{r['translations'] / r['committed']:.2f}" for r in results))
    row("detected languages", (", ".join(f"{k} {v}" for k, v in sorted(r["detected"].items(), key=lambda kv: -kv[1]))
                               for r in results))
    names = ["first burst", "same texts again"][:len(results)]
    print(f"  {'':<32}" + "".join(f"{n:>{width}}" for n in names))
    for name, cells in rows:
        if name in ("detected languages", "statuses"):
            for i, cell in enumerate(cells):
                print(f"  {name + (' (' + names[i] + ')' if len(cells) > 1 else ''):<32}  {cell}")
            continue
        print(f"  {name:<32}" + "".join(f"{c:>{width}}" for c in cells))

    first = results[0]
    print()
    per_message = first["calls"] / first["messages"]
    print(f"engine calls per message = {per_message:.2f} (target <= {CALLS_TARGET}): "
          f"{'met' if per_message <= CALLS_TARGET else 'MISSED'}")
    readers = {language.split("-")[0] for language in LANGUAGES}
    elsewhere = sum(n for language, n in first["detected"].items()
                    if language and language.split("-")[0] not in readers)
    if elsewhere:
        print(f"  ({elsewhere} messages were detected as a language no reader reads, so each needs all "
              f"{len(LANGUAGES)} reader languages, not {CALLS_TARGET})")
    for r in results[1:]:
        print(f"engine calls for the repeated texts = {r['calls']} (target 0): "
              f"{'met' if r['calls'] == 0 else 'MISSED'}")
    if first["done"] and first["ideal"]:
        ratio = first["after_201"] / first["ideal"]
        print(f"last 201 -> all translated = {first['after_201']:.3f} s, ideal {first['calls_by_done']} x "
              f"{delay_s * 1000:g} ms / {concurrency} = {first['ideal']:.3f} s: ratio {ratio:.2f} "
              f"(target <= {RATIO_TARGET}): {'met' if ratio <= RATIO_TARGET else 'MISSED'}")
    for label, r in zip(names, results):
        if r["bad_posts"]:
            failed = True
            statuses = {}
            for status, _ in r["bad_posts"]:
                statuses[status] = statuses.get(status, 0) + 1
            print(f"  !! {label}: {len(r['bad_posts'])} POSTs not answered 201 ("
                  + ", ".join(f"{n} x {status}" for status, n in statuses.items())
                  + f"), first: {r['bad_posts'][0][1][:200]}; the figures count the 201s only")
        if r["done"] is None:
            failed = True
            print(f"  !! {label}: {r['samples'][-1][1] if r['samples'] else '?'} messages still pending at the timeout")
        if r["max_in_flight"] > concurrency:
            failed = True
            print(f"  !! {label}: the engine saw {r['max_in_flight']} calls in flight, over the {concurrency} allowed")
        if r["errors"]:
            print(f"  {label}: translation_error, e.g. {r['errors'][0]!r}")
        if r["failures"]:
            kinds = {}
            for error in r["failures"]:
                kinds[error] = kinds.get(error, 0) + 1
            print(f"  {label}: {len(r['failures'])} translate_messages runs raised and were retried by Dramatiq: "
                  + "; ".join(f"{n} x {error}" for error, n in kinds.items()))

    for label, r in zip(names, results):
        batches = r["batches"]
        print()
        if not batches:
            print(f"Worker log, {label}: no \"Translated ...\" lines found (is the worker logging at INFO?)")
            continue
        zero = r["last_201"]
        pids = sorted({b["pid"] for b in batches})
        print(f"Worker log, {label}: {len(batches)} batches in {len(pids)} worker process(es); times from the last 201")
        print(f"  messages a batch min/med/max {quantiles([b['messages'] for b in batches])}, calls a batch "
              f"{quantiles([b['calls'] for b in batches])}, from the cache {sum(b['cached'] for b in batches)}, "
              f"ms a batch {quantiles([b['ms'] for b in batches])}")
        if r["spans"]:
            print(f"  engine calls: first started {min(a for a, _ in r['spans']) - zero:+.3f} s, "
                  f"last ended {max(b for _, b in r['spans']) - zero:+.3f} s; the burst's first POST "
                  f"{r['start'] - zero:+.3f} s")
        shown = sorted(batches, key=lambda b: b["start"])
        if len(shown) > 24:
            shown = shown[:12] + [None] + shown[-12:]
        print(f"  {'pid':>8}{'start s':>9}{'end s':>9}{'msgs':>6}{'calls':>7}{'cached':>8}{'ms':>7}")
        for b in shown:
            if b is None:
                print(f"  {'...':>8}")
                continue
            print(f"  {b['pid']:>8}{b['start'] - zero:>+9.3f}{b['end'] - zero:>+9.3f}{b['messages']:>6}{b['calls']:>7}"
                  f"{b['cached']:>8}{b['ms']:>7}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200, help="messages in a burst (default 200)")
    parser.add_argument("--delay-ms", type=float, default=100,
                        help="the engine's delay before each answer (default 100)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="[translation] concurrency: engine calls in flight at once, all workers (default 4)")
    parser.add_argument("--processes", type=int, default=2, help="Dramatiq worker processes (default 2)")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="libretranslate",
                        help="which engine's protocol the local server speaks (default libretranslate; "
                             "openai carries one text a call)")
    parser.add_argument("--max-chars", type=int, default=2000, help="[translation] max_chars (default 2000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients posting (default 16)")
    parser.add_argument("--warmup", type=int, default=40, help="messages in the warm-up burst (default 40)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (and the worker's log)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.concurrency < 1 or args.processes < 1 or args.clients < 1:
        parser.error("--messages, --concurrency, --processes and --clients must be at least 1")
    delay_s = args.delay_ms / 1000

    busy = warn_if_busy()
    extra = {"api_key": "bench-key"} if args.engine == "deepl" else {}
    if args.engine in ENGINE_LANGUAGES:
        extra["languages"] = ENGINE_LANGUAGES[args.engine]
    engine = ENGINES[args.engine](delay_s=delay_s, **extra)
    engine.start()
    stack = TranslationStack(http_workers=1, worker_processes=args.processes, worker_threads=None)
    stack.env.update({
        **engine_settings(args.engine, engine.url),
        "SECTOR_TRANSLATION_CONCURRENCY": str(args.concurrency),
        "SECTOR_TRANSLATION_MAX_CHARS": str(args.max_chars),
        "SECTOR_TRANSLATION_DEEPL_KEY": "bench-key",
        # Signing up the five readers is set-up, not what is measured: bcrypt at its lowest cost.
        "SECTOR_AUTH_BCRYPT_ROUNDS": "4",
    })
    stack.settings = settings = config.load(environ=stack.env)
    database = "SQLite" if settings.database.url == "embedded" else "database " + settings.database.url.split(":")[0]
    redis_name = "embedded Redis" if settings.redis.url == "embedded" else "Redis " + settings.redis.url
    print(f"Starting Sector in {stack.data_dir} ({redis_name}, {database}, {args.processes} worker process(es) x "
          f"{settings.workers.threads} threads, {args.engine} fake at {engine.url}, {args.delay_ms:g} ms a call, "
          f"concurrency {args.concurrency}) ...", file=sys.stderr, flush=True)

    import models

    failed = False
    results = []
    poster = None
    try:
        stack.start()
        base = rosetta_url(stack)
        readers = {language: reader(stack, language) for language in LANGUAGES}
        owner = readers["en"]
        ws = workspace(owner, "Rosetta bench")
        for language, user in readers.items():
            if user is not owner:
                join(user, ws, by=owner)
        ch = channel(owner, ws, "burst")
        poster = Poster(base, messages_path(ws, ch), {lang: user.token for lang, user in readers.items()}, args.clients)
        models.open_database(settings.database_url)
        channel_id = ULID.from_str(ch["id"]).to_uuid()

        warmup = [(LANGUAGES[i % len(LANGUAGES)], f"warm-up message number {i}") for i in range(args.warmup)]
        if warmup:
            warm = run_burst("warm-up", poster, warmup, engine, models, stack, delay_s, args.concurrency, channel_id)
            if warm["done"] is None:
                raise SystemExit("the warm-up burst was not translated in time; see " + str(stack.log_path))
            print(f"warm-up: {len(warmup)} messages translated in {warm['done'] - warm['start']:.2f} s by "
                  f"{len({b['pid'] for b in warm['batches']})} worker process(es)", file=sys.stderr, flush=True)
        messages = texts_of(args.messages)
        for label in ("first burst", "same texts"):
            results.append(run_burst(label, poster, messages, engine, models, stack, delay_s, args.concurrency,
                                     channel_id))
    finally:
        try:
            if poster is not None:
                poster.close()
            if models.db.obj is not None and not models.db.is_closed():
                models.db.close()
        finally:
            stack.stop()
            engine.stop()
            if args.keep:
                print(f"kept {stack.data_dir} (worker log: {stack.log_path})", file=sys.stderr)
            else:
                shutil.rmtree(stack.data_dir, ignore_errors=True)

    print()
    print(f"Translation of a burst: {os.cpu_count()} CPUs, 1 HTTP worker, {args.processes} worker process(es) x "
          f"{settings.workers.threads} threads, {database}, {redis_name}; machine {busy:.0f}% busy before the start")
    print(f"Engine: {args.engine} (local fake, tests/engines.py), {args.delay_ms:g} ms a call, concurrency "
          f"{args.concurrency}, max_chars {args.max_chars}. Channel readers: {', '.join(LANGUAGES)}; "
          f"{args.messages} messages a burst, each reader posting lines of their own language, {args.clients} clients")
    print()
    failed |= report(results, args.concurrency, delay_s)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
