"""The configuration: frozen dataclasses, one per section of the YAML file (the `mqtt`
section is in `broker.py`), and `BridgeConfig`, the whole file.

Each field is declared once: its type, its rule (in `Annotated[...]`, see `rules.py`), its
default and its description (`metadata=_doc(...)`, from which `reference.py` writes
docs/configuration.md). Direct construction checks the cross-field rules in `__post_init__`;
`parse_config` checks it all.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import voluptuous as vol

from ..malos.gpio.codec import PIN_COUNT
from ..malos.gpio.commands import MAX_PULSE_MS, MIN_PULSE_MS
from ..malos.sensors.catalog import DEFAULT_ENABLED, SENSORS
from ..malos.servo.codec import MAX_ANGLE
from .broker import MqttConfig, TlsConfig
from .kinds import (
    Flag,
    Host,
    NonEmptyText,
    OptionalName,
    OptionalText,
    Payload,
    Seconds,
    TopicPrefix,
    _doc,
)
from .links import LinkSpec, _links, link_problems
from .messages import Loc, _describe, _show
from .password import _password_readable
from .rules import _choice, _integer, _on_off, _refuse_broken, _Rule, _seconds, _shows, _text, _word
from .schema import _section, _validate_each
from .strings import MAX_NODE_ID_LENGTH, MQTT_MAX_BYTES, _discovery_topic, _node_id

__all__ = [
    "BridgeConfig",
    "EverloopConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "LinkSpec",
    "MalosConfig",
    "MqttConfig",
    "PinSpec",
    "SensorsConfig",
    "TlsConfig",
    "default_node_id",
]

# The driver starts with a 1.0 s delay between updates and only applies a new delay after
# the sleep in progress, so anything shorter would call the driver gone right at start.
MIN_OFFLINE_AFTER = 1.5

PressEvent = Literal["single", "double", "long"]
PRESS_EVENTS: tuple[PressEvent, ...] = ("single", "double", "long")
DEFAULT_DOUBLE_PRESS_MS = 400
DEFAULT_LONG_PRESS_MS = 800
MIN_PRESS_MS = 20
MAX_PRESS_MS = 60_000
MAX_DEBOUNCE_MS = 10_000
MIN_ANGLE = 0
DEFAULT_SERVO_PORT = 20045
# The MALOS drivers' base ports (matrix-creator-malos `malos.cpp`).
DEFAULT_EVERLOOP_PORT = 20021
DEFAULT_HUMIDITY_PORT = 20017
DEFAULT_PRESSURE_PORT = 20025
DEFAULT_UV_PORT = 20029
DEFAULT_IMU_PORT = 20013
MAX_FPS = 30
DEFAULT_MODEL = "MATRIX Creator"

PinMode = Literal["input", "output", "servo"]
_A_PIN = {"input": "an input", "output": "an output", "servo": "a servo pin"}
"""How problem lines name a pin of each mode: "pin 4 is a servo pin"."""

# 200 updates a second: the fastest the bridge asks the driver for (see update_interval).
MIN_UPDATE_INTERVAL = 0.005
MIN_HEALTH_INTERVAL = 0.1


def _port_rule(key: str) -> _Rule:
    """The rule of a driver's first port: the driver uses it and the three after it."""
    return _Rule(_integer(1, 65532, f" (the driver uses {key} to {key} + 3)"))


@dataclass(frozen=True, slots=True, kw_only=True)
class MalosConfig:
    """Where the MALOS drivers listen (GPIO, and servo for `mode: servo` pins) and how the
    bridge paces the GPIO driver."""

    host: Host = field(
        default="127.0.0.1",
        metadata=_doc(
            "where the MALOS drivers listen: the board's address when the bridge runs "
            "on another machine (then set `homeassistant.node_id` too)"
        ),
    )
    # The driver uses four consecutive ports: config, keep-alive, errors, updates.
    base_port: Annotated[int, _port_rule("base_port")] = field(
        default=20049,
        metadata=_doc(
            "the GPIO driver's first port: it uses `base_port` to `base_port + 3` (config, "
            "keep-alive, errors, updates)"
        ),
    )
    servo_port: Annotated[int, _port_rule("servo_port")] = field(
        default=DEFAULT_SERVO_PORT,
        metadata=_doc(
            "the MALOS servo driver's first port; contacted only when a pin has `mode: servo`. "
            "The driver uses `servo_port` to `servo_port + 3`, which must not overlap "
            "`base_port` to `base_port + 3`"
        ),
    )
    everloop_port: Annotated[int, _port_rule("everloop_port")] = field(
        default=DEFAULT_EVERLOOP_PORT,
        metadata=_doc(
            "the MALOS Everloop (LED ring) driver's first port; contacted when `everloop` or "
            "`sensors` is set (its updates tell a Creator from a Voice)"
        ),
    )
    humidity_port: Annotated[int, _port_rule("humidity_port")] = field(
        default=DEFAULT_HUMIDITY_PORT,
        metadata=_doc(
            "the MALOS humidity driver's first port (humidity and temperature); contacted only "
            "when `sensors.enabled` names one of its values"
        ),
    )
    pressure_port: Annotated[int, _port_rule("pressure_port")] = field(
        default=DEFAULT_PRESSURE_PORT,
        metadata=_doc(
            "the MALOS pressure driver's first port; contacted only when `sensors.enabled` "
            "names `pressure`"
        ),
    )
    uv_port: Annotated[int, _port_rule("uv_port")] = field(
        default=DEFAULT_UV_PORT,
        metadata=_doc(
            "the MALOS UV driver's first port; contacted only when `sensors.enabled` names "
            "`uv_index`"
        ),
    )
    imu_port: Annotated[int, _port_rule("imu_port")] = field(
        default=DEFAULT_IMU_PORT,
        metadata=_doc(
            "the MALOS IMU driver's first port (orientation, acceleration, gyro, magnetometer); "
            "contacted only when `sensors.enabled` names one of its values"
        ),
    )
    update_interval: Annotated[
        float,
        _Rule(
            _seconds(
                maximum=60,
                minimum=MIN_UPDATE_INTERVAL,
                why=(
                    ": the driver keeps whole milliseconds, turns anything below 0.001 s into "
                    "0 ms and then sends updates in a busy loop that takes a core of the Pi"
                ),
            )
        ),
    ] = field(
        default=0.1,
        metadata=_doc(
            "seconds between driver updates (sent as `delay_between_updates`); the driver "
            "keeps whole milliseconds"
        ),
    )
    keepalive_interval: Seconds = field(
        default=1.0,
        metadata=_doc("seconds between keep-alive pings; must be below `ping_timeout`"),
    )
    ping_timeout: Seconds = field(
        default=5.0,
        metadata=_doc(
            "sent as `timeout_after_last_ping`: the driver stops its updates this long after "
            "the last ping"
        ),
    )
    offline_after: Annotated[
        float,
        _Rule(
            _seconds(
                minimum=MIN_OFFLINE_AFTER,
                why=" (the driver starts with 1 s between updates and would look offline at start)",
            )
        ),
    ] = field(
        default=3.0,
        metadata=_doc(
            "seconds without a driver update before `status` reads `offline`; more than "
            "`update_interval` (the driver starts with 1 s between updates)"
        ),
    )

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
        ports = self.driver_ports()
        for index, (key, port) in enumerate(ports):
            for earlier, earlier_port in ports[:index]:
                if abs(port - earlier_port) <= 3:
                    problems.append(
                        (
                            (key,),
                            f"the {_DRIVER_OF_PORT[key]} driver's ports {port}..{port + 3} "
                            f"overlap the {_DRIVER_OF_PORT[earlier]} driver's "
                            f"{earlier_port}..{earlier_port + 3} (malos.{earlier}); each "
                            "driver needs four ports of its own",
                        )
                    )
                    break
        if self.keepalive_interval >= self.ping_timeout:
            problems.append(
                (
                    ("keepalive_interval",),
                    f"must be less than malos.ping_timeout ({self.ping_timeout:g} s), or the "
                    "driver stops sending updates between two pings",
                )
            )
        if self.offline_after <= self.update_interval:
            problems.append(
                (
                    ("offline_after",),
                    f"must be greater than malos.update_interval ({self.update_interval:g} s), "
                    "or every pause between updates would look like an outage",
                )
            )
        _refuse_broken(problems)

    def driver_ports(self) -> list[tuple[str, int]]:
        """Each driver's port key and first port, GPIO first."""
        return [(key, getattr(self, key)) for key in _DRIVER_OF_PORT]


_DRIVER_OF_PORT = {
    "base_port": "GPIO",
    "servo_port": "servo",
    "everloop_port": "Everloop",
    "humidity_port": "humidity",
    "pressure_port": "pressure",
    "uv_port": "UV",
    "imu_port": "IMU",
}
"""Each `malos` port key and the driver it belongs to, as problem lines name it."""


def default_node_id() -> str:
    """Derive a Home Assistant node id from this machine's host name.

    Returns:
        `matrix_` plus the lower-cased host name with every run of characters outside
        `[a-z0-9_]` replaced by one `_`, e.g. `matrix_raspberrypi`; at most
        `MAX_NODE_ID_LENGTH` characters.
    """
    slug = re.sub(r"[^a-z0-9_]+", "_", socket.gethostname().lower())
    slug = re.sub(r"_+", "_", slug).strip("_")
    return f"matrix_{slug}"[:MAX_NODE_ID_LENGTH].rstrip("_") if slug else "matrix"


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeAssistantConfig:
    """Home Assistant MQTT discovery."""

    discovery: Flag = field(default=True, metadata=_doc("Home Assistant MQTT discovery"))
    discovery_mode: Annotated[
        Literal["device", "entity"], _Rule(_word, _choice("device", "entity"))
    ] = field(
        default="device",
        metadata=_doc(
            "`device`: one retained config for the whole board at "
            "`<prefix>/device/<node_id>/config` (Home Assistant 2024.11 and later); `entity`: one "
            "config per entity, `<prefix>/<component>/<node_id>/gpio<pin>/config` (older Home "
            "Assistant, and other consumers of Home Assistant-style discovery). Switching either "
            "way keeps every entity id (docs/home-assistant.md)"
        ),
    )
    prefix: TopicPrefix = field(
        default="homeassistant",
        metadata=_doc(
            "the discovery prefix; the same rules as `mqtt.base_topic`, and "
            "`<prefix>/binary_sensor/<node_id>/gpio15/config` must fit in MQTT's 65535 bytes"
        ),
    )
    node_id: Annotated[str, _Rule(_text, _node_id)] = field(
        default_factory=default_node_id,
        metadata=_doc(
            "identifies the board in discovery topics, unique ids and the default client id; "
            "derived from the host name, so two boards never collide by default",
            "`matrix_<hostname>`",
        ),
    )
    device_name: NonEmptyText = field(
        default="MATRIX GPIO", metadata=_doc("the device's name in Home Assistant")
    )
    model: NonEmptyText = field(
        default=DEFAULT_MODEL,
        metadata=_doc(
            "the device's model in Home Assistant; left at its default, it becomes the board "
            "found (`MATRIX Voice` on a Voice) when `everloop` or `sensors` is set"
        ),
    )

    def __post_init__(self) -> None:
        # The prefix's own rule cannot know the node id, which is part of the longest topic.
        room = MQTT_MAX_BYTES - len(_discovery_topic("", self.node_id).encode("utf-8"))
        size = len(self.prefix.encode("utf-8", "surrogatepass"))
        if size > room:
            longest = _discovery_topic("<homeassistant.prefix>", self.node_id)
            _refuse_broken(
                [
                    (
                        ("prefix",),
                        f"must be at most {room} bytes in UTF-8 (so that {longest} fits in "
                        f"MQTT's {MQTT_MAX_BYTES}), got {size}",
                    )
                ]
            )


MAX_HEALTH_INTERVAL = 86_400


@_shows(f"`0` (off) or seconds {MIN_HEALTH_INTERVAL:g}..{MAX_HEALTH_INTERVAL:g}")
def _health_interval(value: object, key: str) -> float:
    # 0 turns the messages off; anything else is a period the poll loop can keep.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise vol.Invalid(f"must be a number of seconds (0: off), got {_describe(value)}")
    if value == 0:
        return 0.0
    return float(
        _seconds(
            maximum=MAX_HEALTH_INTERVAL,
            minimum=MIN_HEALTH_INTERVAL,
            why=" (or 0: no health messages)",
        )(value, key)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthConfig:
    """The bridge's health messages on `<base>/bridge/health` (docs/bridge-api.md)."""

    interval: Annotated[float, _Rule(_health_interval)] = field(
        default=60.0,
        metadata=_doc(
            "seconds between two health messages (uptime, memory, CPU, counters); `0`: none "
            "(a `health_check` request still answers)",
            "`60`",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EverloopConfig:
    """The LED ring as a Home Assistant light (docs/everloop.md). Absent: no light (the
    Everloop driver is still asked for the board's LED count when `sensors` is set)."""

    fps: Annotated[int, _Rule(_integer(1, MAX_FPS))] = field(
        default=20,
        metadata=_doc("frames a second while an effect runs (rainbow, spin, breathe, blink)"),
    )
    on_stop: Annotated[Literal["off", "keep"], _Rule(_on_off, _choice("off", "keep"))] = field(
        default="off",
        metadata=_doc(
            "what the ring shows after the bridge stops cleanly: `off` (dark) or `keep` (the "
            "last image, an effect frozen where it was)"
        ),
    )


@_shows("list of sensor names (see docs/sensors.md)")
def _sensor_names(value: object, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise vol.Invalid(f"must be a list such as [temperature, humidity], got {_describe(value)}")
    chosen: list[str] = []
    for item in items:
        word = _word(item, key)
        if not isinstance(word, str) or word not in SENSORS:
            raise vol.Invalid(_not_a_sensor(item))
        if word in chosen:
            raise vol.Invalid(f"{word!r} is listed twice")
        chosen.append(word)
    return tuple(chosen)


def _not_a_sensor(value: object) -> str:
    """The problem with a name that is not a sensor's, with the nearest one if any."""
    close = difflib.get_close_matches(str(value).lower(), list(SENSORS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{_describe(value)} is not a sensor ({hint}the sensors are {', '.join(SENSORS)})"


@_shows("mapping of sensor name to a number >= 0")
def _thresholds(value: object, key: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid(f"must be a mapping such as {{temperature: 0.2}}, got {_describe(value)}")
    chosen: dict[str, float] = {}
    for name, threshold in value.items():
        if name not in SENSORS:
            raise vol.Invalid(_not_a_sensor(name))
        if (
            not isinstance(threshold, int | float)
            or isinstance(threshold, bool)
            or not 0 <= threshold < math.inf
        ):
            raise vol.Invalid(
                f"must be a number >= 0 (0: publish every change), got {_describe(threshold)}",
                path=[name],
            )
        chosen[name] = float(threshold)
    return chosen


@_shows("°C, -40..85")
def _room_temperature(value: object, key: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not -40 <= value <= 85:
        raise vol.Invalid(
            f"must be the room's true temperature in °C, -40..85, got {_describe(value)}"
        )
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorsConfig:
    """The MATRIX Creator's sensors as Home Assistant sensors (docs/sensors.md). Absent: no
    sensor driver is contacted."""

    enabled: Annotated[tuple[str, ...], _Rule(_sensor_names)] = field(
        default=DEFAULT_ENABLED,
        metadata=_doc(
            "the values to publish, each on `<base>/sensor/<name>/state`: "
            + ", ".join(f"`{name}`" for name in SENSORS),
            "`[" + ", ".join(DEFAULT_ENABLED) + "]`",
        ),
    )
    update_interval: Annotated[float, _Rule(_seconds(maximum=3600, minimum=0.1))] = field(
        default=2.0,
        metadata=_doc("seconds between two readings (the drivers' `delay_between_updates`)"),
    )
    publish_every: Annotated[float, _Rule(_seconds(maximum=86_400, minimum=1))] = field(
        default=300.0,
        metadata=_doc(
            "a value is published when it moved by at least its threshold, and at least this "
            "often (seconds) even when it did not"
        ),
    )
    thresholds: Annotated[dict[str, float], _Rule(_thresholds)] = field(
        default_factory=dict,
        metadata=_doc(
            "how far a value must move before it is published again, per sensor, e.g. "
            "`{temperature: 0.2}`; the others keep their defaults (docs/sensors.md)",
            "per sensor",
        ),
    )
    calibrate_temperature: Annotated[float | None, _Rule(_room_temperature, nullable=True)] = field(
        default=None,
        metadata=_doc(
            "the room's true temperature (°C) now: sent to the humidity driver, which corrects "
            "its reading (the sensor sits near the Pi's CPU and reads warm)"
        ),
    )

    def __post_init__(self) -> None:
        if self.publish_every < self.update_interval:
            _refuse_broken(
                [
                    (
                        ("publish_every",),
                        f"must be at least sensors.update_interval ({self.update_interval:g} s)",
                    )
                ]
            )

    def threshold(self, name: str) -> float:
        """How far `name` must move to be published again."""
        return self.thresholds.get(name, SENSORS[name].threshold)


@_shows("list of `single`, `double`, `long`")
def _press_events(value: object, key: str) -> tuple[PressEvent, ...]:
    # `events: single` means the one-item list a user meant.
    items = [value] if isinstance(value, str) else value
    if items is None:
        return ()
    if not isinstance(items, list | tuple):
        raise vol.Invalid(f"must be a list such as [single, double, long], got {_describe(value)}")
    chosen: set[str] = set()
    for item in items:
        word = _word(item, key)
        if word not in PRESS_EVENTS:
            raise vol.Invalid(
                f"{_describe(item)} is not an event; the events are 'single', 'double' and 'long'"
            )
        if word in chosen:
            raise vol.Invalid(f"{word!r} is listed twice")
        chosen.add(str(word))
    return tuple(event for event in PRESS_EVENTS if event in chosen)


@_shows("`on` or `off` (outputs), a whole number `min_angle`..`max_angle` (servos)")
def _initial(value: object, key: str) -> str | int:
    # Which of the two a pin takes depends on its mode: PinSpec.__post_init__ checks that.
    word = _on_off(value, key)
    if word in ("on", "off") or (isinstance(word, int) and not isinstance(word, bool)):
        return word
    raise vol.Invalid(
        f"must be 'on' or 'off' (outputs) or a whole number of degrees (servos), "
        f"got {_describe(value)}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PinSpec:
    """One GPIO pin the bridge exposes."""

    pin: Annotated[int, _Rule(_integer(0, PIN_COUNT - 1))] = field(
        metadata=_doc("the pin's number in MALOS numbering (not the header's pin numbers)")
    )
    mode: Annotated[PinMode, _Rule(_word, _choice("input", "output", "servo"))] = field(
        metadata=_doc(
            "`input`: the bridge reads the pin; `output`: it drives the pin on and off; "
            "`servo`: it moves a hobby servo on the pin through the MALOS servo driver (the pin "
            "stays a PWM output until the board is power-cycled). Case is ignored"
        )
    )
    name: OptionalName = field(default=None, metadata=_doc("a friendly name"))
    inverted: Flag = field(
        default=False,
        metadata=_doc("inputs and outputs: swap on and off against the electrical level"),
    )
    initial: Annotated[Literal["on", "off"] | int | None, _Rule(_initial, nullable=True)] = field(
        default=None,
        metadata=_doc(
            "outputs: the level at start, `on` or `off` (an unquoted on/off/yes/no means what "
            "it says); absent: the bridge reads the pin's level from the first update and "
            "makes it an output at that level (no glitch). Servos: an angle sent once the "
            "driver is up, a whole number from `min_angle` to `max_angle`; absent: nothing is "
            "sent until a command (a servo's position cannot be read)"
        ),
    )
    payload_on: Payload = field(
        default="ON",
        metadata=_doc(
            "inputs and outputs: the state payload for on, also accepted as a command. Quote "
            "it: YAML reads a bare `ON` as a boolean, which is refused with a hint"
        ),
    )
    payload_off: Payload = field(
        default="OFF",
        metadata=_doc(
            "inputs and outputs: the state payload for off, also accepted as a command; must "
            "differ from `payload_on`, ignoring case. Quote it, as `payload_on`"
        ),
    )
    device_class: OptionalText = field(
        default=None, metadata=_doc("inputs and outputs, for Home Assistant, e.g. `door`")
    )
    icon: OptionalText = field(default=None, metadata=_doc("for Home Assistant, e.g. `mdi:door`"))
    # Outputs only: a plain "on" command becomes a press of this many milliseconds.
    pulse_ms: Annotated[int | None, _Rule(_integer(MIN_PULSE_MS, MAX_PULSE_MS), nullable=True)] = (
        field(
            default=None,
            metadata=_doc(
                'outputs only: a plain "on" becomes a press of this many milliseconds '
                "(garage doors, doorbells)"
            ),
        )
    )

    debounce_ms: Annotated[int, _Rule(_integer(0, MAX_DEBOUNCE_MS))] = field(
        default=0,
        metadata=_doc(
            "inputs only: a new level counts only once it has held this long; shorter glitches "
            "give no state and no event. Levels are seen at driver updates, so this is "
            "measured in whole `malos.update_interval`s"
        ),
    )
    events: Annotated[tuple[PressEvent, ...], _Rule(_press_events)] = field(
        default=(),
        metadata=_doc(
            "inputs only: the presses to publish on `<base>/gpio/<pin>/event` (and as a Home "
            "Assistant event entity), any of `single`, `double`, `long`. A press is the pin's "
            "logical on (after `inverted`). With `double` listed, a single is published once "
            "`double_press_ms` has passed after its release; without it, at the release",
            "none",
        ),
    )
    double_press_ms: Annotated[
        int | None, _Rule(_integer(MIN_PRESS_MS, MAX_PRESS_MS), nullable=True)
    ] = field(
        default=None,
        metadata=_doc(
            "inputs with `double` in `events`: the longest gap between the two presses of a double",
            f"`{DEFAULT_DOUBLE_PRESS_MS}`",
        ),
    )
    long_press_ms: Annotated[
        int | None, _Rule(_integer(MIN_PRESS_MS, MAX_PRESS_MS), nullable=True)
    ] = field(
        default=None,
        metadata=_doc(
            "inputs with `long` in `events`: a press held this long is a long press, published "
            "when the hold reaches it (not at the release)",
            f"`{DEFAULT_LONG_PRESS_MS}`",
        ),
    )
    min_angle: Annotated[int | None, _Rule(_integer(MIN_ANGLE, MAX_ANGLE), nullable=True)] = field(
        default=None,
        metadata=_doc(
            "servo pins only: the lowest angle in degrees, the bottom of the Home Assistant "
            "slider's range; commands below it are refused",
            f"`{MIN_ANGLE}`",
        ),
    )
    max_angle: Annotated[int | None, _Rule(_integer(MIN_ANGLE, MAX_ANGLE), nullable=True)] = field(
        default=None,
        metadata=_doc(
            "servo pins only: the highest angle in degrees, the top of the Home Assistant "
            "slider's range; commands above it are refused. Must be greater than `min_angle`",
            f"`{MAX_ANGLE}`",
        ),
    )

    @property
    def is_output(self) -> bool:
        """Whether the bridge drives this pin (and accepts commands for it)."""
        return self.mode == "output"

    @property
    def is_servo(self) -> bool:
        """Whether this pin drives a hobby servo (through the MALOS servo driver)."""
        return self.mode == "servo"

    @property
    def lowest_angle(self) -> int:
        """`min_angle`, or 0."""
        return MIN_ANGLE if self.min_angle is None else self.min_angle

    @property
    def highest_angle(self) -> int:
        """`max_angle`, or 180."""
        return MAX_ANGLE if self.max_angle is None else self.max_angle

    @property
    def double_press_window(self) -> float:
        """`double_press_ms` (or its default) in seconds."""
        value = DEFAULT_DOUBLE_PRESS_MS if self.double_press_ms is None else self.double_press_ms
        return value / 1000

    @property
    def long_press_after(self) -> float:
        """`long_press_ms` (or its default) in seconds."""
        value = DEFAULT_LONG_PRESS_MS if self.long_press_ms is None else self.long_press_ms
        return value / 1000

    def __post_init__(self) -> None:
        problems = self._initial_problems()
        if self.is_servo:
            problems += self._servo_problems()
        elif self.pulse_ms is not None and not self.is_output:
            problems.append(
                (("pulse_ms",), f"only outputs can be pulsed; pin {self.pin} is an input")
            )
        for key in ("debounce_ms", "events", "double_press_ms", "long_press_ms"):
            if self.mode != "input" and getattr(self, key) not in (None, 0, ()):
                problems.append(
                    ((key,), f"only inputs have {key}; pin {self.pin} is {_A_PIN[self.mode]}")
                )
        for key, event in (("double_press_ms", "double"), ("long_press_ms", "long")):
            if self.mode == "input" and getattr(self, key) is not None and event not in self.events:
                problems.append(
                    (
                        (key,),
                        f"is only used when events lists {event!r}; pin {self.pin} has "
                        f"events {list(self.events)}",
                    )
                )
        for key in ("min_angle", "max_angle"):
            if not self.is_servo and getattr(self, key) is not None:
                problems.append(
                    ((key,), f"only servo pins have {key}; pin {self.pin} is {_A_PIN[self.mode]}")
                )
        # Commands are matched case-insensitively, so these must stay distinguishable.
        if self.payload_on.casefold() == self.payload_off.casefold():
            problems.append(
                (
                    ("payload_off",),
                    f'must differ from payload_on ("{self.payload_on}"), ignoring case',
                )
            )
        _refuse_broken(problems)

    def _initial_problems(self) -> list[tuple[Loc, str]]:
        initial = self.initial
        if initial is None:
            return []
        if self.mode == "input":
            message = (
                f"only outputs and servo pins have an initial state; pin {self.pin} is an input"
            )
        elif self.is_output and isinstance(initial, int):
            message = f"an output's initial is 'on' or 'off', not an angle ({initial})"
        elif not self.is_servo:
            return []
        elif isinstance(initial, str):
            message = (
                f"a servo's initial is an angle, a whole number {self.lowest_angle}.."
                f"{self.highest_angle}, not {initial!r}"
            )
        elif not self.lowest_angle <= initial <= self.highest_angle:
            message = (
                f"{_show(initial)} is out of range {self.lowest_angle}..{self.highest_angle} "
                "(min_angle..max_angle)"
            )
        else:
            return []
        return [(("initial",), message)]

    def _servo_problems(self) -> list[tuple[Loc, str]]:
        """The keys a servo pin has no use for, and its angle range."""
        problems: list[tuple[Loc, str]] = []
        servo = f"pin {self.pin} is a servo pin"
        if self.inverted:
            problems.append((("inverted",), f"only inputs and outputs can be inverted; {servo}"))
        for key, default in (("payload_on", "ON"), ("payload_off", "OFF")):
            if getattr(self, key) != default:
                problems.append(
                    ((key,), f"only inputs and outputs have {key}; {servo}, its state is an angle")
                )
        if self.device_class is not None:
            problems.append(
                (("device_class",), f"only inputs and outputs have a device_class; {servo}")
            )
        if self.pulse_ms is not None:
            problems.append((("pulse_ms",), f"only outputs can be pulsed; {servo}"))
        if self.lowest_angle >= self.highest_angle:
            unset = f" (max_angle defaults to {MAX_ANGLE})" if self.max_angle is None else ""
            problems.append(
                (
                    ("max_angle",),
                    f"{self.highest_angle} must be greater than min_angle "
                    f"({self.lowest_angle}){unset}",
                )
            )
        return problems


@_shows("a list of pins (`pins[]` below)")
def _pins(value: object, key: str) -> tuple[PinSpec, ...]:
    if value is None or (isinstance(value, list | tuple) and not value):
        raise vol.Invalid("at least one pin must be configured")
    if not isinstance(value, list | tuple):
        raise vol.Invalid(
            f"must be a list of pins, e.g. [{{pin: 0, mode: output}}], got {_describe(value)}"
        )
    # Every pin is checked, and duplicates are found on the raw items, so that all problems
    # are reported at once even when some pin is invalid.
    pins, problems = _validate_each(PinSpec, value)
    problems += [vol.Invalid(message, path=list(loc)) for loc, message in _duplicate_pins(value)]
    if problems:
        raise vol.MultipleInvalid(problems)
    return tuple(pins)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    """The whole configuration file."""

    # Validating the `mqtt` section also reads the password file or variable it names.
    mqtt: Annotated[MqttConfig, _Rule(_section(MqttConfig, _password_readable))] = field(
        default_factory=MqttConfig, metadata=_doc("the MQTT broker and the topic layout")
    )
    malos: Annotated[MalosConfig, _Rule(_section(MalosConfig))] = field(
        default_factory=MalosConfig,
        metadata=_doc("the MALOS drivers: GPIO, and servo for `mode: servo` pins"),
    )
    homeassistant: Annotated[HomeAssistantConfig, _Rule(_section(HomeAssistantConfig))] = field(
        default_factory=HomeAssistantConfig, metadata=_doc("Home Assistant MQTT discovery")
    )
    health: Annotated[HealthConfig, _Rule(_section(HealthConfig))] = field(
        default_factory=HealthConfig,
        metadata=_doc("the bridge's health messages on `<base>/bridge/health`"),
    )
    pins: Annotated[
        tuple[PinSpec, ...], _Rule(_pins, missing="at least one pin must be configured")
    ] = field(metadata=_doc("the pins the bridge exposes: at least one, each pin once"))
    links: Annotated[tuple[LinkSpec, ...], _Rule(_links)] = field(
        default=(),
        metadata=_doc(
            "inputs driving outputs, carried out by the bridge itself from the driver's "
            "updates, whether or not the broker is reachable"
        ),
    )
    everloop: Annotated[EverloopConfig | None, _Rule(_section(EverloopConfig))] = field(
        default=None,
        metadata=_doc(
            "the LED ring as a Home Assistant light; `everloop:` alone turns it on with the "
            "defaults"
        ),
    )
    sensors: Annotated[SensorsConfig | None, _Rule(_section(SensorsConfig))] = field(
        default=None,
        metadata=_doc("the MATRIX Creator's sensors; `sensors:` alone publishes the default ones"),
    )

    @property
    def client_id(self) -> str:
        """The MQTT client id: the configured one, else one unique to this node."""
        if self.mqtt.client_id is not None:
            return self.mqtt.client_id
        return f"mqtt-gpio-bridge-{self.homeassistant.node_id}"

    def __post_init__(self) -> None:
        if not self.pins:
            _refuse_broken([(("pins",), "at least one pin must be configured")])
        problems = [(("pins", *loc), message) for loc, message in _duplicate_pins(self.pins)]
        problems += [
            (("links", *loc), message) for loc, message in link_problems(self.links, self.pins)
        ]
        host = self.malos.host
        if not is_this_machine(host) and self.homeassistant.node_id == default_node_id():
            problems.append(
                (
                    ("homeassistant", "node_id"),
                    f"must be set when malos.host ({host}) is another machine: the default, "
                    f"{self.homeassistant.node_id!r}, is made from the name of the machine the "
                    "bridge runs on, not the board's, and a second bridge here would take the "
                    "same one (e.g. node_id: matrix_kitchen)",
                )
            )
        _refuse_broken(problems)


def is_this_machine(host: str) -> bool:
    """Whether `host` names this machine's loopback (the board itself, for MALOS)."""
    name = host.lower().rstrip(".")
    if name in ("localhost", "ip6-localhost") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _duplicate_pins(items: Sequence[object]) -> list[tuple[Loc, str]]:
    first_index: dict[int, int] = {}
    problems: list[tuple[Loc, str]] = []
    for index, item in enumerate(items):
        if isinstance(item, PinSpec):
            pin: object = item.pin
        elif isinstance(item, dict):
            pin = item.get("pin")
        else:
            continue
        # Only pins that are valid on their own; a bad pin number has its own problem.
        if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin < PIN_COUNT:
            continue
        if pin in first_index:
            problems.append(
                ((index, "pin"), f"pin {pin} is already configured at pins[{first_index[pin]}]")
            )
        else:
            first_index[pin] = index
    return problems
