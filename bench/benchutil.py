"""Helpers shared by the benchmarks in bench/."""

from __future__ import annotations

import math
import sys

import psutil


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (of a few dozen samples, p99 is the maximum)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def warn_if_busy(seconds: float = 1.0, threshold: float = 15.0) -> float:
    """CPU in use on the machine before the benchmark starts (% of all cores); warn when others load it."""
    busy = psutil.cpu_percent(interval=seconds)
    if busy > threshold:
        print(f"warning: the machine was {busy:.0f}% busy before the benchmark started; other processes "
              "share the CPUs, so expect noisy figures (compare ratios from the same run)", file=sys.stderr)
    return busy
