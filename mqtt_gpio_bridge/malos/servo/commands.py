"""Parsing of `<base>/gpio/<pin>/set` payloads for a servo pin into angles (pure).

Accepted: a number (`90`, `90.0`, `" 90 "`; rounded to a whole degree, halves up), the JSON
object `{"angle": 90}`, and an empty payload, which does nothing (as for the other pins: Node-RED
sends `null` as an empty payload). Everything else is refused with a reason meant for the user,
the commands of switch pins (ON, OFF, TOGGLE, pulses) with a hint that this pin takes angles.
"""

from __future__ import annotations

import json
import math

from ..gpio.commands import Refusal, parse_command, payload_text, quote


def parse_angle(payload: bytes, lowest: int, highest: int) -> int | Refusal | None:
    """The whole angle a `set` payload asks for, a `Refusal`, or None for an empty payload.

    Args:
        payload: the MQTT payload as received.
        lowest: the pin's `min_angle`; smaller values are refused.
        highest: the pin's `max_angle`; larger values are refused (checked before rounding,
            so 180.4 is refused when the range ends at 180).
    """
    text = payload_text(payload)
    if isinstance(text, Refusal):
        return text
    if not text:
        return None
    value = _number(text)
    if isinstance(value, Refusal):
        return value
    if not math.isfinite(value) or not lowest <= value <= highest:
        return Refusal(f"angle {value:g} is out of range {lowest}..{highest}")
    return math.floor(value + 0.5)


def _number(text: str) -> float | Refusal:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return _not_an_angle(text)
    if isinstance(document, dict):
        if set(document) != {"angle"}:
            if "state" in document:
                return _not_an_angle(text)
            return Refusal('a JSON command for a servo is an object with only "angle"')
        document = document["angle"]
    if isinstance(document, bool) or not isinstance(document, int | float):
        return _not_an_angle(text)
    return float(document)


def _not_an_angle(text: str) -> Refusal:
    shown = quote(text)
    if not isinstance(parse_command(text.encode()), Refusal):
        # ON, OFF, TOGGLE, 1/0 are taken as numbers above; these are the switch words.
        return Refusal(f"{shown} is a switch command; a servo pin takes an angle such as 90")
    return Refusal(f'unknown payload {shown}; send an angle such as 90 or {{"angle": 90}}')


__all__ = ["parse_angle"]
