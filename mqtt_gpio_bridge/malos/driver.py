"""What every MALOS driver module shares: its link, keep-alive pings and liveness.

A driver module (GPIO now; servo, Everloop and sensors beside it) subclasses `Driver`: it
decodes its update frames in `on_update`, calls `seen()` with each valid update, and says in
`came_back()` what to send when the driver is (back) up. The core polls the sockets `open()`
returns and calls `ping()` on every keep-alive tick. (The servo driver, which sends no updates
and must not be pinged, is a plain `Concern` with a `MalosLink`: see `malos/servo/driver.py`.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import ClassVar, Generic, TypeVar

from ..core.concern import Concern, Hub
from ..mqtt.topics import Topics
from .link import MalosLink

logger = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 500
"""Bytes of a driver's error frame that are reported; the rest is cut."""

UpdateT = TypeVar("UpdateT")
"""What one decoded update of the driver is (the GPIO driver: the 16 levels as a mask)."""


def error_text(frame: bytes) -> str:
    """What a driver's error frame says, as reported (cut at `ERROR_TEXT_LIMIT` bytes)."""
    return frame[:ERROR_TEXT_LIMIT].decode("ascii", errors="replace").strip()


class Driver(Concern, Generic[UpdateT]):
    """One MALOS driver: up (`alive`) while its updates arrive, gone when they stop for
    `malos.offline_after` or its process closes the connection."""

    name: ClassVar[str]
    """The driver's name in log lines ("GPIO")."""
    status_name: ClassVar[str | None] = None
    """For a driver with a liveness topic of its own, `<base>/malos/<status_name>/status`
    (`everloop`); the GPIO driver's is the bridge's `<base>/status`."""

    def __init__(self, hub: Hub, base_port: int) -> None:
        """A driver at `malos.host`, ports `base_port`..`base_port + 3`; opens nothing."""
        super().__init__(hub)
        self.link = MalosLink(hub.config.malos.host, base_port, self.name)
        self.alive = False
        self.offline_after = hub.config.malos.offline_after
        """Seconds without an update before the driver is taken for gone."""
        self._last_problem: str | None = None
        """What `_say_once` said last; the driver resets it with its next valid update."""
        self._was_up = False
        self._last_update = 0.0

    # -- to override -----------------------------------------------------------------------------

    def on_update(self, frame: bytes) -> None:
        """One frame from the update port; call `seen()` if it is a valid update."""
        raise NotImplementedError

    def came_back(self, update: UpdateT) -> None:
        """The driver is (back) up, maybe restarted with zeroed registers, and `update` is its
        first update: configure it."""

    # -- for the core ----------------------------------------------------------------------------

    def open(self, stack: contextlib.ExitStack) -> Mapping[object, Callable[[], None]]:
        """Open the link; its sockets and what to call when one is readable."""
        stack.enter_context(self.link)
        sockets = self.link.sockets()
        return {
            sockets.updates: self.link.update_reader(self.on_update),
            sockets.errors: self._read_error,
            sockets.connection: self._read_connection_event,
        }

    def ping(self) -> None:
        """One keep-alive ping: MALOS stops a driver's updates without them."""
        self.link.ping()

    def announce(self) -> None:
        self._publish_liveness()

    def start(self) -> None:
        # Nothing is sent before the first update: after a MALOS restart any write resets
        # the driver's state from zeroed shadow registers, so what is there is read first.
        self._last_update = self.hub.timers.clock()
        self.hub.timers.call_later(self.offline_after, self._check_updates)

    # -- liveness --------------------------------------------------------------------------------

    def seen(self, now: float, update: UpdateT) -> None:
        """A valid update arrived at `now` (a malformed one is no sign of life)."""
        self._last_update = now
        if not self.alive:
            self.alive = True
            if self._was_up:
                self.hub.stats.malos_restarts += 1
            self._was_up = True
            self.came_back(update)
            self._publish_liveness()
            self.hub.driver_changed(self)

    def _lost(self) -> None:
        self.alive = False
        self._publish_liveness()
        self.hub.driver_changed(self)

    def _say_once(self, text: str, say: Callable[[str], None]) -> None:
        """`say(text)` unless `text` is what was said last: a failing driver repeats itself at
        every period. The subclass sets `_last_problem` to None at a valid update, after which
        the same text is news again."""
        if text == self._last_problem:
            logger.debug("the MALOS %s driver again: %s", self.name, text)
            return
        self._last_problem = text
        say(text)

    def _publish_liveness(self) -> None:
        if self.status_name is not None:
            topic = Topics(self.hub.config.mqtt.base_topic).driver_status(self.status_name)
            self.hub.publish(topic, "online" if self.alive else "offline", qos=1, retain=True)

    def _check_updates(self) -> None:
        """Runs `offline_after` after the last update seen when it was scheduled."""
        timers, offline_after = self.hub.timers, self.offline_after
        due = self._last_update + offline_after
        if timers.clock() >= due:
            if self.alive:
                logger.warning(
                    "no update from the MALOS %s driver for %.1f s: driver offline",
                    self.name,
                    offline_after,
                )
                self._lost()
            due = timers.clock() + offline_after
        timers.call_at(due, self._check_updates)

    def _read_error(self) -> None:
        frame = self.link.error()
        if frame is not None:
            self.hub.driver_error(self.name, error_text(frame))

    def _read_connection_event(self) -> None:
        if self.link.connection_event() is False and self.alive:
            # A closed connection means the driver process ended; the next one starts with
            # zeroed shadow registers, so everything must be configured again. (The
            # re-connection itself says nothing new, and its event may even arrive after the
            # new driver's first update.)
            logger.warning(
                "MALOS closed the %s connection: driver stopped or restarting", self.name
            )
            self._lost()


__all__ = ["ERROR_TEXT_LIMIT", "Driver", "error_text"]
