"""Home Assistant MQTT discovery payloads, built from the config by pure functions.

Each configured pin becomes one entity of one device (the board): outputs are `switch`
entities, inputs `binary_sensor` entities, servo pins `number` entities (a slider in degrees),
and an input with press `events` is also an `event` entity.

Two forms (`homeassistant.discovery_mode`): `device`, one retained message for the whole board
at `<prefix>/device/<node_id>/config` with every entity under `cmps` (Home Assistant 2024.11
and later), and `entity`, one message per entity at `<prefix>/<component>/<node_id>/gpio<pin>/
config`. A component's key in `cmps` is the per-entity topic's object id (`gpio<pin>`), so
that Home Assistant sees the same discovery id in both forms and queues a migration's steps
for an entity one after the other; the event entity of an input, which shares that object id
with the input's `binary_sensor`, is `gpio<pin>_event`.

`plan()` decides what to publish at each connection from the configs of this node found
retained on the broker: moving between the forms follows Home Assistant's migration and
rollback (a `{"migrate_discovery": true}` on the old topics, which unloads the entities but
keeps them in its registry, then the new configs with the same unique ids, then the old topics
cleared), so every entity keeps its entity id, name, area and history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import BridgeConfig, PinSpec
from ..config.model import DEFAULT_MODEL
from ..malos.everloop.light import EFFECTS
from ..malos.sensors.catalog import SENSORS, SensorKind
from ..mqtt.topics import Topics

MANUFACTURER = "MATRIX Labs"
EVENT = "event"
NUMBER = "number"
DEVICE = "device"
SENSOR = "sensor"
BINARY_SENSOR = "binary_sensor"
LIGHT = "light"
_COMPONENTS = ("switch", BINARY_SENSOR, NUMBER, EVENT, SENSOR, LIGHT)
MALOS_LINK = "malos"
LAST_ERROR = "last_error"
"""Object ids of the board's two diagnostic entities."""
EVERLOOP = "everloop"
"""Object id of the LED ring's light."""
_OBJECT_ID = re.compile("|".join([r"gpio[0-9]{1,2}", MALOS_LINK, LAST_ERROR, EVERLOOP, *SENSORS]))
_DISPLAY: dict[tuple[str | None, str | None], str] = {
    ("Pa", "hPa"): "{{ (value | float / 100) | round(2) }}"
}
"""How a value published in one unit is shown in another in Home Assistant."""
CREATOR = "Creator"
BOARD_MODELS = {CREATOR: "MATRIX Creator", "Voice": "MATRIX Voice"}
"""The device's model once the board is known (unless `homeassistant.model` is set to something
else than its default)."""
_LAST_ERROR_TEMPLATE = (
    "{{ value_json.last_driver_error.text[:255] if value_json.last_driver_error else 'none' }}"
)
MIGRATE = json.dumps({"migrate_discovery": True})
"""Home Assistant's request to unload an entity but keep it in its registry, sent on the topic
it was discovered on, before the same unique id arrives in the other form."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """One retained discovery message (an empty payload clears the topic)."""

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


def device_topic(config: BridgeConfig) -> str:
    """`<prefix>/device/<node_id>/config`: the whole board in `device` mode."""
    ha = config.homeassistant
    return f"{ha.prefix}/{DEVICE}/{ha.node_id}/config"


def own_configs_filter(config: BridgeConfig) -> str:
    """The subscription that finds every retained per-entity config of this node, no more
    (its device config, one level shorter, is `device_topic`)."""
    ha = config.homeassistant
    return f"{ha.prefix}/+/{ha.node_id}/+/config"


def _name(spec: PinSpec) -> str:
    return spec.name if spec.name is not None else f"GPIO {spec.pin}"


def _availability(config: BridgeConfig) -> list[dict[str, str]]:
    return [
        {
            "topic": Topics(config.mqtt.base_topic).status,
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]


def _device(config: BridgeConfig, board: str | None = None) -> dict[str, Any]:
    ha = config.homeassistant
    model = ha.model
    if board in BOARD_MODELS and model == DEFAULT_MODEL:
        model = BOARD_MODELS[board]
    return {
        "identifiers": [ha.node_id],
        "name": ha.device_name,
        "manufacturer": MANUFACTURER,
        "model": model,
        "sw_version": __version__,
    }


# No `support_url` yet: the project has no public home to point at.
_ORIGIN = {"name": "mqtt-gpio-bridge", "sw_version": __version__}


def _common(config: BridgeConfig, board: str | None = None) -> dict[str, Any]:
    """What every entity of the board carries: availability, QoS, the device, the origin."""
    return {
        "availability": _availability(config),
        "qos": config.mqtt.qos,
        "device": _device(config, board),
        "origin": dict(_ORIGIN),
    }


def entity_config(config: BridgeConfig, spec: PinSpec) -> dict[str, Any]:
    """The per-entity discovery payload of one pin, as a JSON-ready dict."""
    return {**_pin_fields(config, spec), **_common(config)}


def _pin_fields(config: BridgeConfig, spec: PinSpec) -> dict[str, Any]:
    """A pin's own fields, without what every entity of the board shares."""
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
    """The per-entity discovery payload of an input's press events (an `event` entity)."""
    return {**_event_fields(config, spec), **_common(config)}


def _event_fields(config: BridgeConfig, spec: PinSpec) -> dict[str, Any]:
    return {
        "name": f"{_name(spec)} press",
        "unique_id": f"{config.homeassistant.node_id}_gpio{spec.pin}_event",
        "state_topic": Topics(config.mqtt.base_topic).event(spec.pin),
        "event_types": list(spec.events),
        "device_class": "button",
    }


def _diagnostics(config: BridgeConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """The board's diagnostic entities: whether it reaches MALOS, and the last driver error.

    Both stay available while the bridge is away (an empty `availability`): the link then
    reads disconnected, and the last error is still worth reading.
    """
    topics = Topics(config.mqtt.base_topic)
    node = config.homeassistant.node_id
    diagnostic = {"entity_category": "diagnostic", "availability": []}
    link = {
        "name": "MALOS link",
        "unique_id": f"{node}_{MALOS_LINK}",
        # `online` while the bridge is connected to the broker and MALOS sends updates.
        "state_topic": topics.status,
        "payload_on": "online",
        "payload_off": "offline",
        "device_class": "connectivity",
        **diagnostic,
    }
    error = {
        "name": "Last driver error",
        "unique_id": f"{node}_{LAST_ERROR}",
        "state_topic": topics.bridge_info,
        "value_template": _LAST_ERROR_TEMPLATE,
        "icon": "mdi:alert-circle-outline",
        **diagnostic,
    }
    return [(BINARY_SENSOR, MALOS_LINK, link), (SENSOR, LAST_ERROR, error)]


def _driver_availability(config: BridgeConfig, driver: str) -> dict[str, Any]:
    """An entity of a MALOS driver other than GPIO: available while the bridge is (`status`)
    and that driver sends updates."""
    own = {
        "topic": Topics(config.mqtt.base_topic).driver_status(driver),
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    return {"availability": [*_availability(config), own], "availability_mode": "all"}


def _light_fields(config: BridgeConfig) -> dict[str, Any]:
    """The LED ring: a light in Home Assistant's JSON schema, RGBW, with the bridge's effects."""
    topics = Topics(config.mqtt.base_topic)
    return {
        "name": "LED ring",
        "unique_id": f"{config.homeassistant.node_id}_{EVERLOOP}",
        "schema": "json",
        "command_topic": topics.everloop_set,
        "state_topic": topics.everloop_state,
        "brightness": True,
        "supported_color_modes": ["rgbw"],
        "effect": True,
        "effect_list": list(EFFECTS),
        "optimistic": False,
        "retain": False,
        "icon": "mdi:led-strip-variant",
        **_driver_availability(config, EVERLOOP),
    }


def _sensor_fields(config: BridgeConfig, kind: SensorKind) -> dict[str, Any]:
    """One sensor value of the board: a `sensor` entity, available with its MALOS driver."""
    topics = Topics(config.mqtt.base_topic)
    fields: dict[str, Any] = {
        "name": kind.label,
        "unique_id": f"{config.homeassistant.node_id}_{kind.name}",
        "state_topic": topics.sensor_state(kind.name),
    }
    if kind.device_class is not None:
        fields["device_class"] = kind.device_class
    unit = kind.unit
    template = _DISPLAY.get((kind.unit, kind.display_unit))
    if template is not None:
        fields["value_template"] = template
        unit = kind.display_unit
    fields |= {
        "unit_of_measurement": unit,
        "state_class": "measurement",
        "suggested_display_precision": kind.suggested_display_precision,
    }
    if kind.icon is not None:
        fields["icon"] = kind.icon
    if kind.name == "uv_index":
        fields["json_attributes_topic"] = topics.sensor_attributes(kind.name)
    return fields | _driver_availability(config, kind.driver)


def _entities(
    config: BridgeConfig, board: str | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, key, own fields) of every entity, pins first; `key` is the object id of
    its per-entity topic and its key in the device config's `cmps`. Sensors only once the
    `board` is known to be a Creator."""
    found = []
    for spec in config.pins:
        found.append((component(spec), f"gpio{spec.pin}", _pin_fields(config, spec)))
        if spec.events:
            found.append((EVENT, f"gpio{spec.pin}_{EVENT}", _event_fields(config, spec)))
    if config.everloop is not None:
        found.append((LIGHT, EVERLOOP, _light_fields(config)))
    if board == CREATOR:
        found += [(SENSOR, kind.name, _sensor_fields(config, kind)) for kind in _enabled(config)]
    return found + _diagnostics(config)


def _enabled(config: BridgeConfig) -> list[SensorKind]:
    """The sensor values enabled, in the catalog's order."""
    if config.sensors is None:
        return []
    return [kind for name, kind in SENSORS.items() if name in config.sensors.enabled]


def _entity_configs(
    config: BridgeConfig, board: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(per-entity topic, payload) of every entity: the `entity` form."""
    common = _common(config, board)
    ha = config.homeassistant
    return [
        # The event entity's topic has the pin's object id: <prefix>/event/<node>/gpio<pin>.
        (f"{ha.prefix}/{kind}/{ha.node_id}/{key.removesuffix('_' + EVENT)}/config", common | fields)
        for kind, key, fields in _entities(config, board)
    ]


def device_config(
    config: BridgeConfig, removed: dict[str, str] | None = None, board: str | None = None
) -> dict[str, Any]:
    """The `device` form: the board, its availability and origin once, and every entity under
    `cmps` with its platform `p`. `removed` (key -> platform): components sent with only
    their platform, which Home Assistant removes. `board` ("Creator", "Voice"): the board
    found, which names the device's model."""
    components: dict[str, dict[str, Any]] = {
        key: {"p": kind, **fields} for kind, key, fields in _entities(config, board)
    }
    for key, kind in (removed or {}).items():
        components[key] = {"p": kind}
    return {
        "dev": _device(config, board),
        "o": dict(_ORIGIN),
        "availability": _availability(config),
        "qos": config.mqtt.qos,
        "cmps": components,
    }


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def announcements(config: BridgeConfig, board: str | None = None) -> list[Announcement]:
    """Every discovery config this bridge publishes, in its `discovery_mode` (none when
    discovery is off), for the `board` found (None: not known)."""
    ha = config.homeassistant
    if not ha.discovery:
        return []
    if ha.discovery_mode == DEVICE:
        return [Announcement(device_topic(config), _json(device_config(config, board=board)))]
    return [
        Announcement(topic, _json(payload)) for topic, payload in _entity_configs(config, board)
    ]


def _own_entity_topics(config: BridgeConfig, topics: Iterable[str]) -> list[str]:
    """The per-entity topics among `topics` that this bridge publishes or published: a
    `switch`/`binary_sensor`/`number`/`event`/`sensor` config named `gpio<pin>` (or one of the
    diagnostic entities' names) under this node id. Anything else, and every other node's
    configs, is left alone."""
    ha = config.homeassistant
    prefix_parts = ha.prefix.split("/")
    own = []
    for topic in sorted(topics):
        parts = topic.split("/")
        rest = parts[len(prefix_parts) :]
        if (
            parts[: len(prefix_parts)] == prefix_parts
            and len(rest) == 4
            and rest[0] in _COMPONENTS
            and rest[1] == ha.node_id
            and _OBJECT_ID.fullmatch(rest[2])
            and rest[3] == "config"
        ):
            own.append(topic)
    return own


def stale_topics(config: BridgeConfig, retained: set[str], board: str | None = None) -> list[str]:
    """Per-entity topics of this node found retained that no pin owns in the `entity` form: a
    pin removed from the config, one that changed mode, or an input whose `events` were
    removed."""
    wanted = {topic for topic, _ in _entity_configs(config, board)}
    return _own_entity_topics(config, retained - wanted)


def _device_components(payload: bytes) -> dict[str, str] | None:
    """key -> platform of a retained device config; None if it is none (empty, a migration
    request, or not one of ours)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    components = document.get("cmps") if isinstance(document, dict) else None
    if not isinstance(components, dict):
        return None
    return {
        str(key): str(value.get("p"))
        for key, value in components.items()
        if isinstance(value, dict) and value.get("p")
    }


def plan(
    config: BridgeConfig, retained: dict[str, bytes], board: str | None = None
) -> list[list[Announcement]]:
    """What to publish after a connection, given this node's discovery configs found retained
    (topic -> payload; per-entity topics and the device topic): batches, to be published one
    after the other with a pause between two, so that Home Assistant has handled a batch
    before the next one arrives.

    - `device` mode: per-entity configs of pins still configured are migrated (the migration
      request on each, then the device config, then each cleared); those of pins gone are
      cleared. Components of a retained device config that are gone are first sent with only
      their platform.
    - `entity` mode: a retained device config is rolled back (gone components removed, the
      migration request on the device topic, the per-entity configs, the device topic
      cleared); stale per-entity configs are cleared.
    - discovery off: a retained device config is cleared (per-entity configs are left alone).
    """
    ha = config.homeassistant
    found = {topic: payload for topic, payload in retained.items() if payload}
    device = device_topic(config)
    previous = _device_components(found[device]) if device in found else None
    if not ha.discovery:
        return [[Announcement(device, "")]] if device in found else []
    wanted = {key for _, key, _ in _entities(config, board)}
    gone = {key: kind for key, kind in (previous or {}).items() if key not in wanted}
    current = announcements(config, board)
    if ha.discovery_mode == DEVICE:
        old = _own_entity_topics(config, found)
        wanted_topics = {topic for topic, _ in _entity_configs(config, board)}
        migrating = [topic for topic in old if topic in wanted_topics]
        first = [Announcement(t, "") for t in old if t not in wanted_topics]
        first += [Announcement(t, MIGRATE) for t in migrating]
        if gone:
            first.append(Announcement(device, _json(device_config(config, gone, board))))
        last = [Announcement(t, "") for t in migrating]
        return [batch for batch in (first, current, last) if batch]
    batches: list[list[Announcement]] = []
    stale = [Announcement(t, "") for t in stale_topics(config, set(found), board)]
    if previous is None:
        # A device topic that holds no config is what a rollback cut short left: cleared.
        leftover = [Announcement(device, "")] if device in found else []
        return [stale + current + leftover]
    if gone:
        batches.append([Announcement(device, _json(device_config(config, gone, board)))])
    batches += [[*stale, Announcement(device, MIGRATE)], current, [Announcement(device, "")]]
    return batches
