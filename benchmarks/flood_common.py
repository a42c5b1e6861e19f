"""flood.py's sizes, timings and settings, the run's facts, and a phase's figures."""

from __future__ import annotations

import math
import resource
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.facts import (
    BridgeCode,
    changed_files,
    cpu_model,
    head,
    machine_facts,
)
from common.processes import (
    load_average,
)

OUTPUTS, INPUTS = 8, 8
"""Pins 0..7 outputs (`initial: "off"`), 8..15 inputs."""
FLOOD_PIN = 0
PROBE_PIN = 1
FLIP_PINS = (8, 9)
PULSE_PAYLOAD = '{"state":"ON","duration_ms":3600000}'
OUTPUT_MODE = 1
"""`PinConfig.mode` of an output."""
PLANNED_STATE_RATE = 20
"""`mqtt.max_state_rate`'s planned default: state messages per pin per second."""

ONLINE_TIMEOUT = 30.0
"""Seconds for the bridge to say `online` after its start."""
SETTLE = 1.0
"""Seconds to wait after start-up before the first reading."""
QUIET = 1.0
"""Seconds without a message that count as "quiet"."""
QUIET_CAP = 30.0
"""Most seconds to wait for quiet after a flood."""
PROBE_TIMEOUT = 10.0
"""Seconds a single command may take to reach the driver before it counts as lost."""
PROBE_GAP = 1.0
"""Seconds between the starts of two single commands during the pulse flood."""
AFTER_PROBES = 10
AFTER_PROBE_GAP = 0.3
SEND_GRACE = 10.0
"""Seconds a flood sender may run past its schedule before it stops where it is."""
IDLE_GAP = 0.1
"""Seconds between the hostile driver's periodic updates when it is not flooding."""
FLOOD_TICK = 0.0005
"""Seconds the hostile driver sleeps between two rounds of due updates."""
SILENCE = 1.0
"""Seconds the hostile driver sends nothing after its flood (below `offline_after`, 1.5 s)."""
RESUMED = 1.0
"""Seconds of periodic updates after the silence before the second check."""


# -- settings and the code under test ---------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The sizes of the floods and the window measured after each."""

    pulses: int = 200_000
    pulse_seconds: float = 15.0
    senders: int = 1
    births: int = 2_000
    driver_rate: float = 10_000.0
    driver_seconds: float = 5.0
    window: float = 5.0

    @classmethod
    def quick(cls, senders: int) -> Settings:
        """Shorter floods, same rates and window."""
        return cls(pulses=40_000, pulse_seconds=3.0, senders=senders, births=500, driver_seconds=2)


def run_facts(code: BridgeCode) -> dict[str, str]:
    """The commit, the code the bridge runs, and the machine."""
    changes = changed_files()
    facts = {
        "commit": (head() or "?") + ("+dirty" if changes else ""),
        "uncommitted changes": ", ".join(changes) or "none",
        "bridge code run": code.label,
        "bridge sources sha256": code.sha256,
    }
    facts |= machine_facts()
    if model := cpu_model():
        facts["cpu"] = model
    facts["load average at start"] = load_average()
    return facts


# -- figures ---------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    """One phase's figures: rows for the markdown table, the same (unformatted) for JSON."""

    name: str
    title: str
    description: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, label: str, text: str, **data: Any) -> None:
        self.rows.append((label, text))
        self.data |= data


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def latencies(values: Sequence[float | None]) -> str:
    """ "n, min / median / max ms, lost" of single-command latencies."""
    arrived = [value for value in values if value is not None]
    lost = len(values) - len(arrived)
    if not arrived:
        return f"n={len(values)}, none arrived within {PROBE_TIMEOUT:g} s"
    return (
        f"n={len(values)}: {min(arrived):.1f} / {statistics.median(arrived):.1f} / "
        f"{max(arrived):.1f} ms (min / median / max)"
        + (f", {lost} not at the driver within {PROBE_TIMEOUT:g} s" if lost else "")
    )


def per_second(times: Sequence[float], start: float, end: float) -> list[int]:
    """Counts in the whole seconds from `start` (the last one may be partial) up to `end`."""
    counts = [0] * max(1, math.ceil(end - start - 1e-9))
    for moment in times:
        if start <= moment < end:
            counts[min(len(counts) - 1, int(moment - start))] += 1
    return counts


def cpu_share(seconds: float, wall: float) -> str:
    return f"{seconds:.2f} s = {100 * seconds / wall:.0f} % of one core over {wall:.1f} s"


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
