"""The bridge's YAML configuration: typed objects, loading and human-readable problems.

Every user mistake ends up as one line in `ConfigError.problems`, of the form
`<key path>: <message>`, and all of them are reported at once so a user fixes the file
in one go instead of one error per run.

Why voluptuous (and not pydantic, cattrs or msgspec): the configuration is declared once,
as frozen dataclasses whose fields carry their rule in `Annotated[...]`; the schema that
voluptuous runs is derived from those fields. Voluptuous walks the document, collects every
problem with its key path (`MultipleInvalid`), prefixes the paths of nested problems,
and lets each rule be a plain function, so the messages below stay exactly the ones users
read. It is Home Assistant's own config validation library, pure Python, and costs about
0.6 MB resident in the bridge's process, where pydantic cost about 10 MB (the library and
its model building); cattrs + attrs cost about twice voluptuous, and msgspec stops at the
first problem instead of reporting them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, get_type_hints

import voluptuous as vol
import yaml

from .errors import ConfigError
from .malos.gpio.codec import PIN_COUNT
from .malos.gpio.commands import MAX_PULSE_MS, MIN_PULSE_MS
from .mqtt.topics import Topics

__all__ = [
    "BridgeConfig",
    "HomeAssistantConfig",
    "MalosConfig",
    "MqttConfig",
    "PinSpec",
    "Secret",
    "TlsConfig",
    "default_node_id",
    "load_config",
    "parse_config",
    "summarize",
]

MAX_PAYLOAD_LENGTH = 64
# The driver starts with a 1.0 s delay between updates and only applies a new delay after
# the sleep in progress, so anything shorter would call the driver gone right at start.
MIN_OFFLINE_AFTER = 1.5
MQTT_MAX_BYTES = 65535
"""The longest string MQTT 3.1.1 carries in one field (a two-byte length): a client id, user
name, password or topic, counted in bytes once encoded as UTF-8."""
HEALTH_ID_SUFFIX = len("-health-") + 6
"""What `mqtt-gpio-bridge health` adds to the client id: `-health-` and 6 hex digits."""
MAX_NODE_ID_LENGTH = 128
MAX_HOST_LENGTH = 253
"""The longest DNS name, in characters, without a final dot."""

Loc = tuple[int | str, ...]
Check = Callable[[Any, str], Any]
"""One step of a field's rule: (value, key) -> the cleaned value, or raise `vol.Invalid`."""
TextCheck = Callable[[str, str], str]
"""A step that checks a string `_text` has let through."""

_T = TypeVar("_T")


# --- rules: how one field is checked --------------------------------------------------------


class _Rule:
    """A field's rule, kept in its `Annotated[...]` type: the checks, run in order.

    `nullable`: None (e.g. `name:` left empty in YAML) means "not set" and skips the checks.
    `missing`: the message when a field without a default is absent.
    """

    __slots__ = ("checks", "missing", "nullable")

    def __init__(
        self, *checks: Check, nullable: bool = False, missing: str = "required key is missing"
    ) -> None:
        self.checks = checks
        self.nullable = nullable
        self.missing = missing

    def __call__(self, value: object, key: str) -> object:
        if value is None and self.nullable:
            return None
        for check in self.checks:
            value = check(value, key)
        return value


class _UnknownKey(vol.Invalid):
    """A key no field has; one that is not a name is reported at its mapping's path."""


class _Broken(ValueError):
    """Cross-field rules broken on construction: each problem with its path in the object."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_format_loc(loc)}: {message}" for loc, message in problems))


def _refuse_broken(problems: list[tuple[Loc, str]]) -> None:
    if problems:
        raise _Broken(problems)


def _text(value: object, key: str) -> str:
    """Refuse non-strings with a quoting hint, instead of silently coercing them."""
    if isinstance(value, str):
        return value
    # Never echo a secret back, even one YAML mangled into a number.
    secret = key == "password"
    if isinstance(value, bool):
        word, example = ("ON/on/yes/true", "ON") if value else ("OFF/off/no/false", "OFF")
        raise vol.Invalid(
            f"YAML read an unquoted {word} as the boolean {str(value).lower()}; "
            f'quote it, e.g. {key}: "{example}"'
        )
    if isinstance(value, int | float):
        if secret:
            raise vol.Invalid("YAML read the unquoted password as a number; quote it")
        raise vol.Invalid(
            f"YAML read the unquoted {_show(value)} as a number; quote it, "
            f'e.g. {key}: "{_show(value)}"'
        )
    if secret:
        raise vol.Invalid("must be a quoted string")
    raise vol.Invalid(f"must be a string, got {_describe(value)}")


def _not_empty(value: str, key: str) -> str:
    if not value.strip():
        raise vol.Invalid("must not be empty")
    return value


def _integer(low: int, high: int, why: str = "") -> Check:
    def check(value: object, key: str) -> int:
        # bool is an int to Python, never to a user; 1.0 is not a port number either.
        if not isinstance(value, int) or isinstance(value, bool):
            raise vol.Invalid(f"Input should be a valid integer, got {_describe(value)}")
        if not low <= value <= high:
            raise vol.Invalid(f"{_show(value)} is out of range {low}..{high}{why}")
        return value

    return check


def _seconds(maximum: float | None = None, minimum: float | None = None, why: str = "") -> Check:
    """Check a duration: a number, finite, > 0, optionally <= maximum and >= minimum."""

    def check(value: object, key: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise vol.Invalid(f"Input should be a valid number, got {_describe(value)}")
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise vol.Invalid(f"must be a finite number of seconds, got {_show(value)}") from None
        if not math.isfinite(seconds):
            raise vol.Invalid(f"must be a finite number of seconds, got {seconds}")
        if minimum is not None and seconds < minimum:
            raise vol.Invalid(f"must be at least {minimum:g} seconds, got {seconds:g}{why}")
        if seconds <= 0 or (maximum is not None and seconds > maximum):
            bound = f" and at most {maximum:g}" if maximum is not None else ""
            raise vol.Invalid(f"must be greater than 0{bound} seconds, got {seconds:g}")
        return seconds

    return check


def _boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"Input should be a valid boolean, got {_describe(value)}")
    return value


def _choice(*options: str) -> Check:
    allowed = " or ".join(
        [", ".join(repr(option) for option in options[:-1]), repr(options[-1])]
    ).removeprefix(" or ")

    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise vol.Invalid(f"Input should be {allowed}, got {_describe(value)}")
        return value

    return check


def _word(value: object, key: str) -> object:
    # `mode: Output` and `initial: " ON "` mean what they obviously mean.
    return value.strip().lower() if isinstance(value, str) else value


def _on_off(value: object, key: str) -> object:
    # PyYAML reads unquoted on/off as booleans; for a state that is exactly what was meant.
    if isinstance(value, bool):
        return "on" if value else "off"
    return _word(value, key)


# Characters that cannot be sent as they are. A lone surrogate (U+D800..U+DFFF, which YAML
# gives for an escape such as "\ud800") has no UTF-8 encoding at all, so paho raises while
# sending it and `print` while showing it. MQTT forbids U+0000 in its strings, and says they
# should not contain the control characters U+0001..U+001F, U+007F..U+009F or Unicode
# noncharacters: Mosquitto closes the connection on any of them ("Malformed UTF-8"), which
# the bridge can only report as a lost connection, again and again.
_SURROGATES = "\ud800-\udfff"
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
_NOT_UTF8 = re.compile(f"[{_SURROGATES}]")
_NOT_IN_PAYLOADS = re.compile(f"[\x00{_SURROGATES}]")
_NOT_IN_HOSTS = re.compile(f"[\x00-\x1f\x7f-\x9f{_SURROGATES}]")
_NOT_IN_MQTT_STRINGS = re.compile(f"[\x00-\x1f\x7f-\x9f{_SURROGATES}{_NONCHARACTERS}]")


def _character_problem(char: str, index: int, mqtt: bool) -> str:
    """The message for a character that must not be in a value (never the value itself)."""
    code = ord(char)
    where = f"U+{code:04X} (at character {index + 1})"
    if 0xD800 <= code <= 0xDFFF:
        return f"must not contain the lone surrogate {where}: it cannot be encoded as UTF-8"
    if code == 0:
        return f"must not contain the NUL character {where}" + (
            ": MQTT forbids it in strings" if mqtt else ""
        )
    kind = "control character" if code <= 0x9F else "Unicode noncharacter"
    why = (
        ": MQTT strings should not contain one, and brokers such as Mosquitto close the connection"
    )
    return f"must not contain the {kind} {where}" + (why if mqtt else "")


def _characters(pattern: re.Pattern[str], mqtt: bool = False) -> TextCheck:
    """Refuse the first character `pattern` finds, by its code point and position."""

    def check(value: str, key: str) -> str:
        found = pattern.search(value)
        if found is not None:
            raise vol.Invalid(_character_problem(found.group(), found.start(), mqtt))
        return value

    return check


_utf8 = _characters(_NOT_UTF8)
"""Text that is published, printed or logged: it must be encodable as UTF-8."""
_payload_characters = _characters(_NOT_IN_PAYLOADS)
_host_characters = _characters(_NOT_IN_HOSTS)
_mqtt_characters = _characters(_NOT_IN_MQTT_STRINGS, mqtt=True)


def _utf8_bytes(limit: int, why: str) -> TextCheck:
    def check(value: str, key: str) -> str:
        size = len(value.encode("utf-8"))  # after a character check: no lone surrogate left
        if size > limit:
            raise vol.Invalid(f"must be at most {limit} bytes in UTF-8{why}, got {size}")
        return value

    return check


def _mqtt_string(limit: int = MQTT_MAX_BYTES, why: str = " (the MQTT limit)") -> TextCheck:
    """An MQTT UTF-8 string (client id, user name, topic): only characters MQTT takes, and at
    most `limit` bytes once encoded (less than MQTT's own limit when more is added to it)."""
    within = _utf8_bytes(limit, why)

    def check(value: str, key: str) -> str:
        return within(_mqtt_characters(value, key), key)

    return check


def _topic_prefix(value: str, key: str) -> str:
    # The prefix is joined with "/" and published to; wildcards are only valid in filters.
    # Its length is checked with what the bridge adds to it (_base_topic, HomeAssistantConfig).
    if not value:
        raise vol.Invalid("must not be empty")
    if "+" in value or "#" in value:
        raise vol.Invalid("must not contain the MQTT wildcards '+' or '#'")
    if value.startswith("/") or value.endswith("/"):
        raise vol.Invalid("must not start or end with '/'")
    if value.startswith("$"):
        # Brokers keep such topics for themselves ($SYS); a `#` subscription never sees them.
        raise vol.Invalid("must not start with '$' (topics starting with '$' are the broker's)")
    return _mqtt_characters(value, key)


def _longest_topic(base: str) -> str:
    """The longest topic the bridge publishes or subscribes to under `base`."""
    topics, last = Topics(base), PIN_COUNT - 1
    candidates = (
        topics.status,
        topics.errors,
        topics.command_filter,
        topics.state(last),
        topics.command(last),
    )
    return max(candidates, key=len)


def _discovery_topic(prefix: str, node_id: str) -> str:
    """The longest discovery topic, as `discovery.config_topic` builds it."""
    return f"{prefix}/binary_sensor/{node_id}/gpio{PIN_COUNT - 1}/config"


_base_topic = _utf8_bytes(
    MQTT_MAX_BYTES - len(_longest_topic("")),
    f" (so that {_longest_topic('<mqtt.base_topic>')} fits in MQTT's {MQTT_MAX_BYTES})",
)


def _node_id(value: str, key: str) -> str:
    # Home Assistant puts the node id into discovery topics and unique ids, the bridge into
    # its client id; bounded, so that these always fit.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise vol.Invalid(f"{_show(value)} may only contain letters, digits, '_' and '-'")
    if len(value) > MAX_NODE_ID_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_NODE_ID_LENGTH} characters, got {len(value)}")
    return value


def _host(value: str, key: str) -> str:
    # Checked here because the libraries fail late and badly: paho's name lookup raises
    # UnicodeError, not OSError, for a name IDNA cannot encode (a part longer than 63
    # characters, an empty one), ZeroMQ raises on a NUL, and quietly never connects to a
    # name no resolver can look up.
    _host_characters(value, key)
    name = value.removesuffix(".")  # a fully qualified name may end with a dot
    if len(name) > MAX_HOST_LENGTH:
        raise vol.Invalid(
            f"must be at most {MAX_HOST_LENGTH} characters (the longest host name), got {len(name)}"
        )
    try:
        encoded = name.encode("idna")
    except UnicodeError as exc:
        reason = str(exc.__cause__ or exc)
        if "label" in reason:
            reason = "every part between dots must have 1 to 63 characters"
        raise vol.Invalid(f"{_show(value)} is not a valid host name: {reason}") from None
    if len(encoded) > MAX_HOST_LENGTH:
        raise vol.Invalid(
            f"must be at most {MAX_HOST_LENGTH} characters (the longest host name), "
            f"got {len(encoded)} once encoded for DNS"
        )
    return value


def _payload(value: str, key: str) -> str:
    if not value:
        raise vol.Invalid("must not be empty")
    if len(value) > MAX_PAYLOAD_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_PAYLOAD_LENGTH} characters, got {len(value)}")
    return _payload_characters(value, key)


def _password_problem(value: str) -> str | None:
    """What keeps a password from being sent (MQTT binary data, UTF-8 encoded by paho);
    neither the password nor a part of it is ever named."""
    if _NOT_UTF8.search(value):
        return "contains a lone surrogate (U+D800..U+DFFF), which cannot be encoded as UTF-8"
    if len(value.encode("utf-8")) > MQTT_MAX_BYTES:
        return f"is longer than MQTT allows: at most {MQTT_MAX_BYTES} bytes in UTF-8"
    return None


def _readable_file(value: str, key: str) -> str:
    try:
        readable = os.access(value, os.R_OK)
        exists = readable or os.path.exists(value)
    except ValueError:  # a NUL byte, or a lone surrogate the file system cannot encode
        raise vol.Invalid(f"{_show(value)} is not a valid file name") from None
    if not readable:
        raise vol.Invalid(f"{value} {'is not readable' if exists else 'does not exist'}")
    return value


class Secret:
    """A password: shown as stars in every repr, str and log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(value: object, key: str) -> Secret:
    return value if isinstance(value, Secret) else Secret(_text(value, key))


def _section(cls: type[object]) -> Check:
    def check(value: object, key: str) -> object:
        # `mqtt:` with nothing below it parses as None; treat it like an absent section.
        return _validator(cls)({} if value is None else value)

    return check


def _tls_switch(value: object, key: str) -> object:
    # `tls: true` is TLS with the system's CAs; `tls: false` (or nothing) is plain TCP.
    if value is False or value is None:
        return None
    if value is not True and not isinstance(value, dict | TlsConfig):
        raise vol.Invalid(
            f"must be true, false or a mapping of keys to values, got {_describe(value)}"
        )
    return _validator(TlsConfig)({} if value is True else value)


NonEmptyText = Annotated[str, _Rule(_text, _not_empty, _utf8)]
OptionalText = Annotated[str | None, _Rule(_text, _utf8, nullable=True)]
OptionalName = Annotated[str | None, _Rule(_text, _not_empty, _utf8, nullable=True)]
# A name for the operating system (a file, a variable), which reports its own problems.
OptionalSystemName = Annotated[str | None, _Rule(_text, nullable=True)]
Host = Annotated[str, _Rule(_text, _not_empty, _host)]
TopicPrefix = Annotated[str, _Rule(_text, _topic_prefix)]
Payload = Annotated[str, _Rule(_text, _payload)]
Flag = Annotated[bool, _Rule(_boolean)]
Seconds = Annotated[float, _Rule(_seconds())]
ReadableFile = Annotated[str | None, _Rule(_text, _readable_file, nullable=True)]


# --- the configuration ---------------------------------------------------------------------
# Each field is declared once: its type, its rule (in Annotated) and its default. Direct
# construction checks the cross-field rules in __post_init__; parse_config checks it all.


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """TLS to the broker (`tls: true` or `tls: {}` for the system's CAs)."""

    ca_file: ReadableFile = None
    certfile: ReadableFile = None
    keyfile: ReadableFile = None
    # Only an explicit flag turns the host name check off; the certificate is still verified.
    insecure: Flag = False

    def __post_init__(self) -> None:
        if self.keyfile is not None and self.certfile is None:
            _refuse_broken([(("certfile",), "a client key needs its certificate (certfile)")])


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConfig:
    """Connection to the MQTT broker and the topic layout."""

    host: Host = "localhost"
    port: Annotated[int, _Rule(_integer(1, 65535))] = 1883
    username: Annotated[str | None, _Rule(_text, _mqtt_string(), nullable=True)] = None
    # A Secret keeps the password out of every repr and log line.
    password: Annotated[Secret | None, _Rule(_secret, nullable=True)] = None
    # Docker secrets and systemd credentials hand the password over as a file; containers and
    # CI often as an environment variable. At most one of the three sources may be set.
    password_file: OptionalSystemName = None
    password_env: OptionalSystemName = None
    client_id: Annotated[
        str | None,
        _Rule(
            _text,
            _not_empty,
            _mqtt_string(
                MQTT_MAX_BYTES - HEALTH_ID_SUFFIX,
                f" (`health` connects as <client_id>-health-xxxxxx, which MQTT limits to "
                f"{MQTT_MAX_BYTES})",
            ),
            nullable=True,
        ),
    ] = None
    base_topic: Annotated[str, _Rule(_text, _topic_prefix, _base_topic)] = "matrix"
    qos: Annotated[int, _Rule(_integer(0, 2))] = 1
    keepalive: Annotated[int, _Rule(_integer(5, 3600))] = 60
    tls: Annotated[TlsConfig | None, _Rule(_tls_switch)] = None
    reconnect_min: Seconds = 0.5
    reconnect_max: Annotated[float, _Rule(_seconds(maximum=3600))] = 30.0
    # A command the broker delivers as retained is a replay (at start, at every reconnect):
    # by default it is reported and not obeyed.
    retained_commands: Annotated[
        Literal["ignore", "apply"], _Rule(_word, _choice("ignore", "apply"))
    ] = "ignore"
    # State messages per pin per second at most, whatever rate the driver's updates flip it.
    max_state_rate: Annotated[int, _Rule(_integer(1, 1000))] = 20

    def secret(self) -> str | None:
        """The password, from whichever source is configured (read afresh each call).

        Raises:
            ConfigError: the password file or variable went away since validation, or holds
                a password MQTT cannot carry (checked at every read: a file can change).
        """
        if self.password is not None:
            source, value = "password", self.password.get_secret_value()
        elif self.password_file is not None:
            source = "password_file"
            try:
                with open(self.password_file, encoding="utf-8") as file:
                    # Enough to tell a password that is too long, not a whole /dev/zero; secret
                    # files often end with a newline that is not part of the password.
                    value = file.read(MQTT_MAX_BYTES + 3).rstrip("\r\n")
            except UnicodeDecodeError:  # its message would quote a byte of the password
                raise ConfigError([f"mqtt.{source}: cannot read: not UTF-8 text"]) from None
            except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
                raise ConfigError([f"mqtt.{source}: cannot read: {exc}"]) from None
        elif self.password_env is not None:
            source = "password_env"
            try:
                found = os.environ.get(self.password_env)
            except ValueError:  # a name the environment cannot hold
                found = None
            if found is None:
                raise ConfigError([f"mqtt.{source}: {self.password_env} is not set"])
            if _NOT_UTF8.search(found):  # bytes that are not UTF-8, as Python decodes them
                raise ConfigError([f"mqtt.{source}: {self.password_env} is not UTF-8 text"])
            value = found
        else:
            return None
        problem = _password_problem(value)
        if problem is not None:
            raise ConfigError([f"mqtt.{source}: {problem}"])
        return value

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
        sources = [
            name
            for name in ("password", "password_file", "password_env")
            if getattr(self, name) is not None
        ]
        if len(sources) > 1:
            problems.append(((sources[1],), f"set only one of {', '.join(sources)}"))
        elif sources and self.username is None:
            problems.append(((sources[0],), "a password needs mqtt.username"))
        else:
            try:
                self.secret()
            except ConfigError as exc:
                key, _, message = exc.problems[0].partition(": ")
                problems.append(((key.removeprefix("mqtt."),), message))
        if self.reconnect_min > self.reconnect_max:
            problems.append(
                (
                    ("reconnect_min",),
                    f"must not exceed mqtt.reconnect_max ({self.reconnect_max:g} s)",
                )
            )
        _refuse_broken(problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class MalosConfig:
    """Where the MALOS GPIO driver listens and how the bridge paces it."""

    host: Host = "127.0.0.1"
    # The driver uses four consecutive ports: config, keep-alive, errors, updates.
    base_port: Annotated[
        int, _Rule(_integer(1, 65532, " (the driver uses base_port to base_port + 3)"))
    ] = 20049
    update_interval: Annotated[float, _Rule(_seconds(maximum=60))] = 0.1
    keepalive_interval: Seconds = 1.0
    ping_timeout: Seconds = 5.0
    offline_after: Annotated[
        float,
        _Rule(
            _seconds(
                minimum=MIN_OFFLINE_AFTER,
                why=" (the driver starts with 1 s between updates and would look offline at start)",
            )
        ),
    ] = 3.0

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
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

    discovery: Flag = True
    prefix: TopicPrefix = "homeassistant"
    node_id: Annotated[str, _Rule(_text, _node_id)] = field(default_factory=default_node_id)
    device_name: NonEmptyText = "MATRIX GPIO"
    model: NonEmptyText = "MATRIX Creator"

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


@dataclass(frozen=True, slots=True, kw_only=True)
class PinSpec:
    """One GPIO pin the bridge exposes."""

    pin: Annotated[int, _Rule(_integer(0, PIN_COUNT - 1))]
    mode: Annotated[Literal["input", "output"], _Rule(_word, _choice("input", "output"))]
    name: OptionalName = None
    inverted: Flag = False
    initial: Annotated[
        Literal["on", "off"] | None, _Rule(_on_off, _choice("on", "off"), nullable=True)
    ] = None
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    device_class: OptionalText = None
    icon: OptionalText = None
    # Outputs only: a plain "on" command becomes a press of this many milliseconds.
    pulse_ms: Annotated[int | None, _Rule(_integer(MIN_PULSE_MS, MAX_PULSE_MS), nullable=True)] = (
        None
    )

    @property
    def is_output(self) -> bool:
        """Whether the bridge drives this pin (and accepts commands for it)."""
        return self.mode == "output"

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
        if self.initial is not None and not self.is_output:
            problems.append(
                (("initial",), f"only outputs have an initial state; pin {self.pin} is an input")
            )
        if self.pulse_ms is not None and not self.is_output:
            problems.append(
                (("pulse_ms",), f"only outputs can be pulsed; pin {self.pin} is an input")
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


def _pins(value: object, key: str) -> tuple[PinSpec, ...]:
    if value is None or (isinstance(value, list | tuple) and not value):
        raise vol.Invalid("at least one pin must be configured")
    if not isinstance(value, list | tuple):
        raise vol.Invalid(
            f"must be a list of pins, e.g. [{{pin: 0, mode: output}}], got {_describe(value)}"
        )
    # Every pin is checked, and duplicates are found on the raw items, so that all problems
    # are reported at once even when some pin is invalid.
    validate = _validator(PinSpec)
    pins: list[PinSpec] = []
    problems: list[vol.Invalid] = []
    for index, item in enumerate(value):
        try:
            pins.append(validate(item))
        except vol.Invalid as exc:
            exc.prepend([index])
            problems.extend(exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc])
    problems += [vol.Invalid(message, path=list(loc)) for loc, message in _duplicate_pins(value)]
    if problems:
        raise vol.MultipleInvalid(problems)
    return tuple(pins)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    """The whole configuration file."""

    mqtt: Annotated[MqttConfig, _Rule(_section(MqttConfig))] = field(default_factory=MqttConfig)
    malos: Annotated[MalosConfig, _Rule(_section(MalosConfig))] = field(default_factory=MalosConfig)
    homeassistant: Annotated[HomeAssistantConfig, _Rule(_section(HomeAssistantConfig))] = field(
        default_factory=HomeAssistantConfig
    )
    pins: Annotated[
        tuple[PinSpec, ...], _Rule(_pins, missing="at least one pin must be configured")
    ]

    @property
    def client_id(self) -> str:
        """The MQTT client id: the configured one, else one unique to this node."""
        if self.mqtt.client_id is not None:
            return self.mqtt.client_id
        return f"mqtt-gpio-bridge-{self.homeassistant.node_id}"

    def __post_init__(self) -> None:
        if not self.pins:
            _refuse_broken([(("pins",), "at least one pin must be configured")])
        _refuse_broken([(("pins", *loc), message) for loc, message in _duplicate_pins(self.pins)])


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


# --- the schema voluptuous runs, derived from the dataclasses above ------------------------

_VALIDATORS: dict[type[Any], Callable[[object], Any]] = {}


def _validator(cls: type[_T]) -> Callable[[object], _T]:
    """The validator of one dataclass: a mapping in, an instance out, or `vol.Invalid`.

    Every field becomes a key of a voluptuous schema (required when it has no default) whose
    value is the field's rule; any other key is refused with a did-you-mean hint.
    """
    if cls in _VALIDATORS:
        return _VALIDATORS[cls]
    hints = get_type_hints(cls, include_extras=True)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [item.name for item in fields]
    schema: dict[object, object] = {}
    for item in fields:
        (rule,) = [
            extra
            for extra in getattr(hints[item.name], "__metadata__", ())
            if isinstance(extra, _Rule)
        ]
        has_default = (
            item.default is not dataclasses.MISSING
            or item.default_factory is not dataclasses.MISSING
        )
        key = vol.Optional(item.name) if has_default else vol.Required(item.name, msg=rule.missing)
        schema[key] = _bind(rule, item.name)
    schema[_unknown_key(names)] = object
    mapping = vol.Schema(schema)

    def validate(value: object) -> _T:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise vol.Invalid(f"must be a mapping of keys to values, got {_describe(value)}")
        try:
            return cls(**mapping(value))
        except _Broken as exc:
            raise vol.MultipleInvalid(
                [vol.Invalid(message, path=list(loc)) for loc, message in exc.problems]
            ) from None

    _VALIDATORS[cls] = validate
    return validate


def _bind(rule: _Rule, key: str) -> Callable[[object], object]:
    return lambda value: rule(value, key)


def _unknown_key(names: list[str]) -> Callable[[object], object]:
    def refuse(key: object) -> object:
        if not isinstance(key, str):
            # A key that is not a name (e.g. a number) cannot be a field of any section.
            raise _UnknownKey(f"unknown key {_show(key)}")
        matches = difflib.get_close_matches(key.lower(), names, n=1)
        raise _UnknownKey(
            f"unknown key (did you mean {matches[0]!r}?)" if matches else "unknown key"
        )

    return refuse


# --- problem lines a user can act on --------------------------------------------------------


def _show(value: object, limit: int = 60) -> str:
    """`repr` for messages, safe for any value YAML can produce, and short."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        # repr() refuses integers past Python's digit limit, and nobody wants them printed.
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: object) -> str:
    """Name a parsed YAML value the way a user wrote it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str | int | float):
        return _show(value)
    return f"a {type(value).__name__}"


def _format_loc(loc: Sequence[object]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, str):
            key = part if len(part) <= 60 else part[:57] + "..."
            path += f".{key}" if path else key
        else:
            path += f"[{_show(part)}]"
    return path or "(top level)"


def _problem_line(error: vol.Invalid) -> str:
    # A missing key is reported at its schema key, `Required(name)`: show the name.
    loc = [part.schema if isinstance(part, vol.Marker) else part for part in error.path]
    if isinstance(error, _UnknownKey) and loc and not isinstance(loc[-1], str):
        loc = loc[:-1]  # "(top level): unknown key 7", not "[7]: ..."
    return f"{_format_loc(loc)}: {error.msg}"


# --- public entry points -------------------------------------------------------------------


def parse_config(data: object) -> BridgeConfig:
    """Validate an already-parsed configuration document.

    Args:
        data: the document, normally what `yaml.safe_load` returned.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: listing every problem found, one line each.
    """
    if not isinstance(data, dict):
        raise ConfigError([_top_level_problem("(top level)", data)])
    try:
        return _validator(BridgeConfig)(data)
    except vol.Invalid as exc:
        errors = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
        raise ConfigError([_problem_line(error) for error in errors]) from None


def _top_level_problem(where: str, data: object) -> str:
    sections = ", ".join(item.name for item in dataclasses.fields(BridgeConfig))
    return (
        f"{where}: the top level must be a mapping of sections ({sections}), got {_describe(data)}"
    )


def load_config(path: str | os.PathLike[str]) -> BridgeConfig:
    """Read, parse and validate a YAML configuration file.

    Args:
        path: the file to read.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML or fails validation;
            every problem is listed.
    """
    name = os.fspath(path)
    try:
        # utf-8-sig: editors on Windows like to start files with a byte order mark.
        with open(name, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{name}: cannot read: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                f"at offset {exc.start})"
            ]
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(name, exc)]) from None
    except RecursionError:
        raise ConfigError([f"{name}: invalid YAML: nested too deeply"]) from None
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        # PyYAML's constructors let Python's own errors out for values such as a date that
        # does not exist (2024-02-30), a 5,000-digit number or `!!int twelve`.
        raise ConfigError([f"{name}: invalid YAML value: {str(exc)[:200]}"]) from None
    # An empty file (or one with only comments) is an empty mapping, so the user learns
    # what is missing rather than that "None" is not a mapping.
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([_top_level_problem(name, data)])
    return parse_config(data)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error.

    Plain PyYAML keeps the last one silently: a second `pins:` would drop the first list.
    """


def _unique_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode
) -> Iterator[dict[object, object]]:
    # Compared as written (tag and text), before anything is built: merge keys (`<<`), aliases
    # and complex keys are left to PyYAML as before.
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key_node.value!r} appears twice",
                    key_node.start_mark,
                )
            seen.add(key)
    return (yield from loader.construct_yaml_map(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


def _yaml_problem(name: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        detail = exc.problem or "syntax error"
        if exc.context:
            detail = f"{detail} ({exc.context})"
        return f"{name}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {detail}"
    return f"{name}: invalid YAML: {exc}"


def summarize(config: BridgeConfig) -> list[str]:
    """Describe a configuration in a few human lines (for `check-config`).

    Args:
        config: a validated configuration.

    Returns:
        One line for the broker, one for how commands and states are paced, one for the
        driver, one per pin and one for Home Assistant discovery. The password is never
        included.
    """
    mqtt, malos, ha = config.mqtt, config.malos, config.homeassistant
    user = f" (user {mqtt.username})" if mqtt.username is not None else ""
    if mqtt.tls is not None:
        user += ", TLS" + (" without host name check" if mqtt.tls.insecure else "")
    retained = "applied" if mqtt.retained_commands == "apply" else "ignored"
    lines = [
        f"mqtt {mqtt.host}:{mqtt.port} as {config.client_id}{user}, "
        f"base topic {mqtt.base_topic}, qos {mqtt.qos}",
        f"retained commands {retained}, at most {mqtt.max_state_rate} states a second per pin",
        f"malos {malos.host}:{malos.base_port}..{malos.base_port + 3}, "
        f"updates every {malos.update_interval:g} s, offline after {malos.offline_after:g} s",
    ]
    topics = Topics(mqtt.base_topic)
    for spec in config.pins:
        line = f"pin {spec.pin} {spec.mode}"
        if spec.name is not None:
            line += f' "{spec.name}"'
        line += f" -> {topics.state(spec.pin)}"
        if spec.is_output:
            line += f", commands on {topics.command(spec.pin)}"
        notes = []
        if spec.inverted:
            notes.append("inverted")
        if spec.initial is not None:
            notes.append(f"initial {spec.initial}")
        if spec.pulse_ms is not None:
            notes.append(f"on = {spec.pulse_ms} ms pulse")
        if notes:
            line += f" ({', '.join(notes)})"
        lines.append(line)
    if ha.discovery:
        lines.append(f"home assistant discovery on, prefix {ha.prefix}, node_id {ha.node_id}")
    else:
        lines.append("home assistant discovery off")
    return lines
