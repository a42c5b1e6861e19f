"""Checks of text that leaves the bridge: MQTT strings (client id, user name, topics), host
names, payloads and file names; each refused before a library fails late on it."""

from __future__ import annotations

import os
import re

import voluptuous as vol

from ..malos.gpio.codec import PIN_COUNT
from ..mqtt.topics import Topics
from .messages import _show
from .rules import TextCheck, _shows

MAX_PAYLOAD_LENGTH = 64
MQTT_MAX_BYTES = 65535
"""The longest string MQTT 3.1.1 carries in one field (a two-byte length): a client id, user
name, password or topic, counted in bytes once encoded as UTF-8."""
HEALTH_ID_SUFFIX = len("-health-") + 6
"""What `mqtt-gpio-bridge health` adds to the client id: `-health-` and 6 hex digits."""
MAX_NODE_ID_LENGTH = 128
MAX_HOST_LENGTH = 253
"""The longest DNS name, in characters, without a final dot."""

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
    @_shows(f"at most {limit} bytes in UTF-8")
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

    @_shows(f"no NUL or control characters, at most {limit} bytes in UTF-8")
    def check(value: str, key: str) -> str:
        return within(_mqtt_characters(value, key), key)

    return check


@_shows("a topic: no `+`, `#`, NUL or control characters, no `/` at either end, no `$` first")
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


@_shows(f"letters, digits, `_` and `-`, at most {MAX_NODE_ID_LENGTH} characters")
def _node_id(value: str, key: str) -> str:
    # Home Assistant puts the node id into discovery topics and unique ids, the bridge into
    # its client id; bounded, so that these always fit.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise vol.Invalid(f"{_show(value)} may only contain letters, digits, '_' and '-'")
    if len(value) > MAX_NODE_ID_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_NODE_ID_LENGTH} characters, got {len(value)}")
    return value


@_shows(
    f"a host name (at most {MAX_HOST_LENGTH} characters, 1 to 63 between dots) or an IP address"
)
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
        # Python 3.13 puts "'idna' codec can't encode ... in position N: " before the reason.
        if reason.startswith("'idna' codec"):
            reason = reason.rpartition(": ")[2]
        if "label" in reason:
            reason = "every part between dots must have 1 to 63 characters"
        raise vol.Invalid(f"{_show(value)} is not a valid host name: {reason}") from None
    if len(encoded) > MAX_HOST_LENGTH:
        raise vol.Invalid(
            f"must be at most {MAX_HOST_LENGTH} characters (the longest host name), "
            f"got {len(encoded)} once encoded for DNS"
        )
    return value


@_shows(f"1 to {MAX_PAYLOAD_LENGTH} characters, no NUL")
def _payload(value: str, key: str) -> str:
    if not value:
        raise vol.Invalid("must not be empty")
    if len(value) > MAX_PAYLOAD_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_PAYLOAD_LENGTH} characters, got {len(value)}")
    return _payload_characters(value, key)


@_shows("a readable file")
def _readable_file(value: str, key: str) -> str:
    try:
        readable = os.access(value, os.R_OK)
        exists = readable or os.path.exists(value)
    except ValueError:  # a NUL byte, or a lone surrogate the file system cannot encode
        raise vol.Invalid(f"{_show(value)} is not a valid file name") from None
    if not readable:
        raise vol.Invalid(f"{value} {'is not readable' if exists else 'does not exist'}")
    return value
