"""Pure decoding of the four MALOS sensor updates, and the humidity calibration config.

Written over bytes rather than through the protobuf library, for the reason given in
`malos/gpio/codec.py`; tests hold every byte against the official classes (`sim/proto.py`).

    sense.Humidity       { float humidity = 1; float temperature = 2; float temperature_raw = 3;
                           bool temperature_is_calibrated = 4; }
    sense.Pressure       { float pressure = 1; float altitude = 2; float temperature = 3; }
    sense.UV             { float uv_index = 1; string oms_risk = 2; }
    sense.Imu            { float yaw = 1; pitch = 2; roll = 3; accel_x..z = 4..6;
                           gyro_x..z = 7..9; mag_x..z = 10..12; }
    sense.HumidityParams { float current_temperature = 1; }
    DriverConfig         { float delay_between_updates = 1; float timeout_after_last_ping = 2;
                           HumidityParams humidity = 9; (other drivers' fields) }

The decoders follow proto3: a field left out reads as 0 (an empty frame is a valid update, all
zeros: what a MATRIX Voice's drivers send), the last occurrence of a field wins and unknown
fields are skipped. They are stricter than protobuf in one way: a known field with the wrong
wire type is an error (protobuf would keep it aside as an unknown field and read 0), as no MALOS
driver sends one. Floats are returned as the float32 they were, widened to a Python float; NaN
and the infinities are passed through as they are (the HAL divides integers, so a board does
not send them), and a caller that publishes a value decides what to do with them.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from ...errors import CodecError
from ..wire import FIXED32, LENGTH_DELIMITED, VARINT, read_varint, skip_field

_DELAY_BETWEEN_UPDATES = 1 << 3 | FIXED32
_TIMEOUT_AFTER_LAST_PING = 2 << 3 | FIXED32
_HUMIDITY_PARAMS = 9 << 3 | LENGTH_DELIMITED
_CURRENT_TEMPERATURE = 1 << 3 | FIXED32


@dataclass(frozen=True, slots=True)
class HumidityUpdate:
    """One `sense.Humidity` update: % relative humidity and °C."""

    humidity: float = 0.0
    temperature: float = 0.0
    """The calibrated temperature once a calibration config was accepted, else the raw one."""
    temperature_raw: float = 0.0
    """What the sensor reads: it sits near the Pi's CPU and reads warm."""
    temperature_is_calibrated: bool = False


@dataclass(frozen=True, slots=True)
class PressureUpdate:
    """One `sense.Pressure` update: Pa, m (from standard sea-level pressure) and °C."""

    pressure: float = 0.0
    altitude: float = 0.0
    temperature: float = 0.0


@dataclass(frozen=True, slots=True)
class UvUpdate:
    """One `sense.UV` update: the UV index and the driver's word for its risk."""

    uv_index: float = 0.0
    oms_risk: str = ""
    """"Low", "Moderate", "High", "Very High" or "Extreme"; "" when left out."""


@dataclass(frozen=True, slots=True)
class ImuUpdate:
    """One `sense.Imu` update. MATRIX documents no units. The HAL divides the MCU's integers
    for acceleration, rotation and magnetic field by 1000; yaw, pitch and roll it takes as the
    MCU's own floats (they read as degrees in MATRIX's examples)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    accel_x: float = 0.0
    accel_y: float = 0.0
    accel_z: float = 0.0
    gyro_x: float = 0.0
    gyro_y: float = 0.0
    gyro_z: float = 0.0
    mag_x: float = 0.0
    mag_y: float = 0.0
    mag_z: float = 0.0


IMU_FIELDS = 12
"""`sense.Imu` carries fields 1..12, in the order of `ImuUpdate`'s attributes."""


@dataclass(slots=True)
class _Fields:
    """The known fields found in one frame, by field number (the last occurrence of each)."""

    floats: dict[int, float] = field(default_factory=dict)
    bools: dict[int, bool] = field(default_factory=dict)
    strings: dict[int, str] = field(default_factory=dict)

    def real(self, number: int) -> float:
        """The float of field `number`, 0.0 when it was left out."""
        return self.floats.get(number, 0.0)


_FLOAT, _BOOL, _STRING = "float", "bool", "string"
_WIRE_TYPES = {_FLOAT: FIXED32, _BOOL: VARINT, _STRING: LENGTH_DELIMITED}


def decode_humidity(frame: bytes) -> HumidityUpdate:
    """Decode one humidity driver update.

    Raises:
        CodecError: when the frame is not a valid `sense.Humidity`.
    """
    found = _read(frame, "Humidity", {1: _FLOAT, 2: _FLOAT, 3: _FLOAT, 4: _BOOL})
    return HumidityUpdate(
        humidity=found.real(1),
        temperature=found.real(2),
        temperature_raw=found.real(3),
        temperature_is_calibrated=found.bools.get(4, False),
    )


def decode_pressure(frame: bytes) -> PressureUpdate:
    """Decode one pressure driver update.

    Raises:
        CodecError: when the frame is not a valid `sense.Pressure`.
    """
    found = _read(frame, "Pressure", {1: _FLOAT, 2: _FLOAT, 3: _FLOAT})
    return PressureUpdate(pressure=found.real(1), altitude=found.real(2), temperature=found.real(3))


def decode_uv(frame: bytes) -> UvUpdate:
    """Decode one UV driver update.

    Raises:
        CodecError: when the frame is not a valid `sense.UV` (including a risk that is not
            UTF-8, which protobuf refuses too).
    """
    found = _read(frame, "UV", {1: _FLOAT, 2: _STRING})
    return UvUpdate(uv_index=found.real(1), oms_risk=found.strings.get(2, ""))


def decode_imu(frame: bytes) -> ImuUpdate:
    """Decode one IMU driver update.

    Raises:
        CodecError: when the frame is not a valid `sense.Imu`.
    """
    found = _read(frame, "Imu", dict.fromkeys(range(1, IMU_FIELDS + 1), _FLOAT))
    return ImuUpdate(*(found.real(number) for number in range(1, IMU_FIELDS + 1)))


def encode_humidity_calibration(
    current_temperature: float, *, update_interval: float = 0.0, ping_timeout: float = 0.0
) -> bytes:
    """Serialize a `DriverConfig{humidity: {current_temperature}}`: calibrate the humidity
    driver's temperature to the true room temperature, in °C.

    The `humidity` field is always there, even for 0 °C (`4a 00`). Mind that the driver
    calibrates on *every* config it accepts, reading a config without `humidity` as 0 °C: never
    send it a timing-only config. Timing values ride along; 0 leaves the driver's value alone.

    Raises:
        ValueError: for a temperature that is not a finite float32 (the driver would compute
            its calibration from it all the same).
    """
    params = b""
    temperature = _float32_bytes(current_temperature, "current_temperature")
    if temperature != bytes(4):  # proto3 leaves out 0.0, and writes -0.0
        params = bytes((_CURRENT_TEMPERATURE,)) + temperature
    frame = bytearray()
    if update_interval > 0:
        frame += bytes((_DELAY_BETWEEN_UPDATES,)) + _float32_bytes(update_interval, "interval")
    if ping_timeout > 0:
        frame += bytes((_TIMEOUT_AFTER_LAST_PING,)) + _float32_bytes(ping_timeout, "timeout")
    frame += bytes((_HUMIDITY_PARAMS, len(params))) + params
    return bytes(frame)


def encode_timing(update_interval: float, ping_timeout: float) -> bytes:
    """Serialize a `DriverConfig` with only the timings, for the IMU, pressure and UV drivers
    (which take any config for its timings). Never for the humidity driver: it reads such a
    config as a calibration to 0 °C.

    Raises:
        ValueError: for a value that is not a finite float32 > 0.
    """
    if not update_interval > 0 or not ping_timeout > 0:
        raise ValueError(f"timings must be > 0, not {update_interval!r}, {ping_timeout!r}")
    return (
        bytes((_DELAY_BETWEEN_UPDATES,))
        + _float32_bytes(update_interval, "interval")
        + bytes((_TIMEOUT_AFTER_LAST_PING,))
        + _float32_bytes(ping_timeout, "timeout")
    )


def _float32_bytes(value: float, what: str) -> bytes:
    if not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not a finite number")
    try:
        return struct.pack("<f", value)
    except OverflowError:
        raise ValueError(f"{what} {value!r} is too large for a float32") from None


# -- the wire format ------------------------------------------------------------------------------


def _read(frame: bytes, message: str, schema: dict[int, str]) -> _Fields:
    """The known fields of `frame`, read as `schema` says (field number -> kind)."""
    found = _Fields()
    position = 0
    end = len(frame)
    while position < end:
        key, position = read_varint(frame, position, f"a {message} update")
        number, wire_type = key >> 3, key & 7
        kind = schema.get(number)
        if kind is None:
            position = skip_field(frame, position, key, f"a {message} update")
            continue
        if wire_type != _WIRE_TYPES[kind]:
            raise CodecError(
                f"not a {message} update: field {number} has wire type {wire_type}, "
                f"not {_WIRE_TYPES[kind]}"
            )
        if kind == _FLOAT:
            if position + 4 > end:
                raise CodecError(f"not a {message} update: truncated")
            (found.floats[number],) = struct.unpack_from("<f", frame, position)
            position += 4
        elif kind == _BOOL:
            value, position = read_varint(frame, position, f"a {message} update")
            found.bools[number] = value != 0
        else:
            length, position = read_varint(frame, position, f"a {message} update")
            if position + length > end:
                raise CodecError(f"not a {message} update: truncated")
            try:
                found.strings[number] = frame[position : position + length].decode("utf-8")
            except UnicodeDecodeError:
                raise CodecError(f"not a {message} update: field {number} is not UTF-8") from None
            position += length
    return found


__all__ = [
    "IMU_FIELDS",
    "HumidityUpdate",
    "ImuUpdate",
    "PressureUpdate",
    "UvUpdate",
    "decode_humidity",
    "decode_imu",
    "decode_pressure",
    "decode_uv",
    "encode_humidity_calibration",
    "encode_timing",
]
