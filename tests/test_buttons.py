"""Inputs that act like buttons, end to end: debounce, press events on MQTT, links that work
without the broker, and no phantom events after restarts (real Mosquitto, the simulator)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

from .helpers import BridgeThread, Broker, MqttProbe, Rig, bridge_config, wait_until

FAST = {"update_interval": 0.02}
"""Updates every 20 ms, as the docs recommend for buttons."""
BUTTON = 3
LIGHT = 5


def button(**options: Any) -> dict[str, Any]:
    return {"pin": BUTTON, "mode": "input", "name": "Button", **options}


LIGHT_PIN = {"pin": LIGHT, "mode": "output", "initial": "off"}


def events_on(probe: MqttProbe, base: str) -> list[dict[str, Any]]:
    return [json.loads(message.payload) for message in probe.on(f"{base}/gpio/{BUTTON}/event")]


def states_on(probe: MqttProbe, base: str, pin: int = BUTTON) -> list[str]:
    return [message.text for message in probe.on(f"{base}/gpio/{pin}/state")]


def wait_for_event(probe: MqttProbe, base: str, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(events_on(probe, base)) >= count, what=f"{count} events")
    return events_on(probe, base)


def wait_for_fast_updates(simulator: SimulatedDriver) -> None:
    """Wait until the driver sends updates every 20 ms: it applies the bridge's delay only
    after the sleep in progress (1 s at its start), so a press played before is not seen."""
    wait_until(lambda: simulator.delay_between_updates == 0.02, what="the 20 ms delay applied")
    sent = simulator.updates_sent
    wait_until(lambda: simulator.updates_sent >= sent + 2, what="two updates at the new delay")


def start_fast(rig: Rig, pins: list[dict[str, Any]]) -> str:
    """Start a bridge with 20 ms updates; its base topic, once the updates are that fast."""
    base = rig.start(pins, malos=FAST)
    wait_for_fast_updates(rig.simulator)
    return base


def wait_for_pattern_end(flips: list[float], updates: float = 0.02) -> None:
    """Wait until the driver has sent an update after the last flip (a few of them)."""
    wait_until(lambda: time.monotonic() > flips[-1] + 5 * updates, what="the pattern played")


# --- debounce ---------------------------------------------------------------------------------


def test_debounce_drops_a_glitch_and_takes_a_held_level(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start_fast(rig, [button(debounce_ms=100)])
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    simulator.play(BUTTON, [40])  # shorter than debounce_ms: nothing at all
    flips = simulator.play(BUTTON, [300], start=time.monotonic() + 0.3)
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "ON")
    wait_for_pattern_end(flips)
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    assert states_on(probe, base) == ["OFF", "ON", "OFF"]


# --- press events -----------------------------------------------------------------------------


def test_a_single_press_is_published_as_an_event(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start_fast(rig, [button(events=["single"])])
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    before = datetime.now(UTC)
    simulator.play(BUTTON, [120])
    (event,) = wait_for_event(probe, base, 1)
    assert set(event) == {"event_type", "pin", "time"}
    assert (event["event_type"], event["pin"]) == ("single", BUTTON)
    assert event["time"].endswith("Z")  # as on gpio/status
    published = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert published.utcoffset() == timedelta(0)
    assert before <= published <= datetime.now(UTC)
    (message,) = probe.on(f"{base}/gpio/{BUTTON}/event")
    assert not message.retain


def test_double_and_two_singles(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start_fast(rig, [button(events=["single", "double"])])
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    simulator.play(BUTTON, [100, 150, 100])  # gap 150 ms, well inside 400 ms
    assert [e["event_type"] for e in wait_for_event(probe, base, 1)] == ["double"]
    # Gap 700 ms, well past the window: two singles, each once its window has passed.
    flips = simulator.play(BUTTON, [100, 700, 100])
    events = wait_for_event(probe, base, 3)
    wait_for_pattern_end(flips)
    assert [e["event_type"] for e in events] == ["double", "single", "single"]


def test_a_long_press_fires_at_the_threshold_while_still_held(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start_fast(rig, [button(events=["single", "long"], long_press_ms=300)])
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    flips = simulator.play(BUTTON, [3000])
    (event,) = wait_for_event(probe, base, 1)
    assert time.monotonic() < flips[-1], "the long press came only at the release"
    assert event["event_type"] == "long"
    # Held 300 ms, measured in whole 20 ms updates.
    assert 300 <= event["duration_ms"] < 300 + 3 * 20 + 1
    simulator.set_input(BUTTON, 0)
    probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
    assert len(events_on(probe, base)) == 1  # the release after a long press is no single


# --- links ------------------------------------------------------------------------------------


def test_links_act_while_the_broker_is_down_and_states_follow_on_reconnection(
    start_bridge: Callable[..., BridgeThread],
    own_broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mqtt_gpio_bridge")
    follower = 6
    pins = [
        button(events=["single"]),
        LIGHT_PIN,
        {"pin": follower, "mode": "output"},
    ]
    links = [
        {"input": BUTTON, True: "single", "output": LIGHT, "action": "toggle"},  # unquoted on:
        {"input": BUTTON, "output": follower, "action": "follow"},
    ]
    config = bridge_config(
        own_broker, malos_port, pins, malos=FAST, mqtt={"reconnect_max": 1.0}, links=links
    )
    base = config.mqtt.base_topic
    probe = probe_factory(own_broker)
    probe.subscribe(f"{base}/#")
    runner = start_bridge(config)
    probe.wait_for(f"{base}/gpio/{LIGHT}/state", "OFF")
    probe.wait_for(f"{base}/gpio/{follower}/state", "OFF")
    probe.close()
    own_broker.stop()
    wait_until(lambda: runner.bridge.session_token() is None, what="the bridge without broker")

    board = simulator.board
    wait_for_fast_updates(simulator)
    simulator.set_input(BUTTON, 1)
    wait_until(lambda: board.levels() >> follower & 1, what="pin 6 following the button up")
    simulator.set_input(BUTTON, 0)  # a single press: the light toggles
    wait_until(lambda: not board.levels() >> follower & 1, what="pin 6 following it down")
    wait_until(lambda: board.levels() >> LIGHT & 1, what="the light toggled on by the link")
    own_broker.start()
    after = probe_factory(own_broker)
    after.subscribe(f"{base}/#")
    after.wait_for(f"{base}/status", "online", timeout=40)
    after.wait_for(f"{base}/gpio/{LIGHT}/state", "ON")
    after.wait_for(f"{base}/gpio/{follower}/state", "OFF")
    # The single of the outage was not kept for later, but counted and logged.
    assert after.on(f"{base}/gpio/{BUTTON}/event") == []
    wait_until(
        lambda: any("were not published" in r.getMessage() for r in caplog.records),
        what="the count of unpublished events in the log",
    )


# --- no phantom events ------------------------------------------------------------------------


def test_no_event_from_a_start_a_malos_restart_or_a_snapshot(own_driver_rig: Rig) -> None:
    """A button held down while the bridge starts, and again while MALOS restarts, is where
    it is, not a press; nor is Home Assistant asking for everything again."""
    probe, port = own_driver_rig.probe, own_driver_rig.malos_port
    board = Board(external=1 << BUTTON)  # held down from the start
    pins = [button(events=["single", "double", "long"], long_press_ms=2000)]
    with SimulatedDriver("127.0.0.1", port, board) as driver:
        base = own_driver_rig.start(pins, malos=FAST)
        probe.wait_for(f"{base}/gpio/{BUTTON}/state", "ON")
        wait_for_fast_updates(driver)
        board.set_external(BUTTON, 0)
        probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
        board.set_external(BUTTON, 1)  # pressed again, and held through the restart
        probe.wait_for(f"{base}/gpio/{BUTTON}/state", "ON")
    probe.wait_for(f"{base}/status", "offline")
    with SimulatedDriver("127.0.0.1", port, board) as driver:
        probe.wait_for(f"{base}/status", "online", timeout=20)
        wait_for_fast_updates(driver)
        config = own_driver_rig.bridge.bridge.config  # type: ignore[union-attr]
        probe.publish(f"{config.homeassistant.prefix}/status", "online")  # a snapshot
        board.set_external(BUTTON, 0)
        probe.wait_for(f"{base}/gpio/{BUTTON}/state", "OFF")
        driver.play(BUTTON, [100])  # one real press, to see that events do flow
        (event,) = wait_for_event(probe, base, 1)
    assert event["event_type"] == "single"
