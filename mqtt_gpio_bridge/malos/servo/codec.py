"""Pure encoding of the MALOS servo driver's one message (no sockets, no protobuf library).

    ServoParams  { uint32 pin = 1; uint32 angle = 2; }
    DriverConfig { ...; ServoParams servo = 7; ... }

The servo driver takes nothing else: no timing fields are sent (it sends no updates, and a
pinged servo driver only publishes errors), and it answers nothing, so the bytes are all there
is to get right. Tests compare them with the classes built from matrix-io-proto.
"""

from __future__ import annotations

from ..gpio.codec import PIN_COUNT

MAX_ANGLE = 180
"""The driver has no limit (an angle of 1000 gives a duty longer than the period); this one
keeps every angle inside the servo's travel."""

# Field keys: field number << 3 | wire type (0 varint, 2 length-delimited).
_SERVO = 7 << 3 | 2
_PIN = 1 << 3 | 0
_ANGLE = 2 << 3 | 0


def encode_servo_config(pin: int, angle: int) -> bytes:
    """Serialize "move the servo on `pin` to `angle` degrees" as a `DriverConfig`.

    Raises:
        ValueError: for a pin outside 0..15 or an angle outside 0..180, which the driver would
            not refuse (it checks neither).
    """
    if not 0 <= pin < PIN_COUNT:
        raise ValueError(f"pin {pin} is out of range 0..{PIN_COUNT - 1}")
    if not 0 <= angle <= MAX_ANGLE:
        raise ValueError(f"angle {angle} is out of range 0..{MAX_ANGLE}")
    # proto3 leaves out fields at their default (0). A pin fits one varint byte; an angle of
    # 128 or more takes two (seven bits each, low first, the high bit saying "more").
    servo = bytearray()
    if pin:
        servo += bytes((_PIN, pin))
    if angle:
        servo.append(_ANGLE)
        servo += bytes((angle | 0x80, angle >> 7)) if angle >= 0x80 else bytes((angle,))
    return bytes((_SERVO, len(servo))) + bytes(servo)


__all__ = ["MAX_ANGLE", "encode_servo_config"]
