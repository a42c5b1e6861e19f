"""The bridge's own API as a part of the bridge: `<base>/bridge/info` (retained, published again
whenever what it says changes), `<base>/bridge/health` (every `health.interval` seconds) and the
answers to requests on `<base>/bridge/request/<name>`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ..core.concern import Concern, Hub, Route
from ..core.reports import shorten, utc_stamp
from ..core.timers import Timer
from ..malos.driver import Driver
from ..malos.link import MalosLink
from ..mqtt.topics import Topics
from .health import cpu_seconds, health_payload, resident_memory
from .info import DriverState, info_payload, library_versions
from .requests import BadRequest, Request, parse_request, response_json

logger = logging.getLogger(__name__)

BRIDGE_LOGGER = logging.getLogger(__name__.partition(".")[0])
"""The logger every module of the bridge logs under (`mqtt_gpio_bridge`): `log_level` sets it."""
ERROR_INFO_EVERY = 1.0
"""Seconds between two publications of the info for new driver errors, at least (a driver
that reports errors in a loop must not flood the broker with retained messages)."""
MAX_NAME = 100
"""Characters of a request's name at most for an answer on `<base>/bridge/response/<name>`;
a longer one is reported on `<base>/gpio/status` instead."""


class MalosPart(Protocol):
    """A MALOS driver as the info shows it: its name and its link (the GPIO driver also has
    `alive`; the servo driver has no liveness of its own)."""

    @property
    def name(self) -> str:
        """As in log lines: "GPIO", "Servo"."""

    @property
    def link(self) -> MalosLink:
        """Its four sockets (the first port is `link.base_port`)."""


class BridgeApi(Concern):
    """Publishes the bridge's info and health, and answers requests."""

    def __init__(self, hub: Hub, malos: Sequence[MalosPart]) -> None:
        """Prepare the API for the MALOS drivers `malos`; opens nothing."""
        super().__init__(hub)
        self.topics = Topics(hub.config.mqtt.base_topic)
        self._malos = malos
        self._libraries: dict[str, str | None] = {}
        self._started = ""
        self._started_at = 0.0
        self._cpu_at_start = 0.0
        self._last_driver_error: dict[str, str] | None = None
        self._error_info_at = float("-inf")
        self._error_timer: Timer | None = None
        self._health_due = 0.0

    # -- the hooks -------------------------------------------------------------------------------

    def routes(self) -> Iterable[Route]:
        # Not a command route: `mqtt.retained_commands: apply` is for pin commands; a retained
        # request would act again at every reconnect, so it is always refused (`_on_request`),
        # and not counted among the commands of the health message.
        qos = self.hub.config.mqtt.qos
        return [Route(self.topics.bridge_request_filter, self._on_request, qos)]

    def start(self) -> None:
        timers = self.hub.timers
        self._libraries = library_versions()
        self._started = utc_stamp()
        self._started_at = timers.clock()
        self._cpu_at_start = cpu_seconds()
        interval = self.hub.config.health.interval
        if interval:
            self._health_due = self._started_at + interval
            timers.call_at(self._health_due, self._health_tick)

    def announce(self) -> None:
        self._publish_info()

    def driver_changed(self, driver: Driver[Any]) -> None:
        self._publish_info()

    def driver_error(self, driver: str, text: str) -> None:
        self._last_driver_error = {"text": text, "time": utc_stamp()}
        if self._error_timer is not None:
            return  # the info goes out with the latest error when the timer runs
        due = self._error_info_at + ERROR_INFO_EVERY
        timers = self.hub.timers
        if timers.clock() >= due:
            self._publish_error_info()
        else:
            self._error_timer = timers.call_at(due, self._publish_error_info)

    def stop(self) -> None:
        if self._error_timer is not None:
            self._error_timer.cancel()

    # -- info and health ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What `<base>/bridge/info` says now."""
        drivers = [
            DriverState(
                part.name, part.link.base_port, part.alive if isinstance(part, Driver) else None
            )
            for part in self._malos
        ]
        return info_payload(
            self.hub.config,
            drivers=drivers,
            libraries=self._libraries,
            log_level=logging.getLevelName(BRIDGE_LOGGER.getEffectiveLevel()),
            started=self._started,
            last_driver_error=self._last_driver_error,
            board=self.hub.board,
        )

    def health(self) -> dict[str, Any]:
        """What `<base>/bridge/health` says now."""
        return health_payload(
            self.hub.stats,
            uptime=self.hub.timers.clock() - self._started_at,
            memory=resident_memory(),
            cpu=cpu_seconds() - self._cpu_at_start,
            time=utc_stamp(),
        )

    def _publish_info(self) -> dict[str, Any]:
        info = self.info()
        self.hub.publish(self.topics.bridge_info, _json(info), qos=1, retain=True)
        return info

    def _publish_error_info(self) -> None:
        self._error_timer = None
        self._error_info_at = self.hub.timers.clock()
        self._publish_info()

    def _health_tick(self) -> None:
        timers, interval = self.hub.timers, self.hub.config.health.interval
        self.hub.publish(
            self.topics.bridge_health, _json(self.health()), qos=self.hub.config.mqtt.qos
        )
        # On the beat of the start, unless the loop fell more than a whole period behind.
        self._health_due = max(self._health_due + interval, timers.clock())
        timers.call_at(self._health_due, self._health_tick)

    # -- requests ----------------------------------------------------------------------------------

    def _on_request(self, topic: str, payload: bytes, retained: bool) -> None:
        name = self.topics.request_name(topic)
        if name is None:
            return  # cannot happen: the filter `<base>/bridge/request/+` has one level there
        if len(name) > MAX_NAME:
            self.hub.report(f"{shorten(topic)}: not a request (the name is {len(name)} characters)")
            return
        outcome = parse_request(name, payload)
        if retained and not isinstance(outcome, BadRequest):
            outcome = BadRequest(
                f"a retained request is not carried out: it would act again at every start "
                f"and reconnect; clear it with mosquitto_pub -r -n -t '{shorten(topic)}'",
                outcome.transaction,
                outcome.has_transaction,
            )
        if isinstance(outcome, BadRequest):
            logger.warning("request %s refused: %s", shorten(name), outcome.reason)
            self._answer(name, outcome)
            return
        self._answer(name, outcome, self._carry_out(outcome))

    def _carry_out(self, request: Request) -> Any:
        """Do what `request` asks; the answer's data."""
        if request.name == "log_level":
            assert request.level is not None
            before = logging.getLevelName(BRIDGE_LOGGER.getEffectiveLevel())
            BRIDGE_LOGGER.setLevel(request.level)
            logger.info("log level %s -> %s (request)", before, request.level)
            self._publish_info()
            return {"value": request.level}
        if request.name == "health_check":
            return self.health()
        return self._publish_info()  # info

    def _answer(self, name: str, outcome: Request | BadRequest, data: Any = None) -> None:
        self.hub.publish(
            self.topics.bridge_response(name),
            response_json(outcome, data),
            qos=self.hub.config.mqtt.qos,
        )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


__all__ = ["BridgeApi"]
