"""Where a command's and a state change's time goes: the bridge's paths cut into stages.

    .venv/bin/python benchmarks/stages.py [--samples 300] [--out DIR]

`perf.py` says how long a command or a state change takes; this says where. It runs the same
set-up as perf.py's latency phase (a default Mosquitto on a free port, the simulated driver in
this process, the bridge as a subprocess, 8 outputs and 8 inputs at update_interval 0.1 s) but
starts the bridge through this file with `--probe`: in the bridge's process, a few functions
get a wrapper that notes `time.monotonic_ns()` (CLOCK_MONOTONIC, the clock this process uses as
well) on the way in and out, and the notes are written to a file when the bridge stops. Each
sample is then cut at those notes:

- command: set published here -> the bridge's poll returns -> paho hands the message to the
  bridge -> the bridge calls ZeroMQ's send -> send returns -> the driver has the config;
- state: the driver sends the update with the changed level -> the bridge's poll returns ->
  the update handler starts -> paho's publish is called -> paho calls the socket's send ->
  send returns -> the state message is at the subscriber here.

Paced round trips through the broker and in-process ZeroMQ hops are interleaved with the samples,
as in perf.py. The probes cost a little themselves (a wrapper call each, a few µs right after a
wake-up), so the totals run somewhat above perf.py's. paho's socket send is a private method
(`_sock_send`); if a paho release renames it, no state sample can be cut and the report says
so ("cut 0 of N").

Prints a markdown table and writes it to `benchmarks/results/stages-<time>.md`.
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import datetime
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRACE_ENV = "STAGES_TRACE_FILE"
LATE_NS = 50_000_000
"""How long after a sample's end its notes are still looked for (samples are 0.1 s apart)."""

# (module, class, method, note on the way in, note on the way out)
PROBES = [
    ("zmq", "Poller", "poll", None, "poll"),
    ("mqtt_gpio_bridge.mqtt.connection", "MqttConnection", "_message", "message", None),
    ("mqtt_gpio_bridge.malos.link", "MalosLink", "send_config", "zmq_send", "zmq_sent"),
    ("mqtt_gpio_bridge.malos.gpio.driver", "GpioDriver", "on_update", "update", None),
    ("mqtt_gpio_bridge.mqtt.connection", "MqttConnection", "publish", "publish", None),
    ("paho.mqtt.client", "Client", "_sock_send", "socket_send", "socket_sent"),
]

COMMAND_STAGES = [
    ("set published -> the bridge's poll returns (broker, wake-up)", "start", "poll"),
    ("poll returns -> paho hands the message over (paho's read)", "poll", "message"),
    ("the bridge's own handling (topic, payload, pin table)", "message", "zmq_send"),
    ("ZeroMQ send call", "zmq_send", "zmq_sent"),
    ("send returned -> config at the driver (ZeroMQ delivery)", "zmq_sent", "end"),
]
STATE_STAGES = [
    ("driver sends the update -> the bridge's poll returns (ZeroMQ, wake-up)", "start", "poll"),
    ("poll returns -> update handler starts (receive)", "poll", "update"),
    ("the bridge's own handling (decode, pin table)", "update", "publish"),
    ("paho's publish until its socket send", "publish", "socket_send"),
    ("socket send call (loopback TCP, wakes the broker)", "socket_send", "socket_sent"),
    ("send returned -> state message at the subscriber", "socket_sent", "end"),
]


# -- the probed bridge (runs in the bridge's process) ------------------------------------------


def run_probed(argv: Sequence[str]) -> int:
    """Run `mqtt-gpio-bridge <argv>` with the probes in place; the notes go to $TRACE_ENV."""
    import importlib

    notes: list[tuple[str, int]] = []
    clock = time.monotonic_ns

    def probe(function: Callable[..., Any], enter: str | None, leave: str | None) -> Any:
        def probed(*args: Any, **kwargs: Any) -> Any:
            if enter is not None:
                notes.append((enter, clock()))
            result = function(*args, **kwargs)
            if leave is not None:
                notes.append((leave, clock()))
            return result

        return probed

    for module_name, class_name, method, enter, leave in PROBES:
        cls = getattr(importlib.import_module(module_name), class_name)
        function = getattr(cls, method, None)
        if function is not None:
            setattr(cls, method, probe(function, enter, leave))

    def write_notes() -> None:
        with open(os.environ[TRACE_ENV], "w") as out:
            out.writelines(f"{name} {t}\n" for name, t in notes)

    atexit.register(write_notes)
    from mqtt_gpio_bridge.cli import main

    return main(list(argv))


# -- the measuring side ------------------------------------------------------------------------


class Notes:
    """The bridge's notes, searchable by time."""

    def __init__(self, path: Path) -> None:
        rows = [line.split() for line in path.read_text().splitlines()]
        self.names = [name for name, _ in rows]
        self.times = [int(t) for _, t in rows]

    def cut(self, start: int, end: int, names: Sequence[str]) -> dict[str, int] | None:
        """The times of `names` for the sample from `start` to `end`: each the first note of
        that name after the previous one, and "poll", the wake-up that led to the first of
        them. None if a note is missing. (A note may come after `end`: the driver can have the
        config before the bridge's send call has returned.)"""
        found = {"start": start, "end": end}
        i = bisect.bisect_left(self.times, start)
        first = None
        for name in names:
            while i < len(self.names) and self.names[i] != name:
                i += 1
            if i >= len(self.names) or self.times[i] > end + LATE_NS:
                return None
            found[name] = self.times[i]
            first = i if first is None else first
        if first is None:
            return None
        while first >= 0 and self.names[first] != "poll":
            first -= 1
        if first < 0 or self.times[first] < start:
            return None
        found["poll"] = self.times[first]
        return found


def stage_rows(
    samples: list[tuple[int, int]], notes: Notes, stages: list[tuple[str, str, str]]
) -> tuple[list[list[float]], int]:
    """Per stage, the µs of every sample that could be cut; and how many could."""
    names = [name for _, a, b in stages for name in (a, b) if name not in ("start", "end", "poll")]
    order = list(dict.fromkeys(names))
    columns: list[list[float]] = [[] for _ in stages]
    cut = 0
    for start, end in samples:
        found = notes.cut(start, end, order)
        if found is None:
            continue
        cut += 1
        for column, (_, a, b) in zip(columns, stages, strict=True):
            column.append((found[b] - found[a]) / 1000)
    return columns, cut


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, values: list[float]) -> str:
    q = (quantile(values, 0.1), statistics.median(values), quantile(values, 0.9))
    return f"| {label} | {q[0]:.0f} µs | {q[1]:.0f} µs | {q[2]:.0f} µs |"


def table(title: str, columns: list[list[float]], stages: list[tuple[str, str, str]]) -> list[str]:
    lines = [f"| {title} | p10 | p50 | p90 |", "|---|---|---|---|"]
    for column, (label, _, _) in zip(columns, stages, strict=True):
        if column:
            lines.append(row(label, column))
    return lines


@dataclass
class Samples:
    """One run: (start, end) of each command and state sample, in ns, and the baselines."""

    notes: Path
    commands: list[tuple[int, int]] = field(default_factory=list)
    states: list[tuple[int, int]] = field(default_factory=list)
    baseline: dict[str, list[float]] = field(
        default_factory=lambda: {"round trip": [], "ZeroMQ": []}
    )


def measure(cycles: int) -> Samples:
    """Run the probed bridge and take `cycles` of (command, state, round trip, ZeroMQ)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from perf_base import Settings
    from perf_clients import ConfigTap, UpdateLog
    from perf_hops import ZmqHop
    from perf_run import Perf
    from perf_settings import GAP, SETTLE, STATE_PIN
    from perf_subjects import BridgeRun, Subject

    samples = Samples(Path(tempfile.mkdtemp(prefix="mqtt-gpio-stages-")) / "notes.txt")
    os.environ[TRACE_ENV] = str(samples.notes)

    class Probed(Subject):
        def argv(self, config: Path) -> list[str]:
            return [sys.executable, __file__, "--probe", *super().argv(config)[3:]]

    settings = Settings(
        samples=cycles,
        rtt_messages=0,
        burst=0,
        window=0,
        idle_s=0,
        matrix_s=0,
        python_starts=0,
        wait_quiet=False,
        subjects=("bridge",),
    )
    bench = Perf(settings, samples.notes.parent)
    bench.start()
    updates, tap = UpdateLog(), ConfigTap()
    run = BridgeRun(
        bench, "stages", outputs=range(8), inputs=range(8, 16), updates=updates, tap=tap
    )
    run.subject = Probed()
    hop = ZmqHop()
    try:
        run.start()
        time.sleep(SETTLE)
        hop.warm()
        rtt_topic = f"perf/{bench.unique}/rtt-stages"
        bench.sub.subscribe([rtt_topic])
        for i in range(cycles):
            value = 1 - i % 2
            latency = bench.command_sample(run, tap, value)
            if latency is not None:  # the config for it is the last one the driver had
                end = tap.records[-1][0]
                samples.commands.append((end - latency, end))
            time.sleep(GAP)
            mark = len(updates.changes)
            latency = bench.state_sample(run, updates, value)
            sent = updates.sent_with(mark, STATE_PIN, value)
            if latency is not None and sent is not None:
                samples.states.append((sent, sent + latency))
            time.sleep(GAP)
            for key, sample in (
                ("round trip", lambda i=i: bench.rtt_sample(rtt_topic, i)),
                ("ZeroMQ", hop.sample),
            ):
                ns = sample()
                if ns is not None:
                    samples.baseline[key].append(ns / 1000)
                time.sleep(GAP)
    finally:
        hop.close()
        run.stop()
        bench.close()
    return samples


def report(samples: Samples, cycles: int) -> str:
    notes = Notes(samples.notes)
    command_columns, command_cut = stage_rows(samples.commands, notes, COMMAND_STAGES)
    state_columns, state_cut = stage_rows(samples.states, notes, STATE_STAGES)
    lines = [
        f"# Stages of the bridge's latency, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"{cycles} cycles; command samples cut {command_cut} of {len(samples.commands)}, "
        f"state samples {state_cut} of {len(samples.states)} (a sample is left out when a "
        "note is missing).",
        "",
        *table("command stage", command_columns, COMMAND_STAGES),
        row("**command, whole (probed)**", [(e - s) / 1000 for s, e in samples.commands]),
        "",
        *table("state stage", state_columns, STATE_STAGES),
        row("**state, whole (probed)**", [(e - s) / 1000 for s, e in samples.states]),
        "",
        "| baseline, paced 0.1 s, same run | p10 | p50 | p90 |",
        "|---|---|---|---|",
    ]
    lines += [row(key, values) for key, values in samples.baseline.items() if values]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--probe"]:
        return run_probed(arguments[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="cycles (300)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(arguments)
    started = datetime.datetime.now()
    text = report(measure(args.samples), args.samples)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"stages-{started:%Y%m%d-%H%M%S}.md"
    path.write_text(text)
    print(text)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
