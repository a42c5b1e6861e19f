"""The MQTT password: kept out of every repr, read from its source at run time, and checked
for what MQTT can carry. Neither the password nor a part of it is ever named in a message."""

from __future__ import annotations

import os

from ..errors import ConfigError
from .messages import Loc
from .rules import _shows, _text
from .strings import _NOT_UTF8, MQTT_MAX_BYTES

SOURCES = ("password", "password_file", "password_env")
"""The keys of `mqtt` a password can come from; at most one may be set."""


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


@_shows("string (never shown)")
def _secret(value: object, key: str) -> Secret:
    return value if isinstance(value, Secret) else Secret(_text(value, key))


def _password_problem(value: str) -> str | None:
    """What keeps a password from being sent (MQTT binary data, UTF-8 encoded by paho)."""
    if _NOT_UTF8.search(value):
        return "contains a lone surrogate (U+D800..U+DFFF), which cannot be encoded as UTF-8"
    if len(value.encode("utf-8")) > MQTT_MAX_BYTES:
        return f"is longer than MQTT allows: at most {MQTT_MAX_BYTES} bytes in UTF-8"
    return None


def read_password(
    password: Secret | None, password_file: str | None, password_env: str | None
) -> str | None:
    """The password, from whichever source is set (the first of them), read afresh.

    Raises:
        ConfigError: one line, `mqtt.<source>: <problem>`: the file or variable cannot be
            read, or holds a password MQTT cannot carry.
    """
    if password is not None:
        source, value = "password", password.get_secret_value()
    elif password_file is not None:
        source = "password_file"
        try:
            with open(password_file, encoding="utf-8") as file:
                # Enough to tell a password that is too long, not a whole /dev/zero; secret
                # files often end with a newline that is not part of the password.
                value = file.read(MQTT_MAX_BYTES + 3).rstrip("\r\n")
        except UnicodeDecodeError:  # its message would quote a byte of the password
            raise ConfigError([f"mqtt.{source}: cannot read: not UTF-8 text"]) from None
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            raise ConfigError([f"mqtt.{source}: cannot read: {exc}"]) from None
    elif password_env is not None:
        source = "password_env"
        try:
            found = os.environ.get(password_env)
        except ValueError:  # a name the environment cannot hold
            found = None
        if found is None:
            raise ConfigError([f"mqtt.{source}: {password_env} is not set"])
        if _NOT_UTF8.search(found):  # bytes that are not UTF-8, as Python decodes them
            raise ConfigError([f"mqtt.{source}: {password_env} is not UTF-8 text"])
        value = found
    else:
        return None
    problem = _password_problem(value)
    if problem is not None:
        raise ConfigError([f"mqtt.{source}: {problem}"])
    return value


def _password_readable(fields: dict[str, object]) -> list[tuple[Loc, str]]:
    """Validation's look outside: the password file or variable of a valid `mqtt` section can
    be read and holds a password MQTT can carry. Run by `parse_config`, not on construction;
    the other password rules (one source, with a user name) are the model's own."""
    sources = [name for name in SOURCES if fields.get(name) is not None]
    if sources not in (["password_file"], ["password_env"]) or fields.get("username") is None:
        return []
    file, variable = fields.get("password_file"), fields.get("password_env")
    try:
        read_password(
            None,
            None if file is None else str(file),
            None if variable is None else str(variable),
        )
    except ConfigError as exc:
        key, _, message = exc.problems[0].partition(": ")
        return [((key.removeprefix("mqtt."),), message)]
    return []
