"""The Creator's sensors end to end: the real Mosquitto, the bridge, the simulated GPIO,
Everloop (which tells the board) and sensor drivers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest

from mqtt_gpio_bridge.sim.everloop import SimulatedEverloopDriver
from mqtt_gpio_bridge.sim.sensors import (
    SimulatedHumidityDriver,
    SimulatedSensorDriver,
    sensor_drivers,
)

from .helpers import Rig, free_port_block, wait_until

PINS: list[dict[str, Any]] = [{"pin": 0, "mode": "output"}]
FAST = {"update_interval": 0.1}
"""The drivers' and the bridge's pace in these tests: ten readings a second."""


@dataclass
class SensorRig:
    rig: Rig
    board: str
    stack: ExitStack
    ring: SimulatedEverloopDriver = field(init=False)
    sims: dict[str, SimulatedSensorDriver] = field(default_factory=dict)
    base: str = ""

    def __post_init__(self) -> None:
        self.ring = self.stack.enter_context(
            SimulatedEverloopDriver("127.0.0.1", free_port_block(4), board=self.board)
        )

    def add(self, *sims: SimulatedSensorDriver) -> None:
        for sim in sims:
            self.sims[sim.name.lower()] = self.stack.enter_context(sim)

    def start(self, **sensors: Any) -> str:
        ports = {f"{name}_port": sim.base_port for name, sim in self.sims.items()}
        malos = {"everloop_port": self.ring.base_port, **ports}
        self.base = self.rig.start(PINS, malos=malos, sensors={**FAST, **sensors})
        return self.base

    def values(self, name: str) -> list[str]:
        return [m.text for m in self.rig.probe.on(f"{self.base}/sensor/{name}/state")]

    def wait_value(self, name: str, payload: str) -> None:
        self.rig.probe.wait_for(f"{self.base}/sensor/{name}/state", payload)

    def wait_updates(self, name: str, more: int = 3) -> None:
        """Until the simulated driver `name` sent `more` updates more than now."""
        sim = self.sims[name]
        target = sim.updates_sent + more
        wait_until(lambda: sim.updates_sent >= target, what=f"{more} more {name} updates")

    def info(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.rig.probe.wait_for(f"{self.base}/bridge/info").payload
        )
        return document


def all_sims(board: str) -> list[SimulatedSensorDriver]:
    ports = {name: free_port_block(4) for name in ("humidity", "pressure", "uv", "imu")}
    return sensor_drivers("127.0.0.1", board, ports)


@pytest.fixture
def creator(rig: Rig) -> Iterator[SensorRig]:
    with ExitStack() as stack:
        yield SensorRig(rig, "creator", stack)


@pytest.fixture
def voice(rig: Rig) -> Iterator[SensorRig]:
    with ExitStack() as stack:
        yield SensorRig(rig, "voice", stack)


def test_every_default_value_is_published_retained_on_a_creator(creator: SensorRig) -> None:
    creator.add(*all_sims("creator"))
    base = creator.start()
    expected = {
        "humidity": "40.0",
        "temperature": "30.0",
        "uv_index": "0.0",
        "yaw": "0",
        "pitch": "0",
        "roll": "0",
    }
    for name, payload in expected.items():
        creator.wait_value(name, payload)
    wait_until(lambda: creator.values("pressure"), what="a pressure value")
    assert creator.rig.probe.last(f"{base}/sensor/accel_x/state") is None  # not enabled
    risk = creator.rig.probe.wait_for(f"{base}/sensor/uv_index/attributes")
    assert json.loads(risk.payload) == {"risk": "Low"}
    for name in ("humidity", "pressure", "uv", "imu"):
        creator.rig.probe.wait_for(f"{base}/malos/{name}/status", "online")
    assert creator.info()["sensors"] == {
        "enabled": ["humidity", "temperature", "pressure", "uv_index", "yaw", "pitch", "roll"],
        "present": True,
    }


def test_a_value_is_published_when_it_moved_by_its_threshold(creator: SensorRig) -> None:
    humidity = SimulatedHumidityDriver("127.0.0.1", free_port_block(4))
    creator.add(humidity)
    creator.start(enabled=["humidity"], thresholds={"humidity": 1.0})
    creator.wait_value("humidity", "40.0")
    humidity.set(humidity=40.9)  # moved less than 1.0: kept back
    creator.wait_updates("humidity")
    humidity.set(humidity=41.0)
    creator.wait_value("humidity", "41.0")
    humidity.set(humidity=40.2)
    creator.wait_updates("humidity")
    humidity.set(humidity=39.5)
    creator.wait_value("humidity", "39.5")
    assert creator.values("humidity") == ["40.0", "41.0", "39.5"]


def test_an_unmoved_value_is_published_again_every_publish_every(creator: SensorRig) -> None:
    humidity = SimulatedHumidityDriver("127.0.0.1", free_port_block(4))
    creator.add(humidity)
    creator.start(enabled=["temperature"], publish_every=1)
    wait_until(lambda: len(creator.values("temperature")) >= 3, timeout=10, what="3 values")
    assert set(creator.values("temperature")) == {"30.0"}
    assert creator.values("humidity") == []  # not enabled, though its driver reads it


def test_only_the_drivers_of_enabled_values_are_contacted(creator: SensorRig) -> None:
    sims = all_sims("creator")
    creator.add(*sims)
    base = creator.start(enabled=["uv_index"])
    creator.wait_value("uv_index", "0.0")
    creator.wait_updates("uv", 5)
    for name in ("humidity", "pressure", "imu"):
        sim = creator.sims[name]
        assert (sim.updates_sent, sim.configs) == (0, []), name
    assert creator.info()["drivers"].keys() >= {"uv", "everloop"}
    assert "imu" not in creator.info()["drivers"]
    assert creator.rig.probe.last(f"{base}/malos/imu/status") is None


def test_a_voice_publishes_no_sensor_value(
    voice: SensorRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mqtt_gpio_bridge")
    voice.add(*all_sims("voice"))
    base = voice.start()
    wait_until(lambda: voice.info()["board"] == "Voice", what="the board found")
    assert voice.info()["sensors"]["present"] is False
    for name in ("humidity", "pressure", "uv", "imu"):
        voice.wait_updates(name)
    sensor_topics = [m for m in voice.rig.probe.messages if m.topic.startswith(f"{base}/sensor/")]
    assert sensor_topics == []
    said = [r.getMessage() for r in caplog.records if "only a MATRIX Creator" in r.getMessage()]
    assert said == [
        "the enabled sensors (humidity, temperature, pressure, uv_index, yaw, pitch, roll) are "
        "not published: only a MATRIX Creator has them (on a Voice MALOS runs their drivers all "
        "the same, sending zeros)"
    ]


def test_a_failing_humidity_driver_is_unavailable_and_reported_once(creator: SensorRig) -> None:
    failing = SimulatedHumidityDriver("127.0.0.1", free_port_block(4), cpu_temperature=False)
    creator.add(failing)
    base = creator.start(enabled=["humidity", "temperature"])
    creator.rig.probe.wait_for(f"{base}/malos/humidity/status", "offline")
    wait_until(lambda: failing.errors_sent >= 4, what="four errors from the driver")
    text = "1, Could not send update for Humidity driver."
    wait_until(lambda: [e for e in creator.rig.errors(base) if e["error"] == text], what="report")
    reports = [e for e in creator.rig.errors(base) if e["error"] == text]
    assert len(reports) == 1
    assert creator.values("humidity") == creator.values("temperature") == []


def test_calibrate_temperature_is_sent_with_the_timings(creator: SensorRig) -> None:
    humidity = SimulatedHumidityDriver("127.0.0.1", free_port_block(4))
    creator.add(humidity)
    creator.start(enabled=["temperature"], calibrate_temperature=21.5)
    creator.wait_value("temperature", "21.5")
    assert humidity.calibration_offset == pytest.approx(-8.5)
    assert humidity.delay_between_updates == pytest.approx(0.1)
    humidity.set(temperature=31.0)  # the raw reading warms by 1 °C: so does the room's
    creator.wait_value("temperature", "22.5")


def test_a_restarted_sensor_driver_is_configured_again(creator: SensorRig) -> None:
    humidity = SimulatedHumidityDriver("127.0.0.1", free_port_block(4))
    creator.add(humidity)
    base = creator.start(enabled=["temperature"], calibrate_temperature=20.0)
    creator.wait_value("temperature", "20.0")
    port = humidity.base_port
    humidity.stop()
    creator.rig.probe.wait_for(f"{base}/malos/humidity/status", "offline")
    with SimulatedHumidityDriver("127.0.0.1", port) as restarted:
        wait_until(lambda: restarted.calibration_offset is not None, what="calibrated again")
        creator.rig.probe.wait_for(f"{base}/malos/humidity/status", "online")


def device_components(sensors: SensorRig) -> dict[str, Any]:
    bridge = sensors.rig.bridge
    assert bridge is not None
    ha = bridge.bridge.config.homeassistant
    topic = f"{ha.prefix}/device/{ha.node_id}/config"
    sensors.rig.probe.subscribe(topic)
    components: dict[str, Any] = json.loads(sensors.rig.probe.wait_for(topic).payload)["cmps"]
    return components


def test_the_device_config_has_the_sensors_on_a_creator(creator: SensorRig) -> None:
    creator.add(*all_sims("creator"))
    creator.start(enabled=["temperature", "pressure"])
    components = device_components(creator)
    assert {key for key, c in components.items() if c["p"] == "sensor"} == {
        "temperature",
        "pressure",
        "last_error",
    }


def test_the_device_config_of_a_voice_has_no_sensor(voice: SensorRig) -> None:
    voice.add(*all_sims("voice"))
    voice.start()
    components = device_components(voice)
    assert [key for key, c in components.items() if c["p"] == "sensor"] == ["last_error"]
    assert "gpio0" in components
