"""perf.py's chart (matplotlib, optional)."""

from __future__ import annotations

import statistics
from pathlib import Path

from perf_run import Perf
from perf_settings import IDLE_CPU_TARGET, us


def write_chart(perf: Perf, path: Path) -> str:
    """Latency distributions (left) and idle CPU (right); a note if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (.venv/bin/pip install matplotlib)"
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 7))
    for key, style in (
        ("rtt", ":"),
        ("rtt_paced", "--"),
        ("zmq", "-."),
        ("zmq_process", "-."),
        ("command", "-"),
        ("state", "-"),
        ("state_floor", ":"),
        ("command_floor", ":"),
        ("pipe", "-."),
        ("mqttio_command", "-"),
    ):
        series = perf.series[key]
        if not series.samples:
            continue
        ordered = sorted(series.samples)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        left.step(
            ordered,
            fractions,
            style,
            where="post",
            label=f"{series.name} (p50 {us(series.p50)}, p99 {us(series.p99)})",
        )
    left.set_xscale("log")
    left.set_xlabel("latency, µs (log)")
    left.set_ylabel("fraction of samples at or below")
    left.axhline(0.5, color="grey", linewidth=0.5)
    left.axhline(0.99, color="grey", linewidth=0.5)
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    left.set_title("latency distributions (same run)")
    intervals = (1.0, 0.1, 0.02)
    for pins, marker in ((1, "o"), (4, "s"), (16, "^")):
        points = [
            (r.interval, r.cpu_pct)
            for i in intervals
            for r in perf.idle
            if r.pins == pins and r.interval == i
        ]
        if points:
            right.plot(*zip(*points, strict=True), marker=marker, label=f"bridge, {pins} pins")
    null_points = sorted(
        {
            r.interval: statistics.median(
                [x.null_cpu_pct for x in perf.idle if x.interval == r.interval]
            )
            for r in perf.idle
        }.items()
    )
    if null_points:
        right.plot(*zip(*null_points, strict=True), "k--", marker="x", label="floor: perf_null.py")
    for r, marker in zip(perf.mqttio_idle, ("D", "P"), strict=False):
        right.plot(
            [r.interval], [r.cpu_pct], marker, label=f"mqtt-io, 16 pins, {r.inputs} inputs polled"
        )
    right.plot(
        [0.1], [IDLE_CPU_TARGET], "r*", markersize=12, label="target: 16 pins at 0.1 s, at most"
    )
    right.set_xscale("log")
    right.set_xticks(list(intervals), [f"{i:g}" for i in intervals])
    right.set_xlabel("update_interval, s (log)")
    right.set_ylabel("idle CPU, % of one core")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    right.set_title("idle CPU by pins and update interval")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"chart: {path}"
