"""Soak test: the bridge as a subprocess, a real Mosquitto, the simulated board, faults.

Run it from the checkout (not part of the test suite):

    .venv/bin/python benchmarks/soak.py --minutes 10 [--seed N] [--pins 12:4] [--report out.md]

For the chosen time it sends bursts of ON/OFF commands (MQTT QoS 1, each one waited on until
the broker acknowledges it) to random output pins, flips the simulated inputs now and then, and
every 10..30 s either restarts Mosquitto (same port, no persistence) or restarts the simulated
MALOS driver on the same `Board` (what a MALOS restart is). After each fault it waits for
`<base>/status` = `online`, then for the board and the retained states to match the last
acknowledged command of every pin (a "checkpoint"). At the end it checks the same once more,
prints a markdown table, and exits 1 on any mismatch, on a fault the bridge never recovered
from, or if the bridge process died.

Commands are only counted once acknowledged. A command sent while the broker is down is retried
until acknowledged; after a broker restart no command is sent until the bridge has published
its status on the new broker (so it has subscribed again): `set` is not retained, and a broker
without persistence drops commands nobody is subscribed to, by design of MQTT.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from harness import HOST, BenchmarkError, accepts_connections, end_process, free_port_block
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

ROOT = Path(__file__).resolve().parent.parent
PIN_COUNT = 16

ACK_TIMEOUT = 5.0
"""Seconds to wait for one PUBACK before reconnecting and sending the command again."""
SEND_DEADLINE = 180.0
"""Seconds one command may take, retries included, before the run is declared broken."""
RECOVERY_TIMEOUT = 60.0
"""Seconds after a restart within which `status` must read `online` again."""
CHECKPOINT_TIMEOUT = 15.0
"""Seconds after a recovery within which the board must show every acknowledged command."""
FINAL_TIMEOUT = 30.0
"""Seconds at the end for `status` = `online`, then for the board and retained states."""
FAULT_GAP = (10.0, 30.0)
DOWN_TIME = (0.2, 3.0)
BURST = (1, 200)
PAUSE = (0.0, 1.0)
INPUT_FLIP_CHANCE = 0.3
ON_PAYLOADS = ["ON", "on", "1", "true", "high", '"ON"', '{"state": "ON"}', '{"state": true}']
OFF_PAYLOADS = ["OFF", "off", "0", "false", "low", '"OFF"', '{"state": "OFF"}', '{"state": false}']


class SoakError(BenchmarkError):
    """The run cannot go on (a peer would not start, a command could not be delivered)."""


def now() -> float:
    return time.monotonic()


# -- ports and processes ---------------------------------------------------------------------


class Mosquitto:
    """One Mosquitto on a fixed port that can be stopped and started again (no persistence)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        )
        self.log_path = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.instance = 0
        """Which broker process is (or was last) running: 1 for the first, +1 per restart."""

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.instance + 1}\n".encode())
            log.flush()
            # Counted before the process exists: a connection made from now on is to it.
            self.instance += 1
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = now() + 10
        while not accepts_connections(self.port):
            if self.process.poll() is not None:
                raise SoakError(f"mosquitto exited with {self.process.returncode}; see log")
            if now() > deadline:
                raise SoakError(f"mosquitto is not listening on {self.port} after 10 s")
            time.sleep(0.005)

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


# -- MQTT clients ----------------------------------------------------------------------------


@dataclass
class StatusEvent:
    at: float
    instance: int
    payload: str
    retained: bool


class Monitor:
    """A long-lived client on `<base>/status`: when it changed, and on which broker process."""

    def __init__(
        self, broker: Mosquitto, status_topic: str, bridge_alive: Callable[[], bool]
    ) -> None:
        self.broker = broker
        self.bridge_alive = bridge_alive
        self.status_topic = status_topic
        self.events: list[StatusEvent] = []
        self.bridge_seen_on = 0
        """Broker instance on which a status from the bridge was last seen (it is subscribed)."""
        self._connection_instance = 0
        self._cond = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"soak-monitor-{uuid.uuid4().hex[:8]}"
        )
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async(HOST, broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        with self._cond:
            # The previous broker process has exited before `instance` moves on, so a CONNACK
            # seen now comes from the current one.
            self._connection_instance = self.broker.instance
        client.subscribe(self.status_topic, qos=1)

    def _on_message(self, _client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self._cond:
            self.events.append(
                StatusEvent(
                    now(),
                    self._connection_instance,
                    message.payload.decode(errors="replace"),
                    bool(message.retain),
                )
            )
            # Only the bridge publishes here (or its will, sent for it by the broker): it
            # has connected to this broker, and it subscribes to `set` before it publishes.
            self.bridge_seen_on = self._connection_instance
            self._cond.notify_all()

    def wait_bridge_subscribed(self, deadline: float) -> None:
        with self._cond:
            while self.bridge_seen_on != self.broker.instance:
                left = deadline - now()
                if not self.bridge_alive():
                    raise SoakError("the bridge process has died")
                if left <= 0:
                    raise SoakError(
                        f"the bridge published nothing on broker #{self.broker.instance}"
                    )
                self._cond.wait(min(left, 0.5))

    def first(
        self, payload: str, *, since: float, instance: int | None, timeout: float
    ) -> StatusEvent | None:
        """Wait for the first status `payload` received at or after `since` (on `instance`)."""
        deadline = now() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if (
                        event.payload == payload
                        and event.at >= since
                        and (instance is None or event.instance == instance)
                    ):
                        return event
                left = deadline - now()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


class Commander:
    """Sends one command at a time and returns only once the broker acknowledged it."""

    def __init__(self, broker: Mosquitto, monitor: Monitor) -> None:
        self.broker = broker
        self.monitor = monitor
        self.client: paho.Client | None = None
        self.client_instance = 0
        self._lost = threading.Event()
        self.attempts = 0
        self.unacknowledged = 0
        self.connections = 0

    def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()

    @staticmethod
    def _new_client() -> tuple[paho.Client, threading.Event, threading.Event]:
        # A fresh client each time: nothing queued in a dead one is ever sent again.
        lost = threading.Event()
        connected = threading.Event()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"soak-cmd-{uuid.uuid4().hex[:8]}",
            reconnect_on_failure=False,
        )

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            (lost if reason.is_failure else connected).set()

        client.on_connect = on_connect
        client.on_disconnect = lambda *_args: lost.set()
        return client, connected, lost

    def _connect(self, deadline: float) -> paho.Client:
        while True:
            if now() > deadline:
                raise SoakError("could not connect to the broker to send a command")
            client, connected, lost = self._new_client()
            instance = self.broker.instance
            try:
                client.connect(HOST, self.broker.port, keepalive=10)
            except OSError:
                time.sleep(0.05)
                continue
            client.loop_start()
            if connected.wait(2.0) and not lost.is_set():
                self.client, self._lost, self.client_instance = client, lost, instance
                self.connections += 1
                return client
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
            time.sleep(0.05)

    def _acknowledged(self, info: paho.MQTTMessageInfo) -> bool:
        end = now() + ACK_TIMEOUT
        while True:
            try:
                info.wait_for_publish(0.05)
                if info.is_published():
                    return True
            except (RuntimeError, ValueError):
                return False
            if self._lost.is_set() or now() > end:
                return False

    def send(self, topic: str, payload: str) -> tuple[float, int]:
        """Publish with QoS 1 until acknowledged; return (time of the PUBACK, broker instance)."""
        deadline = now() + SEND_DEADLINE
        while True:
            self.monitor.wait_bridge_subscribed(deadline)
            client = self.client
            if (
                client is None
                or self._lost.is_set()
                or self.client_instance != self.broker.instance
            ):
                self._drop()
                client = self._connect(deadline)
                continue  # the broker may have restarted while connecting: check the gate again
            self.attempts += 1
            info = client.publish(topic, payload, qos=1)
            if self._acknowledged(info):
                return now(), self.client_instance
            self.unacknowledged += 1
            self._drop()
            if now() > deadline:
                raise SoakError(f"{topic} {payload!r} not acknowledged in {SEND_DEADLINE} s")

    def close(self) -> None:
        self._drop()


def read_retained(port: int, topics: list[str], timeout: float = 2.0) -> dict[str, str] | None:
    """Retained payloads of `topics`, read by a fresh client (None if the broker is away)."""
    found: dict[str, str] = {}
    done = threading.Event()
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-read-{uuid.uuid4().hex[:8]}")

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        if message.retain:
            found[message.topic] = message.payload.decode(errors="replace")
            if len(found) == len(topics):
                done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    try:
        client.connect(HOST, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        client.subscribe([(topic, 1) for topic in topics])
        # Retained messages follow the SUBACK at once; a missing topic has none.
        if subscribed.wait(timeout):
            done.wait(0.3)
        return dict(found)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()


# -- the bridge process ----------------------------------------------------------------------


class ProcWatch(threading.Thread):
    """Polls /proc/<pid>/status of the bridge for its resident memory."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-poll", daemon=True)
        self.pid = pid
        self.max_rss_kb = 0
        self.last_rss_kb = 0
        self.hwm_kb = 0
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def read(self) -> None:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{self.pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            rss = int(fields["VmRSS"].split()[0])
            self.hwm_kb = max(self.hwm_kb, int(fields["VmHWM"].split()[0]))
            self.last_rss_kb = rss
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.samples.append((now(), rss))

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            self.read()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)

    def rss_at(self, moment: float) -> int | None:
        later = [rss for at, rss in self.samples if at >= moment]
        return later[0] if later else None


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a live process, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    after_name = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of the file (utime, stime); after_name starts at field 3.
    return int(after_name[11]) / ticks, int(after_name[12]) / ticks


def bridge_config(
    path: Path, *, mqtt_port: int, malos_port: int, unique: str, outputs: int, inputs: int
) -> str:
    base = f"soak/{unique}"
    lines = [
        "mqtt:",
        f"  host: {HOST}",
        f"  port: {mqtt_port}",
        f"  base_topic: {base}",
        "  qos: 1",
        "malos:",
        f"  host: {HOST}",
        f"  base_port: {malos_port}",
        "  update_interval: 0.05",
        "  keepalive_interval: 0.5",
        "  ping_timeout: 2.0",
        "  offline_after: 1.5",
        "homeassistant:",
        "  discovery: true",
        f"  prefix: soak_ha_{unique}",
        f"  node_id: soak_{unique}",
        "pins:",
    ]
    for pin in range(outputs):
        lines += [f"  - pin: {pin}", "    mode: output", '    initial: "off"']
    for pin in range(outputs, outputs + inputs):
        lines += [f"  - pin: {pin}", "    mode: input"]
    path.write_text("\n".join(lines) + "\n")
    return base


def problem_pins(problems: list[str]) -> list[int]:
    """The pins named by "pin N: ..." problem lines (board level or direction differences)."""
    pins = {
        int(m.group(1)) for p in problems if (m := re.match(r"pin (\d+): (board|direction)", p))
    }
    return sorted(pins)


# -- bookkeeping -----------------------------------------------------------------------------


@dataclass
class Fault:
    index: int
    kind: str  # "broker" or "malos"
    down_s: float
    started: float = 0.0
    restarted: float = 0.0
    recovery_s: float | None = None
    recovery_upper_bound: bool = False
    offline_after_s: float | None = None
    checkpoint_s: float | None = None
    checkpoint_board_s: float | None = None
    acked_at_start: int = 0
    acked_before_checkpoint: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)
    checkpoint_ambiguous: bool = False
    error: str | None = None


@dataclass
class Expectation:
    """What the board must show: last acknowledged command per output, inputs as driven."""

    outputs: list[int]
    inputs: list[int]
    level: dict[int, int] = field(default_factory=dict)
    acked_at: dict[int, float] = field(default_factory=dict)
    acked_on: dict[int, int] = field(default_factory=dict)
    external: int = 0

    def mask(self) -> int:
        value = self.external
        for pin in self.outputs:
            value = (value & ~(1 << pin)) | (self.level.get(pin, 0) << pin)
        return value

    def direction(self) -> int:
        return sum(1 << pin for pin in self.outputs)


class Soak:
    def __init__(self, args: argparse.Namespace, outputs: int, inputs: int) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.expect = Expectation(list(range(outputs)), list(range(outputs, outputs + inputs)))
        self.workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-soak-"))
        self.unique = uuid.uuid4().hex[:8]
        self.board = Board()
        self.broker: Mosquitto | None = None
        self.driver: SimulatedDriver | None = None
        self.driver_lock = threading.Lock()
        self.malos_port = 0
        self.monitor: Monitor | None = None
        self.commander: Commander | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.bridge_log = self.workdir / "bridge.log"
        self.watch: ProcWatch | None = None
        self.stopping = threading.Event()
        self.faults: list[Fault] = []
        self.fault_thread: threading.Thread | None = None
        self.broker_kills: list[tuple[float, int]] = []
        self.base = ""
        self.acknowledged = 0
        self.input_flips = 0
        self.started = 0.0
        self.load_started = 0.0
        self.load_ended = 0.0
        self.startup_s: float | None = None
        self.final: dict[str, Any] = {}
        self.bridge_exit: int | None = None
        self.bridge_died_at: float | None = None
        self.cpu: tuple[float, float] | None = None
        self.cpu_wall = 0.0
        self.bridge_started = 0.0
        self.final_rss_kb = 0
        self.fatal: str | None = None
        self.board_ok_at: float | None = None
        self.code: dict[str, str] = {}

    # -- set-up and tear-down --------------------------------------------------------------

    def start(self) -> None:
        self.started = now()
        self.broker = Mosquitto(free_port_block(1), self.workdir)
        self.broker.start()
        self.malos_port = free_port_block(4)
        config_path = self.workdir / "bridge.yaml"
        self.base = bridge_config(
            config_path,
            mqtt_port=self.broker.port,
            malos_port=self.malos_port,
            unique=self.unique,
            outputs=len(self.expect.outputs),
            inputs=len(self.expect.inputs),
        )
        self.monitor = Monitor(self.broker, f"{self.base}/status", self.bridge_alive)
        self.commander = Commander(self.broker, self.monitor)
        with self.driver_lock:
            self.driver = SimulatedDriver(HOST, self.malos_port, self.board).start()
        self.code = code_facts()  # what the bridge process is about to import
        with self.bridge_log.open("ab") as log:
            self.bridge = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mqtt_gpio_bridge",
                    "run",
                    "--config",
                    str(config_path),
                    "--log-level",
                    "WARNING",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.bridge_started = now()
        self.watch = ProcWatch(self.bridge.pid)
        self.watch.start()
        if self.monitor.first("online", since=0, instance=None, timeout=FINAL_TIMEOUT) is None:
            raise SoakError(f"{self.base}/status never read online after the bridge started")
        problems = self.wait_consistent(FINAL_TIMEOUT)
        if problems:
            raise SoakError("after start: " + "; ".join(problems))
        self.startup_s = now() - self.started

    def cleanup(self) -> None:
        self.stopping.set()
        if self.fault_thread is not None:
            self.fault_thread.join(15)
        if self.bridge is not None:
            if self.bridge.poll() is None and self.watch is not None:
                self.watch.read()
                self.final_rss_kb = self.watch.last_rss_kb
                with contextlib.suppress(OSError):
                    self.cpu = cpu_seconds(self.bridge.pid)
                    self.cpu_wall = now() - self.bridge_started
            code = end_process(self.bridge)
            if self.bridge_exit is None:
                self.bridge_exit = code
        if self.watch is not None:
            self.watch.stop()
        with self.driver_lock:
            if self.driver is not None:
                self.driver.stop()
                self.driver = None
        if self.commander is not None:
            self.commander.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.broker is not None:
            self.broker.stop()

    # -- checks ----------------------------------------------------------------------------

    def state_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/state"

    def problems_now(self, *, need_retained: bool) -> list[str]:
        """Differences between the expectation and the board (and the retained states)."""
        problems = []
        levels = self.board.levels()
        wanted = self.expect.mask()
        with self.board.lock:
            direction = self.board.direction
        for pin in range(PIN_COUNT):
            if (levels ^ wanted) >> pin & 1:
                problems.append(
                    f"pin {pin}: board {levels >> pin & 1}, expected {wanted >> pin & 1}"
                )
            if (direction ^ self.expect.direction()) >> pin & 1:
                problems.append(f"pin {pin}: direction {'out' if direction >> pin & 1 else 'in'}")
        if problems or not need_retained:
            return problems
        assert self.broker is not None
        pins = self.expect.outputs + self.expect.inputs
        topics = [f"{self.base}/status"] + [self.state_topic(pin) for pin in pins]
        retained = read_retained(self.broker.port, topics)
        if retained is None:
            return ["broker unreachable for the retained check"]
        if retained.get(topics[0]) != "online":
            problems.append(f"retained status {retained.get(topics[0])!r}")
        for pin in pins:
            want = "ON" if wanted >> pin & 1 else "OFF"
            got = retained.get(self.state_topic(pin))
            if got != want:
                problems.append(f"pin {pin}: retained state {got!r}, expected {want!r}")
        return problems

    def wait_consistent(self, timeout: float) -> list[str]:
        """Wait until board and retained states match; return what still differs, if anything.

        Sets `board_ok_at` to when the board (levels and directions) last became right.
        """
        deadline = now() + timeout
        self.board_ok_at = None
        while True:
            problems = self.problems_now(need_retained=False)
            if problems:
                self.board_ok_at = None
            else:
                self.board_ok_at = self.board_ok_at or now()
                problems = self.problems_now(need_retained=True)
                if not problems:
                    return []
            if now() > deadline:
                return problems
            time.sleep(0.05)

    def lost_with_broker(self, pin: int) -> str | None:
        """Why a pin's last command may have been lost by a killed broker, if it may have."""
        acked_on = self.expect.acked_on.get(pin)
        acked_at = self.expect.acked_at.get(pin)
        if acked_on is None or acked_at is None:
            return None
        for killed_at, instance in self.broker_kills:
            if instance == acked_on and killed_at >= acked_at:
                return (
                    f"pin {pin}: its last command was acknowledged by broker #{instance} "
                    f"{killed_at - acked_at:.3f} s before that broker was killed"
                )
        return None

    # -- load and faults -------------------------------------------------------------------

    def command(self, pin: int, level: int) -> None:
        assert self.commander is not None
        payload = self.rng.choice(ON_PAYLOADS if level else OFF_PAYLOADS)
        acked_at, instance = self.commander.send(f"{self.base}/gpio/{pin}/set", payload)
        self.expect.level[pin] = level
        self.expect.acked_at[pin] = acked_at
        self.expect.acked_on[pin] = instance
        self.acknowledged += 1

    def burst(self) -> None:
        for _ in range(self.rng.randint(*BURST)):
            self.command(self.rng.choice(self.expect.outputs), self.rng.randint(0, 1))
        if self.expect.inputs and self.rng.random() < INPUT_FLIP_CHANCE:
            pin = self.rng.choice(self.expect.inputs)
            level = (self.expect.external >> pin & 1) ^ 1
            self.expect.external = (self.expect.external & ~(1 << pin)) | (level << pin)
            self.board.set_external(pin, level)
            self.input_flips += 1

    def run_fault(self, fault: Fault) -> None:
        try:
            self._run_fault(fault)
        except Exception as exc:
            fault.error = f"{type(exc).__name__}: {exc}"

    def _run_fault(self, fault: Fault) -> None:
        assert self.broker is not None and self.monitor is not None
        fault.started = now()
        if fault.kind == "broker":
            self.broker.stop()
            self.broker_kills.append((fault.started, self.broker.instance))
            if self.stopping.wait(fault.down_s):
                return
            self.broker.start()
            fault.restarted = now()
            online = self.monitor.first(
                "online", since=0, instance=self.broker.instance, timeout=RECOVERY_TIMEOUT
            )
        else:
            with self.driver_lock:
                if self.driver is not None:
                    self.driver.stop()
                    self.driver = None
            if self.stopping.wait(fault.down_s):
                return
            with self.driver_lock:
                self.driver = SimulatedDriver(HOST, self.malos_port, self.board).start()
            fault.restarted = now()
            online = self.monitor.first(
                "online", since=fault.restarted, instance=None, timeout=RECOVERY_TIMEOUT
            )
            offline = self.monitor.first("offline", since=fault.started, instance=None, timeout=0)
            if offline is not None:
                fault.offline_after_s = offline.at - fault.started
            elif online is None:
                fault.error = (
                    "status never read offline: the bridge did not notice the MALOS restart"
                )
        if online is not None:
            fault.recovery_s = max(0.0, online.at - fault.restarted)
            fault.recovery_upper_bound = online.retained

    def checkpoint(self, fault: Fault) -> None:
        began = now()
        fault.acked_before_checkpoint = self.acknowledged - fault.acked_at_start
        problems = self.wait_consistent(CHECKPOINT_TIMEOUT)
        if self.board_ok_at is not None:
            fault.checkpoint_board_s = self.board_ok_at - began
        if not problems:
            fault.checkpoint_s = now() - began
            return
        fault.checkpoint_problems = problems
        reasons = [self.lost_with_broker(pin) for pin in problem_pins(problems)]
        # Explainable only if every wrong pin's last command went through a killed broker.
        fault.checkpoint_ambiguous = bool(reasons) and all(reasons)
        fault.checkpoint_problems += [reason for reason in reasons if reason is not None]

    def bridge_alive(self) -> bool:
        assert self.bridge is not None
        if self.bridge.poll() is None:
            return True
        if self.bridge_died_at is None:
            self.bridge_died_at = now() - self.started
            self.bridge_exit = self.bridge.returncode
        return False

    def fault_running(self) -> bool:
        if self.fault_thread is not None and not self.fault_thread.is_alive():
            self.fault_thread = None
        return self.fault_thread is not None

    def load(self) -> None:
        self.load_started = now()
        end = self.load_started + self.args.minutes * 60
        next_fault = self.load_started + self.rng.uniform(*FAULT_GAP)
        current: Fault | None = None
        while now() < end:
            if not self.bridge_alive():
                return
            if current is None and now() >= next_fault and end - now() > 5:
                kind = self.rng.choice(["broker", "malos"])
                current = Fault(len(self.faults) + 1, kind, self.rng.uniform(*DOWN_TIME))
                current.acked_at_start = self.acknowledged
                self.faults.append(current)
                self.fault_thread = threading.Thread(
                    target=self.run_fault, args=(current,), name="fault", daemon=True
                )
                self.fault_thread.start()
            self.burst()
            if current is not None and not self.fault_running():
                if current.error is None and current.recovery_s is not None:
                    self.checkpoint(current)
                current = None
                next_fault = now() + self.rng.uniform(*FAULT_GAP)
            time.sleep(self.rng.uniform(*PAUSE))
        if self.fault_thread is not None:
            self.fault_thread.join()
            self.fault_thread = None
            if current is not None and current.error is None and current.recovery_s is not None:
                self.checkpoint(current)
        self.load_ended = now()

    def finish(self) -> None:
        assert self.monitor is not None
        began = now()
        self.final["bridge_alive"] = self.bridge_alive()
        status_ok = False
        while now() - began < FINAL_TIMEOUT and self.broker is not None:
            retained = read_retained(self.broker.port, [f"{self.base}/status"])
            if retained and retained.get(f"{self.base}/status") == "online":
                status_ok = True
                break
            time.sleep(0.1)
        self.final["status_online"] = status_ok
        problems = self.wait_consistent(max(1.0, FINAL_TIMEOUT - (now() - began)))
        self.final["converged_s"] = None if problems else now() - began
        self.final["problems"] = problems
        self.final["lost_with_broker"] = [
            reason for pin in problem_pins(problems) if (reason := self.lost_with_broker(pin))
        ]


# -- report ----------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f} / {middle:.{digits}f} / {high:.{digits}f} s (n={len(values)})"


def log_summary(path: Path, limit: int = 12) -> tuple[int, list[tuple[str, int]], list[str]]:
    """(line count, most frequent messages with numbers masked, ERROR/traceback lines)."""
    if not path.exists():
        return 0, [], []
    lines = path.read_text(errors="replace").splitlines()
    masked: Counter[str] = Counter()
    serious = []
    for line in lines:
        message = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", line)
        masked[re.sub(r"\d+(\.\d+)?", "N", message)] += 1
        if re.search(r"ERROR|CRITICAL|Traceback|Error:|Exception", line):
            serious.append(line)
    return len(lines), masked.most_common(limit), serious[:40]


def machine_facts() -> dict[str, str]:
    facts = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        version = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()
        facts["mosquitto"] = version[0] if version else "?"
    return facts


def code_facts() -> dict[str, str]:
    """Which bridge code runs: git HEAD, files changed since, a hash of the package sources."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "mqtt_gpio_bridge").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    facts = {"bridge sources sha256": digest.hexdigest()[:16]}

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=5, check=False
        ).stdout

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:]
            for line in git("status", "--porcelain", "--", "mqtt_gpio_bridge").splitlines()
            if line.strip()
        ]
        facts["bridge code at launch"] = f"git {head}" + (
            f" + uncommitted changes in {', '.join(changed)}" if changed else " (clean)"
        )
    return facts


def fault_table(soak: Soak) -> list[str]:
    out = [
        "",
        "| # | fault | down | restart at | offline after | recovery | commands | board ok "
        "| checkpoint |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in soak.faults:
        at = f"{f.restarted - soak.load_started:.1f} s" if f.restarted else "-"
        recovery = "never" if f.recovery_s is None else f"{f.recovery_s:.2f} s"
        if f.recovery_upper_bound:
            recovery += " (retained: upper bound)"
        checkpoint = (
            f"{f.checkpoint_s:.2f} s"
            if f.checkpoint_s is not None
            else ("FAILED" if f.checkpoint_problems else "-")
        )
        offline = "-" if f.offline_after_s is None else f"{f.offline_after_s:.3f} s"
        board = "-" if f.checkpoint_board_s is None else f"{f.checkpoint_board_s:.2f} s"
        out.append(
            f"| {f.index} | {f.kind} | {f.down_s:.2f} s | {at} | {offline} | {recovery} "
            f"| {f.acked_before_checkpoint} | {board} | {checkpoint} |"
        )
        if f.error:
            out.append(f"|   | error: {f.error} | | | | | | | |")
    out += [
        "",
        "commands: acknowledged from the fault's start to its checkpoint (sent during the "
        "outage and the recovery); board ok / checkpoint: seconds from the checkpoint's start "
        "(commands paused) until the board, then also the retained states, were right.",
    ]
    return out


def build_report(soak: Soak, outcome: str) -> tuple[str, dict[str, Any]]:
    watch = soak.watch
    duration = (soak.load_ended or now()) - (soak.load_started or now())
    broker_faults = [f for f in soak.faults if f.kind == "broker"]
    malos_faults = [f for f in soak.faults if f.kind == "malos"]
    recoveries = [f.recovery_s for f in soak.faults if f.recovery_s is not None]
    never = [f for f in soak.faults if f.restarted and f.recovery_s is None]
    checkpoint_bad = [f for f in soak.faults if f.checkpoint_problems]
    final_problems = soak.final.get("problems", ["not reached"])
    commander = soak.commander
    cpu = soak.cpu
    early_rss = watch.rss_at(soak.load_started + 30) if watch and soak.load_started else None
    lines_total, frequent, serious = log_summary(soak.bridge_log)
    broker_log = soak.workdir / "mosquitto.log"
    drops = broker_log.read_text(errors="replace").count("dropped") if broker_log.exists() else 0

    cpu_text = "-"
    if cpu is not None:
        share = 100 * (cpu[0] + cpu[1]) / max(1e-9, soak.cpu_wall)
        cpu_text = (
            f"{cpu[0] + cpu[1]:.1f} s (user {cpu[0]:.1f} + sys {cpu[1]:.1f}), "
            f"{share:.1f}% of one CPU over its {soak.cpu_wall:.0f} s"
        )

    def kb(value: int | None) -> str:
        return "-" if not value else f"{value / 1024:.1f} MB"

    rows: list[tuple[str, str]] = [
        ("result", outcome),
        ("load duration", f"{duration:.1f} s (asked {soak.args.minutes} min)"),
        ("seed", str(soak.args.seed)),
        (
            "pins",
            f"{len(soak.expect.outputs)} outputs (initial off), {len(soak.expect.inputs)} inputs",
        ),
        ("start-up to consistent", "-" if soak.startup_s is None else f"{soak.startup_s:.2f} s"),
        ("commands acknowledged", str(soak.acknowledged)),
        ("publish attempts (incl. retries)", str(commander.attempts if commander else 0)),
        ("attempts not acknowledged (retried)", str(commander.unacknowledged if commander else 0)),
        ("command rate", f"{soak.acknowledged / duration:.0f}/s" if duration > 0 else "-"),
        ("input flips", str(soak.input_flips)),
        ("broker restarts", str(sum(1 for f in broker_faults if f.restarted))),
        ("simulator (MALOS) restarts", str(sum(1 for f in malos_faults if f.restarted))),
        ("recovery, all faults min/median/max", spread(recoveries)),
        ("recovery, broker", spread([f.recovery_s for f in broker_faults if f.recovery_s])),
        ("recovery, MALOS", spread([f.recovery_s for f in malos_faults if f.recovery_s])),
        (
            "MALOS stop to status offline",
            spread([f.offline_after_s for f in malos_faults if f.offline_after_s is not None], 3),
        ),
        ("faults never recovered (60 s)", str(len(never))),
        (
            "checkpoint: board right after",
            spread([f.checkpoint_board_s for f in soak.faults if f.checkpoint_board_s is not None]),
        ),
        (
            "checkpoint: board and retained states right after",
            spread([f.checkpoint_s for f in soak.faults if f.checkpoint_s is not None]),
        ),
        (
            "checkpoints failed (15 s)",
            f"{len(checkpoint_bad)} "
            f"({sum(1 for f in checkpoint_bad if f.checkpoint_ambiguous)} explainable by a killed "
            "broker)",
        ),
        ("final status online (retained)", str(soak.final.get("status_online", "-"))),
        ("final mismatches", str(len(final_problems))),
        (
            "final convergence",
            "-" if soak.final.get("converged_s") is None else f"{soak.final['converged_s']:.2f} s",
        ),
        ("bridge alive at the end", str(soak.bridge_died_at is None)),
        ("bridge exit status (after SIGTERM)", str(soak.bridge_exit)),
        ("bridge peak RSS (VmHWM)", kb(watch.hwm_kb if watch else None)),
        ("bridge RSS 30 s into the load", kb(early_rss)),
        ("bridge final RSS", kb(soak.final_rss_kb)),
        ("bridge CPU time user+sys", cpu_text),
        ("bridge log lines (WARNING+)", str(lines_total)),
        ("broker 'dropped' notices", str(drops)),
        ("logs", str(soak.workdir)),
    ]
    rows += [(key, value) for key, value in {**machine_facts(), **soak.code}.items()]
    out = ["| metric | value |", "|---|---|"]
    out += [f"| {key} | {value.replace('|', '/')} |" for key, value in rows]
    out += fault_table(soak)
    details = []
    for f in checkpoint_bad:
        details.append(f"- checkpoint after fault {f.index} ({f.kind}):")
        details += [f"  - {problem}" for problem in f.checkpoint_problems]
    if final_problems:
        details.append("- final check:")
        details += [f"  - {problem}" for problem in final_problems]
        details += [f"  - {reason}" for reason in soak.final.get("lost_with_broker", [])]
    if soak.fatal:
        details.append(f"- run aborted: {soak.fatal}")
    if details:
        out += ["", "Problems:", *details]
    out += ["", "Most frequent bridge log lines (numbers as N):"]
    out += [f"- {count} x `{message}`" for message, count in frequent] or ["- none"]
    if serious:
        out += ["", "Bridge log lines with ERROR/Traceback:", *[f"    {line}" for line in serious]]
    data = {
        "rows": dict(rows),
        "faults": [asdict(f) for f in soak.faults],
        "final": soak.final,
        "bridge_log_top": frequent,
        "bridge_log_serious": serious,
    }
    return "\n".join(out), data


# -- main ------------------------------------------------------------------------------------


def parse_pins(text: str) -> tuple[int, int]:
    outputs, _, inputs = text.partition(":")
    try:
        counts = int(outputs), int(inputs or 0)
    except ValueError:
        raise argparse.ArgumentTypeError("use OUTPUTS:INPUTS, e.g. 12:4") from None
    if counts[0] < 1 or counts[1] < 0 or sum(counts) > PIN_COUNT:
        raise argparse.ArgumentTypeError("at least 1 output, and at most 16 pins in all")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (10)")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: random)")
    parser.add_argument(
        "--pins",
        type=parse_pins,
        default=(12, 4),
        metavar="OUT:IN",
        help="pins 0..OUT-1 are outputs (initial off), the next IN are inputs (12:4)",
    )
    parser.add_argument("--report", type=Path, help="also write the report (.json: as JSON)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    soak = Soak(args, *args.pins)
    print(f"soak: seed {args.seed}, {args.minutes} min, logs in {soak.workdir}", flush=True)
    interrupted = False
    try:
        soak.start()
        print(f"soak: started in {soak.startup_s:.2f} s; load running", flush=True)
        soak.load()
        soak.finish()
    except KeyboardInterrupt:
        interrupted = True
        soak.fatal = "interrupted"
    except SoakError as exc:
        soak.fatal = str(exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.load_ended = soak.load_ended or now()
        soak.cleanup()
    failed = bool(
        soak.fatal
        or soak.final.get("problems", True)
        or not soak.final.get("status_online")
        or soak.bridge_died_at is not None
        or any(f.restarted and f.recovery_s is None for f in soak.faults)
        or any(f.error for f in soak.faults)
        or any(f.checkpoint_problems and not f.checkpoint_ambiguous for f in soak.faults)
    )
    outcome = "INTERRUPTED" if interrupted else ("FAIL" if failed else "PASS")
    text, data = build_report(soak, outcome)
    print(text)
    if args.report is not None:
        if args.report.suffix == ".json":
            args.report.write_text(json.dumps(data, indent=2, default=str) + "\n")
        else:
            args.report.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
