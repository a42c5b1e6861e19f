"""Pure encoding and decoding of the MALOS GPIO wire messages (no sockets here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from google.protobuf.message import DecodeError

from .errors import CodecError
from .proto import DriverConfig, GpioParams

PIN_COUNT = 16
ALL_PINS_MASK = (1 << PIN_COUNT) - 1


class PinMode(IntEnum):
    """`GpioParams.EnumMode` of matrix_io.malos.v1.io."""

    INPUT = 0
    OUTPUT = 1


@dataclass(frozen=True, slots=True)
class PinConfig:
    """What one `DriverConfig` asks the GPIO driver to do."""

    pin: int | None
    """None when the config carries no `gpio` field (the driver then treats it as pin 0 INPUT)."""
    mode: int = PinMode.INPUT
    value: int = 0
    delay_between_updates: float = 0.0
    timeout_after_last_ping: float = 0.0


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
    config = DriverConfig()
    if update_interval > 0:
        config.delay_between_updates = update_interval
    if ping_timeout > 0:
        config.timeout_after_last_ping = ping_timeout
    config.gpio.pin = pin
    config.gpio.mode = int(mode)
    if mode == PinMode.OUTPUT:
        config.gpio.value = value
    data: bytes = config.SerializeToString()
    return data


def decode_pin_config(frame: bytes) -> PinConfig:
    """Parse a `DriverConfig` frame as the driver does (used by the simulator).

    Raises:
        CodecError: when the frame is not a valid `DriverConfig`.
    """
    config = DriverConfig()
    try:
        config.ParseFromString(frame)
    except DecodeError as exc:
        raise CodecError(f"not a DriverConfig: {exc}") from exc
    has_gpio = config.HasField("gpio")
    return PinConfig(
        pin=config.gpio.pin if has_gpio else None,
        mode=config.gpio.mode,
        value=config.gpio.value,
        delay_between_updates=config.delay_between_updates,
        timeout_after_last_ping=config.timeout_after_last_ping,
    )


def encode_levels(levels: int) -> bytes:
    """Serialize the update the driver publishes: `GpioParams.values` (all low is b"")."""
    data: bytes = GpioParams(values=levels).SerializeToString()
    return data


def decode_levels(frame: bytes) -> int:
    """Return the 16-bit level mask of one driver update (bit n = pin n).

    A zero-byte frame is valid and means "every pin low".

    Raises:
        CodecError: when the frame is not a valid `GpioParams`.
    """
    params = GpioParams()
    try:
        params.ParseFromString(frame)
    except DecodeError as exc:
        raise CodecError(f"not a GpioParams update: {exc}") from exc
    return int(params.values) & ALL_PINS_MASK


def pin_level(levels: int, pin: int) -> int:
    """Return 0 or 1: the level of `pin` in an update mask."""
    return (levels >> pin) & 1
