"""The Everloop ring as a Home Assistant MQTT JSON-schema light: its state and state payload (pure).

The driver never reports colours (the image a client last sent is the only record of what the
ring shows), so the bridge keeps what it last showed as a `LightState`, renders frames from it
(`effects.py`), publishes it retained on `<base>/everloop/state` and reads that payload back at
start to show again what a previous run showed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

RGBW = tuple[int, int, int, int]
"""One LED or colour: red, green, blue, white, each 0..255."""

EFFECTS = ("rainbow", "spin", "breathe", "blink")
"""The effects the ring can run, in the order Home Assistant lists them."""
NO_EFFECT = "none"
"""Accepted as "no effect" besides JSON null and "off" (Home Assistant's name for it)."""

_CHANNELS = ("r", "g", "b", "w")


@dataclass(frozen=True, slots=True)
class LightState:
    """What the ring shows, or shows again at the next ON.

    Attributes:
        on: whether the ring is lit.
        brightness: 0..255, Home Assistant's scale; applied to `color`, `leds` and effects.
        color: the chosen colour, before brightness.
        effect: one of `EFFECTS`, or None for a still image.
        leds: a per-LED image (before brightness) sent from Node-RED; None: every LED `color`.
    """

    on: bool = False
    brightness: int = 255
    color: RGBW = (255, 255, 255, 0)
    effect: str | None = None
    leds: tuple[RGBW, ...] | None = None


def state_json(state: LightState) -> str:
    """The retained `<base>/everloop/state` payload: Home Assistant's JSON light schema.

    Compact, keys always in the same order; `leds` (ignored by Home Assistant, read by
    Node-RED) only when the state holds a per-LED image.
    """
    document: dict[str, object] = {
        "state": "ON" if state.on else "OFF",
        "brightness": state.brightness,
        "color_mode": "rgbw",
        "color": dict(zip(_CHANNELS, state.color, strict=True)),
        "effect": state.effect,
    }
    if state.leds is not None:
        document["leds"] = [list(led) for led in state.leds]
    return json.dumps(document, separators=(",", ":"))


def from_json(text: str | bytes) -> LightState | None:
    """Read back a `state_json` payload, or None for anything else; never raises.

    `state`, `brightness`, `color` and `effect` are required, `leds` optional, other keys
    ignored. The LED count of `leds` is not checked here (the board may not be known yet):
    `render` shows `color` instead of an image of the wrong length.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(document, dict) or "effect" not in document:
        return None
    state = document.get("state")
    brightness = document.get("brightness")
    color = _rgbw_object(document.get("color"))
    effect = document.get("effect")
    if not isinstance(state, str) or state.upper() not in ("ON", "OFF"):
        return None
    if not _is_channel(brightness) or color is None:
        return None
    if isinstance(effect, str) and effect.casefold() == NO_EFFECT:
        effect = None
    if effect is not None and effect not in EFFECTS:
        return None
    leds: tuple[RGBW, ...] | None = None
    if document.get("leds") is not None:
        leds = _rgbw_lists(document["leds"])
        if leds is None:
            return None
    assert isinstance(brightness, int)  # _is_channel said so; for mypy
    return LightState(state.upper() == "ON", brightness, color, effect, leds)


def _is_channel(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255


def _rgbw_object(value: object) -> RGBW | None:
    if not isinstance(value, dict) or not all(_is_channel(value.get(key)) for key in _CHANNELS):
        return None
    return (value["r"], value["g"], value["b"], value["w"])


def _rgbw_lists(value: object) -> tuple[RGBW, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    leds: list[RGBW] = []
    for led in value:
        if not isinstance(led, list) or len(led) != 4 or not all(map(_is_channel, led)):
            return None
        leds.append((led[0], led[1], led[2], led[3]))
    return tuple(leds)


__all__ = ["EFFECTS", "NO_EFFECT", "RGBW", "LightState", "from_json", "state_json"]
