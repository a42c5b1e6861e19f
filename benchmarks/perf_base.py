"""perf.py's run: its settings, results, broker and clients, and the steps phases share."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.mosquitto import DEFAULT, Mosquitto
from common.ports import free_port_block
from common.processes import (
    load_average,
    other_benchmarks,
)
from perf_clients import Publisher, Subscriber
from perf_settings import BUSY_GAP, PerfError, Series, now_ns
from perf_subjects import MqttIo

# -- the run ---------------------------------------------------------------------------------


@dataclass
class Settings:
    samples: int
    rtt_messages: int
    burst: int
    window: int
    idle_s: float
    matrix_s: float
    python_starts: int
    wait_quiet: bool
    subjects: tuple[str, ...] = ("bridge", "mqttio")


@dataclass
class IdleResult:
    pins: int
    interval: float
    window_s: float
    cpu_pct: float
    rss_kb: int
    hwm_kb: int
    startup_s: float | None
    null_cpu_pct: float
    null_rss_kb: int
    null_startup_s: float | None
    pss_kb: int = 0
    uss_kb: int = 0
    null_pss_kb: int = 0
    null_uss_kb: int = 0
    exit_status: int | None = None


@dataclass
class SubjectIdle:
    """mqtt-io over an idle window (the bridge's are `IdleResult`s, beside a floor)."""

    outputs: int
    inputs: int
    interval: float
    window_s: float
    cpu_pct: float
    rss_kb: int
    hwm_kb: int
    pss_kb: int
    uss_kb: int
    startup_s: float | None
    stdout_lines_per_s: float
    exit_status: int | None = None


class PerfBase:
    """A run's broker, clients, settings and results, and the steps every phase uses."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.unique = uuid.uuid4().hex[:8]
        self.broker = Mosquitto(free_port_block(1), workdir, DEFAULT, PerfError)
        self.sub: Subscriber
        self.pub: Publisher
        self.series: dict[str, Series] = {
            key: Series(name)
            for key, name in [
                ("rtt", "broker round trip, back to back"),
                ("rtt_end", "broker round trip, back to back (again at the end)"),
                ("rtt_paced", "broker round trip, paced 0.1 s"),
                ("zmq", "ZeroMQ PUSH -> PULL, paced 0.1 s"),
                ("zmq_process", "ZeroMQ PUSH -> PULL in another process, paced 0.1 s"),
                ("command", "command: set publish -> driver config"),
                ("state", "state: driver update sent -> state message"),
                ("state_floor", "state floor: update -> perf_null.py -> paho publish"),
                ("command_floor", "command floor: set -> perf_null.py -> ZeroMQ push"),
                ("command_busy", f"command, {BUSY_GAP * 1000:g} ms apart (no echo awaited)"),
                ("mqttio_command", "mqtt-io command: set publish -> `set_pin` line read"),
                ("mqttio_rtt_paced", "broker round trip, paced 0.1 s (mqtt-io phase)"),
                ("pipe", "pipe write -> read (mqtt-io's stdout hop), paced 0.1 s"),
            ]
        }
        self.mqttio: MqttIo | None = None
        """mqtt-io, when it is in the run."""
        self.mqttio_note = "not asked for (--subjects)"
        """What ran as mqtt-io, or why it did not."""
        self.mqttio_idle: list[SubjectIdle] = []
        self.throughput: dict[str, Any] = {}
        self.burst_baseline: dict[str, Any] = {}
        self.idle: list[IdleResult] = []
        self.startups: list[dict[str, Any]] = []
        self.python_start_s: list[float] = []
        self.exits: dict[str, int | None] = {}
        self.contention: list[str] = []
        self.loads: list[tuple[str, str]] = []
        self.peak_hwm_kb = 0

    # -- phases ----------------------------------------------------------------------------

    def quiet(self, phase: str) -> None:
        """Before a phase: wait until no other benchmark runs (or note that one does)."""
        others = other_benchmarks()
        if others and self.settings.wait_quiet:
            print(f"perf: waiting for other benchmarks to end before {phase}:", flush=True)
            for line in others:
                print(f"  {line}", flush=True)
            while others:
                time.sleep(30)
                others = other_benchmarks()
        elif others:
            self.contention.append(f"{phase}: {'; '.join(others)}")
        self.loads.append((phase, load_average()))
        print(f"perf: {phase} (load average {load_average()})", flush=True)

    def start(self) -> None:
        self.broker.start()
        self.sub = Subscriber(self.broker.port)
        self.pub = Publisher(self.broker.port)

    def close(self) -> None:
        for closer in (getattr(self, "pub", None), getattr(self, "sub", None)):
            if closer is not None:
                closer.close()
        self.broker.stop()

    def rtt_sample(self, topic: str, seq: int) -> int | None:
        slot = self.sub.expect(topic, str(seq))
        started = now_ns()
        self.pub.publish(topic, str(seq))
        at = slot.wait()
        if at is None:
            self.sub.expectations.forget((topic, str(seq).encode()))
            return None
        return at - started

    def round_trips(self, key: str, count: int) -> None:
        """Baseline 1: one small message in flight at a time, back to back."""
        topic = f"perf/{self.unique}/rtt-{key}"
        self.sub.subscribe([topic])
        series = self.series[key]
        for seq in range(count + 100):
            latency = self.rtt_sample(topic, seq)
            if seq >= 100:  # the first 100 warm the path up
                series.record(latency)

    def python_starts(self) -> None:
        """Start-up baseline: a bare interpreter, `python -c pass`."""
        for _ in range(self.settings.python_starts):
            started = now_ns()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            self.python_start_s.append((now_ns() - started) / 1e9)
