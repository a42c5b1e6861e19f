"""Real peers for the tests: a Mosquitto broker, the simulated MALOS driver, MQTT probes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_gpio_bridge.config import BridgeConfig, parse_config
from mqtt_gpio_bridge.core.bridge import Bridge
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

WAIT = 10.0
"""Seconds any wait-for-condition may take before the test fails."""


def wait_until(condition: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_block(count: int = 4) -> int:
    """A base port such that base .. base+count-1 are all free on 127.0.0.1."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for offset in range(count):
                    held = stack.enter_context(socket.socket())
                    held.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise RuntimeError("no block of free ports found")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# -- Mosquitto ------------------------------------------------------------------------------------


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    config_path: Path | None = None

    def start(self) -> None:
        """Start (or restart) the Mosquitto process on the same port, without persistence."""
        assert self.config_path is not None, "an external broker cannot be restarted"
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), what=f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def start_mosquitto(directory: Path, port: int | None = None) -> Broker:
    """Start an anonymous Mosquitto without persistence on `port` (or a free one)."""
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: run scripts/test.sh, which installs it")
    port = free_port() if port is None else port
    config_path = directory / "mosquitto.conf"
    config_path.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    server = Broker("127.0.0.1", port, config_path=config_path)
    server.start()
    return server


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Mosquitto for the session, or the one named by MQTT_TEST_BROKER=host:port."""
    external = os.environ.get("MQTT_TEST_BROKER")
    if external:
        host, _, port = external.rpartition(":")
        yield Broker(host or "localhost", int(port))
        return
    server = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield server
    server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of this test alone, for tests that stop and restart it."""
    server = start_mosquitto(tmp_path)
    yield server
    server.stop()


# -- MQTT probe -----------------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode()


@dataclass
class MqttProbe:
    """A real paho client that records what it receives, as a user's mosquitto_sub would."""

    broker: Broker
    client: paho.Client = field(init=False)
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        if not connected.wait(WAIT):
            raise RuntimeError("probe could not connect to the broker")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain)))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(WAIT):
            raise RuntimeError(f"subscription to {topic} not acknowledged")

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [message for message in self.messages if message.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = WAIT) -> Received:
        """Wait until the last message on `topic` (with `payload`, if given) has arrived."""

        def matches() -> Received | None:
            message = self.last(topic)
            if message is not None and (payload is None or message.text == payload):
                return message
            return None

        result: Received = wait_until(matches, timeout, f"{topic} = {payload!r}")
        return result

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def probe_factory(broker: Broker) -> Iterator[Callable[..., MqttProbe]]:
    made: list[MqttProbe] = []

    def make(on: Broker | None = None) -> MqttProbe:
        made.append(MqttProbe(on or broker))
        return made[-1]

    yield make
    for probe in made:
        probe.close()


@pytest.fixture
def probe(probe_factory: Callable[..., MqttProbe]) -> MqttProbe:
    return probe_factory()


# -- the simulated MALOS driver -------------------------------------------------------------------


@pytest.fixture
def malos_port() -> int:
    return free_port_block(4)


@pytest.fixture
def simulator(malos_port: int) -> Iterator[SimulatedDriver]:
    driver = SimulatedDriver("127.0.0.1", malos_port, Board())
    driver.start()
    yield driver
    driver.stop()


# -- the bridge, in-process -----------------------------------------------------------------------


class BridgeThread:
    """A bridge running in a thread, as `run` would in its process."""

    def __init__(self, config: BridgeConfig) -> None:
        self.bridge = Bridge(config)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bridge", daemon=True)

    def _run(self) -> None:
        try:
            self.bridge.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> BridgeThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.bridge.stop()
        self._thread.join(WAIT)
        if self._thread.is_alive():
            frame = sys._current_frames().get(self._thread.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            pytest.fail(f"the bridge did not stop within {WAIT} s; it is here:\n{stack}")
        if self.error is not None:
            raise self.error


def bridge_config(
    broker: Broker, malos_port: int, pins: list[dict[str, Any]], **sections: dict[str, Any]
) -> BridgeConfig:
    """A config for the test broker and simulator with a unique base topic and node id."""
    unique = uuid.uuid4().hex[:8]
    document: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "base_topic": f"test/{unique}"},
        "malos": {"host": "127.0.0.1", "base_port": malos_port, "update_interval": 0.05},
        "homeassistant": {"node_id": f"test_{unique}", "prefix": f"ha_{unique}"},
        "pins": pins,
    }
    for name, values in sections.items():
        document.setdefault(name, {}).update(values)
    return parse_config(document)


@pytest.fixture
def start_bridge() -> Iterator[Callable[[BridgeConfig], BridgeThread]]:
    running: list[BridgeThread] = []

    def start(config: BridgeConfig) -> BridgeThread:
        running.append(BridgeThread(config).start())
        return running[-1]

    yield start
    for runner in running:
        runner.stop()


@dataclass
class Rig:
    """The usual set-up of a test: the session broker, a MALOS driver, a probe, bridges."""

    broker: Broker
    probe: MqttProbe
    start_bridge: Callable[[BridgeConfig], BridgeThread]
    malos_port: int
    """Where the bridges look for the MALOS driver."""
    own_simulator: SimulatedDriver | None = None
    """The `simulator` fixture's driver; None where the test starts its own driver."""
    bridge: BridgeThread | None = None
    """The bridge started last."""

    @property
    def simulator(self) -> SimulatedDriver:
        """The `simulator` fixture's driver (the `rig` fixture has one, `own_driver_rig` not)."""
        assert self.own_simulator is not None, "this rig has no simulator: use the `rig` fixture"
        return self.own_simulator

    def start_without_waiting(self, pins: list[dict[str, Any]], **sections: dict[str, Any]) -> str:
        """Watch the topics of a new bridge and start it, without waiting for it; its base."""
        config = bridge_config(self.broker, self.malos_port, pins, **sections)
        base = config.mqtt.base_topic
        self.probe.subscribe(f"{base}/#")
        self.bridge = self.start_bridge(config)
        return base

    def start(self, pins: list[dict[str, Any]], **sections: dict[str, Any]) -> str:
        """Start a bridge on the driver, watch its topics, wait until online; its base."""
        base = self.start_without_waiting(pins, **sections)
        self.probe.wait_for(f"{base}/status", "online")
        return base

    def errors(self, base: str) -> list[dict[str, Any]]:
        """The reports published so far on `<base>/gpio/status`, decoded."""
        return [json.loads(message.payload) for message in self.probe.on(f"{base}/gpio/status")]


@pytest.fixture
def rig(
    broker: Broker,
    simulator: SimulatedDriver,
    probe: MqttProbe,
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> Rig:
    return Rig(broker, probe, start_bridge, simulator.base_port, simulator)


@pytest.fixture
def own_driver_rig(
    broker: Broker,
    malos_port: int,
    probe: MqttProbe,
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> Rig:
    """A rig without the `simulator`: the test starts its own driver on `malos_port`."""
    return Rig(broker, probe, start_bridge, malos_port)
