"""Buttons benchmark: press-event accuracy and latency, link latency, idle CPU with buttons.

    .venv/bin/python benchmarks/buttons.py                       # full run, about 11 minutes
    .venv/bin/python benchmarks/buttons.py --patterns 120 --samples 60 --idle 15   # quick

Each phase starts its own Mosquitto, simulated MALOS driver (in this process, press patterns
played with `SimulatedDriver.play`, exact at each update's sampling instant) and the bridge as
a subprocess. The rows (benchmarks/README.md, "Buttons", says what each measures):

1. accuracy: `--patterns` random singles, doubles, longs and contact-bounce bursts on
   ACCURACY_PINS inputs in parallel, at update_interval 0.02 s with a busy loop on the other
   core (target row), then at 0.1 s (reported); each pattern's events set against its kind.
2. event latency: release -> `single`, press + long_press_ms -> `long`, at the subscriber.
3. link latency: the update carrying a press -> the output's config at the driver, broker up
   and broker stopped.
4. idle CPU: 16 pins with buttons and links, against perf_null.py and the same 16 pins
   without buttons in the same windows (`--rounds` of them, medians).

It prints a markdown report and writes `results/buttons-<time>.md` and `.json`; exit status 1
only if the run broke (a peer would not start, the bridge died), never over a target.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buttons_rig import BusyLoop, Rig
from common import BenchmarkError
from common.facts import ROOT
from common.processes import load_average
from common.report import fact_rows
from common.run import run_benchmark, run_phases
from perf_hops import cpu_shares
from perf_settings import SETTLE, Series, verdict
from perf_subjects import NullRun

ACCURACY_PINS = 12
DEBOUNCE_MS = 30
"""Bounce bursts are kept under BOUNCE_MAX_MS, presses and gaps are at least 80 ms."""
BOUNCE_MAX_MS = 25
LONG_PRESS_S = 0.8
REST_S = (0.8, 1.0)
"""Quiet between two patterns on a pin: the single's 0.4 s window, a few updates and latency
(at 0.1 s a single is decided up to ~0.6 s after the release) must fit in it."""
KINDS = {"single": 0.35, "double": 0.3, "long": 0.2, "bounce": 0.15}
BOUNCED = 0.4
"""Share of presses preceded by a bounce burst."""
ACCURACY_TARGET = 99.5
IDLE_FACTOR = 1.25
TAIL_S = 1.5
"""Seconds to wait after the last flip for the events still to come."""


@dataclass
class Pattern:
    """One press pattern on one pin: what is played, and what it must give."""

    pin: int
    kind: str
    bounce: list[float]
    presses: list[float]
    """Press, gap, press... (ms); empty for a burst alone."""
    flips: list[float] = field(default_factory=list)

    @property
    def durations(self) -> list[float]:
        return self.bounce + self.presses

    @property
    def expected(self) -> tuple[str, ...]:
        return () if self.kind == "bounce" else (self.kind,)

    def describe(self) -> str:
        bounce = f"bounce {'/'.join(f'{d:g}' for d in self.bounce)} ms, " if self.bounce else ""
        return f"pin {self.pin} {self.kind}: {bounce}{'/'.join(f'{d:g}' for d in self.presses)} ms"


# -- patterns ----------------------------------------------------------------------------------


def bounce_burst(rng: random.Random, alone: bool) -> list[float]:
    """Edges 1-10 ms apart, BOUNCE_MAX_MS at most in all; from low, ending low if `alone`
    (an odd count), else ending low just before the press (an even count)."""
    while True:
        pairs = rng.randint(1, 3)
        burst = [float(rng.randint(1, 10)) for _ in range(2 * pairs - alone)]
        if sum(burst) <= BOUNCE_MAX_MS:
            return burst


def random_pattern(rng: random.Random, pin: int) -> Pattern:
    """A single (80-300 ms), double (80-200 ms presses, 100-300 ms gap), long (1-2 s), or a
    bounce burst alone; presses bounced first in BOUNCED of cases."""
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    if kind == "bounce":
        return Pattern(pin, kind, bounce_burst(rng, alone=True), [])
    if kind == "single":
        presses = [float(rng.randint(80, 300))]
    elif kind == "double":
        presses = [float(rng.randint(80, 200)), float(rng.randint(100, 300))]
        presses.append(float(rng.randint(80, 200)))
    else:
        presses = [float(rng.randint(1000, 2000))]
    bounce = bounce_burst(rng, alone=False) if rng.random() < BOUNCED else []
    return Pattern(pin, kind, bounce, presses)


def schedule(
    rig: Rig, patterns: Sequence[Pattern], rng: random.Random, rest: tuple[float, float]
) -> float:
    """Play every pattern, each pin's one after the other with `rest` seconds between, all
    pins from about now + 0.5 s (random offsets); the time of the last flip."""
    assert rig.driver is not None
    starts = {p.pin: time.monotonic() + 0.5 + rng.uniform(0, 0.5) for p in patterns}
    last = 0.0
    for pattern in patterns:
        pattern.flips = rig.driver.play(pattern.pin, pattern.durations, starts[pattern.pin])
        starts[pattern.pin] = pattern.flips[-1] + rng.uniform(*rest)
        last = max(last, pattern.flips[-1])
    return last


def wait_until(moment: float, rig: Rig) -> None:
    """Sleep until `moment` (monotonic), checking the bridge every second."""
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))
        if not rig.alive():
            raise BenchmarkError(f"the bridge died: {rig.log}")


def by_pattern(
    rig: Rig, patterns: Sequence[Pattern]
) -> list[tuple[Pattern, list[tuple[float, dict[str, Any]]]]]:
    """Each pattern with the events that arrived from its first flip to the next pattern's on
    its pin (events before a pin's first pattern go to the first)."""
    result = []
    for pin in sorted({p.pin for p in patterns}):
        mine = [p for p in patterns if p.pin == pin]
        events = rig.events(pin)
        times = [t for t, _ in events]
        for i, pattern in enumerate(mine):
            low = 0 if i == 0 else bisect.bisect_left(times, pattern.flips[0])
            high = (
                len(events)
                if i == len(mine) - 1
                else bisect.bisect_left(times, mine[i + 1].flips[0])
            )
            result.append((pattern, events[low:high]))
    return result


# -- 1. accuracy -------------------------------------------------------------------------------


def accuracy(workdir: Path, interval: float, count: int, seed: int) -> dict[str, Any]:
    """`count` random patterns over ACCURACY_PINS pins, all events single/double/long, with a
    busy loop on the last CPU; how many gave exactly the expected event."""
    rng = random.Random(seed)
    pins = [
        {
            "pin": pin,
            "mode": "input",
            "debounce_ms": DEBOUNCE_MS,
            "events": ["single", "double", "long"],
        }
        for pin in range(ACCURACY_PINS)
    ]
    patterns = [random_pattern(rng, i % ACCURACY_PINS) for i in range(count)]
    with BusyLoop() as busy, Rig(workdir, f"accuracy-{interval:g}", interval, pins) as rig:
        started = time.monotonic()
        wait_until(schedule(rig, patterns, rng, REST_S) + TAIL_S, rig)
        seconds = time.monotonic() - started
        load, busy_pct = load_average(), busy.cpu_pct()
        matched = by_pattern(rig, patterns)
    wrong = [(p, [e["event_type"] for _, e in got]) for p, got in matched]
    wrong = [(p, got) for p, got in wrong if tuple(got) != p.expected]
    kinds = Counter(p.kind for p in patterns)
    wrong_kinds = Counter(p.kind for p, _ in wrong)
    return {
        "interval": interval,
        "patterns": count,
        "correct_pct": 100 * (count - len(wrong)) / count,
        "by_kind": {k: [kinds[k] - wrong_kinds[k], kinds[k]] for k in KINDS},
        "bounce_events": sum(len(got) for p, got in wrong if p.kind == "bounce"),
        "wrong": [{"pattern": p.describe(), "got": got} for p, got in wrong],
        "seconds": seconds,
        "load": load,
        "busy_cpu": busy.cpu,
        "busy_pct": busy_pct,
    }


# -- 2. event latency --------------------------------------------------------------------------


def first_update(
    updates: list[tuple[float, int]], after: float, pin: int, level: int
) -> float | None:
    """The time of the first update sent at or after `after` showing `pin` at `level`."""
    for t, levels in updates[bisect.bisect_left(updates, (after, -1)) :]:
        if levels >> pin & 1 == level:
            return t
    return None


def deciding_update(updates: list[tuple[float, int]], seen: float, wait: float) -> float | None:
    """The first update sent `wait` seconds or more after the one at `seen` (2 ms tolerance:
    the bridge times updates as it receives them)."""
    index = bisect.bisect_left(updates, (seen + wait - 0.002, -1))
    return updates[index][0] if index < len(updates) else None


def event_latency(workdir: Path, interval: float, samples: int, seed: int) -> dict[str, Any]:
    """Release -> single (pins 0-2, events [single]) and press + long_press_ms -> long
    (pins 3-6, events [long]), debounce_ms DEBOUNCE_MS, all pins in parallel."""
    rng = random.Random(seed)
    singles, longs = (0, 1, 2), (3, 4, 5, 6)
    pins = [
        {"pin": p, "mode": "input", "debounce_ms": DEBOUNCE_MS, "events": ["single"]}
        for p in singles
    ]
    pins += [
        {"pin": p, "mode": "input", "debounce_ms": DEBOUNCE_MS, "events": ["long"]} for p in longs
    ]
    patterns = [
        Pattern(singles[i % 3], "single", [], [float(rng.randint(80, 200))]) for i in range(samples)
    ]
    patterns += [
        Pattern(longs[i % 4], "long", [], [float(rng.randint(900, 1100))]) for i in range(samples)
    ]
    with Rig(workdir, f"latency-{interval:g}", interval, pins) as rig:
        load = load_average()
        wait_until(schedule(rig, patterns, rng, (0.25, 0.4)) + TAIL_S, rig)
        matched = by_pattern(rig, patterns)
        updates = rig.wire.updates()
    series = {
        k: (Series(f"{k} from the flip"), Series(f"{k} from its deciding update"))
        for k in ("single", "long")
    }
    for pattern, got in matched:
        arrived = next((t for t, e in got if e["event_type"] == pattern.kind), None)
        if pattern.kind == "single":
            flip, level, wait = pattern.flips[-1], 0, DEBOUNCE_MS / 1000
        else:
            flip, level, wait = pattern.flips[0], 1, LONG_PRESS_S
        seen = first_update(updates, flip, pattern.pin, level)
        decided = None if seen is None else deciding_update(updates, seen, wait)
        start = flip if pattern.kind == "single" else flip + LONG_PRESS_S
        from_flip, from_update = series[pattern.kind]
        from_flip.record(None if arrived is None else int((arrived - start) * 1e9))
        from_update.record(
            None if arrived is None or decided is None else int((arrived - decided) * 1e9)
        )
    return {
        "interval": interval,
        "load": load,
        "series": {k: [s.summary() for s in v] for k, v in series.items()},
    }


# -- 3. link latency ---------------------------------------------------------------------------

LINK_IN, LINK_OUT = 0, 8


def link_latency(workdir: Path, interval: float, samples: int, seed: int) -> dict[str, Any]:
    """A toggle link on press (input LINK_IN, debounce 0, to LINK_OUT): the update carrying
    each press -> the output's config at the driver; `samples` presses with the broker up,
    then as many with Mosquitto stopped."""
    rng = random.Random(seed)
    pins = [
        {
            "pin": LINK_IN,
            "mode": "input",
            "links": [{"on": "press", "output": LINK_OUT, "action": "toggle"}],
        },
        {"pin": LINK_OUT, "mode": "output", "initial": "off"},
    ]
    result: dict[str, Any] = {"interval": interval}
    with Rig(workdir, f"link-{interval:g}", interval, pins) as rig:
        for broker in ("up", "stopped"):
            if broker == "stopped":
                rig.broker.stop()
                time.sleep(1.0)
            load = load_average()
            patterns = [
                Pattern(LINK_IN, "press", [], [float(rng.randint(40, 80))]) for _ in range(samples)
            ]
            wait_until(schedule(rig, patterns, rng, (0.1, 0.2)) + TAIL_S, rig)
            series = link_series(rig, patterns)
            result[broker] = {"load": load, **series.summary()}
    return result


def link_series(rig: Rig, patterns: Sequence[Pattern]) -> Series:
    """Each press's update -> the first config of LINK_OUT after it (before the next press)."""
    updates, configs = rig.wire.updates(), rig.wire.configs(LINK_OUT)
    config_times = [t for t, _ in configs]
    series = Series("link")
    seen = [first_update(updates, p.flips[0], LINK_IN, 1) for p in patterns]
    for i, at in enumerate(seen):
        following = seen[i + 1] if i + 1 < len(seen) and seen[i + 1] is not None else float("inf")
        index = bisect.bisect_left(config_times, at) if at is not None else len(config_times)
        hit = config_times[index] if index < len(config_times) else None
        series.record(
            None if at is None or hit is None or hit > following else int((hit - at) * 1e9)
        )
    return series


# -- 4. idle CPU -------------------------------------------------------------------------------

IDLE_PINS: list[dict[str, Any]] = (
    [{"pin": p, "mode": "output", "initial": "off"} for p in range(8)]
    + [
        {
            "pin": p,
            "mode": "input",
            "debounce_ms": DEBOUNCE_MS,
            "events": ["single", "double", "long"],
        }
        for p in range(8, 12)
    ]
    + [
        {
            "pin": p,
            "mode": "input",
            "debounce_ms": DEBOUNCE_MS,
            "links": [{"on": "press", "output": p - 12, "action": "toggle"}],
        }
        for p in range(12, 14)
    ]
    + [{"pin": p, "mode": "input"} for p in range(14, 16)]
)
PLAIN_PINS = [
    {"pin": p["pin"], "mode": p["mode"]} | ({"initial": "off"} if p["mode"] == "output" else {})
    for p in IDLE_PINS
]
IDLE_CONFIG = (
    "outputs 0-7; inputs 8-11 with events [single, double, long] and debounce_ms 30; inputs "
    "12-13 with debounce_ms 30 and a toggle link on press to outputs 0-1; inputs 14-15 plain"
)


class _NoBroker:
    """What NullRun asks of perf.py's run when it only idles: nothing."""


def idle_window(workdir: Path, name: str, interval: float, seconds: float) -> dict[str, Any]:
    """Three processes side by side, each with its own driver at `interval`, their CPU shares
    over the same `seconds`: the bridge with IDLE_PINS, the bridge with PLAIN_PINS (the same
    16 pins without buttons or links, to tell what buttons cost) and perf_null.py."""
    with (
        Rig(workdir, name, interval, IDLE_PINS) as rig,
        Rig(workdir, f"{name}-plain", interval, PLAIN_PINS) as plain,
    ):
        null = NullRun(_NoBroker(), interval).start()  # type: ignore[arg-type]
        try:
            time.sleep(SETTLE)
            load = load_average()
            (bridge, bare, floor), wall = cpu_shares((rig.pid, plain.pid, null.pid), seconds)
        finally:
            null.stop()
        if not (rig.alive() and plain.alive()):
            raise BenchmarkError(f"a bridge died: {rig.log}, {plain.log}")
    return {
        "window_s": wall,
        "bridge_pct": bridge,
        "plain_pct": bare,
        "null_pct": floor,
        "load": load,
    }


def shares_over(windows: Sequence[dict[str, Any]], key: str, floor: str) -> list[float]:
    """`key` / `floor` of each window where the floor used any CPU at all."""
    return [w[key] / w[floor] for w in windows if w[floor]]


def idle_cpu(workdir: Path, interval: float, seconds: float, rounds: int) -> dict[str, Any]:
    """`rounds` idle windows of `seconds` / `rounds`, fresh processes each time; the median
    of each share and of the ratios (one window's ratio moves by +-20 % between rounds)."""
    windows = [
        idle_window(workdir, f"idle-{interval:g}-{i}", interval, seconds / rounds)
        for i in range(rounds)
    ]
    ratios = shares_over(windows, "bridge_pct", "null_pct")
    plain = shares_over(windows, "plain_pct", "null_pct")
    return {
        "interval": interval,
        "window_s": sum(w["window_s"] for w in windows),
        **{
            k: statistics.median(w[k] for w in windows)
            for k in ("bridge_pct", "plain_pct", "null_pct")
        },
        "ratio": statistics.median(ratios) if ratios else math.nan,
        "ratios": ratios,
        "plain_ratio": statistics.median(plain) if plain else math.nan,
        "plain_ratios": plain,
        "load": "; ".join(w["load"] for w in windows),
        "windows": windows,
    }


# -- the report --------------------------------------------------------------------------------


def ms(us_value: float) -> str:
    return f"{us_value / 1000:.1f} ms"


def accuracy_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        target = r["interval"] == 0.02
        ok = r["correct_pct"] >= ACCURACY_TARGET and r["bounce_events"] == 0 if target else None
        kinds = ", ".join(f"{k} {a}/{n}" for k, (a, n) in r["by_kind"].items())
        rows.append(
            f"| accuracy {r['interval']:g} s (other core busy) | {r['correct_pct']:.2f} % of "
            f"{r['patterns']} right ({kinds}); {r['bounce_events']} events from bounce alone | "
            f"{f'>= {ACCURACY_TARGET} %, 0 from bounce' if target else 'reported'} | "
            f"{verdict(ok)} |"
        )
    return rows


def percentiles(summary: dict[str, Any]) -> str:
    """`p50 .., p99 .. (n .., lost ..)` of a Series summary."""
    lost = f", {summary['lost']} lost" if summary["lost"] else ""
    return f"p50 {ms(summary['p50_us'])}, p99 {ms(summary['p99_us'])} (n {summary['n']}{lost})"


def latency_rows(result: dict[str, Any]) -> list[str]:
    rows = []
    for kind, (flip, update) in result["series"].items():
        start = "release" if kind == "single" else "press + 800 ms"
        rows.append(
            f"| {start} -> {kind} ({result['interval']:g} s) | {percentiles(flip)}; from the "
            f"deciding update {percentiles(update)} | reported | - |"
        )
    return rows


def link_rows(result: dict[str, Any]) -> list[str]:
    return [
        f"| link press -> output config, broker {broker} ({result['interval']:g} s) | "
        f"{percentiles(result[broker])} | reported | - |"
        for broker in ("up", "stopped")
    ]


def spread(values: Sequence[float]) -> str:
    """`min-max` of the values, `-` if none."""
    return "-".join(f"{v:.2f}" for v in (min(values), max(values))) if values else "-"


def idle_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        target = r["interval"] == 0.02
        ok = r["ratio"] <= IDLE_FACTOR if target and not math.isnan(r["ratio"]) else None
        rows.append(
            f"| idle CPU 16 pins {r['interval']:g} s | {r['bridge_pct']:.2f} % of one core, floor "
            f"{r['null_pct']:.2f} %: {r['ratio']:.2f}x ({spread(r['ratios'])}); the same pins "
            f"without buttons {r['plain_pct']:.2f} %, {r['plain_ratio']:.2f}x "
            f"({spread(r['plain_ratios'])}); medians of {len(r['ratios'])} windows, "
            f"{r['window_s']:.0f} s in all | "
            f"{f'<= {IDLE_FACTOR}x the floor' if target else 'reported'} | {verdict(ok)} |"
        )
    return rows


def build_report(data: dict[str, Any]) -> str:
    """The markdown report: rows, misclassified patterns, loads, facts."""
    lines = [
        f"# Buttons benchmark, {data['started']}",
        "",
        "| row | measured | target | |",
        "|---|---|---|---|",
        *accuracy_rows(data.get("accuracy", [])),
        *(latency_rows(data["latency"]) if "latency" in data else []),
        *(link_rows(data["link"]) if "link" in data else []),
        *idle_rows(data.get("idle", [])),
        "",
    ]
    for r in data.get("accuracy", []):
        lines.append(
            f"Accuracy at {r['interval']:g} s: {r['seconds']:.0f} s, load at the end "
            f"{r['load']}, busy loop pinned to CPU {r['busy_cpu']}: {r['busy_pct']:.0f} % of "
            "one core."
        )
        lines += [f"- {w['pattern']} -> got {w['got'] or 'nothing'}" for w in r["wrong"][:20]]
        if len(r["wrong"]) > 20:
            lines.append(f"- ... {len(r['wrong']) - 20} more in the .json")
    if "latency" in data:
        lines.append(f"Event latency: load {data['latency']['load']}.")
    if "link" in data:
        lines.append(
            f"Link latency: load {data['link']['up']['load']} (broker up), "
            f"{data['link']['stopped']['load']} (stopped)."
        )
    for r in data.get("idle", []):
        lines.append(f"Idle {r['interval']:g} s: load {r['load']}.")
    lines += ["", f"Idle config: {IDLE_CONFIG}.", "", "| fact | value |", "|---|---|"]
    lines += fact_rows(data["facts"])
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", type=int, default=1000, help="accuracy patterns (1000)")
    parser.add_argument("--samples", type=int, default=300, help="latency samples per row (300)")
    parser.add_argument(
        "--idle", type=float, default=90.0, help="idle seconds per interval, over --rounds (90)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="idle windows, fresh processes (3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path, data: dict[str, Any]) -> None:
    """Every phase in turn, each result into `data` as soon as it is there."""
    phases: list[tuple[str, Callable[[], Any]]] = [
        ("accuracy", lambda: accuracy(workdir, 0.02, args.patterns, args.seed)),
        ("accuracy", lambda: accuracy(workdir, 0.1, args.patterns, args.seed)),
        ("latency", lambda: event_latency(workdir, 0.02, args.samples, args.seed)),
        ("link", lambda: link_latency(workdir, 0.02, args.samples, args.seed)),
        ("idle", lambda: idle_cpu(workdir, 0.02, args.idle, args.rounds)),
        ("idle", lambda: idle_cpu(workdir, 0.1, args.idle, args.rounds)),
    ]
    run_phases("buttons", phases, data, repeated=("accuracy", "idle"))


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("buttons", parse_arguments(argv), run, build_report)


if __name__ == "__main__":
    sys.exit(main())
