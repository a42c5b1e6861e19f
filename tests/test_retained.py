"""Retained commands: a `set` the broker keeps would switch hardware at every start and
reconnect, so by default the bridge reports it and leaves the pin alone."""

from __future__ import annotations

import json
import logging
import os
import pwd
from collections.abc import Callable
from pathlib import Path

import pytest

from mqtt_gpio_bridge.malos.gpio.codec import PinMode
from mqtt_gpio_bridge.sim.driver import SimulatedDriver

from .helpers import BridgeThread, Broker, MqttProbe, Rig, bridge_config, free_port, wait_until

PINS = [
    {"pin": 0, "mode": "output", "initial": "off"},  # a relay
    {"pin": 1, "mode": "output", "initial": "off", "pulse_ms": 300},  # a garage door
]
PULSE = json.dumps({"state": "ON", "duration_ms": 500})


def driven_high(driver: SimulatedDriver, pin: int, since: int = 0) -> bool:
    """Whether any config the driver received (from the `since`-th on) drove `pin` high."""
    return any(
        config is not None and (config.pin, config.mode, config.value) == (pin, PinMode.OUTPUT, 1)
        for config in driver.configs[since:]
    )


def some_updates_later(driver: SimulatedDriver) -> None:
    seen = driver.updates_sent
    wait_until(lambda: driver.updates_sent >= seen + 5, what="five more updates")


def clear_hint(topic: str) -> str:
    return f"mosquitto_pub -r -n -t '{topic}'"


def test_retained_commands_are_reported_not_obeyed_at_start(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    config = bridge_config(rig.broker, rig.malos_port, PINS)
    base = config.mqtt.base_topic
    relay, door = f"{base}/gpio/0/set", f"{base}/gpio/1/set"
    probe.publish(relay, "ON", retain=True)  # one careless `mosquitto_pub -r`
    probe.publish(door, PULSE, retain=True)  # a Node-RED `mqtt out` node with retain on
    try:
        probe.subscribe(f"{base}/#")
        rig.start_bridge(config)
        probe.wait_for(f"{base}/status", "online")
        wait_until(lambda: len(rig.errors(base)) == 2, what="one report per retained command")
        reports = rig.errors(base)
        for topic in (relay, door):
            (report,) = [r for r in reports if r["error"].startswith(topic)]
            assert report["source"] == "bridge"
            assert "not applied" in report["error"]
            assert clear_hint(topic) in report["error"]
        some_updates_later(simulator)
        assert not driven_high(simulator, 0)
        assert not driven_high(simulator, 1)
        assert [m.text for m in probe.on(f"{base}/gpio/0/state")] == ["OFF"]
        # A live command is obeyed as always.
        probe.publish(relay, "ON")
        probe.wait_for(f"{base}/gpio/0/state", "ON")
    finally:
        probe.publish(relay, b"", retain=True)
        probe.publish(door, b"", retain=True)


def test_retained_commands_apply_keeps_obeying_them(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    config = bridge_config(rig.broker, rig.malos_port, PINS, mqtt={"retained_commands": "apply"})
    base = config.mqtt.base_topic
    relay = f"{base}/gpio/0/set"
    probe.publish(relay, "ON", retain=True)
    try:
        probe.subscribe(f"{base}/#")
        rig.start_bridge(config)
        probe.wait_for(f"{base}/gpio/0/state", "ON")
        assert driven_high(simulator, 0)
        assert not [r for r in rig.errors(base) if "retained" in r["error"]]
    finally:
        probe.publish(relay, b"", retain=True)


def persistent_broker(directory: Path) -> Broker:
    """A Mosquitto that keeps retained messages across restarts, as deploy/mosquitto.conf."""
    port = free_port()
    config_path = directory / "mosquitto.conf"
    # Started as root, Mosquitto runs as the user `mosquitto` unless told to stay who it is;
    # that user could not write the store into the test's directory.
    user = pwd.getpwuid(os.getuid()).pw_name
    config_path.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\n"
        f"persistence true\npersistence_location {directory}/\n"
    )
    broker = Broker("127.0.0.1", port, config_path=config_path)
    broker.start()
    return broker


def test_a_persistent_broker_restart_does_not_replay_an_old_retained_command(
    tmp_path: Path,
    start_bridge: Callable[..., BridgeThread],
    malos_port: int,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mqtt_gpio_bridge")
    broker = persistent_broker(tmp_path)
    try:
        # The bridge comes back 0.5..1 s after a restart, the watching probe well before it.
        reconnect = {"reconnect_min": 1.0, "reconnect_max": 1.0}
        config = bridge_config(broker, malos_port, PINS, mqtt=reconnect)
        base = config.mqtt.base_topic
        relay = f"{base}/gpio/0/set"
        probe = probe_factory(broker)
        probe.subscribe(f"{base}/#")
        start_bridge(config)
        probe.wait_for(f"{base}/gpio/0/state", "OFF")
        probe.publish(relay, "ON", retain=True)  # live: obeyed, and kept by the broker
        probe.wait_for(f"{base}/gpio/0/state", "ON")
        probe.publish(relay, "OFF")  # a later plain command
        probe.wait_for(f"{base}/gpio/0/state", "OFF")
        probe.close()
        for restart in (1, 2):
            broker.stop()  # the broker writes its store, the retained "ON" in it
            broker.start()
            configs_before = len(simulator.configs)
            after = probe_factory(broker)
            after.subscribe(f"{base}/gpio/status")
            after.subscribe(f"{base}/status")
            after.wait_for(f"{base}/status", "online", timeout=40)
            if restart == 1:
                (message,) = wait_until(
                    lambda probe=after: probe.on(f"{base}/gpio/status"), what="the report"
                )
                report = json.loads(message.payload)
                assert clear_hint(relay) in report["error"]
            some_updates_later(simulator)
            assert not driven_high(simulator, 0, since=configs_before)
            assert simulator.board.levels() & 1 == 0
            if restart == 2:
                assert after.on(f"{base}/gpio/status") == []  # reported once, not per session
            after.close()
    finally:
        broker.stop()
    seen = [r.levelno for r in caplog.records if "retained command" in r.getMessage()]
    assert seen[0] == logging.WARNING
    assert seen[1:] and set(seen[1:]) == {logging.DEBUG}  # seen again, said again only at debug
