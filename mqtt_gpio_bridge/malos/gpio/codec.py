"""Pure encoding and decoding of the MALOS GPIO wire messages the bridge needs (no sockets).

Two messages, five fields, in protocol buffers' wire format, written here rather than through
the protobuf library: the library and the MALOS definitions would add about 4.5 MB and a
cold-cache detour to every command and update of a process meant to idle on a Raspberry Pi.
The bytes are the official ones: tests compare them with the classes built from
matrix-io-proto (`driver_codec`) and with the test vectors of the MALOS reference.

    GpioParams   { uint32 pin = 1; EnumMode mode = 2; uint32 value = 3; uint32 values = 4; }
    DriverConfig { float delay_between_updates = 1; float timeout_after_last_ping = 2;
                   GpioParams gpio = 8; (other drivers' fields) }
"""

from __future__ import annotations

import struct
from enum import IntEnum

from ..wire import read_varint, skip_field

PIN_COUNT = 16
ALL_PINS_MASK = (1 << PIN_COUNT) - 1

# Field keys: field number << 3 | wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit).
_DELAY_BETWEEN_UPDATES = 1 << 3 | 5
_TIMEOUT_AFTER_LAST_PING = 2 << 3 | 5
_GPIO = 8 << 3 | 2
_PIN = 1 << 3 | 0
_MODE = 2 << 3 | 0
_VALUE = 3 << 3 | 0
_VALUES = 4 << 3 | 0
_MESSAGE = "a GpioParams update"


class PinMode(IntEnum):
    """`GpioParams.EnumMode` of matrix_io.malos.v1.io."""

    INPUT = 0
    OUTPUT = 1


def encode_pin_config(
    pin: int,
    mode: PinMode,
    value: int = 0,
    *,
    update_interval: float = 0.0,
    ping_timeout: float = 0.0,
) -> bytes:
    """Serialize one pin's mode (and output level) as a `DriverConfig`.

    The config always carries a `gpio` field: the driver reads a config without one as
    "pin 0 becomes an input". Timing values ride along; 0 leaves the driver's value unchanged.

    Raises:
        ValueError: for a pin outside 0..15 or a value other than 0/1, which the driver would
            not refuse (it has no range check and does not mask `value`).
    """
    if not 0 <= pin < PIN_COUNT:
        raise ValueError(f"pin {pin} is out of range 0..{PIN_COUNT - 1}")
    if value not in (0, 1):
        raise ValueError(f"value {value} is not 0 or 1")
    # proto3 leaves out fields at their default (0); every number here fits in one byte.
    gpio = bytearray()
    if pin:
        gpio += bytes((_PIN, pin))
    if mode:
        gpio += bytes((_MODE, int(mode)))
    if mode == PinMode.OUTPUT and value:
        gpio += bytes((_VALUE, value))
    frame = bytearray()
    if update_interval > 0:
        frame += bytes((_DELAY_BETWEEN_UPDATES,)) + struct.pack("<f", update_interval)
    if ping_timeout > 0:
        frame += bytes((_TIMEOUT_AFTER_LAST_PING,)) + struct.pack("<f", ping_timeout)
    frame += bytes((_GPIO, len(gpio))) + gpio
    return bytes(frame)


def decode_levels(frame: bytes) -> int:
    """Return the 16-bit level mask of one driver update (bit n = pin n).

    A zero-byte frame is valid and means "every pin low". Like protobuf, the last `values`
    wins and unknown fields are skipped.

    Raises:
        CodecError: when the frame is not a valid `GpioParams`.
    """
    values = 0
    position = 0
    end = len(frame)
    while position < end:
        key, position = read_varint(frame, position, _MESSAGE)
        if key == _VALUES:
            values, position = read_varint(frame, position, _MESSAGE)
        else:
            position = skip_field(frame, position, key, _MESSAGE)
    return values & ALL_PINS_MASK


def pin_level(levels: int, pin: int) -> int:
    """Return 0 or 1: the level of `pin` in an update mask."""
    return (levels >> pin) & 1


__all__ = [
    "ALL_PINS_MASK",
    "PIN_COUNT",
    "PinMode",
    "decode_levels",
    "encode_pin_config",
    "pin_level",
]
