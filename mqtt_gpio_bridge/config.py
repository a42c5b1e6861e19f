"""The bridge's YAML configuration: typed models, loading and human-readable problems.

Every user mistake ends up as one line in `ConfigError.problems`, of the form
`<key path>: <message>`, and all of them are reported at once so a user fixes the file
in one go instead of one error per run.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import socket
from collections.abc import Iterator
from typing import Annotated, Literal, Self, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from .commands import MAX_PULSE_MS, MIN_PULSE_MS
from .errors import ConfigError
from .topics import Topics

__all__ = [
    "BridgeConfig",
    "HomeAssistantConfig",
    "MalosConfig",
    "MqttConfig",
    "PinSpec",
    "TlsConfig",
    "default_node_id",
    "load_config",
    "parse_config",
    "summarize",
]

PIN_COUNT = 16
MAX_PAYLOAD_LENGTH = 64
# The driver starts with a 1.0 s delay between updates and only applies a new delay after
# the sleep in progress, so anything shorter would call the driver gone right at start.
MIN_OFFLINE_AFTER = 1.5

Loc = tuple[int | str, ...]


# --- reusable field validators -------------------------------------------------------------


def _problem(kind: str, message: str) -> PydanticCustomError:
    # The message is formatted by the caller and passed without context, so pydantic uses it
    # verbatim: no "Value error, " prefix, and braces in user values are left alone.
    return PydanticCustomError(kind, message)


def _raise_problems(title: str, problems: list[tuple[Loc, str, object]]) -> None:
    """Raise several problems at once, each at its own key path below the current model.

    Pydantic turns a ValidationError raised inside a validator back into its line errors
    and prefixes their locations, so cross-field checks can point at the exact key.
    """
    if problems:
        details = [
            InitErrorDetails(type=_problem("config_rule", message), loc=loc, input=value)
            for loc, message, value in problems
        ]
        raise ValidationError.from_exception_data(title, details)


def _text(value: object, info: ValidationInfo) -> object:
    """Refuse non-strings with a quoting hint, instead of silently coercing them."""
    if value is None or isinstance(value, str):
        return value
    key = info.field_name or "value"
    # Never echo a secret back, even one YAML mangled into a number.
    secret = key == "password"
    if isinstance(value, bool):
        word, example = ("ON/on/yes/true", "ON") if value else ("OFF/off/no/false", "OFF")
        raise _problem(
            "yaml_bool",
            f"YAML read an unquoted {word} as the boolean {str(value).lower()}; "
            f'quote it, e.g. {key}: "{example}"',
        )
    if isinstance(value, int | float):
        if secret:
            raise _problem("yaml_number", "YAML read the unquoted password as a number; quote it")
        raise _problem(
            "yaml_number",
            f"YAML read the unquoted {_show(value)} as a number; quote it, "
            f'e.g. {key}: "{_show(value)}"',
        )
    if secret:
        raise _problem("string_type", "must be a quoted string")
    raise _problem("string_type", f"must be a string, got {_describe(value)}")


def _not_empty(value: str | None) -> str | None:
    # None passes: `client_id:` or `name:` left empty in YAML means "not set".
    if value is not None and not value.strip():
        raise _problem("empty", "must not be empty")
    return value


def _int_range(low: int, high: int, why: str = "") -> AfterValidator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise _problem("out_of_range", f"{_show(value)} is out of range {low}..{high}{why}")
        return value

    return AfterValidator(check)


def _seconds(
    maximum: float | None = None, minimum: float | None = None, why: str = ""
) -> AfterValidator:
    """Check a duration: finite, > 0, optionally <= maximum and >= minimum."""

    def check(value: float) -> float:
        if not math.isfinite(value):
            raise _problem("out_of_range", f"must be a finite number of seconds, got {value}")
        if minimum is not None and value < minimum:
            raise _problem(
                "out_of_range", f"must be at least {minimum:g} seconds, got {value:g}{why}"
            )
        if value <= 0 or (maximum is not None and value > maximum):
            bound = f" and at most {maximum:g}" if maximum is not None else ""
            raise _problem("out_of_range", f"must be greater than 0{bound} seconds, got {value:g}")
        return value

    return AfterValidator(check)


def _topic_prefix(value: str) -> str:
    # The prefix is joined with "/" and published to; wildcards are only valid in filters.
    if not value:
        raise _problem("topic", "must not be empty")
    if "+" in value or "#" in value:
        raise _problem("topic", "must not contain the MQTT wildcards '+' or '#'")
    if value.startswith("/") or value.endswith("/"):
        raise _problem("topic", "must not start or end with '/'")
    return value


def _node_id(value: str) -> str:
    # Home Assistant puts the node id into discovery topics and unique ids.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise _problem("node_id", f"{_show(value)} may only contain letters, digits, '_' and '-'")
    return value


def _payload(value: str) -> str:
    if not value:
        raise _problem("empty", "must not be empty")
    if len(value) > MAX_PAYLOAD_LENGTH:
        raise _problem(
            "too_long",
            f"must be at most {MAX_PAYLOAD_LENGTH} characters, got {len(value)}",
        )
    return value


def _word(value: object) -> object:
    # `mode: Output` and `initial: " ON "` mean what they obviously mean.
    return value.strip().lower() if isinstance(value, str) else value


def _on_off(value: object) -> object:
    # PyYAML reads unquoted on/off as booleans; for a state that is exactly what was meant.
    if isinstance(value, bool):
        return "on" if value else "off"
    return _word(value)


def _empty_section(value: object) -> object:
    # `mqtt:` with nothing below it parses as None; treat it like an absent section.
    return {} if value is None else value


NonEmptyText = Annotated[str, BeforeValidator(_text), AfterValidator(_not_empty)]
OptionalText = Annotated[str | None, BeforeValidator(_text)]
TopicPrefix = Annotated[str, BeforeValidator(_text), AfterValidator(_topic_prefix)]
Payload = Annotated[str, BeforeValidator(_text), AfterValidator(_payload)]
Seconds = Annotated[float, Field(strict=True), _seconds()]


# --- models --------------------------------------------------------------------------------


def _readable_file(value: str | None) -> str | None:
    if value is not None and not os.access(value, os.R_OK):
        reason = "does not exist" if not os.path.exists(value) else "is not readable"
        raise _problem("file", f"{value} {reason}")
    return value


ReadableFile = Annotated[str | None, BeforeValidator(_text), AfterValidator(_readable_file)]


def _tls_switch(value: object) -> object:
    # `tls: true` is TLS with the system's CAs; `tls: false` (or nothing) is plain TCP.
    if value is True:
        return {}
    if value is False:
        return None
    return value


class TlsConfig(BaseModel):
    """TLS to the broker (`tls: true` or `tls: {}` for the system's CAs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: ReadableFile = None
    certfile: ReadableFile = None
    keyfile: ReadableFile = None
    # Only an explicit flag turns the host name check off; the certificate is still verified.
    insecure: StrictBool = False

    @model_validator(mode="after")
    def _check_pair(self) -> Self:
        if self.keyfile is not None and self.certfile is None:
            _raise_problems(
                type(self).__name__,
                [(("certfile",), "a client key needs its certificate (certfile)", None)],
            )
        return self


class MqttConfig(BaseModel):
    """Connection to the MQTT broker and the topic layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: NonEmptyText = "localhost"
    port: Annotated[StrictInt, _int_range(1, 65535)] = 1883
    username: OptionalText = None
    # SecretStr keeps the password out of every repr and log line.
    password: Annotated[SecretStr | None, BeforeValidator(_text)] = None
    # Docker secrets and systemd credentials hand the password over as a file; containers and
    # CI often as an environment variable. At most one of the three sources may be set.
    password_file: OptionalText = None
    password_env: OptionalText = None
    client_id: Annotated[str | None, BeforeValidator(_text), AfterValidator(_not_empty)] = None
    base_topic: TopicPrefix = "matrix"
    qos: Annotated[StrictInt, _int_range(0, 2)] = 1
    keepalive: Annotated[StrictInt, _int_range(5, 3600)] = 60
    tls: Annotated[TlsConfig | None, BeforeValidator(_tls_switch)] = None
    reconnect_min: Seconds = 0.5
    reconnect_max: Annotated[float, Field(strict=True), _seconds(maximum=3600)] = 30.0

    def secret(self) -> str | None:
        """The password, from whichever source is configured (read afresh each call).

        Raises:
            ConfigError: the password file or variable went away since validation.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                with open(self.password_file, encoding="utf-8") as file:
                    # Secret files often end with a newline that is not part of the password.
                    return file.read().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError([f"mqtt.password_file: cannot read: {exc}"]) from None
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError([f"mqtt.password_env: {self.password_env} is not set"])
            return value
        return None

    @model_validator(mode="after")
    def _check_credentials(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        sources = [
            name
            for name in ("password", "password_file", "password_env")
            if getattr(self, name) is not None
        ]
        if len(sources) > 1:
            problems.append(
                ((sources[1],), f"set only one of {', '.join(sources)}", getattr(self, sources[1]))
            )
        elif sources and self.username is None:
            problems.append(((sources[0],), "a password needs mqtt.username", None))
        else:
            try:
                self.secret()
            except ConfigError as exc:
                key, _, message = exc.problems[0].partition(": ")
                problems.append(((key.removeprefix("mqtt."),), message, None))
        if self.reconnect_min > self.reconnect_max:
            problems.append(
                (
                    ("reconnect_min",),
                    f"must not exceed mqtt.reconnect_max ({self.reconnect_max:g} s)",
                    self.reconnect_min,
                )
            )
        _raise_problems(type(self).__name__, problems)
        return self


class MalosConfig(BaseModel):
    """Where the MALOS GPIO driver listens and how the bridge paces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: NonEmptyText = "127.0.0.1"
    # The driver uses four consecutive ports: config, keep-alive, errors, updates.
    base_port: Annotated[
        StrictInt, _int_range(1, 65532, " (the driver uses base_port to base_port + 3)")
    ] = 20049
    update_interval: Annotated[float, Field(strict=True), _seconds(maximum=60)] = 0.1
    keepalive_interval: Seconds = 1.0
    ping_timeout: Seconds = 5.0
    offline_after: Annotated[
        float,
        Field(strict=True),
        _seconds(
            minimum=MIN_OFFLINE_AFTER,
            why=" (the driver starts with 1 s between updates and would look offline at start)",
        ),
    ] = 3.0

    @model_validator(mode="after")
    def _check_timing(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        if self.keepalive_interval >= self.ping_timeout:
            problems.append(
                (
                    ("keepalive_interval",),
                    f"must be less than malos.ping_timeout ({self.ping_timeout:g} s), or the "
                    "driver stops sending updates between two pings",
                    self.keepalive_interval,
                )
            )
        if self.offline_after <= self.update_interval:
            problems.append(
                (
                    ("offline_after",),
                    f"must be greater than malos.update_interval ({self.update_interval:g} s), "
                    "or every pause between updates would look like an outage",
                    self.offline_after,
                )
            )
        _raise_problems(type(self).__name__, problems)
        return self


def default_node_id() -> str:
    """Derive a Home Assistant node id from this machine's host name.

    Returns:
        `matrix_` plus the lower-cased host name with every run of characters outside
        `[a-z0-9_]` replaced by one `_`, e.g. `matrix_raspberrypi`.
    """
    slug = re.sub(r"[^a-z0-9_]+", "_", socket.gethostname().lower())
    slug = re.sub(r"_+", "_", slug).strip("_")
    return f"matrix_{slug}" if slug else "matrix"


class HomeAssistantConfig(BaseModel):
    """Home Assistant MQTT discovery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discovery: StrictBool = True
    prefix: TopicPrefix = "homeassistant"
    node_id: Annotated[str, BeforeValidator(_text), AfterValidator(_node_id)] = Field(
        default_factory=default_node_id
    )
    device_name: NonEmptyText = "MATRIX GPIO"
    model: NonEmptyText = "MATRIX Creator"


class PinSpec(BaseModel):
    """One GPIO pin the bridge exposes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pin: Annotated[StrictInt, _int_range(0, PIN_COUNT - 1)]
    mode: Annotated[Literal["input", "output"], BeforeValidator(_word)]
    name: Annotated[str | None, BeforeValidator(_text), AfterValidator(_not_empty)] = None
    inverted: StrictBool = False
    initial: Annotated[Literal["on", "off"] | None, BeforeValidator(_on_off)] = None
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    device_class: OptionalText = None
    icon: OptionalText = None
    # Outputs only: a plain "on" command becomes a press of this many milliseconds.
    pulse_ms: Annotated[StrictInt, _int_range(MIN_PULSE_MS, MAX_PULSE_MS)] | None = None

    @property
    def is_output(self) -> bool:
        """Whether the bridge drives this pin (and accepts commands for it)."""
        return self.mode == "output"

    @model_validator(mode="after")
    def _check_pin(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        if self.initial is not None and not self.is_output:
            problems.append(
                (
                    ("initial",),
                    f"only outputs have an initial state; pin {self.pin} is an input",
                    self.initial,
                )
            )
        if self.pulse_ms is not None and not self.is_output:
            problems.append(
                (
                    ("pulse_ms",),
                    f"only outputs can be pulsed; pin {self.pin} is an input",
                    self.pulse_ms,
                )
            )
        # Commands are matched case-insensitively, so these must stay distinguishable.
        if self.payload_on.casefold() == self.payload_off.casefold():
            problems.append(
                (
                    ("payload_off",),
                    f'must differ from payload_on ("{self.payload_on}"), ignoring case',
                    self.payload_off,
                )
            )
        _raise_problems(type(self).__name__, problems)
        return self


class BridgeConfig(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mqtt: Annotated[MqttConfig, BeforeValidator(_empty_section)] = Field(default_factory=MqttConfig)
    malos: Annotated[MalosConfig, BeforeValidator(_empty_section)] = Field(
        default_factory=MalosConfig
    )
    homeassistant: Annotated[HomeAssistantConfig, BeforeValidator(_empty_section)] = Field(
        default_factory=HomeAssistantConfig
    )
    # Validated even when absent, so a missing `pins` is reported like an empty one.
    pins: tuple[PinSpec, ...] = Field(default=(), validate_default=True)

    @property
    def client_id(self) -> str:
        """The MQTT client id: the configured one, else one unique to this node."""
        if self.mqtt.client_id is not None:
            return self.mqtt.client_id
        return f"mqtt-gpio-bridge-{self.homeassistant.node_id}"

    @field_validator("pins", mode="wrap")
    @classmethod
    def _check_pins(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        if value is None or (isinstance(value, list | tuple) and not value):
            raise _problem("no_pins", "at least one pin must be configured")
        if not isinstance(value, list | tuple):
            raise _problem(
                "pins_list",
                f"must be a list of pins, e.g. [{{pin: 0, mode: output}}], got {_describe(value)}",
            )
        # Duplicates are found on the raw items so that they are reported even when some
        # other pin (or key) is invalid and the validated tuple never comes to exist.
        duplicates = _duplicate_pins(value)
        try:
            pins = handler(value)
        except ValidationError as exc:
            if not duplicates:
                raise
            details = [_reinit(error) for error in exc.errors()]
            raise ValidationError.from_exception_data(exc.title, details + duplicates) from None
        if duplicates:
            raise ValidationError.from_exception_data(cls.__name__, duplicates)
        return pins


def _duplicate_pins(items: list[object] | tuple[object, ...]) -> list[InitErrorDetails]:
    first_index: dict[int, int] = {}
    problems: list[InitErrorDetails] = []
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
            message = f"pin {pin} is already configured at pins[{first_index[pin]}]"
            problems.append(
                InitErrorDetails(
                    type=_problem("duplicate_pin", message), loc=(index, "pin"), input=pin
                )
            )
        else:
            first_index[pin] = index
    return problems


def _reinit(error: ErrorDetails) -> InitErrorDetails:
    # The formatted message is kept as a template without context, so it is not re-formatted.
    return InitErrorDetails(
        type=_problem(error["type"], error["msg"]), loc=error["loc"], input=error["input"]
    )


# --- turning pydantic errors into lines a user can act on ---------------------------------


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


def _format_loc(loc: Loc) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{_show(part)}]"
        else:
            key = part if len(part) <= 60 else part[:57] + "..."
            path += f".{key}" if path else key
    return path or "(top level)"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """Find the model that validates the mapping at `loc` (list indices are skipped)."""
    model: type[BaseModel] = BridgeConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        nested = _find_model(field.annotation) if field is not None else None
        if nested is None:
            return None
        model = nested
    return model


def _find_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _find_model(argument)
        if found is not None:
            return found
    return None


def _unknown_key(loc: Loc) -> str:
    key = loc[-1]
    model = _model_at(loc[:-1])
    if model is None or not isinstance(key, str):
        return "unknown key"
    matches = difflib.get_close_matches(key.lower(), list(model.model_fields), n=1)
    return f"unknown key (did you mean {matches[0]!r}?)" if matches else "unknown key"


def _problem_line(error: ErrorDetails) -> str:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = _unknown_key(loc)
    elif kind == "invalid_key":
        # A key that is not a name (e.g. a number) cannot be a field of any section.
        return f"{_format_loc(loc[:-1])}: unknown key {_show(error['input'])}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"must be a mapping of keys to values, got {_describe(error['input'])}"
    elif message.startswith("Input should") and "password" not in loc:
        # Pydantic's own type messages do not say what was found; YAML surprises often hide there.
        message = f"{message}, got {_describe(error['input'])}"
    return f"{_format_loc(loc)}: {message}"


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
        return BridgeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_problem_line(error) for error in exc.errors()]) from None


def _top_level_problem(where: str, data: object) -> str:
    sections = ", ".join(BridgeConfig.model_fields)
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
        One line for the broker, one for the driver, one per pin and one for Home
        Assistant discovery. The password is never included.
    """
    mqtt, malos, ha = config.mqtt, config.malos, config.homeassistant
    user = f" (user {mqtt.username})" if mqtt.username is not None else ""
    if mqtt.tls is not None:
        user += ", TLS" + (" without host name check" if mqtt.tls.insecure else "")
    lines = [
        f"mqtt {mqtt.host}:{mqtt.port} as {config.client_id}{user}, "
        f"base topic {mqtt.base_topic}, qos {mqtt.qos}",
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
