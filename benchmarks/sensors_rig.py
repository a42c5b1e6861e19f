"""sensors.py's rig: one Mosquitto, the simulated GPIO, Everloop and four sensor drivers (in
this process; every humidity update logged with its time) and the bridge as a subprocess, with
or without `sensors`; a probe subscriber that logs every sensor state message; perf.py's paho
publisher for the broker-hop baseline; what /proc says about the bridge's threads."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from common.board_rig import BoardRig
from common.ports import HOST, free_port_block, wait_for
from perf_clients import Publisher, Subscriber
from perf_settings import now_ns

from mqtt_gpio_bridge.malos.sensors.catalog import DEFAULT_ENABLED, SENSORS
from mqtt_gpio_bridge.sim.everloop import SimulatedEverloopDriver
from mqtt_gpio_bridge.sim.proto import Humidity
from mqtt_gpio_bridge.sim.sensors import (
    SimulatedHumidityDriver,
    SimulatedImuDriver,
    SimulatedPressureDriver,
    SimulatedSensorDriver,
    SimulatedUvDriver,
)

PINS: list[dict[str, Any]] = [
    *({"pin": p, "mode": "output", "initial": "off"} for p in range(4)),
    *({"pin": p, "mode": "input"} for p in range(4, 8)),
]
INTERVAL = 0.1
"""The GPIO driver's update interval: the bridge's default."""
ALL_SENSORS: list[str] = list(SENSORS)
FIRST_VALUES_TIMEOUT = 15.0
"""Seconds, once the bridge is online, for every enabled value to be published once (the
board is known from the Everloop driver's first update, which comes within its 1 s delay)."""


class StateLog(Subscriber):
    """perf.py's subscriber that also logs every message on `<base>/sensor/+/state`:
    (arrival ns, topic, payload)."""

    def __init__(self, port: int) -> None:
        self.states: list[tuple[int, str, bytes]] = []
        super().__init__(port, "sensors")

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic.endswith("/state") and "/sensor/" in message.topic:
            self.states.append((now_ns(), message.topic, bytes(message.payload)))
        super()._on_message(client, userdata, message)

    def count(self, since_ns: int, until_ns: int) -> Counter[str]:
        """Messages per sensor name that arrived from `since_ns` to `until_ns`."""
        return Counter(
            topic.split("/")[-2] for t, topic, _ in list(self.states) if since_ns <= t <= until_ns
        )


class UpdateLog:
    """The humidity driver's `on_wire`: (ns, humidity read) of every update, just before it
    is sent (appended from the driver thread, decoded at once: a handful of fields)."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, float]] = []

    def __call__(self, kind: str, frame: bytes) -> None:
        if kind != "update":
            return
        t = now_ns()
        message = Humidity()
        message.ParseFromString(frame)
        self.updates.append((t, float(message.humidity)))

    def first_with(self, humidity: float, since_ns: int) -> int | None:
        """When the first update from `since_ns` on carrying `humidity` was sent."""
        for t, value in list(self.updates):
            if t >= since_ns and abs(value - humidity) < 1e-3:
                return t
        return None


class Rig(BoardRig):
    """Mosquitto, the simulated GPIO driver and, with `sensors`, the Everloop driver (so the
    bridge knows a Creator) and the four sensor drivers; the bridge.

    Use as a context manager: entering starts them all and returns once the bridge is online,
    the GPIO driver sends updates at INTERVAL and (with `sensors`) every enabled value was
    published once; leaving stops them.
    """

    def __init__(self, workdir: Path, name: str, sensors: dict[str, Any] | None) -> None:
        """`sensors`: the config's `sensors` section; None for a bridge without it."""
        super().__init__(workdir, f"sensors/{name}", INTERVAL, PINS, _ignore)
        self.sensors = sensors
        self.humidity_log = UpdateLog()
        self.ring: SimulatedEverloopDriver | None = None
        self.drivers: dict[str, SimulatedSensorDriver] = {}
        self.sub: StateLog | None = None
        self.pub: Publisher | None = None

    @property
    def enabled(self) -> list[str]:
        """The values the bridge publishes (none without `sensors`)."""
        if self.sensors is None:
            return []
        return list(self.sensors.get("enabled", DEFAULT_ENABLED))

    def state_topic(self, name: str) -> str:
        return f"{self.base}/sensor/{name}/state"

    @property
    def humidity(self) -> SimulatedHumidityDriver:
        driver = self.drivers["humidity"]
        assert isinstance(driver, SimulatedHumidityDriver)
        return driver

    def _start_more(self, taken: set[int]) -> dict[str, Any]:
        self.sub = StateLog(self.broker.port)
        self.sub.subscribe([f"{self.base}/status", f"{self.base}/sensor/+/state"], qos=1)
        self.pub = Publisher(self.broker.port)
        if self.sensors is None:
            return {}
        ports: dict[str, Any] = {}
        taken = set(taken)
        port = free_port_block(4, taken=taken)
        taken |= set(range(port, port + 4))
        self.ring = SimulatedEverloopDriver(HOST, port).start()
        ports["everloop_port"] = port
        for key, cls in (
            ("humidity", SimulatedHumidityDriver),
            ("pressure", SimulatedPressureDriver),
            ("uv", SimulatedUvDriver),
            ("imu", SimulatedImuDriver),
        ):
            port = free_port_block(4, taken=taken)
            taken |= set(range(port, port + 4))
            wire = self.humidity_log if key == "humidity" else None
            self.drivers[key] = cls(HOST, port, on_wire=wire).start()
            ports[f"{key}_port"] = port
        return ports

    def _config(self) -> dict[str, Any]:
        sensors = {} if self.sensors is None else {"sensors": self.sensors}
        return {"pins": list(self.pins), **sensors}

    def _start(self) -> None:
        super()._start()
        sub = self.sub
        assert sub is not None
        topics = [self.state_topic(name) for name in self.enabled]
        wait_for(
            lambda: all(topic in sub.last for topic in topics),
            FIRST_VALUES_TIMEOUT,
            "every enabled sensor value to be published",
        )

    def status_watch(self) -> dict[str, bytes]:
        assert self.sub is not None
        return self.sub.last

    def _close_more(self) -> None:
        for client in (self.pub, self.sub):
            if client is not None:
                client.close()
        for driver in self.drivers.values():
            driver.stop()
        if self.ring is not None:
            self.ring.stop()


def _ignore(_kind: str, _frame: bytes) -> None:
    """The GPIO driver's `on_wire`: nothing of it is measured here."""


def thread_names(pid: int) -> Counter[str]:
    """How many threads of a live process bear each name (/proc/<pid>/task/*/comm)."""
    names: Counter[str] = Counter()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as file:
                names[file.read().strip()] += 1
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return names
