"""Fixtures: a real Mosquitto, the simulated MALOS driver, MQTT probes, bridges, CLI processes.

What they hand out is defined in helpers.py, which test modules import from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqtt_gpio_bridge.config import BridgeConfig
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

from .helpers import (
    BridgeThread,
    Broker,
    Cli,
    MqttProbe,
    RawClient,
    Rig,
    free_port_block,
    start_mosquitto,
)

BROKER_FIXTURES = frozenset({"broker", "own_broker", "secure_broker"})
"""Fixtures that start Mosquitto (`secure_broker`: test_security.py's listeners). A test that
uses one, directly or through another fixture, is marked `broker`; the few that start Mosquitto
themselves carry the marker explicitly. `pytest -m "not broker"` runs the rest, which need no
Mosquitto installed."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


# -- Mosquitto ------------------------------------------------------------------------------------


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
def client(malos_port: int) -> Iterator[RawClient]:
    """A bare MALOS client (no bridge) of the driver a test starts on `malos_port`."""
    raw = RawClient(malos_port)
    yield raw
    raw.close()


@pytest.fixture
def simulator(malos_port: int) -> Iterator[SimulatedDriver]:
    driver = SimulatedDriver("127.0.0.1", malos_port, Board())
    driver.start()
    yield driver
    driver.stop()


# -- the bridge, in-process -----------------------------------------------------------------------


@pytest.fixture
def start_bridge() -> Iterator[Callable[[BridgeConfig], BridgeThread]]:
    running: list[BridgeThread] = []

    def start(config: BridgeConfig) -> BridgeThread:
        running.append(BridgeThread(config).start())
        return running[-1]

    yield start
    for runner in running:
        runner.stop()


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


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[Callable[..., Cli]]:
    """Start command-line processes; every one is killed at the end of the test."""
    started: list[Cli] = []

    def start(*args: str, cwd: Path | None = None, stdin: bool = False) -> Cli:
        started.append(Cli(list(args), cwd=cwd, stdin=stdin))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        # Shown by pytest only when the test failed.
        print(f"--- {process} exited {process.process.returncode}:\n{process.transcript()}")
