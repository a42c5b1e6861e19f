"""Performance harness: latency, throughput and footprint of the bridge, each next to a baseline.

Run it from the checkout (not part of the test suite; needs `mosquitto` on the PATH):

    .venv/bin/python benchmarks/perf.py            # full run, about 20 minutes
    .venv/bin/python benchmarks/perf.py --quick    # a short smoke run, about 2 minutes

The chart needs matplotlib (`.venv/bin/pip install matplotlib`, a benchmark-only dependency);
without it the PNG is skipped with a note. Results go to `benchmarks/results/perf-<time>.md`,
`.json` (every sample) and `.png` (`--out DIR` to write elsewhere).

One run starts a Mosquitto with a default configuration (a listener on a free port of
127.0.0.1 and `allow_anonymous true`, nothing else: no `set_tcp_nodelay`), simulated MALOS
drivers in this process (`mqtt_gpio_bridge.sim.driver`) and the bridge as a subprocess
(`python -m mqtt_gpio_bridge run --config X --log-level WARNING`), so that its CPU time and
memory in /proc are its own. It measures:

1. Baselines. The broker round trip of a small QoS 0 message between two paho clients
   (publish -> Mosquitto -> subscriber), back to back, one message in flight (2,000 by
   default, measured at the start and again at the end to show drift); the same round trip
   paced 0.1 s apart; and a bare pyzmq PUSH -> PULL, warm, paced 0.1 s apart (the ZeroMQ hop
   no bridge can avoid). The paced baselines are interleaved with the latency samples below,
   so the comparison holds even when the machine drifts.
2. Command latency: a QoS 0 publish on `<base>/gpio/0/set` (what `mosquitto_pub` sends),
   alternating ON/OFF, 0.1 s apart -> the `DriverConfig` for it received at the simulated
   driver's config socket (its `on_wire` callback, in this process: the same clock).
3. State latency: the simulated driver sending the update frame that carries a changed input
   level -> the bridge's state message arriving at an MQTT subscriber (see `UpdateLog`).
4. Throughput: a burst of QoS 1 set commands over 16 output pins; configs per second reaching
   the driver, per-pin loss and order, and the final board and retained states. Baseline: the
   same burst from the same publisher to a bare paho subscriber (QoS 1).
5. Footprint: CPU time (% of one core) and resident memory (VmRSS, VmHWM) of the bridge over
   an idle window with 16 pins at update_interval 0.1 s and 0.02 s, then with 1, 4 and 16 pins
   at 1 s, 0.1 s and 0.02 s; start-up time from process start to `online` on the status
   topic. Baseline: `benchmarks/perf_null.py` in the same window (a zmq.Poller loop receiving
   the same updates, nothing else) and a bare `python -c pass`.

Targets are reported as pass/fail, never asserted (the exit status is 0 unless the run itself
broke). Other benchmarks (`soak.py`, `scale.py`) compete for the same two cores: before each
phase this waits (polling every 30 s) until none is running, unless `--no-wait`.

mqtt-io 2.7.0 runs beside the bridge in the same run (`--subjects bridge,mqttio`, the
default), from a venv of its own that `benchmarks/mqttio.py` makes on first use
(`benchmarks/.venv-mqttio`, benchmark-only; if it cannot be made, the run goes on without it and
the report says why). Its `stdio` GPIO module stands in for the hardware: an output write is a
`set_pin(pin=0, value=True)` line on its stdout, which this process reads from a pipe. For it:

2m. Command latency: the same QoS 0 publish, on its `<base>/output/out0/set` -> the `set_pin`
    line for it, timestamped when this process reads it from mqtt-io's stdout pipe (a reader
    thread blocked in `os.read`). Baselines, paced 0.1 s and interleaved with its commands as
    for the bridge: a round trip, and the pipe hop without mqtt-io (a line written to an
    `os.pipe` here, read by the same reader code). Its added time (command - paced round
    trip - pipe) is set against the bridge's (command - paced round trip - ZeroMQ), each
    with the paced round trip of its own phase: the target is that the bridge adds no more
    than mqtt-io.
3m. State latency: not measured. The stdio module's `get_pin` prints and returns False; it
    reads nothing from stdin, so an input never changes.
5m. Footprint: CPU time and VmRSS of the mqtt-io process over the same idle window, with 16
    pins at 0.1 s: 12 outputs + 4 polled inputs (the configuration of the issue's figures),
    then 16 polled inputs (every pin read each 0.1 s, as the MALOS driver's update does);
    start-up from process start to `running` on its status topic.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mqttio
import paho.mqtt.client as paho
import zmq
from harness import HOST, BenchmarkError, cpu_ticks, end_process, free_port_block
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.malos.gpio.codec import PinMode, decode_levels, encode_pin_config
from mqtt_gpio_bridge.sim.codec import decode_pin_config, encode_levels
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
PIN_COUNT = 16

GAP = 0.1
"""Seconds of quiet before every paced sample (the issue's 0.1 s idle gap)."""
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

# Targets from the issue.
CMD_P50_FACTOR = 1.25
CMD_P99_FACTOR = 2.0
STATE_P50_FACTOR = 1.25
THROUGHPUT_TARGET = 5000.0
IDLE_CPU_TARGET = 0.3
STARTUP_TARGET = 0.8
RSS_TARGET_MB = 40.0

BUSY_GAP = 0.03
"""Seconds between the commands of item 2b: several per driver update (0.1 s)."""
STALL_US = 20_000
"""A command this late in 2b was held back by Nagle + delayed ACK, not by work."""

# mqtt-io 2.7.0 with its stdio module, as the issue quotes it (information, not targets).
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


# -- the machine, ports and processes --------------------------------------------------------


def other_benchmarks() -> list[str]:
    """Command lines of soak.py / scale.py runs on this machine (they would skew the figures)."""
    result = subprocess.run(
        ["pgrep", "-af", "soak.py|scale.py"], capture_output=True, text=True, check=False
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def memory_detail_kb(pid: int) -> tuple[int, int]:
    """(PSS, USS) of a live process in kB, from /proc/<pid>/smaps_rollup: RSS counts shared
    library pages in full, PSS shares them out, USS (private pages) is what it alone holds."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss", "Private_Clean", "Private_Dirty"):
            values[key] = int(rest.split()[0])
    return values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


def secs(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f} s"


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


# -- Mosquitto -------------------------------------------------------------------------------


class Broker:
    """A Mosquitto on a free port with a default configuration (no tuning at all)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port_block(1)
        self.config = workdir / "mosquitto.conf"
        # `allow_anonymous` only because Mosquitto 2 refuses anonymous clients on a listener
        # otherwise; everything else (set_tcp_nodelay false, max_inflight_messages 20,
        # max_queued_messages 1000, no persistence) is Mosquitto's default.
        self.config.write_text(f"listener {self.port} {HOST}\nallow_anonymous true\n")
        self.log = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((HOST, self.port)) == 0:
                    return
            if self.process.poll() is not None:
                raise PerfError(f"mosquitto exited with {self.process.returncode}: {self.log}")
            if time.monotonic() > deadline:
                raise PerfError(f"mosquitto is not listening on {self.port} after 10 s")
            time.sleep(0.01)

    def drop_notices(self) -> int:
        """How many times Mosquitto logged that it dropped messages for a client."""
        return self.log.read_text(errors="replace").count("dropped") if self.log.exists() else 0

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


# -- waiting for one event -------------------------------------------------------------------


class Slot:
    """One awaited event: the thread that sees it stores its time and wakes the waiter."""

    __slots__ = ("event", "t")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.t = 0

    def hit(self, t: int) -> None:
        self.t = t
        self.event.set()

    def wait(self, timeout: float = SAMPLE_TIMEOUT) -> int | None:
        return self.t if self.event.wait(timeout) else None


class Expectations:
    """Slots keyed by what will be seen; a hit on a key nobody waits for is ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Any, Slot] = {}

    def expect(self, key: Any) -> Slot:
        slot = Slot()
        with self._lock:
            self._slots[key] = slot
        return slot

    def hit(self, key: Any, t: int) -> None:
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None:
            slot.hit(t)

    def forget(self, key: Any) -> None:
        with self._lock:
            self._slots.pop(key, None)


# -- MQTT clients ----------------------------------------------------------------------------


def _client(role: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=f"perf-{role}-{uuid.uuid4().hex[:8]}")


def _connect(client: paho.Client, port: int, start_loop: Callable[[], object]) -> None:
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect(HOST, port, keepalive=60)
    start_loop()
    if not connected.wait(10):
        raise PerfError(f"{client._client_id!r} could not connect to the broker")


class Publisher:
    """The paho client that sends commands and baseline messages.

    Its network loop runs in a thread of ours (`loop_forever`), not paho's `loop_start`: with
    no paho thread registered, `publish()` writes to the socket at once from the calling thread,
    as `mosquitto_pub` does, instead of waking a network thread first. The loop thread only
    reads (CONNACK, PUBACKs) and writes what a full socket buffer held back.
    """

    def __init__(self, port: int) -> None:
        self.client = _client("pub")
        self.client.max_inflight_messages_set(0)  # unlimited: a burst is not held back here
        self.client.max_queued_messages_set(0)
        self._thread = threading.Thread(
            target=self.client.loop_forever, name="perf-pub", daemon=True
        )
        _connect(self.client, port, self._thread.start)

    def publish(self, topic: str, payload: str, qos: int = 0) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self._thread.join(5)


class Subscriber:
    """A paho client (with paho's own network thread) that timestamps every message on arrival.

    `expect(topic, payload)` before the action; the slot is hit with the arrival time, taken
    first thing in `on_message`. The last payload of every topic is kept as well.
    """

    def __init__(self, port: int, role: str = "sub", *, count_topic: str | None = None) -> None:
        self.client = _client(role)
        self.expectations = Expectations()
        self.last: dict[str, bytes] = {}
        self.count_topic = count_topic
        self.counted: list[int] = []
        self.credits: threading.Semaphore | None = None
        """Released once per counted message (flow control of a windowed burst)."""
        self._acked: set[int] = set()
        self._cond = threading.Condition()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        _connect(self.client, port, self.client.loop_start)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        t = now_ns()
        if message.topic == self.count_topic:
            self.counted.append(t)
            if self.credits is not None:
                self.credits.release()
            return
        self.last[message.topic] = bytes(message.payload)
        self.expectations.hit((message.topic, message.payload), t)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def subscribe(self, topics: Iterable[str], qos: int = 0) -> None:
        """Subscribe and return once the broker acknowledged (retained messages follow)."""
        result, mid = self.client.subscribe([(topic, qos) for topic in topics])
        if result != paho.MQTT_ERR_SUCCESS or mid is None:
            raise PerfError(f"subscribe failed: {result}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acked, 10):
                raise PerfError("no SUBACK in 10 s")

    def expect(self, topic: str, payload: str) -> Slot:
        return self.expectations.expect((topic, payload.encode()))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


# -- the simulated driver, instrumented ------------------------------------------------------


@dataclass
class UpdateLog:
    """When the driver sent each update that carried a changed set of levels.

    Fed by `Wire` just before the simulated driver sends an update frame: the start of the
    state latency, "update published -> state received", without the wait for the driver's
    next periodic tick (and without the simulator's own encoding, which MALOS does in C++).
    """

    def __init__(self) -> None:
        self.changes: list[tuple[int, int]] = []
        """(time ns, levels) of each update whose levels differ from the previous one's."""
        self._previous: int | None = None

    def sent(self, t: int, frame: bytes) -> None:
        levels = decode_levels(frame)
        if levels != self._previous:
            self._previous = levels
            self.changes.append((t, levels))

    def sent_with(self, since: int, pin: int, level: int) -> int | None:
        """Time of the first update after `changes[since]` that showed `pin` at `level`."""
        for t, value in self.changes[since:]:
            if (value >> pin) & 1 == level:
                return t
        return None


class ConfigTap:
    """Every config that reached the driver, with its time, and the awaited ones.

    Fed by `Wire` the moment the simulated driver has received the frame, before its own
    decoding and applying (as the ZeroMQ baseline stops at the receive): "the DriverConfig
    arriving at the driver's config socket".
    """

    def __init__(self) -> None:
        self.records: list[tuple[int, int, int, int]] = []
        """(time ns, pin (-1: none), mode, value) of every config."""
        self.expectations = Expectations()
        self.credits: threading.Semaphore | None = None
        """Released once per config (flow control of a windowed burst)."""

    def received(self, t: int, frame: bytes) -> None:
        try:
            config = decode_pin_config(frame)
        except CodecError:
            config = None
        if config is None or config.pin is None:
            self.write(t, -1, -1, -1)
        else:
            self.write(t, config.pin, config.value, config.mode)

    def write(self, t: int, pin: int, value: int, mode: int = PinMode.OUTPUT) -> None:
        """One write seen at the "hardware" at time t: a driver config, or an mqtt-io line."""
        if self.credits is not None:
            self.credits.release()
        self.records.append((t, pin, mode, value))
        self.expectations.hit((pin, value), t)


class Wire:
    """The simulated driver's `on_wire` callback: the time first, then the frame to `updates`
    (an update about to be sent) or to `configs` (a config just received)."""

    def __init__(self, updates: UpdateLog, configs: ConfigTap | None) -> None:
        self.updates = updates
        self.configs = configs

    def __call__(self, kind: str, frame: bytes) -> None:
        t = now_ns()
        if kind == "update":
            self.updates.sent(t, frame)
        elif self.configs is not None:
            self.configs.received(t, frame)


# -- what runs as "the bridge" ---------------------------------------------------------------


class Subject:
    """How to run, configure and address the program under test: mqtt-gpio-bridge here, mqtt-io
    in `MqttIo`. Every phase takes the subject as a parameter.

    The bridge drives the simulated MALOS driver of this process (its "hardware"); a subject
    without `simulated_driver` writes its hardware calls to stdout instead (`mqttio`).
    """

    key = "bridge"
    name = "mqtt-gpio-bridge"
    online_payload = "online"
    simulated_driver = True

    def config_text(
        self,
        *,
        mqtt_port: int,
        malos_port: int,
        base: str,
        unique: str,
        outputs: Sequence[int],
        inputs: Sequence[int],
        update_interval: float,
    ) -> str:
        lines = [
            "mqtt:",
            f"  host: {HOST}",
            f"  port: {mqtt_port}",
            f"  base_topic: {base}",
            "malos:",
            f"  host: {HOST}",
            f"  base_port: {malos_port}",
            f"  update_interval: {update_interval}",
            "homeassistant:",
            f"  prefix: perf_ha_{unique}",
            f"  node_id: perf_{unique}",
            "pins:",
        ]
        for pin in outputs:
            lines += [f"  - pin: {pin}", "    mode: output", '    initial: "off"']
        for pin in inputs:
            lines += [f"  - pin: {pin}", "    mode: input"]
        return "\n".join(lines) + "\n"

    def argv(self, config: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mqtt_gpio_bridge",
            "run",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
        ]

    def env(self) -> dict[str, str] | None:
        """The environment of its process; None: this one's."""
        return None

    def status_topic(self, base: str) -> str:
        return f"{base}/status"

    def set_topic(self, base: str, pin: int) -> str:
        return f"{base}/gpio/{pin}/set"

    def state_topic(self, base: str, pin: int, *, output: bool) -> str:
        return f"{base}/gpio/{pin}/state"

    def subscriptions(self, base: str) -> list[str]:
        """What the subscriber follows: status and every pin's state."""
        return [self.status_topic(base), f"{base}/gpio/+/state"]


class MqttIo(Subject):
    """mqtt-io from its own venv, its `stdio` GPIO module as the hardware (see `mqttio`).

    `update_interval` becomes the inputs' `poll_interval`; there is no MALOS port.
    """

    key = "mqttio"
    name = f"mqtt-io {mqttio.VERSION}"
    online_payload = mqttio.RUNNING
    simulated_driver = False

    def __init__(self, python: Path) -> None:
        self.python = python

    def config_text(
        self,
        *,
        mqtt_port: int,
        malos_port: int,
        base: str,
        unique: str,
        outputs: Sequence[int],
        inputs: Sequence[int],
        update_interval: float,
    ) -> str:
        return mqttio.config_text(
            host=HOST,
            port=mqtt_port,
            prefix=base,
            outputs=outputs,
            inputs=inputs,
            poll_interval=update_interval,
            ha_prefix=f"perf_ha_{unique}",
        )

    def argv(self, config: Path) -> list[str]:
        return [str(self.python), "-m", "mqtt_io", str(config)]

    def env(self) -> dict[str, str] | None:
        return mqttio.environment()

    def status_topic(self, base: str) -> str:
        return mqttio.status_topic(base)

    def set_topic(self, base: str, pin: int) -> str:
        return mqttio.set_topic(base, pin)

    def state_topic(self, base: str, pin: int, *, output: bool) -> str:
        return mqttio.state_topic(base, pin, output=output)

    def subscriptions(self, base: str) -> list[str]:
        return [self.status_topic(base), f"{base}/output/+", f"{base}/input/+"]


BRIDGE = Subject()


class BridgeRun:
    """One process of the subject: the bridge with its own simulated driver (fresh ports,
    fresh board), or mqtt-io with its stdout drained by a `mqttio.StdoutReader` that hands
    each `set_pin` line to `tap` as a write."""

    def __init__(
        self,
        perf: Perf,
        label: str,
        *,
        outputs: Sequence[int],
        inputs: Sequence[int] = (),
        update_interval: float = 0.1,
        updates: UpdateLog | None = None,
        tap: ConfigTap | None = None,
        subject: Subject = BRIDGE,
    ) -> None:
        self.perf = perf
        self.label = label
        self.outputs = list(outputs)
        self.inputs = list(inputs)
        self.update_interval = update_interval
        self.board = Board()
        self.updates = updates if updates is not None else UpdateLog()
        self.tap = tap
        self.subject = subject
        self.name = f"{subject.key}-{label}"
        """Of its config and log files in the work directory."""
        self.base = f"perf/{perf.unique}/{subject.key}/{label}"
        self.driver: SimulatedDriver | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout: mqttio.StdoutReader | None = None
        self.startup_s: float | None = None
        self.startup_steps: dict[str, float | None] = {}
        """Seconds from process start to `offline` on the status topic (connected to the
        broker, the driver not seen yet) and to the driver's first update (bridge only)."""
        self.exit_status: int | None = None

    @property
    def log(self) -> Path:
        return self.perf.workdir / f"{self.name}.log"

    def state_topic(self, pin: int) -> str:
        return self.subject.state_topic(self.base, pin, output=pin in self.outputs)

    def set_topic(self, pin: int) -> str:
        return self.subject.set_topic(self.base, pin)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> BridgeRun:
        perf, subject = self.perf, self.subject
        malos_port = 0
        if subject.simulated_driver:
            malos_port = free_port_block(4)
            wire = Wire(self.updates, self.tap)
            self.driver = SimulatedDriver(HOST, malos_port, self.board, on_wire=wire).start()
        config = perf.workdir / f"{self.name}.yaml"
        config.write_text(
            subject.config_text(
                mqtt_port=perf.broker.port,
                malos_port=malos_port,
                base=self.base,
                unique=f"{perf.unique}_{subject.key}_{self.label}".replace(".", "_"),
                outputs=self.outputs,
                inputs=self.inputs,
                update_interval=self.update_interval,
            )
        )
        status = subject.status_topic(self.base)
        perf.sub.subscribe(subject.subscriptions(self.base))
        online = perf.sub.expect(status, subject.online_payload)
        offline = perf.sub.expect(status, "offline")
        with self.log.open("ab") as log:
            started = now_ns()
            self.process = subprocess.Popen(
                subject.argv(config),
                stdout=log if subject.simulated_driver else subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                env=subject.env(),
            )
        if self.process.stdout is not None:
            self.stdout = mqttio.StdoutReader(self.process.stdout.fileno(), self._hardware)
        deadline = time.monotonic() + ONLINE_TIMEOUT
        at = None
        while at is None:
            at = online.wait(0.05)
            if at is None and (self.process.poll() is not None or time.monotonic() > deadline):
                self.stop()
                text = self.log.read_text(errors="replace")
                raise PerfError(
                    f"{subject.name} {self.label} not online (exit status {self.exit_status}): "
                    + " / ".join(text.strip().splitlines()[-3:])
                )
        self.startup_s = (at - started) / 1e9
        mqtt_up = offline.t if offline.event.is_set() else None
        perf.sub.expectations.forget((status, b"offline"))
        first_update = self.updates.changes[0][0] if self.updates.changes else None
        self.startup_steps = {
            "mqtt": None if mqtt_up is None else (mqtt_up - started) / 1e9,
            "first_update": None if first_update is None else (first_update - started) / 1e9,
        }
        perf.startups.append(
            {
                "subject": subject.key,
                "bridge": self.label,
                "online": self.startup_s,
                **self.startup_steps,
            }
        )
        return self

    def _hardware(self, t: int, pin: int, level: int) -> None:
        """A `set_pin` line read from mqtt-io's stdout at time t."""
        if self.tap is not None:
            self.tap.write(t, pin, level)

    def wait_states(self, expected: dict[int, str], timeout: float = 5.0) -> list[str]:
        """Wait until every pin's last state message is as expected; the differences left."""
        deadline = time.monotonic() + timeout
        while True:
            wrong = []
            for pin, payload in expected.items():
                got = self.perf.sub.last.get(self.state_topic(pin))
                if got != payload.encode():
                    wrong.append(f"pin {pin}: state {got!r}, expected {payload!r}")
            if not wrong or time.monotonic() > deadline:
                return wrong
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self.exit_status = end_process(self.process)
        if self.driver is not None:
            self.driver.stop()
            self.driver = None
        if self.stdout is not None:
            self.stdout.join()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


class NullRun:
    """`perf_null.py` with its own simulated driver: the idle floor, or with `topic` the
    state-latency floor (it republishes changed updates there; see that file)."""

    def __init__(
        self,
        perf: Perf,
        update_interval: float,
        *,
        updates: UpdateLog | None = None,
        topic: str | None = None,
        tap: ConfigTap | None = None,
    ) -> None:
        self.perf = perf
        self.update_interval = update_interval
        self.updates = updates if updates is not None else UpdateLog()
        self.topic = topic
        self.tap = tap
        self.driver: SimulatedDriver | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> NullRun:
        malos_port = free_port_block(4)
        wire = Wire(self.updates, self.tap)
        self.driver = SimulatedDriver(HOST, malos_port, on_wire=wire).start()
        frame = encode_pin_config(
            0, PinMode.INPUT, update_interval=self.update_interval, ping_timeout=5.0
        )
        argv = [
            sys.executable,
            str(ROOT / "benchmarks" / "perf_null.py"),
            "--host",
            HOST,
            "--base-port",
            str(malos_port),
            "--config-hex",
            frame.hex(),
        ]
        if self.topic is not None:
            on, off = (encode_pin_config(CMD_PIN, PinMode.OUTPUT, value) for value in (1, 0))
            argv += ["--mqtt-port", str(self.perf.broker.port), "--topic", self.topic]
            argv += ["--command-hex", on.hex(), "--command-off-hex", off.hex()]
        started = now_ns()
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=ROOT)
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], ONLINE_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.stop()
            raise PerfError("perf_null.py did not get the driver's first update")
        self.startup_s = (now_ns() - started) / 1e9
        return self

    def stop(self) -> None:
        end_process(self.process)
        if self.driver is not None:
            self.driver.stop()
            self.driver = None


# -- the bare ZeroMQ hop ---------------------------------------------------------------------


class ZmqHop:
    """A pyzmq PUSH (this thread) -> PULL (a thread polling like the simulated driver)."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.pull = self.context.socket(zmq.PULL)
        self.push = self.context.socket(zmq.PUSH)
        for sock in (self.pull, self.push):
            sock.setsockopt(zmq.LINGER, 0)
        port = self.pull.bind_to_random_port(f"tcp://{HOST}")
        self.push.connect(f"tcp://{HOST}:{port}")
        self._slot: Slot | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="perf-zmq-pull", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        while not self._stop.is_set():
            for sock, _ in poller.poll(100):  # the simulated driver polls at most 100 ms too
                sock.recv(zmq.NOBLOCK)
                t = now_ns()
                slot, self._slot = self._slot, None
                if slot is not None:
                    slot.hit(t)

    def sample(self) -> int | None:
        """One message through the hop; its latency in ns, None if it never arrived."""
        slot = Slot()
        self._slot = slot
        started = now_ns()
        self.push.send(b"\x08\x01")
        at = slot.wait()
        return None if at is None else at - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.pull.close(0)
        self.push.close(0)
        self.context.term()


class ZmqProcessHop:
    """A pyzmq PUSH (this thread) -> PULL in another process (`perf_null.py --pull-port`),
    which prints its monotonic clock at each arrival: the hop every bridge makes into MALOS."""

    def __init__(self) -> None:
        port = free_port_block(1)
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://{HOST}:{port}")  # ZeroMQ connects once the PULL is bound
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "perf_null.py"), "--pull-port", str(port)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        if self._line(ONLINE_TIMEOUT) != b"ready":
            self.close()
            raise PerfError("perf_null.py --pull-port did not start")

    def _line(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        return self.stdout.readline().strip() if ready else None

    def sample(self) -> int | None:
        """One message through the hop; its latency in ns, None if it never arrived."""
        started = now_ns()
        self.push.send(b"\x08\x01")
        line = self._line(SAMPLE_TIMEOUT)
        return None if not line else int(line) - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        end_process(self.process)
        self.push.close(0)
        self.context.term()


class PipeHop:
    """mqtt-io's hop to this process without mqtt-io: a `set_pin` line written to an `os.pipe`
    here, read by the `mqttio.StdoutReader` that reads mqtt-io's stdout (a thread of its own)."""

    LINE = b"set_pin(pin=0, value=True)\n"

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._slot: Slot | None = None
        self._reader = mqttio.StdoutReader(self._read_fd, self._on_write)

    def _on_write(self, t: int, _pin: int, _level: int) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.hit(t)

    def sample(self) -> int | None:
        """One line through the pipe; its latency in ns, None if it never arrived."""
        slot = Slot()
        self._slot = slot
        started = now_ns()
        os.write(self._write_fd, self.LINE)
        at = slot.wait()
        return None if at is None else at - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        os.close(self._write_fd)
        self._reader.join()
        os.close(self._read_fd)


def cpu_shares(pids: Sequence[int], seconds: float) -> tuple[list[float], float]:
    """The % of one core each process used while this one slept `seconds`; the wall time."""
    before = [cpu_ticks(pid) for pid in pids]
    t0 = time.monotonic()
    time.sleep(seconds)
    after = [cpu_ticks(pid) for pid in pids]
    wall = time.monotonic() - t0
    return [100 * (b - a) / TICKS / wall for a, b in zip(before, after, strict=True)], wall


def wait_progress(count: Callable[[], int], target: int) -> None:
    """Wait until `count()` reaches `target`, or stays put for BURST_STALL seconds."""
    last, changed = count(), time.monotonic()
    while last < target and time.monotonic() - changed < BURST_STALL:
        time.sleep(0.02)
        if count() != last:
            last, changed = count(), time.monotonic()


def burst_commands(n: int) -> list[tuple[int, int]]:
    """(pin, value) of n commands: round robin over the 16 pins, each pin alternating between
    ON and OFF and ending ON (so that every command changes its pin)."""
    per_pin = [n // PIN_COUNT + (1 if pin < n % PIN_COUNT else 0) for pin in range(PIN_COUNT)]
    seen = [0] * PIN_COUNT
    commands = []
    for i in range(n):
        pin = i % PIN_COUNT
        seen[pin] += 1
        commands.append((pin, (per_pin[pin] - seen[pin] + 1) % 2))
    return commands


def check_order(
    sent: Sequence[tuple[int, int]], received: Sequence[tuple[int, int]]
) -> tuple[bool, list[int]]:
    """Whether `received` is `sent` in order with some items missing (a subsequence), and how
    many each pin lost (negative: more received than sent).

    MQTT keeps one client's order, the bridge handles messages in turn and ZeroMQ keeps
    order, so the configs must come in the order of the commands.
    """
    position, in_order = 0, True
    for item in received:
        while position < len(sent) and sent[position] != item:
            position += 1
        if position == len(sent):
            in_order = False
            break
        position += 1
    lost = [0] * PIN_COUNT
    for pin, _value in sent:
        lost[pin] += 1
    for pin, _value in received:
        if 0 <= pin < PIN_COUNT:
            lost[pin] -= 1
    return in_order, lost


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


class Perf:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.unique = uuid.uuid4().hex[:8]
        self.broker = Broker(workdir)
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

    def latencies(self) -> None:
        """Command and state latency, interleaved with the paced baselines.

        One cycle: command sample (then its state echo is awaited, so that the bridge is
        quiet again), gap, state sample, gap, paced round trip, gap, paced ZeroMQ hop, gap.
        """
        updates = UpdateLog()
        tap = ConfigTap()
        run = BridgeRun(
            self,
            "latency",
            outputs=range(8),
            inputs=range(8, 16),
            update_interval=0.1,
            updates=updates,
            tap=tap,
        )
        run.start()
        hop, process_hop = ZmqHop(), ZmqProcessHop()
        # Two perf_null.py processes, so that the command floor's writes never show in the
        # updates the state floor republishes.
        floor_updates, floor_tap = UpdateLog(), ConfigTap()
        floor = NullRun(self, 0.1, updates=floor_updates, topic=f"perf/{self.unique}/null-state")
        command_floor = NullRun(self, 0.1, topic=f"perf/{self.unique}/null-cmd", tap=floor_tap)
        floor.start()
        command_floor.start()
        try:
            time.sleep(SETTLE)
            if run.wait_states({pin: "OFF" for pin in range(16)}):
                raise PerfError("the latency bridge did not publish every pin OFF")
            hop.warm()
            process_hop.warm()
            rtt_topic = f"perf/{self.unique}/rtt-paced"
            assert floor.topic is not None
            self.sub.subscribe([rtt_topic, floor.topic])
            for _ in range(20):  # warm the paced path too
                self.rtt_sample(rtt_topic, -1)
            s = self.series
            for i in range(self.settings.samples):
                s["command"].record(self.command_sample(run, tap, value=1 - i % 2))
                time.sleep(GAP)
                s["state"].record(self.state_sample(run, updates, level=1 - i % 2))
                time.sleep(GAP)
                s["state_floor"].record(self.floor_sample(floor, floor_updates, level=1 - i % 2))
                time.sleep(GAP)
                s["command_floor"].record(
                    self.floor_command(command_floor, floor_tap, value=1 - i % 2)
                )
                time.sleep(GAP)
                s["rtt_paced"].record(self.rtt_sample(rtt_topic, i))
                time.sleep(GAP)
                s["zmq"].record(hop.sample())
                time.sleep(GAP)
                s["zmq_process"].record(process_hop.sample())
                time.sleep(GAP)
                if not run.alive():
                    raise PerfError("the latency bridge died")
                if (i + 1) % 100 == 0:
                    print(f"perf:   {i + 1}/{self.settings.samples} latency cycles", flush=True)
            self.busy_commands(run, tap)
            self.peak_hwm_kb = max(self.peak_hwm_kb, memory_kb(run.pid)[1])
        finally:
            hop.close()
            process_hop.close()
            floor.stop()
            command_floor.stop()
            run.stop()
            self.exits["latency bridge"] = run.exit_status

    def timed_set(self, topic: str, tap: ConfigTap, value: int) -> int | None:
        """A QoS 0 set (ON/OFF) on `topic` -> the config for pin 0 at `tap`'s driver (ns)."""
        key = (CMD_PIN, value)
        slot = tap.expectations.expect(key)
        started = now_ns()
        self.pub.publish(topic, "ON" if value else "OFF")
        at = slot.wait()
        if at is None:
            tap.expectations.forget(key)
        return None if at is None else at - started

    def timed_flip(
        self,
        driver: SimulatedDriver | None,
        updates: UpdateLog,
        level: int,
        message: tuple[str, str],
        update_interval: float,
    ) -> int | None:
        """Input pin 8 flipped at `driver`; its update sent -> `message` at the subscriber (ns)."""
        assert driver is not None
        arrival = self.sub.expect(*message)
        mark = len(updates.changes)
        driver.set_input(STATE_PIN, level)
        at = arrival.wait(SAMPLE_TIMEOUT + update_interval)
        sent = updates.sent_with(mark, STATE_PIN, level)
        return None if at is None or sent is None else at - sent

    def command_sample(self, run: BridgeRun, tap: ConfigTap, value: int) -> int | None:
        """2: a QoS 0 set on pin 0 -> its config at the driver (ns); then the state echo."""
        echo = self.sub.expect(run.state_topic(CMD_PIN), "ON" if value else "OFF")
        latency = self.timed_set(run.set_topic(CMD_PIN), tap, value)
        # The bridge publishes the new state at the driver's next update: let that pass, so
        # that the next sample starts with a quiet bridge and broker.
        echo.wait()
        return latency

    def busy_commands(self, run: BridgeRun, tap: ConfigTap) -> None:
        """2b: commands BUSY_GAP apart, so that they meet the bridge's own QoS 1 state
        publishes and the broker's PUBACKs for them (Mosquitto's default `set_tcp_nodelay
        false` then holds a command back until the bridge's TCP acknowledges, up to a delayed
        ACK of 40 ms, unless the bridge acknowledges at once)."""
        series = self.series["command_busy"]
        for i in range(self.settings.samples):
            series.record(self.timed_set(run.set_topic(CMD_PIN), tap, value=1 - i % 2))
            time.sleep(BUSY_GAP)

    def floor_command(self, floor: NullRun, tap: ConfigTap, value: int) -> int | None:
        """2f: a QoS 0 set to perf_null.py -> its config at its driver (ns)."""
        return self.timed_set(f"{floor.topic}/set", tap, value)

    def floor_sample(self, floor: NullRun, updates: UpdateLog, level: int) -> int | None:
        """3f: the same input flip at perf_null.py's driver; update sent -> its republished
        update at the subscriber (ns)."""
        assert floor.topic is not None
        frame = encode_levels(level << STATE_PIN).hex()
        return self.timed_flip(
            floor.driver, updates, level, (floor.topic, frame), floor.update_interval
        )

    def state_sample(self, run: BridgeRun, updates: UpdateLog, level: int) -> int | None:
        """3: input pin 8 flipped from outside; update sent -> state message (ns)."""
        message = (run.state_topic(STATE_PIN), "ON" if level else "OFF")
        return self.timed_flip(run.driver, updates, level, message, run.update_interval)

    def publish_burst(
        self, messages: Sequence[tuple[str, str]], credits: threading.Semaphore | None
    ) -> dict[str, Any]:
        """Publish QoS 1 `messages` as fast as paho takes them; with `credits`, one credit per
        message, returned when it arrived at the far end (a window of in-flight messages).

        Returns the times: start, end of the publish loop, last PUBACK, and whether the
        window stalled (a message never arrived).
        """
        started = now_ns()
        infos = []
        stalled = False
        for topic, payload in messages:
            if credits is not None and not credits.acquire(timeout=BURST_STALL):
                stalled = True
                break
            infos.append(self.pub.publish(topic, payload, qos=1))
        published = now_ns()
        acked = self._wait_acked(infos)
        return {
            "started": started,
            "publish_loop_s": (published - started) / 1e9,
            "all_acked_s": None if acked is None else (acked - started) / 1e9,
            "window_stalled": stalled,
        }

    def burst_broker_only(self, window: int | None) -> dict[str, Any]:
        """Throughput baseline: the same QoS 1 burst to a bare paho subscriber."""
        topic = f"perfburst/{self.unique}/{window}"
        counter = Subscriber(self.broker.port, "burst", count_topic=topic)
        try:
            counter.subscribe([topic], qos=1)
            n = self.settings.burst
            counter.credits = None if window is None else threading.Semaphore(window)
            timing = self.publish_burst(
                [(topic, "ON" if i % 2 else "OFF") for i in range(n)], counter.credits
            )
            wait_progress(lambda: len(counter.counted), n)
            got = list(counter.counted)
            span = (got[-1] - timing["started"]) / 1e9 if got else float("nan")
            return {
                **timing,
                "sent": n,
                "received": len(got),
                "lost": n - len(got),
                "rate_per_s": len(got) / span if got else 0.0,
            }
        finally:
            counter.close()

    def _wait_acked(self, infos: list[paho.MQTTMessageInfo]) -> int | None:
        deadline = time.monotonic() + 60
        for info in infos:
            while not info.is_published():
                if time.monotonic() > deadline:
                    return None
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(0.1)
        return now_ns()

    def burst_through_bridge(
        self, run: BridgeRun, tap: ConfigTap, window: int | None
    ) -> dict[str, Any]:
        """4: N set commands, QoS 1, round robin over the 16 outputs, each pin alternating and
        ending ON; every one must become a config, in order, and the pins must end ON.

        `window`: at most that many commands published and not yet seen as configs at the
        driver (None: all at once).
        """
        n = self.settings.burst
        commands = burst_commands(n)
        topics = [run.set_topic(pin) for pin in range(PIN_COUNT)]
        first_record = len(tap.records)
        drops_before = self.broker.drop_notices()
        log = run.log
        held_before = log.read_text(errors="replace").count("not taking configs")
        tap.credits = None if window is None else threading.Semaphore(window)
        timing = self.publish_burst(
            [(topics[pin], "ON" if value else "OFF") for pin, value in commands], tap.credits
        )
        wait_progress(lambda: len(tap.records) - first_record, n)
        time.sleep(0.5)  # anything after the last expected config (resends) is counted too
        tap.credits = None
        records = [(t, pin, value) for t, pin, _mode, value in tap.records[first_record:]]
        in_order, lost_per_pin = check_order(commands, [(p, v) for _t, p, v in records])
        # Final state: every pin ON on the board (output, high) and in its retained state.
        final_problems = []
        levels, direction = run.board.levels(), run.board.direction
        for pin in range(PIN_COUNT):
            if not (direction >> pin) & 1:
                final_problems.append(f"pin {pin}: not an output on the board")
            elif not (levels >> pin) & 1:
                final_problems.append(f"pin {pin}: low on the board, last command ON")
        final_problems += run.wait_states(dict.fromkeys(range(PIN_COUNT), "ON"))
        span = (records[-1][0] - timing["started"]) / 1e9 if records else float("nan")
        times = [t for t, _pin, _value in records]
        steady = float("nan")
        if len(times) >= 20:
            low, high = times[len(times) // 10], times[len(times) * 9 // 10]
            steady = (len(times) * 8 // 10) / ((high - low) / 1e9) if high > low else steady
        lost = sum(max(0, x) for x in lost_per_pin)
        extra = sum(max(0, -x) for x in lost_per_pin)
        return {
            **timing,
            "window": window,
            "sent": n,
            "configs": len(records),
            "lost": lost,
            "extra": extra,
            "lost_per_pin": lost_per_pin,
            "in_order": in_order,
            "final_ok": not final_problems,
            "final_problems": final_problems,
            "nothing_lost": lost == 0 and extra == 0 and in_order and not final_problems,
            "span_s": span,
            "rate_per_s": len(records) / span if records else 0.0,
            "steady_rate_per_s": steady,
            "broker_drop_notices": self.broker.drop_notices() - drops_before,
            "bridge_held_warnings": log.read_text(errors="replace").count("not taking configs")
            - held_before,
        }

    def idle_window(
        self, pins: int, interval: float, seconds: float, *, throughput: bool = False
    ) -> None:
        """5: one bridge with `pins` outputs idling for `seconds`, perf_null.py beside it."""
        label = f"idle-{pins}p-{interval:g}s"
        tap = ConfigTap()
        run = BridgeRun(self, label, outputs=range(pins), update_interval=interval, tap=tap)
        null: NullRun | None = None
        try:
            run.start()
            # Started once the bridge is up: two interpreters starting at once would share
            # the cores and slow each other's start-up.
            null = NullRun(self, interval).start()
            time.sleep(SETTLE)
            share, wall = cpu_shares((run.pid, null.pid), seconds)
            if not run.alive():
                raise PerfError(f"bridge {label} died")
            rss, hwm = memory_kb(run.pid)
            null_rss, _ = memory_kb(null.pid)
            result = IdleResult(
                pins=pins,
                interval=interval,
                window_s=wall,
                cpu_pct=share[0],
                rss_kb=rss,
                hwm_kb=hwm,
                startup_s=run.startup_s,
                null_cpu_pct=share[1],
                null_rss_kb=null_rss,
                null_startup_s=null.startup_s,
            )
            result.pss_kb, result.uss_kb = memory_detail_kb(run.pid)
            result.null_pss_kb, result.null_uss_kb = memory_detail_kb(null.pid)
            null.stop()
            null = None
            if throughput:
                self.quiet("throughput through the bridge")
                window = self.settings.window
                self.throughput["windowed"] = self.burst_through_bridge(run, tap, window)
                self.throughput["burst"] = self.burst_through_bridge(run, tap, None)
                self.throughput["hwm_after_kb"] = memory_kb(run.pid)[1]
            self.peak_hwm_kb = max(self.peak_hwm_kb, memory_kb(run.pid)[1])
            self.idle.append(result)
            print(
                f"perf:   {label}: {result.cpu_pct:.3f}% CPU, {mb(rss)} "
                f"(null {result.null_cpu_pct:.3f}%), start-up {run.startup_s:.3f} s",
                flush=True,
            )
        finally:
            if null is not None:
                null.stop()
            run.stop()
            self.exits[label] = run.exit_status
            if self.idle and self.idle[-1].pins == pins and self.idle[-1].interval == interval:
                self.idle[-1].exit_status = run.exit_status

    def mqttio_latencies(self, subject: MqttIo) -> None:
        """2m: mqtt-io's command latency, interleaved with the paced round trip and pipe hop.

        One cycle: command sample (then its state echo), gap, paced round trip, gap, pipe hop,
        gap. Pins as in the bridge's latency run: 0..7 outputs, 8..15 inputs polled at 0.1 s.
        """
        tap = ConfigTap()
        run = BridgeRun(
            self,
            "latency",
            outputs=range(8),
            inputs=range(8, 16),
            update_interval=0.1,
            tap=tap,
            subject=subject,
        )
        run.start()
        hop = PipeHop()
        try:
            time.sleep(SETTLE)
            if run.wait_states({pin: "OFF" for pin in range(16)}):
                raise PerfError("mqtt-io did not publish every pin OFF")
            hop.warm()
            rtt_topic = f"perf/{self.unique}/rtt-paced-mqttio"
            self.sub.subscribe([rtt_topic])
            for _ in range(20):
                self.rtt_sample(rtt_topic, -1)
            s = self.series
            for i in range(self.settings.samples):
                s["mqttio_command"].record(self.command_sample(run, tap, value=1 - i % 2))
                time.sleep(GAP)
                s["mqttio_rtt_paced"].record(self.rtt_sample(rtt_topic, i))
                time.sleep(GAP)
                s["pipe"].record(hop.sample())
                time.sleep(GAP)
                if not run.alive():
                    raise PerfError("mqtt-io died in the latency run")
                if (i + 1) % 100 == 0:
                    print(f"perf:   {i + 1}/{self.settings.samples} mqtt-io cycles", flush=True)
        finally:
            hop.close()
            run.stop()
            self.exits["mqtt-io latency"] = run.exit_status

    def mqttio_idle_window(self, subject: MqttIo, inputs: int, seconds: float) -> None:
        """5m: mqtt-io with 16 pins, `inputs` of them polled inputs at 0.1 s, idling."""
        interval = 0.1
        label = f"idle-{inputs}in-{interval:g}s"
        run = BridgeRun(
            self,
            label,
            outputs=range(PIN_COUNT - inputs),
            inputs=range(PIN_COUNT - inputs, PIN_COUNT),
            update_interval=interval,
            subject=subject,
        )
        try:
            run.start()
            assert run.stdout is not None
            time.sleep(SETTLE)
            lines_before = run.stdout.lines
            (share,), wall = cpu_shares((run.pid,), seconds)
            lines = run.stdout.lines - lines_before
            if not run.alive():
                raise PerfError(f"mqtt-io {label} died")
            rss, hwm = memory_kb(run.pid)
            pss, uss = memory_detail_kb(run.pid)
            result = SubjectIdle(
                outputs=len(run.outputs),
                inputs=inputs,
                interval=interval,
                window_s=wall,
                cpu_pct=share,
                rss_kb=rss,
                hwm_kb=hwm,
                pss_kb=pss,
                uss_kb=uss,
                startup_s=run.startup_s,
                stdout_lines_per_s=lines / wall,
            )
            self.mqttio_idle.append(result)
            print(
                f"perf:   mqtt-io {label}: {share:.3f}% CPU, {mb(rss)}, "
                f"start-up {run.startup_s:.3f} s",
                flush=True,
            )
        finally:
            run.stop()
            self.exits[f"mqtt-io {label}"] = run.exit_status
            if self.mqttio_idle and self.mqttio_idle[-1].inputs == inputs:
                self.mqttio_idle[-1].exit_status = run.exit_status

    def python_starts(self) -> None:
        """Start-up baseline: a bare interpreter, `python -c pass`."""
        for _ in range(self.settings.python_starts):
            started = now_ns()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            self.python_start_s.append((now_ns() - started) / 1e9)

    def run(self) -> None:
        s = self.settings
        bridge = "bridge" in s.subjects
        self.quiet("broker round trip (back to back)")
        self.start()
        self.round_trips("rtt", s.rtt_messages)
        self.python_starts()
        if bridge:
            self.quiet("latency (command, state, paced baselines)")
            self.latencies()
        if self.mqttio is not None:
            self.quiet("mqtt-io latency (command, paced baselines)")
            self.mqttio_latencies(self.mqttio)
        if bridge:
            self.quiet("throughput baseline (broker only)")
            self.burst_baseline["windowed"] = self.burst_broker_only(s.window)
            self.burst_baseline["burst"] = self.burst_broker_only(None)
            self.quiet("idle 16 pins 0.1 s, then throughput")
            self.idle_window(16, 0.1, s.idle_s, throughput=True)
        if self.mqttio is not None:
            for inputs in MQTTIO_IDLE_INPUTS:
                self.quiet(f"mqtt-io idle 16 pins ({inputs} inputs) 0.1 s")
                self.mqttio_idle_window(self.mqttio, inputs, s.idle_s)
        if bridge:
            self.quiet("idle 16 pins 0.02 s")
            self.idle_window(16, 0.02, s.idle_s)
            for interval in (1.0, 0.1, 0.02):
                for pins in (1, 4):
                    self.quiet(f"idle {pins} pins {interval:g} s")
                    self.idle_window(pins, interval, s.matrix_s)
            self.quiet("idle 16 pins 1 s")
            self.idle_window(16, 1.0, s.matrix_s)
        self.quiet("broker round trip again (drift)")
        self.round_trips("rtt_end", s.rtt_messages)


# -- the report ------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "**FAIL**")


def ratio(value: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(value):
        return "-"
    return f"{value / base:.2f}x"


def machine_facts() -> dict[str, str]:
    facts = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()
        facts["mosquitto"] = out[0] if out else "?"
    versions = {}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        # The bridge's own dependencies, as installed (extras such as the demo's left out).
        for requirement in importlib.metadata.requires("mqtt-gpio-bridge") or []:
            if "extra ==" in requirement:
                continue
            name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[name] = importlib.metadata.version(name)
    facts["libraries"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    return facts


def code_facts() -> dict[str, str]:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "mqtt_gpio_bridge").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    facts = {"bridge sources sha256": digest.hexdigest()[:16]}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "mqtt_gpio_bridge"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        facts["bridge code"] = f"git {head}" + (" + uncommitted changes" if dirty else " (clean)")
    return facts


def matrix_section(perf: Perf) -> list[str]:
    """The idle CPU table by pins and update interval, and how it grows."""
    if not perf.idle:
        return []
    matrix = [
        "",
        "Idle CPU (% of one core) and VmRSS by configured pins (all outputs) and update "
        "interval; in brackets the floor, perf_null.py, in the same window:",
        "",
        "| pins | 1 s | 0.1 s | 0.02 s |",
        "|---|---|---|---|",
    ]
    for pins in (1, 4, 16):
        cells = []
        for interval in (1.0, 0.1, 0.02):
            r = next((x for x in perf.idle if x.pins == pins and x.interval == interval), None)
            cells.append(
                "-"
                if r is None
                else f"{r.cpu_pct:.3f}% ({r.null_cpu_pct:.3f}%), {mb(r.rss_kb)}, {r.window_s:.0f} s"
            )
        matrix.append(f"| {pins} | {' | '.join(cells)} |")
    growth = []
    for interval in (1.0, 0.1, 0.02):
        by_pins = {r.pins: r.cpu_pct for r in perf.idle if r.interval == interval}
        if 1 in by_pins and 16 in by_pins:
            growth.append(
                f"at {interval:g} s: 1 -> 16 pins {by_pins[1]:.3f}% -> {by_pins[16]:.3f}%"
            )

    def per_update_us(by_interval: dict[float, float]) -> float:
        """CPU per driver update: the slope between 1 and 50 updates a second."""
        return (by_interval[0.02] - by_interval[1.0]) / 100 / (1 / 0.02 - 1 / 1.0) * 1e6

    for pins in (1, 4, 16):
        by_interval = {r.interval: r.cpu_pct for r in perf.idle if r.pins == pins}
        if 1.0 in by_interval and 0.02 in by_interval:
            growth.append(
                f"{pins} pins: 1 s -> 0.02 s {by_interval[1.0]:.3f}% -> "
                f"{by_interval[0.02]:.3f}% (about {per_update_us(by_interval):.0f} µs of CPU "
                "per update)"
            )
    null_by_interval = {
        interval: statistics.median([r.null_cpu_pct for r in perf.idle if r.interval == interval])
        for interval in (1.0, 0.02)
        if any(r.interval == interval for r in perf.idle)
    }
    if len(null_by_interval) == 2:
        growth.append(
            f"floor (perf_null.py, median): about {per_update_us(null_by_interval):.0f} µs "
            "per update"
        )
    if growth:
        matrix += ["", "Growth: " + "; ".join(growth) + "."]

    return matrix


def throughput_rows(perf: Perf, target: Callable[[str, bool | None], str]) -> list[str]:
    """Rows for 4: the sustained (windowed) run, then the raw burst."""
    rows = []
    kinds = (
        ("windowed", f"sustained, at most {perf.settings.window} in flight end to end"),
        ("burst", "raw burst, all published at once"),
    )
    for kind, title in kinds:
        tp, bb = perf.throughput.get(kind), perf.burst_baseline.get(kind, {})
        if not tp:
            continue
        name = "throughput sustained" if kind == "windowed" else "raw burst"
        goal = f">= {THROUGHPUT_TARGET:.0f}/s, nothing lost"
        ok = tp["rate_per_s"] >= THROUGHPUT_TARGET and tp["nothing_lost"]
        rows.append(
            f"| 4. throughput, {title}: {tp['sent']} QoS 1 sets over 16 outputs -> configs "
            f"| {tp['rate_per_s']:.0f}/s | steady {tp['steady_rate_per_s']:.0f}/s "
            f"| bare paho subscriber, same: {bb.get('rate_per_s', 0):.0f}/s "
            f"(lost {bb.get('lost', '-')}) | {ratio(tp['rate_per_s'], bb.get('rate_per_s', 0))} "
            f"| {goal} | {target(name, ok)} |"
        )
        rows.append(
            f"| 4. ({kind}) configs received / lost / extra / in order / final state right "
            f"| {tp['configs']} / {tp['lost']} / {tp['extra']} / {tp['in_order']} "
            f"/ {tp['final_ok']} | | Mosquitto 'dropped' notices: "
            f"{tp['broker_drop_notices']}; bridge 'not taking configs': "
            f"{tp['bridge_held_warnings']}; publish loop {tp['publish_loop_s']:.2f} s "
            "| | zero lost, in order, final = last | |"
        )
    return rows


def at_most(value: float, limit: float) -> bool | None:
    """value <= limit; None (no verdict) when either was not measured."""
    return None if math.isnan(value) or math.isnan(limit) else value <= limit


def span(bounds: tuple[float, float], unit: str = "") -> str:
    return f"{bounds[0]:g}-{bounds[1]:g}{unit}"


def placed(value: float, bounds: tuple[float, float]) -> str:
    """Where `value` falls against the issue's range for mqtt-io."""
    if math.isnan(value):
        return "-"
    return "below" if value < bounds[0] else "above" if value > bounds[1] else "inside"


def added_time(perf: Perf) -> dict[str, float]:
    """Latency each subject adds to its same-run baselines (µs), a difference of percentiles:
    its command latency minus the paced round trip measured in the same phase (interleaved
    with its commands, so under the same conditions) and minus its hop to this process (the
    ZeroMQ PUSH -> PULL for the bridge, the pipe for mqtt-io)."""
    s = perf.series
    bridge_rtt, bridge_cmd, zmq_hop = s["rtt_paced"], s["command"], s["zmq"]
    mqttio_rtt, mqttio_cmd, pipe = s["mqttio_rtt_paced"], s["mqttio_command"], s["pipe"]
    return {
        "bridge_p50": bridge_cmd.p50 - bridge_rtt.p50 - zmq_hop.p50,
        "bridge_p99": bridge_cmd.p99 - bridge_rtt.p99 - zmq_hop.p99,
        "mqttio_p50": mqttio_cmd.p50 - mqttio_rtt.p50 - pipe.p50,
        "mqttio_p99": mqttio_cmd.p99 - mqttio_rtt.p99 - pipe.p99,
    }


def mqttio_baseline_rows(perf: Perf) -> list[str]:
    if perf.mqttio is None:
        return []
    return [
        f"| 1. {x.name} ({len(x.samples)}) | {us(x.p50)} | {us(x.p99)} | (baseline) | | | |"
        for x in (perf.series["mqttio_rtt_paced"], perf.series["pipe"])
    ]


def mqttio_latency_rows(perf: Perf, target: Callable[[str, bool | None], str]) -> list[str]:
    """2m and the comparison of added times (the target), 3m."""
    if perf.mqttio is None:
        return [f"| 2m., 3m., 5m. mqtt-io | not in this run: {perf.mqttio_note} | | | | | |"]
    s = perf.series
    rtt, cmd, pipe, paced = s["rtt"], s["mqttio_command"], s["pipe"], s["mqttio_rtt_paced"]
    base50, base99 = rtt.p50 + pipe.p50, rtt.p99 + pipe.p99
    paced50, paced99 = paced.p50 + pipe.p50, paced.p99 + pipe.p99
    added = added_time(perf)
    a50, a99 = added["mqttio_p50"], added["mqttio_p99"]
    adds50, adds99 = a50 / paced.p50, a99 / paced.p99
    return [
        f"| 2m. {cmd.name} ({len(cmd.samples)}, lost {cmd.lost}) | {us(cmd.p50)} "
        f"| {us(cmd.p99)} | round trip + pipe: {us(base50)} / {us(base99)} "
        f"| {ratio(cmd.p50, base50)} / {ratio(cmd.p99, base99)} | information | - |",
        f"| 2m. (same, against the paced round trip of its phase) | | "
        f"| paced round trip + pipe: {us(paced50)} / {us(paced99)} "
        f"| {ratio(cmd.p50, paced50)} / {ratio(cmd.p99, paced99)} | information | |",
        f"| 2m. mqtt-io's added time: command - paced round trip (its phase) - pipe "
        f"| {us(a50)} | {us(a99)} | paced round trip: {us(paced.p50)} / {us(paced.p99)} "
        f"| adds {adds50:.2f}x / {adds99:.2f}x the paced round trip "
        f"({a50 / rtt.p50:.2f}x / {a99 / rtt.p99:.2f}x the back-to-back one) "
        f"| information; the issue: adds {span(MQTTIO_ADDS_P50, 'x')} / "
        f"{span(MQTTIO_ADDS_P99, 'x')} the round trip (here p50 {placed(adds50, MQTTIO_ADDS_P50)}"
        f", p99 {placed(adds99, MQTTIO_ADDS_P99)} that range) | - |",
        f"| 2. bridge's added time: command - paced round trip (its phase) - ZeroMQ "
        f"| {us(added['bridge_p50'])} | {us(added['bridge_p99'])} | mqtt-io's added time: "
        f"{us(a50)} / {us(a99)} | {ratio(added['bridge_p50'], a50)} / "
        f"{ratio(added['bridge_p99'], a99)} | bridge adds no more than mqtt-io "
        f"| p50 {target('adds <= mqtt-io p50', at_most(added['bridge_p50'], a50))}, "
        f"p99 {target('adds <= mqtt-io p99', at_most(added['bridge_p99'], a99))} |",
    ]


def mqttio_state_rows(perf: Perf) -> list[str]:
    if perf.mqttio is None:
        return []
    return [
        "| 3m. mqtt-io state: input change -> state message | - | - | | "
        "| not measured: its stdio module never reads stdin (`get_pin` prints a line and "
        "returns False), so an input cannot change | - |"
    ]


def mqttio_footprint_rows(perf: Perf, bridge: IdleResult | None) -> list[str]:
    """5m: idle CPU and memory of mqtt-io next to the bridge's (16 pins, 0.1 s, same run)."""
    rows = []
    for r in perf.mqttio_idle:
        issue = f"; the issue: {span(MQTTIO_IDLE_CPU, '%')}" if r.inputs == 4 else ""
        rows.append(
            f"| 5m. mqtt-io idle CPU, 16 pins: {r.outputs} outputs + {r.inputs} inputs polled "
            f"{r.interval:g} s ({r.window_s:.0f} s, {r.stdout_lines_per_s:.0f} stdout lines/s) "
            f"| {r.cpu_pct:.3f}% | | bridge, 16 pins 0.1 s: "
            f"{'-' if bridge is None else f'{bridge.cpu_pct:.3f}%'} "
            f"| {'-' if bridge is None else ratio(r.cpu_pct, bridge.cpu_pct)} "
            f"| information{issue} | - |"
        )
    main = next((r for r in perf.mqttio_idle if r.inputs == 4), None)
    if main is not None:
        rows.append(
            f"| 5m. mqtt-io resident memory (VmRSS) after the idle window, 4 inputs "
            f"| {mb(main.rss_kb)} | | bridge: {'-' if bridge is None else mb(bridge.rss_kb)} "
            f"| {'-' if bridge is None else ratio(main.rss_kb, bridge.rss_kb)} "
            f"| information; the issue: {MQTTIO_RSS_MB} MB | - |"
        )
        rows.append(
            f"| 5m. the same, PSS / private (USS) | {mb(main.pss_kb)} | {mb(main.uss_kb)} "
            f"| bridge: {'-' if bridge is None else f'{mb(bridge.pss_kb)} / {mb(bridge.uss_kb)}'}"
            f" | {'-' if bridge is None else ratio(main.pss_kb, bridge.pss_kb)} / "
            f"{'-' if bridge is None else ratio(main.uss_kb, bridge.uss_kb)} | information | |"
        )
    return rows


def mqttio_startup_rows(perf: Perf) -> list[str]:
    times = [x["online"] for x in perf.startups if x["subject"] == "mqttio"]
    if not times:
        return []
    bridge = [x["online"] for x in perf.startups if x["subject"] == "bridge"]
    bridge_median = statistics.median(bridge) if bridge else float("nan")
    median = statistics.median(times)
    return [
        f"| 5m. mqtt-io start-up to `running` ({len(times)} starts) | median {median:.3f} s "
        f"| max {max(times):.3f} s (first {times[0]:.3f} s) | bridge to `online`: median "
        f"{secs(bridge_median)} | {ratio(median, bridge_median)} "
        f"| information; the issue: {span(MQTTIO_STARTUP, ' s')} | - |"
    ]


def mqttio_notes(perf: Perf) -> list[str]:
    """How the mqtt-io rows (2m, 3m, 5m) are taken, or why there are none."""
    if perf.mqttio is None:
        return [f"Not in this run: {perf.mqttio_note}."]
    return [
        f"{perf.mqttio_note}. Its `stdio` GPIO module stands in for the hardware: a write to "
        "an output prints `set_pin(pin=N, value=True|False)` on its stdout, a read of an input "
        "prints `get_pin(pin=N)` and returns False. It runs with `PYTHONUNBUFFERED=1` (print "
        "to a pipe is block-buffered otherwise), stdout to a pipe this process drains, stderr "
        "(its log, level WARNING) to a file; Home Assistant discovery on, as the bridge's.",
        "",
        "- Command (2m): QoS 0 publish on `<base>/output/out0/set`, ON/OFF alternating -> its "
        "`set_pin(pin=0, ...)` line, timestamped when a thread here has it back from `os.read` "
        "on the stdout pipe; the next sample waits for its state echo on `<base>/output/out0`, "
        "then 0.1 s. Pins 0..7 outputs, 8..15 inputs polled every 0.1 s (so about 80 "
        "`get_pin` lines a second go through the same pipe).",
        "- Pipe: a `set_pin` line written to an `os.pipe` here and read by the same reader "
        "code, paced 0.1 s: the part of 2m that is the hop to this process, not mqtt-io. The "
        "command, a paced round trip and a pipe sample are interleaved, one of each per cycle.",
        "- Added time: command - paced round trip of the same phase - pipe for mqtt-io; "
        "command - paced round trip of its phase - ZeroMQ for the bridge; each a difference "
        "of the percentiles. Both commands are paced 0.1 s apart, so the paced round trip "
        "interleaved with them is the one measured under the same conditions. The issue "
        "gives mqtt-io's as a multiple of the round trip; the target is the bridge's <= "
        "mqtt-io's, at p50 and at p99.",
        "- State (3m): not measured, see the table.",
        "- Idle (5m): CPU (utime + stime, /proc) and VmRSS / PSS / USS of the mqtt-io process "
        "over the same window as the bridge's 16-pin windows, 3 s after `running`; 16 pins, "
        f"{' and '.join(str(n) for n in MQTTIO_IDLE_INPUTS)} of them polled inputs, the rest "
        "outputs. Each poll prints a line, which is part of what it costs here.",
        "- Start-up (5m): from just before its process is spawned to `running` (retained, "
        "QoS 1) on `<base>/status` at the subscriber; one per mqtt-io process of the run.",
    ]


def stalls(series: Series) -> int:
    """Samples of a series at or above STALL_US."""
    return sum(1 for value in series.samples if value >= STALL_US)


def build_report(
    perf: Perf, settings: Settings, started: datetime.datetime
) -> tuple[str, dict[str, Any]]:
    s = perf.series
    rtt, paced, hop, cmd, state = s["rtt"], s["rtt_paced"], s["zmq"], s["command"], s["state"]
    cmd_base50, cmd_base99 = rtt.p50 + hop.p50, rtt.p99 + hop.p99
    paced_base50, paced_base99 = paced.p50 + hop.p50, paced.p99 + hop.p99
    far = s["zmq_process"]
    far_base50, far_base99 = paced.p50 + far.p50, paced.p99 + far.p99
    busy, floor, cmd_floor = s["command_busy"], s["state_floor"], s["command_floor"]
    no_stall = stalls(busy) == 0 if busy.samples else None
    targets: list[tuple[str, bool | None]] = []

    def target(name: str, ok: bool | None) -> str:
        targets.append((name, ok))
        return verdict(ok)

    rows = [
        "| measure | p50 | p99 | baseline (same run) p50 / p99 | ratio p50 / p99 | target "
        "| result |",
        "|---|---|---|---|---|---|---|",
        f"| 1. {rtt.name} ({len(rtt.samples)} msgs) | {us(rtt.p50)} | {us(rtt.p99)} "
        "| (baseline) | | | |",
        f"| 1. {s['rtt_end'].name} | {us(s['rtt_end'].p50)} | {us(s['rtt_end'].p99)} "
        f"| {us(rtt.p50)} / {us(rtt.p99)} (start) | {ratio(s['rtt_end'].p50, rtt.p50)} / "
        f"{ratio(s['rtt_end'].p99, rtt.p99)} | drift only | |",
        f"| 1. {paced.name} ({len(paced.samples)}) | {us(paced.p50)} | {us(paced.p99)} "
        "| (baseline) | | | |",
        f"| 1. {hop.name} ({len(hop.samples)}) | {us(hop.p50)} | {us(hop.p99)} "
        "| (baseline) | | | |",
        f"| 1. {far.name} ({len(far.samples)}) | {us(far.p50)} | {us(far.p99)} "
        f"| in one process: {us(hop.p50)} / {us(hop.p99)} | {ratio(far.p50, hop.p50)} / "
        f"{ratio(far.p99, hop.p99)} | information | |",
        *mqttio_baseline_rows(perf),
        f"| 2. {cmd.name} ({len(cmd.samples)}, lost {cmd.lost}) | {us(cmd.p50)} | {us(cmd.p99)} "
        f"| paced round trip + ZeroMQ: {us(paced_base50)} / {us(paced_base99)} "
        f"| {ratio(cmd.p50, paced_base50)} / {ratio(cmd.p99, paced_base99)} "
        f"| p50 <= {CMD_P50_FACTOR}x, p99 <= {CMD_P99_FACTOR}x "
        f"| p50 {target('command p50', at_most(cmd.p50, CMD_P50_FACTOR * paced_base50))}, "
        f"p99 {target('command p99', at_most(cmd.p99, CMD_P99_FACTOR * paced_base99))} |",
        f"| 2. (same, against the back-to-back round trip) | | "
        f"| round trip + ZeroMQ: {us(cmd_base50)} / {us(cmd_base99)} "
        f"| {ratio(cmd.p50, cmd_base50)} / {ratio(cmd.p99, cmd_base99)} | information | |",
        f"| 2. (same, with the ZeroMQ hop into another process) | | "
        f"| paced round trip + ZeroMQ to another process: {us(far_base50)} / {us(far_base99)} "
        f"| {ratio(cmd.p50, far_base50)} / {ratio(cmd.p99, far_base99)} | information | |",
        f"| 2f. {cmd_floor.name} ({len(cmd_floor.samples)}, lost {cmd_floor.lost}) "
        f"| {us(cmd_floor.p50)} | {us(cmd_floor.p99)} | paced round trip + ZeroMQ: "
        f"{us(paced_base50)} / {us(paced_base99)} | {ratio(cmd_floor.p50, paced_base50)} / "
        f"{ratio(cmd_floor.p99, paced_base99)} | information: the bridge's command latency is "
        f"{ratio(cmd.p50, cmd_floor.p50)} / {ratio(cmd.p99, cmd_floor.p99)} of this | - |",
        f"| 2b. {busy.name} ({len(busy.samples)}, lost {busy.lost}) | {us(busy.p50)} "
        f"| {us(busy.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(busy.p50, paced_base50)} / "
        f"{ratio(busy.p99, paced_base99)} "
        f"| no command held >= {STALL_US // 1000} ms (Nagle + delayed ACK) "
        f"| {target('no stall', no_stall)}: {stalls(busy)} held, "
        f"max {us(max(busy.samples, default=math.nan))} |",
        *mqttio_latency_rows(perf, target),
        f"| 3. {state.name} ({len(state.samples)}, lost {state.lost}) | {us(state.p50)} "
        f"| {us(state.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(state.p50, paced_base50)} / "
        f"{ratio(state.p99, paced_base99)} | p50 <= {STATE_P50_FACTOR}x "
        f"| {target('state p50', at_most(state.p50, STATE_P50_FACTOR * paced_base50))} |",
        f"| 3. (same, with the ZeroMQ hop into another process) | | "
        f"| paced round trip + ZeroMQ to another process: {us(far_base50)} / {us(far_base99)} "
        f"| {ratio(state.p50, far_base50)} / {ratio(state.p99, far_base99)} | information | |",
        f"| 3f. {floor.name} ({len(floor.samples)}, lost {floor.lost}) | {us(floor.p50)} "
        f"| {us(floor.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(floor.p50, paced_base50)} / "
        f"{ratio(floor.p99, paced_base99)} | information: the bridge's state latency is "
        f"{ratio(state.p50, floor.p50)} / {ratio(state.p99, floor.p99)} of this | - |",
        *mqttio_state_rows(perf),
    ]
    rows += throughput_rows(perf, target)
    main_idle = next((r for r in perf.idle if r.pins == 16 and r.interval == 0.1), None)
    fast_idle = next((r for r in perf.idle if r.pins == 16 and r.interval == 0.02), None)
    python_start = statistics.median(perf.python_start_s) if perf.python_start_s else float("nan")
    for r, name, limit in ((main_idle, "0.1 s", IDLE_CPU_TARGET), (fast_idle, "0.02 s", None)):
        if r is None:
            continue
        ok = None if limit is None else r.cpu_pct <= limit
        rows.append(
            f"| 5. idle CPU, 16 pins, update_interval {name} ({r.window_s:.0f} s) "
            f"| {r.cpu_pct:.3f}% | | floor (perf_null.py, same window): {r.null_cpu_pct:.3f}% "
            f"| {ratio(r.cpu_pct, r.null_cpu_pct)} "
            f"| {f'<= {limit:.1f}% of one core' if limit else 'information'} "
            f"| {target('idle CPU 16 pins 0.1 s', ok) if limit else '-'} |"
        )
    if main_idle is not None:
        rows.append(
            f"| 5. resident memory (VmRSS) after the idle window, 16 pins 0.1 s "
            f"| {mb(main_idle.rss_kb)} | | floor: {mb(main_idle.null_rss_kb)} "
            f"| {ratio(main_idle.rss_kb, main_idle.null_rss_kb)} | <= {RSS_TARGET_MB:.0f} MB "
            f"| {target('RSS idle', main_idle.rss_kb / 1024 <= RSS_TARGET_MB)} |"
        )
        rows.append(
            f"| 5. the same, PSS / private (USS) | {mb(main_idle.pss_kb)} "
            f"| {mb(main_idle.uss_kb)} | floor: {mb(main_idle.null_pss_kb)} / "
            f"{mb(main_idle.null_uss_kb)} | {ratio(main_idle.pss_kb, main_idle.null_pss_kb)} / "
            f"{ratio(main_idle.uss_kb, main_idle.null_uss_kb)} | information | |"
        )
    rows += mqttio_footprint_rows(perf, main_idle)
    if perf.peak_hwm_kb:
        rows.append(
            f"| 5. peak resident memory (VmHWM) of any bridge, burst included "
            f"| {mb(perf.peak_hwm_kb)} | | | | <= {RSS_TARGET_MB:.0f} MB "
            f"| {target('peak RSS', perf.peak_hwm_kb / 1024 <= RSS_TARGET_MB)} |"
        )
    bridge_starts = [step for step in perf.startups if step["subject"] == "bridge"]
    if bridge_starts:
        times = [step["online"] for step in bridge_starts]
        median_start = statistics.median(times)
        null_starts = [r.null_startup_s for r in perf.idle if r.null_startup_s is not None]
        null_median = statistics.median(null_starts) if null_starts else float("nan")

        def median_step(key: str) -> str:
            values = [step[key] for step in bridge_starts if step[key] is not None]
            return secs(statistics.median(values)) if values else "-"

        rows.append(
            f"| 5. start-up to `online` ({len(times)} starts) | median {median_start:.3f} s "
            f"| max {max(times):.3f} s (first {times[0]:.3f} s) "
            f"| `python -c pass` {python_start:.3f} s; perf_null.py to first update "
            f"{secs(null_median)} | {ratio(median_start, python_start)} / "
            f"{ratio(median_start, null_median)} | < {STARTUP_TARGET} s "
            f"| median {target('start-up median', median_start < STARTUP_TARGET)}, "
            f"max {target('start-up max', max(times) < STARTUP_TARGET)} |"
        )
        rows.append(
            f"| 5. start-up steps (medians): `offline` published (broker connected) "
            f"| {median_step('mqtt')} | | driver's first update sent: "
            f"{median_step('first_update')} | | information | |"
        )
    rows += mqttio_startup_rows(perf)

    matrix = matrix_section(perf)
    summary = ["", "Targets: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in targets)]
    notes = [
        "",
        "How each figure is taken:",
        "",
        "- Round trip: paho publisher (QoS 0, writes from the calling thread) -> Mosquitto -> "
        "paho subscriber (timestamp first thing in `on_message`); one message in flight.",
        "- ZeroMQ: pyzmq PUSH -> PULL on 127.0.0.1 (the PULL in a thread polling as the "
        "simulated driver does), warm, paced 0.1 s. The same into another process "
        "(`perf_null.py --pull-port`, polling the same way, printing its clock at each "
        "arrival), as every push into MALOS is: information, interleaved with the rest; the "
        "targets keep the issue's in-process hop.",
        "- Command: QoS 0 publish on `<base>/gpio/0/set`, ON/OFF alternating -> the simulated "
        "driver's config socket (its `on_wire` hook, right after the receive, before the "
        "simulator decodes and applies the frame, as the ZeroMQ baseline stops at its "
        "receive); the next sample waits for the bridge's state echo, then 0.1 s. (Until "
        "run 20261126-043553 the end was after the simulator's decoding and applying, "
        "about 40 µs later at p50 on this machine, see `benchmarks/stages.py`.)",
        "- 2b: the same command, 30 ms apart and without waiting for the state echo, so "
        "that commands arrive while the bridge publishes states (QoS 1) and the broker "
        "acknowledges them; with Mosquitto's default `set_tcp_nodelay false`, a command "
        "queued behind an unacknowledged PUBACK waits for the bridge's delayed ACK (up to "
        "40 ms) unless the bridge acknowledges at once (it sets TCP_QUICKACK after each read).",
        "- 2f, the command floor: a QoS 0 set to the same `perf_null.py`, which sends a "
        "prepared config frame from its `on_message` (no parsing, no pin table): one paho "
        "receive and one ZeroMQ push into the driver's process.",
        "- 3f, the state floor: the same flip at the driver of `perf_null.py --mqtt-port`, a "
        "poll loop like the bridge's that republishes each changed update frame at once (QoS "
        "1, no decoding, no pin table): the ZeroMQ hop into another process plus one paho "
        "publish, what any Python bridge on pyzmq and paho pays. Interleaved with the other "
        "samples.",
        "- State: input pin 8 flipped from outside; from the moment the driver sends the "
        "update frame with the changed level (its `on_wire` hook, just before the send) to "
        "the state message at the subscriber; 0.1 s gap before each flip. (Until run "
        "20261126-043553 the start was when the simulator read the levels, before its own "
        "protobuf encoding, about 23 µs earlier at p50.)",
        "- Command, state, paced round trip and ZeroMQ samples are interleaved, one of each "
        "per cycle, so drift hits them alike. Targets compare command and state latency with "
        "the paced round trip: both are paced 0.1 s apart, so each wakes an idle process as "
        "the paced baseline does (the issue's own figure for a round trip here, 300-600 µs, is "
        "the paced one; back to back it is 60-110 µs, shown for information).",
        "- Throughput: configs received / (last config - first publish); steady = the middle "
        "80% of the configs over their time span. Sustained: the publisher holds a command "
        "back while `--window` of them are published and not yet seen at the driver (the "
        "baseline: not yet seen by the bare subscriber). Raw burst: all at once; Mosquitto's "
        "default queue for a QoS 1 subscriber (20 in flight + 1000 queued) then drops what the "
        "subscriber does not take in time, whoever it is. The publisher, the simulated "
        "driver and the bare subscriber share this process (one GIL), so both rates are "
        "lower bounds.",
        "- CPU: utime + stime from /proc over the window (10 ms ticks); bridge pins are "
        "outputs, initial off, discovery on, other settings default.",
        "- Start-up: from just before the bridge process is spawned to `online` at the "
        "subscriber. The bridge goes online at the driver's first update, and the driver "
        "(like MALOS) looks for a first ping only every 100 ms, so up to 0.1 s of it is the "
        "driver's.",
    ]
    context = ["", "| run | value |", "|---|---|"]
    facts = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **machine_facts(),
        **code_facts(),
        "load average at each phase": "; ".join(f"{p}: {load}" for p, load in perf.loads),
        "other benchmarks running": "; ".join(perf.contention) or "none seen",
        "exit statuses (SIGTERM)": ", ".join(f"{k} {v}" for k, v in perf.exits.items()),
        "mqtt-io": perf.mqttio_note,
        "logs": str(perf.workdir),
    }
    context += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in facts.items()]
    mqtt_io = ["", "## mqtt-io", "", *mqttio_notes(perf)]
    text = "\n".join(
        [
            f"# mqtt-gpio-bridge performance, {started:%Y-%m-%d %H:%M}",
            "",
            *rows,
            *summary,
            *matrix,
            *notes,
            *context,
            *mqtt_io,
        ]
    )
    data = {
        "facts": facts,
        "settings": settings.__dict__,
        "series": {key: {**v.summary(), "samples_us": v.samples} for key, v in s.items()},
        "throughput": perf.throughput,
        "throughput_baseline": perf.burst_baseline,
        "idle": [r.__dict__ for r in perf.idle],
        "mqttio_idle": [r.__dict__ for r in perf.mqttio_idle],
        "added_time_us": added_time(perf),
        "startups": perf.startups,
        "python_start_s": perf.python_start_s,
        "targets": dict(targets),
    }
    return text, data


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


# -- main ------------------------------------------------------------------------------------


def prepare_mqttio(*, required: bool) -> tuple[MqttIo | None, str]:
    """mqtt-io for the run, its venv made first if need be, and a note for the report. If the
    venv cannot be made: BenchmarkError when mqtt-io was asked for, else None and why."""
    try:
        python = mqttio.ensure_venv(log=lambda line: print(f"perf: {line}", flush=True))
    except (BenchmarkError, OSError, subprocess.SubprocessError) as exc:
        if required:
            raise BenchmarkError(str(exc)) from exc
        note = f"left out, its venv could not be made ({exc})"
        print(f"perf: mqtt-io {note}", flush=True)
        return None, note
    return MqttIo(python), f"mqtt-io {mqttio.VERSION} from {python}"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; `subject_list` holds the subjects, checked and in order."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (~2 min)")
    parser.add_argument("--samples", type=int, help="latency cycles (500; quick 40)")
    parser.add_argument("--rtt-messages", type=int, help="back-to-back round trips (2000; 300)")
    parser.add_argument("--burst", type=int, help="set commands in a burst (20000; 3000)")
    parser.add_argument(
        "--window",
        type=int,
        default=500,
        help="sustained run: most commands in flight end to end (500)",
    )
    parser.add_argument("--idle", type=float, help="idle window, 16 pins 0.1/0.02 s (60; 5)")
    parser.add_argument("--matrix", type=float, help="idle window, other cells (30; 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait for soak.py/scale.py to end"
    )
    parser.add_argument(
        "--subjects",
        help="comma-separated, of: bridge, mqttio (default: both; mqtt-io is left out, with "
        "a note in the report, if its venv cannot be made)",
    )
    args = parser.parse_args(argv)
    subjects = tuple(dict.fromkeys((args.subjects or "bridge,mqttio").replace(" ", "").split(",")))
    if not set(subjects) <= {"bridge", "mqttio"}:
        parser.error(f"--subjects: bridge and/or mqttio, not {args.subjects!r}")
    args.subject_list = subjects
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    subjects: tuple[str, ...] = args.subject_list
    quick = args.quick

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    settings = Settings(
        samples=pick(args.samples, 500, 40),
        rtt_messages=pick(args.rtt_messages, 2000, 300),
        burst=pick(args.burst, 20000, 3000),
        window=args.window,
        idle_s=pick(args.idle, 60.0, 5.0),
        matrix_s=pick(args.matrix, 30.0, 3.0),
        python_starts=5 if not quick else 2,
        wait_quiet=not args.no_wait,
        subjects=subjects,
    )
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    mqttio_subject, mqttio_note = None, "not asked for (--subjects)"
    if "mqttio" in subjects:
        try:
            mqttio_subject, mqttio_note = prepare_mqttio(required=args.subjects is not None)
        except BenchmarkError as exc:
            print(f"perf: mqtt-io: {exc}", file=sys.stderr)
            return 2

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = datetime.datetime.now()
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-perf-"))
    perf = Perf(settings, workdir)
    perf.mqttio, perf.mqttio_note = mqttio_subject, mqttio_note
    print(f"perf: logs in {workdir}", flush=True)
    failure = None
    try:
        perf.run()
    except KeyboardInterrupt:
        failure = "interrupted"
    except PerfError as exc:
        failure = str(exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        perf.close()
    text, data = build_report(perf, settings, started)
    if failure:
        text += f"\n\nRun aborted: {failure}\n"
        data["aborted"] = failure
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"perf-{started:%Y%m%d-%H%M%S}"
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print(text)
    print()
    print(write_chart(perf, stem.with_suffix(".png")))
    print(f"report: {stem.with_suffix('.md')}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
