"""Parsing of `<base>/everloop/set` payloads into the ring's next `LightState` (pure).

Accepted:

* Home Assistant's JSON light commands: `state` ("ON", "OFF" or "TOGGLE", any case),
  `brightness` 0..255, `color` `{"r", "g", "b", "w"}`, `effect` (one of `EFFECTS`, or "none",
  "off", null to stop). A command with `color`, `brightness` or `effect` and no `state` turns the
  light on; `brightness` 0 turns it off and keeps the previous brightness for the next ON.
  "OFF" keeps colour, brightness, effect and image for the next ON. A colour ends `rainbow`
  (which has no colour) and recolours the other effects; a colour or `effect` ends a per-LED
  image. `transition` and `flash` are accepted with any value and ignored: the ring changes at
  once and never flashes.
* Node-RED's per-LED forms, each alone in its object: `{"leds": [[r, g, b, w], ...]}` with one
  entry per LED of the board, and `{"led": i, "color": [r, g, b, w]}` for one LED, starting
  from the image shown (all off while the light is off). A colour may be `[r, g, b]` (white 0)
  or an `{"r", "g", "b", "w"}` object. Both light the ring, stop any effect and keep brightness.
* `ON`, `OFF` and `TOGGLE` alone (any case, trimmed), for mosquitto_pub.
* An empty payload: nothing changes (Node-RED sends `null` as an empty payload).

Numbers are whole numbers; a float with no fraction (`128.0`, as JavaScript may write it) is
taken as that whole number, as for a GPIO pulse's `duration_ms`; JSON `true` is not 1.
Everything else is refused with a reason meant for the user.
"""

from __future__ import annotations

import json
from dataclasses import replace

from ..gpio.commands import Refusal, quote
from .codec import CREATOR_LEDS, MAX_VALUE, VOICE_LEDS
from .light import EFFECTS, NO_EFFECT, RGBW, LightState

MAX_PAYLOAD_BYTES = 4096
"""Longer payloads are refused before any decoding. A whole-ring image for 35 LEDs is 640 bytes
compact and 780 with `json.dumps`'s spaces, but 1978 bytes pretty-printed with an indent of 2
and 3102 with 4 (as a Node-RED template or a hand-written file may send it): 4 KiB takes all of
these, and parsing it costs well under a millisecond."""

_HA_KEYS = ("state", "brightness", "color", "effect", "transition", "flash")
_NODE_RED_KEYS = ("leds", "led")
_KNOWN_KEYS = _HA_KEYS + _NODE_RED_KEYS
_CHANNELS = ("r", "g", "b", "w")
_STOP_WORDS = frozenset({NO_EFFECT, "off"})
_BOARDS = {CREATOR_LEDS: "a MATRIX Creator", VOICE_LEDS: "a MATRIX Voice"}


def parse_command(payload: bytes, current: LightState, led_count: int) -> LightState | Refusal:
    """Turn a raw `set` payload into the ring's next state, or a `Refusal`; never raises.

    Args:
        payload: the MQTT payload as received.
        current: what the ring shows now (or shows at the next ON).
        led_count: the board's LED count (35 on a MATRIX Creator, 18 on a Voice).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Refusal(f"payload of {len(payload)} bytes is longer than {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Refusal("payload is not UTF-8 text")
    if not text:
        return current
    word = text.casefold()
    if word in ("on", "off", "toggle"):
        return replace(current, on=_switched(word, current.on))
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return Refusal(f"unknown payload {quote(text)}; use ON, OFF, TOGGLE or a JSON object")
    if not isinstance(document, dict):
        return Refusal(
            f'a JSON command is an object such as {{"state": "ON"}}, got {_shown(document)}'
        )
    unknown = [key for key in document if key not in _KNOWN_KEYS]
    if unknown:
        names = ", ".join(_shown(key, 20) for key in unknown[:3])
        return Refusal(f"unknown key {names}; known keys: {', '.join(_KNOWN_KEYS)}")
    if "leds" in document or "led" in document:
        return _node_red(document, current, led_count)
    return _home_assistant(document, current)


def _switched(word: str, on: bool) -> bool:
    return not on if word == "toggle" else word == "on"


def _home_assistant(document: dict[str, object], current: LightState) -> LightState | Refusal:
    on = current.on
    if "state" in document:
        state = document["state"]
        word = state.strip().casefold() if isinstance(state, str) else None
        if word not in ("on", "off", "toggle"):
            return Refusal(f'state: expected "ON", "OFF" or "TOGGLE", got {_shown(state)}')
        on = _switched(word, on)
    elif any(key in document for key in ("brightness", "color", "effect")):
        on = True  # Home Assistant sends a turn_on with attributes and no state
    brightness = current.brightness
    if "brightness" in document:
        value = _whole("brightness", document["brightness"], 0, MAX_VALUE)
        if isinstance(value, Refusal):
            return value
        if value == 0:
            on = False  # a dark ON would confuse; the next ON comes back at the old brightness
        else:
            brightness = value
    color = current.color
    if "color" in document:
        parsed = _color("color", document["color"])
        if isinstance(parsed, Refusal):
            return parsed
        color = parsed
    effect = current.effect
    if "effect" in document:
        chosen = _effect(document["effect"])
        if isinstance(chosen, Refusal):
            return chosen
        effect = chosen
    elif "color" in document and (effect == "rainbow" or not current.on):
        # Rainbow has no colour, and a dark ring given a colour is asked to show it: either
        # way the colour, still. A lit spin, breathe or blink takes the new colour.
        effect = None
    leds = None if "color" in document or "effect" in document else current.leds
    return LightState(on, brightness, color, effect, leds)


def _effect(value: object) -> str | Refusal | None:
    if value is None:
        return None
    if isinstance(value, str):
        name = value.strip().casefold()
        if name in _STOP_WORDS:
            return None
        if name in EFFECTS:
            return name
    return Refusal(f"effect: unknown {_shown(value)}; known: {', '.join(EFFECTS)}, {NO_EFFECT}")


def _node_red(
    document: dict[str, object], current: LightState, led_count: int
) -> LightState | Refusal:
    form = ("leds",) if "leds" in document else ("led", "color")
    others = [key for key in document if key not in form]
    if others:
        rule = '"leds" goes alone' if len(form) == 1 else '"led" goes only with "color"'
        return Refusal(f"{rule}; remove {', '.join(_shown(key, 20) for key in others)}")
    if "leds" in document:
        leds = _image(document["leds"], led_count)
        if isinstance(leds, Refusal):
            return leds
    else:
        if "color" not in document:
            return Refusal('led: also send "color", e.g. {"led": 0, "color": [255, 0, 0, 0]}')
        index = _whole("led", document["led"], 0, led_count - 1)
        if isinstance(index, Refusal):
            return Refusal(index.reason + _board(led_count))
        color = _color("color", document["color"])
        if isinstance(color, Refusal):
            return color
        image = list(_shown_image(current, led_count))
        image[index] = color
        leds = tuple(image)
    return replace(current, on=True, effect=None, leds=leds)


def _shown_image(state: LightState, led_count: int) -> tuple[RGBW, ...]:
    """The still image a one-LED command starts from, before brightness."""
    if not state.on:
        return ((0, 0, 0, 0),) * led_count
    if state.leds is not None and len(state.leds) == led_count:
        return state.leds
    return (state.color,) * led_count


def _image(value: object, led_count: int) -> tuple[RGBW, ...] | Refusal:
    if not isinstance(value, list):
        return Refusal(f"leds: expected a list of [r, g, b, w], got {_shown(value)}")
    if len(value) != led_count:
        return Refusal(f"leds: expected {led_count} LEDs{_board(led_count)}, got {len(value)}")
    image: list[RGBW] = []
    for index, led in enumerate(value):
        color = _color(f"leds[{index}]", led)
        if isinstance(color, Refusal):
            return color
        image.append(color)
    return tuple(image)


def _board(led_count: int) -> str:
    """`" (a MATRIX Creator)"` for a known LED count, else nothing."""
    board = _BOARDS.get(led_count)
    return f" ({board})" if board else ""


def _color(name: str, value: object) -> RGBW | Refusal:
    """An `{"r", "g", "b", "w"}` object, or a list `[r, g, b, w]` or `[r, g, b]` (white 0)."""
    if isinstance(value, dict):
        missing = [key for key in _CHANNELS if key not in value]
        if missing:
            return Refusal(
                f"{name}: missing {', '.join(missing)} (an RGBW colour has r, g, b and w)"
            )
        extra = [key for key in value if key not in _CHANNELS]
        if extra:
            given = ", ".join(_shown(key, 20) for key in extra[:3])
            return Refusal(f"{name}: unknown key {given}; an RGBW colour has r, g, b and w")
        channels = [(f"{name}.{key}", value[key]) for key in _CHANNELS]
    elif isinstance(value, list) and len(value) in (3, 4):
        channels = [(f"{name}[{index}]", item) for index, item in enumerate(value)]
    else:
        return Refusal(f"{name}: expected [r, g, b, w] or {{r, g, b, w}}, got {_shown(value)}")
    parsed: list[int] = []
    for channel, item in channels:
        number = _whole(channel, item, 0, MAX_VALUE)
        if isinstance(number, Refusal):
            return number
        parsed.append(number)
    if len(parsed) == 3:
        parsed.append(0)
    return (parsed[0], parsed[1], parsed[2], parsed[3])


def _whole(name: str, value: object, lowest: int, highest: int) -> int | Refusal:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return Refusal(f"{name}: expected a whole number {lowest}..{highest}, got {_shown(value)}")
    if not lowest <= value <= highest:
        return Refusal(f"{name}: {_shown(value)} is out of range {lowest}..{highest}")
    return value


def _shown(value: object, limit: int = 40) -> str:
    """A JSON value as the user wrote it (`true`, not `True`), cut at `limit` characters."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):  # nesting json.loads took but dumps does not
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["MAX_PAYLOAD_BYTES", "parse_command"]
