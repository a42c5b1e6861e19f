"""Home Assistant discovery: exact payloads, HA restarts, stale entities, several boards."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from mqtt_gpio_bridge import __version__
from mqtt_gpio_bridge.config import BridgeConfig, parse_config
from mqtt_gpio_bridge.homeassistant.discovery import (
    announcements,
    entity_config,
    event_config,
    stale_topics,
)
from mqtt_gpio_bridge.sim.driver import SimulatedDriver

from .helpers import BridgeThread, Broker, MqttProbe, bridge_config, wait_until

PINS: list[dict[str, Any]] = [
    {"pin": 0, "mode": "output", "name": "Relay", "initial": "off", "icon": "mdi:power"},
    {
        "pin": 4,
        "mode": "input",
        "name": "Door",
        "device_class": "door",
        "payload_on": "OPEN",
        "payload_off": "CLOSED",
    },
]

DEVICE = {
    "identifiers": ["kitchen"],
    "name": "Kitchen board",
    "manufacturer": "MATRIX Labs",
    "model": "MATRIX Voice",
    "sw_version": __version__,
}
AVAILABILITY = [
    {
        "topic": "matrix/kitchen/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
]


def kitchen(pins: list[dict[str, Any]] = PINS, **ha: Any) -> BridgeConfig:
    return parse_config(
        {
            "mqtt": {"base_topic": "matrix/kitchen", "qos": 1},
            "homeassistant": {
                "node_id": "kitchen",
                "device_name": "Kitchen board",
                "model": "MATRIX Voice",
                **ha,
            },
            "pins": pins,
        }
    )


def test_switch_config_is_exact() -> None:
    config = kitchen()
    assert entity_config(config, config.pins[0]) == {
        "name": "Relay",
        "unique_id": "kitchen_gpio0",
        "state_topic": "matrix/kitchen/gpio/0/state",
        "command_topic": "matrix/kitchen/gpio/0/set",
        "payload_on": "ON",
        "payload_off": "OFF",
        "state_on": "ON",
        "state_off": "OFF",
        "optimistic": False,
        "retain": False,
        "qos": 1,
        "icon": "mdi:power",
        "availability": AVAILABILITY,
        "device": DEVICE,
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }


def test_binary_sensor_config_is_exact() -> None:
    config = kitchen()
    assert entity_config(config, config.pins[1]) == {
        "name": "Door",
        "unique_id": "kitchen_gpio4",
        "state_topic": "matrix/kitchen/gpio/4/state",
        "payload_on": "OPEN",
        "payload_off": "CLOSED",
        "qos": 1,
        "device_class": "door",
        "availability": AVAILABILITY,
        "device": DEVICE,
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }


def test_unnamed_pin_is_called_gpio_n_and_topics_follow_the_component() -> None:
    config = kitchen([{"pin": 7, "mode": "output"}, {"pin": 8, "mode": "input"}])
    topics = [a.topic for a in announcements(config)]
    assert topics == [
        "homeassistant/switch/kitchen/gpio7/config",
        "homeassistant/binary_sensor/kitchen/gpio8/config",
    ]
    assert json.loads(announcements(config)[0].payload)["name"] == "GPIO 7"


def test_event_entity_config_is_exact() -> None:
    config = kitchen(
        [{"pin": 4, "mode": "input", "name": "Doorbell", "events": ["long", "single", "double"]}]
    )
    assert event_config(config, config.pins[0]) == {
        "name": "Doorbell press",
        "unique_id": "kitchen_gpio4_event",
        "state_topic": "matrix/kitchen/gpio/4/event",
        "event_types": ["single", "double", "long"],
        "device_class": "button",
        "qos": 1,
        "availability": AVAILABILITY,
        "device": DEVICE,
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }
    assert [a.topic for a in announcements(config)] == [
        "homeassistant/binary_sensor/kitchen/gpio4/config",
        "homeassistant/event/kitchen/gpio4/config",
    ]


def test_an_input_without_events_has_no_event_entity_and_its_old_one_is_stale() -> None:
    config = kitchen([{"pin": 4, "mode": "input"}, {"pin": 5, "mode": "input", "events": "single"}])
    assert [a.topic for a in announcements(config)] == [
        "homeassistant/binary_sensor/kitchen/gpio4/config",
        "homeassistant/binary_sensor/kitchen/gpio5/config",
        "homeassistant/event/kitchen/gpio5/config",
    ]
    retained = {
        "homeassistant/event/kitchen/gpio4/config",  # its events were removed
        "homeassistant/event/kitchen/gpio5/config",
        "homeassistant/event/garage/gpio4/config",  # another node
    }
    assert stale_topics(config, retained) == ["homeassistant/event/kitchen/gpio4/config"]


def test_number_config_of_a_servo_pin_is_exact() -> None:
    config = kitchen(
        [{"pin": 5, "mode": "servo", "name": "Blinds", "min_angle": 20, "max_angle": 160}]
    )
    assert entity_config(config, config.pins[0]) == {
        "name": "Blinds",
        "unique_id": "kitchen_gpio5",
        "state_topic": "matrix/kitchen/gpio/5/state",
        "command_topic": "matrix/kitchen/gpio/5/set",
        "min": 20,
        "max": 160,
        "step": 1,
        "mode": "slider",
        "unit_of_measurement": "°",
        "optimistic": False,
        "retain": False,
        "qos": 1,
        "availability": AVAILABILITY,
        "device": DEVICE,
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }
    assert [a.topic for a in announcements(config)] == ["homeassistant/number/kitchen/gpio5/config"]
    # Defaults 0..180 and the icon; the payload is plain UTF-8 JSON with the degree sign.
    config = kitchen([{"pin": 5, "mode": "servo", "icon": "mdi:valve"}])
    payload = json.loads(announcements(config)[0].payload)
    assert (payload["min"], payload["max"], payload["icon"]) == (0, 180, "mdi:valve")


def test_a_servo_pin_made_an_output_leaves_a_stale_number() -> None:
    config = kitchen([{"pin": 5, "mode": "output"}, {"pin": 6, "mode": "servo"}])
    retained = {
        "homeassistant/number/kitchen/gpio5/config",  # pin 5 was a servo
        "homeassistant/number/kitchen/gpio6/config",
        "homeassistant/switch/kitchen/gpio6/config",  # pin 6 was an output
        "homeassistant/number/garage/gpio5/config",  # another node
    }
    assert stale_topics(config, retained) == [
        "homeassistant/number/kitchen/gpio5/config",
        "homeassistant/switch/kitchen/gpio6/config",
    ]


def test_discovery_off_publishes_and_clears_nothing() -> None:
    config = kitchen(discovery=False)
    assert announcements(config) == []
    assert stale_topics(config, {"homeassistant/switch/kitchen/gpio9/config"}) == []


def test_stale_topics_only_touch_this_nodes_gpio_entities() -> None:
    config = kitchen()
    retained = {
        "homeassistant/switch/kitchen/gpio0/config",  # still configured
        "homeassistant/binary_sensor/kitchen/gpio0/config",  # pin 0 became an output
        "homeassistant/switch/kitchen/gpio9/config",  # removed
        "homeassistant/switch/garage/gpio9/config",  # another node
        "homeassistant/sensor/kitchen/temperature/config",  # not ours to judge
    }
    assert stale_topics(config, retained) == [
        "homeassistant/binary_sensor/kitchen/gpio0/config",
        "homeassistant/switch/kitchen/gpio9/config",
    ]


# -- against the broker ---------------------------------------------------------------------------


def discovery_topic(config: BridgeConfig, kind: str, pin: int) -> str:
    ha = config.homeassistant
    return f"{ha.prefix}/{kind}/{ha.node_id}/gpio{pin}/config"


def test_bridge_publishes_retained_discovery_and_answers_ha_birth(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
) -> None:
    config = bridge_config(broker, malos_port, PINS)
    base, prefix = config.mqtt.base_topic, config.homeassistant.prefix
    start_bridge(config)
    watcher = probe_factory()
    watcher.subscribe(f"{base}/#")
    watcher.wait_for(f"{base}/status", "online")
    late = probe_factory()  # subscribes after the fact: sees what is retained
    late.subscribe(f"{prefix}/#")
    switch = late.wait_for(discovery_topic(config, "switch", 0))
    sensor = late.wait_for(discovery_topic(config, "binary_sensor", 4))
    assert switch.retain and sensor.retain
    assert json.loads(switch.payload) == entity_config(config, config.pins[0])
    assert json.loads(sensor.payload) == entity_config(config, config.pins[1])

    # Home Assistant restarts and announces itself: everything is published again.
    before = len(late.on(discovery_topic(config, "switch", 0)))
    states_before = len(watcher.on(f"{base}/gpio/4/state"))
    late.publish(f"{prefix}/status", "online")
    wait_until(lambda: len(late.on(discovery_topic(config, "switch", 0))) > before)
    wait_until(lambda: len(watcher.on(f"{base}/gpio/4/state")) > states_before)
    wait_until(lambda: len(watcher.on(f"{base}/status")) >= 2, what="availability again")
    assert watcher.last(f"{base}/gpio/4/state").text == "CLOSED"  # type: ignore[union-attr]


def test_stale_entities_are_cleared_at_start_and_other_nodes_are_untouched(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    first = bridge_config(
        broker,
        malos_port,
        [{"pin": 0, "mode": "output"}, {"pin": 3, "mode": "input"}, {"pin": 5, "mode": "output"}],
    )
    prefix, node = first.homeassistant.prefix, first.homeassistant.node_id
    foreign = [f"{prefix}/switch/other_node/gpio5/config", f"{prefix}/sensor/{node}/cpu/config"]
    for topic in foreign:
        probe.publish(topic, '{"name": "not ours"}', retain=True)
    probe.subscribe(f"{prefix}/#")
    runner = start_bridge(first)
    probe.wait_for(discovery_topic(first, "switch", 5))
    runner.stop()

    # Second run: pin 5 removed, pin 3 became an output.
    second = parse_config(
        dataclasses.asdict(first)
        | {"pins": [{"pin": 0, "mode": "output"}, {"pin": 3, "mode": "output"}]}
    )
    start_bridge(second)
    probe.wait_for(discovery_topic(first, "switch", 5), "")
    probe.wait_for(discovery_topic(first, "binary_sensor", 3), "")
    probe.wait_for(discovery_topic(first, "switch", 3))
    fresh = MqttProbe(broker)
    try:
        fresh.subscribe(f"{prefix}/#")
        wait_until(lambda: all(fresh.last(t) for t in foreign), what="foreign configs retained")
        assert fresh.last(discovery_topic(first, "switch", 5)) is None
        assert fresh.last(discovery_topic(first, "switch", 0)) is not None
    finally:
        fresh.close()
        for topic in foreign:
            probe.publish(topic, "", retain=True)


def test_two_boards_on_one_broker_do_not_interfere(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    from .helpers import free_port_block

    other_port = free_port_block()
    with SimulatedDriver("127.0.0.1", other_port) as other_board:
        pins = [{"pin": 0, "mode": "output", "initial": "off"}]
        one = bridge_config(broker, malos_port, pins)
        two = bridge_config(
            broker, other_port, pins, homeassistant={"prefix": one.homeassistant.prefix}
        )
        assert one.client_id != two.client_id
        probe.subscribe("#")
        start_bridge(one)
        start_bridge(two)
        probe.wait_for(f"{one.mqtt.base_topic}/status", "online")
        probe.wait_for(f"{two.mqtt.base_topic}/status", "online")
        probe.publish(f"{one.mqtt.base_topic}/gpio/0/set", "ON")
        probe.wait_for(f"{one.mqtt.base_topic}/gpio/0/state", "ON")
        assert simulator.board.levels() & 1
        assert not other_board.board.levels() & 1
        assert probe.last(f"{two.mqtt.base_topic}/gpio/0/state").text == "OFF"  # type: ignore[union-attr]
        devices = {
            json.loads(probe.wait_for(discovery_topic(c, "switch", 0)).payload)["device"][
                "identifiers"
            ][0]
            for c in (one, two)
        }
        assert devices == {one.homeassistant.node_id, two.homeassistant.node_id}


def test_discovery_off_publishes_nothing_and_clears_nothing(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    config = bridge_config(
        broker, malos_port, [{"pin": 0, "mode": "output"}], homeassistant={"discovery": False}
    )
    prefix, node = config.homeassistant.prefix, config.homeassistant.node_id
    leftover = f"{prefix}/switch/{node}/gpio9/config"
    probe.publish(leftover, '{"name": "left from an earlier run"}', retain=True)
    probe.subscribe(f"{prefix}/#")
    probe.wait_for(leftover)
    start_bridge(config)
    probe.subscribe(f"{config.mqtt.base_topic}/#")
    probe.wait_for(f"{config.mqtt.base_topic}/status", "online")
    probe.publish(f"{prefix}/status", "online")  # an HA birth is not answered either
    probe.publish(f"{config.mqtt.base_topic}/gpio/0/set", "ON")  # a marker after the birth
    probe.wait_for(f"{config.mqtt.base_topic}/gpio/0/state", "ON")
    assert [m.topic for m in probe.messages if m.topic.startswith(prefix)] == [
        leftover,
        f"{prefix}/status",
    ]
    probe.publish(leftover, "", retain=True)
