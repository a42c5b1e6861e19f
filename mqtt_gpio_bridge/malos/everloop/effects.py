"""Frames of the Everloop ring from a `LightState`: still images and effects (pure, no clock).

The caller says how long the effect has run; `render` returns the whole image for that moment,
one (red, green, blue, white) per LED, brightness applied (halves rounded up). Frames are drawn
up to 30 times a second in the bridge's only thread on a Raspberry Pi, so the rainbow's hues
come from a table made at import and each frame costs one pass over the LEDs (the rainbow,
the dearest, took about 11 µs for 35 LEDs on an x86 desktop; tests do not time it).

Index order is ring order; effects move towards higher indices.
"""

from __future__ import annotations

import colorsys
import math

from .light import RGBW, LightState

RAINBOW_PERIOD = 5.0
"""Seconds for the rainbow to turn once round the ring."""
SPIN_PERIOD = 2.0
"""Seconds for the spinning arc to go once round the ring."""
SPIN_ARC = 1 / 6
"""The spinning arc's length, head to end of its fading tail, as a part of the ring."""
BREATHE_PERIOD = 4.0
"""Seconds from full to dim and back to full."""
BREATHE_FLOOR = 0.1
"""The dimmest point of a breath, as a part of full brightness (never quite dark)."""
BLINK_PERIOD = 1.0
"""Seconds of one blink: lit for the first half, dark for the second."""

_OFF: RGBW = (0, 0, 0, 0)
_HUES = 360


def _hue_table() -> tuple[tuple[float, float, float], ...]:
    """Fully saturated colours round the hue circle, one per degree, 0..255 as floats."""
    table: list[tuple[float, float, float]] = []
    for hue in range(_HUES):
        red, green, blue = colorsys.hsv_to_rgb(hue / _HUES, 1.0, 1.0)
        table.append((red * 255, green * 255, blue * 255))
    return tuple(table)


_RAINBOW = _hue_table()


def animated(state: LightState) -> bool:
    """Whether `render` gives different frames as time goes on (an effect is running and
    visible: lit, brightness above 0, and a colour other than black except for the rainbow)."""
    if not state.on or state.effect is None or state.brightness == 0:
        return False
    return state.effect == "rainbow" or any(state.color)


def render(state: LightState, led_count: int, elapsed: float) -> tuple[RGBW, ...]:
    """The ring's image `elapsed` seconds after the effect began: exactly `led_count` LEDs.

    A light that is off is all (0, 0, 0, 0). Without an effect every LED shows `color`, or
    `leds` when it holds an image of `led_count` LEDs (one of another length, such as a state
    restored on another board, falls back to `color`). An effect name this module does not know
    shows the still image. A non-finite `elapsed` is taken as 0.
    """
    if not state.on or led_count <= 0:
        return (_OFF,) * max(led_count, 0)
    if not math.isfinite(elapsed):
        elapsed = 0.0
    scale = state.brightness / 255
    effect = state.effect
    if effect == "rainbow":
        return _rainbow(led_count, elapsed, scale)
    if effect == "spin":
        return _spin(state.color, led_count, elapsed, scale)
    if effect == "breathe":
        phase = math.cos(2 * math.pi * elapsed / BREATHE_PERIOD)  # 1 at the start: full
        factor = BREATHE_FLOOR + (1 - BREATHE_FLOOR) * (1 + phase) / 2
        return (_scaled(state.color, scale * factor),) * led_count
    if effect == "blink" and elapsed % BLINK_PERIOD >= BLINK_PERIOD / 2:
        return (_OFF,) * led_count
    if state.leds is not None and len(state.leds) == led_count:
        if state.brightness == 255:
            return state.leds
        return tuple([_scaled(led, scale) for led in state.leds])
    return (_scaled(state.color, scale),) * led_count


def _scaled(color: RGBW, scale: float) -> RGBW:
    """`color` times `scale` (0..1), rounded. No exact halves occur for brightness scaling
    (v * b / 255 is never n + 1/2), so float rounding cannot tip a value."""
    red, green, blue, white = color
    return (
        int(red * scale + 0.5),
        int(green * scale + 0.5),
        int(blue * scale + 0.5),
        int(white * scale + 0.5),
    )


def _rainbow(led_count: int, elapsed: float, scale: float) -> tuple[RGBW, ...]:
    """Hues spread once round the ring, turning towards higher indices; no white."""
    step = _HUES / led_count
    # Subtracting the turn moves each hue towards higher indices; + _HUES keeps it positive.
    start = _HUES - (elapsed / RAINBOW_PERIOD % 1.0) * _HUES
    table = _RAINBOW
    image: list[RGBW] = []
    append = image.append
    for index in range(led_count):
        red, green, blue = table[int(start + index * step) % _HUES]
        append((int(red * scale + 0.5), int(green * scale + 0.5), int(blue * scale + 0.5), 0))
    return tuple(image)


def _spin(color: RGBW, led_count: int, elapsed: float, scale: float) -> tuple[RGBW, ...]:
    """An arc of `color` whose tail fades behind its head, going round once per period.

    The head sits between two LEDs: the one ahead brightens as the head nears it, so the arc
    glides instead of stepping one LED at a time.
    """
    position = (elapsed / SPIN_PERIOD % 1.0) * led_count
    head = int(position)
    fraction = position - head
    length = max(2.0, led_count * SPIN_ARC)
    image = [_OFF] * led_count
    image[(head + 1) % led_count] = _scaled(color, scale * fraction)
    behind = 0
    while behind < led_count - 1 and (distance := fraction + behind) < length:
        image[(head - behind) % led_count] = _scaled(color, scale * (1 - distance / length))
        behind += 1
    return tuple(image)


__all__ = [
    "BLINK_PERIOD",
    "BREATHE_FLOOR",
    "BREATHE_PERIOD",
    "RAINBOW_PERIOD",
    "SPIN_ARC",
    "SPIN_PERIOD",
    "animated",
    "render",
]
