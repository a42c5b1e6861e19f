"""Faults a bridge in a house meets: MALOS restarts, broker restarts, malformed frames."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from mqtt_gpio_bridge.malos.gpio.codec import PinMode
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

from .helpers import BridgeThread, Broker, MqttProbe, Rig, bridge_config, wait_until

OUTPUTS_AND_INPUT = [
    {"pin": 0, "mode": "output", "initial": "off"},
    {"pin": 2, "mode": "output"},  # no `initial`: keep the level it has
    {"pin": 6, "mode": "input"},
]


def bit(levels: int, pin: int) -> int:
    return (levels >> pin) & 1


def test_output_without_initial_keeps_the_level_it_has(own_driver_rig: Rig) -> None:
    probe = own_driver_rig.probe
    board = Board(direction=0b100, output=0b100)  # pin 2 already an output, high
    with SimulatedDriver("127.0.0.1", own_driver_rig.malos_port, board) as driver:
        base = own_driver_rig.start_without_waiting(OUTPUTS_AND_INPUT)
        probe.wait_for(f"{base}/gpio/2/state", "ON")
        # the state comes from the board's own update, which may arrive before the config lands
        pin_2 = wait_until(
            lambda: [c for c in driver.configs if c is not None and c.pin == 2],
            what="pin 2 configured",
        )
        assert all((c.mode, c.value) == (PinMode.OUTPUT, 1) for c in pin_2)
        assert [m.text for m in probe.on(f"{base}/gpio/2/state")] == ["ON"]  # no glitch


def test_output_without_initial_is_not_configured_before_its_level_is_known(
    own_driver_rig: Rig,
) -> None:
    board = Board(external=0b100)  # pin 2 an input, pulled high
    with SimulatedDriver("127.0.0.1", own_driver_rig.malos_port, board) as driver:
        base = own_driver_rig.start_without_waiting(OUTPUTS_AND_INPUT)
        own_driver_rig.probe.wait_for(f"{base}/gpio/2/state", "ON")
        pin_2 = wait_until(
            lambda: [c for c in driver.configs if c is not None and c.pin == 2],
            what="pin 2 configured",
        )
        assert (pin_2[0].mode, pin_2[0].value) == (PinMode.OUTPUT, 1)
        wait_until(lambda: bit(board.direction, 2) == 1, what="pin 2 an output")


def test_malos_restart_is_noticed_and_every_pin_is_configured_again(own_driver_rig: Rig) -> None:
    probe, malos_port = own_driver_rig.probe, own_driver_rig.malos_port
    board = Board()
    with SimulatedDriver("127.0.0.1", malos_port, board):
        base = own_driver_rig.start(OUTPUTS_AND_INPUT)
        probe.publish(f"{base}/gpio/0/set", "ON")
        probe.publish(f"{base}/gpio/2/set", "ON")
        wait_until(lambda: board.levels() & 0b101 == 0b101, what="pins 0 and 2 high")
        probe.wait_for(f"{base}/gpio/2/state", "ON")
    probe.wait_for(f"{base}/status", "offline")
    # A fresh MALOS: zeroed shadow registers. Another client's write would reset our pins;
    # the bridge must rewrite them itself.
    with SimulatedDriver("127.0.0.1", malos_port, board) as restarted:
        probe.wait_for(f"{base}/status", "online")
        wait_until(lambda: len(restarted.configs) == 3, what="three pin configs")
        received = {c.pin: (c.mode, c.value) for c in restarted.configs if c is not None}
        assert received == {0: (PinMode.OUTPUT, 1), 2: (PinMode.OUTPUT, 1), 6: (PinMode.INPUT, 0)}
        assert board.levels() & 0b101 == 0b101
        assert board.direction == 0b101
    statuses = [m.text for m in probe.on(f"{base}/status")]
    assert statuses[statuses.index("online") :] == ["online", "offline", "online"]  # no flap


def test_commands_while_malos_is_away_are_kept_and_applied_when_it_is_back(
    own_driver_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mqtt_gpio_bridge")
    probe, malos_port = own_driver_rig.probe, own_driver_rig.malos_port
    board = Board()
    with SimulatedDriver("127.0.0.1", malos_port, board):
        base = own_driver_rig.start_without_waiting(OUTPUTS_AND_INPUT)
        probe.wait_for(f"{base}/gpio/0/state", "OFF")
    probe.wait_for(f"{base}/status", "offline")
    probe.publish(f"{base}/gpio/0/set", "ON")
    probe.publish(f"{base}/gpio/0/set", "OFF")
    probe.publish(f"{base}/gpio/0/set", "ON")  # last write wins
    wait_until(lambda: probe.on(f"{base}/gpio/status"), what="a notice")
    with SimulatedDriver("127.0.0.1", malos_port, board):
        probe.wait_for(f"{base}/gpio/0/state", "ON")
        assert bit(board.levels(), 0) == 1
    # One notice and one warning for the outage, not one per command; the count at the end.
    (notice,) = [json.loads(m.payload) for m in probe.on(f"{base}/gpio/status")]
    assert notice["source"] == "bridge"
    assert notice["pin"] == 0
    assert "when it is back" in notice["error"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "when it is back" in w]) == 1
    assert any("3 commands arrived while MALOS was away" in r.getMessage() for r in caplog.records)


def test_updates_stopping_turn_status_offline_and_back(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(
        OUTPUTS_AND_INPUT,
        malos={"offline_after": 1.5, "keepalive_interval": 0.2, "ping_timeout": 0.5},
    )
    # The driver stays up but stops sending (as when pings time out): a stuck board.
    simulator.timeout_after_last_ping = 0.0
    simulator.delay_between_updates = 60.0
    probe.wait_for(f"{base}/status", "offline", timeout=5)
    simulator.timeout_after_last_ping = 5.0
    simulator.delay_between_updates = 0.05
    probe.wait_for(f"{base}/status", "online", timeout=5)


def test_malformed_update_frames_are_survived_and_reported(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start_without_waiting(OUTPUTS_AND_INPUT)
    probe.wait_for(f"{base}/gpio/6/state", "OFF")
    simulator.inject_update(b"\xff\xff\xff")
    simulator.inject_update(b"\x22" + b"\xff" * 1_000_000)
    wait_until(lambda: len(probe.on(f"{base}/gpio/status")) >= 2, what="two reports")
    reports = rig.errors(base)
    assert all(r["source"] == "bridge" and "malformed" in r["error"] for r in reports)
    simulator.set_input(6, 1)
    probe.wait_for(f"{base}/gpio/6/state", "ON")
    assert probe.last(f"{base}/status").text == "online"  # type: ignore[union-attr]


def test_broker_restart_republishes_status_and_states_and_takes_commands(
    start_bridge: Callable[..., BridgeThread],
    own_broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    config = bridge_config(own_broker, malos_port, OUTPUTS_AND_INPUT)
    base = config.mqtt.base_topic
    probe = probe_factory(own_broker)
    probe.subscribe(f"{base}/#")
    start_bridge(config)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    probe.close()
    own_broker.stop()
    own_broker.start()  # no persistence: every retained message is gone
    after = probe_factory(own_broker)
    after.subscribe(f"{base}/#")
    after.wait_for(f"{base}/status", "online", timeout=40)
    after.wait_for(f"{base}/gpio/0/state", "OFF")
    after.wait_for(f"{base}/gpio/6/state", "OFF")
    after.publish(f"{base}/gpio/0/set", "ON")
    after.wait_for(f"{base}/gpio/0/state", "ON")
    assert bit(simulator.board.levels(), 0) == 1


def test_broker_down_at_start_then_up(
    start_bridge: Callable[..., BridgeThread],
    own_broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    own_broker.stop()
    config = bridge_config(own_broker, malos_port, OUTPUTS_AND_INPUT)
    base = config.mqtt.base_topic
    runner = start_bridge(config)
    wait_until(lambda: runner.bridge.available, what="driver seen while the broker is down")
    own_broker.start()
    probe = probe_factory(own_broker)
    probe.subscribe(f"{base}/#")
    probe.wait_for(f"{base}/status", "online", timeout=40)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")


def test_two_bridges_with_one_client_id_keep_running_and_name_the_cause(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker ends one session each time the other bridge connects with the same id
    (often inside the burst of writes that follows a CONNACK): neither bridge fails, and each
    says in its log which key to change."""
    caplog.set_level(logging.WARNING, logger="mqtt_gpio_bridge")
    pins = [{"pin": 0, "mode": "output", "initial": "off"}]
    mqtt = {"client_id": "shared-id", "reconnect_min": 0.05, "reconnect_max": 1.0}
    first = rig.start_bridge(bridge_config(rig.broker, rig.malos_port, pins, mqtt=mqtt))
    second = rig.start_bridge(bridge_config(rig.broker, rig.malos_port, pins, mqtt=mqtt))
    cause = "another client is connected with client id 'shared-id'"

    def hints() -> list[str]:
        return [r.getMessage() for r in caplog.records if cause in r.getMessage()]

    wait_until(lambda: len(hints()) >= 2, what="both bridges naming the cause")
    assert all("give each bridge its own mqtt.client_id" in hint for hint in hints())
    for bridge in (first, second):
        bridge.stop()  # raises what the bridge's thread raised, if anything
