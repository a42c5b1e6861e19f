"""Flood benchmark: the bridge under floods of pulse commands, Home Assistant births and updates.

Run it from the checkout (not part of the test suite; needs `mosquitto` on the PATH):

    .venv/bin/python benchmarks/flood.py                      # all phases, under a minute
    .venv/bin/python benchmarks/flood.py --phase pulse        # one phase: pulse, birth, driver
    .venv/bin/python benchmarks/flood.py --quick              # shorter floods
    .venv/bin/python benchmarks/flood.py --bridge-ref HEAD    # run the bridge of a commit

Each phase starts its own Mosquitto (a free port on 127.0.0.1, `soak.Mosquitto`), its own MALOS
driver and the bridge as a process of its own (`python -m mqtt_gpio_bridge run --config X
--log-level WARNING`, config written by `soak.bridge_config`: pins 0..7 outputs with `initial:
"off"`, 8..15 inputs, QoS 1, discovery on), so that no phase inherits another's memory. The
bridge's memory is VmRSS from /proc/<pid>/status (`soak.ProcWatch`, every 0.25 s, plus a
reading at each mark); its CPU time is utime + stime from /proc/<pid>/stat.

1. pulse: `{"state":"ON","duration_ms":3600000}` QoS 0 to pin 0's `set` topic, 200,000 times
   spread over 15 s (or as fast as the paho clients manage), each from a paho client without
   a network thread (every publish writes to the socket at once). Simulated driver in this
   process; configs are counted where they cross its socket (`on_wire`). Memory before, peak,
   and 5 s after the last publish; the latency of single commands on pin 1 (QoS 1 `ON`/`OFF`
   publish -> that config at the driver's socket), about one a second during the flood, and
   ten after. Each replaced hour-long pulse leaves a cancelled timer queued until its time.
2. birth: 2,000 `online` messages to `<homeassistant.prefix>/status`, back to back; every
   message the bridge publishes in the 5 s after (a QoS 0 subscriber on `#` counts topics
   under the base topic or the discovery prefix, the births themselves left out), the peak
   per second, the bridge's CPU time and memory; then how long until it falls quiet.
3. driver: a hostile driver (this process binds the four ZeroMQ ports itself: config PULL,
   keep-alive PULL, errors PUB, updates PUB with SNDHWM 20 like MALOS) sends valid updates
   flipping inputs 8 and 9 at 10 kHz for 5 s; state messages per pin per second (peak and
   mean, at a QoS 0 subscriber), the bridge's CPU share, and whether the last published state
   of each pin equals the last level sent: after 1 s of silence, then after 1 s of the
   periodic updates a driver sends anyway.

Results: `benchmarks/results/flood-<time>.md` and `.json` (`--out DIR` to write elsewhere),
with the commit and the machine. Logs and configs stay in the `/tmp/mqtt-gpio-flood-*`
directory the report names. The exit status is 1 if a phase could not run, the bridge died,
or a last published state differs from the last level sent; figures are never judged.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
import yaml
import zmq
from harness import HOST, BenchmarkError, cpu_ticks, end_process, free_port_block
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from soak import Mosquitto, ProcWatch, bridge_config, machine_facts

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.sim.codec import PinConfig, decode_pin_config, encode_levels
from mqtt_gpio_bridge.sim.driver import PUB_SNDHWM, Board, SimulatedDriver

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
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


@dataclass(frozen=True)
class BridgeCode:
    """Where the bridge process imports `mqtt_gpio_bridge` from, and what that is."""

    root: Path
    label: str
    sha256: str

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(self.root))


def git(*args: str) -> str:
    """The output of a git command in the checkout ("" if it fails)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    return ""


def sources_sha256(package: Path) -> str:
    """A hash of a package's *.py files (names and bytes), as soak.py and perf.py report it."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def bridge_code(ref: str | None, workdir: Path) -> BridgeCode:
    """The working tree's package, or (with `ref`) that commit's, exported with `git archive`.

    The export leaves the working tree, the index and the stash alone; the bridge process then
    finds it first on PYTHONPATH (the editable install's finder comes after sys.path).
    """
    if ref is None:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:].strip()
            for line in git("status", "--porcelain", "--", "mqtt_gpio_bridge").splitlines()
            if line.strip()
        ]
        state = f"uncommitted changes in {', '.join(changed)}" if changed else "no changes"
        root, label = ROOT, f"working tree at {head} ({state})"
    else:
        sha = git("rev-parse", "--short", f"{ref}^{{commit}}").strip()
        if not sha:
            raise BenchmarkError(f"git does not know the commit {ref!r}")
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", sha, "mqtt_gpio_bridge"],
            capture_output=True,
            check=True,
        ).stdout
        root = workdir / f"code-{sha}"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        label = f"{ref} = {sha}, exported with git archive (not the working tree)"
    code = BridgeCode(root, label, sources_sha256(root / "mqtt_gpio_bridge"))
    found = subprocess.run(
        [sys.executable, "-c", "import mqtt_gpio_bridge; print(mqtt_gpio_bridge.__file__)"],
        capture_output=True,
        text=True,
        cwd=root,
        env=code.env(),
        check=False,
    ).stdout.strip()
    if not found.startswith(str(root / "mqtt_gpio_bridge")):
        raise BenchmarkError(f"the bridge would import {found or 'nothing'}, not {root}")
    return code


def run_facts(code: BridgeCode) -> dict[str, str]:
    """The commit, the code the bridge runs, and the machine."""
    head = git("rev-parse", "--short", "HEAD").strip() or "?"
    changes = [line[3:].strip() for line in git("status", "--porcelain").splitlines() if line]
    facts = {
        "commit": head + ("+dirty" if changes else ""),
        "uncommitted changes": ", ".join(changes) or "none",
        "bridge code run": code.label,
        "bridge sources sha256": code.sha256,
    }
    facts |= machine_facts()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    facts["load average at start"] = load_average()
    return facts


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- MQTT clients ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    at: float
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """A paho client with its own network thread keeping every message on its filters.

    It subscribes with QoS 0, so that acknowledging does not slow it down; a subscriber that
    still falls behind loses messages at the broker, which logs it (see `Rig.drop_notices`).
    """

    def __init__(self, port: int, filters: Sequence[str]) -> None:
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"flood-rec-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect(HOST, port, keepalive=60)
        self.client.loop_start()
        self.client.subscribe([(topic, 0) for topic in filters])
        if not subscribed.wait(10):
            raise BenchmarkError("the recording MQTT client could not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        received = Received(time.monotonic(), message.topic, bytes(message.payload), message.retain)
        with self._lock:
            self._messages.append(received)

    def messages(self, since: float = -math.inf, until: float = math.inf) -> list[Received]:
        """Messages received from `since` up to `until` (monotonic clock)."""
        with self._lock:
            return [m for m in self._messages if since <= m.at <= until]

    def last(self, topic: str) -> Received | None:
        with self._lock:
            for message in reversed(self._messages):
                if message.topic == topic:
                    return message
        return None

    def quiet_after(
        self, since: float, wanted: Callable[[Received], bool], quiet: float, cap: float
    ) -> float | None:
        """Wait until no wanted message arrived for `quiet` s; the time of the last one (None:
        still arriving when `cap` seconds from `since` had passed)."""
        while True:
            with self._lock:
                last = next((m.at for m in reversed(self._messages) if wanted(m)), since)
            moment = time.monotonic()
            if moment - max(last, since) >= quiet:
                return last
            if moment - since > cap:
                return None
            time.sleep(0.1)

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


@dataclass(frozen=True)
class Sent:
    count: int
    started: float
    ended: float
    """When the last byte was handed to the socket."""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def publish_flood(port: int, topic: str, payload: str, count: int, seconds: float) -> Sent:
    """Publish `count` QoS 0 messages from one paho client driven by the calling thread.

    Without a network thread paho writes each publish to the socket at once. The messages are
    spread evenly over `seconds` (0: back to back); a sender that falls behind sends as fast
    as it can and stops where it is `SEND_GRACE` seconds after its schedule.
    """
    connected = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"flood-send-{uuid.uuid4().hex[:8]}"
    )
    client.on_connect = lambda *_args: connected.set()
    client.connect(HOST, port, keepalive=60)
    deadline = time.monotonic() + 10
    while not connected.is_set():
        client.loop(0.05)
        if time.monotonic() > deadline:
            raise BenchmarkError("a flood sender got no CONNACK")
    fine = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)
    sent = 0
    started = time.monotonic()
    give_up = started + seconds + SEND_GRACE
    try:
        while sent < count:
            moment = time.monotonic()
            if moment > give_up:
                break
            due = count if seconds <= 0 else min(count, int((moment - started) * count / seconds))
            if sent >= due:
                time.sleep(0.001)
                continue
            while sent < due:
                info = client.publish(topic, payload, qos=0)
                if info.rc not in fine:
                    raise BenchmarkError(f"a flood publish failed: {paho.error_string(info.rc)}")
                sent += 1
        while client.want_write():  # what the socket did not take yet
            if client.loop_write() not in fine:
                raise BenchmarkError("a flood sender lost its connection")
            time.sleep(0.001)
        ended = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    return Sent(sent, started, ended)


# -- the simulated driver's side --------------------------------------------------------------


class ConfigTap:
    """The simulated driver's `on_wire` hook: counts configs per (pin, mode, value) as they
    cross its socket, and timestamps the one a single command waits for."""

    def __init__(self) -> None:
        self._decoded: dict[bytes, PinConfig | None] = {}
        self.counts: Counter[tuple[int | None, int, int]] = Counter()
        self.last_at: dict[int | None, float] = {}
        self._lock = threading.Lock()
        self._awaited: tuple[int, int] | None = None
        self._arrived = threading.Event()
        self._arrived_at = 0.0

    def __call__(self, kind: str, frame: bytes) -> None:
        if kind != "config":
            return
        at = time.monotonic()
        if frame in self._decoded:
            config = self._decoded[frame]
        else:
            try:
                config = decode_pin_config(frame)
            except CodecError:
                config = None
            self._decoded[frame] = config
        if config is None:
            return
        self.counts[config.pin, config.mode, config.value] += 1
        self.last_at[config.pin] = at
        with self._lock:
            if self._awaited == (config.pin, config.value) and config.mode == OUTPUT_MODE:
                self._awaited = None
                self._arrived_at = at
                self._arrived.set()

    def expect(self, pin: int, value: int) -> None:
        """Wait for the next output config of `pin` with `value` (see `arrival`)."""
        with self._lock:
            self._arrived.clear()
            self._awaited = (pin, value)

    def arrival(self, timeout: float) -> float | None:
        """When the expected config crossed the socket; None if it did not within `timeout`."""
        if not self._arrived.wait(timeout):
            with self._lock:
                self._awaited = None
            return None
        return self._arrived_at


class Prober:
    """Single commands on one output pin: QoS 1 `ON`/`OFF` publish -> its config at the driver."""

    def __init__(self, port: int, tap: ConfigTap, pin: int, topic: str) -> None:
        self.tap, self.pin, self.topic = tap, pin, topic
        self.level = 0  # `initial: "off"`
        connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"flood-probe-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda *_args: connected.set()
        self.client.connect(HOST, port, keepalive=60)
        self.client.loop_start()
        if not connected.wait(10):
            raise BenchmarkError("the probing MQTT client got no CONNACK")

    def probe(self) -> float | None:
        """One command to the other level; milliseconds until its config, None if lost."""
        self.level = 1 - self.level
        self.tap.expect(self.pin, self.level)
        started = time.monotonic()
        self.client.publish(self.topic, "ON" if self.level else "OFF", qos=1)
        arrived = self.tap.arrival(PROBE_TIMEOUT)
        return None if arrived is None else (arrived - started) * 1000

    def probe_while(self, running: Callable[[], bool], gap: float) -> list[float | None]:
        """A command every `gap` seconds while `running()` holds."""
        results = []
        while running():
            started = time.monotonic()
            results.append(self.probe())
            time.sleep(max(0.0, gap - (time.monotonic() - started)))
        return results

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


# -- the hostile driver -----------------------------------------------------------------------


@dataclass(frozen=True)
class DriverFlood:
    sent: int
    started: float
    ended: float
    last_levels: int
    longest_gap_ms: float
    """Longest time between two rounds of sending (this process not scheduled, or the GIL)."""


class HostileDriver:
    """A fake MALOS GPIO driver on four ports of its own that sends valid updates at any rate.

    When not flooding it sends its levels every `IDLE_GAP` seconds, as MALOS does; after a
    flood it stays silent until `resume()`. What the bridge sends (configs, pings) is read and
    dropped.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.levels = 0
        self._silent = False
        self._request: tuple[float, float, tuple[int, int]] | None = None
        self._result: DriverFlood | None = None
        self._done = threading.Event()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._serve, name="hostile-driver", daemon=True)

    def start(self) -> HostileDriver:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise BenchmarkError(f"the hostile driver could not bind: {self._error}")
        return self

    def flood(self, rate: float, seconds: float, pins: tuple[int, int]) -> DriverFlood:
        """Send updates flipping both `pins` each, `rate` a second for `seconds`; then silence."""
        self._done.clear()
        self._request = (rate, seconds, pins)
        if not self._done.wait(seconds + 30) or self._result is None:
            raise BenchmarkError("the hostile driver's flood did not finish")
        return self._result

    def resume(self) -> None:
        """Send the periodic updates again."""
        self._silent = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _serve(self) -> None:
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sockets: list[zmq.Socket[bytes]] = []
        try:
            for offset, kind in enumerate((zmq.PULL, zmq.PULL, zmq.PUB, zmq.PUB)):
                socket = context.socket(kind)
                sockets.append(socket)
                socket.setsockopt(zmq.LINGER, 0)
                if kind == zmq.PUB:
                    socket.setsockopt(zmq.SNDHWM, PUB_SNDHWM)
                socket.bind(f"tcp://{HOST}:{self.port + offset}")
        except zmq.ZMQError as exc:
            self._error = str(exc)
            for socket in sockets:
                socket.close(0)
            context.term()
            self._ready.set()
            return
        config_in, ping_in, _errors_out, updates_out = sockets
        poller = zmq.Poller()
        poller.register(config_in, zmq.POLLIN)
        poller.register(ping_in, zmq.POLLIN)
        self._ready.set()
        next_idle = time.monotonic()
        try:
            while not self._stop.is_set():
                for socket, _ in poller.poll(10):
                    _drain(socket)
                request = self._request
                if request is not None:
                    self._result = self._flood(updates_out, (config_in, ping_in), *request)
                    self._request = None
                    self._silent = True
                    self._done.set()
                    continue
                moment = time.monotonic()
                if not self._silent and moment >= next_idle:
                    updates_out.send(encode_levels(self.levels))
                    next_idle = moment + IDLE_GAP
        finally:
            for socket in sockets:
                socket.close(0)
            context.term()

    def _flood(
        self,
        updates_out: zmq.Socket[bytes],
        inbound: tuple[zmq.Socket[bytes], ...],
        rate: float,
        seconds: float,
        pins: tuple[int, int],
    ) -> DriverFlood:
        levels = (
            (self.levels | 1 << pins[0]) & ~(1 << pins[1]),
            (self.levels | 1 << pins[1]) & ~(1 << pins[0]),
        )
        frames = [encode_levels(levels[0]), encode_levels(levels[1])]
        sent = 0
        longest = 0.0
        started = last_round = time.monotonic()
        while True:
            moment = time.monotonic()
            longest = max(longest, moment - last_round)
            last_round = moment
            if moment - started >= seconds:
                break
            due = int((moment - started) * rate) + 1
            while sent < due:
                updates_out.send(frames[sent % 2])  # a PUB drops beyond its HWM, never blocks
                sent += 1
            for socket in inbound:
                _drain(socket)
            time.sleep(FLOOD_TICK)
        self.levels = levels[(sent - 1) % 2]
        return DriverFlood(sent, started, time.monotonic(), self.levels, longest * 1000)


def _drain(socket: zmq.Socket[bytes]) -> None:
    with contextlib.suppress(zmq.Again):
        while True:
            socket.recv(zmq.NOBLOCK)


# -- one phase's processes --------------------------------------------------------------------


class Driver(Protocol):
    def stop(self) -> None: ...


@dataclass
class Rig:
    """One Mosquitto, one MALOS driver and one bridge process, for one phase."""

    workdir: Path
    broker: Mosquitto
    bridge: subprocess.Popen[bytes]
    watch: ProcWatch
    recorder: Recorder
    base: str
    prefix: str

    @property
    def pid(self) -> int:
        return self.bridge.pid

    def alive(self) -> bool:
        return self.bridge.poll() is None

    def set_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/set"

    def state_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/state"

    def rss_kb(self) -> int:
        """The bridge's VmRSS now (also kept among the watch's samples)."""
        self.watch.read()
        return self.watch.last_rss_kb

    def peak_kb(self, since: float, until: float) -> int:
        return max((kb for at, kb in list(self.watch.samples) if since <= at <= until), default=0)

    def cpu_seconds(self) -> float:
        return cpu_ticks(self.pid) / TICKS

    def broker_cpu_seconds(self) -> float:
        assert self.broker.process is not None
        return cpu_ticks(self.broker.process.pid) / TICKS

    def drop_notices(self) -> int:
        """Lines in which Mosquitto says it dropped messages for a client."""
        log = self.broker.log_path
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(1 for line in text.splitlines() if "dropped" in line)

    def wait_online(self) -> None:
        deadline = time.monotonic() + ONLINE_TIMEOUT
        while True:
            status = self.recorder.last(f"{self.base}/status")
            if status is not None and status.payload == b"online":
                return
            if not self.alive():
                raise BenchmarkError(f"the bridge exited with {self.bridge.returncode}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the bridge was not online after {ONLINE_TIMEOUT:g} s")
            time.sleep(0.02)


@contextlib.contextmanager
def rig(
    workdir: Path,
    code: BridgeCode,
    start_driver: Callable[[int], Driver],
    filters: Callable[[str, str], list[str]],
) -> Iterator[Rig]:
    """Start Mosquitto, the driver, a recorder on `filters(base, prefix)` and the bridge; wait
    for `online`; stop them all on the way out."""
    workdir.mkdir(parents=True)
    broker = Mosquitto(free_port_block(1), workdir)
    driver: Driver | None = None
    recorder: Recorder | None = None
    bridge: subprocess.Popen[bytes] | None = None
    watch: ProcWatch | None = None
    try:
        broker.start()
        malos_port = free_port_block(4, taken={broker.port})
        driver = start_driver(malos_port)
        config_path = workdir / "bridge.yaml"
        bridge_config(
            config_path,
            mqtt_port=broker.port,
            malos_port=malos_port,
            unique=uuid.uuid4().hex[:8],
            outputs=OUTPUTS,
            inputs=INPUTS,
        )
        config = yaml.safe_load(config_path.read_text())
        base, prefix = config["mqtt"]["base_topic"], config["homeassistant"]["prefix"]
        recorder = Recorder(broker.port, filters(base, prefix))
        command = [sys.executable, "-m", "mqtt_gpio_bridge", "run", "--config", str(config_path)]
        with (workdir / "bridge.log").open("wb") as log:
            bridge = subprocess.Popen(
                [*command, "--log-level", "WARNING"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=code.root,
                env=code.env(),
            )
        watch = ProcWatch(bridge.pid)
        watch.start()
        the_rig = Rig(workdir, broker, bridge, watch, recorder, base, prefix)
        the_rig.wait_online()
        yield the_rig
    finally:
        if watch is not None:
            watch.stop()
        end_process(bridge)
        if recorder is not None:
            recorder.close()
        if driver is not None:
            driver.stop()
        broker.stop()


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


# -- the phases ------------------------------------------------------------------------------


def pulse_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """1. Hour-long pulses replacing each other on one pin, as fast as they can be sent."""
    result = PhaseResult(
        "pulse",
        "1. Pulse flood",
        f"`{PULSE_PAYLOAD}` QoS 0 to `<base>/gpio/{FLOOD_PIN}/set`, {settings.pulses:,} "
        f"spread over {settings.pulse_seconds:g} s from {settings.senders} paho client(s); "
        f"single commands: QoS 1 `ON`/`OFF` to pin {PROBE_PIN}, timed from the publish to its "
        "config at the simulated driver's socket. Configs counted at that socket.",
    )
    tap = ConfigTap()

    def start_driver(port: int) -> Driver:
        return SimulatedDriver(HOST, port, Board(), on_wire=tap).start()

    with rig(workdir, code, start_driver, lambda base, _prefix: [f"{base}/status"]) as run:
        prober = Prober(run.broker.port, tap, PROBE_PIN, run.set_topic(PROBE_PIN))
        try:
            time.sleep(SETTLE)
            before_kb = run.rss_kb()
            before_configs = tap.counts[FLOOD_PIN, OUTPUT_MODE, 1]
            cpu_before, own_before = run.cpu_seconds(), own_cpu_seconds()
            share = [settings.pulses // settings.senders] * settings.senders
            share[0] += settings.pulses - sum(share)
            with ThreadPoolExecutor(settings.senders) as pool:
                futures = [
                    pool.submit(
                        publish_flood,
                        run.broker.port,
                        run.set_topic(FLOOD_PIN),
                        PULSE_PAYLOAD,
                        count,
                        settings.pulse_seconds,
                    )
                    for count in share
                ]
                time.sleep(0.5)
                during = prober.probe_while(lambda: not all(f.done() for f in futures), PROBE_GAP)
                sent = [future.result() for future in futures]
            started = min(s.started for s in sent)
            ended = max(s.ended for s in sent)
            count = sum(s.count for s in sent)
            cpu_flood = run.cpu_seconds() - cpu_before
            own_flood = own_cpu_seconds() - own_before
            time.sleep(max(0.0, ended + settings.window - time.monotonic()))
            after_kb = run.rss_kb()
            cpu_window = run.cpu_seconds() - cpu_before - cpu_flood
            peak_kb = run.peak_kb(started, time.monotonic())
            hwm_kb = run.watch.hwm_kb
            received = tap.counts[FLOOD_PIN, OUTPUT_MODE, 1] - before_configs
            drained = tap.last_at.get(FLOOD_PIN, ended) - ended
            after: list[float | None] = []
            for _ in range(AFTER_PROBES):
                after.append(prober.probe())
                time.sleep(AFTER_PROBE_GAP)
            drops = run.drop_notices()
            alive = run.alive()
        finally:
            prober.close()
    wall = ended - started
    result.add(
        "pulse commands sent",
        f"{count:,} of {settings.pulses:,} in {wall:.2f} s ({count / wall:,.0f}/s)",
        sent=count,
        asked=settings.pulses,
        send_seconds=round(wall, 3),
        senders=settings.senders,
    )
    result.add(
        "pulse configs at the driver",
        f"{received:,} ({100 * received / max(1, count):.1f} % of sent); the last "
        f"{drained:+.2f} s after the last publish",
        configs_at_driver=received,
        last_config_after_s=round(drained, 3),
    )
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add(
        "bridge RSS: before / peak / after the last publish",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(after_kb)} ({settings.window:g} s after); "
        f"VmHWM {mb(hwm_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_after_kb=after_kb,
        vmhwm_kb=hwm_kb,
    )
    result.add(
        "bridge CPU: during the flood / the window after",
        f"{cpu_share(cpu_flood, wall)} / {cpu_window:.2f} s",
        bridge_cpu_flood_s=round(cpu_flood, 2),
        bridge_cpu_window_s=round(cpu_window, 2),
    )
    result.add(
        "this process's CPU during the flood (senders, driver, probes)",
        cpu_share(own_flood, wall),
        own_cpu_flood_s=round(own_flood, 2),
    )
    result.add(
        "single command during the flood",
        latencies(during),
        during_ms=[None if v is None else round(v, 2) for v in during],
    )
    result.add(
        f"single command after ({AFTER_PROBES}, {AFTER_PROBE_GAP:g} s apart)",
        latencies(after),
        after_ms=[None if v is None else round(v, 2) for v in after],
    )
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result


def birth_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """2. Home Assistant's birth message, thousands of times in a few tens of milliseconds."""
    result = PhaseResult(
        "birth",
        "2. Home Assistant birth flood",
        f"{settings.births:,} `online` (QoS 0) to `<homeassistant.prefix>/status` back to back "
        "from one paho client; every message under the base topic or the prefix counted at a "
        "QoS 0 subscriber on `#` (the births themselves left out); 1-s buckets from the first "
        "birth.",
    )

    def start_driver(port: int) -> Driver:
        return SimulatedDriver(HOST, port, Board()).start()

    with rig(workdir, code, start_driver, lambda _base, _prefix: ["#"]) as run:
        births_topic = f"{run.prefix}/status"

        def from_bridge(message: Received) -> bool:
            topic = message.topic
            return topic != births_topic and topic.startswith((f"{run.base}/", f"{run.prefix}/"))

        run.recorder.quiet_after(time.monotonic(), from_bridge, QUIET, QUIET_CAP)
        before_kb = run.rss_kb()
        cpu_before = run.cpu_seconds()
        sent = publish_flood(run.broker.port, births_topic, "online", settings.births, 0)
        window_end = sent.started + settings.window
        time.sleep(max(0.0, window_end - time.monotonic()))
        cpu_window = run.cpu_seconds() - cpu_before
        end_kb = run.rss_kb()
        peak_kb = run.peak_kb(sent.started, time.monotonic())
        published = [m for m in run.recorder.messages(sent.started, window_end) if from_bridge(m)]
        last = run.recorder.quiet_after(sent.started, from_bridge, QUIET, QUIET_CAP)
        cpu_total = run.cpu_seconds() - cpu_before
        total = [m for m in run.recorder.messages(sent.started) if from_bridge(m)]
        drops = run.drop_notices()
        alive = run.alive()
    buckets = per_second([m.at for m in published], sent.started, window_end)
    kinds = Counter(
        "discovery"
        if m.topic.startswith(f"{run.prefix}/")
        else "status"
        if m.topic == f"{run.base}/status"
        else "state"
        if m.topic.endswith("/state")
        else "other"
        for m in published
    )
    answer = OUTPUTS + INPUTS + 1 + OUTPUTS + INPUTS  # discovery, status, every pin's state
    result.add(
        "births sent",
        f"{sent.count:,} in {sent.seconds * 1000:.0f} ms",
        births=sent.count,
        births_ms=round(sent.seconds * 1000, 1),
    )
    result.add(
        f"bridge publishes in the {settings.window:g} s from the first birth",
        f"{len(published):,} ({', '.join(f'{k} {v:,}' for k, v in kinds.most_common())}); "
        f"a full answer to every birth would be {answer} x {sent.count:,} = "
        f"{answer * sent.count:,}",
        publishes=len(published),
        by_kind=dict(kinds),
        full_answer=answer * sent.count,
    )
    result.add(
        "publishes per second (peak; each second)",
        f"{max(buckets):,}; {', '.join(f'{n:,}' for n in buckets)}",
        peak_per_second=max(buckets),
        per_second=buckets,
    )
    result.add(
        "bridge CPU in the window",
        cpu_share(cpu_window, settings.window),
        bridge_cpu_window_s=round(cpu_window, 2),
    )
    result.add(
        "bridge RSS: before / peak in the window / at its end",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(end_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_end_kb=end_kb,
    )
    quiet = (
        f"its last publish {last - sent.started:.1f} s after the first birth"
        if last is not None
        else f"still publishing {QUIET_CAP:g} s after the first birth"
    )
    result.add(
        "until the bridge fell quiet",
        f"{len(total):,} publishes in all, {quiet}; CPU {cpu_total:.2f} s",
        publishes_total=len(total),
        last_publish_after_s=None if last is None else round(last - sent.started, 2),
        bridge_cpu_total_s=round(cpu_total, 2),
    )
    topics = Counter(m.topic for m in total)
    result.add(
        "times each topic was published, until quiet",
        f"{len(topics)} topics, each {min(topics.values(), default=0):,} to "
        f"{max(topics.values(), default=0):,} times",
        per_topic_min=min(topics.values(), default=0),
        per_topic_max=max(topics.values(), default=0),
    )
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result


def add_state_rate(
    result: PhaseResult, pin: int, times: list[float], flood: DriverFlood, resumed: float
) -> None:
    """One pin's state messages per second during the driver flood, and after its last update."""
    times = [moment for moment in times if moment < resumed]
    during = [moment for moment in times if moment <= flood.ended]
    wall = flood.ended - flood.started
    buckets = per_second(times, flood.started, max([flood.ended, *times]) + 1e-6)
    each = ", ".join(f"{n:,}" for n in buckets)
    result.add(
        f"pin {pin} state messages: mean / peak per second (each second)",
        f"{len(during) / wall:,.0f} / {max(buckets):,} ({each}); {len(times):,} in all, "
        f"{len(times) - len(during):,} after the last update",
        **{
            f"pin{pin}_mean_per_s": round(len(during) / wall, 1),
            f"pin{pin}_peak_per_s": max(buckets),
            f"pin{pin}_per_second": buckets,
            f"pin{pin}_total": len(times),
        },
    )


def check_last_states(
    result: PhaseResult, label: str, seen: dict[int, Received | None], levels: int
) -> None:
    """Whether each pin's last state message says the last level the driver sent."""
    checks = []
    for pin, message in seen.items():
        wanted = "ON" if levels >> pin & 1 else "OFF"
        got = None if message is None else message.payload.decode(errors="replace")
        checks.append(f"pin {pin} {got} (sent {wanted}){'' if got == wanted else ' MISMATCH'}")
        if got != wanted:
            result.problems.append(
                f"{label}: pin {pin} last published {got!r}, last level sent {wanted!r}"
            )
    result.add(f"last published state {label}", "; ".join(checks))


def driver_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """3. A driver flooding valid updates that flip two inputs each time."""
    rate, seconds = settings.driver_rate, settings.driver_seconds
    pins = FLIP_PINS
    result = PhaseResult(
        "driver",
        "3. Driver update flood",
        f"A hostile driver (ports bound by this process, updates PUB SNDHWM {PUB_SNDHWM} like "
        f"MALOS) sends updates flipping inputs {pins[0]} and {pins[1]} each, {rate:,.0f} a "
        f"second for {seconds:g} s, in rounds every {FLOOD_TICK * 1000:g} ms; state messages "
        f"counted at a QoS 0 subscriber on `<base>/#`, in 1-s buckets from the first update. "
        f"Then {SILENCE:g} s without updates, then periodic updates ({IDLE_GAP:g} s) with the "
        f"last levels for {RESUMED:g} s.",
    )
    drivers: list[HostileDriver] = []

    def start_driver(port: int) -> Driver:
        drivers.append(HostileDriver(port).start())
        return drivers[-1]

    with rig(workdir, code, start_driver, lambda base, _prefix: [f"{base}/#"]) as run:
        driver = drivers[0]
        state_topics = {run.state_topic(pin): pin for pin in pins}
        run.recorder.quiet_after(time.monotonic(), lambda _m: True, QUIET, QUIET_CAP)
        before_kb = run.rss_kb()
        cpu_before, broker_before = run.cpu_seconds(), run.broker_cpu_seconds()
        own_before = own_cpu_seconds()
        flood = driver.flood(rate, seconds, pins)
        wall = flood.ended - flood.started
        cpu_flood = run.cpu_seconds() - cpu_before
        broker_flood = run.broker_cpu_seconds() - broker_before
        own_flood = own_cpu_seconds() - own_before
        time.sleep(SILENCE)
        after_silence = {pin: run.recorder.last(run.state_topic(pin)) for pin in pins}
        resumed = time.monotonic()
        driver.resume()
        time.sleep(RESUMED)
        after_resume = {pin: run.recorder.last(run.state_topic(pin)) for pin in pins}
        after_kb = run.rss_kb()
        peak_kb = run.peak_kb(flood.started, time.monotonic())
        states = [m for m in run.recorder.messages(flood.started) if m.topic in state_topics]
        drops = run.drop_notices()
        alive = run.alive()
    result.add(
        "updates sent",
        f"{flood.sent:,} in {wall:.2f} s ({flood.sent / wall:,.0f}/s); longest pause between "
        f"two rounds {flood.longest_gap_ms:.1f} ms",
        updates_sent=flood.sent,
        flood_seconds=round(wall, 3),
        longest_gap_ms=round(flood.longest_gap_ms, 1),
    )
    for pin in pins:
        add_state_rate(
            result, pin, [m.at for m in states if state_topics[m.topic] == pin], flood, resumed
        )
    result.add(
        "planned cap (mqtt.max_state_rate default)",
        f"{PLANNED_STATE_RATE} per pin per second",
        planned_cap=PLANNED_STATE_RATE,
    )
    result.add(
        "CPU during the flood: bridge / Mosquitto / this process (driver, recorder)",
        f"{100 * cpu_flood / wall:.0f} % / {100 * broker_flood / wall:.0f} % / "
        f"{100 * own_flood / wall:.0f} % of one core ({cpu_flood:.2f} / {broker_flood:.2f} / "
        f"{own_flood:.2f} s over {wall:.1f} s)",
        bridge_cpu_flood_s=round(cpu_flood, 2),
        broker_cpu_flood_s=round(broker_flood, 2),
        own_cpu_flood_s=round(own_flood, 2),
    )
    result.add(
        "bridge RSS: before / peak / at the end",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(after_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_end_kb=after_kb,
    )
    check_last_states(result, f"after {SILENCE:g} s of silence", after_silence, flood.last_levels)
    check_last_states(
        result, f"after {RESUMED:g} s of periodic updates", after_resume, flood.last_levels
    )
    result.data["last_state_problems"] = list(result.problems)
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result


PHASES: dict[str, Callable[[Settings, BridgeCode, Path], PhaseResult]] = {
    "pulse": pulse_phase,
    "birth": birth_phase,
    "driver": driver_phase,
}


# -- report ----------------------------------------------------------------------------------


def render(result: PhaseResult) -> str:
    lines = [f"## {result.title}", "", result.description, "", "| figure | value |", "|---|---|"]
    lines += [f"| {label} | {text.replace('|', '/')} |" for label, text in result.rows]
    if result.problems:
        lines += ["", "Problems:", *[f"- {problem}" for problem in result.problems]]
    return "\n".join(lines)


def report(facts: dict[str, str], settings: Settings, results: list[PhaseResult]) -> str:
    lines = ["# Flood benchmark", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value.replace('|', '/')} |" for key, value in facts.items()]
    lines += [f"| settings | {settings} |", ""]
    for result in results:
        lines += [render(result), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=[*PHASES, "all"], default="all", help="(all)")
    parser.add_argument("--quick", action="store_true", help="shorter floods")
    parser.add_argument("--senders", type=int, default=1, help="pulse flood clients (1)")
    parser.add_argument(
        "--bridge-ref",
        metavar="REV",
        help="run the bridge of this commit (git archive) instead of the working tree",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.senders < 1:
        parser.error("--senders must be at least 1")
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    settings = Settings.quick(args.senders) if args.quick else Settings(senders=args.senders)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-flood-"))
    code = bridge_code(args.bridge_ref, workdir)
    facts = run_facts(code)
    facts["logs"] = str(workdir)
    print("\n".join(f"{key}: {value}" for key, value in facts.items()), flush=True)
    results = []
    for name in PHASES if args.phase == "all" else [args.phase]:
        print(f"\n-- {name} ...", flush=True)
        try:
            result = PHASES[name](settings, code, workdir / name)
        except BenchmarkError as exc:
            result = PhaseResult(name, f"{name}: could not run", "", problems=[str(exc)])
        results.append(result)
        print(render(result), flush=True)
    facts["load average at end"] = load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"flood-{stamp}"
    stem.with_suffix(".md").write_text(report(facts, settings, results))
    data = {
        "facts": facts,
        "settings": settings.__dict__,
        "phases": {r.name: {**r.data, "problems": r.problems} for r in results},
    }
    stem.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nwritten: {stem}.md, {stem}.json")
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
