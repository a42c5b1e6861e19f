"""Home Assistant MQTT discovery payloads, built from the config by pure functions.

Each configured pin becomes one entity of one device (the board): outputs are `switch`
entities, inputs `binary_sensor` entities, servo pins `number` entities (a slider in degrees),
and an input with press `events` is also an `event` entity, in the per-entity discovery form
that every Home Assistant version understands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import BridgeConfig, PinSpec
from ..mqtt.topics import Topics

MANUFACTURER = "MATRIX Labs"
EVENT = "event"
NUMBER = "number"
_COMPONENTS = ("switch", "binary_sensor", NUMBER, EVENT)
_OBJECT_ID = re.compile(r"gpio([0-9]{1,2})")


@dataclass(frozen=True, slots=True)
class Announcement:
    """One retained discovery message."""

    topic: str
    payload: str


def component(spec: PinSpec) -> str:
    """The Home Assistant component of a pin: `switch` for outputs, `number` for servos, else
    `binary_sensor`."""
    if spec.is_servo:
        return NUMBER
    return "switch" if spec.is_output else "binary_sensor"


def config_topic(config: BridgeConfig, kind: str, pin: int) -> str:
    """`<prefix>/<component>/<node_id>/gpio<pin>/config`."""
    ha = config.homeassistant
    return f"{ha.prefix}/{kind}/{ha.node_id}/gpio{pin}/config"


def own_configs_filter(config: BridgeConfig) -> str:
    """The subscription that finds every retained discovery config of this node, no more."""
    ha = config.homeassistant
    return f"{ha.prefix}/+/{ha.node_id}/+/config"


def _name(spec: PinSpec) -> str:
    return spec.name if spec.name is not None else f"GPIO {spec.pin}"


def _common(config: BridgeConfig) -> dict[str, Any]:
    """What every entity of the board carries: availability, QoS, the device, the origin."""
    ha = config.homeassistant
    topics = Topics(config.mqtt.base_topic)
    return {
        "availability": [
            {
                "topic": topics.status,
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        "qos": config.mqtt.qos,
        "device": {
            "identifiers": [ha.node_id],
            "name": ha.device_name,
            "manufacturer": MANUFACTURER,
            "model": ha.model,
            "sw_version": __version__,
        },
        # No `support_url` yet: the project has no public home to point at.
        "origin": {"name": "mqtt-gpio-bridge", "sw_version": __version__},
    }


def entity_config(config: BridgeConfig, spec: PinSpec) -> dict[str, Any]:
    """The discovery payload of one pin, as a JSON-ready dict."""
    topics = Topics(config.mqtt.base_topic)
    payload: dict[str, Any] = {
        "name": _name(spec),
        "unique_id": f"{config.homeassistant.node_id}_gpio{spec.pin}",
        "state_topic": topics.state(spec.pin),
    }
    if spec.is_servo:
        # The state is the angle last sent: a servo's position cannot be read.
        payload |= {
            "command_topic": topics.command(spec.pin),
            "min": spec.lowest_angle,
            "max": spec.highest_angle,
            "step": 1,
            "mode": "slider",
            "unit_of_measurement": "°",
            "optimistic": False,
            "retain": False,
        }
    else:
        payload |= {"payload_on": spec.payload_on, "payload_off": spec.payload_off}
    payload |= _common(config)
    if spec.is_output:
        payload |= {
            "command_topic": topics.command(spec.pin),
            "state_on": spec.payload_on,
            "state_off": spec.payload_off,
            "optimistic": False,
            "retain": False,
        }
    if spec.device_class is not None:
        payload["device_class"] = spec.device_class
    if spec.icon is not None:
        payload["icon"] = spec.icon
    return payload


def event_config(config: BridgeConfig, spec: PinSpec) -> dict[str, Any]:
    """The discovery payload of an input's press events (an `event` entity), JSON-ready."""
    return {
        "name": f"{_name(spec)} press",
        "unique_id": f"{config.homeassistant.node_id}_gpio{spec.pin}_event",
        "state_topic": Topics(config.mqtt.base_topic).event(spec.pin),
        "event_types": list(spec.events),
        "device_class": "button",
        **_common(config),
    }


def _entities(config: BridgeConfig) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) of every entity, in pin order."""
    found = []
    for spec in config.pins:
        found.append((config_topic(config, component(spec), spec.pin), entity_config(config, spec)))
        if spec.events:
            found.append((config_topic(config, EVENT, spec.pin), event_config(config, spec)))
    return found


def announcements(config: BridgeConfig) -> list[Announcement]:
    """Every discovery config this bridge publishes (none when discovery is off)."""
    if not config.homeassistant.discovery:
        return []
    return [
        Announcement(topic, json.dumps(payload, separators=(",", ":")))
        for topic, payload in _entities(config)
    ]


def stale_topics(config: BridgeConfig, retained: set[str]) -> list[str]:
    """Discovery topics of this node found retained on the broker that no pin owns any more.

    Only `switch`/`binary_sensor`/`number`/`event` configs named `gpio<pin>` under this node id
    are considered: a pin removed from the config, one that changed mode, or an input whose
    `events` were removed. Anything else, and every other node's configs, is
    left alone.
    """
    if not config.homeassistant.discovery:
        return []
    wanted = {topic for topic, _ in _entities(config)}
    stale = []
    for topic in sorted(retained - wanted):
        parts = topic.split("/")
        prefix_parts = config.homeassistant.prefix.split("/")
        rest = parts[len(prefix_parts) :]
        if (
            parts[: len(prefix_parts)] == prefix_parts
            and len(rest) == 4
            and rest[0] in _COMPONENTS
            and rest[1] == config.homeassistant.node_id
            and _OBJECT_ID.fullmatch(rest[2])
            and rest[3] == "config"
        ):
            stale.append(topic)
    return stale
