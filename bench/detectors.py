"""Compare in-process language detectors on short chat lines (lingua vs py3langid).

What it measures, for each configuration in CONFIGS (each one in a fresh child process):

* accuracy per language and overall on bench/chat_lines.py: LINES (short chat lines), the "very
  short" ones among them (<= 3 word-ish units, see `units()`), and LONGER (2-3 sentences);
  how often Indonesian comes out as Malay ("ms"), and the most common other misses;
* speed: mean and p99 of one detection after a warm-up pass, both for the plain "which language"
  call and for the per-language confidence call the tie-break needs;
* cold start: import, building the detector, the first detection, and the first pass over the
  whole corpus (lingua loads its models lazily, on the first text that needs them);
* memory: process RSS added by import + build + the warm-up pass, and the peak (ru_maxrss),
  both over the child's RSS before the import;
* disk: installed size of the package (from its RECORD) and of its runtime dependencies;
* that nothing is downloaded: the children run in a network namespace of their own (no network at
  all, when `unshare -rn` works here), an audit hook records every Python-level socket use and
  file opened for writing, and cache/config folders under $HOME are compared before and after;
* the tie-break with the author's preferred language as a hint, with the hint right, with hint
  "en" for everyone, and with a wrong hint (each of the four wrong tags in turn, averaged).

Detector outputs map to our tags by ISO 639-1 code, except "zh" -> "zh-CN". An abstention (lingua's
None, py3langid's "und"/"zxx") counts as wrong.

Run it from the repository root with both packages installed (not in the project's venv):

    python3.11 -m venv /tmp/detvenv
    /tmp/detvenv/bin/pip install lingua-language-detector==2.1.1 py3langid==0.4.0 psutil
    /tmp/detvenv/bin/python bench/detectors.py [--only lingua-all,langid-20] [--rounds 3] [--dump rows.json]

(lingua 2.2.0 ships wheels for Python >= 3.12 only and no sdist, so 2.1.1 is the newest on 3.11.)
Takes under a minute; the lingua-all-preload child needs ~1.3 GB of memory.

"stripped" re-runs the short lines as the translation worker sees them: without URLs, @mentions,
emoji and the other spans that providers/translation/markup.py protects (`Protected(text).words`),
when that file is there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import percentile, warn_if_busy  # noqa: E402
from chat_lines import LINES, LONGER  # noqa: E402

import psutil  # noqa: E402

TAGS = list(LINES)  # "en", "zh-CN", "ja", "th", "id"
# ~20 languages a team chat in our markets is likely to see (Malay and Tagalog on purpose: they
# are the usual confusions for Indonesian).
COMMON_20 = ["en", "zh", "ja", "th", "id", "ms", "ko", "vi", "tl", "es",
             "fr", "de", "pt", "it", "ru", "ar", "hi", "tr", "nl", "pl"]
FIRST_TEXT = "can you review my PR?"  # the "first detection" of the cold start


def to_tag(code: str | None) -> str | None:
    """A detector's ISO 639-1 code as our tag; None for an abstention."""
    if code in (None, "und", "zxx"):
        return None
    return "zh-CN" if code == "zh" else code


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_OTHER = re.compile(r"[^\W\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\u0e00-\u0e7f]")


def units(text: str) -> int:
    """Word-ish size: a space-separated token is 1, a CJK run counts 1 per 2 characters, Thai 1 per 4."""
    n = 0
    for token in text.split():
        cjk, thai, other = len(_CJK.findall(token)), len(_THAI.findall(token)), bool(_OTHER.search(token))
        if cjk:
            n += math.ceil(cjk / 2) + other
        elif thai:
            n += math.ceil(thai / 4) + other
        else:
            n += 1
    return n


def very_short(text: str) -> bool:
    return units(text) <= 3


def worker_words():
    """`Protected(text).words` from providers/translation/markup.py (the text the worker detects on:
    without URLs, mentions, emoji...), loaded by path so none of the project's dependencies are
    needed; None when the file is not there."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "providers" / "translation" / "markup.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_sector_markup", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return lambda text: module.Protected(text).words
    except Exception:  # a work-in-progress file that doesn't load: no stripped column
        return None


# ----------------------------------------------------------------------------- configurations
# Each builder imports its package and returns (detect, confidences):
#   detect(text) -> ISO code or None                 the plain call
#   confidences(text) -> [(ISO code, p), ...]        all languages, best first, p in [0, 1]

def _lingua(mode: str):
    def build():
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        if mode == "20":
            builder = LanguageDetectorBuilder.from_iso_codes_639_1(
                *[IsoCode639_1.from_str(c) for c in COMMON_20])
        else:
            builder = LanguageDetectorBuilder.from_all_languages()
        if mode == "low":
            builder = builder.with_low_accuracy_mode()
        if mode == "preload":
            builder = builder.with_preloaded_language_models()
        detector = builder.build()

        def detect(text):
            language = detector.detect_language_of(text)
            return None if language is None else language.iso_code_639_1.name.lower()

        def confidences(text):
            return [(c.language.iso_code_639_1.name.lower(), c.value)
                    for c in detector.compute_language_confidence_values(text)]

        return detect, confidences
    return build


def _langid(restricted: bool):
    def build():
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if restricted:
            identifier.set_languages(COMMON_20)

        def detect(text):
            return identifier.classify(text)[0]

        def confidences(text):
            return identifier.rank(text)

        return detect, confidences
    return build


CONFIGS = {
    "lingua-all": ("lingua-language-detector", "all 75 languages, high accuracy (default)", _lingua("all")),
    "lingua-all-low": ("lingua-language-detector", "all 75 languages, .with_low_accuracy_mode()", _lingua("low")),
    "lingua-20": ("lingua-language-detector", "from_iso_codes_639_1(20 common), high accuracy", _lingua("20")),
    "lingua-all-preload": ("lingua-language-detector", "lingua-all + .with_preloaded_language_models()",
                           _lingua("preload")),
    "langid-all": ("py3langid", "all 140 labels, norm_probs=True", _langid(False)),
    "langid-20": ("py3langid", "set_languages(20 common), norm_probs=True", _langid(True)),
}


# ----------------------------------------------------------------------------- the child

def _audit_log():
    """Record Python-level network use and files opened for writing (an audit hook)."""
    events: list[str] = []
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def hook(event, args):
        if event.startswith(("socket.", "urllib.", "http.")):
            events.append(f"{event} {args!r}"[:200])
        elif event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                     (isinstance(flags, int) and flags & write_flags)
            if writes and not str(path).startswith("/dev/"):
                events.append(f"open-for-write {path}")

    sys.addaudithook(hook)
    return events


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def child(name: str, rounds: int) -> dict:
    strip = worker_words()  # before the audit hook: reading the project's file is not the detector's
    events = _audit_log()
    rss0 = rss_mb()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    build = CONFIGS[name][2]

    t0 = time.perf_counter()
    detect, confidences = build()  # import + build (the imports are inside the builder)
    t1 = time.perf_counter()
    detect(FIRST_TEXT)
    t2 = time.perf_counter()

    corpus = [("short", tag, text) for tag, texts in LINES.items() for text in texts] + \
             [("longer", tag, text) for tag, texts in LONGER.items() for text in texts]
    for _, _, text in corpus:  # warm-up pass: loads whatever models the corpus needs
        detect(text)
        confidences(text)
    t3 = time.perf_counter()
    rss_warm = rss_mb()

    rows = []
    for kind, tag, text in corpus:
        ranked = confidences(text)
        by_tag: dict[str, float] = {}
        for code, p in ranked:
            t = to_tag(code)
            if t is not None:
                by_tag.setdefault(t, p)
        top_code, top_p = (ranked[0] if ranked and ranked[0][1] > 0 else (None, 0.0))
        pred = detect(text)
        words = strip(text) if strip else None
        rows.append({"kind": kind, "true": tag, "text": text, "pred": pred,
                     "pred_stripped": None if words is None else (pred if words == text else detect(words)),
                     "top": top_code, "top_p": top_p, "second_p": ranked[1][1] if len(ranked) > 1 else 0.0,
                     "p": {t: by_tag.get(t, 0.0) for t in TAGS}})

    shorts = [text for kind, _, text in corpus if kind == "short"]
    longers = [text for kind, _, text in corpus if kind == "longer"]
    timing = {}
    for label, fn, texts in (("detect", detect, shorts), ("conf", confidences, shorts),
                             ("detect_long", detect, longers)):
        samples = []
        for _ in range(rounds):
            for text in texts:
                s = time.perf_counter_ns()
                fn(text)
                samples.append((time.perf_counter_ns() - s) / 1000)
        timing[label] = {"mean": sum(samples) / len(samples), "p99": percentile(samples, 99), "n": len(samples)}

    return {
        "name": name,
        "import_build_ms": (t1 - t0) * 1000, "first_ms": (t2 - t1) * 1000, "warm_pass_ms": (t3 - t2) * 1000,
        "rss_added_mb": rss_warm - rss0,
        "peak_added_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - maxrss0,
        "timing": timing, "rows": rows, "events": events, "stripped": strip is not None,
    }


# ----------------------------------------------------------------------------- the parent

def installed_mb(dist_name: str, seen: set[str] | None = None, deps: bool = True) -> tuple[float, list[str]]:
    """Installed size of a distribution (and of its runtime dependencies) in MB, and their names."""
    seen = set() if seen is None else seen
    key = dist_name.lower().replace("_", "-")
    if key in seen:
        return 0.0, []
    seen.add(key)
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return 0.0, []
    size = 0
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        if p.is_file():
            size += p.stat().st_size
    names = [f"{dist.metadata['Name']}=={dist.version}"]
    for req in (dist.requires or []) if deps else []:
        if "extra ==" in req:
            continue
        dep = re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]
        dep_size, dep_names = installed_mb(dep, seen)
        size += dep_size * 2**20
        names += dep_names
    return size / 2**20, names


def snapshot(dirs: list[Path]) -> dict[str, tuple[float, int]]:
    files = {}
    for d in dirs:
        if d.is_dir():
            for root, _, names in os.walk(d):
                for n in names:
                    p = os.path.join(root, n)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue
                    files[p] = (st.st_mtime, st.st_size)
    return files


def isolation_prefix() -> list[str]:
    """`unshare -rn`: the child gets a network namespace of its own, with no interface up."""
    if shutil.which("unshare"):
        try:
            ok = subprocess.run(["unshare", "-rn", sys.executable, "-c",
                                 "import socket; print([n for _, n in socket.if_nameindex()])"],
                                capture_output=True, text=True, timeout=20)
            if ok.returncode == 0 and ok.stdout.strip() == "['lo']":  # loopback only, and it is down
                return ["unshare", "-rn"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


def accuracy(rows, key="pred") -> float:
    return 100 * sum(to_tag(r[key]) == r["true"] for r in rows) / len(rows) if rows else float("nan")


def tie_break(row, hint: str, margin: float, short_chars: int, lead: float) -> str | None:
    """The detector's answer, or the hint when the text is short (< short_chars characters or at most
    3 word-ish units, see `units()`: a CJK or Thai text has no spaces) or the top is not clearly ahead (top - second < lead) and the hint's
    confidence is within `margin` of the top (relative: p_hint >= (1 - margin) * p_top). An
    abstention always takes the hint. Written to be copied as it is into the worker."""
    top = to_tag(row["top"])
    if top is None:
        return hint
    if top == hint:
        return top
    text = row["text"].strip()
    ambiguous = len(text) < short_chars or units(text) <= 3 or row["top_p"] - row["second_p"] < lead
    if ambiguous and row["p"].get(hint, 0.0) >= (1 - margin) * row["top_p"]:
        return hint
    return top


def hinted_accuracy(rows, margin, short_chars, lead, hints: str) -> float:
    ok = n = 0
    for r in rows:
        if hints == "true":
            choices = [r["true"]]
        elif hints == "en":
            choices = ["en"]
        else:  # "wrong": each wrong tag in turn
            choices = [t for t in TAGS if t != r["true"]]
        for h in choices:
            ok += tie_break(r, h, margin, short_chars, lead) == r["true"]
            n += 1
    return 100 * ok / n


def _rounded(res) -> list[dict[str, float]]:
    return [{t: round(p, 6) for t, p in r["p"].items()} for r in res["rows"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated configuration names")
    ap.add_argument("--rounds", type=int, default=3, help="timed passes over the short lines")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dump", help="write every row (text, prediction, confidences) to this JSON file")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.rounds), ensure_ascii=False))
        return

    names = [n for n in (args.only.split(",") if args.only else CONFIGS) if n]
    versions = {}
    for n in names:
        dist = CONFIGS[n][0]
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{dist} is not installed in {sys.executable}: see the docstring")
    busy = warn_if_busy()
    prefix = isolation_prefix()
    home = Path.home()
    watched = [home / ".cache", home / ".local", home / ".config",
               Path(os.environ.get("XDG_CACHE_HOME", home / ".cache"))]
    for dist in versions:
        d = importlib.metadata.distribution(dist)
        watched.append(Path(d.locate_file("")))  # site-packages: nothing written beside the package
    before = snapshot(watched)

    results = {}
    for n in names:
        proc = subprocess.run(prefix + [sys.executable, __file__, "--child", n, "--rounds", str(args.rounds)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{n} failed:\n{proc.stderr}")
        results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    after = snapshot(watched)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p)
                     and "__pycache__" not in p)

    print(f"Python {sys.version.split()[0]}; " + ", ".join(f"{k}=={v}" for k, v in versions.items()) +
          f"; machine {busy:.0f}% busy before the start; {len(LINES['en'])}-ish short lines x {len(TAGS)} "
          f"languages, {sum(map(len, LONGER.values()))} longer")
    print(f"children ran {'with NO network (unshare -rn)' if prefix else 'WITH the network (unshare unavailable)'}")
    print()

    # -- accuracy
    hdr = f"{'config':<19}" + "".join(f"{t:>7}" for t in TAGS) + \
        f"{'SHORT':>8}{'v.short':>8}{'LONGER':>8}{'stripped':>9}{'id→ms':>7}  most common misses (short lines)"
    print("Accuracy %, no hint (short lines per language; v.short = <= 3 word-ish units, n="
          f"{sum(very_short(t) for v in LINES.values() for t in v)}; stripped = SHORT without URLs/@mentions/"
          "emoji, as the worker detects; id→ms over all Indonesian texts)")
    print(hdr)
    print("-" * len(hdr))
    same = {n: m for n in results for m in results if m < n and m.split("-")[0] == n.split("-")[0]
            and [r["pred"] for r in results[n]["rows"]] == [r["pred"] for r in results[m]["rows"]]
            and _rounded(results[n]) == _rounded(results[m])}  # (summation order differs in the last bits)
    for n, res in results.items():
        if n in same:
            print(f"{n:<19}(the same detections and confidences as {same[n]})")
            continue
        rows = res["rows"]
        short = [r for r in rows if r["kind"] == "short"]
        longer = [r for r in rows if r["kind"] == "longer"]
        per = "".join(f"{accuracy([r for r in short if r['true'] == t]):>7.0f}" for t in TAGS)
        id_rows = [r for r in rows if r["true"] == "id"]
        ms = sum(r["pred"] == "ms" for r in id_rows)
        stripped = f"{accuracy(short, 'pred_stripped'):>9.1f}" if res["stripped"] else \
            f"{'n/a':>9}"
        misses = Counter(f"{r['true']}→{r['pred'] or 'None'}" for r in short if to_tag(r["pred"]) != r["true"])
        print(f"{n:<19}{per}{accuracy(short):>8.1f}{accuracy([r for r in short if very_short(r['text'])]):>8.1f}"
              f"{accuracy(longer):>8.1f}{stripped}{ms:>4}/{len(id_rows)}  "
              + " ".join(f"{k}×{v}" for k, v in misses.most_common(6)))
    print()

    # -- cost
    hdr = (f"{'config':<19}{'import+build':>13}{'1st det':>9}{'1st pass':>10}{'det mean':>10}{'det p99':>9}"
           f"{'conf mean':>10}{'conf p99':>9}{'long mean':>10}{'RSS +':>8}{'peak +':>8}{'disk':>8}{'+deps':>8}")
    print(f"Cost (times after a warm-up pass, {args.rounds} rounds over the short lines; µs per text; "
          "ms for cold start; MB)")
    print(hdr)
    print("-" * len(hdr))
    sizes = {}
    for n, res in results.items():
        dist = CONFIGS[n][0]
        if dist not in sizes:
            own, _ = installed_mb(dist, deps=False)
            total, deps = installed_mb(dist)
            sizes[dist] = (own, total, deps)
        own, total, _ = sizes[dist]
        t = res["timing"]
        print(f"{n:<19}{res['import_build_ms']:>11.0f}ms{res['first_ms']:>7.1f}ms{res['warm_pass_ms']:>8.0f}ms"
              f"{t['detect']['mean']:>10.0f}{t['detect']['p99']:>9.0f}{t['conf']['mean']:>10.0f}"
              f"{t['conf']['p99']:>9.0f}{t['detect_long']['mean']:>10.0f}{res['rss_added_mb']:>8.0f}"
              f"{res['peak_added_mb']:>8.0f}{own:>8.1f}{total:>8.1f}")
    for dist, (own, total, deps) in sizes.items():
        print(f"  {dist}: {own:.1f} MB installed; with its runtime dependencies ({', '.join(deps)}) "
              f"{total:.1f} MB")
    print("  1st det = first detection after build; 1st pass = first pass over all "
          f"{sum(map(len, LINES.values())) + sum(map(len, LONGER.values()))} texts (lazy model loading); "
          "RSS + = RSS after that pass minus before the import")
    print()

    # -- tie-break
    margins = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    short_chars, lead = 12, 0.1
    print(f"Tie-break with the author's language as a hint: on short text (< {short_chars} chars or "
          f"<= 3 word-ish units) or when top - second < {lead},")
    print("take the hint if p(hint) >= (1 - margin) * p(top); an abstention takes the hint. "
          "Accuracy % on the short lines (v.short in brackets), and LONGER.")
    hdr = (f"{'config':<19}{'margin':>7}{'hint right':>18}{'longer':>8}{'hint=en (all)':>16}"
           f"{'hint wrong':>16}{'longer':>8}")
    print(hdr)
    print("-" * len(hdr))
    for n, res in results.items():
        if n in same:
            continue
        short = [r for r in res["rows"] if r["kind"] == "short"]
        vs = [r for r in short if very_short(r["text"])]
        longer = [r for r in res["rows"] if r["kind"] == "longer"]
        print(f"{n:<19}{'none':>7}{accuracy(short):>10.1f} ({accuracy(vs):4.1f}){accuracy(longer):>8.1f}"
              f"{accuracy(short):>8.1f} ({accuracy(vs):4.1f}){accuracy(short):>8.1f} ({accuracy(vs):4.1f})"
              f"{accuracy(longer):>8.1f}")
        for m in margins:
            def acc(rows, hints, m=m):
                return hinted_accuracy(rows, m, short_chars, lead, hints)
            print(f"{'':<19}{m:>7.2f}{acc(short, 'true'):>10.1f} ({acc(vs, 'true'):4.1f}){acc(longer, 'true'):>8.1f}"
                  f"{acc(short, 'en'):>8.1f} ({acc(vs, 'en'):4.1f}){acc(short, 'wrong'):>8.1f} "
                  f"({acc(vs, 'wrong'):4.1f}){acc(longer, 'wrong'):>8.1f}")
    print("  margin 1.0 = always take the hint on short/ambiguous text; none = the detector alone. "
          "'hint wrong' averages the four wrong tags for each line.")
    print()

    # -- downloads
    print("Downloads / writes while loading and detecting (Python-level sockets and files opened for writing;"
          " /dev excluded):")
    for n, res in results.items():
        ev = Counter(e.split(" ", 1)[0] + " " + (e.split(" ", 1)[1] if e.startswith("open") else "")
                     for e in res["events"])
        print(f"  {n:<19} " + ("none" if not ev else "; ".join(f"{k.strip()} ×{v}" for k, v in ev.items())))
    print("  files changed under ~/.cache, ~/.local, ~/.config and the packages' site-packages: "
          + (", ".join(changed[:10]) if changed else "none"))

    if args.dump:
        Path(args.dump).write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
