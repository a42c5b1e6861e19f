"""The bridge's core: the lifecycle, the one poll loop, and the wiring of its concerns.

Everything runs in one thread around one `zmq.Poller`, which waits on every MALOS driver's
sockets and the MQTT socket together; timers (pings, pulses, reconnecting) set its timeout.
A message from either side is handled to the end where it arrives, with no hand-off to wake
anyone. What the bridge does with pins, discovery or anything else lives in its concerns
(`core/concern.py`); the core routes messages and frames to them and publishes for them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import zmq

from ..config import BridgeConfig
from ..homeassistant.announcer import HomeAssistant
from ..malos.driver import Driver
from ..malos.gpio.driver import GpioDriver
from ..malos.servo.driver import ServoDriver
from ..malos.servo.former import FormerServos
from ..mqtt.connection import Message, topic_matches
from ..mqtt.session import MqttSession
from ..mqtt.topics import Topics
from ..service import BridgeApi
from .concern import Concern, Route
from .reports import ReportThrottle, shorten
from .stats import Stats
from .timers import Timers

if TYPE_CHECKING:
    from ..malos.everloop.driver import EverloopDriver

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
TICK = 1.0
"""Most seconds between two keep-alive rounds (driver pings, the MQTT session's check)."""
_READ = int(zmq.POLLIN)
_WRITE = int(zmq.POLLOUT)
_READ_WRITE = _READ | _WRITE
"""Poll flags as plain ints: combining pyzmq's flag enums costs three Python calls, and the
poll loop would do it at every wake-up (50 a second with 20 ms updates); with them the bridge
at rest ran 19 % fewer instructions (benchmarks/instructions.py)."""
RETAINED_REMEMBERED = 256
"""Retained commands remembered as reported (each is reported once); past that, forgotten."""


class Bridge:
    """One MATRIX board on one MQTT broker.

    Creating a bridge opens nothing; `run()` does, serves until `stop()` is called (from any
    thread or a signal handler), and closes everything on the way out.
    """

    def __init__(self, config: BridgeConfig) -> None:
        """Prepare the bridge and its concerns from a validated config."""
        self.config = config
        self.topics = Topics(config.mqtt.base_topic)
        self.timers = Timers()
        self.stats = Stats()
        self._sessions = 0
        self.session = MqttSession(
            config,
            self.timers,
            will=(self.topics.status, OFFLINE),
            on_connected=self._on_connected,
            on_message=self._on_message,
            before_connect=self._ping,  # connecting may block for a moment
        )
        gpio = GpioDriver(self)
        self.drivers: list[Driver[Any]] = [gpio]
        malos: list[Driver[Any] | ServoDriver] = [gpio]
        self.everloop: EverloopDriver | None = None
        # The ring's and the sensors' modules are imported only when configured: a bridge of
        # pins alone does not carry their tables.
        if config.everloop is not None or config.sensors is not None:
            from ..malos.everloop.driver import EverloopDriver

            # Also for the sensors alone: its LED count tells a Creator from a Voice.
            self.everloop = EverloopDriver(self)
            self.drivers.append(self.everloop)
            malos.append(self.everloop)
        if config.sensors is not None:
            from ..malos.sensors.driver import sensor_drivers

            # After the ring's driver: a sensor value is published once it told a Creator.
            sensors = sensor_drivers(self, lambda: self.board)
            self.drivers += sensors
            malos += sensors
        self.concerns: list[Concern] = [*self.drivers]
        if any(spec.is_servo for spec in config.pins):
            # After the GPIO driver: told of its coming back once its pins are configured.
            servo = ServoDriver(self, gpio)
            self.concerns.append(servo)
            malos.append(servo)
        if not all(spec.is_servo for spec in config.pins):
            self.concerns.append(FormerServos(self))
        # Also with discovery off: it clears a device config an earlier run left.
        self.concerns.insert(0, HomeAssistant(self))
        self.concerns.append(BridgeApi(self, malos))
        # Command routes first: after the fast routes, commands (refused ones, pins written
        # `01`) are the messages that arrive most; each route tried costs a filter match.
        self._routes: list[Route] = sorted(
            (route for concern in self.concerns for route in concern.routes()),
            key=lambda route: not route.command,
        )
        self._fast_routes: dict[str, Callable[[bytes], None]] = {}
        for concern in self.concerns:
            self._fast_routes.update(concern.fast_routes())
        self._reports = ReportThrottle()
        self._apply_retained = config.mqtt.retained_commands == "apply"
        self._retained_reported: set[tuple[str, bytes]] = set()
        self._stopping = False
        self._wake: tuple[socket.socket, socket.socket] | None = None
        """A socket pair, while running: `stop()` writes to it to end the poll at once."""

    @property
    def available(self) -> bool:
        """True while the GPIO driver sends updates (what `<base>/status` says: MALOS is
        reachable). Each other driver says its own on `<base>/malos/<driver>/status`."""
        return self.drivers[0].alive

    @property
    def board(self) -> str | None:
        """ "Creator" or "Voice", once the LED ring's driver has said how many LEDs it has."""
        return None if self.everloop is None else self.everloop.board

    def stop(self) -> None:
        """Ask `run()` to finish; safe from another thread and from a signal handler."""
        self._stopping = True
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):  # already woken, or run() has just finished
                wake[1].send(b"x")

    def run(self) -> None:
        """Serve until `stop()`."""
        wake_reader, wake_writer = socket.socketpair()
        for end in (wake_reader, wake_writer):
            end.setblocking(False)
        self._wake = (wake_reader, wake_writer)
        try:
            with contextlib.ExitStack() as sockets:
                poller = zmq.Poller()
                handlers: dict[object, Callable[[], None]] = {}
                for concern in self.concerns:
                    handlers.update(concern.open(sockets))
                for pollable in handlers:
                    poller.register(pollable, _READ)
                # A socket that is not ZeroMQ's comes back from the poll as its file number.
                poller.register(wake_reader.fileno(), _READ)
                handlers[wake_reader.fileno()] = lambda: _drain(wake_reader)
                for concern in self.concerns:
                    concern.start()
                self.timers.call_later(0, self._keep_alive)
                self.session.start()
                try:
                    self._serve(poller, handlers)
                finally:
                    for concern in self.concerns:
                        concern.stop()
                    # On a clean stop say `offline` ourselves: the broker sends the will only
                    # when a client vanishes.
                    self.session.close(goodbye=(self.topics.status, OFFLINE))
        finally:
            self._wake = None
            wake_reader.close()
            wake_writer.close()

    def _serve(self, poller: zmq.Poller, handlers: dict[object, Callable[[], None]]) -> None:
        """The poll loop: each wake-up hands every ready socket to its handler."""
        session = self.session
        for ready, fileno in self._poll(poller):
            for pollable, flags in ready:
                if pollable == fileno:
                    session.handle(bool(flags & _READ), bool(flags & _WRITE))
                else:
                    handlers[pollable]()

    def _poll(self, poller: zmq.Poller) -> Iterator[tuple[list[tuple[object, int]], int | None]]:
        """Poll results, one per wake-up, after running the timers due, with the MQTT socket
        watched (None: no session); ends at `stop()`."""
        timers, session = self.timers, self.session
        watched: tuple[int | None, int] = (None, 0)
        while not self._stopping:
            timers.run_due(timers.clock())
            if self._stopping:
                return
            fileno = session.fileno()
            flags = _READ_WRITE if session.wants_write() else _READ
            if watched != (fileno, flags):
                if watched[0] is not None and watched[0] != fileno:
                    poller.unregister(watched[0])
                if fileno is not None:
                    poller.register(fileno, flags)
                watched = (fileno, flags)
            yield poller.poll(timers.wait_ms(timers.clock())), fileno

    def _ping(self) -> None:
        for driver in self.drivers:
            driver.ping()

    def _keep_alive(self) -> None:
        """Ping every driver, and let the MQTT session check its own keep-alive."""
        self._ping()
        self.session.tick()
        self.timers.call_later(min(self.config.malos.keepalive_interval, TICK), self._keep_alive)

    # -- the hub: what the concerns call ---------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, *, qos: int, retain: bool = False) -> None:
        """Publish if a session is open; otherwise it is published again after reconnecting."""
        self.session.publish(topic, payload, qos=qos, retain=retain)

    def report(
        self, text: str, *, source: str = "bridge", pin: int | None = None, topic: str | None = None
    ) -> None:
        """Log a problem and report it on `topic` (by default `<base>/gpio/status`); floods
        are thinned out."""
        report = self._reports.admit(text, source, pin)
        if report is None:
            logger.debug("%s (not reported: too many this second)", text)
            return
        logger.warning("%s", text)
        self.publish(topic or self.topics.errors, report, qos=self.config.mqtt.qos)

    def refuse(self, text: str, *, pin: int | None = None, topic: str | None = None) -> None:
        """Report a refused command, and count it (`<base>/bridge/health`)."""
        self.stats.commands_refused += 1
        self.report(text, pin=pin, topic=topic)

    def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe in the current session."""
        self.session.subscribe(topic_filter, qos)

    def unsubscribe(self, topic_filter: str) -> None:
        """Leave a filter in the current session."""
        self.session.unsubscribe(topic_filter)

    def session_token(self) -> object | None:
        """The open session (see `Hub.session`)."""
        return self.session.current()

    def announce(self) -> None:
        """Availability, then everything each concern keeps retained."""
        self._publish_availability()
        for concern in self.concerns:
            concern.announce()

    def driver_changed(self, driver: Driver[Any]) -> None:
        """A driver came up or went away: say so on `<base>/status`, tell the concerns."""
        self._publish_availability()
        for concern in self.concerns:
            concern.driver_changed(driver)

    def driver_error(self, driver: str, text: str) -> None:
        """A driver said `text` on its error port: report it, tell the concerns."""
        self.report(text, source="driver")
        for concern in self.concerns:
            concern.driver_error(driver, text)

    def _publish_availability(self) -> None:
        status = ONLINE if self.available else OFFLINE
        self.publish(self.topics.status, status, qos=1, retain=True)

    # -- MQTT --------------------------------------------------------------------------------------

    def _on_connected(self) -> None:
        """A session was accepted: subscribe, then publish what the broker may have lost."""
        self._sessions += 1
        if self._sessions > 1:
            self.stats.broker_reconnects += 1
        for route in self._routes:
            if route.qos is not None:
                self.session.subscribe(route.topic_filter, route.qos)
        for concern in self.concerns:
            concern.connected()
        self.announce()

    def _on_message(self, message: Message) -> None:
        topic = message.topic
        fast = self._fast_routes.get(topic)
        if fast is not None:  # the common message: a command, found by its topic
            self.stats.commands_received += 1
            if message.retain and not self._apply_retained:
                self._refuse_retained(topic, bytes(message.payload))
                return
            fast(bytes(message.payload))
            return
        for route in self._routes:
            if topic_matches(route.topic_filter, topic):
                payload = bytes(message.payload)
                if route.command:
                    self.stats.commands_received += 1
                if route.command and message.retain and not self._apply_retained:
                    self._refuse_retained(topic, payload)
                else:
                    route.handler(topic, payload, bool(message.retain))
                return

    def _refuse_retained(self, topic: str, payload: bytes) -> None:
        """MQTT 3.1.1 marks a message retained only when it comes from the broker's store at
        subscription, i.e. at every start and reconnect: acting on a retained command would
        replay it (a relay switched on, a door pulsed) each time. Reported once each."""
        self.stats.commands_refused += 1
        seen = (topic, payload)
        if seen in self._retained_reported:
            logger.debug("retained command on %s not applied (reported before)", shorten(topic))
            return
        if len(self._retained_reported) >= RETAINED_REMEMBERED:
            self._retained_reported.clear()
        self._retained_reported.add(seen)
        text = shorten(payload.decode("utf-8", errors="replace"))
        self.report(
            f"{shorten(topic)}: retained command {text!r} not applied: a retained command would "
            f"act again at every start and reconnect; clear it with "
            f"mosquitto_pub -r -n -t '{shorten(topic)}' (or set mqtt.retained_commands: apply)"
        )


def _drain(wake_reader: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        wake_reader.recv(64)


def serve(config: BridgeConfig) -> None:
    """Run a bridge until SIGINT or SIGTERM, then stop cleanly."""
    bridge = Bridge(config)
    previous = {
        signum: signal.signal(signum, lambda _signum, _frame: bridge.stop())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        bridge.run()
        logger.info("stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["Bridge", "serve"]
