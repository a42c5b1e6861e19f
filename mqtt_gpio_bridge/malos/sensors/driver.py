"""The MATRIX Creator's sensors as a part of the bridge: one driver object per MALOS sensor
driver in use (humidity, pressure, UV, IMU), each value published retained on
`<base>/sensor/<name>/state` when it moved by its threshold or `sensors.publish_every` passed.

A sensor driver runs on a MATRIX Voice too, which has no sensors, and sends zeros or garbage
without an error; only the LED ring's LED count tells the boards apart. So no value is published
before the ring's driver has shown a Creator, and on a Voice none ever is (said once in the log
and in `bridge/info`). A driver whose reading fails sends an error at every period and no
update: its values go unavailable with its liveness (`<base>/malos/<driver>/status`), and the
repeated error is reported once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import ClassVar

from ...core.concern import Hub
from ...errors import CodecError
from ...mqtt.topics import Topics
from ..driver import Driver, error_text
from .catalog import SensorUpdate, kinds_of, value
from .codec import (
    UvUpdate,
    decode_humidity,
    decode_imu,
    decode_pressure,
    decode_uv,
    encode_humidity_calibration,
    encode_timing,
)
from .policy import Throttle, format_value

logger = logging.getLogger(__name__)

CREATOR = "Creator"
_DECODERS: dict[str, Callable[[bytes], SensorUpdate]] = {
    "humidity": decode_humidity,
    "pressure": decode_pressure,
    "uv": decode_uv,
    "imu": decode_imu,
}
SAMPLE_SLACK = 0.9
"""An update is sampled when at least this share of `sensors.update_interval` passed since the
last one sampled (the humidity driver keeps its own 1 s pace unless it is calibrated)."""
OFFLINE_PERIODS = 2.5
"""A sensor driver is taken for gone after this many update periods without one (at least
`malos.offline_after`)."""


class SensorDriver(Driver[SensorUpdate]):
    """One MALOS sensor driver and the enabled values it reads."""

    driver: ClassVar[str]
    """Its name in the catalog and in `malos.<driver>_port` (`humidity`)."""

    def __init__(self, hub: Hub, board: Callable[[], str | None]) -> None:
        """Prepare the driver's enabled values; `board` tells the board once it is known."""
        config = hub.config
        settings = config.sensors
        assert settings is not None, "a sensor driver needs the `sensors` section"
        super().__init__(hub, getattr(config.malos, f"{self.driver}_port"))
        self.settings = settings
        self.board = board
        self._decode: Callable[[bytes], SensorUpdate] = _DECODERS[self.driver]
        self.topics = Topics(config.mqtt.base_topic)
        self.kinds = [kind for kind in kinds_of(self.driver) if kind.name in settings.enabled]
        self.throttles = {
            kind.name: Throttle(settings.threshold(kind.name), settings.publish_every)
            for kind in self.kinds
        }
        self.interval = self._update_interval()
        self.offline_after = max(config.malos.offline_after, OFFLINE_PERIODS * self.interval)
        self.published: dict[str, str] = {}
        """The last payload published on each topic (published again after a reconnect)."""
        self._sampled_at = float("-inf")

    def _update_interval(self) -> float:
        """The driver's pace once configured: `sensors.update_interval` where it is sent."""
        return self.settings.update_interval

    def config_frame(self) -> bytes | None:
        """What to send when the driver is (back) up: its timings."""
        return encode_timing(self.settings.update_interval, self.hub.config.malos.ping_timeout)

    @property
    def present(self) -> bool | None:
        """Whether the board has this sensor (a Creator); None until the board is known."""
        board = self.board()
        return None if board is None else board == CREATOR

    # -- the hooks -------------------------------------------------------------------------------

    def announce(self) -> None:
        super().announce()
        for topic, payload in self.published.items():
            self.hub.publish(topic, payload, qos=self.hub.config.mqtt.qos, retain=True)

    def on_update(self, frame: bytes) -> None:
        try:
            update = self._decode(frame)
        except CodecError as exc:
            self._report_once(f"malformed update from the MALOS {self.name} driver: {exc}")
            return
        now = self.hub.timers.clock()
        self._last_problem = None
        self.seen(now, update)
        if now - self._sampled_at < SAMPLE_SLACK * self.settings.update_interval:
            return
        self._sampled_at = now
        if self.present:  # on a Voice never (the ring's driver says so in the log, once)
            self._publish(update, now)

    def came_back(self, update: SensorUpdate) -> None:
        for throttle in self.throttles.values():
            throttle.reset()  # maybe restarted: publish what it reads now
        self._sampled_at = float("-inf")
        frame = self.config_frame()
        if frame is not None:
            self.link.send_config(frame)

    # -- values ----------------------------------------------------------------------------------

    def _publish(self, update: SensorUpdate, now: float) -> None:
        for kind in self.kinds:
            reading = value(kind, update)
            throttle = self.throttles[kind.name]
            if throttle.offer(reading, now):
                self._retain(
                    self.topics.sensor_state(kind.name), format_value(reading, kind.precision)
                )
                self.hub.stats.sensor_values += 1
            elif throttle.refusal is not None:
                logger.warning(
                    "%s: the MALOS %s driver read %s; not published", kind.name, self.name, reading
                )

    def _retain(self, topic: str, payload: str) -> None:
        self.published[topic] = payload
        self.hub.publish(topic, payload, qos=self.hub.config.mqtt.qos, retain=True)

    def _read_error(self) -> None:
        frame = self.link.error()
        if frame is not None:
            self._report_once(error_text(frame))

    def _report_once(self, text: str) -> None:
        """Report a driver error (or a malformed update) once while it repeats."""
        self._say_once(text, lambda said: self.hub.driver_error(self.name, said))


class HumidityDriver(SensorDriver):
    """Humidity and temperature; the temperature calibrated when `calibrate_temperature` is
    set. Every config this driver accepts recalibrates it (one without a temperature to 0 °C),
    so it gets the timings only inside a calibration, and otherwise nothing."""

    name = "Humidity"
    status_name = driver = "humidity"

    def _update_interval(self) -> float:
        if self.settings.calibrate_temperature is None:
            return 1.0  # the driver's own delay: nothing is sent to it
        return self.settings.update_interval

    def config_frame(self) -> bytes | None:
        temperature = self.settings.calibrate_temperature
        if temperature is None:
            return None
        return encode_humidity_calibration(
            temperature,
            update_interval=self.settings.update_interval,
            ping_timeout=self.hub.config.malos.ping_timeout,
        )


class PressureDriver(SensorDriver):
    """Pressure (Pa)."""

    name = "Pressure"
    status_name = driver = "pressure"


class UvDriver(SensorDriver):
    """The UV index, and its risk word as an attribute (`<base>/sensor/uv_index/attributes`)."""

    name = "UV"
    status_name = driver = "uv"

    def _publish(self, update: SensorUpdate, now: float) -> None:
        super()._publish(update, now)
        topic = self.topics.sensor_attributes("uv_index")
        if isinstance(update, UvUpdate) and self.throttles.get("uv_index"):
            attributes = json.dumps({"risk": update.oms_risk})
            if self.published.get(topic) != attributes:
                self._retain(topic, attributes)


class ImuDriver(SensorDriver):
    """Yaw, pitch and roll (degrees), and the raw axes when enabled."""

    name = "IMU"
    status_name = driver = "imu"


SENSOR_DRIVERS: tuple[type[SensorDriver], ...] = (
    HumidityDriver,
    PressureDriver,
    UvDriver,
    ImuDriver,
)


def sensor_drivers(hub: Hub, board: Callable[[], str | None]) -> list[SensorDriver]:
    """A driver object for each MALOS sensor driver that reads an enabled value (none without
    the `sensors` section: an unused driver is never contacted)."""
    settings = hub.config.sensors
    if settings is None:
        return []
    return [
        driver(hub, board)
        for driver in SENSOR_DRIVERS
        if any(kind.name in settings.enabled for kind in kinds_of(driver.driver))
    ]


__all__ = [
    "SENSOR_DRIVERS",
    "HumidityDriver",
    "ImuDriver",
    "PressureDriver",
    "SensorDriver",
    "UvDriver",
    "sensor_drivers",
]
