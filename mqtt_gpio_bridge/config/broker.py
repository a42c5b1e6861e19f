"""The `mqtt` section: the broker connection (with TLS), the password and the topic layout.

Construction is pure: `__post_init__` checks the cross-field rules and touches neither files
nor the environment. Validation (`parse_config`) also reads the password file or variable
(`_password_readable`, given to the section's rule in `model.BridgeConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import voluptuous as vol

from .kinds import FileName, Flag, Host, ReadableFile, Seconds, VariableName, _doc
from .messages import Loc, _describe
from .password import SOURCES, Secret, _password_problem, _secret, read_password
from .rules import (
    _choice,
    _integer,
    _not_empty,
    _refuse_broken,
    _Rule,
    _seconds,
    _shows,
    _text,
    _word,
)
from .schema import _validator
from .strings import HEALTH_ID_SUFFIX, MQTT_MAX_BYTES, _base_topic, _mqtt_string, _topic_prefix


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsConfig:
    """TLS to the broker (`tls: true` or `tls: {}` for the system's CAs)."""

    ca_file: ReadableFile = field(
        default=None,
        metadata=_doc("the CA certificates to check the broker's with", "the system's CAs"),
    )
    certfile: ReadableFile = field(default=None, metadata=_doc("a client certificate"))
    keyfile: ReadableFile = field(
        default=None, metadata=_doc("the client certificate's key; needs `certfile`")
    )
    # Only an explicit flag turns the host name check off; the certificate is still verified.
    insecure: Flag = field(
        default=False,
        metadata=_doc("skip the host name check (the certificate is still verified)"),
    )

    def __post_init__(self) -> None:
        if self.keyfile is not None and self.certfile is None:
            _refuse_broken([(("certfile",), "a client key needs its certificate (certfile)")])


@_shows("`true`, `false` or a mapping (`mqtt.tls` below)")
def _tls_switch(value: object, key: str) -> object:
    # `tls: true` is TLS with the system's CAs; `tls: false` (or nothing) is plain TCP.
    if value is False or value is None:
        return None
    if value is not True and not isinstance(value, dict | TlsConfig):
        raise vol.Invalid(
            f"must be true, false or a mapping of keys to values, got {_describe(value)}"
        )
    return _validator(TlsConfig)({} if value is True else value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttConfig:
    """Connection to the MQTT broker and the topic layout."""

    host: Host = field(default="localhost", metadata=_doc("the broker"))
    port: Annotated[int, _Rule(_integer(1, 65535))] = field(
        default=1883, metadata=_doc("the broker's port")
    )
    username: Annotated[str | None, _Rule(_text, _mqtt_string(), nullable=True)] = field(
        default=None, metadata=_doc("the user name for the broker")
    )
    # A Secret keeps the password out of every repr and log line.
    password: Annotated[Secret | None, _Rule(_secret, nullable=True)] = field(
        default=None,
        metadata=_doc(
            "the password for the broker, never logged or printed; at most 65535 bytes in "
            "UTF-8 (MQTT's limit), any character. Needs `username`; set only one of "
            "`password`, `password_file` and `password_env`"
        ),
    )
    # Docker secrets and systemd credentials hand the password over as a file; containers and
    # CI often as an environment variable. At most one of the three sources may be set.
    password_file: FileName = field(
        default=None,
        metadata=_doc(
            "the password from this file instead (UTF-8 text, a final newline is not part of "
            "it; read and checked by `check-config` and again at every connection)"
        ),
    )
    password_env: VariableName = field(
        default=None,
        metadata=_doc(
            "the password from this environment variable instead (UTF-8 text; read and "
            "checked by `check-config` and again at every connection)"
        ),
    )
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
    ] = field(
        default=None,
        metadata=_doc(
            "the MQTT client id, unique per board by default (`health` connects as "
            "`<client_id>-health-xxxxxx`)",
            "`mqtt-gpio-bridge-<node_id>`",
        ),
    )
    base_topic: Annotated[str, _Rule(_text, _topic_prefix, _base_topic)] = field(
        default="matrix",
        metadata=_doc(
            "prefix of every topic; use e.g. `matrix/kitchen` for several boards. Its length "
            "leaves room for `<base_topic>/gpio/15/state` in MQTT's 65535 bytes"
        ),
    )
    qos: Annotated[int, _Rule(_integer(0, 2))] = field(
        default=1, metadata=_doc("QoS of the command subscription and of the states")
    )
    keepalive: Annotated[int, _Rule(_integer(5, 3600))] = field(
        default=60, metadata=_doc("MQTT keep-alive, in seconds")
    )
    tls: Annotated[TlsConfig | None, _Rule(_tls_switch)] = field(
        default=None,
        metadata=_doc("TLS to the broker: `true` for the system's CAs, or a mapping", "off"),
    )
    reconnect_min: Seconds = field(
        default=0.5,
        metadata=_doc(
            "the shortest wait before reconnecting to the broker (backoff bound); at most "
            "`reconnect_max`"
        ),
    )
    reconnect_max: Annotated[float, _Rule(_seconds(maximum=3600))] = field(
        default=30.0,
        metadata=_doc("the longest wait between two reconnections (backoff bound)"),
    )
    # A command the broker delivers as retained is a replay (at start, at every reconnect):
    # by default it is reported and not obeyed.
    retained_commands: Annotated[
        Literal["ignore", "apply"], _Rule(_word, _choice("ignore", "apply"))
    ] = field(
        default="ignore",
        metadata=_doc(
            "whether the bridge acts on a command the broker delivers as retained (a replay, "
            "at start and at every reconnect): `ignore` reports it, `apply` obeys it"
        ),
    )
    # State messages per pin per second at most, whatever rate the driver's updates flip it.
    max_state_rate: Annotated[int, _Rule(_integer(1, 1000))] = field(
        default=20,
        metadata=_doc(
            "at most this many state messages per pin per second; the latest level is always "
            "published in the end"
        ),
    )

    def secret(self) -> str | None:
        """The password, from whichever source is configured (read afresh each call).

        Raises:
            ConfigError: the password file or variable went away since validation, or holds
                a password MQTT cannot carry (checked at every read: a file can change).
        """
        return read_password(self.password, self.password_file, self.password_env)

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
        sources = [name for name in SOURCES if getattr(self, name) is not None]
        if len(sources) > 1:
            problems.append(((sources[1],), f"set only one of {', '.join(sources)}"))
        elif sources and self.username is None:
            problems.append(((sources[0],), "a password needs mqtt.username"))
        elif self.password is not None:
            # The file or variable is read by validation (`_password_readable`) and at run time.
            problem = _password_problem(self.password.get_secret_value())
            if problem is not None:
                problems.append((("password",), problem))
        if self.reconnect_min > self.reconnect_max:
            problems.append(
                (
                    ("reconnect_min",),
                    f"must not exceed mqtt.reconnect_max ({self.reconnect_max:g} s)",
                )
            )
        _refuse_broken(problems)
