"""The driver's side of the wire, decoded and encoded with the official matrix-io-proto classes.

The simulated driver uses these, as MALOS uses the C++ classes generated from the same
definitions; the bridge uses `codec`, which writes and reads the same bytes without protobuf.
Tests hold the two against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from ..errors import CodecError
from ..malos.gpio.codec import PinMode
from .proto import DriverConfig, GpioParams


@dataclass(frozen=True, slots=True)
class PinConfig:
    """What one `DriverConfig` asks the GPIO driver to do."""

    pin: int | None
    """None when the config carries no `gpio` field (the driver then treats it as pin 0 INPUT)."""
    mode: int = PinMode.INPUT
    value: int = 0
    delay_between_updates: float = 0.0
    timeout_after_last_ping: float = 0.0


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


__all__ = ["PinConfig", "decode_pin_config", "encode_levels"]
