"""Floods: thousands of commands neither lose the last one, nor starve other pins."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable

import pytest

from mqtt_gpio_bridge.core.reports import REPORTS_PER_SECOND
from mqtt_gpio_bridge.homeassistant import announcer

from .helpers import MqttProbe, Rig, wait_until

OUTPUTS = list(range(15))
INPUT = 15
PINS = [{"pin": pin, "mode": "output", "initial": "off"} for pin in OUTPUTS] + [
    {"pin": INPUT, "mode": "input"}
]


def test_a_flood_of_commands_ends_in_the_last_command_per_pin_and_inputs_still_report(
    rig: Rig, probe_factory: Callable[..., MqttProbe]
) -> None:
    simulator, watcher = rig.simulator, rig.probe
    base = rig.start_without_waiting(PINS)
    watcher.wait_for(f"{base}/gpio/{INPUT}/state", "OFF")

    flooder = probe_factory()
    rng = random.Random(7)
    last: dict[int, str] = {}

    def flood() -> None:
        for index in range(6000):
            pin = rng.choice(OUTPUTS)
            last[pin] = rng.choice(["ON", "OFF"])
            # QoS 0 is as fast as a script can push; the last one per pin goes with QoS 1.
            flooder.client.publish(f"{base}/gpio/{pin}/set", last[pin], qos=0)
            if index % 500 == 0:
                time.sleep(0.01)  # let the publisher's socket drain; the flood stays >5,000/s

    thread = threading.Thread(target=flood)
    thread.start()
    simulator.set_input(INPUT, 1)  # someone presses a button in the middle of it
    watcher.wait_for(f"{base}/gpio/{INPUT}/state", "ON")
    thread.join()
    for pin, payload in last.items():
        flooder.publish(f"{base}/gpio/{pin}/set", payload, qos=1)
    expected = sum(1 << pin for pin, payload in last.items() if payload == "ON") | 1 << INPUT
    wait_until(lambda: simulator.board.levels() == expected, what="every pin at its last command")
    for pin, payload in last.items():
        watcher.wait_for(f"{base}/gpio/{pin}/state", payload)


def test_a_flood_of_bad_commands_is_refused_cheaply_and_reports_are_thinned(
    rig: Rig, probe_factory: Callable[..., MqttProbe]
) -> None:
    simulator, watcher = rig.simulator, rig.probe
    base = rig.start_without_waiting(PINS)
    watcher.wait_for(f"{base}/gpio/0/state", "OFF")
    # Pin 0's state can come before the driver has applied the start configs of the other pins.
    wait_until(lambda: {c.pin for c in simulator.configs if c} >= {p["pin"] for p in PINS})
    configs_before = len(simulator.configs)

    flooder = probe_factory()
    started = time.monotonic()
    for index in range(3000):
        flooder.client.publish(f"{base}/gpio/0/set", f"nonsense {index}", qos=0)
    for _ in range(20):
        flooder.client.publish(f"{base}/gpio/0/set", b"\x00" * 1_000_000, qos=0)
    flooder.publish(f"{base}/gpio/0/set", "ON", qos=1)  # a good command right behind them
    watcher.wait_for(f"{base}/gpio/0/state", "ON")
    elapsed = time.monotonic() - started

    reports = watcher.on(f"{base}/gpio/status")
    seconds = int(elapsed) + 2
    assert 0 < len(reports) <= REPORTS_PER_SECOND * seconds
    assert all(json.loads(m.payload)["source"] == "bridge" for m in reports)
    assert [(c.pin, c.value) for c in simulator.configs[configs_before:] if c] == [(0, 1)]
    # The next report after a thinned-out burst says how many were left out.
    wait_until(lambda: time.monotonic() - started > elapsed + 1.1, what="a new report window")
    flooder.publish(f"{base}/gpio/0/set", "still nonsense", qos=1)
    wait_until(lambda: "suppressed" in watcher.on(f"{base}/gpio/status")[-1].text)


def test_a_flood_of_replaced_hour_long_pulses_leaves_no_timers_behind(
    rig: Rig, probe_factory: Callable[..., MqttProbe]
) -> None:
    """A Node-RED loop re-sending an hour-long pulse: each replaces the last, and the replaced
    ones must not stay queued for an hour (memory grew by ~120 MB in 15 s before)."""
    watcher = rig.probe
    base = rig.start(PINS)
    assert rig.bridge is not None
    bridge = rig.bridge.bridge
    flooder = probe_factory()
    pulse = json.dumps({"state": "ON", "duration_ms": 3_600_000})
    for index in range(20_000):
        flooder.client.publish(f"{base}/gpio/0/set", pulse, qos=0)
        if index % 500 == 0:
            time.sleep(0.01)  # let the publisher's socket drain
    flooder.publish(f"{base}/gpio/1/set", "ON", qos=1)  # a marker behind the flood
    watcher.wait_for(f"{base}/gpio/1/state", "ON")
    watcher.wait_for(f"{base}/gpio/0/state", "ON")
    # Pings, the offline check, one pulse per pin at most, and cancelled ones not yet dropped.
    assert len(bridge.timers) < 200


def test_home_assistant_births_in_a_burst_get_one_announcement_per_window(
    rig: Rig, probe_factory: Callable[..., MqttProbe], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(announcer, "ANNOUNCE_WINDOW", 1.0)
    watcher = rig.probe
    base = rig.start(PINS)
    prefix = f"ha_{base.removeprefix('test/')}"
    config_topic = f"{prefix}/device/test_{base.removeprefix('test/')}/config"
    watcher.subscribe(config_topic)
    watcher.wait_for(config_topic)
    wait_until(lambda: len(watcher.on(config_topic)) == 1, what="the retained config")
    watcher.clear()
    started = time.monotonic()
    flooder = probe_factory()
    for _ in range(2000):
        flooder.client.publish(f"{prefix}/status", "online", qos=0)
    flooder.publish(f"{prefix}/status", "online", qos=1)
    wait_until(lambda: watcher.on(config_topic), what="an announcement")
    # Over two windows: the burst may get an announcement at once and one at the window's end.
    wait_until(lambda: time.monotonic() - started > 3.0, what="two windows to pass")
    assert 1 <= len(watcher.on(config_topic)) <= 2
    assert len(watcher.messages) <= 2 * (1 + 1 + len(PINS))
    assert watcher.last(f"{base}/gpio/0/state") is not None  # the states came with it
