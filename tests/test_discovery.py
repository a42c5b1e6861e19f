"""Home Assistant discovery: exact payloads, HA restarts, stale entities, several boards."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mqtt_gpio_bridge import __version__
from mqtt_gpio_bridge.config import BridgeConfig, parse_config
from mqtt_gpio_bridge.homeassistant import discovery
from mqtt_gpio_bridge.homeassistant.discovery import (
    MIGRATE,
    Announcement,
    announcements,
    device_config,
    entity_config,
    event_config,
    plan,
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


DIAGNOSTICS = [
    "homeassistant/binary_sensor/kitchen/malos/config",
    "homeassistant/sensor/kitchen/last_error/config",
]
"""The board's two diagnostic entities, after the pins' in the `entity` form."""


def as_document(config: BridgeConfig) -> dict[str, Any]:
    """A config as the document that makes it again: its sections, without those it lacks
    (`everloop: null` in a document means "the LED ring, with the defaults")."""
    return {k: v for k, v in dataclasses.asdict(config).items() if v is not None}


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
    config = kitchen(
        [{"pin": 7, "mode": "output"}, {"pin": 8, "mode": "input"}], discovery_mode="entity"
    )
    topics = [a.topic for a in announcements(config)]
    assert topics == [
        "homeassistant/switch/kitchen/gpio7/config",
        "homeassistant/binary_sensor/kitchen/gpio8/config",
        *DIAGNOSTICS,
    ]
    assert json.loads(announcements(config)[0].payload)["name"] == "GPIO 7"


def test_event_entity_config_is_exact() -> None:
    config = kitchen(
        [{"pin": 4, "mode": "input", "name": "Doorbell", "events": ["long", "single", "double"]}],
        discovery_mode="entity",
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
        *DIAGNOSTICS,
    ]


def test_an_input_without_events_has_no_event_entity_and_its_old_one_is_stale() -> None:
    config = kitchen(
        [{"pin": 4, "mode": "input"}, {"pin": 5, "mode": "input", "events": "single"}],
        discovery_mode="entity",
    )
    assert [a.topic for a in announcements(config)] == [
        "homeassistant/binary_sensor/kitchen/gpio4/config",
        "homeassistant/binary_sensor/kitchen/gpio5/config",
        "homeassistant/event/kitchen/gpio5/config",
        *DIAGNOSTICS,
    ]
    retained = {
        "homeassistant/event/kitchen/gpio4/config",  # its events were removed
        "homeassistant/event/kitchen/gpio5/config",
        "homeassistant/event/garage/gpio4/config",  # another node
    }
    assert stale_topics(config, retained) == ["homeassistant/event/kitchen/gpio4/config"]


def test_number_config_of_a_servo_pin_is_exact() -> None:
    config = kitchen(
        [{"pin": 5, "mode": "servo", "name": "Blinds", "min_angle": 20, "max_angle": 160}],
        discovery_mode="entity",
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
    assert [a.topic for a in announcements(config)] == [
        "homeassistant/number/kitchen/gpio5/config",
        *DIAGNOSTICS,
    ]
    # Defaults 0..180 and the icon; the payload is plain UTF-8 JSON with the degree sign.
    config = kitchen([{"pin": 5, "mode": "servo", "icon": "mdi:valve"}], discovery_mode="entity")
    payload = json.loads(announcements(config)[0].payload)
    assert (payload["min"], payload["max"], payload["icon"]) == (0, 180, "mdi:valve")


def ringed(mode: str = "device", model: str | None = None) -> BridgeConfig:
    """The kitchen board with its LED ring, at the default model unless `model` is given."""
    ha: dict[str, Any] = {"node_id": "kitchen", "device_name": "Kitchen board"}
    if model is not None:
        ha["model"] = model
    return parse_config(
        {
            "mqtt": {"base_topic": "matrix/kitchen", "qos": 1},
            "homeassistant": {**ha, "discovery_mode": mode},
            "pins": PINS[:1],
            "everloop": None,
        }
    )


LIGHT = {
    "name": "LED ring",
    "unique_id": "kitchen_everloop",
    "schema": "json",
    "command_topic": "matrix/kitchen/everloop/set",
    "state_topic": "matrix/kitchen/everloop/state",
    "brightness": True,
    "supported_color_modes": ["rgbw"],
    "effect": True,
    "effect_list": ["rainbow", "spin", "breathe", "blink"],
    "optimistic": False,
    "retain": False,
    "icon": "mdi:led-strip-variant",
    "availability": [
        *AVAILABILITY,
        {
            "topic": "matrix/kitchen/malos/everloop/status",
            "payload_available": "online",
            "payload_not_available": "offline",
        },
    ],
    "availability_mode": "all",
}


def test_the_led_ring_is_a_json_light_available_with_its_driver() -> None:
    config = ringed("entity")
    by_topic = {a.topic: json.loads(a.payload) for a in announcements(config)}
    light = by_topic["homeassistant/light/kitchen/everloop/config"]
    assert light == {
        **LIGHT,
        "qos": 1,
        "device": {**DEVICE, "model": "MATRIX Creator"},
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }
    device = json.loads(announcements(ringed())[0].payload)
    assert device["cmps"]["everloop"] == {"p": "light", **LIGHT}
    assert "everloop" not in json.loads(announcements(kitchen())[0].payload)["cmps"]


def test_the_model_names_the_board_found_unless_the_user_chose_one() -> None:
    def model(config: BridgeConfig, board: str | None) -> str:
        found: str = json.loads(announcements(config, board)[0].payload)["dev"]["model"]
        return found

    assert model(ringed(), None) == "MATRIX Creator"
    assert model(ringed(), "Voice") == "MATRIX Voice"
    assert model(ringed(), "Creator") == "MATRIX Creator"
    assert model(ringed(model="Hall board"), "Voice") == "Hall board"
    entity = [
        json.loads(a.payload)["device"]["model"] for a in announcements(ringed("entity"), "Voice")
    ]
    assert set(entity) == {"MATRIX Voice"}


def sensing(mode: str = "device") -> BridgeConfig:
    return parse_config(
        {
            "mqtt": {"base_topic": "matrix/kitchen", "qos": 1},
            "homeassistant": {"node_id": "kitchen", "discovery_mode": mode},
            "pins": PINS[:1],
            "sensors": {"enabled": ["pressure", "temperature", "uv_index"]},
        }
    )


def availability_of(driver: str) -> dict[str, Any]:
    return {
        "availability": [
            *AVAILABILITY,
            {
                "topic": f"matrix/kitchen/malos/{driver}/status",
                "payload_available": "online",
                "payload_not_available": "offline",
            },
        ],
        "availability_mode": "all",
    }


def test_sensor_configs_are_exact_and_exist_on_a_creator_only() -> None:
    components = json.loads(announcements(sensing(), "Creator")[0].payload)["cmps"]
    assert components["temperature"] == {
        "p": "sensor",
        "name": "Temperature",
        "unique_id": "kitchen_temperature",
        "state_topic": "matrix/kitchen/sensor/temperature/state",
        "device_class": "temperature",
        "unit_of_measurement": "°C",
        "state_class": "measurement",
        "suggested_display_precision": 1,
        **availability_of("humidity"),
    }
    assert components["pressure"] == {
        "p": "sensor",
        "name": "Pressure",
        "unique_id": "kitchen_pressure",
        "state_topic": "matrix/kitchen/sensor/pressure/state",
        "device_class": "pressure",
        "value_template": "{{ (value | float / 100) | round(2) }}",
        "unit_of_measurement": "hPa",
        "state_class": "measurement",
        "suggested_display_precision": 1,
        **availability_of("pressure"),
    }
    assert components["uv_index"] == {
        "p": "sensor",
        "name": "UV index",
        "unique_id": "kitchen_uv_index",
        "state_topic": "matrix/kitchen/sensor/uv_index/state",
        "unit_of_measurement": "UV index",
        "state_class": "measurement",
        "suggested_display_precision": 1,
        "icon": "mdi:sun-wireless",
        "json_attributes_topic": "matrix/kitchen/sensor/uv_index/attributes",
        **availability_of("uv"),
    }
    for board in (None, "Voice"):
        payload = json.loads(announcements(sensing(), board)[0].payload)
        assert [k for k, c in payload["cmps"].items() if c["p"] == "sensor"] == ["last_error"]
    topics = [a.topic for a in announcements(sensing("entity"), "Creator")]
    assert "homeassistant/sensor/kitchen/temperature/config" in topics


def test_sensor_configs_of_an_earlier_run_are_stale_only_when_disabled() -> None:
    retained = {a.topic for a in announcements(sensing("entity"), "Creator")}
    assert stale_topics(sensing("entity"), retained, "Creator") == []
    fewer = parse_config(
        {
            "mqtt": {"base_topic": "matrix/kitchen", "qos": 1},
            "homeassistant": {"node_id": "kitchen", "discovery_mode": "entity"},
            "pins": PINS[:1],
            "sensors": {"enabled": ["temperature"]},
        }
    )
    assert stale_topics(fewer, retained, "Creator") == [
        "homeassistant/sensor/kitchen/pressure/config",
        "homeassistant/sensor/kitchen/uv_index/config",
    ]


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


def test_discovery_off_publishes_nothing_and_clears_only_a_device_config() -> None:
    config = kitchen(discovery=False)
    assert announcements(config) == []
    entity = {"homeassistant/switch/kitchen/gpio9/config": b'{"name": "x"}'}
    assert plan(config, entity) == []
    device = {"homeassistant/device/kitchen/config": b'{"cmps": {}}'}
    assert plan(config, entity | device) == [
        [Announcement("homeassistant/device/kitchen/config", "")]
    ]


def test_stale_topics_only_touch_this_nodes_own_entities() -> None:
    config = kitchen()
    retained = {
        "homeassistant/switch/kitchen/gpio0/config",  # still configured
        "homeassistant/binary_sensor/kitchen/gpio0/config",  # pin 0 became an output
        "homeassistant/switch/kitchen/gpio9/config",  # removed
        "homeassistant/switch/garage/gpio9/config",  # another node
        "homeassistant/sensor/kitchen/temperature/config",  # the `sensors` section removed
        "homeassistant/light/kitchen/everloop/config",  # the `everloop` section removed
        "homeassistant/sensor/kitchen/cpu_temperature/config",  # not ours to judge
    }
    assert stale_topics(config, retained) == [
        "homeassistant/binary_sensor/kitchen/gpio0/config",
        "homeassistant/light/kitchen/everloop/config",
        "homeassistant/sensor/kitchen/temperature/config",
        "homeassistant/switch/kitchen/gpio9/config",
    ]


# -- the device form and moving between the forms ------------------------------------------------


def test_device_config_is_exact() -> None:
    config = kitchen(
        [
            {"pin": 0, "mode": "output", "name": "Relay", "icon": "mdi:power"},
            {"pin": 4, "mode": "input", "name": "Bell", "events": ["single"]},
            {"pin": 5, "mode": "servo", "name": "Blinds", "max_angle": 90},
        ]
    )
    [announcement] = announcements(config)
    assert announcement.topic == "homeassistant/device/kitchen/config"
    assert json.loads(announcement.payload) == {
        "dev": DEVICE,
        "o": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
        "availability": AVAILABILITY,
        "qos": 1,
        "cmps": {
            "gpio0": {
                "p": "switch",
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
                "icon": "mdi:power",
            },
            "gpio4": {
                "p": "binary_sensor",
                "name": "Bell",
                "unique_id": "kitchen_gpio4",
                "state_topic": "matrix/kitchen/gpio/4/state",
                "payload_on": "ON",
                "payload_off": "OFF",
            },
            "gpio4_event": {
                "p": "event",
                "name": "Bell press",
                "unique_id": "kitchen_gpio4_event",
                "state_topic": "matrix/kitchen/gpio/4/event",
                "event_types": ["single"],
                "device_class": "button",
            },
            "gpio5": {
                "p": "number",
                "name": "Blinds",
                "unique_id": "kitchen_gpio5",
                "state_topic": "matrix/kitchen/gpio/5/state",
                "command_topic": "matrix/kitchen/gpio/5/set",
                "min": 0,
                "max": 90,
                "step": 1,
                "mode": "slider",
                "unit_of_measurement": "°",
                "optimistic": False,
                "retain": False,
            },
            "malos": {
                "p": "binary_sensor",
                "name": "MALOS link",
                "unique_id": "kitchen_malos",
                "state_topic": "matrix/kitchen/status",
                "payload_on": "online",
                "payload_off": "offline",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "availability": [],
            },
            "last_error": {
                "p": "sensor",
                "name": "Last driver error",
                "unique_id": "kitchen_last_error",
                "state_topic": "matrix/kitchen/bridge/info",
                "value_template": (
                    "{{ value_json.last_driver_error.text[:255] "
                    "if value_json.last_driver_error else 'none' }}"
                ),
                "icon": "mdi:alert-circle-outline",
                "entity_category": "diagnostic",
                "availability": [],
            },
        },
    }
    assert "object_id" not in announcement.payload  # deprecated by Home Assistant


def test_every_component_has_the_unique_id_of_its_entity_form() -> None:
    config = kitchen([*PINS, {"pin": 6, "mode": "input", "events": "long"}])
    entity = kitchen(
        [*PINS, {"pin": 6, "mode": "input", "events": "long"}], discovery_mode="entity"
    )
    in_entities = {json.loads(a.payload)["unique_id"] for a in announcements(entity)}
    components = json.loads(announcements(config)[0].payload)["cmps"].values()
    assert {c["unique_id"] for c in components} == in_entities


def test_the_diagnostic_entities_stay_available_in_the_entity_form_too() -> None:
    config = kitchen(PINS, discovery_mode="entity")
    by_topic = {a.topic: json.loads(a.payload) for a in announcements(config)}
    link, error = (by_topic[topic] for topic in DIAGNOSTICS)
    assert link["availability"] == error["availability"] == []
    assert link["device"] == error["device"] == DEVICE
    assert (link["entity_category"], link["device_class"]) == ("diagnostic", "connectivity")
    assert error["state_topic"] == "matrix/kitchen/bridge/info"


def entity_form(config: BridgeConfig) -> dict[str, bytes]:
    """What a bridge of the previous release left retained: the per-entity configs."""
    entity = dataclasses.replace(
        config,
        homeassistant=dataclasses.replace(config.homeassistant, discovery_mode="entity"),
    )
    return {a.topic: a.payload.encode() for a in announcements(entity)}


def test_entity_configs_are_migrated_to_the_device_config() -> None:
    config = kitchen(PINS)
    old = entity_form(kitchen([*PINS, {"pin": 9, "mode": "output"}]))
    assert plan(config, old) == [
        [
            Announcement("homeassistant/switch/kitchen/gpio9/config", ""),  # pin 9 removed
            Announcement("homeassistant/binary_sensor/kitchen/gpio4/config", MIGRATE),
            Announcement("homeassistant/binary_sensor/kitchen/malos/config", MIGRATE),
            Announcement("homeassistant/sensor/kitchen/last_error/config", MIGRATE),
            Announcement("homeassistant/switch/kitchen/gpio0/config", MIGRATE),
        ],
        announcements(config),
        [
            Announcement("homeassistant/binary_sensor/kitchen/gpio4/config", ""),
            Announcement("homeassistant/binary_sensor/kitchen/malos/config", ""),
            Announcement("homeassistant/sensor/kitchen/last_error/config", ""),
            Announcement("homeassistant/switch/kitchen/gpio0/config", ""),
        ],
    ]
    # Nothing retained, or only the device config: the device config alone.
    assert plan(config, {}) == [announcements(config)]
    device = {a.topic: a.payload.encode() for a in announcements(config)}
    assert plan(config, device) == [announcements(config)]


def test_a_removed_pin_is_sent_with_only_its_platform_then_left_out() -> None:
    before = kitchen([*PINS, {"pin": 6, "mode": "input", "events": "double"}])
    after = kitchen(PINS)
    retained = {a.topic: a.payload.encode() for a in announcements(before)}
    [[removal], current] = plan(after, retained)
    assert removal.topic == "homeassistant/device/kitchen/config"
    components = json.loads(removal.payload)["cmps"]
    assert components["gpio6"] == {"p": "binary_sensor"}
    assert components["gpio6_event"] == {"p": "event"}
    assert components["gpio0"] == device_config(after)["cmps"]["gpio0"]
    assert current == announcements(after)


def test_the_device_config_is_rolled_back_to_entity_configs() -> None:
    entity = kitchen(PINS, discovery_mode="entity")
    device = {
        a.topic: a.payload.encode()
        for a in announcements(kitchen([*PINS, {"pin": 9, "mode": "output"}]))
    }
    topic = "homeassistant/device/kitchen/config"
    batches = plan(entity, device)
    assert [[(a.topic, a.payload) for a in batch] for batch in batches[:2]] == [
        [(topic, json.dumps(device_config(entity, {"gpio9": "switch"}), separators=(",", ":")))],
        [(topic, MIGRATE)],
    ]
    assert batches[2:] == [announcements(entity), [Announcement(topic, "")]]
    # A rollback cut short left only the migration request: cleared after the configs.
    assert plan(entity, {topic: MIGRATE.encode()}) == [
        [*announcements(entity), Announcement(topic, "")]
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
    config = bridge_config(broker, malos_port, PINS, homeassistant={"discovery_mode": "entity"})
    base, prefix = config.mqtt.base_topic, config.homeassistant.prefix
    start_bridge(config)
    watcher = probe_factory()
    watcher.subscribe(f"{base}/#")
    watcher.subscribe(f"{prefix}/#")
    watcher.wait_for(f"{base}/status", "online")
    watcher.wait_for(discovery_topic(config, "binary_sensor", 4))  # after this node's were read
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
        homeassistant={"discovery_mode": "entity"},
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
        as_document(first) | {"pins": [{"pin": 0, "mode": "output"}, {"pin": 3, "mode": "output"}]}
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
        entity = {"discovery_mode": "entity"}
        one = bridge_config(broker, malos_port, pins, homeassistant=entity)
        two = bridge_config(
            broker,
            other_port,
            pins,
            homeassistant={"prefix": one.homeassistant.prefix, **entity},
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


# -- moving between the forms on the broker -------------------------------------------------------


def with_mode(config: BridgeConfig, mode: str, **ha: Any) -> BridgeConfig:
    return dataclasses.replace(
        config,
        homeassistant=dataclasses.replace(config.homeassistant, discovery_mode=mode, **ha),
    )


def retained_under(broker: Broker, prefix: str, expected: int) -> dict[str, bytes]:
    """What a new subscriber gets under `prefix/#`, once `expected` topics arrived."""
    fresh = MqttProbe(broker)
    try:
        fresh.subscribe(f"{prefix}/#")
        wait_until(lambda: len({m.topic for m in fresh.messages}) >= expected, what="retained")
        return {m.topic: m.payload for m in fresh.messages}
    finally:
        fresh.close()


def first_run(
    start_bridge: Callable[..., BridgeThread], config: BridgeConfig, probe: MqttProbe
) -> None:
    """A bridge that announces itself and stops: what it leaves retained is the next one's."""
    for announcement in announcements(config):
        probe.subscribe(announcement.topic)
    runner = start_bridge(config)
    for announcement in announcements(config):
        probe.wait_for(announcement.topic, announcement.payload)
    runner.stop()
    probe.clear()


def test_entity_configs_of_an_earlier_run_are_migrated_in_order(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    entity = bridge_config(broker, malos_port, PINS, homeassistant={"discovery_mode": "entity"})
    prefix = entity.homeassistant.prefix
    first_run(start_bridge, entity, probe)
    old = [a.topic for a in announcements(entity)]
    device = with_mode(entity, "device")
    [new] = announcements(device)
    probe.subscribe(f"{prefix}/#")
    start_bridge(device)
    for topic in old:
        probe.wait_for(topic, "")
    sequence = [(m.topic, m.text) for m in probe.messages if not m.retain]
    for topic in old:  # the migration request, then the device config, then cleared
        assert sequence.index((topic, MIGRATE)) < sequence.index((new.topic, new.payload))
        assert sequence.index((new.topic, new.payload)) < sequence.index((topic, ""))
    assert retained_under(broker, prefix, 1) == {new.topic: new.payload.encode()}


def test_a_device_config_is_rolled_back_to_entity_configs_on_the_broker(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    device = bridge_config(broker, malos_port, PINS)
    prefix = device.homeassistant.prefix
    first_run(start_bridge, device, probe)
    entity = with_mode(device, "entity")
    topic = discovery.device_topic(device)
    probe.subscribe(f"{prefix}/#")
    start_bridge(entity)
    probe.wait_for(topic, "")
    sequence = [(m.topic, m.text) for m in probe.messages if not m.retain]
    for announcement in announcements(entity):
        position = sequence.index((announcement.topic, announcement.payload))
        assert sequence.index((topic, MIGRATE)) < position < sequence.index((topic, ""))
    expected = {a.topic: a.payload.encode() for a in announcements(entity)}
    assert retained_under(broker, prefix, len(expected)) == expected


def test_a_pin_removed_leaves_the_device_config_after_a_removal_of_its_own(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    before = bridge_config(broker, malos_port, [*PINS, {"pin": 6, "mode": "output"}])
    first_run(start_bridge, before, probe)
    after = parse_config(as_document(before) | {"pins": PINS})
    [current] = announcements(after)
    probe.subscribe(current.topic)
    start_bridge(after)
    probe.wait_for(current.topic, current.payload)
    payloads = [json.loads(m.payload) for m in probe.on(current.topic) if not m.retain]
    assert payloads[0]["cmps"]["gpio6"] == {"p": "switch"}
    assert "gpio6" not in payloads[-1]["cmps"]


def test_discovery_off_clears_the_device_config_of_an_earlier_run(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    device = bridge_config(broker, malos_port, PINS)
    first_run(start_bridge, device, probe)
    topic = discovery.device_topic(device)
    probe.subscribe(topic)
    start_bridge(with_mode(device, "device", discovery=False))
    probe.wait_for(topic, "")


PREVIOUS_RELEASE = Path(__file__).parent / "data" / "previous-release-discovery.json"
"""The discovery configs the release before device discovery (6765696) published for four
pins (an output, an input, an input with press events, a servo), with the prefix `prevprefix`,
node id `prevnode` and base topic `prevbase`: written by that release's code, not this one's."""


def test_the_previous_releases_retained_configs_are_migrated_keeping_every_unique_id(
    start_bridge: Callable[..., BridgeThread],
    broker: Broker,
    malos_port: int,
    simulator: SimulatedDriver,
    probe: MqttProbe,
) -> None:
    pins = [
        {"pin": 0, "mode": "output", "name": "Relay", "initial": "off", "icon": "mdi:power"},
        {"pin": 4, "mode": "input", "name": "Door", "device_class": "door"}
        | {"payload_on": "OPEN", "payload_off": "CLOSED"},
        {"pin": 5, "mode": "input", "name": "Bell", "events": ["single", "long"]},
        {"pin": 6, "mode": "servo", "name": "Blinds"},
    ]
    config = bridge_config(broker, malos_port, pins)
    ha = config.homeassistant
    text = PREVIOUS_RELEASE.read_text()
    for old, new in (
        ("prevprefix", ha.prefix),
        ("prevnode", ha.node_id),
        ("prevbase", config.mqtt.base_topic),
    ):
        text = text.replace(old, new)
    previous = json.loads(text)
    for topic, payload in previous.items():
        probe.publish(topic, json.dumps(payload), retain=True)
    probe.subscribe(f"{ha.prefix}/#")
    for topic in previous:
        probe.wait_for(topic)
    start_bridge(config)
    for topic in previous:
        probe.wait_for(topic, "")
        assert MIGRATE in [m.text for m in probe.on(topic)]
    device = json.loads(probe.wait_for(discovery.device_topic(config)).payload)
    unique_ids = {c["unique_id"] for c in device["cmps"].values()}
    assert {p["unique_id"] for p in previous.values()} <= unique_ids
    # Every old entity is the same entity in the device config, field for field.
    components = {c["unique_id"]: c for c in device["cmps"].values()}
    for payload in previous.values():
        own = {k: v for k, v in payload.items() if k not in ("device", "origin", "availability")}
        kept = {k: v for k, v in components[payload["unique_id"]].items() if k != "p"}
        assert own | {"qos": device["qos"]} == kept | {"qos": device["qos"]}
    assert retained_under(broker, ha.prefix, 1) == {
        discovery.device_topic(config): probe.last(discovery.device_topic(config)).payload  # type: ignore[union-attr]
    }
