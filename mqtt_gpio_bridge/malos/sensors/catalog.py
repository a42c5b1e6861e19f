"""What each publishable sensor value of a MATRIX Creator is: its driver, unit and defaults.

One `SensorKind` per value the bridge can publish, for the sensor driver module (which field of
which decoded update, the default publishing threshold, the decimals of the payload) and for
Home Assistant discovery (entity name, device class, unit, icon). Pure data, no I/O.

Units: humidity %, temperatures °C and pressure Pa are MATRIX's (matrix-documentation, HAL
reference). MATRIX documents no IMU units; the ones here come from the code: the MCU firmware
(matrix-creator-mcu `creator/main.cpp`, `lsm9ds1.cpp`) multiplies the LSM9DS1's g, °/s and gauss
by 1000 into integers and the HAL divides them by 1000 again; yaw, pitch and roll it computes
as degrees (atan2 * 180 / pi). None of the IMU units was confirmed on a board.

Left out on purpose:

* the pressure driver's `altitude`: the MCU derives it from the pressure and the *standard*
  sea-level pressure, so it is the pressure again in other units, and wrong by tens of metres
  whenever the weather moves the sea-level pressure;
* the pressure driver's `temperature` and the humidity driver's `temperature_raw`: the same room
  read by sensors that sit near the Pi's CPU and read warm; the humidity driver's `temperature`
  is the one a calibration corrects, and it is `temperature` here;
* `oms_risk` (a word computed from `uv_index`) and `temperature_is_calibrated` (a flag): not
  numbers to throttle; the bridge can log or expose them otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .codec import HumidityUpdate, ImuUpdate, PressureUpdate, UvUpdate

DRIVERS = ("humidity", "pressure", "uv", "imu")
"""The MALOS sensor drivers, in config-name order."""

SensorUpdate = HumidityUpdate | PressureUpdate | UvUpdate | ImuUpdate
"""A decoded update of any sensor driver."""

UPDATE_TYPES: Mapping[str, type[SensorUpdate]] = MappingProxyType(
    {"humidity": HumidityUpdate, "pressure": PressureUpdate, "uv": UvUpdate, "imu": ImuUpdate}
)
"""The decoded update (`malos/sensors/codec.py`) of each driver."""


@dataclass(frozen=True, slots=True)
class SensorKind:
    """One publishable sensor value."""

    name: str
    """Its name in the config and in topics, e.g. "temperature"."""
    driver: str
    """The MALOS driver that reads it, one of `DRIVERS`."""
    field: str
    """The attribute of that driver's decoded update, e.g. `HumidityUpdate.temperature`."""
    label: str
    """Home Assistant's entity name, e.g. "Temperature"."""
    device_class: str | None
    """Home Assistant's sensor `device_class`; None where HA has none that fits."""
    unit: str | None
    """The unit of the published value (`unit_of_measurement`)."""
    precision: int
    """Decimals of the published value, in `unit`."""
    threshold: float
    """Default publishing threshold, in `unit`: a value is published again once it moved by
    at least this much from the last one published (see `policy.Throttle`)."""
    icon: str | None = None
    """Home Assistant icon, for a kind without a device class (HA picks one for those)."""
    display_unit: str | None = None
    """The unit Home Assistant should show (`suggested_unit_of_measurement`), if not `unit`."""
    display_precision: int | None = None
    """Decimals Home Assistant should show, in the shown unit, if not `precision`."""

    @property
    def suggested_display_precision(self) -> int:
        """Home Assistant's `suggested_display_precision`: decimals in the unit it shows."""
        return self.precision if self.display_precision is None else self.display_precision


_ORIENTATION_ICON = "mdi:rotate-3d-variant"


def _axes(
    prefix: str, label: str, *, unit: str, precision: int, threshold: float, icon: str
) -> list[SensorKind]:
    """The x, y and z kinds of one IMU vector."""
    return [
        SensorKind(
            name=f"{prefix}_{axis}",
            driver="imu",
            field=f"{prefix}_{axis}",
            label=f"{label} {axis.upper()}",
            device_class=None,
            unit=unit,
            precision=precision,
            threshold=threshold,
            icon=icon,
        )
        for axis in "xyz"
    ]


_KINDS = [
    SensorKind("humidity", "humidity", "humidity", "Humidity", "humidity", "%", 1, 0.5),
    SensorKind(
        "temperature", "humidity", "temperature", "Temperature", "temperature", "°C", 1, 0.1
    ),
    # Published in Pa, MALOS's unit, whole: the MPL3115A2 resolves 0.25 Pa but is noisier than
    # that. Shown in hPa with one decimal, as weather stations do.
    SensorKind(
        "pressure",
        "pressure",
        "pressure",
        "Pressure",
        "pressure",
        "Pa",
        0,
        10.0,
        display_unit="hPa",
        display_precision=1,
    ),
    # HA has no UV device class; the index has no unit, "UV index" is what HA users write.
    SensorKind(
        "uv_index", "uv", "uv_index", "UV index", None, "UV index", 1, 0.1, "mdi:sun-wireless"
    ),
    SensorKind("yaw", "imu", "yaw", "Yaw", None, "°", 0, 1.0, _ORIENTATION_ICON),
    SensorKind("pitch", "imu", "pitch", "Pitch", None, "°", 0, 1.0, _ORIENTATION_ICON),
    SensorKind("roll", "imu", "roll", "Roll", None, "°", 0, 1.0, _ORIENTATION_ICON),
    # g, °/s and gauss from the MCU firmware's code (see the module docstring); not confirmed on
    # a board. Home Assistant has no device class for any of them.
    *_axes("accel", "Acceleration", unit="g", precision=2, threshold=0.05, icon="mdi:axis-arrow"),
    *_axes("gyro", "Rotation", unit="°/s", precision=1, threshold=1.0, icon="mdi:rotate-orbit"),
    # The Earth's field is 0.25..0.65 G: a threshold of 1 G would never publish a change, so
    # 0.01 G (1 µT), and three decimals.
    *_axes("mag", "Magnetic field", unit="G", precision=3, threshold=0.01, icon="mdi:magnet"),
]

SENSORS: Mapping[str, SensorKind] = MappingProxyType({kind.name: kind for kind in _KINDS})
"""Every publishable sensor value by name: the humidity driver's, then pressure, UV and the
IMU's (in `ImuUpdate`'s order)."""

DEFAULT_ENABLED: tuple[str, ...] = (
    "humidity",
    "temperature",
    "pressure",
    "uv_index",
    "yaw",
    "pitch",
    "roll",
)
"""What a config that enables sensors without naming them publishes; the raw IMU axes are noisy
and rarely wanted in a home."""


def kinds_of(driver: str) -> tuple[SensorKind, ...]:
    """The values `driver` reads, in `SENSORS` order.

    Raises:
        ValueError: for a name not in `DRIVERS`.
    """
    if driver not in DRIVERS:
        raise ValueError(f"no sensor driver {driver!r} (there are {', '.join(DRIVERS)})")
    return tuple(kind for kind in SENSORS.values() if kind.driver == driver)


def value(kind: SensorKind, update: SensorUpdate) -> float:
    """The value of `kind` in a decoded update of its driver.

    Raises:
        TypeError: when `update` is another driver's.
    """
    expected = UPDATE_TYPES[kind.driver]
    if not isinstance(update, expected):
        raise TypeError(f"{kind.name} is read from a {expected.__name__}, not {update!r}")
    reading: float = getattr(update, kind.field)
    return float(reading)


__all__ = [
    "DEFAULT_ENABLED",
    "DRIVERS",
    "SENSORS",
    "UPDATE_TYPES",
    "SensorKind",
    "SensorUpdate",
    "kinds_of",
    "value",
]
