"""The `translation` queue: every message in each of its readers' languages.

`translate_messages` gets the ids of messages that were posted or edited (the outbox sends one
Dramatiq message for all the messages a commit wrote) and, for those still `pending`:

1. detects each one's language in-process (domain/languages.py), the author's language breaking
   ties on very short text, or asks the engine when `[translation] detect = "engine"`;
2. works out the languages its readers need: the distinct languages of the channel's readers that
   are not the source's (domain.chat_access.reader_languages), none for a conversation that all
   reads the source language;
3. looks each (engine, source, target, text) up in the Redis cache, and sends what is left to the
   engine once per target language, never once per reader: the texts of all the batch's messages
   that go from one language into another travel together, as many in a call as the engine takes
   (a long message split at sentence boundaries, providers/translation/markup.py);
4. stores the translations of the version it translated, and moves the message to `completed`,
   `partial` (some languages failed; `translation_error` says which and why) or `failed`. An edit
   made meanwhile bumped the version, so a late result is discarded and the edit's own run stores
   its translations;
5. sends the messages on to the push fan-out (actors/push.py), whose notifications wait for their
   readers' translations (a message pushed already is passed over there).

Calls share the engine's concurrency and rate limits with every other worker (actors/limits.py),
and are retried with backoff when the engine timed out or answered 5xx or 429. With provider
`none` messages are marked `skipped` and readers see the original.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace

import dramatiq
import redis
from peewee import JOIN, fn

from actors import push, realtime
from actors.database import one_writer, read_then_write
from actors.limits import Gate
from config import settings
from domain import languages
from domain.chat_access import reader_languages
from models import Channel, Membership, Message, Outbox, Translation, User, is_postgres, utcnow
from providers.translation import Engine, EngineError, build
from providers.translation.markup import Protected, split

logger = logging.getLogger(__name__)

#: Longest backoff between two tries of a call.
BACKOFF_MAX_S = 30.0


@dataclass
class Work:
    """One message's translation: what to send, and what came back."""

    message_id: uuid.UUID
    version: int
    body: str
    protected: Protected
    source: str | None = None  # its language, detected
    targets: dict[str, list[str]] = field(default_factory=dict)  # engine code -> reader tags it serves
    done: dict[str, str] = field(default_factory=dict)  # reader tag -> translation
    failed: dict[str, str] = field(default_factory=dict)  # reader tag -> why


_building = threading.Lock()


def _once(build):
    """functools.cache for what a worker process builds once (the engine's client, the detector, ...):
    built by the first thread that needs it while the others wait, not by all of them at once."""
    cached = functools.cache(build)

    @functools.wraps(build)
    def get(*args):
        with _building:
            return cached(*args)
    return get


@_once
def engine() -> Engine | None:
    return build(settings().translation)


@_once
def _detector() -> languages.Detector:
    codes = settings().translation.detect_languages
    return languages.Detector([code.strip() for code in codes.split(",") if code.strip()])


@_once
def _gate(name: str) -> Gate:
    config = settings().translation
    return Gate(dramatiq.get_broker().client, f"{settings().redis.namespace}:translation:{name}",
                concurrency=config.concurrency, rate_per_s=config.rate_per_s, lease_s=config.timeout_s * 2 + 5)


@_once
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(settings().translation.concurrency, thread_name_prefix="translate")


@dramatiq.actor(queue_name="translation", max_retries=5, min_backoff=1000, max_backoff=60_000, time_limit=900_000)
def translate_messages(message_ids: list[str]) -> None:
    """Translate the messages among these that are still pending."""
    rows = _pending([uuid.UUID(m) for m in message_ids])
    if not rows:
        return
    translator = engine()
    if translator is None:
        with one_writer():
            Message.update(translation_status="skipped").where(
                Message.id.in_([row.id for row in rows]) & (Message.translation_status == "pending")).execute()
        logger.info("Translation is off ([translation] provider = \"none\"): %d messages marked skipped.", len(rows))
        push.fan_out.send([str(row.id) for row in rows])
        return
    started = time.monotonic()
    works = _plan(translator, rows)
    calls, cached = _translate(translator, [w for w in works if w.targets])
    stored, followup = _store(translator, works)
    if _CRASH_AFTER_STORE and followup is not None:
        os._exit(70)  # tests only: die between storing translations and publishing their events
    push.fan_out.send([str(w.message_id) for w in works])  # their notifications waited for this
    try:
        realtime.publish_translations([(w.message_id, w.version, w.done) for w in stored])
    except redis.RedisError as e:  # the outbox row stays: the sweep has them published later
        logger.warning("Could not publish %d translations' realtime events now (%s); the outbox sweep will.",
                       len(stored), e)
    else:
        if followup is not None:
            with one_writer():
                Outbox.delete().where(Outbox.id == followup).execute()
    logger.info("Translated %d of %d messages with %s: %d calls, %d from the cache, %.0f ms.", len(stored), len(works),
                translator.name, calls, cached, (time.monotonic() - started) * 1000)


# Set only by the tests: the worker process exits right after storing translations, before it publishes
# their realtime events, to show that the outbox row written with them publishes them all the same.
_CRASH_AFTER_STORE = os.environ.get("SECTOR_TEST_CRASH_AFTER_TRANSLATION") == "1"


def _pending(ids: list[uuid.UUID]) -> list:
    """The live pending messages among `ids`, with their channel and their author's language there."""
    author_language = fn.COALESCE(Membership.preferred_language, User.preferred_language).alias("author_language")
    rows = (Message.select(Message.id, Message.version, Message.body, Channel.id, Channel.workspace, Channel.kind,
                           Channel.visibility, author_language)
            .join(Channel).switch(Message).join(User, on=User.id == Message.author)
            .join(Membership, JOIN.LEFT_OUTER,
                  on=(Membership.workspace == Channel.workspace) & (Membership.user == Message.author))
            .where(Message.id.in_(ids) & (Message.translation_status == "pending") & Message.deleted_at.is_null()))
    return [SimpleNamespace(id=row.id, version=row.version, body=row.body, author_language=row.author_language,
                            channel=Channel(id=row.channel.id, workspace=row.channel.workspace_id,
                                            kind=row.channel.kind, visibility=row.channel.visibility))
            for row in rows]


def _plan(translator: Engine, rows: list) -> list[Work]:
    """Each message's source language and the engine codes its readers need."""
    config = settings().translation
    works = [Work(row.id, row.version, row.body, Protected(row.body)) for row in rows]
    found = _detect_by_engine(translator, works) if config.detect == "engine" else {}
    readers: dict[uuid.UUID, set[str]] = {}
    for work, row in zip(works, rows):
        hint = languages.canonical(row.author_language) if row.author_language else None
        work.source = found.get(work.message_id) or _detector().detect(work.protected.words, hint)
        if work.source is None:
            continue  # nothing to translate: only mentions, links, code or emoji
        if row.channel.id not in readers:
            readers[row.channel.id] = reader_languages(row.channel)
        for tag in sorted(readers[row.channel.id]):
            if languages.same(tag, work.source):
                continue
            code = translator.target_code(tag)
            if code is None:
                work.failed[tag] = f"{translator.name} does not translate into {tag}"
            else:
                work.targets.setdefault(code, []).append(tag)
    return works


def _detect_by_engine(translator: Engine, works: list[Work]) -> dict[uuid.UUID, str]:
    """The engine's detection of each work's language (a call each); those it fails on are left out."""
    def detect(work: Work) -> str | None:
        if not work.protected.words:
            return None
        try:
            with _gate(translator.name).slot():
                (code,) = translator.detect([work.protected.words])
            return code
        except EngineError as e:
            logger.warning("%s could not detect a language (%s); detecting in-process.", translator.name, e.reason)
            return None
    return {w.message_id: languages.canonical(code) for w, code in zip(works, _pool().map(detect, works)) if code}


def _cache_key(translator: Engine, source: str, target: str, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{settings().redis.namespace}:translation:cache:{translator.name}:{source}:{target}:{digest}"


@dataclass
class Job:
    """One message into one of the engine's languages: its pieces, and what the engine made of them."""

    work: Work
    code: str
    source: str | None
    cache_key: str
    pieces: list[tuple[str, str]] = field(default_factory=list)  # (markup, whitespace after it)
    results: dict[int, str] = field(default_factory=dict)
    error: str | None = None


def _translate(translator: Engine, works: list[Work]) -> tuple[int, int]:
    """Fill each work's `done` and `failed`; returns (engine calls made, translations from the cache)."""
    client = dramatiq.get_broker().client
    jobs = []
    for work in works:
        source = translator.source_code(work.source)
        jobs += [Job(work, code, source, _cache_key(translator, source or "", code, work.body))
                 for code in work.targets]
    hits = client.mget([job.cache_key for job in jobs]) if jobs else []
    to_send: dict[tuple[str, str], list[Job]] = {}
    cached = 0
    for job, hit in zip(jobs, hits):
        if hit is not None:
            _done(job, hit.decode())
            cached += 1
        elif job.source is None:
            _failed(job, f"{translator.name} does not translate from {job.work.source}")
        else:
            job.pieces = split(job.work.protected.markup, settings().translation.max_chars)
            to_send.setdefault((job.source, job.code), []).append(job)
    calls = [(source, code, chunk) for (source, code), group in to_send.items()
             for chunk in _pack([(job, i) for job in group for i in range(len(job.pieces))], translator.max_texts)]
    answers = _pool().map(lambda call: _call(translator, call[0], call[1], [j.pieces[i][0] for j, i in call[2]]), calls)
    for (_, _, chunk), answer in zip(calls, answers):
        for position, (job, index) in enumerate(chunk):
            if isinstance(answer, EngineError):
                job.error = job.error or answer.reason
            else:
                job.results[index] = answer[position]
    fresh = {}
    for job in (job for group in to_send.values() for job in group):
        if job.error is not None:
            _failed(job, job.error)
            continue
        joined = "".join(job.results[i] + gap for i, (_, gap) in enumerate(job.pieces))
        text = job.work.protected.restore(joined, translator.answers_escaped)
        _done(job, text)
        fresh[job.cache_key] = text
    if fresh:
        with client.pipeline(transaction=False) as pipe:
            for key, text in fresh.items():
                pipe.set(key, text, ex=settings().translation.cache_ttl_s)
            pipe.execute()
    return len(calls), cached


def _pack(pieces: list[tuple[Job, int]], max_texts: int) -> list[list[tuple[Job, int]]]:
    """Pieces in calls of at most `max_texts` texts and `[translation] max_chars` characters."""
    limit = settings().translation.max_chars
    chunks, current, size = [], [], 0
    for job, index in pieces:
        length = len(job.pieces[index][0])
        if current and (len(current) == max_texts or size + length > limit):
            chunks.append(current)
            current, size = [], 0
        current.append((job, index))
        size += length
    return chunks + [current] if current else chunks


def _call(translator: Engine, source: str, target: str, texts: list[str]) -> list[str] | EngineError:
    """The engine's answer, tried again with backoff while it can help; the last error otherwise."""
    config = settings().translation
    gate = _gate(translator.name)
    for attempt in range(config.max_retries + 1):
        try:
            with gate.slot():
                return translator.translate(texts, source, target)
        except EngineError as e:
            error = e
        if not error.retryable or attempt == config.max_retries:
            break
        logger.warning("%s (try %d of %d); trying again.", error.reason, attempt + 1, config.max_retries + 1)
        if error.retry_after is not None:
            gate.pause(error.retry_after)  # every worker waits, not only this one
        else:
            time.sleep(min(BACKOFF_MAX_S, 0.25 * 2 ** attempt) * random.uniform(0.5, 1))
    if error.retryable:
        error.reason += f" (after {config.max_retries + 1} tries)"
    return error


def _done(job: Job, text: str) -> None:
    for tag in job.work.targets[job.code]:
        job.work.done[tag] = text


def _failed(job: Job, reason: str) -> None:
    for tag in job.work.targets[job.code]:
        job.work.failed[tag] = reason


def _store(translator: Engine, works: list[Work]) -> tuple[list[Work], int | None]:
    """Store the translations of messages still at the version translated; returns the works stored, and
    the id of the outbox row of their realtime events (None when no translation was stored).

    The row is written in the same transaction as the translations and deleted once their events are
    published; if this worker dies in between, the outbox sweep sends it to `message_translated`
    (actors/messages.py), which publishes them from what was stored. A redelivered message would not:
    its messages are no longer pending."""
    now = utcnow()
    with read_then_write():
        versions = Message.select(Message.id, Message.version).where(
            Message.id.in_([w.message_id for w in works]) & Message.deleted_at.is_null())
        # An edit committing meanwhile waits for these rows (PostgreSQL; SQLite has one writer anyway).
        current = dict((versions.for_update() if is_postgres() else versions).tuples())
        fresh = [w for w in works if current.get(w.message_id) == w.version]
        rows = [{"message": w.message_id, "language": tag, "version": w.version, "body": text,
                 "engine": translator.name, "created_at": now} for w in fresh for tag, text in w.done.items()]
        for start in range(0, len(rows), 200):
            Translation.insert_many(rows[start:start + 200]).on_conflict_ignore().execute()
        outcomes: dict[tuple, list[uuid.UUID]] = {}
        for w in fresh:
            outcomes.setdefault((w.version, w.source, *_outcome(w)), []).append(w.message_id)
        for (version, source, status, error), ids in outcomes.items():
            Message.update(translation_status=status, translation_error=error, language=source).where(
                Message.id.in_(ids) & (Message.version == version)).execute()
        translated = [{"message_id": str(w.message_id)} for w in fresh if w.done]
        followup = Outbox.insert(kind="message_translated", arguments=json.dumps(translated),
                                 created_at=now).execute() if translated else None
    for w in works:
        if w.failed:
            logger.warning("Message %s: %s.", w.message_id, _describe(w.failed))
    return fresh, followup


def _outcome(work: Work) -> tuple[str, str | None]:
    if not work.failed:
        return "completed", None
    return ("partial" if work.done else "failed"), _describe(work.failed)


def _describe(failed: dict[str, str]) -> str:
    """`ja, th: engine answered 503 ...; id: ...`: the languages that failed, by reason."""
    by_reason: dict[str, list[str]] = {}
    for tag, reason in failed.items():
        by_reason.setdefault(reason, []).append(tag)
    return "; ".join(f"{', '.join(tags)}: {reason}" for reason, tags in by_reason.items())


@dramatiq.actor(queue_name="translation", max_retries=3, time_limit=300_000)
def resend_stuck_translations() -> None:
    """Send the messages pending for longer than `[translation] stuck_after_s` to be translated again
    (their follow-up was lost, or every try of their worker died)."""
    cutoff = utcnow() - dt.timedelta(seconds=settings().translation.stuck_after_s)
    stuck = Message.select(Message.id).where(
        (Message.translation_status == "pending") & (Message.created_at < cutoff) & Message.deleted_at.is_null()
        & (Message.edited_at.is_null() | (Message.edited_at < cutoff)))
    ids = [str(m) for (m,) in stuck.order_by(Message.created_at).limit(1000).tuples()]
    for start in range(0, len(ids), 100):
        translate_messages.send(ids[start:start + 100])
    if ids:
        logger.warning("Re-sent %d messages left pending for over %d s to be translated.", len(ids),
                       settings().translation.stuck_after_s)
