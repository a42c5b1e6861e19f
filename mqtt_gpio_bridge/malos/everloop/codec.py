"""Pure encoding and decoding of the MALOS Everloop driver's messages (no sockets, no protobuf).

    LedValue      { uint32 red = 1; uint32 green = 2; uint32 blue = 3; uint32 white = 4; }
    EverloopImage { repeated LedValue led = 1; int32 everloop_length = 2; }
    DriverConfig  { ...; EverloopImage image = 3; ... }

A config carries one whole image: the driver refuses any other LED count than the board's, so
an LED that is off (an empty `LedValue`, proto3 leaving out zero fields) is still sent. The
driver's update is an `EverloopImage` with only `everloop_length`, the board's LED count.
Tests compare both directions with the classes built from matrix-io-proto.

An image is encoded in the bridge's poll loop, up to a few dozen times a second, so every
(channel, value) pair has its bytes made once, here, at import.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import CodecError
from ..wire import read_varint, skip_field, varint_bytes

CREATOR_LEDS = 35
"""LEDs on a MATRIX Creator's ring (the HAL's `kMatrixCreatorNLeds`)."""
VOICE_LEDS = 18
"""LEDs on a MATRIX Voice's ring (`kMatrixVoiceNLeds`)."""
MAX_VALUE = 255
"""The driver refuses a config with any channel above this (`ERROR: LED values go from 0 to
255.`)."""

# Field keys: field number << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
_IMAGE = 3 << 3 | 2
_LED = 1 << 3 | 2
_EVERLOOP_LENGTH = 2 << 3 | 0
_MESSAGE = "an EverloopImage update"


def _channel_table(field: int) -> dict[int, bytes]:
    """The bytes of `field` set to each value 0..255: nothing for 0 (proto3 leaves it out)."""
    key = bytes((field << 3 | 0,))
    return {value: key + varint_bytes(value) if value else b"" for value in range(MAX_VALUE + 1)}


# Dicts rather than lists: a value outside 0..255 is a KeyError, never a wrapped index.
_RED, _GREEN, _BLUE, _WHITE = (_channel_table(field) for field in (1, 2, 3, 4))
_LED_HEADERS = tuple(bytes((_LED, length)) for length in range(4 * 3 + 1))
"""The key and length byte of one `led` entry, by the length of its body (at most 12)."""


def encode_image(leds: Sequence[tuple[int, int, int, int]]) -> bytes:
    """Serialize a whole ring image, one (red, green, blue, white) per LED, as a `DriverConfig`.

    The LED count is not checked here (the caller knows the board's); every LED is sent, off
    ones included, in ring order.

    Values are looked up by equality, so `True` and `1.0` are taken as 1.

    Raises:
        ValueError: for a value that is not a whole number 0..255 (the driver refuses the whole
            image for one value above 255 and does not say which), or an LED that is not four
            values.
    """
    parts: list[bytes] = []
    append = parts.append
    try:
        for red, green, blue, white in leds:
            body = _RED[red] + _GREEN[green] + _BLUE[blue] + _WHITE[white]
            append(_LED_HEADERS[len(body)])
            append(body)
    except (KeyError, TypeError, ValueError):  # a value not in the tables, a malformed LED
        raise ValueError(_refusal(leds)) from None
    image = b"".join(parts)
    return bytes((_IMAGE,)) + varint_bytes(len(image)) + image


def _refusal(leds: Sequence[tuple[int, int, int, int]]) -> str:
    """What is wrong with the first LED that cannot be encoded (only on the error path)."""
    if not isinstance(leds, Sequence):
        return f"{type(leds).__name__} is not a sequence of (red, green, blue, white) values"
    for index, led in enumerate(leds):
        if not isinstance(led, Sequence) or len(led) != 4:
            return f"LED {index}: {led!r} is not (red, green, blue, white)"
        for channel, value in zip(("red", "green", "blue", "white"), led, strict=True):
            try:
                known = value in _RED
            except TypeError:  # unhashable
                known = False
            if not known:
                return f"LED {index}: {channel} {value!r} is not a whole number 0..{MAX_VALUE}"
    return "not a sequence of (red, green, blue, white) values"


def decode_length(update: bytes) -> int:
    """Return `everloop_length` of one driver update: the board's LED count (35 or 18).

    A zero-byte update is valid and reads 0 (proto3 leaves out a zero). Like protobuf, the last
    `everloop_length` wins, it is read as an int32, and unknown fields are skipped.

    Raises:
        CodecError: when the update is not a valid `EverloopImage`.
    """
    length = 0
    position = 0
    end = len(update)
    while position < end:
        key, position = read_varint(update, position, _MESSAGE)
        if key == _EVERLOOP_LENGTH:
            value, position = read_varint(update, position, _MESSAGE)
            value &= 0xFFFF_FFFF  # an int32 keeps the low 32 bits, signed
            length = value - (1 << 32) if value & 0x8000_0000 else value
        elif key == _LED:
            # A LedValue is parsed, not skipped: a malformed one fails the whole message.
            size, position = read_varint(update, position, _MESSAGE)
            if position + size > end:
                raise CodecError("not an EverloopImage update: truncated")
            led = update[position : position + size]
            inner = 0
            while inner < size:
                inner_key, inner = read_varint(led, inner, _MESSAGE)
                inner = skip_field(led, inner, inner_key, _MESSAGE)
            position += size
        else:
            position = skip_field(update, position, key, _MESSAGE)
    return length


__all__ = ["CREATOR_LEDS", "MAX_VALUE", "VOICE_LEDS", "decode_length", "encode_image"]
