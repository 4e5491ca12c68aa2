"""Per queue and minute: jobs processed, jobs failed, a histogram of runtimes for p50/p95, and a sample of
the queue's gauges (depth, delayed, dead, age of the oldest waiting message).

Workers add to a minute's hash (`Keys.minute`) with HINCRBY, so any number of processes on any
number of hosts add up to one picture, and every API host reads the same. Runtimes fall into fixed
buckets growing by half each (0.25 ms, 0.375 ms, ... ~6 min), so a percentile is known to within one
bucket, about 25%, and a minute costs at most ~40 small fields whatever the traffic.

The gauges are not counts that processes could add up: once a minute (`[ops] queue_sample_s`) the one
worker process that claims the minute (actors/ops.py) reads every queue and HSETs them into the minute's
hashes (`record_gauges`), so the hour of depth and latency is in Redis for every API host and every page
just opened. A minute no worker sampled (none was running) has none.
"""

from __future__ import annotations

import bisect
import time

import msgspec

from domain.ops.keys import SERIES_TTL_S, Keys

_FIRST_MS, _GROWTH, _COUNT = 0.25, 1.5, 36
#: Upper bounds of the runtime buckets in ms; one more bucket holds everything longer.
BOUNDS_MS = tuple(_FIRST_MS * _GROWTH ** i for i in range(_COUNT))


def bucket_of(runtime_ms: float) -> int:
    """The histogram bucket of a runtime."""
    return bisect.bisect_left(BOUNDS_MS, runtime_ms)


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The runtime (ms) below which `fraction` of the counted jobs fell, interpolated within its bucket."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank:
            low = BOUNDS_MS[bucket - 1] if bucket > 0 else 0.0
            high = BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else BOUNDS_MS[-1] * _GROWTH
            return round(low + (high - low) * ((rank - seen) / count if count else 1.0), 3)
        seen += count
    return round(BOUNDS_MS[-1] * _GROWTH, 3)


def current_minute(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 60)


class Minute(msgspec.Struct, frozen=True):
    """One queue's minute: its start (Unix seconds), jobs processed and failed, runtime p50/p95 in ms, and
    the queue's gauges as a worker sampled them in that minute: `depth` messages waiting, `delayed`, `dead`,
    and `oldest_age_s` the age of the oldest waiting message (0 when none waited); all four null for a minute
    without a sample (no worker process was running)."""

    at: int
    processed: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    depth: int | None
    delayed: int | None
    dead: int | None
    oldest_age_s: float | None


def _minute(at_minute: int, fields: dict[bytes, bytes]) -> tuple[Minute, dict[int, int]]:
    values = {key.decode(): value for key, value in fields.items()}
    histogram = {int(name[1:]): int(n) for name, n in values.items() if name[:1] == "h" and name[1:].isdigit()}
    if "depth" in values:  # record_gauges writes the four together
        depth, delayed, dead = (int(values.get(name, 0)) for name in ("depth", "delayed", "dead"))
        age = float(values.get("oldest_age_s", 0))
    else:
        depth = delayed = dead = age = None
    return Minute(at_minute * 60, int(values.get("p", 0)), int(values.get("f", 0)), percentile(histogram, 0.5),
                  percentile(histogram, 0.95), depth, delayed, dead, age), histogram


def record_gauges(client, keys: Keys, states, now: float | None = None) -> None:
    """Write each queue's gauges (`states`: actors.queues.QueueState) into this minute's hashes, in one round
    trip. A later sample in the same minute replaces an earlier one (only with `[ops] queue_sample_s` under a
    minute); an empty queue's latency is written as 0, so that null means "not sampled"."""
    minute = current_minute(now)
    with client.pipeline(transaction=False) as pipe:
        for state in states:
            key = keys.minute(state.name, minute)
            pipe.hset(key, mapping={"depth": state.depth, "delayed": state.delayed, "dead": state.dead,
                                    "oldest_age_s": round(state.oldest_age_s or 0.0, 3)})
            pipe.expire(key, SERIES_TTL_S)
        pipe.execute()


class Series(msgspec.Struct, frozen=True):
    """A queue's last `minutes` minutes, oldest first, and the hour's totals and percentiles."""

    queue: str
    minutes: list[Minute]
    processed: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None


def read(client, keys: Keys, queues: list[str], minutes: int = 60, now: float | None = None) -> dict[str, Series]:
    """Each queue's series of the last `minutes` minutes (the current one included), in one round trip."""
    last = current_minute(now)
    span = list(range(last - minutes + 1, last + 1))
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            for minute in span:
                pipe.hgetall(keys.minute(queue, minute))
        found = iter(pipe.execute())
    out = {}
    for queue in queues:
        rows, hour = [], {}
        for minute in span:
            row, histogram = _minute(minute, next(found))
            rows.append(row)
            for bucket, n in histogram.items():
                hour[bucket] = hour.get(bucket, 0) + n
        out[queue] = Series(queue, rows, sum(r.processed for r in rows), sum(r.failed for r in rows),
                            percentile(hour, 0.5), percentile(hour, 0.95))
    return out


def per_minute(series: Series, now: float | None = None) -> tuple[float, float]:
    """Jobs processed and failed per minute over the last five minutes and the part of this one gone by."""
    window = series.minutes[-6:]
    elapsed = max(1 / 60, len(window) - 1 + ((time.time() if now is None else now) % 60) / 60)
    return (round(sum(m.processed for m in window) / elapsed, 2), round(sum(m.failed for m in window) / elapsed, 2))
