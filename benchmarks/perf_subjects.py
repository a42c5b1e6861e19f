"""What perf.py runs: the bridge or mqtt-io (a subject), and perf_null.py."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import mqttio
from common.facts import ROOT
from common.ports import HOST, free_port_block
from common.processes import (
    end_process,
)
from perf_clients import ConfigTap, UpdateLog, Wire
from perf_settings import CMD_PIN, ONLINE_TIMEOUT, PerfError, now_ns

from mqtt_gpio_bridge.malos.gpio.codec import PinMode, encode_pin_config
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

if TYPE_CHECKING:
    from perf_base import PerfBase


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
        perf: PerfBase,
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
        perf: PerfBase,
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
