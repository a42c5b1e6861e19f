"""The MQTT contract, end to end: real Mosquitto, the bridge, the simulated driver."""

from __future__ import annotations

from mqtt_gpio_bridge.malos.gpio.codec import PinMode

from .helpers import MqttProbe, Rig, wait_until

PINS = [
    {"pin": 0, "mode": "output", "name": "Relay", "initial": "off"},
    {"pin": 3, "mode": "input", "name": "Button"},
    {"pin": 5, "mode": "output", "inverted": True, "initial": "off"},
    {"pin": 7, "mode": "output", "payload_on": "open", "payload_off": "closed", "initial": "off"},
]


def test_set_on_drives_the_pin_and_publishes_retained_state(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    probe.publish(f"{base}/gpio/0/set", "on")
    wait_until(lambda: simulator.board.levels() & 1, what="pin 0 high on the board")
    probe.wait_for(f"{base}/gpio/0/state", "ON")
    late = MqttProbe(rig.broker)
    try:
        late.subscribe(f"{base}/gpio/0/state")
        retained = late.wait_for(f"{base}/gpio/0/state", "ON")
        assert retained.retain
    finally:
        late.close()
    assert simulator.board.direction & 1


def test_input_changes_are_published(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/3/state", "OFF")
    simulator.set_input(3, 1)
    probe.wait_for(f"{base}/gpio/3/state", "ON")
    simulator.set_input(3, 0)
    probe.wait_for(f"{base}/gpio/3/state", "OFF")
    assert [m.text for m in probe.on(f"{base}/gpio/3/state")] == ["OFF", "ON", "OFF"]


def test_configs_sent_to_the_driver_set_modes_and_carry_timing(rig: Rig) -> None:
    simulator = rig.simulator
    rig.start(PINS)
    wait_until(lambda: len(simulator.configs) >= len(PINS), what="every pin configured")
    configs = [c for c in simulator.configs if c is not None]
    assert len(configs) == len(simulator.configs), "an undecodable config was sent"
    assert {c.pin for c in configs} == {0, 3, 5, 7}
    assert all(c.pin is not None for c in configs)
    assert all(c.delay_between_updates > 0 and c.timeout_after_last_ping > 0 for c in configs)
    modes = {c.pin: c.mode for c in configs}
    assert modes == {0: PinMode.OUTPUT, 3: PinMode.INPUT, 5: PinMode.OUTPUT, 7: PinMode.OUTPUT}
    # inverted pin 5 "off" is a high level
    assert simulator.board.levels() & (1 << 5)


def test_inverted_pin_and_custom_payloads(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/5/state", "OFF")
    probe.publish(f"{base}/gpio/5/set", "ON")
    wait_until(lambda: not simulator.board.levels() & (1 << 5), what="inverted pin 5 low")
    probe.wait_for(f"{base}/gpio/5/state", "ON")
    probe.wait_for(f"{base}/gpio/7/state", "closed")
    probe.publish(f"{base}/gpio/7/set", "OPEN")
    probe.wait_for(f"{base}/gpio/7/state", "open")
    assert simulator.board.levels() & (1 << 7)


def test_every_accepted_payload_form(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    topic = f"{base}/gpio/0/set"
    forms = [
        ("ON", 1),
        ("off", 0),
        (" On ", 1),
        ("0", 0),
        ("1", 1),
        ("false", 0),
        ("TRUE", 1),
        ("low", 0),
        ("HIGH", 1),
        ('{"state": "OFF"}', 0),
        ('{"state": "on"}', 1),
        ("toggle", 0),
        ("TOGGLE", 1),
        ('"off"', 0),
    ]
    for payload, level in forms:
        probe.publish(topic, payload)
        wait_until(
            lambda level=level: (simulator.board.levels() & 1) == level,
            what=f"{payload!r} -> {level}",
        )
        probe.wait_for(f"{base}/gpio/0/state", "ON" if level else "OFF")
    assert rig.errors(base) == []


def test_refused_commands_reach_nothing_and_are_reported(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    sent_before = len(simulator.configs)
    bad = [
        (f"{base}/gpio/0/set", b"maybe", 0),
        (f"{base}/gpio/0/set", b"\xff\xfe\x00", 0),
        (f"{base}/gpio/0/set", b"x" * 1_000_000, 0),
        (f"{base}/gpio/0/set", b'{"state": "BLINK"}', 0),
        (f"{base}/gpio/3/set", b"ON", 3),  # an input
        (f"{base}/gpio/9/set", b"ON", 9),  # not configured
        (f"{base}/gpio/16/set", b"ON", None),
        (f"{base}/gpio/x/set", b"ON", None),
    ]
    for topic, payload, _ in bad:
        probe.publish(topic, payload)
    wait_until(lambda: len(rig.errors(base)) == len(bad), what="one error per refusal")
    reported = rig.errors(base)
    assert [e["pin"] for e in reported] == [pin for _, _, pin in bad]
    assert all(e["source"] == "bridge" and e["error"] and e["time"] for e in reported)
    assert "maybe" in str(reported[0]["error"])
    assert "input" in str(reported[4]["error"])
    # the bridge still serves: a good command after all that works
    probe.publish(f"{base}/gpio/0/set", "ON")
    probe.wait_for(f"{base}/gpio/0/state", "ON")
    new_configs = simulator.configs[sent_before:]
    assert [(c.pin, c.value) for c in new_configs if c is not None] == [(0, 1)]


def test_empty_payload_is_a_harmless_no_op(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    sent_before = len(simulator.configs)
    probe.publish(f"{base}/gpio/0/set", b"")
    probe.publish(f"{base}/gpio/0/set", "ON")  # a marker behind the empty one
    probe.wait_for(f"{base}/gpio/0/state", "ON")
    assert len(simulator.configs) == sent_before + 1
    assert rig.errors(base) == []


def test_driver_errors_are_republished(rig: Rig) -> None:
    simulator = rig.simulator
    from .helpers import RawClient

    base = rig.start(PINS)
    other = RawClient(simulator.base_port)  # another MALOS client sends garbage
    try:
        other.send(b"\xff\xff")
        wait_until(lambda: rig.errors(base), what="driver error on gpio/status")
    finally:
        other.close()
    (error,) = rig.errors(base)
    assert error["source"] == "driver"
    assert error["pin"] is None
    assert error["error"] == "0, Invalid configuration for Gpio driver. Could not parse protobuf."


def test_only_set_topics_of_configured_outputs_act(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(PINS)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    sent_before = len(simulator.configs)
    for topic in (
        f"{base}/gpio/0/state",  # someone writing a state is not a command
        f"{base}/gpio/0/set/now",
        f"{base}/gpio/0/SET",
        f"{base}/gpio/set",
        f"{base}/other/0/set",
        f"{base}x/gpio/0/set",
    ):
        probe.publish(topic, "ON")
    probe.publish(f"{base}/gpio/7/set", "OPEN")  # a marker: this one is for the bridge
    probe.wait_for(f"{base}/gpio/7/state", "open")
    assert [(c.pin, c.value) for c in simulator.configs[sent_before:] if c] == [(7, 1)]
    assert rig.errors(base) == []
    assert not simulator.board.levels() & 1
