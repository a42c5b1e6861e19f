"""Everloop benchmark: the bridge's CPU while an effect runs on the LED ring, frame timing, and
the latency of a colour command.

    .venv/bin/python benchmarks/everloop.py            # full run, about 4 minutes
    .venv/bin/python benchmarks/everloop.py --quick    # about 80 s

Each phase starts its own Mosquitto, the simulated MALOS GPIO and Everloop drivers (in this
process; every image the ring shows is logged with its `time.monotonic()` instant) and the
bridge as a subprocess. The rows (benchmarks/README.md, "Everloop", says what each measures):

1. CPU: six bridges side by side over the same windows, `--rounds` times with fresh processes:
   without `everloop`, with the ring configured and idle, rainbow at 20 and at 30 fps, spin
   and breathe at 20 fps; % of one core (every thread's time on a CPU), medians, and each
   against the idle ring of the same window.
2. frame timing: rainbow at 20 fps, then at 30, one bridge alone: the interval between
   consecutive images shown, its distance from 1/fps (jitter), the frame rate achieved.
3. command latency: a Home Assistant colour command published -> the image shown, beside the
   broker hop plus a bare ZeroMQ push into a second Everloop driver, same run.

It prints a markdown report and writes `results/everloop-<time>.md` and `.json`; exit status 1
only if the run broke (a peer would not start, the bridge died), never over a target.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import BenchmarkError
from common.facts import ROOT
from common.processes import TICKS, cpu_ns, cpu_ticks, load_average
from common.report import fact_rows
from common.run import run_benchmark, run_phases
from everloop_rig import Rig, RingHop
from perf_settings import GAP, SETTLE, Series, now_ns, percentile, verdict

from mqtt_gpio_bridge.sim.everloop import Led

CPU_TARGET = 1.0
"""% of one core: the bridge's whole share while an effect runs at 20 fps."""
COLOR = {"r": 0, "g": 160, "b": 255, "w": 0}
"""The colour of the spin and breathe rows."""
SUBJECTS: list[tuple[str, int | None, dict[str, Any] | None]] = [
    ("idle, no everloop", None, None),
    ("idle, ring configured", 20, None),
    ("rainbow 20 fps", 20, {"state": "ON", "effect": "rainbow"}),
    ("rainbow 30 fps", 30, {"state": "ON", "effect": "rainbow"}),
    ("spin 20 fps", 20, {"state": "ON", "effect": "spin", "color": COLOR}),
    ("breathe 20 fps", 20, {"state": "ON", "effect": "breathe", "color": COLOR}),
]
"""(label, everloop.fps or None without `everloop`, the command that starts the effect)."""
IDLE_RING = "idle, ring configured"
NO_RING = "idle, no everloop"
TIMING_FPS = (20, 30)
FIRST_FRAME_TIMEOUT = 5.0
LANDING_TIMEOUT = 2.0
SKIPPED = 1.5
"""An interval longer than this many frame periods counts as a skipped frame..."""
BUNCHED = 0.5
"""... and one shorter than this many as bunched."""
CONFIG_TEXT = (
    "outputs 0-3 (initial off), inputs 4-7, update_interval 0.1 s; `everloop: {fps: N}` and "
    "`malos.everloop_port` where the ring is configured, a MATRIX Creator (35 LEDs)"
)


def start_effect(rig: Rig, command: dict[str, Any]) -> None:
    """Publish the effect's command and wait until the ring showed two images of it."""
    shown = len(rig.shown_times())
    rig.command(command, qos=1)
    deadline = time.monotonic() + FIRST_FRAME_TIMEOUT
    while len(rig.shown_times()) < shown + 2:
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the ring shows no {command['effect']} frames: {rig.log}")
        time.sleep(0.02)


def frame_timing(times: Sequence[float], fps: int) -> dict[str, Any]:
    """Intervals between consecutive images (ms) against 1/fps: percentiles, jitter
    (|interval - 1/fps|), the rate achieved, and the intervals skipping or bunching frames."""
    period = 1 / fps
    intervals = [b - a for a, b in itertools.pairwise(times)]
    if not intervals:
        return {"fps": fps, "frames": len(times)}
    jitter = [abs(i - period) for i in intervals]
    return {
        "fps": fps,
        "frames": len(times),
        "seconds": times[-1] - times[0],
        "achieved_fps": len(intervals) / (times[-1] - times[0]),
        "interval_ms": {
            "min": 1000 * min(intervals),
            "p50": 1000 * percentile(intervals, 50),
            "p99": 1000 * percentile(intervals, 99),
            "max": 1000 * max(intervals),
        },
        "jitter_ms": {
            "p50": 1000 * percentile(jitter, 50),
            "p99": 1000 * percentile(jitter, 99),
            "max": 1000 * max(jitter),
        },
        "skipped": sum(i > SKIPPED * period for i in intervals),
        "bunched": sum(i < BUNCHED * period for i in intervals),
    }


# -- 1. CPU ------------------------------------------------------------------------------------


def cpu_window(workdir: Path, round_number: int, seconds: float) -> dict[str, Any]:
    """Every subject's bridge side by side, its effect started and SETTLE seconds passed;
    each one's CPU share over the same `seconds`, and the frames its ring showed meanwhile."""
    with contextlib.ExitStack() as stack:
        rigs = [
            (label, fps, command, stack.enter_context(Rig(workdir, f"cpu-{round_number}-{i}", fps)))
            for i, (label, fps, command) in enumerate(SUBJECTS)
        ]
        for _, _, command, rig in rigs:
            if command is not None:
                start_effect(rig, command)
        time.sleep(SETTLE)
        load = load_average()
        pids = [rig.pid for *_, rig in rigs]
        ticks_before = [cpu_ticks(pid) for pid in pids]
        before = [cpu_ns(pid) for pid in pids]
        t0 = time.monotonic()
        time.sleep(seconds)
        after = [cpu_ns(pid) for pid in pids]
        ticks_after = [cpu_ticks(pid) for pid in pids]
        t1 = time.monotonic()
        wall = t1 - t0
        result: dict[str, Any] = {"window_s": wall, "load": load, "subjects": {}}
        for i, (label, fps, command, rig) in enumerate(rigs):
            rig.check_alive()
            entry: dict[str, Any] = {
                "cpu_pct": 100 * (after[i] - before[i]) / 1e9 / wall,
                "ticks_pct": 100 * (ticks_after[i] - ticks_before[i]) / TICKS / wall,
            }
            if fps is not None:
                shown = rig.shown_times(t0, t1)
                entry["frames_per_s"] = len(shown) / wall
                if command is not None:
                    entry["timing"] = frame_timing(shown, fps)
            result["subjects"][label] = entry
    return result


def cpu_phase(workdir: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """`rounds` windows of `seconds`, fresh processes each; per subject the median share, and
    the median of its per-window difference from the idle ring (from no ring for that one)."""
    windows = [cpu_window(workdir, i, seconds) for i in range(rounds)]
    summary: dict[str, Any] = {}
    for label, fps, _ in SUBJECTS:
        entries = [w["subjects"][label] for w in windows]
        base = NO_RING if label == IDLE_RING else IDLE_RING
        increments = [
            w["subjects"][label]["cpu_pct"] - w["subjects"][base]["cpu_pct"] for w in windows
        ]
        summary[label] = {
            "fps": fps,
            "cpu_pct": statistics.median(e["cpu_pct"] for e in entries),
            "cpu_pcts": [e["cpu_pct"] for e in entries],
            "ticks_pct": statistics.median(e["ticks_pct"] for e in entries),
            "over": None if label == NO_RING else base,
            "increment_pct": None if label == NO_RING else statistics.median(increments),
            "increments": None if label == NO_RING else increments,
            "frames_per_s": (
                statistics.median(e["frames_per_s"] for e in entries)
                if "frames_per_s" in entries[0]
                else None
            ),
        }
    return {
        "window_s": sum(w["window_s"] for w in windows),
        "rounds": rounds,
        "subjects": summary,
        "load": "; ".join(w["load"] for w in windows),
        "windows": windows,
    }


# -- 2. frame timing ---------------------------------------------------------------------------


def timing_phase(workdir: Path, fps: int, seconds: float) -> dict[str, Any]:
    """Rainbow at `fps` on one bridge alone: the images shown over `seconds`, after SETTLE."""
    with Rig(workdir, f"timing-{fps}", fps) as rig:
        start_effect(rig, {"state": "ON", "effect": "rainbow"})
        time.sleep(SETTLE)
        load = load_average()
        t0 = time.monotonic()
        time.sleep(seconds)
        rig.check_alive()
        shown = rig.shown_times(t0, time.monotonic())
    return {"load": load, **frame_timing(shown, fps)}


# -- 3. command latency ------------------------------------------------------------------------


def new_color(rng: random.Random, last: Led | None) -> Led:
    """A random RGB colour (white 0) other than `last`."""
    while (color := (rng.randrange(256), rng.randrange(256), rng.randrange(256), 0)) == last:
        pass
    return color


def as_command(color: Led) -> dict[str, Any]:
    """Home Assistant's JSON light command for `color` (brightness stays 255: shown as is)."""
    red, green, blue, white = color
    return {"state": "ON", "color": {"r": red, "g": green, "b": blue, "w": white}}


def command_latency(workdir: Path, samples: int, seed: int) -> dict[str, Any]:
    """Per cycle, each after a GAP of quiet: a QoS 0 colour command published -> the image
    shown by the ring's driver; a QoS 0 message published -> received by a subscriber on the
    same Mosquitto; an image pushed over bare ZeroMQ -> shown by a second Everloop driver."""
    rng = random.Random(seed)
    bridge, broker, zmq_hop, floor = (Series(n) for n in ("bridge", "broker", "zmq", "floor"))
    with Rig(workdir, "latency", 20) as rig:
        assert rig.sub is not None and rig.pub is not None
        sub, pub = rig.sub, rig.pub
        hop = RingHop()
        try:
            topic = f"{rig.base}/rtt"
            sub.subscribe([topic])
            last: Led | None = None
            hop_color: Led | None = None
            load = load_average()
            for i in range(-20, samples):  # the first 20 cycles warm every path
                time.sleep(GAP)
                last = new_color(rng, last)
                slot = rig.wire.expect(last)
                started = rig.command(as_command(last), qos=0)
                at = slot.wait(LANDING_TIMEOUT)
                if at is None:
                    rig.wire.expectations.forget(last)
                command = None if at is None else at - started
                time.sleep(GAP)
                arrival = sub.expect(topic, str(i))
                started = now_ns()
                pub.publish(topic, str(i))
                at = arrival.wait()
                hop_ns = None if at is None else at - started
                time.sleep(GAP)
                hop_color = new_color(rng, hop_color)
                push = hop.sample(hop_color)
                if i < 0:
                    continue
                bridge.record(command)
                broker.record(hop_ns)
                zmq_hop.record(push)
                floor.record(None if hop_ns is None or push is None else hop_ns + push)
                if i % 50 == 49:
                    rig.check_alive()
        finally:
            hop.close()
    return {
        "load": load,
        "bridge": bridge.summary(),
        "broker": broker.summary(),
        "zmq": zmq_hop.summary(),
        "unavoidable": floor.summary(),
        "ratio_p50": bridge.p50 / floor.p50 if floor.samples and bridge.samples else None,
    }


# -- the report --------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} %"


def spread(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def cpu_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for label, s in r["subjects"].items():
        target = s["fps"] == 20 and label != IDLE_RING
        ok = s["cpu_pct"] <= CPU_TARGET if target else None
        over = (
            ""
            if s["over"] is None
            else f"; {pct(s['increment_pct'])} over {s['over']} ({spread(s['increments'])})"
        )
        frames = "" if s["frames_per_s"] is None else f"; {s['frames_per_s']:.1f} images/s shown"
        rows.append(
            f"| CPU, {label} | {pct(s['cpu_pct'])} of one core ({spread(s['cpu_pcts'])}){over}"
            f"{frames}; medians of {r['rounds']} windows side by side, {r['window_s']:.0f} s "
            f"in all | {f'<= {CPU_TARGET:g} % of one core' if target else 'reported'} | "
            f"{verdict(ok)} |"
        )
    return rows


def timing_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        if "interval_ms" not in r:
            rows.append(f"| frame timing, rainbow {r['fps']} fps | {r['frames']} images | - | - |")
            continue
        interval, jitter = r["interval_ms"], r["jitter_ms"]
        rows.append(
            f"| frame timing, rainbow {r['fps']} fps (nominal {1000 / r['fps']:.2f} ms) | "
            f"interval p50 {interval['p50']:.2f} ms, p99 {interval['p99']:.2f} ms, min "
            f"{interval['min']:.2f}, max {interval['max']:.2f} ms; jitter p50 "
            f"{jitter['p50']:.2f} ms, p99 {jitter['p99']:.2f} ms; {r['achieved_fps']:.2f} "
            f"frames/s over {r['seconds']:.0f} s ({r['frames']} images); {r['skipped']} "
            f"intervals > {SKIPPED:g} periods, {r['bunched']} < {BUNCHED:g} | reported | - |"
        )
    return rows


def ms(us_value: float | None) -> str:
    return "-" if us_value is None or math.isnan(us_value) else f"{us_value / 1000:.2f} ms"


def latency_rows(r: dict[str, Any]) -> list[str]:
    def short(summary: dict[str, Any]) -> str:
        lost = f", {summary['lost']} lost" if summary["lost"] else ""
        return f"p50 {ms(summary['p50_us'])}, p99 {ms(summary['p99_us'])} (n {summary['n']}{lost})"

    ratio = "-" if r["ratio_p50"] is None else f"{r['ratio_p50']:.2f}x"
    return [
        f"| command latency, colour published -> image shown | {short(r['bridge'])}; "
        f"unavoidable (broker hop + ZeroMQ push, paired per cycle) {short(r['unavoidable'])}: "
        f"broker hop {short(r['broker'])}, ZeroMQ push -> shown {short(r['zmq'])}; p50 ratio "
        f"{ratio} | reported | - |"
    ]


def side_by_side_timing(r: dict[str, Any]) -> list[str]:
    """The effects' frame timing in the CPU windows (six bridges side by side), per window."""
    lines = []
    for label, _, command in SUBJECTS:
        if command is None:
            continue
        parts = []
        for w in r["windows"]:
            t = w["subjects"][label].get("timing", {})
            if "interval_ms" in t:
                parts.append(
                    f"interval p99 {t['interval_ms']['p99']:.1f} ms, max "
                    f"{t['interval_ms']['max']:.1f} ms, {t['skipped']} skipped, "
                    f"{t['bunched']} bunched"
                )
        lines.append(f"- {label}: " + "; ".join(parts))
    return lines


def build_report(data: dict[str, Any]) -> str:
    lines = [
        f"# Everloop benchmark, {data['started']}",
        "",
        "| row | measured | target | |",
        "|---|---|---|---|",
        *(cpu_rows(data["cpu"]) if "cpu" in data else []),
        *timing_rows(data.get("timing", [])),
        *(latency_rows(data["latency"]) if "latency" in data else []),
        "",
    ]
    if "cpu" in data:
        c = data["cpu"]
        ticks = ", ".join(f"{k} {pct(s['ticks_pct'])}" for k, s in c["subjects"].items())
        lines += [
            f"CPU: load {c['load']}. The same windows from /proc/<pid>/stat utime + stime "
            f"(10 ms ticks, medians): {ticks}.",
            "Frame timing of the effects in the CPU windows (six bridges side by side):",
            *side_by_side_timing(c),
        ]
    for r in data.get("timing", []):
        lines.append(f"Frame timing at {r['fps']} fps: load {r['load']}.")
    if "latency" in data:
        lines.append(f"Command latency: load {data['latency']['load']}.")
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
        "--timing", type=float, default=30.0, help="seconds of frames per frame rate (30)"
    )
    parser.add_argument("--samples", type=int, default=200, help="latency cycles (200)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about 80 s: --window 8 --rounds 2 --timing 5 --samples 30",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.window, args.rounds, args.timing, args.samples = 8.0, 2, 5.0, 30
    return args


def run(args: argparse.Namespace, workdir: Path, data: dict[str, Any]) -> None:
    """Every phase in turn, each result into `data` as soon as it is there."""
    phases: list[tuple[str, Callable[[], Any]]] = [
        ("cpu", lambda: cpu_phase(workdir, args.window, args.rounds)),
        *(("timing", lambda f=f: timing_phase(workdir, f, args.timing)) for f in TIMING_FPS),
        ("latency", lambda: command_latency(workdir, args.samples, args.seed)),
    ]
    run_phases("everloop", phases, data, repeated=("timing",))


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("everloop", parse_arguments(argv), run, build_report)


if __name__ == "__main__":
    sys.exit(main())
