"""Automatic translation end to end: messages posted through the API, translated by real workers
(2 processes) against a local LibreTranslate (tests/engines.py), read back by readers of every language.

One translating stack (SQLite or, with SECTOR_DATABASE_URL, PostgreSQL) and one fake engine for the
module. The fake answers `[<code>] ` + the text upper-cased outside tags (zh-CN readers get
`[zh-Hans] ...`, LibreTranslate's code) and unescapes its answers as LibreTranslate does. Every test
uses texts of its own: the Redis cache is keyed by text.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from ulid import ULID

import config
from tests import chat, translating
from tests.api import Account, unique
from tests.engines import FakeLibreTranslate
from tests.stack import Stack, bound_models, run_python, wait_for

#: Reader languages of the main workspace, and the LibreTranslate code each is translated into.
CODES = {"ja": "ja", "th": "th", "id": "id", "zh-CN": "zh-Hans"}
MAX_CHARS = 300
FAILED_400 = "libretranslate answered 400: Invalid request"
SECTOR_MESSAGE = {"author", "body", "channel", "created_at", "id", "pinned"}
ON_POSTGRES = os.environ.get("SECTOR_DATABASE_URL", "").startswith("postgres")


class TimedLibreTranslate(FakeLibreTranslate):
    """The fake LibreTranslate, also noting when each translate call arrived (`arrivals`, in order)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: list[float] = []

    def _translate_call(self, request):
        self.arrivals.append(time.monotonic())
        return super()._translate_call(request)

    def reset(self) -> None:
        super().reset()
        self.arrivals.clear()


# Fixtures: one engine, one stack, one multilingual workspace for the module.

@pytest.fixture(scope="module")
def fake():
    engine = TimedLibreTranslate(unescape_output=True).start()  # LibreTranslate unescapes its answers
    yield engine
    engine.stop()


class LoggedStack(Stack):
    """A Stack whose worker writes its stderr (its log) to `worker_log`, for tests that read what it said."""

    def start_worker(self, stderr=None, **overrides):
        self.worker_log = self.data_dir / "worker.log"
        return super().start_worker(stderr=stderr or open(self.worker_log, "ab"), **overrides)

    def worker_said(self, since: int = 0) -> str:
        return self.worker_log.read_bytes()[since:].decode(errors="replace")


@pytest.fixture(scope="module")
def tstack(fake):
    """translating.translating_stack("libretranslate", ...) with the worker's log kept."""
    stack = LoggedStack()
    stack.env.update({**translating.FAST, **translating.engine_settings("libretranslate", fake.url),
                      "SECTOR_WORKERS_PROCESSES": "2", "SECTOR_TRANSLATION_CONCURRENCY": "3",
                      "SECTOR_TRANSLATION_MAX_CHARS": str(MAX_CHARS)})
    stack.settings = config.load(environ=stack.env)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def db(tstack):
    """The translating stack's database, opened here (and the proxy given back to whoever had it)."""
    yield from bound_models(tstack)


@pytest.fixture(scope="module")
def team(tstack):
    """A public workspace of an English owner and readers of ja, th, id and zh-CN."""
    owner = translating.reader(tstack, "en", "Owner")
    readers = {tag: translating.reader(tstack, tag) for tag in CODES}
    ws = chat.workspace(owner, unique("Babel"), visibility="public")
    for user in readers.values():
        chat.join(user, ws, by=owner)
    return SimpleNamespace(stack=tstack, owner=owner, readers=readers, ws=ws)


@pytest.fixture
def room(team, fake):
    """A fresh public channel of the team, and a fake that has counted nothing yet."""
    fake.reset()
    return chat.channel(team.owner, team.ws, unique("room"))


@pytest.fixture(scope="module")
def pair(tstack):
    """A workspace of an English owner and one Japanese member: one target language, so calls are sequential."""
    owner, member = translating.reader(tstack, "en", "Pair owner"), translating.reader(tstack, "ja", "Pair ja")
    ws = chat.workspace(owner, unique("Pair"))
    chat.join(member, ws, by=owner)
    return SimpleNamespace(owner=owner, member=member, ws=ws, ch=chat.channel(owner, ws, "general"))


# Helpers

def translated(code: str, text: str) -> str:
    """What the fake makes of plain text (nothing protected, nothing to escape)."""
    return f"[{code}] {text.upper()}"


def one_path(ws: dict, ch: dict, message_id: str) -> str:
    return f"{chat.messages_path(ws, ch)}/{message_id}"


def settle(user, ws: dict, ch: dict, message: dict, timeout: float = 30) -> dict:
    return translating.settled(user, one_path(ws, ch, message["id"]), timeout=timeout)


def read(user, ws: dict, ch: dict, message: dict) -> dict:
    answer = user.api.get(one_path(ws, ch, message["id"]))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def as_uuid(ulid: str) -> uuid.UUID:
    return ULID.from_str(ulid.upper()).to_uuid()


def as_ulid(uuid_text: str) -> str:
    return str(ULID.from_uuid(uuid.UUID(uuid_text))).lower()


def calls_of(fake, text: str) -> list:
    """The translate calls that carried `text` (as sent, markup) among their texts."""
    return [call for call in fake.calls if any(text in t for t in call.texts)]


def view(message: dict) -> tuple:
    return (message["translation_status"], message["language"], message["display_content"],
            message["display_source"], message["translation_error"])


def post_async(user, ws: dict, ch: dict, text: str) -> str:
    """Post with `Prefer: respond-async` (202 at once, so posts commit together); the new message's id."""
    answer = user.api.post(chat.messages_path(ws, ch), json={"content": text}, headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    return answer.headers["Location"].rsplit("/", 1)[1]


def listing(user, ws: dict, ch: dict) -> list[dict]:
    answer = user.api.get(chat.messages_path(ws, ch), params={"per_page": 100})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def all_settled(user, ws: dict, ch: dict, count: int, timeout: float = 40) -> list[dict]:
    seen = {}

    def done() -> bool:
        seen["list"] = listing(user, ws, ch)
        return len(seen["list"]) == count and all(m["translation_status"] != "pending" for m in seen["list"])

    assert wait_for(done, timeout=timeout, interval=0.1), [m["translation_status"] for m in seen.get("list", [])]
    return seen["list"]


# 1. Each reader in their language, one call per language

def test_each_reader_reads_the_message_in_their_language_with_one_call_per_language(team, fake, room):
    second_ja = translating.reader(team.stack, "ja", "Second ja")
    chat.join(second_ja, team.ws, by=team.owner)
    fake.reset()
    text = "Hello team, the build is green again this morning."
    message = chat.post(team.owner, team.ws, room, text)
    assert message["translation_status"] == "pending"
    mine = settle(team.owner, team.ws, room, message)
    assert view(mine) == ("completed", "en", text, "original", None)
    for tag, user in [*team.readers.items(), ("ja", second_ja)]:
        seen = read(user, team.ws, room, message)
        assert view(seen) == ("completed", "en", translated(CODES[tag], text), "translated", None), tag
        assert seen["original_content"] == text
    calls = fake.calls
    assert len(calls) == 4, [(c.target, c.texts) for c in calls]
    assert {c.target for c in calls} == {"ja", "th", "id", "zh-Hans"}
    assert all((c.source, c.texts, c.status, c.body["format"]) == ("en", [text], 200, "html") for c in calls)
    # The list shows the same as the message.
    assert [m["display_content"] for m in listing(team.readers["th"], team.ws, room)] == [translated("th", text)]


# 2. Protected spans

def test_mentions_urls_code_emoji_and_shortcodes_come_back_unchanged(team, fake, room):
    text = "thanks @bob see https://example.com/Path?x=1&y=2 and `npm run Build` 👍🏽 :tada: Tom & Jerry <3"
    message = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, message)
    expected = "THANKS @bob SEE https://example.com/Path?x=1&y=2 AND `npm run Build` 👍🏽 :tada: TOM & JERRY <3"
    for tag, user in team.readers.items():
        seen = read(user, team.ws, room, message)
        assert (seen["translation_status"], seen["display_content"]) == (
            "completed", f"[{CODES[tag]}] {expected}"), tag
    sent = [t for call in fake.calls for t in call.texts]
    assert len(sent) == 4
    for markup in sent:
        assert markup.startswith("thanks <x id=") and markup.count("<x id=") == 5, markup
        for span in ("@bob", "example.com", "npm run", "👍", ":tada:"):
            assert span not in markup, markup
        assert "Tom &amp; Jerry &lt;3" in markup  # the words around the spans travel as markup


def test_text_that_looks_like_a_placeholder_comes_back_as_typed(team, fake, room):
    # LibreTranslate unescapes its answers, so what an author typed that looks like a placeholder must
    # never reach it as text: it would come back as a tag and take a protected span's place.
    text = 'In the template write <x id="0"/> or <x> for the first slot, thanks @bob'
    message = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, message)
    seen = read(team.readers["ja"], team.ws, room, message)
    assert seen["display_content"] == '[ja] IN THE TEMPLATE WRITE <x id="0"/> OR <x> FOR THE FIRST SLOT, THANKS @bob'


# 3. A burst travels together

def test_a_burst_of_messages_is_translated_in_few_calls(team, fake, room):
    texts = [f"Burst note {i}: please review the release notes before lunch." for i in range(30)]
    for text in texts:
        post_async(team.owner, team.ws, room, text)
    shown = all_settled(team.readers["ja"], team.ws, room, len(texts))
    assert sorted(m["display_content"] for m in shown) == sorted(translated("ja", t) for t in texts)
    assert {m["translation_status"] for m in shown} == {"completed"}
    calls = fake.calls
    print(f"\n{len(texts)} messages into 4 languages took {len(calls)} engine calls")
    assert len(calls) < len(texts) * 4
    for call in calls:
        assert len(call.texts) <= 50 and sum(map(len, call.texts)) <= MAX_CHARS, call.texts
    total = sum(map(len, texts))
    for code in CODES.values():
        of_target = [c for c in calls if c.target == code]
        assert Counter(t for c in of_target for t in c.texts) == Counter(texts), code  # each text once
        assert len(of_target) >= math.ceil(total / MAX_CHARS)


# 4. The cache

def test_a_repeated_text_costs_no_call_and_is_still_translated(team, fake, room):
    text = "Same words again: the coffee machine on floor three is fixed."
    first = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, first)
    assert len(fake.calls) == 4
    fake.reset()
    again = chat.post(team.owner, team.ws, room, text)
    assert view(settle(team.owner, team.ws, room, again)) == ("completed", "en", text, "original", None)
    for tag, user in team.readers.items():
        assert read(user, team.ws, room, again)["display_content"] == translated(CODES[tag], text)
    assert fake.calls == []


# 5. skip_translation

def test_skip_translation_leaves_the_message_untranslated_for_everyone(team, fake, room):
    text = "Do not translate this line about the quarterly budget."
    message = chat.post(team.owner, team.ws, room, text, skip_translation=True)
    assert message["translation_status"] == "skipped"
    after = chat.post(team.owner, team.ws, room, "A later line that is translated as usual.")
    settle(team.owner, team.ws, room, after)  # the workers are past the skipped one
    for user in [team.owner, *team.readers.values()]:
        assert view(read(user, team.ws, room, message)) == ("skipped", None, text, "original", None)
    assert calls_of(fake, "quarterly budget") == []


# 6. Nobody to translate for

def test_a_channel_whose_readers_all_read_the_source_is_completed_without_a_call(team, tstack, fake):
    private = chat.channel(team.owner, team.ws, unique("owners"), visibility="private")
    fake.reset()
    text = "Only the owner reads this private channel today."
    message = chat.post(team.owner, team.ws, private, text)
    assert view(settle(team.owner, team.ws, private, message)) == ("completed", "en", text, "original", None)
    # A workspace of English readers only.
    english = [translating.reader(tstack, "en", f"English {i}") for i in range(2)]
    ws = chat.workspace(english[0], unique("Anglo"))
    chat.join(english[1], ws, by=english[0])
    ch = chat.channel(english[0], ws, "general")
    text = "Everyone here reads English, so nothing needs translating."
    message = chat.post(english[1], ws, ch, text)
    assert view(settle(english[0], ws, ch, message)) == ("completed", "en", text, "original", None)
    assert fake.calls == []


# 7. A member's language in one workspace

def test_a_members_language_in_a_workspace_overrides_their_own(tstack, fake):
    owner, member = translating.reader(tstack, "en", "Local owner"), translating.reader(tstack, "ja", "Local ja")
    ws = chat.workspace(owner, unique("Local"))
    chat.join(member, ws, by=owner)
    changed = member.api.put(f"/workspaces/{ws['id']}/members/{member.id}",
                             json={"role": "member", "preferred_language": "th"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["preferred_language"] == "th"
    ch = chat.channel(owner, ws, "general")
    fake.reset()
    text = "Welcome to the Bangkok office, the lunch menu is on the wall."
    message = chat.post(owner, ws, ch, text)
    settle(owner, ws, ch, message)
    assert view(read(member, ws, ch, message)) == ("completed", "en", translated("th", text), "translated", None)
    assert [c.target for c in fake.calls] == ["th"]  # nobody reads Japanese in this workspace


# 8. Edits and deletes

def test_an_edit_is_translated_afresh_and_only_the_current_version_is_stored(team, fake, room, db):
    first = "The meeting moves to Thursday afternoon."
    message = chat.post(team.owner, team.ws, room, first)
    settle(team.owner, team.ws, room, message)
    edited = "The meeting moves to Friday morning instead."
    fake.delay_s = 0.3  # so the edit's translation is seen pending
    try:
        answer = team.owner.api.patch(one_path(team.ws, room, message["id"]), json={"content": edited})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["translation_status"] == "pending"
        meanwhile = read(team.readers["ja"], team.ws, room, message)
        assert view(meanwhile) == ("pending", "en", edited, "original", None)
        settle(team.owner, team.ws, room, message)
    finally:
        fake.delay_s = 0
    for tag, user in team.readers.items():
        seen = read(user, team.ws, room, message)
        assert view(seen) == ("completed", "en", translated(CODES[tag], edited), "translated", None), tag
    mid = as_uuid(message["id"])
    assert db.Message.get_by_id(mid).version == 2
    rows = list(db.Translation.select().where(db.Translation.message == mid))
    assert sorted((r.language, r.version, r.body) for r in rows) == sorted(
        (tag, 2, translated(code, edited)) for tag, code in CODES.items())
    deleted = team.owner.api.delete(one_path(team.ws, room, message["id"]))
    assert deleted.status_code == 204, deleted.text
    assert db.Translation.select().where(db.Translation.message == mid).count() == 0


def test_an_edit_during_translation_discards_the_late_result(team, fake, room, db):
    first = "Draft: the office closes at five on Monday."
    edited = "Final: the office closes at six on Tuesday."
    fake.delay_s = 0.5
    try:
        message = chat.post(team.owner, team.ws, room, first)
        assert wait_for(lambda: calls_of(fake, "Draft: the office"), timeout=10)  # the first run is in flight
        answer = team.owner.api.patch(one_path(team.ws, room, message["id"]), json={"content": edited})
        assert answer.status_code == 200, answer.text
        assert wait_for(lambda: read(team.owner, team.ws, room, message)["translation_status"] != "pending"
                        and len(calls_of(fake, "Final: the office")) == 4, timeout=30)
    finally:
        fake.delay_s = 0
    for tag, user in team.readers.items():
        seen = read(user, team.ws, room, message)
        assert view(seen) == ("completed", "en", translated(CODES[tag], edited), "translated", None), tag
    rows = list(db.Translation.select().where(db.Translation.message == as_uuid(message["id"])))
    assert sorted((r.language, r.version, r.body) for r in rows) == sorted(
        (tag, 2, translated(code, edited)) for tag, code in CODES.items())


# 9. Engine failures

def test_5xx_answers_are_retried_until_the_call_succeeds(pair, fake):
    fake.reset()
    fake.fail_next(503, times=2)
    text = "Server hiccups should not lose this sentence."
    message = chat.post(pair.owner, pair.ws, pair.ch, text)
    settle(pair.owner, pair.ws, pair.ch, message)
    assert view(read(pair.member, pair.ws, pair.ch, message)) == (
        "completed", "en", translated("ja", text), "translated", None)
    assert [(c.target, c.status) for c in fake.calls] == [("ja", 503), ("ja", 503), ("ja", 200)]


def test_a_5xx_on_every_try_fails_the_message_after_the_last_retry(pair, fake):
    fake.reset()
    fake.fail_next(503, times=3)  # max_retries 2: three tries
    text = "This sentence meets a server that keeps failing."
    message = chat.post(pair.owner, pair.ws, pair.ch, text)
    settled = settle(pair.owner, pair.ws, pair.ch, message)
    assert settled["translation_status"] == "failed"
    assert settled["translation_error"] == "ja: libretranslate answered 503: Service Unavailable (after 3 tries)"
    assert [c.status for c in fake.calls] == [503, 503, 503]
    seen = read(pair.member, pair.ws, pair.ch, message)
    assert (seen["display_content"], seen["display_source"]) == (text, "original")


def test_a_429_is_retried_after_its_retry_after(pair, fake):
    fake.reset()
    fake.fail_next(429, times=1, retry_after=1)
    text = "Slow down a little, then carry on with this sentence."
    message = chat.post(pair.owner, pair.ws, pair.ch, text)
    settle(pair.owner, pair.ws, pair.ch, message)
    assert read(pair.member, pair.ws, pair.ch, message)["display_content"] == translated("ja", text)
    assert [c.status for c in fake.calls] == [429, 200]
    first, second = fake.arrivals
    assert second - first >= 0.95, second - first


def test_a_4xx_is_not_retried_and_fails_the_message_for_every_language(team, fake, room):
    fake.fail_next(400, times=40)
    text = "The engine refuses every part of this request."
    try:
        message = chat.post(team.owner, team.ws, room, text)
        settled = settle(team.owner, team.ws, room, message)
    finally:
        fake.reset()  # the failures left unused
    assert settled["translation_status"] == "failed"
    assert settled["translation_error"] == f"id, ja, th, zh-CN: {FAILED_400}"
    for user in team.readers.values():
        seen = read(user, team.ws, room, message)
        assert (seen["translation_status"], seen["display_content"], seen["display_source"]) == (
            "failed", text, "original")
        assert seen["translation_error"] == settled["translation_error"]


def test_a_4xx_for_one_language_makes_the_message_partial(team, fake, room):
    fake.fail_next(400, times=1)
    text = "Three of the four languages get this sentence."
    message = chat.post(team.owner, team.ws, room, text)
    settled = settle(team.owner, team.ws, room, message)
    calls = fake.calls
    assert sorted(c.status for c in calls) == [200, 200, 200, 400]
    failed_code = next(c.target for c in calls if c.status == 400)
    failed_tag = next(tag for tag, code in CODES.items() if code == failed_code)
    assert settled["translation_status"] == "partial"
    assert settled["translation_error"] == f"{failed_tag}: {FAILED_400}"
    for tag, user in team.readers.items():
        seen = read(user, team.ws, room, message)
        if tag == failed_tag:
            assert (seen["display_content"], seen["display_source"]) == (text, "original")
        else:
            assert (seen["display_content"], seen["display_source"]) == (translated(CODES[tag], text), "translated")


def test_a_call_that_times_out_is_retried(pair, fake):
    fake.reset()
    fake.stall_next(1, seconds=5)  # the stack's timeout is 2 s
    text = "The engine stalls once on this sentence and then answers."
    started = time.monotonic()
    message = chat.post(pair.owner, pair.ws, pair.ch, text)
    settle(pair.owner, pair.ws, pair.ch, message)
    assert time.monotonic() - started >= 2
    assert view(read(pair.member, pair.ws, pair.ch, message)) == (
        "completed", "en", translated("ja", text), "translated", None)
    assert [c.target for c in fake.calls] == ["ja", "ja"]


# 10. Long messages

def test_a_long_message_is_split_at_sentence_ends_and_joined_back(team, fake, room):
    sentences = [f"Sentence number {n} of the long report talks about item {n} in some detail." for n in range(1, 5)]
    sentences += ["Does anyone have questions about the plan?", "Please reply before the end of the week!",
                  "Thanks for reading all of this long update from the operations team."]
    text = " ".join(sentences)
    assert len(text) > MAX_CHARS
    message = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, message)
    for tag, code in CODES.items():
        pieces = sorted((t for c in fake.calls if c.target == code for t in c.texts), key=text.index)
        assert len(pieces) >= 2, pieces
        assert all(len(p) <= MAX_CHARS and p[-1] in ".!?" for p in pieces), pieces
        assert " ".join(pieces) == text
        shown = read(team.readers[tag], team.ws, room, message)["display_content"]
        assert shown == " ".join(translated(code, p) for p in pieces)
        positions = [shown.find(s.upper()) for s in sentences]
        assert -1 not in positions and positions == sorted(positions)


# 11. Direct conversations

# actors/translation.py `_pending` selects Message.channel and joined Channel columns but not
# Channel.id; peewee then sets `row.channel` to a Channel built from the joined columns, whose id is None, and
# that overwrites the foreign key, so `row.channel_id` is None. The Channel handed to reader_languages has no
# id, and in a direct conversation (kind "direct") the query for its participants finds nobody.


def test_a_direct_message_is_read_in_the_other_participants_language(tstack, fake):
    ada, kenji = translating.reader(tstack, "en", "Ada"), translating.reader(tstack, "ja", "Kenji")
    opened = ada.api.post("/direct-conversations", json={"participant_user_id": str(kenji.id)})
    assert opened.status_code == 201, opened.text
    conversation = opened.json()["data"]
    path = f"/direct-conversations/{conversation['id']}/messages"
    fake.reset()
    text = "Are you free for a quick call about the contract?"
    posted = ada.api.post(path, json={"content": text})
    assert posted.status_code == 201, posted.text
    assert wait_for(lambda: kenji.api.get(path).json()["data"][0]["translation_status"] != "pending", timeout=30)
    [seen] = kenji.api.get(path).json()["data"]
    assert view(seen) == ("completed", "en", translated("ja", text), "translated", None)
    [own] = ada.api.get(path).json()["data"]
    assert (own["display_content"], own["display_source"]) == (text, "original")
    listed = [c for c in kenji.api.get("/direct-conversations").json()["data"] if c["id"] == conversation["id"]]
    assert listed[0]["last_message"]["display_content"] == translated("ja", text)
    assert listed[0]["last_message"]["display_source"] == "translated"
    assert [c.target for c in fake.calls] == ["ja"]


def test_a_private_channel_is_translated_for_the_members_who_entered_it(team, fake):
    private = chat.channel(team.owner, team.ws, unique("inner"), visibility="private")
    added = team.owner.api.post(f"/workspaces/{team.ws['id']}/channels/{private['id']}/members",
                                json={"user_id": team.readers["ja"].id})
    assert added.status_code in (200, 201), added.text
    fake.reset()
    text = "Only the owner and one Japanese reader see this private note."
    message = chat.post(team.owner, team.ws, private, text)
    assert settle(team.owner, team.ws, private, message)["translation_status"] == "completed"
    seen = read(team.readers["ja"], team.ws, private, message)
    assert (seen["display_content"], seen["display_source"]) == (translated("ja", text), "translated")
    assert [c.target for c in fake.calls] == ["ja"]  # the others have not entered it


def test_one_batch_of_messages_of_two_workspaces_follows_each_ones_readers(team, tstack, fake, room, db):
    english = [translating.reader(tstack, "en", f"Batch English {i}") for i in range(2)]
    ws = chat.workspace(english[0], unique("Anglo"))
    chat.join(english[1], ws, by=english[0])
    ch = chat.channel(english[0], ws, "general")
    plain = chat.post(english[1], ws, ch, "In this workspace everyone reads English anyway.")
    settle(english[0], ws, ch, plain)
    text = "The team channel needs this one in four languages."
    babel = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, babel)
    # Both pending again, and sent in one Dramatiq message, as the outbox sends the messages of one commit.
    ids = [as_uuid(plain["id"]), as_uuid(babel["id"])]
    db.Message.update(translation_status="pending").where(db.Message.id.in_(ids)).execute()
    db.Translation.delete().where(db.Translation.message.in_(ids)).execute()
    fake.reset()
    run_python(tstack.env, "from actors import translation; "
                           f"translation.translate_messages.send({[str(i) for i in ids]!r})")
    settle(english[0], ws, ch, plain)
    settle(team.owner, team.ws, room, babel)
    for tag, user in team.readers.items():
        assert read(user, team.ws, room, babel)["display_content"] == translated(CODES[tag], text), tag
    stored = Counter(db.Translation.select(db.Translation.message).where(db.Translation.message.in_(ids)).tuples())
    assert (stored[(ids[0],)], stored[(ids[1],)]) == (0, 4)
    assert calls_of(fake, "everyone reads English") == []


# 12. The Sector dialect

@pytest.fixture(scope="module")
def sector_group(tstack, db):
    """A Sector account's group with RosettaChat readers of ja and th as members, and a channel."""
    owner = Account(f"http://127.0.0.1:{tstack.port}/v1/api")
    readers = {tag: translating.reader(tstack, tag, f"Sector {tag}") for tag in ("ja", "th")}
    uids = {tag: str(db.User.get_by_id(user.id).uid) for tag, user in readers.items()}
    made = owner.api.post("/group/", json={"name": "Sector Babel", "description": "", "members": []})
    assert made.status_code == 201, made.text
    group = made.json()
    for uid in uids.values():
        added = owner.api.post(f"/group/{group['id']}/members/{uid}")
        assert added.status_code == 200, added.text
    return SimpleNamespace(owner=owner, readers=readers, group=group, channel=owner.channel(group))


def test_sector_readers_ask_for_their_language_with_accept_language(sector_group, fake):
    s = sector_group
    fake.reset()
    text = "Quarterly numbers look solid across every region."
    posted = s.owner.post(s.channel, text)
    assert posted.status_code == 201, posted.text
    mid = posted.json()["id"]
    url = f"/group/{s.group['id']}/channel/{s.channel['id']}/message/{mid}"

    def get(language=None):
        answer = s.owner.api.get(url, headers={"Accept-Language": language} if language else {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert wait_for(lambda: get("ja")["translation_status"] != "pending", timeout=30)
    plain = get()
    assert set(plain) == SECTOR_MESSAGE and plain["body"] == text
    ja = get("ja, en;q=0.5")
    assert set(ja) == SECTOR_MESSAGE | {"language", "translation_status", "display_body", "display_language",
                                        "display_source"}
    assert (ja["body"], ja["language"], ja["translation_status"], ja["display_body"], ja["display_language"],
            ja["display_source"]) == (text, "en", "completed", translated("ja", text), "ja", "translated")
    assert (get("de, th;q=0.8")["display_body"], get("de, th;q=0.8")["display_language"]) == (
        translated("th", text), "th")
    for language in ("en-GB", "fr"):
        original = get(language)
        assert (original["display_body"], original["display_language"], original["display_source"]) == (
            text, "en", "original"), language
    assert {c.target for c in fake.calls} == {"ja", "th"} and len(fake.calls) == 2
    # The same message through RosettaChat, for a member of the group.
    ws, ch = {"id": as_ulid(s.group["id"])}, {"id": as_ulid(s.channel["id"])}
    seen = read(s.readers["ja"], ws, ch, {"id": as_ulid(mid)})
    assert (seen["display_content"], seen["display_source"]) == (translated("ja", text), "translated")

    def search(body, language=None):
        answer = s.owner.api.post("/message/search", json={"body": body},
                                  headers={"Accept-Language": language} if language else {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    found = search("[JA]")  # only in the Japanese translation
    assert [m["id"] for m in found] == [mid] and set(found[0]) == SECTOR_MESSAGE
    assert [m["id"] for m in search("[th] quarterly")] == [mid]
    assert [m["id"] for m in search("numbers look solid")] == [mid]  # the original's words
    assert search("[de]") == [] and search("[ja] quarterly numbers look liquid") == []
    [shown] = search("[ja]", "ja")
    assert (shown["display_body"], shown["display_source"]) == (translated("ja", text), "translated")


def test_a_sector_edit_is_translated_again(sector_group, fake):
    s = sector_group
    posted = s.owner.post(s.channel, "The shipment leaves the warehouse on Monday.")
    mid = posted.json()["id"]
    url = f"/group/{s.group['id']}/channel/{s.channel['id']}/message/{mid}"
    ja = {"Accept-Language": "ja"}
    assert wait_for(lambda: s.owner.api.get(url, headers=ja).json()["translation_status"] == "completed", timeout=30)
    edited = "The shipment leaves the warehouse on Wednesday."
    answer = s.owner.api.put(url, json={"body": edited}, headers=ja)
    assert answer.status_code == 201, answer.text
    assert answer.json()["display_body"] != translated("ja", "The shipment leaves the warehouse on Monday.")
    assert wait_for(lambda: s.owner.api.get(url, headers=ja).json()["display_body"] == translated("ja", edited),
                    timeout=30)
    assert s.owner.api.post("/message/search", json={"body": "[ja] the shipment leaves the warehouse on monday"}
                            ).json() == []


# 13. Health details, and a stack that does not translate

def test_health_details_say_how_translation_is_set_up(tstack, stack):
    on = translating.health(tstack)
    assert (on["status"], on["database"], on["redis"]) == ("ok", "ok", "ok")
    assert (on["translation"]["provider"], on["translation"]["enabled"], on["translation"]["detect"]) == (
        "libretranslate", True, "local")
    off = translating.health(stack)
    assert (off["translation"]["provider"], off["translation"]["enabled"]) == ("none", False)
    # And there, messages are marked skipped; readers see the original.
    owner, ja = translating.reader(stack, "en", "Untranslated owner"), translating.reader(stack, "ja", "Untranslated")
    ws = chat.workspace(owner, unique("Plain"))
    chat.join(ja, ws, by=owner)
    ch = chat.channel(owner, ws, "general")
    text = "Nobody translates anything on this deployment."
    message = chat.post(owner, ws, ch, text)
    assert view(settle(ja, ws, ch, message)) == ("skipped", None, text, "original", None)


# 14. One concurrency limit for every worker

def test_calls_in_flight_never_exceed_the_shared_concurrency(team, fake):
    channels = [chat.channel(team.owner, team.ws, unique("busy")) for _ in range(2)]
    assert wait_for(lambda: fake.in_flight == 0, timeout=10)
    fake.reset()
    fake.delay_s = 0.2
    texts = [f"Busy line {i} about the migration of the billing service." for i in range(20)]
    try:
        # Posted from 4 threads, each waiting for its commit: many commits, many translation messages.
        clients = [team.owner.with_token(team.owner.token) for _ in range(4)]

        def send(i):
            ch = channels[i % 2]
            answer = clients[i % 4].post(chat.messages_path(team.ws, ch), json={"content": texts[i]})
            assert answer.status_code == 201, answer.text

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(len(texts))))
        for ch in channels:
            all_settled(team.owner, team.ws, ch, len(texts) // 2, timeout=60)
    finally:
        fake.delay_s = 0
    print(f"\nmost calls in flight at once: {fake.max_in_flight} ({len(fake.calls)} calls)")
    assert 2 <= fake.max_in_flight <= 3


# SQLite: a transaction that reads before it writes must take the write lock at BEGIN, or its first write fails
# at once ("database is locked", no busy_timeout wait) while another process holds the lock or has committed since
# its read; then the message waits for a Dramatiq retry. Two worker processes make that routine.
def test_storing_translations_waits_for_another_writer(team, fake, room, db, tstack):
    since = len(tstack.worker_log.read_bytes())
    text = "Another writer holds the database while this is stored."
    fake.delay_s = 0.5
    try:
        message = chat.post(team.owner, team.ws, room, text)
        assert wait_for(lambda: len(calls_of(fake, "Another writer holds")) == 4, timeout=15)
        # The last call is in the engine: take the write lock (PostgreSQL: the message's row) until the worker
        # has had its answers for a while, so it stores while another writer holds the lock.
        with db.db.atomic() if ON_POSTGRES else db.db.atomic("IMMEDIATE"):
            if ON_POSTGRES:
                db.Message.select().where(db.Message.id == as_uuid(message["id"])).for_update().execute()
            assert wait_for(lambda: all(c.status for c in calls_of(fake, "Another writer holds")), timeout=15)
            time.sleep(0.4)  # the worker stores meanwhile
    finally:
        fake.delay_s = 0
    started = time.monotonic()
    settled = settle(team.owner, team.ws, room, message)
    waited = time.monotonic() - started
    assert settled["translation_status"] == "completed"
    assert read(team.readers["ja"], team.ws, room, message)["display_content"] == translated("ja", text)
    assert "database is locked" not in tstack.worker_said(since)
    assert waited < 0.5, waited  # stored the moment the lock was let go, not on a retry


# 15. The sweep of stuck messages

def test_a_message_left_pending_is_sent_again_by_the_sweep(team, fake, room, db):
    text = "This message will be stuck for a while and then recovered."
    message = chat.post(team.owner, team.ws, room, text)
    settle(team.owner, team.ws, room, message)
    mid = as_uuid(message["id"])
    db.Message.update(translation_status="pending", created_at=db.utcnow() - dt.timedelta(minutes=10)).where(
        db.Message.id == mid).execute()
    db.Translation.delete().where(db.Translation.message == mid).execute()
    stuck = read(team.readers["ja"], team.ws, room, message)
    assert (stuck["translation_status"], stuck["display_content"]) == ("pending", text)
    fake.reset()
    run_python(team.stack.env, "from actors import translation; translation.resend_stuck_translations.send()")
    settle(team.owner, team.ws, room, message)
    for tag, user in team.readers.items():
        assert view(read(user, team.ws, room, message)) == (
            "completed", "en", translated(CODES[tag], text), "translated", None), tag
    assert db.Translation.select().where(db.Translation.message == mid).count() == 4
    assert calls_of(fake, "stuck for a while") == []  # the cache had them
