"""perf.py's settings, targets and mqtt-io figures; statistics and formatting."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from common import BenchmarkError

PIN_COUNT = 16

GAP = 0.1
"""Seconds of quiet before every paced sample (a 0.1 s idle gap)."""
SAMPLE_TIMEOUT = 2.0
"""Seconds one latency sample may take before it is counted as lost."""
ONLINE_TIMEOUT = 30.0
"""Seconds for a bridge to read `online` after its process started."""
SETTLE = 3.0
"""Seconds after `online` before an idle window: discovery clean-up (1 s) and the driver's
first 1 s delay are over, and every pin's state is published."""
BURST_STALL = 5.0
"""Seconds without a new config (or message) after which a burst is taken as finished."""
CMD_PIN = 0
STATE_PIN = 8

# Targets: benchmarks/README.md says what each is measured against.
CMD_P50_FACTOR = 1.25
CMD_P99_FACTOR = 2.0
STATE_P50_FACTOR = 1.25
THROUGHPUT_TARGET = 5000.0
IDLE_CPU_TARGET = 0.3
STARTUP_TARGET = 0.8
RSS_TARGET_MB = 40.0

BUSY_GAP = 0.03
"""Seconds between the commands of the 2b rows: several per driver update (0.1 s)."""
STALL_US = 20_000
"""A command this late in 2b was held back by Nagle + delayed ACK, not by work."""

# mqtt-io 2.7.0 with its stdio module, as published for it (information, not targets).
MQTTIO_ADDS_P50 = (1.06, 1.6)
"""Its command latency exceeds the broker round trip by this many round trips, at p50."""
MQTTIO_ADDS_P99 = (1.2, 2.0)
MQTTIO_IDLE_CPU = (0.60, 0.67)
"""% of one core, 4 inputs polled at 0.1 s."""
MQTTIO_RSS_MB = 33.7
MQTTIO_STARTUP = (2.0, 2.9)
"""Seconds from process start to online."""
MQTTIO_IDLE_INPUTS = (4, 16)
"""Its idle windows: 16 pins, this many of them polled inputs, the rest outputs."""


class PerfError(BenchmarkError):
    """The run cannot go on (a peer would not start, a bridge died)."""


def now_ns() -> int:
    return time.perf_counter_ns()


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the two nearest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Series:
    """Latency samples of one measure, in microseconds."""

    name: str
    samples: list[float] = field(default_factory=list)
    lost: int = 0

    def add_ns(self, ns: int) -> None:
        self.samples.append(ns / 1000)

    def record(self, ns: int | None) -> None:
        """One sample in ns, or None for one that never arrived."""
        if ns is None:
            self.lost += 1
        else:
            self.add_ns(ns)

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    def summary(self) -> dict[str, float | int]:
        s = self.samples
        return {
            "n": len(s),
            "lost": self.lost,
            "min_us": min(s) if s else float("nan"),
            "p50_us": self.p50,
            "p90_us": percentile(s, 90),
            "p99_us": self.p99,
            "max_us": max(s) if s else float("nan"),
            "mean_us": statistics.fmean(s) if s else float("nan"),
        }


def us(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value / 1000:.2f} ms" if value >= 10_000 else f"{value:.0f} µs"


# -- formatting ------------------------------------------------------------------------------


def secs(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f} s"


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


# -- the report ------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "**FAIL**")


def ratio(value: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(value):
        return "-"
    return f"{value / base:.2f}x"


def at_most(value: float, limit: float) -> bool | None:
    """value <= limit; None (no verdict) when either was not measured."""
    return None if math.isnan(value) or math.isnan(limit) else value <= limit


def span(bounds: tuple[float, float], unit: str = "") -> str:
    return f"{bounds[0]:g}-{bounds[1]:g}{unit}"


def placed(value: float, bounds: tuple[float, float]) -> str:
    """Where `value` falls against mqtt-io's published range."""
    if math.isnan(value):
        return "-"
    return "below" if value < bounds[0] else "above" if value > bounds[1] else "inside"
