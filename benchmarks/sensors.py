"""Sensors benchmark: what the MATRIX Creator's sensors cost the bridge (CPU, memory, threads),
how few publishes the publishing policy lets through under a drifting value, and the latency of
a step change.

    .venv/bin/python benchmarks/sensors.py            # full run, about 5 minutes
    .venv/bin/python benchmarks/sensors.py --quick    # about 90 s

Each phase starts its own Mosquitto, the simulated MALOS GPIO, Everloop and four sensor drivers
(in this process; every humidity update logged with its time) and the bridge as a subprocess.
The rows (benchmarks/README.md, "Sensors", says what each measures):

1. CPU and memory: five bridges side by side over the same windows, `--rounds` times with
   fresh processes: GPIO only, `sensors:` with its defaults (7 values, 2 s), the 7 at 0.1 s,
   all 16 at 0.1 s (humidity calibrated, so every driver runs at 0.1 s), and the same with
   every threshold 0 (every reading published); % of one core (every thread's time on a CPU),
   medians, each against the GPIO-only bridge of the same window; VmRSS and threads after
   each window.
2. publishes per minute: humidity drifting slowly with noise, the same values fed to two
   bridges side by side, the defaults (thresholds, `publish_every`) against thresholds 0 (what
   publishing every reading sends); messages counted on the state topics by a probe.
3. step latency: humidity set +-5 in the simulated driver -> the new value received by the
   probe, at update_interval 0.1 (calibrated: the humidity driver runs at 0.1 s), split into
   the wait for the driver's next update and the rest, beside the broker hop; then the same
   without `calibrate_temperature` (the humidity driver keeps its 1 s pace).

It prints a markdown report and writes `results/sensors-<time>.md` and `.json`; exit status 1
only if the run broke (a peer would not start, the bridge died), never over a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.facts import ROOT
from common.processes import TICKS, cpu_ns, cpu_ticks, load_average, status_kb
from common.report import fact_rows
from common.run import run_benchmark, run_phases
from perf_settings import GAP, SETTLE, Series, now_ns
from sensors_rig import ALL_SENSORS, Rig, thread_names

from mqtt_gpio_bridge.malos.sensors.catalog import DEFAULT_ENABLED
from mqtt_gpio_bridge.malos.sensors.policy import format_value

CALIBRATION = 21.0
"""°C: `calibrate_temperature` where the humidity driver must run at `update_interval`."""
FAST = 0.1
"""The fastest `sensors.update_interval` the config takes."""
NO_SENSORS = "GPIO only"
SUBJECTS: list[tuple[str, dict[str, Any] | None]] = [
    (NO_SENSORS, None),
    ("sensors defaults (7 values, 2 s)", {}),
    ("7 values, 0.1 s", {"update_interval": FAST}),
    (
        "all 16 values, 0.1 s",
        {"enabled": ALL_SENSORS, "update_interval": FAST, "calibrate_temperature": CALIBRATION},
    ),
    (
        "all 16 values, 0.1 s, thresholds 0",
        {
            "enabled": ALL_SENSORS,
            "update_interval": FAST,
            "calibrate_temperature": CALIBRATION,
            "thresholds": dict.fromkeys(ALL_SENSORS, 0),
        },
    ),
]
"""(label, the config's `sensors` section or None)."""
DRIFT_START = 40.0
DRIFT_RATE = 0.05
"""% per second."""
DRIFT_NOISE = 0.2
"""+- %, uniform, drawn anew every DRIFT_STEP."""
DRIFT_STEP = 0.25
"""Seconds between two values set in the drivers (the humidity driver reads at 1 s)."""
STEP = 5.0
"""% of humidity: the step of the latency phase, up and down in turn."""
STEP_TIMEOUT = 3.0
SLOW_HUMIDITY = 1.0
"""The humidity driver's own update delay, kept without `calibrate_temperature`."""
CONFIG_TEXT = (
    "outputs 0-3 (initial off), inputs 4-7, update_interval 0.1 s; with sensors, "
    "`malos.everloop_port`, `malos.<driver>_port` of the four drivers and the `sensors` "
    "section of each row; a MATRIX Creator whose sensors read constant values except where "
    "a row sets them"
)


# -- 1. CPU and memory -------------------------------------------------------------------------


def updates_sent(rig: Rig) -> int:
    """Updates the rig's sensor drivers and Everloop driver sent so far."""
    ring = 0 if rig.ring is None else rig.ring.updates_sent
    return ring + sum(driver.updates_sent for driver in rig.drivers.values())


def cpu_window(workdir: Path, round_number: int, seconds: float) -> dict[str, Any]:
    """Every subject's bridge side by side, SETTLE seconds after the last was up; each one's
    CPU share over the same `seconds`, then its VmRSS and threads."""
    with contextlib.ExitStack() as stack:
        rigs = [
            (label, stack.enter_context(Rig(workdir, f"cpu-{round_number}-{i}", sensors)))
            for i, (label, sensors) in enumerate(SUBJECTS)
        ]
        time.sleep(SETTLE)
        load = load_average()
        pids = [rig.pid for _, rig in rigs]
        ticks_before = [cpu_ticks(pid) for pid in pids]
        updates_before = [updates_sent(rig) for _, rig in rigs]
        before = [cpu_ns(pid) for pid in pids]
        t0, t0_ns = time.monotonic(), now_ns()
        time.sleep(seconds)
        after = [cpu_ns(pid) for pid in pids]
        t1_ns = now_ns()
        ticks_after = [cpu_ticks(pid) for pid in pids]
        wall = time.monotonic() - t0
        updates_after = [updates_sent(rig) for _, rig in rigs]
        result: dict[str, Any] = {"window_s": wall, "load": load, "subjects": {}}
        for i, (label, rig) in enumerate(rigs):
            rig.check_alive()
            names = thread_names(rig.pid)
            assert rig.sub is not None
            published = sum(rig.sub.count(t0_ns, t1_ns).values())
            result["subjects"][label] = {
                "cpu_pct": 100 * (after[i] - before[i]) / 1e9 / wall,
                "ticks_pct": 100 * (ticks_after[i] - ticks_before[i]) / TICKS / wall,
                "rss_kb": status_kb(rig.pid, "VmRSS"),
                "hwm_kb": status_kb(rig.pid, "VmHWM"),
                "threads": status_kb(rig.pid, "Threads"),
                "thread_names": dict(names),
                "sensor_updates_per_s": (updates_after[i] - updates_before[i]) / wall,
                "published_per_s": published / wall,
            }
    return result


def cpu_phase(workdir: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """`rounds` windows of `seconds`, fresh processes each; per subject the median share and
    the median of its per-window difference from the GPIO-only bridge; memory likewise."""
    windows = [cpu_window(workdir, i, seconds) for i in range(rounds)]
    summary: dict[str, Any] = {}
    for label, _ in SUBJECTS:
        entries = [w["subjects"][label] for w in windows]
        bases = [w["subjects"][NO_SENSORS] for w in windows]
        increments = [e["cpu_pct"] - b["cpu_pct"] for e, b in zip(entries, bases, strict=True)]
        summary[label] = {
            "cpu_pct": statistics.median(e["cpu_pct"] for e in entries),
            "cpu_pcts": [e["cpu_pct"] for e in entries],
            "ticks_pct": statistics.median(e["ticks_pct"] for e in entries),
            "increment_pct": None if label == NO_SENSORS else statistics.median(increments),
            "increments": None if label == NO_SENSORS else increments,
            "rss_kb": statistics.median(e["rss_kb"] for e in entries),
            "rss_kbs": [e["rss_kb"] for e in entries],
            "rss_increment_kb": statistics.median(
                e["rss_kb"] - b["rss_kb"] for e, b in zip(entries, bases, strict=True)
            ),
            "threads": statistics.median(e["threads"] for e in entries),
            "thread_names": entries[-1]["thread_names"],
            "published_per_s": statistics.median(e["published_per_s"] for e in entries),
            "sensor_updates_per_s": statistics.median(e["sensor_updates_per_s"] for e in entries),
        }
    return {
        "window_s": sum(w["window_s"] for w in windows),
        "rounds": rounds,
        "subjects": summary,
        "load": "; ".join(w["load"] for w in windows),
        "windows": windows,
    }


# -- 2. publishes per minute -------------------------------------------------------------------


class Drift(threading.Thread):
    """Sets humidity DRIFT_START + DRIFT_RATE * t + uniform noise in every rig's humidity
    driver, the same value in all, every DRIFT_STEP seconds until stopped."""

    def __init__(self, rigs: Sequence[Rig], seed: int) -> None:
        super().__init__(name="drift", daemon=True)
        self.rigs = rigs
        self.rng = random.Random(seed)
        self.started_at = time.monotonic()
        self.values: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(DRIFT_STEP):
            elapsed = time.monotonic() - self.started_at
            value = DRIFT_START + DRIFT_RATE * elapsed + self.rng.uniform(-DRIFT_NOISE, DRIFT_NOISE)
            self.values.append(value)
            for rig in self.rigs:
                rig.humidity.set(humidity=value)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)


def drift_phase(workdir: Path, seconds: float, seed: int) -> dict[str, Any]:
    """Two bridges side by side with the default `sensors` (7 values, 2 s): the default
    thresholds and `publish_every`, and every threshold 0; humidity drifting in both. The
    messages on each state topic over `seconds`, after SETTLE seconds of drift."""
    every_reading = {"thresholds": dict.fromkeys(DEFAULT_ENABLED, 0)}
    with (
        Rig(workdir, "drift-policy", {}) as policy,
        Rig(workdir, "drift-every", every_reading) as every,
    ):
        drift = Drift([policy, every], seed)
        drift.start()
        try:
            time.sleep(SETTLE)
            load = load_average()
            t0 = now_ns()
            updates = policy.humidity.updates_sent
            time.sleep(seconds)
            t1 = now_ns()
            updates = policy.humidity.updates_sent - updates
        finally:
            drift.stop()
        for rig in (policy, every):
            rig.check_alive()
        assert policy.sub is not None and every.sub is not None
        counts = {"policy": policy.sub.count(t0, t1), "every": every.sub.count(t0, t1)}
    minutes = (t1 - t0) / 60e9
    per_minute = {
        name: {sensor: count.get(sensor, 0) / minutes for sensor in DEFAULT_ENABLED}
        for name, count in counts.items()
    }
    return {
        "load": load,
        "window_s": (t1 - t0) / 1e9,
        "humidity_updates": updates,
        "per_minute": per_minute,
        "total_per_minute": {name: sum(v.values()) for name, v in per_minute.items()},
        "counts": {name: dict(count) for name, count in counts.items()},
        "drift": {"start": DRIFT_START, "rate": DRIFT_RATE, "noise": DRIFT_NOISE},
    }


# -- 3. step latency ---------------------------------------------------------------------------


def step_latency(
    workdir: Path, name: str, sensors: dict[str, Any], samples: int, seed: int
) -> dict[str, Any]:
    """Per cycle, after GAP plus a random share of the driver's period (so the step does not
    lock to its phase): humidity stepped by +-STEP in the simulated driver -> the new value
    received on `<base>/sensor/humidity/state`; that split at the driver's first update
    carrying it; then, after a GAP, a QoS 0 message published -> received on the same broker."""
    rng = random.Random(seed)
    period = FAST if "calibrate_temperature" in sensors else SLOW_HUMIDITY
    total, wait, rest, broker = (Series(n) for n in ("total", "wait", "rest", "broker"))
    later_update = 0
    with Rig(workdir, f"latency-{name}", sensors) as rig:
        assert rig.sub is not None and rig.pub is not None
        sub, pub = rig.sub, rig.pub
        topic = rig.state_topic("humidity")
        rtt = f"{rig.base}/rtt"
        sub.subscribe([rtt])
        load = load_average()
        warm = min(10, samples // 5)
        for i in range(-warm, samples):
            time.sleep(GAP + rng.uniform(0, period))
            # A value of its own each cycle (payloads differ), STEP away from the last.
            value = DRIFT_START + STEP * (i % 2) + 0.1 * (i % 20)
            slot = sub.expect(topic, format_value(value, 1))
            started = now_ns()
            rig.humidity.set(humidity=value)
            at = slot.wait(STEP_TIMEOUT)
            if at is None:
                sub.expectations.forget((topic, format_value(value, 1).encode()))
            sent = rig.humidity_log.first_with(value, started)
            time.sleep(GAP)
            arrival = sub.expect(rtt, str(i))
            hop_started = now_ns()
            pub.publish(rtt, str(i))
            hop_at = arrival.wait()
            if i < 0:
                continue
            total.record(None if at is None else at - started)
            wait.record(None if sent is None else sent - started)
            rest.record(None if at is None or sent is None else at - sent)
            broker.record(None if hop_at is None else hop_at - hop_started)
            if at is not None and sent is not None and at - sent > period * 1e9 / 2:
                later_update += 1  # the update carrying it was not sampled: a later one was
            if i % 50 == 49:
                rig.check_alive()
        rig.check_alive()
    return {
        "load": load,
        "period_s": period,
        "sensors": sensors,
        "total": total.summary(),
        "wait": wait.summary(),
        "rest": rest.summary(),
        "broker": broker.summary(),
        "later_update": later_update,
    }


# -- the report --------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} %"


def spread(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def cpu_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for label, s in r["subjects"].items():
        over = (
            ""
            if s["increment_pct"] is None
            else f"; {pct(s['increment_pct'])} over {NO_SENSORS} ({spread(s['increments'])})"
        )
        published = (
            ""
            if label == NO_SENSORS
            else f"; {s['sensor_updates_per_s']:.1f} updates/s from the sensor and "
            f"Everloop drivers, "
            f"{s['published_per_s']:.1f} sensor states/s published"
        )
        rows.append(
            f"| CPU, {label} | {pct(s['cpu_pct'])} of one core ({spread(s['cpu_pcts'])}){over}"
            f"{published}; medians of {r['rounds']} windows side by side, {r['window_s']:.0f} s "
            "in all | reported | - |"
        )
    return rows


def memory_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    base = r["subjects"][NO_SENSORS]
    for label, s in r["subjects"].items():
        over = (
            ""
            if label == NO_SENSORS
            else f"; {s['rss_increment_kb'] / 1024:+.1f} MB, {s['threads'] - base['threads']:+g} "
            f"threads over {NO_SENSORS}"
        )
        names = ", ".join(f"{name} x{n}" for name, n in sorted(s["thread_names"].items()))
        each = ", ".join(mb(k) for k in s["rss_kbs"])
        rows.append(
            f"| memory, {label} | VmRSS {mb(s['rss_kb'])} ({each}), {s['threads']:g} threads "
            f"({names}){over} | reported | - |"
        )
    return rows


def drift_rows(r: dict[str, Any]) -> list[str]:
    policy, every = r["per_minute"]["policy"], r["per_minute"]["every"]
    totals = r["total_per_minute"]
    others = [name for name in DEFAULT_ENABLED if name != "humidity"]
    return [
        f"| publishes/min, humidity drifting {DRIFT_RATE:g} %/s +-{DRIFT_NOISE:g} | policy "
        f"(threshold 0.5, publish_every 300 s) {policy['humidity']:.1f}/min; every reading "
        f"{every['humidity']:.1f}/min ({r['humidity_updates']} humidity driver updates) | "
        "reported | - |",
        f"| publishes/min, all 7 default values (6 constant) | policy {totals['policy']:.1f}/min "
        f"(constant ones {sum(policy[n] for n in others):.1f}); every reading "
        f"{totals['every']:.1f}/min; over {r['window_s']:.0f} s side by side | reported | - |",
    ]


def ms(us_value: float | None) -> str:
    return "-" if us_value is None or math.isnan(us_value) else f"{us_value / 1000:.2f} ms"


def short(summary: dict[str, Any]) -> str:
    lost = f", {summary['lost']} lost" if summary["lost"] else ""
    return f"p50 {ms(summary['p50_us'])}, p99 {ms(summary['p99_us'])} (n {summary['n']}{lost})"


def latency_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        what = (
            "calibrated, the driver at 0.1 s"
            if r["period_s"] == FAST
            else f"no calibrate_temperature, the driver at its own {SLOW_HUMIDITY:g} s"
        )
        rows.append(
            f"| step latency, humidity +-{STEP:g} set -> published ({what}) | "
            f"{short(r['total'])}; of it: wait for the driver's next update {short(r['wait'])}; "
            f"that update -> received {short(r['rest'])}; broker hop {short(r['broker'])}; "
            f"{r['later_update']} steps published from a later update | reported | - |"
        )
    return rows


def build_report(data: dict[str, Any]) -> str:
    lines = [
        f"# Sensors benchmark, {data['started']}",
        "",
        "| row | measured | target | |",
        "|---|---|---|---|",
        *(cpu_rows(data["cpu"]) if "cpu" in data else []),
        *(memory_rows(data["cpu"]) if "cpu" in data else []),
        *(drift_rows(data["drift"]) if "drift" in data else []),
        *latency_rows(data.get("latency", [])),
        "",
    ]
    if "cpu" in data:
        c = data["cpu"]
        ticks = ", ".join(f"{k} {pct(s['ticks_pct'])}" for k, s in c["subjects"].items())
        lines.append(
            f"CPU: load {c['load']}. The same windows from /proc/<pid>/stat utime + stime "
            f"(10 ms ticks, medians): {ticks}."
        )
    if "drift" in data:
        d = data["drift"]
        per = ", ".join(
            f"{name} {d['per_minute']['policy'][name]:.1f} vs {d['per_minute']['every'][name]:.1f}"
            for name in DEFAULT_ENABLED
        )
        lines.append(f"Publishes/min per value (policy vs every reading): {per}; load {d['load']}.")
    for r in data.get("latency", []):
        lines.append(f"Step latency at a {r['period_s']:g} s driver period: load {r['load']}.")
    lines += ["", f"Config: {CONFIG_TEXT}.", "", "| fact | value |", "|---|---|"]
    lines += fact_rows(data["facts"])
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--window", type=float, default=20.0, help="seconds of each CPU window (20)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="CPU windows, fresh processes (3)")
    parser.add_argument(
        "--drift", type=float, default=90.0, help="seconds of drifting humidity counted (90)"
    )
    parser.add_argument(
        "--samples", type=int, default=100, help="steps at the calibrated 0.1 s driver (100)"
    )
    parser.add_argument(
        "--slow-samples",
        type=int,
        default=30,
        help="steps without calibrate_temperature, the driver at 1 s (30)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about 90 s: --window 8 --rounds 1 --drift 30 --samples 30 --slow-samples 10",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.window, args.rounds, args.drift, args.samples, args.slow_samples = 8.0, 1, 30.0, 30, 10
    return args


def run(args: argparse.Namespace, workdir: Path, data: dict[str, Any]) -> None:
    """Every phase in turn, each result into `data` as soon as it is there."""
    fast = {"update_interval": FAST, "calibrate_temperature": CALIBRATION}
    phases: list[tuple[str, Callable[[], Any]]] = [
        ("cpu", lambda: cpu_phase(workdir, args.window, args.rounds)),
        ("drift", lambda: drift_phase(workdir, args.drift, args.seed)),
        ("latency", lambda: step_latency(workdir, "fast", fast, args.samples, args.seed)),
        (
            "latency",
            lambda: step_latency(
                workdir, "slow", {"update_interval": FAST}, args.slow_samples, args.seed
            ),
        ),
    ]
    run_phases("sensors", phases, data, repeated=("latency",))


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("sensors", parse_arguments(argv), run, build_report)


if __name__ == "__main__":
    sys.exit(main())
