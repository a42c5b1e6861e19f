"""buttons.py's rig: one Mosquitto, the simulated driver (in this process, every frame logged
with its time) and the bridge as a subprocess, configured with buttons and links; a
subscriber that logs every press event; a busy loop for the other core."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from common import BenchmarkError
from common.bridge import start_bridge
from common.mosquitto import NOT_PERSISTED, Mosquitto
from common.ports import HOST, free_port_block, wait_for
from common.processes import TICKS, cpu_ticks, end_process
from perf_clients import Subscriber

from mqtt_gpio_bridge.malos.gpio.codec import decode_levels
from mqtt_gpio_bridge.sim.codec import decode_pin_config
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver, whole_milliseconds

ONLINE_TIMEOUT = 30.0
"""Seconds for the bridge to read `online` after its process started."""
SETTLED_UPDATES = 3
"""Updates at the configured interval to wait for before anything is played."""


class WireLog:
    """The simulated driver's `on_wire` callback: every frame with its monotonic time.

    Called from the driver thread, so it only appends; `updates()` and `configs()` decode later.
    """

    def __init__(self) -> None:
        self.frames: list[tuple[float, str, bytes]] = []

    def __call__(self, kind: str, frame: bytes) -> None:
        self.frames.append((time.monotonic(), kind, frame))

    def updates(self) -> list[tuple[float, int]]:
        """(time, levels) of every update sent so far."""
        return [(t, decode_levels(f)) for t, kind, f in list(self.frames) if kind == "update"]

    def configs(self, pin: int) -> list[tuple[float, int]]:
        """(time, value) of every config received for `pin` so far."""
        found = []
        for t, kind, frame in list(self.frames):
            if kind == "config" and (config := decode_pin_config(frame)) and config.pin == pin:
                found.append((t, config.value))
        return found


class EventLog(Subscriber):
    """A paho subscriber (perf.py's) that also keeps every press event: (arrival, pin, JSON)."""

    def __init__(self, port: int) -> None:
        self.events: list[tuple[float, int, dict[str, Any]]] = []
        super().__init__(port, "buttons")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        t = time.monotonic()
        if message.topic.endswith("/event"):
            event = json.loads(message.payload)
            self.events.append((t, int(event["pin"]), event))
        else:
            super()._on_message(client, userdata, message)

    def on_pin(self, pin: int) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, event) of every event on `pin` so far."""
        return [(t, event) for t, p, event in list(self.events) if p == pin]


def config_text(
    *, mqtt_port: int, malos_port: int, base: str, interval: float, pins: Sequence[dict[str, Any]]
) -> str:
    """The bridge's config as JSON (which YAML reads): `pins` as given, with `links` taken
    from each pin's `links` key (a list of {on, output, action})."""
    links = [{"input": pin["pin"], **link} for pin in pins for link in pin.get("links", ())]
    config = {
        "mqtt": {"host": HOST, "port": mqtt_port, "base_topic": base, "qos": 1},
        "malos": {"host": HOST, "base_port": malos_port, "update_interval": interval},
        "homeassistant": {"discovery": False},
        "pins": [{k: v for k, v in pin.items() if k != "links"} for pin in pins],
    }
    if links:
        config["links"] = links
    return json.dumps(config, indent=1) + "\n"


class Rig:
    """Mosquitto, the simulated driver and the bridge, for one phase.

    Use as a context manager: entering starts all three and returns once the bridge is online
    and the driver sends updates at `interval`; leaving stops them.
    """

    def __init__(
        self, workdir: Path, name: str, interval: float, pins: Sequence[dict[str, Any]]
    ) -> None:
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.pins = pins
        self.base = f"buttons/{name}"
        self.wire = WireLog()
        self.board = Board()
        self.broker = Mosquitto(free_port_block(1), self.workdir, NOT_PERSISTED)
        self.driver: SimulatedDriver | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.sub: EventLog | None = None
        self.exit_status: int | None = None

    def __enter__(self) -> Rig:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> None:
        self.broker.start()
        malos_port = free_port_block(4, taken={self.broker.port})
        self.driver = SimulatedDriver(HOST, malos_port, self.board, on_wire=self.wire).start()
        self.sub = EventLog(self.broker.port)
        self.sub.subscribe([f"{self.base}/status", f"{self.base}/gpio/+/event"], qos=1)
        config = self.workdir / "bridge.yaml"
        config.write_text(
            config_text(
                mqtt_port=self.broker.port,
                malos_port=malos_port,
                base=self.base,
                interval=self.interval,
                pins=self.pins,
            )
        )
        with (self.workdir / "bridge.log").open("ab") as log:
            self.bridge = start_bridge(config, log)
        wait_for(self._online, ONLINE_TIMEOUT, "the bridge to be online")
        driver = self.driver
        wanted = whole_milliseconds(self.interval)
        wait_for(lambda: math.isclose(driver.delay_between_updates, wanted), 10, "the update delay")
        sent = driver.updates_sent
        wait_for(lambda: driver.updates_sent >= sent + SETTLED_UPDATES, 10, "driver updates")

    def _online(self) -> bool:
        assert self.bridge is not None and self.sub is not None
        if self.bridge.poll() is not None:
            raise BenchmarkError(f"the bridge exited with {self.bridge.returncode}: {self.log}")
        return self.sub.last.get(f"{self.base}/status") == b"online"

    @property
    def log(self) -> Path:
        return self.workdir / "bridge.log"

    @property
    def pid(self) -> int:
        assert self.bridge is not None
        return self.bridge.pid

    def alive(self) -> bool:
        return self.bridge is not None and self.bridge.poll() is None

    def events(self, pin: int) -> list[tuple[float, dict[str, Any]]]:
        assert self.sub is not None
        return self.sub.on_pin(pin)

    def close(self) -> None:
        self.exit_status = end_process(self.bridge)
        if self.sub is not None:
            self.sub.close()
        if self.driver is not None:
            self.driver.stop()
        self.broker.stop()


class BusyLoop:
    """A Python busy loop pinned to the machine's last CPU: the other core kept busy."""

    def __init__(self) -> None:
        self.cpu = (os.cpu_count() or 1) - 1
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def __enter__(self) -> BusyLoop:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.sched_setaffinity(self.process.pid, {self.cpu})
        self.started = time.monotonic()
        return self

    def cpu_pct(self) -> float:
        """Its CPU share since it started, % of one core."""
        assert self.process is not None
        return 100 * cpu_ticks(self.process.pid) / TICKS / (time.monotonic() - self.started)

    def __exit__(self, *exc_info: object) -> None:
        end_process(self.process)
