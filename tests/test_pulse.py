"""Pulses: momentary presses for garage doors and doorbells, and their cancellation."""

from __future__ import annotations

import json
import time

from mqtt_gpio_bridge.sim.driver import SimulatedDriver

from .helpers import Rig, wait_until

PINS = [
    {"pin": 0, "mode": "output", "initial": "off"},
    {"pin": 1, "mode": "output", "initial": "off", "pulse_ms": 300},
    {"pin": 2, "mode": "output", "initial": "on", "inverted": True},
]


def high(driver: SimulatedDriver, pin: int) -> bool:
    return bool(driver.board.levels() >> pin & 1)


def start(rig: Rig) -> str:
    base = rig.start(PINS)
    # The driver's first 1 s delay must have run out, so that short pulses show in updates.
    seen = rig.simulator.updates_sent
    wait_until(lambda: rig.simulator.updates_sent >= seen + 3, what="updates at the bridge's pace")
    return base


def test_pulse_turns_on_then_off_after_the_duration(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    sent = time.monotonic()
    probe.publish(f"{base}/gpio/0/set", json.dumps({"state": "ON", "duration_ms": 400}))
    wait_until(lambda: high(simulator, 0), what="pin 0 on")
    wait_until(lambda: not high(simulator, 0), what="pin 0 back off")
    assert time.monotonic() - sent >= 0.4  # never shorter than asked
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    assert "ON" in [m.text for m in probe.on(f"{base}/gpio/0/state")]


def test_off_pulse_is_the_mirror_and_respects_inverted(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    probe.wait_for(f"{base}/gpio/2/state", "ON")
    assert not high(simulator, 2)  # inverted: logical on is a low level
    probe.publish(f"{base}/gpio/2/set", json.dumps({"state": "OFF", "duration_ms": 200}))
    wait_until(lambda: high(simulator, 2), what="pin 2 logically off")
    wait_until(lambda: not high(simulator, 2), what="pin 2 logically on again")
    probe.wait_for(f"{base}/gpio/2/state", "ON")


def test_pulse_ms_makes_a_plain_on_a_press_but_off_stays_off(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    probe.publish(f"{base}/gpio/1/set", "ON")
    wait_until(lambda: high(simulator, 1), what="pressed")
    wait_until(lambda: not high(simulator, 1), what="released")
    configs_before = len(simulator.configs)
    probe.publish(f"{base}/gpio/1/set", "OFF")
    probe.publish(f"{base}/gpio/0/set", "ON")  # a marker that the OFF was handled
    wait_until(lambda: high(simulator, 0))
    assert [(c.pin, c.value) for c in simulator.configs[configs_before:] if c] == [(1, 0), (0, 1)]


def test_a_new_command_cancels_the_pending_revert(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    configs_before = len(simulator.configs)
    probe.publish(f"{base}/gpio/0/set", json.dumps({"state": "ON", "duration_ms": 500}))
    wait_until(lambda: high(simulator, 0))
    # The bridge armed the revert before the driver received the ON, so it is due by then + 0.5 s.
    revert_due = time.monotonic() + 0.5
    probe.publish(f"{base}/gpio/0/set", "ON")  # a plain ON: stay on
    # A negative check needs a window: wait until half a second after the revert was due.
    time.sleep(max(0.0, revert_due + 0.5 - time.monotonic()))
    received = [c.value for c in simulator.configs[configs_before:] if c and c.pin == 0]
    assert received and 0 not in received, f"pin 0 configs since the pulse: {received}"
    assert high(simulator, 0)
    assert probe.last(f"{base}/gpio/0/state").text == "ON"  # type: ignore[union-attr]


def test_absurd_durations_are_refused_and_reach_nothing(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    configs_before = len(simulator.configs)
    for duration in (0, -5, 3_600_001, 1.5, "500", True):
        probe.publish(f"{base}/gpio/0/set", json.dumps({"state": "ON", "duration_ms": duration}))
    wait_until(lambda: len(probe.on(f"{base}/gpio/status")) == 6, what="six refusals")
    reasons = [json.loads(m.payload)["error"] for m in probe.on(f"{base}/gpio/status")]
    assert all("duration_ms" in reason for reason in reasons)
    assert len(simulator.configs) == configs_before


def test_stopping_mid_pulse_ends_the_pulse(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = start(rig)
    probe.publish(f"{base}/gpio/0/set", json.dumps({"state": "ON", "duration_ms": 60_000}))
    wait_until(lambda: high(simulator, 0))
    assert rig.bridge is not None
    rig.bridge.stop()
    wait_until(lambda: not high(simulator, 0), what="relay released on the way out")
