"""Simulated MALOS sensor drivers of the MATRIX Creator: IMU, humidity, pressure and UV.

Each speaks the real ZeroMQ protocol on its four ports, as matrix-creator-malos' driver on
matrix-malos-lib `MalosBase` does, and as described in the MALOS reference:

* config PULL (base), keep-alive PULL (base+1), errors PUB (base+2), updates PUB (base+3);
* no update before the first ping; one update every `delay_between_updates` (default 1 s) while
  a ping came within `timeout_after_last_ping` (default 5 s), whether a value changed or not;
  while inactive the update thread checks every 100 ms; a new delay applies after the sleep in
  progress; both timings are kept as whole milliseconds and apply only from an accepted config,
  each only when > 0;
* an unparsable config earns `0, Invalid configuration for <Name> driver. Could not parse
  protobuf.`; IMU, pressure and UV accept every other config (only its timings matter); the
  humidity driver calibrates its temperature from every config it accepts (see
  `SimulatedHumidityDriver`);
* on a MATRIX Voice (`board="voice"`, no sensors) the drivers run as well and publish **no**
  error: the HAL readers ignore the bus result and the values read are zeros (on a board they
  may also be garbage; the simulator sends zeros). What the driver itself adds stays: the UV
  driver still names the risk of index 0 ("Low"), and a calibrated humidity driver still
  reports `temperature_is_calibrated` and a calibrated temperature.

`sensor_drivers()` makes the four drivers of one board. The values a sensor reads are set from
tests (`driver.set(humidity=45.5)`) or from the console (`sensor_command(drivers, "sensor
humidity 45.5")`, to which `sim.driver.console_command` hands lines starting with `sensor`).
Updates are built with the official classes (`sim/proto.py`), as MALOS builds them with the C++
classes of the same definitions.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import zmq
from google.protobuf.message import DecodeError

from ..malos.sensors.codec import ImuUpdate
from .driver import MalosProcess, whole_milliseconds
from .proto import UV, DriverConfig, Humidity, Imu, Pressure

DEFAULT_IMU_PORT = 20013
DEFAULT_HUMIDITY_PORT = 20017
DEFAULT_PRESSURE_PORT = 20025
DEFAULT_UV_PORT = 20029

CREATOR = "creator"
VOICE = "voice"

STANDARD_SEA_LEVEL_PRESSURE = 101325.0
"""Pa, the pressure at altitude 0 in the simulated altitude (ISA standard atmosphere)."""

CPU_TEMPERATURE_FILE = "/sys/class/thermal/thermal_zone0/temp"
"""What the real humidity driver reads at every update and calibration (not read here)."""

CONFIG_ACCEPTED = "accepted"
CONFIG_REFUSED = "refused"
CONFIG_UNPARSABLE = "unparsable"


def error_unparsable(name: str) -> str:
    """The error text MalosBase publishes for a config frame protobuf cannot parse."""
    return f"0, Invalid configuration for {name} driver. Could not parse protobuf."


def error_refused(name: str) -> str:
    """The error text MalosBase publishes when the driver's `ProcessConfig` refuses a config."""
    return f"0, Invalid specific configuration for {name} driver."


def error_no_update(name: str) -> str:
    """The error text MalosBase publishes, every update period, when `SendUpdate` fails."""
    return f"1, Could not send update for {name} driver."


def float32(value: float) -> float:
    """`value` rounded to the nearest float32, as the C++ driver holds a `float`."""
    try:
        (rounded,) = struct.unpack("<f", struct.pack("<f", value))
    except OverflowError:  # beyond float32: C++ would hold an infinity
        return math.copysign(math.inf, value)
    return float(rounded)


def oms_risk(uv_index: float) -> str:
    """The UV driver's word for the risk of `uv_index` (compared as a float32, as the driver
    does; a NaN index, which compares false everywhere, is "Extreme")."""
    index = float32(uv_index)
    if index < 3.0:
        return "Low"
    if index < 6.0:
        return "Moderate"
    if index < 8.0:
        return "High"
    if index < 11.0:
        return "Very High"
    return "Extreme"


def altitude_from_pressure(pressure: float) -> float:
    """Metres above sea level for `pressure` in Pa: the international barometric formula,
    44330.77 * (1 - (p / 101325) ** 0.1902632) (the ISA standard atmosphere; the Creator's
    MPL3115A2 datasheet gives the same formula). Not a number for a negative pressure."""
    if pressure < 0 or math.isnan(pressure):
        return math.nan
    ratio: float = (pressure / STANDARD_SEA_LEVEL_PRESSURE) ** 0.1902632
    return 44330.77 * (1.0 - ratio)


class SimulatedSensorDriver(MalosProcess):
    """What the four sensor drivers share: MalosBase's config, keep-alive and update threads,
    the values the sensor reads, and the board it runs on.

    A subclass sets `name` (the driver's name in MALOS and its error texts), `default_port`,
    `defaults` (each value the sensor reads, and where it starts) and builds its update in
    `_update()`. Creating one binds nothing; use it as a context manager or `start()`/`stop()`.
    """

    default_port: ClassVar[int]
    defaults: ClassVar[dict[str, float]]

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        *,
        board: str = CREATOR,
        on_wire: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """Prepare a driver.

        Args:
            host: interface to bind (MALOS itself binds every interface, "*").
            base_port: the config port (default: the driver's MALOS port); base+1..base+3 too.
            board: "creator", or "voice": no sensors, the updates carry zeros and no error.
            on_wire: called from the driver thread with ("config", frame) as soon as a config
                frame is received, before it is decoded, and with ("update", frame) just
                before an update frame is sent.

        Raises:
            ValueError: for a board other than "creator" or "voice".
        """
        if board not in (CREATOR, VOICE):
            raise ValueError(f"board {board!r} is not {CREATOR!r} or {VOICE!r}")
        super().__init__(host, self.default_port if base_port is None else base_port)
        self.board = board
        self._on_wire = on_wire
        self._values = dict(self.defaults)
        self._lock = threading.Lock()
        self._configs: list[str] = []
        self.updates_sent = 0
        self.errors_sent = 0
        """How many "Could not send update" errors were published."""

    # -- what tests and the console use ------------------------------------------------------

    def set(self, **values: float) -> None:
        """Set what the sensor reads from now on, e.g. `set(humidity=45.5, temperature=21.0)`.

        On a Voice the values are kept but the updates still carry zeros.

        Raises:
            ValueError: for a name the sensor does not read, or a value that is not a number.
        """
        unknown = sorted(set(values) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"the {self.name} sensor reads {', '.join(self.defaults)}, not {', '.join(unknown)}"
            )
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number, not {value!r}")
        with self._lock:
            self._values.update({key: float(value) for key, value in values.items()})

    @property
    def values(self) -> dict[str, float]:
        """What the sensor reads (on a Creator; a Voice reads zeros whatever is set)."""
        with self._lock:
            return dict(self._values)

    @property
    def configs(self) -> list[str]:
        """What became of each config received so far: "accepted", "refused", "unparsable"."""
        with self._lock:
            return list(self._configs)

    # -- the driver ---------------------------------------------------------------------------

    def _reading(self) -> dict[str, float]:
        """What the HAL reader returns now: the values set, or zeros on a Voice."""
        if self.board == VOICE:
            return dict.fromkeys(self.defaults, 0.0)
        return self.values

    def _update(self) -> bytes | None:
        """The update `SendUpdate` publishes now, or None when it fails."""
        raise NotImplementedError

    def _process_config(self, config: Any) -> bool:
        """The driver's `ProcessConfig`: whether it accepts this parsed `DriverConfig`."""
        return True

    def _received(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        if self._on_wire is not None:
            self._on_wire("config", frame)
        outcome = self._handle_config(frame, errors_out)
        with self._lock:  # recorded once applied, as the GPIO sim does
            self._configs.append(outcome)

    def _tick(
        self, now: float, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]
    ) -> None:
        # SendUpdate, or the failure it reports.
        frame_out = self._update()
        if frame_out is None:
            errors_out.send_string(error_no_update(self.name))
            self.errors_sent += 1
            return
        if self._on_wire is not None:
            self._on_wire("update", frame_out)
        updates_out.send(frame_out)
        self.updates_sent += 1

    def _handle_config(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> str:
        """MalosBase's config thread: parse, let the driver process it, then the timings."""
        config = DriverConfig()
        try:
            config.ParseFromString(frame)
        except DecodeError:
            errors_out.send_string(error_unparsable(self.name))
            return CONFIG_UNPARSABLE
        if not self._process_config(config):
            errors_out.send_string(error_refused(self.name))
            return CONFIG_REFUSED  # and its timings are not applied
        if config.delay_between_updates > 0:
            self.delay_between_updates = whole_milliseconds(config.delay_between_updates)
        if config.timeout_after_last_ping > 0:
            self.timeout_after_last_ping = whole_milliseconds(config.timeout_after_last_ping)
        return CONFIG_ACCEPTED


class SimulatedHumidityDriver(SimulatedSensorDriver):
    """The humidity driver (20017): `sense.Humidity`, and a temperature calibration.

    What the real driver does (matrix-creator-malos `driver_humidity.cpp`): every update reads
    the sensor and the Pi's CPU temperature (`/sys/class/thermal/thermal_zone0/temp`) and fails
    without the latter. Every config it accepts, with or without a `humidity` field (without
    one it reads `current_temperature` 0 °C), first clears the calibration, then reads both
    temperatures again and keeps the ratio (sensor - current) / (cpu - sensor); later updates
    report sensor - ratio * (cpu - sensor) as `temperature`, the raw reading as
    `temperature_raw`, and `temperature_is_calibrated` true. Without the CPU temperature the
    config is refused (`0, Invalid specific configuration for Humidity driver.`, its timings not
    applied) and the calibration stays cleared.

    What the simulator simplifies: it has no CPU temperature, so while the CPU would hold still
    the real formula and this one agree: the calibrated temperature is `current_temperature`
    at the moment of the config, and the difference to the raw reading (the offset) is kept
    and added to later raw readings. On a board a warming CPU moves the calibrated value too.
    """

    name = "Humidity"
    default_port = DEFAULT_HUMIDITY_PORT
    defaults: ClassVar[dict[str, float]] = {"humidity": 40.0, "temperature": 30.0}
    """`temperature` is the sensor's raw reading (`temperature_raw`): near the CPU, warm."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        *,
        board: str = CREATOR,
        on_wire: Callable[[str, bytes], None] | None = None,
        cpu_temperature: bool = True,
    ) -> None:
        """Prepare a driver; `cpu_temperature=False` simulates a system without
        `/sys/class/thermal/thermal_zone0/temp`: every update and every config fails.
        The other arguments are `SimulatedSensorDriver`'s."""
        super().__init__(host, base_port, board=board, on_wire=on_wire)
        self.cpu_temperature = cpu_temperature
        self._offset: float | None = None

    @property
    def calibration_offset(self) -> float | None:
        """°C added to the raw reading since the last accepted config; None: not calibrated."""
        return self._offset

    def _update(self) -> bytes | None:
        reading = self._reading()
        if not self.cpu_temperature:
            return None
        raw = float32(reading["temperature"])
        offset = self._offset
        message = Humidity(
            humidity=reading["humidity"],
            temperature=raw if offset is None else float32(raw + offset),
            temperature_raw=raw,
            temperature_is_calibrated=offset is not None,
        )
        frame: bytes = message.SerializeToString()
        return frame

    def _process_config(self, config: Any) -> bool:
        self._offset = None  # cleared first, whatever comes next
        raw = float32(self._reading()["temperature"])
        if not self.cpu_temperature:
            return False
        self._offset = float32(float32(config.humidity.current_temperature) - raw)
        return True


class SimulatedPressureDriver(SimulatedSensorDriver):
    """The pressure driver (20025): `sense.Pressure`, pressure in Pa, an altitude in m and a
    second temperature in °C.

    On the board the MCU reports the altitude; the simulator computes it from the pressure set
    with `altitude_from_pressure` (standard sea-level pressure 101325 Pa). On a Voice every
    field, altitude included, is 0.
    """

    name = "Pressure"
    default_port = DEFAULT_PRESSURE_PORT
    defaults: ClassVar[dict[str, float]] = {
        "pressure": STANDARD_SEA_LEVEL_PRESSURE,
        "temperature": 25.0,
    }

    def _update(self) -> bytes | None:
        reading = self._reading()
        altitude = 0.0 if self.board == VOICE else altitude_from_pressure(reading["pressure"])
        message = Pressure(
            pressure=reading["pressure"],
            altitude=float32(altitude),
            temperature=reading["temperature"],
        )
        frame: bytes = message.SerializeToString()
        return frame


class SimulatedUvDriver(SimulatedSensorDriver):
    """The UV driver (20029): `sense.UV`, the UV index and its risk word (`oms_risk`)."""

    name = "UV"
    default_port = DEFAULT_UV_PORT
    defaults: ClassVar[dict[str, float]] = {"uv_index": 0.0}

    def _update(self) -> bytes | None:
        index = self._reading()["uv_index"]
        frame: bytes = UV(uv_index=index, oms_risk=oms_risk(index)).SerializeToString()
        return frame


IMU_VALUES = tuple(field.name for field in dataclasses.fields(ImuUpdate))
"""What the IMU reads: `sense.Imu`'s fields, yaw .. mag_z, as the bridge's codec names them."""


class SimulatedImuDriver(SimulatedSensorDriver):
    """The IMU driver (20013): `sense.Imu`, orientation, acceleration, rotation and magnetic
    field. It starts level and at rest: everything 0 but `accel_z`, 1 (gravity, in g)."""

    name = "IMU"
    default_port = DEFAULT_IMU_PORT
    defaults: ClassVar[dict[str, float]] = {
        **dict.fromkeys(IMU_VALUES, 0.0),
        "accel_z": 1.0,
    }

    def _update(self) -> bytes | None:
        frame: bytes = Imu(**self._reading()).SerializeToString()
        return frame


def sensor_drivers(
    host: str = "127.0.0.1", board: str = CREATOR, ports: Mapping[str, int] | None = None
) -> list[SimulatedSensorDriver]:
    """The four sensor drivers of one board, not started: humidity, pressure, UV, IMU.

    Args:
        host: interface to bind.
        board: "creator", or "voice" (the updates carry zeros).
        ports: base ports by driver ("humidity", "pressure", "uv", "imu"); a driver left out
            gets its MALOS port.

    Raises:
        ValueError: for a board other than "creator" or "voice", or a driver name not above.
    """
    classes: list[type[SimulatedSensorDriver]] = [
        SimulatedHumidityDriver,
        SimulatedPressureDriver,
        SimulatedUvDriver,
        SimulatedImuDriver,
    ]
    chosen = dict(ports or {})
    unknown = sorted(set(chosen) - {cls.name.lower() for cls in classes})
    if unknown:
        names = ", ".join(cls.name.lower() for cls in classes)
        raise ValueError(f"no sensor driver {', '.join(unknown)} (there are {names})")
    return [cls(host, chosen.get(cls.name.lower()), board=board) for cls in classes]


SENSOR_COMMANDS = """\
          sensor                                what every sensor reads
          sensor <value> <number>               set what a sensor reads, e.g.
                                                sensor humidity 45.5
          sensor <driver> <value> <number>      the same for a value two sensors read,
                                                e.g. sensor pressure temperature 19.5"""
"""The sensor commands, as lines of the simulator's console help (`sim.driver.CONSOLE_HELP`)."""

SENSOR_HELP = "commands: " + SENSOR_COMMANDS.lstrip()

_ALIASES = {"uv": "uv_index"}
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def sensor_command(drivers: Iterable[SimulatedSensorDriver], line: str) -> str:
    """Carry out one console line (e.g. "sensor humidity 45.5") on the sensor drivers given;
    return the reply (help for a line it does not understand, never an exception)."""
    by_name = {driver.name.lower(): driver for driver in drivers}
    words = line.lower().split()
    if not words or words[0] != "sensor":
        return SENSOR_HELP
    arguments = words[1:]
    if not arguments or arguments == ["show"]:
        return "\n".join(_describe(driver) for driver in by_name.values()) or "no sensor driver"
    if len(arguments) == 3:
        driver_name, value_name, number = arguments
        driver = by_name.get(driver_name)
        if driver is None:
            return f"no sensor driver {driver_name!r} (there are: {', '.join(by_name)})"
        value_name = _ALIASES.get(value_name, value_name)
        if value_name not in driver.defaults:
            return f"the {driver.name} sensor reads {', '.join(driver.defaults)}"
    elif len(arguments) == 2:
        value_name, number = _ALIASES.get(arguments[0], arguments[0]), arguments[1]
        readers = [driver for driver in by_name.values() if value_name in driver.defaults]
        if not readers:
            return f"no sensor reads {value_name!r}\n{SENSOR_HELP}"
        if len(readers) > 1:
            names = " or ".join(driver.name.lower() for driver in readers)
            example = f"sensor {readers[0].name.lower()} {value_name} {number}"
            return f"{value_name} is read by {names}: say which, e.g. {example}"
        driver = readers[0]
    else:
        return SENSOR_HELP
    # Plain decimals only: float() would also take "nan", "inf" and "1e3".
    if not _NUMBER.fullmatch(number):
        return f"{value_name}: {number!r} is not a number"
    driver.set(**{value_name: float(number)})
    note = " (a MATRIX Voice: its updates carry zeros)" if driver.board == VOICE else ""
    return f"{driver.name} {value_name} = {float(number):g}{note}"


def _describe(driver: SimulatedSensorDriver) -> str:
    values = ", ".join(f"{name} {value:g}" for name, value in driver.values.items())
    note = " (a MATRIX Voice: its updates carry zeros)" if driver.board == VOICE else ""
    return f"{driver.name}: {values}{note}"


__all__ = [
    "CONFIG_ACCEPTED",
    "CONFIG_REFUSED",
    "CONFIG_UNPARSABLE",
    "CPU_TEMPERATURE_FILE",
    "CREATOR",
    "DEFAULT_HUMIDITY_PORT",
    "DEFAULT_IMU_PORT",
    "DEFAULT_PRESSURE_PORT",
    "DEFAULT_UV_PORT",
    "IMU_VALUES",
    "SENSOR_COMMANDS",
    "SENSOR_HELP",
    "STANDARD_SEA_LEVEL_PRESSURE",
    "VOICE",
    "SimulatedHumidityDriver",
    "SimulatedImuDriver",
    "SimulatedPressureDriver",
    "SimulatedSensorDriver",
    "SimulatedUvDriver",
    "altitude_from_pressure",
    "error_no_update",
    "error_refused",
    "error_unparsable",
    "float32",
    "oms_risk",
    "sensor_command",
    "sensor_drivers",
]
