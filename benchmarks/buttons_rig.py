"""buttons.py's rig: one Mosquitto, the simulated driver (in this process, every frame logged
with its time) and the bridge as a subprocess, configured with buttons and links; a
subscriber that logs every press event; a busy loop for the other core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from common.board_rig import BoardRig
from common.processes import TICKS, cpu_ticks, end_process
from perf_clients import Subscriber

from mqtt_gpio_bridge.malos.gpio.codec import decode_levels
from mqtt_gpio_bridge.sim.codec import decode_pin_config


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


class Rig(BoardRig):
    """Mosquitto, the simulated driver and the bridge, for one phase.

    Use as a context manager: entering starts all three and returns once the bridge is online
    and the driver sends updates at `interval`; leaving stops them.
    """

    def __init__(
        self, workdir: Path, name: str, interval: float, pins: Sequence[dict[str, Any]]
    ) -> None:
        self.wire = WireLog()
        super().__init__(workdir, f"buttons/{name}", interval, pins, self.wire)
        self.sub: EventLog | None = None

    def _start_more(self, taken: set[int]) -> dict[str, Any]:
        self.sub = EventLog(self.broker.port)
        self.sub.subscribe([f"{self.base}/status", f"{self.base}/gpio/+/event"], qos=1)
        return {}

    def _config(self) -> dict[str, Any]:
        """`pins` as given, with `links` taken from each pin's `links` key (a list of {on,
        output, action})."""
        pins = self.pins
        config: dict[str, Any] = {
            "pins": [{k: v for k, v in pin.items() if k != "links"} for pin in pins]
        }
        links = [{"input": pin["pin"], **link} for pin in pins for link in pin.get("links", ())]
        if links:
            config["links"] = links
        return config

    def status_watch(self) -> dict[str, bytes]:
        assert self.sub is not None
        return self.sub.last

    def events(self, pin: int) -> list[tuple[float, dict[str, Any]]]:
        assert self.sub is not None
        return self.sub.on_pin(pin)

    def _close_more(self) -> None:
        if self.sub is not None:
            self.sub.close()


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
