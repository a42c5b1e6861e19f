"""The sensor catalog (what each value is) and the publishing policy, with a fake clock."""

from __future__ import annotations

import dataclasses
import math
import struct

import pytest

from mqtt_gpio_bridge.malos.sensors.catalog import (
    DEFAULT_ENABLED,
    DRIVERS,
    SENSORS,
    UPDATE_TYPES,
    kinds_of,
    value,
)
from mqtt_gpio_bridge.malos.sensors.codec import (
    HumidityUpdate,
    ImuUpdate,
    PressureUpdate,
    UvUpdate,
    decode_humidity,
)
from mqtt_gpio_bridge.malos.sensors.policy import Throttle, format_value, unpublishable


def float32(number: float) -> float:
    """`number` as the float32 a driver sends, widened again."""
    widened: float = struct.unpack("<f", struct.pack("<f", number))[0]
    return widened


# -- the catalog ----------------------------------------------------------------------------------


def test_every_kind_names_a_field_of_its_drivers_update() -> None:
    for kind in SENSORS.values():
        assert kind.driver in DRIVERS, kind
        fields = {field.name for field in dataclasses.fields(UPDATE_TYPES[kind.driver])}
        assert kind.field in fields, kind
        assert kind.precision >= 0 and kind.threshold > 0, kind


def test_the_names_in_config_order_and_the_defaults() -> None:
    assert list(SENSORS)[:7] == [
        "humidity",
        "temperature",
        "pressure",
        "uv_index",
        "yaw",
        "pitch",
        "roll",
    ]
    assert tuple(list(SENSORS)[:7]) == DEFAULT_ENABLED
    # Every IMU value is there, in ImuUpdate's order.
    imu = [field.name for field in dataclasses.fields(ImuUpdate)]
    assert [kind.field for kind in kinds_of("imu")] == imu
    assert "altitude" not in SENSORS and "temperature_raw" not in SENSORS


def test_what_home_assistant_is_told_about_the_main_values() -> None:
    temperature = SENSORS["temperature"]
    assert (temperature.driver, temperature.device_class, temperature.unit) == (
        "humidity",
        "temperature",
        "°C",
    )
    assert (temperature.threshold, temperature.suggested_display_precision) == (0.1, 1)
    pressure = SENSORS["pressure"]
    assert pressure.device_class == "pressure"
    assert (pressure.unit, pressure.display_unit) == ("Pa", "hPa")
    assert (pressure.precision, pressure.suggested_display_precision) == (0, 1)
    uv = SENSORS["uv_index"]
    assert (uv.device_class, uv.unit, uv.icon) == (None, "UV index", "mdi:sun-wireless")
    assert SENSORS["mag_z"].unit == "G"
    assert SENSORS["accel_x"].label == "Acceleration X"
    assert all(kind.icon for kind in SENSORS.values() if kind.device_class is None)


def test_kinds_of_each_driver() -> None:
    assert [kind.name for kind in kinds_of("humidity")] == ["humidity", "temperature"]
    assert [kind.name for kind in kinds_of("uv")] == ["uv_index"]
    assert sum(len(kinds_of(driver)) for driver in DRIVERS) == len(SENSORS)
    with pytest.raises(ValueError, match="no sensor driver 'gps'"):
        kinds_of("gps")


def test_a_value_is_read_from_its_drivers_update() -> None:
    update = decode_humidity(bytes.fromhex("0d00003642" + "150000a841"))  # 45.5 %, 21.0 °C
    assert value(SENSORS["humidity"], update) == 45.5
    assert value(SENSORS["temperature"], update) == 21.0
    assert value(SENSORS["pressure"], PressureUpdate(pressure=90000.0)) == 90000.0
    assert value(SENSORS["uv_index"], UvUpdate(uv_index=7.5, oms_risk="High")) == 7.5
    assert value(SENSORS["gyro_y"], ImuUpdate(gyro_y=-2.5)) == -2.5
    with pytest.raises(TypeError, match="temperature is read from a HumidityUpdate"):
        value(SENSORS["temperature"], PressureUpdate(temperature=19.0))
    assert isinstance(value(SENSORS["humidity"], HumidityUpdate()), float)


# -- the policy -----------------------------------------------------------------------------------


def test_the_first_value_is_published_then_only_moves_of_the_threshold() -> None:
    throttle = Throttle(0.5, publish_every=300)
    assert throttle.offer(40.0, now=0.0)
    assert not throttle.offer(40.4, now=1.0)
    assert not throttle.offer(39.6, now=2.0)
    assert throttle.offer(40.5, now=3.0)  # exactly the threshold
    assert throttle.last_published == 40.5
    assert throttle.offer(40.0, now=4.0)  # down by exactly the threshold


def test_a_slow_drift_is_published_once_it_adds_up() -> None:
    throttle = Throttle(0.1, publish_every=300)
    published = [
        reading
        for second, reading in enumerate([21.0, 21.04, 21.08, 21.12, 21.16, 21.2, 21.24])
        if throttle.offer(reading, now=float(second))
    ]
    assert published == [21.0, 21.12, 21.24]


@pytest.mark.parametrize(("before", "after"), [(21.2, 21.3), (21.3, 21.2), (0.2, 0.3), (-0.1, 0.0)])
def test_float32_readings_a_threshold_apart_are_published(before: float, after: float) -> None:
    throttle = Throttle(0.1, publish_every=300)
    assert throttle.offer(float32(before), now=0.0)
    assert throttle.offer(float32(after), now=1.0)
    assert not throttle.offer(float32(after + 0.09), now=2.0)


def test_a_steady_value_is_published_again_every_publish_every() -> None:
    throttle = Throttle(10.0, publish_every=60.0)
    assert throttle.offer(101325.0, now=100.0)
    assert not throttle.offer(101325.0, now=159.9)
    assert throttle.offer(101326.0, now=160.0)  # exactly publish_every later
    assert not throttle.offer(101326.0, now=219.0)
    assert throttle.offer(101326.0, now=220.0)


def test_a_zero_threshold_publishes_every_reading() -> None:
    throttle = Throttle(0.0, publish_every=math.inf)
    assert all(throttle.offer(5.0, now=float(second)) for second in range(3))


def test_after_a_reset_the_next_value_is_published() -> None:
    throttle = Throttle(1.0, publish_every=math.inf)
    assert throttle.offer(10.0, now=0.0)
    assert not throttle.offer(10.0, now=1.0)
    throttle.reset()
    assert throttle.last_published is None
    assert throttle.offer(10.0, now=2.0)
    assert not throttle.offer(10.5, now=3.0)


def test_nan_and_infinities_are_never_published_and_reported_once_per_run() -> None:
    throttle = Throttle(0.1, publish_every=10.0)
    assert not throttle.offer(math.nan, now=0.0)
    assert throttle.refusal == "not a number"
    assert not throttle.offer(math.nan, now=1.0)
    assert throttle.refusal is None  # the same run: logged already
    assert throttle.last_published is None
    assert throttle.offer(20.0, now=2.0)
    assert throttle.refusal is None
    assert not throttle.offer(-math.inf, now=12.0)  # even when publish_every is due
    assert throttle.refusal == "infinite"
    assert throttle.last_published == 20.0
    assert throttle.offer(20.05, now=12.5)  # what was due is published at the next number
    assert throttle.refusal is None
    assert unpublishable(0.0) is None


@pytest.mark.parametrize(
    ("threshold", "publish_every"), [(-1.0, 60.0), (math.nan, 60.0), (math.inf, 60.0), (1.0, 0.0)]
)
def test_a_throttle_refuses_meaningless_settings(threshold: float, publish_every: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Throttle(threshold, publish_every)


@pytest.mark.parametrize(
    ("reading", "precision", "text"),
    [
        (21.456, 1, "21.5"),
        (21.0, 1, "21.0"),
        (101325.4, 0, "101325"),
        (-0.04, 1, "0.0"),
        (-0.4, 0, "0"),
        (-0.0, 2, "0.00"),
        (-0.06, 1, "-0.1"),
        (-10.0, 0, "-10"),
        (float32(21.3), 1, "21.3"),
        (float32(0.05), 2, "0.05"),
    ],
)
def test_the_published_text(reading: float, precision: int, text: str) -> None:
    assert format_value(reading, precision) == text


def test_format_value_refuses_what_must_not_be_published() -> None:
    with pytest.raises(ValueError, match="not a number"):
        format_value(math.nan, 1)
    with pytest.raises(ValueError, match="infinite"):
        format_value(math.inf, 1)
    with pytest.raises(ValueError, match="precision"):
        format_value(1.0, -1)
