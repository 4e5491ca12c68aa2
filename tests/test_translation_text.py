"""What translation does to text, without an engine: the spans kept out of it (markup.Protected),
long texts cut into pieces (markup.split), language tags and Accept-Language (domain/languages.py),
the in-process detector with the author's language as a tie-break, and the Redis gate every worker
shares (actors/limits.py; the only tests here that need the session stack, for its Redis)."""

from __future__ import annotations

import html
import random
import re
import threading
import time
import uuid

import pytest
import redis

import config
from actors.limits import Gate
from domain.languages import Detector, accepted, canonical, same, variant
from providers.translation.markup import Protected, split


def spans(text: str) -> list[str]:
    return Protected(text).spans


# markup.Protected: what never reaches an engine ------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("hi @bob, see you", ["@bob"]),
    ("ping @bob.smith.", ["@bob.smith"]),                  # the sentence's period is not the name's
    ("@dev-team heads up", ["@dev-team"]),
    ("ask @maria and @li_wei", ["@maria", "@li_wei"]),
    ("@小王 帮忙看下日志", ["@小王"]),
    ("posted in #general, thanks", ["#general"]),
    ("#random-stuff!", ["#random-stuff"]),
])
def test_mentions_and_channels_are_protected(text, expected):
    assert spans(text) == expected


def test_an_at_sign_inside_a_word_is_not_a_mention():
    assert spans("meet me at 5@home") == []
    assert spans("hi@bob") == []


@pytest.mark.parametrize("text, expected", [
    ("see https://example.com/a?b=1&c=2 now", ["https://example.com/a?b=1&c=2"]),
    ("see https://example.com/search?q=a+b&lang=en#top.", ["https://example.com/search?q=a+b&lang=en#top"]),
    ("go to https://example.com/path.", ["https://example.com/path"]),
    ("(details: https://example.com/x)", ["https://example.com/x"]),
    ("links https://a.example/one, http://b.example/two; ftp://c.example/f!", [
        "https://a.example/one", "http://b.example/two", "ftp://c.example/f"]),
    ("at www.example.com/docs?id=7.", ["www.example.com/docs?id=7"]),
    ("done: https://example.com/a_b-c~d%20e/", ["https://example.com/a_b-c~d%20e/"]),
])
def test_urls_are_protected_without_the_punctuation_that_ends_the_sentence(text, expected):
    assert spans(text) == expected


def test_url_markup_keeps_the_closing_punctuation_as_text():
    p = Protected("(see https://example.com/a?b=1&c=2).")
    assert p.markup == '(see <x id="0"/>).'


def test_a_url_ends_before_chinese_and_japanese_punctuation():
    assert spans("看这个 https://example.com/a。") == ["https://example.com/a"]
    assert spans("链接 https://example.com/a，谢谢大家") == ["https://example.com/a"]
    assert spans("リンク https://example.com/a、また明日") == ["https://example.com/a"]
    assert spans("见 www.example.com。") == ["www.example.com"]


def test_urls_and_mentions_right_after_chinese_or_japanese_are_protected():
    assert spans("请看https://example.com/a 谢谢") == ["https://example.com/a"]
    assert spans("谢谢@小王 帮忙") == ["@小王"]
    assert spans("ありがとう@tanaka さん") == ["@tanaka"]


@pytest.mark.parametrize("text, expected", [
    ("mail bob@example.com now", ["bob@example.com"]),
    ("write to a.b+tag@mail.example.co.uk.", ["a.b+tag@mail.example.co.uk"]),
    ("first.last@ex-ample.org, please", ["first.last@ex-ample.org"]),
])
def test_email_addresses_are_protected_whole(text, expected):
    assert spans(text) == expected


def test_inline_and_fenced_code_are_protected():
    assert spans("run `ls -la | grep x` first") == ["`ls -la | grep x`"]
    fenced = "```python\nif a < b and c > d:\n    print('&amp;')\n```"
    p = Protected(f"try this:\n{fenced}\nthen `make` it")
    assert p.spans == [fenced, "`make`"]
    assert p.markup == 'try this:\n<x id="0"/>\nthen <x id="1"/> it'
    assert "print" not in p.words and "make" not in p.words


@pytest.mark.parametrize("text, expected", [
    ("nice 👍", ["👍"]),
    ("skin tones 👍🏽 and 👋🏿", ["👍🏽", "👋🏿"]),
    ("family 👨‍👩‍👧‍👦 coder 👩🏽‍💻", ["👨‍👩‍👧‍👦", "👩🏽‍💻"]),
    ("pride 🏳️‍🌈 heart ❤️", ["🏳️‍🌈", "❤️"]),
    ("flags 🇯🇵 🇹🇭 🇮🇩", ["🇯🇵", "🇹🇭", "🇮🇩"]),
    ("keycaps 1️⃣ #️⃣ *️⃣", ["1️⃣", "#️⃣", "*️⃣"]),
    ("done ✅ star ⭐", ["✅", "⭐"]),
    ("party🎉time", ["🎉"]),
])
def test_emoji_are_protected_with_their_modifiers_joiners_flags_and_keycaps(text, expected):
    assert spans(text) == expected


def test_shortcodes_are_protected():
    assert spans("nice :smile: :+1: :thumbs_up:") == [":smile:", ":+1:", ":thumbs_up:"]


def test_markup_escapes_the_text_and_numbers_the_spans():
    p = Protected("@bob says a < b && c > d &amp; 👍 https://x.example/?a=1&b=2")
    assert p.spans == ["@bob", "👍", "https://x.example/?a=1&b=2"]
    assert p.markup == '<x id="0"/> says a &lt; b &amp;&amp; c &gt; d &amp;amp; <x id="1"/> <x id="2"/>'
    assert p.words == "says a < b && c > d &amp;"


def test_a_placeholder_typed_by_a_user_is_protected_like_code():
    # Never sent as text: LibreTranslate unescapes its answers, so it would come back as a real tag.
    p = Protected('type <x id="9"/> to <x id="0"/> it')
    assert p.spans == ['<x id="9"/>', '<x id="0"/>']
    assert p.markup == 'type <x id="0"/> to <x id="1"/> it'
    assert p.restore(p.markup) == 'type <x id="9"/> to <x id="0"/> it'
    assert p.restore(html.unescape(p.markup), escaped=False) == 'type <x id="9"/> to <x id="0"/> it'


def test_only_spans_means_no_words():
    for text in ["👍🏽 https://example.com 🎉", "@bob :tada: 1️⃣", "`code`", "🇯🇵🇹🇭"]:
        assert Protected(text).words == "", text


# restore: the round trip ----------------------------------------------------------------------------

FRAGMENTS = [
    "hello", "world", "the", "build", "is", "green", " ", " ", " ", "  ", "\n", "\n\n", "\t", ".", ",", "!", "?",
    "<", ">", "&", "&amp;", "&lt;", "&gt;", "&#39;", "&nbsp;", '"', "'", "<b>", "</b>", "<br/>", "a<b", "a>b",
    "AT&T", "R&D", "x &y; z",
    "@bob", "@bob.smith", "#general", "#dev-ops", "bob@example.com", "https://example.com/a?b=1&c=2",
    "(https://example.com/x)", "https://example.com/end.", "www.example.org/p?q=<1>", "`a < b`", "```\nx && y\n```",
    "👍🏽", "👨‍👩‍👧", "🇯🇵", "1️⃣", "❤️", ":smile:", ":+1:",
    "中文", "日本語のテキスト", "สวัสดีครับ", "terima kasih", "。", "！", "？", "ฯ",
]
USER_PLACEHOLDERS = ['<x id="9"/>', '<x id="0"/>', "<x>", "</x>", "<X ID='1'/>", '<x id="2"></x>']


def samples(count: int, fragments: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(fragments) for _ in range(rng.randint(0, 25))) for _ in range(count)]


CURATED = [
    "", " ", "plain text", "a < b > c & d", "&amp; stays &amp;", "&lt;x id=&quot;0&quot;/&gt;",
    'a <x id="9"/> b', 'x <x id="0"/> @bob <x id="0"/>', "5 > 3 && 2 < 4", "Tom & Jerry &copy; 2024",
    "  leading and trailing  ", "line one\nline two\n\n", "@bob: see https://example.com/?a=1&b=2 & `x<y`",
]


def test_restore_of_the_markup_itself_gives_back_every_text_exactly():
    texts = CURATED + samples(1500, FRAGMENTS + USER_PLACEHOLDERS, seed=7)
    for text in texts:
        p = Protected(text)
        assert p.restore(p.markup) == text, (text, p.markup)


def test_restore_unescaped_answers_gives_back_texts_with_ampersands_and_angle_brackets():
    """LibreTranslate html.unescape()s its answers: `escaped=False` reads them as text."""
    texts = [t for t in CURATED + samples(1500, FRAGMENTS, seed=11)
             if not re.search(r"</?x\b", t, re.IGNORECASE)]
    assert any("&amp;" in t for t in texts) and any("<" in t for t in texts)
    for text in texts:
        p = Protected(text)
        assert p.restore(html.unescape(p.markup), escaped=False) == text, (text, p.markup)


def test_restore_unescaped_answers_keeps_placeholders_the_user_typed():
    for text in ['type <x id="9"/> here', "see </x> or <x>", 'swap <x id="0"/> for @bob']:
        p = Protected(text)
        assert p.restore(html.unescape(p.markup), escaped=False) == text


def test_restore_puts_spans_where_the_engine_left_their_tags():
    p = Protected("@bob look at https://example.com/a?b=1&c=2 👍🏽")
    answer = 'Mira <x id="2"/> <x id="1"/> dice <x id="0"/> &amp; co'
    assert p.restore(answer) == "Mira 👍🏽 https://example.com/a?b=1&c=2 dice @bob & co"
    # The spellings engines send the same tag back in.
    assert p.restore("<x id='0'></x> <X ID=\"1\" /> <x id=2>") == "@bob https://example.com/a?b=1&c=2 👍🏽"


def test_restore_appends_a_span_whose_tag_the_engine_lost():
    p = Protected("hi @bob, see https://example.com/x 👍")
    assert p.restore('hola <x id="0"/>, mira ') == "hola @bob, mira https://example.com/x 👍"
    assert p.restore("").split() == ["@bob", "https://example.com/x", "👍"]


def test_restore_drops_tags_it_did_not_make_and_repeats_of_its_own():
    p = Protected("@bob hi")
    assert p.restore('<x id="0"/> hola <x id="0"/><x id="7"/></x>') == "@bob hola "


# markup.split ------------------------------------------------------------------------------------------

TAG_OR_ENTITY = re.compile(r'<x id="\d+"/>|&(?:amp|lt|gt);')


def well_formed(piece: str) -> bool:
    """No tag or entity cut: what is left without whole tags and entities has no `<`, `>` or `&`."""
    return not re.search(r"[<>&]", TAG_OR_ENTITY.sub("", piece))


def check_split(markup: str, limit: int) -> list[tuple[str, str]]:
    pieces = split(markup, limit)
    assert "".join(piece + gap for piece, gap in pieces) == markup, (markup, limit, pieces)
    for piece, gap in pieces:
        assert len(piece) <= limit, (piece, limit)
        assert gap.strip() == "", gap
        assert well_formed(piece), (markup, limit, piece)
    return pieces


def test_a_text_within_the_limit_is_one_piece():
    assert split("Hello there. How are you?", 100) == [("Hello there. How are you?", "")]
    assert split("", 10) == [("", "")]


def test_split_cuts_at_the_ends_of_sentences():
    assert check_split("One two. Three four! Five six? Seven.", 14) == [
        ("One two.", " "), ("Three four!", " "), ("Five six?", " "), ("Seven.", "")]
    assert check_split("你好吗？我很好。谢谢你！再见。", 5) == [("你好吗？", ""), ("我很好。", ""), ("谢谢你！", ""), ("再见。", "")]
    assert check_split("元気？うん、元気。また明日！", 7) == [("元気？", ""), ("うん、元気。", ""), ("また明日！", "")]
    assert check_split("first line\nsecond line\n\nthird one", 13) == [
        ("first line", "\n"), ("second line", "\n\n"), ("third one", "")]
    assert check_split("สวัสดีครับฯ ไปไหนมาครับ๚ กินข้าวยัง", 14) == [
        ("สวัสดีครับฯ", " "), ("ไปไหนมาครับ๚", " "), ("กินข้าวยัง", "")]


def test_split_packs_sentences_together_up_to_the_limit():
    assert check_split("A b. C d. E f. G h.", 10) == [("A b. C d.", " "), ("E f. G h.", "")]


def test_a_sentence_longer_than_the_limit_is_cut_at_spaces_then_anywhere():
    pieces = check_split("one two three four five six seven", 11)  # a piece's limit counts the gap after it
    assert [p for p, _ in pieces] == ["one two", "three four", "five six", "seven"]
    pieces = check_split("x" * 5000, 2000)
    assert [len(p) for p, _ in pieces] == [2000, 2000, 1000]


def test_split_never_cuts_inside_a_tag_or_an_entity():
    markup = Protected("aaaa @bob bbbb && cccc <<>> dddd @carol eeee & f").markup
    for limit in range(12, len(markup) + 1):
        check_split(markup, limit)


def test_split_keeps_the_text_and_the_limit_on_many_inputs():
    # Words of at most 25 characters and a limit above that: every cut can fall at a space, clear of
    # the two bugs below (a whitespace-only piece, a piece of no-space text that opens with a tag).
    words = ["word", "hello", "a", "translation", "中文字", "สวัสดี", "&", "<", ">", "one.", "two!", "why?", "好。",
             "行！", "@bob", "https://ex.com/?a=1&b=2", "👍🏽", "x" * 25, "&amp;", "line\nnext", "end.\n\nNew", "ok…",
             "จบฯ", '<x id="3"/>']
    rng = random.Random(3)
    for _ in range(1500):
        markup = Protected(" ".join(rng.choice(words) for _ in range(rng.randint(0, 80)))).markup
        check_split(markup, rng.randint(30, 120))


def test_a_long_text_with_no_spaces_is_cut_into_pieces_of_the_limit():
    for text in ["x" * 5000, "好" * 5000, "ก" * 4999, "ab&cd" * 1000]:
        markup = Protected(text).markup
        pieces = check_split(markup, 2000)
        assert all(len(p) >= 1990 for p, _ in pieces[:-1]), [len(p) for p, _ in pieces]


def test_split_never_cuts_a_tag_that_starts_a_piece_of_text_without_spaces():
    check_split(Protected("👍" + "好" * 3000).markup, 2000)                 # a long message opening with emoji
    check_split(Protected("好" * 1995 + "🎉" + "好" * 3000).markup, 2000)   # an emoji at an unlucky place


def test_split_keeps_a_paragraph_break_that_fits_with_neither_neighbour():
    check_split("x" * 1999 + ".\n\n" + "y" * 2500, 2000)
    check_split("word " * 399 + "end? \n\n" + "z" * 2500, 2000)


# Language tags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag, expected", [
    ("zh-cn", "zh-CN"), ("ZH_TW", "zh-TW"), ("zh_hant", "zh-Hant"), ("EN", "en"), ("en-us", "en-US"),
    ("pt-br", "pt-BR"), (" ja ", "ja"), ("sr-latn-rs", "sr-Latn-RS"), ("es-419", "es-419"),
    ("zh-hans-cn", "zh-Hans-CN"),
])
def test_canonical_spells_tags_in_their_usual_case(tag, expected):
    assert canonical(tag) == expected


def test_same_language_and_script_need_no_translation():
    assert same("en", "en-US") and same("en-US", "en-GB") and same("EN", "en-gb")
    assert same("zh", "zh-CN") and same("zh-CN", "zh-Hans") and same("zh-SG", "zh-CN")
    assert same("zh-TW", "zh-Hant") and same("zh-HK", "zh-TW")
    assert not same("zh-CN", "zh-TW") and not same("zh", "zh-Hant")
    assert not same("ja", "zh-CN") and not same("id", "ms") and not same("th", "en")
    assert same("pt", "pt-BR")
    assert (variant("zh"), variant("zh-TW"), variant("en-GB"), variant("ja")) == ("zh-Hans", "zh-Hant", "en", "ja")


def test_accepted_orders_accept_language_by_weight():
    assert accepted("ja, en;q=0.5, *;q=0.1, zh-cn;q=0.8") == ["ja", "zh-CN", "en"]
    assert accepted("en-US,en;q=0.9") == ["en-US", "en"]
    assert accepted("th;q=0.5, id;q=0.5, en") == ["en", "th", "id"]  # ties keep the header's order
    assert accepted("fr ; q=0.2 , de;Q=0.7") == ["de", "fr"]


def test_accepted_drops_q_zero_the_wildcard_and_garbage():
    assert accepted("en;q=0, fr;q=0.0, de") == ["de"]
    assert accepted("*") == []
    assert accepted("garbage!!, ;q=1, en;q=abc, 1234, th;q=0.9, , ,id") == ["id", "th"]
    assert accepted("") == [] and accepted(None) == []


# The detector --------------------------------------------------------------------------------------------

CLEAR = {
    "en": ["Can you check the deployment logs before the meeting tomorrow?",
           "I think the new release fixed the login problem for most of our users."],
    "zh-CN": ["我们明天早上开会讨论这个问题，请准时参加。", "这个版本已经修复了登录的问题，大家可以试一下。"],
    "ja": ["明日の会議の前にログを確認してもらえますか？", "新しいバージョンでログインの問題は直りました。"],
    "th": ["พรุ่งนี้เราจะประชุมกันตอนเช้า อย่าลืมนะครับ", "เวอร์ชันใหม่แก้ปัญหาการเข้าสู่ระบบแล้วครับ"],
    "id": ["Tolong cek log server sebelum rapat besok pagi ya.",
           "Versi baru sudah memperbaiki masalah login untuk sebagian besar pengguna."],
}


@pytest.fixture(scope="module")
def detector() -> Detector:
    codes = config.settings().translation.detect_languages
    return Detector([code.strip() for code in codes.split(",") if code.strip()])


def test_the_detector_finds_the_language_of_clear_lines(detector):
    for tag, lines in CLEAR.items():
        for line in lines:
            assert detector.detect(line) == tag, line
            assert detector.detect(line, tag) == tag, line


def test_the_detector_finds_none_in_emoji_and_links(detector):
    for text in ["👍🏽 https://example.com/x 🎉", "@bob :tada: 1️⃣ https://x.io", "🇯🇵🇹🇭", "   ", "123 456", "!!! ..."]:
        assert detector.detect(Protected(text).words) is None, text
        assert detector.detect(Protected(text).words, "en") is None, text


def test_the_authors_language_decides_a_short_ambiguous_line(detector):
    assert detector.detect("ok", "id") == "id"
    assert detector.detect("ok", "en") == "en"
    assert detector.detect("sip", "id") == "id"


def test_the_authors_language_does_not_override_a_clear_longer_line(detector):
    assert detector.detect(CLEAR["en"][0], "id") == "en"
    assert detector.detect(CLEAR["en"][1], "ja") == "en"
    assert detector.detect(CLEAR["id"][1], "en") == "id"
    assert detector.detect(CLEAR["th"][0], "ja") == "th"
    assert detector.detect(CLEAR["ja"][0], "zh-CN") == "ja"


def test_the_authors_chinese_script_is_kept(detector):
    assert detector.detect("我們明天早上開會討論這個問題，請準時參加。", "zh-TW") == "zh-TW"
    assert detector.detect(CLEAR["zh-CN"][0], "zh-TW") == "zh-TW"
    assert detector.detect(CLEAR["zh-CN"][0], "zh-CN") == "zh-CN"
    assert detector.detect(CLEAR["en"][0], "en-GB") == "en-GB"


def test_traditional_chinese_without_a_hint_is_not_taken_for_simplified(detector):
    assert detector.detect("我們明天早上開會討論這個問題，請準時參加。") != "zh-CN"
    assert detector.detect("我們明天早上開會討論這個問題，請準時參加。", "en") != "zh-CN"


# The gate (actors/limits.py), on the session stack's Redis ----------------------------------------------


@pytest.fixture(scope="module")
def client(stack):
    connection = redis.Redis.from_url(stack.settings.redis_url)
    yield connection
    connection.close()


@pytest.fixture
def new_gate(client):
    """Gates under a key of the test's own, deleted after it."""
    key = f"test-gate:{uuid.uuid4().hex}"

    def make(**kwargs) -> Gate:
        return Gate(client, key, **kwargs)

    yield make
    leftover = client.keys(f"{key}:*")
    if leftover:
        client.delete(*leftover)


def run_threads(count: int, work) -> None:
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


def test_the_gate_holds_calls_in_flight_to_its_concurrency(new_gate):
    gate = new_gate(concurrency=2)
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def work():
        with gate.slot():
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.1)
            with lock:
                state["now"] -= 1

    started = time.monotonic()
    run_threads(6, work)
    elapsed = time.monotonic() - started
    assert state["most"] == 2  # two at once, never three
    # Three rounds of two, not one round. No upper bound: `most` shows they ran two at a time, and a
    # loaded CI machine once took 1.1 s for the three rounds.
    assert elapsed >= 0.28, elapsed


def test_the_gate_spaces_starts_by_its_rate(new_gate):
    gate = new_gate(concurrency=10, rate_per_s=20)
    starts, lock = [], threading.Lock()

    def work():
        with gate.slot():
            with lock:
                starts.append(time.monotonic())

    run_threads(6, work)
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.045, gaps
    assert starts[-1] - starts[0] < 0.5, gaps


def test_a_pause_holds_back_the_next_slot(new_gate):
    gate = new_gate(concurrency=4)
    with gate.slot():
        pass  # an open gate answers at once
    gate.pause(0.3)
    started = time.monotonic()
    with gate.slot():
        waited = time.monotonic() - started
    assert 0.29 <= waited < 0.6, waited
    gate.pause(0.2)
    gate.pause(0.05)  # a shorter pause does not shorten the longer one
    started = time.monotonic()
    with gate.slot():
        assert time.monotonic() - started >= 0.19


def test_a_slot_whose_holder_died_frees_when_its_lease_runs_out(new_gate):
    gate = new_gate(concurrency=1, lease_s=0.3)
    # A holder that dies: it takes the slot (as slot() does) and never gives it back.
    assert gate._acquire(keys=gate.keys, args=[gate.lease_ms, gate.concurrency, gate.spacing_ms, "dead"]) == 0
    started = time.monotonic()
    with gate.slot():
        waited = time.monotonic() - started
    assert 0.2 <= waited < 0.6, waited


def test_a_slot_held_by_an_abandoned_block_frees_after_its_lease(new_gate):
    gate = new_gate(concurrency=1, lease_s=0.3)
    held = gate.slot()
    held.__enter__()  # entered, never exited (kept referenced, so no garbage collector releases it)
    started = time.monotonic()
    with gate.slot():
        waited = time.monotonic() - started
    assert 0.2 <= waited < 0.6, waited
    del held
