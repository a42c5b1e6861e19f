"""Parsing of `<base>/gpio/<pin>/set` payloads into commands (pure).

Accepted, case-insensitive and trimmed: the pin's own `payload_on`/`payload_off`, `ON`/`OFF`,
`1`/`0`, `true`/`false`, `high`/`low`, `TOGGLE`, the JSON forms `true`/`false`, `1`/`0`,
`"ON"` and `{"state": "ON"}`, and the pulse `{"state": "ON", "duration_ms": 500}`. An empty
payload is a no-op (Node-RED sends `null` as an empty payload). Everything else is refused
with a reason meant for the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

MAX_PAYLOAD_BYTES = 256
"""Longer payloads are refused before any decoding."""

MIN_PULSE_MS = 1
MAX_PULSE_MS = 3_600_000
"""Pulses are bounded: one millisecond to one hour."""

_ON_WORDS = frozenset({"on", "1", "true", "high"})
_OFF_WORDS = frozenset({"off", "0", "false", "low"})


class Action(Enum):
    """What a command asks of an output pin, in the user's terms (before `inverted`)."""

    ON = "on"
    OFF = "off"
    TOGGLE = "toggle"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Command:
    """A valid command.

    Attributes:
        action: what to do.
        duration_ms: for a pulse, when to undo it (the pin goes back to the opposite level).
    """

    action: Action
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A payload that is not a command, and why."""

    reason: str


def parse_command(
    payload: bytes, payload_on: str = "ON", payload_off: str = "OFF"
) -> Command | Refusal:
    """Turn a raw `set` payload into a `Command` or a `Refusal`; never raises.

    Args:
        payload: the MQTT payload as received.
        payload_on: the pin's configured "on" payload (also accepted, case-insensitively).
        payload_off: the pin's configured "off" payload.
    """
    text = payload_text(payload)
    if isinstance(text, Refusal):
        return text
    if not text:
        return Command(Action.NOTHING)
    word = _word_action(text, payload_on, payload_off)
    if word is not None:
        return Command(word)
    if text[0] in '{"':
        return _parse_json(text, payload_on, payload_off)
    return Refusal(f"unknown payload {quote(text)}; use {payload_on}, {payload_off} or TOGGLE")


def payload_text(payload: bytes) -> str | Refusal:
    """A `set` payload as trimmed text, or why it is refused before any parsing (too long, not
    UTF-8); shared by every kind of pin."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Refusal(f"payload of {len(payload)} bytes is longer than {MAX_PAYLOAD_BYTES}")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Refusal("payload is not UTF-8 text")


def _word_action(text: str, payload_on: str, payload_off: str) -> Action | None:
    word = text.casefold()
    if word == payload_on.strip().casefold() or word in _ON_WORDS:
        return Action.ON
    if word == payload_off.strip().casefold() or word in _OFF_WORDS:
        return Action.OFF
    if word == "toggle":
        return Action.TOGGLE
    return None


def _parse_json(text: str, payload_on: str, payload_off: str) -> Command | Refusal:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return Refusal(f"payload {quote(text)} is not valid JSON")
    duration_ms = None
    if isinstance(document, dict):
        unknown = set(document) - {"state", "duration_ms"}
        if "state" not in document or unknown:
            return Refusal('a JSON command is an object with "state" and optionally "duration_ms"')
        if "duration_ms" in document:
            duration = _pulse_duration(document["duration_ms"])
            if isinstance(duration, Refusal):
                return duration
            duration_ms = duration
        document = document["state"]
    action = _json_state(document, payload_on, payload_off)
    if action is None:
        return Refusal(f"unknown JSON state {quote(json.dumps(document))}")
    return Command(action, duration_ms)


def _json_state(document: object, payload_on: str, payload_off: str) -> Action | None:
    if isinstance(document, bool):
        return Action.ON if document else Action.OFF
    if isinstance(document, int) and document in (0, 1):
        return Action.ON if document else Action.OFF
    if isinstance(document, str):
        return _word_action(document.strip(), payload_on, payload_off)
    return None


def _pulse_duration(value: object) -> int | Refusal:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return Refusal(f"duration_ms must be a whole number of milliseconds, got {value!r}"[:120])
    if not MIN_PULSE_MS <= value <= MAX_PULSE_MS:
        return Refusal(
            f"duration_ms {value} is out of range {MIN_PULSE_MS}..{MAX_PULSE_MS} (one hour)"
        )
    return value


def quote(text: str, limit: int = 40) -> str:
    """`text` as a refusal quotes it: repr, cut at `limit` characters."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)
