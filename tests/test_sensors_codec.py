"""The sensor drivers' wire format: the bridge's pure codec against the official classes."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.malos.sensors.codec import (
    IMU_FIELDS,
    HumidityUpdate,
    ImuUpdate,
    PressureUpdate,
    UvUpdate,
    decode_humidity,
    decode_imu,
    decode_pressure,
    decode_uv,
    encode_humidity_calibration,
)
from mqtt_gpio_bridge.sim.proto import UV, DriverConfig, Humidity, HumidityParams, Imu, Pressure

IMU_NAMES = [
    "yaw",
    "pitch",
    "roll",
    "accel_x",
    "accel_y",
    "accel_z",
    "gyro_x",
    "gyro_y",
    "gyro_z",
    "mag_x",
    "mag_y",
    "mag_z",
]
FLOAT32 = st.floats(width=32, allow_nan=False)
PROPERTY = settings(derandomize=True, max_examples=300, deadline=None)


def official(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def parsed(cls: Any, frame: bytes) -> Any:
    message = cls()
    message.ParseFromString(frame)
    return message


def f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


# -- decoding what the drivers send ---------------------------------------------------------------


def test_the_empty_frame_is_an_all_zero_update_of_each_message() -> None:
    """What a Voice's drivers send: proto3 leaves out every field at 0."""
    assert decode_humidity(b"") == HumidityUpdate(0.0, 0.0, 0.0, False)
    assert decode_pressure(b"") == PressureUpdate(0.0, 0.0, 0.0)
    assert decode_uv(b"") == UvUpdate(0.0, "")
    assert decode_imu(b"") == ImuUpdate(*[0.0] * IMU_FIELDS)


def test_a_humidity_update_with_known_bytes() -> None:
    frame = bytes.fromhex("0d0000364215000018c21d0000f0412001")
    assert frame == official(
        Humidity(
            humidity=45.5, temperature=-38.0, temperature_raw=30.0, temperature_is_calibrated=True
        )
    )
    assert decode_humidity(frame) == HumidityUpdate(45.5, -38.0, 30.0, True)


@PROPERTY
@given(FLOAT32, FLOAT32, FLOAT32, st.booleans())
def test_any_humidity_update_decodes_as_the_official_class_reads_it(
    humidity: float, temperature: float, raw: float, calibrated: bool
) -> None:
    frame = official(
        Humidity(
            humidity=humidity,
            temperature=temperature,
            temperature_raw=raw,
            temperature_is_calibrated=calibrated,
        )
    )
    message = parsed(Humidity, frame)
    assert decode_humidity(frame) == HumidityUpdate(
        message.humidity, message.temperature, message.temperature_raw, calibrated
    )
    assert decode_humidity(frame) == HumidityUpdate(humidity, temperature, raw, calibrated)


@PROPERTY
@given(FLOAT32, FLOAT32, FLOAT32)
def test_any_pressure_update_decodes_as_the_official_class_reads_it(
    pressure: float, altitude: float, temperature: float
) -> None:
    frame = official(Pressure(pressure=pressure, altitude=altitude, temperature=temperature))
    message = parsed(Pressure, frame)
    assert decode_pressure(frame) == PressureUpdate(
        message.pressure, message.altitude, message.temperature
    )
    assert decode_pressure(frame) == PressureUpdate(pressure, altitude, temperature)


@PROPERTY
@given(FLOAT32, st.text())
def test_any_uv_update_decodes_as_the_official_class_reads_it(index: float, risk: str) -> None:
    frame = official(UV(uv_index=index, oms_risk=risk))
    assert decode_uv(frame) == UvUpdate(parsed(UV, frame).uv_index, parsed(UV, frame).oms_risk)
    assert decode_uv(frame) == UvUpdate(index, risk)


@pytest.mark.parametrize("risk", ["Low", "Moderate", "High", "Very High", "Extreme"])
def test_the_drivers_risk_words(risk: str) -> None:
    assert decode_uv(official(UV(uv_index=7.25, oms_risk=risk))) == UvUpdate(7.25, risk)


@PROPERTY
@given(st.lists(FLOAT32, min_size=IMU_FIELDS, max_size=IMU_FIELDS))
def test_any_imu_update_decodes_as_the_official_class_reads_it(values: list[float]) -> None:
    frame = official(Imu(**dict(zip(IMU_NAMES, values, strict=True))))
    message = parsed(Imu, frame)
    assert decode_imu(frame) == ImuUpdate(*(getattr(message, name) for name in IMU_NAMES))
    assert decode_imu(frame) == ImuUpdate(*values)


@pytest.mark.parametrize("name", IMU_NAMES)
def test_each_imu_field_lands_on_its_own_attribute(name: str) -> None:
    decoded = decode_imu(official(Imu(**{name: -12.5})))
    assert getattr(decoded, name) == -12.5
    assert sum(value != 0 for value in vars_of(decoded)) == 1


def vars_of(update: ImuUpdate) -> list[float]:
    return [getattr(update, name) for name in IMU_NAMES]


@pytest.mark.parametrize("value", [0.1, -0.1, 21.1, 1e-45, -3.4028234663852886e38, 101325.0])
def test_floats_are_the_float32_the_driver_sent(value: float) -> None:
    """21.1 as a float32 is 21.100000381...: the decoder does not pretend otherwise."""
    decoded = decode_pressure(official(Pressure(pressure=value)))
    assert (
        decoded.pressure
        == f32(value)
        == parsed(Pressure, official(Pressure(pressure=value))).pressure
    )


def test_negative_zero_and_nan_and_infinities_pass_through() -> None:
    """NaN and the infinities are returned as they are: the caller decides what to publish."""
    frame = official(Imu(yaw=-0.0, pitch=math.nan, roll=math.inf, accel_x=-math.inf, accel_y=-1.5))
    decoded = decode_imu(frame)
    assert math.copysign(1.0, decoded.yaw) == -1.0
    assert math.isnan(decoded.pitch)
    assert (decoded.roll, decoded.accel_x, decoded.accel_y) == (math.inf, -math.inf, -1.5)
    assert math.isnan(decode_humidity(official(Humidity(temperature=math.nan))).temperature)


def test_a_bool_is_any_non_zero_varint_as_protobuf_reads_it() -> None:
    frame = bytes.fromhex("2002")
    assert parsed(Humidity, frame).temperature_is_calibrated is True
    assert decode_humidity(frame).temperature_is_calibrated is True
    assert decode_humidity(bytes.fromhex("2000")).temperature_is_calibrated is False


def test_the_last_occurrence_of_a_field_wins() -> None:
    frame = official(Pressure(pressure=1.0)) + official(Pressure(pressure=2.0, temperature=3.0))
    assert decode_pressure(frame) == PressureUpdate(2.0, 0.0, 3.0)
    assert parsed(Pressure, frame).pressure == 2.0


UNKNOWN_FIELDS = bytes.fromhex(
    "a0019601"  # field 20, varint 150
    "aa0103616263"  # field 21, length-delimited "abc"
    "b1010102030405060708"  # field 22, fixed64
    "bd0101020304"  # field 23, fixed32
    "c301c8010ac401"  # field 24, a group holding field 25 = 10
)


@pytest.mark.parametrize(
    ("decode", "cls", "message", "expected"),
    [
        (decode_humidity, Humidity, Humidity(humidity=50.0), HumidityUpdate(humidity=50.0)),
        (decode_pressure, Pressure, Pressure(altitude=12.0), PressureUpdate(altitude=12.0)),
        (decode_uv, UV, UV(oms_risk="High"), UvUpdate(oms_risk="High")),
        (decode_imu, Imu, Imu(mag_z=3.0), ImuUpdate(mag_z=3.0)),
    ],
)
def test_unknown_fields_are_skipped_as_protobuf_skips_them(
    decode: Any, cls: Any, message: Any, expected: Any
) -> None:
    frame = UNKNOWN_FIELDS + official(message) + UNKNOWN_FIELDS
    # The official class reads the same fields (and keeps the unknown ones aside).
    assert parsed(cls, frame).ListFields() == message.ListFields()
    assert decode(frame) == expected


# -- strictness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decode", "frame"),
    [
        (decode_humidity, bytes.fromhex("0d000036")),  # a float cut short
        (decode_humidity, bytes.fromhex("0d")),  # a key and nothing after
        (decode_humidity, bytes.fromhex("20")),  # a bool without its varint
        (decode_humidity, bytes.fromhex("2080")),  # a varint cut short
        (decode_uv, bytes.fromhex("12054c6f77")),  # a string shorter than its length
        (decode_uv, bytes.fromhex("12")),
        (decode_imu, bytes.fromhex("65000080")),  # mag_z (12) cut short
        (decode_pressure, bytes.fromhex("80")),  # a key cut short
        (decode_pressure, bytes.fromhex("aa0105616263")),  # an unknown string cut short
        (decode_pressure, bytes.fromhex("b10101020304")),  # an unknown fixed64 cut short
        (decode_pressure, bytes.fromhex("c301c8010a")),  # a group never ended
    ],
)
def test_a_truncated_frame_is_a_codec_error(decode: Any, frame: bytes) -> None:
    with pytest.raises(CodecError, match="truncated"):
        decode(frame)


@pytest.mark.parametrize(
    ("decode", "frame"),
    [
        (decode_humidity, bytes.fromhex("0801")),  # humidity as a varint
        (decode_humidity, bytes.fromhex("2501000000")),  # the bool as a fixed32
        (decode_humidity, bytes.fromhex("120100")),  # temperature as a string
        (decode_pressure, bytes.fromhex("190000000000000000")),  # temperature as a double
        (decode_uv, bytes.fromhex("1500000000")),  # the risk as a fixed32
        (decode_imu, bytes.fromhex("0801")),
    ],
)
def test_a_known_field_with_the_wrong_wire_type_is_a_codec_error(decode: Any, frame: bytes) -> None:
    """Stricter than protobuf, which would keep it as an unknown field and read 0."""
    with pytest.raises(CodecError, match="wire type"):
        decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        bytes.fromhex("0001"),  # field number 0
        bytes.fromhex("a601"),  # wire type 6
        bytes.fromhex("a701"),  # wire type 7
        bytes.fromhex("a401"),  # an end-group with no start
        bytes.fromhex("ffffffffffffffffffff01"),  # a key longer than 10 bytes
    ],
)
def test_a_frame_protobuf_refuses_is_a_codec_error(frame: bytes) -> None:
    with pytest.raises(CodecError, match="not a Pressure update"):
        decode_pressure(frame)


def test_a_risk_that_is_not_utf8_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="UTF-8"):
        decode_uv(bytes.fromhex("1202ffff"))


# -- the humidity calibration config -------------------------------------------------------------


def official_calibration(current_temperature: float, **timing: float) -> bytes:
    return official(
        DriverConfig(humidity=HumidityParams(current_temperature=current_temperature), **timing)
    )


def test_calibrating_to_21_5_degrees_is_the_official_frame() -> None:
    assert encode_humidity_calibration(21.5) == bytes.fromhex("4a050d0000ac41")
    assert encode_humidity_calibration(21.5) == official_calibration(21.5)


def test_calibrating_to_zero_still_carries_the_humidity_field() -> None:
    assert encode_humidity_calibration(0.0) == bytes.fromhex("4a00") == official_calibration(0.0)
    assert encode_humidity_calibration(-0.0) == official_calibration(-0.0)  # written: bits set
    assert parsed(DriverConfig, encode_humidity_calibration(0.0)).HasField("humidity")


@PROPERTY
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_any_calibration_is_the_official_frame(current_temperature: float) -> None:
    assert encode_humidity_calibration(current_temperature) == official_calibration(
        current_temperature
    )


@pytest.mark.parametrize("current_temperature", [21.1, -40.0, 1e-40, 3.4e38])
@pytest.mark.parametrize(("interval", "timeout"), [(0.0, 0.0), (0.5, 0.0), (0.25, 3.0)])
def test_timings_ride_along_as_official(
    current_temperature: float, interval: float, timeout: float
) -> None:
    frame = encode_humidity_calibration(
        current_temperature, update_interval=interval, ping_timeout=timeout
    )
    assert frame == official_calibration(
        current_temperature, delay_between_updates=interval, timeout_after_last_ping=timeout
    )
    config = parsed(DriverConfig, frame)
    assert config.humidity.current_temperature == f32(current_temperature)
    assert not config.HasField("gpio")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39, -1e300])
def test_a_temperature_that_is_no_finite_float32_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="current_temperature"):
        encode_humidity_calibration(bad)
