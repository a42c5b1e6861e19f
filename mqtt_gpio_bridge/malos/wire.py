"""Protocol buffers' wire format, the little of it the pure codecs need (no protobuf library).

Reading is as protobuf reads (a varint of at most 10 bytes keeping 64 bits; an unknown field of
any wire type stepped over, groups nested at most 100 deep), and every malformed byte raises
`CodecError` naming what is being read (`message`, e.g. "a GpioParams update": "not a GpioParams
update: truncated").
"""

from __future__ import annotations

from ..errors import CodecError

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5
MAX_VARINT_BYTES = 10
MAX_GROUP_DEPTH = 100


def varint_bytes(value: int) -> bytes:
    """`value` (>= 0) as a varint: seven bits a byte, low first, the high bit saying "more"."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(frame: bytes, position: int, message: str) -> tuple[int, int]:
    """The varint at `position` and the position after it."""
    result = 0
    for index in range(MAX_VARINT_BYTES):
        if position + index >= len(frame):
            raise CodecError(f"not {message}: truncated")
        byte = frame[position + index]
        result |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, position + index + 1
    raise CodecError(f"not {message}: a number longer than 10 bytes")


def skip_field(frame: bytes, position: int, key: int, message: str, depth: int = 0) -> int:
    """Step over the value of a field the caller does not read; the position after it.

    Field number 0 is refused in a message, as protobuf does, and stepped over inside an unknown
    group, as protobuf (upb) does too.
    """
    number, wire_type = key >> 3, key & 7
    if (number == 0 and depth == 0) or key > 0xFFFF_FFFF:
        raise CodecError(f"not {message}: invalid field number")
    if wire_type == VARINT:
        return read_varint(frame, position, message)[1]
    if wire_type == LENGTH_DELIMITED:
        length, position = read_varint(frame, position, message)
        position += length
    elif wire_type in (FIXED64, FIXED32):
        position += 8 if wire_type == FIXED64 else 4
    elif wire_type == START_GROUP and depth < MAX_GROUP_DEPTH:
        while True:
            inner, position = read_varint(frame, position, message)
            if inner == (number << 3 | END_GROUP):
                return position
            position = skip_field(frame, position, inner, message, depth + 1)
    else:
        raise CodecError(f"not {message}: unexpected wire type {wire_type}")
    if position > len(frame):
        raise CodecError(f"not {message}: truncated")
    return position


__all__ = [
    "END_GROUP",
    "FIXED32",
    "FIXED64",
    "LENGTH_DELIMITED",
    "START_GROUP",
    "VARINT",
    "read_varint",
    "skip_field",
    "varint_bytes",
]
