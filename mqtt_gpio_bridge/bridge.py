"""The bridge: owns the lifecycle and wires the MALOS link, the pin table and MQTT together.

Everything runs in one thread around one `zmq.Poller`, which waits on the MALOS sockets and
the MQTT socket together; timers (pings, pulses, reconnecting) set its timeout. A message
from either side is handled to the end where it arrives, with no hand-off to wake anyone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import signal
import socket
import time
from collections.abc import Iterator

import zmq

from . import discovery
from .codec import PIN_COUNT, decode_levels, encode_pin_config
from .commands import Action, Command, Refusal, parse_command
from .config import BridgeConfig
from .errors import BrokerError, CodecError, ConfigError
from .malos import MalosLink
from .mqtt import (
    OPERATION_TIMEOUT,
    Message,
    MqttConnection,
    describe_problem,
    reconnect_delays,
    topic_matches,
)
from .pacing import RateLimit
from .pins import PinState, PinTable, PinWrite
from .reports import ReportThrottle, shorten
from .timers import Timer, Timers
from .topics import Topics

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
DISCOVERY_SETTLE = 1.0
"""Seconds to collect this node's retained discovery configs before clearing stale ones."""
GOODBYE_TIMEOUT = 2.0
"""Seconds a clean stop waits for the broker to acknowledge the `offline` status."""
TICK = 1.0
"""Most seconds between two keep-alive checks of the MQTT session."""
SESSION_SETTLED = 10.0
"""Seconds a broker session must last before reconnecting starts afresh (shortest wait, the
next problem warned about again); one that ends sooner counts as cut short."""
SHORT_SESSIONS_HINT = 3
"""Sessions cut short in a row before the log asks whether the client id is taken."""
ANNOUNCE_WINDOW = 5.0
"""Seconds between two announcements of every entity when Home Assistant says `online` again
and again: further births in that time are answered by one announcement at its end."""
RATE_WARNING_EVERY = 60.0
"""Seconds between two reports that a pin changes faster than `mqtt.max_state_rate`."""
RETAINED_REMEMBERED = 256
"""Retained commands remembered as reported (each is reported once); past that, forgotten."""
_PIN_SEGMENT = re.compile(r"[0-9]{1,2}")
_parse_command = functools.lru_cache(maxsize=64)(parse_command)
"""The same few payloads arrive again and again; parsing is pure, so each is parsed once."""


class Bridge:
    """One MATRIX board on one MQTT broker.

    Creating a bridge opens nothing; `run()` does, serves until `stop()` is called (from any
    thread or a signal handler), and closes everything on the way out.
    """

    def __init__(self, config: BridgeConfig) -> None:
        """Prepare the bridge from a validated config."""
        self.config = config
        self.topics = Topics(config.mqtt.base_topic)
        # A sent level shows in an update within one update delay; the driver's first delay
        # (1 s by default) still runs when the bridge's first config arrives.
        confirm_timeout = max(2.5, 3 * config.malos.update_interval)
        self.pins = PinTable(config.pins, confirm_timeout)
        # The hot paths look their topics up instead of building and parsing them.
        self._command_pins = {
            self.topics.command(state.spec.pin): state for state in self.pins if state.is_output
        }
        self._state_topics = {
            state.spec.pin: self.topics.state(state.spec.pin) for state in self.pins
        }
        self._timers = Timers()
        self._malos: MalosLink | None = None
        self._mqtt: MqttConnection | None = None
        self._driver_alive = False
        self._last_update = 0.0
        self._last_frame: bytes | None = None
        self._frames: dict[PinWrite, bytes] = {}
        self._pulses: dict[int, tuple[Timer, Action]] = {}
        self._unsent: set[int] = set()
        self._reports = ReportThrottle()
        self._apply_retained = config.mqtt.retained_commands == "apply"
        self._retained_reported: set[tuple[str, bytes]] = set()
        self._state_limits = {
            state.spec.pin: RateLimit(config.mqtt.max_state_rate) for state in self.pins
        }
        self._held_states: set[int] = set()
        """Pins whose latest state waits for `_state_limits` to let it through."""
        self._rate_reported: dict[int, float] = {}
        self._announced_at = float("-inf")
        self._announce_timer: Timer | None = None
        self._held_commands = 0
        """Commands received since the driver stopped sending updates."""
        self._found_configs: set[str] = set()
        ha = config.homeassistant
        self._discovery = ha.discovery
        self._ha_status_topic = f"{ha.prefix}/status"
        self._own_configs = discovery.own_configs_filter(config)
        mqtt = config.mqtt
        self._delays = reconnect_delays(mqtt.reconnect_min, mqtt.reconnect_max)
        self._last_problem = ""
        self._connected_at: float | None = None
        self._short_sessions = 0
        self._stopping = False
        self._wake: tuple[socket.socket, socket.socket] | None = None
        """A socket pair, while running: `stop()` writes to it to end the poll at once."""

    @property
    def available(self) -> bool:
        """True while the driver sends updates (what `<base>/status` says)."""
        return self._driver_alive

    def stop(self) -> None:
        """Ask `run()` to finish; safe from another thread and from a signal handler."""
        self._stopping = True
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):  # already woken, or run() has just finished
                wake[1].send(b"x")

    def run(self) -> None:
        """Serve until `stop()`."""
        malos_config = self.config.malos
        wake_reader, wake_writer = socket.socketpair()
        for end in (wake_reader, wake_writer):
            end.setblocking(False)
        self._wake = (wake_reader, wake_writer)
        try:
            with MalosLink(malos_config.host, malos_config.base_port) as malos:
                self._malos = malos
                poller = zmq.Poller()
                malos.register(poller)
                poller.register(wake_reader, zmq.POLLIN)
                # Nothing is sent before the first update: after a MALOS restart any write
                # resets every pin from zeroed shadow registers, so the levels of the pins to
                # "leave as they are" must be read first.
                self._last_update = time.monotonic()
                self._timers.call_later(0, self._keep_alive)
                self._timers.call_later(malos_config.offline_after, self._check_updates)
                self._timers.call_later(0, self._connect)
                try:
                    for events, fileno in self._poll(poller):
                        self._dispatch(events, fileno, malos)
                finally:
                    self._finish_pulses()
                    self._say_goodbye()
                    self._malos = None
        finally:
            self._wake = None
            wake_reader.close()
            wake_writer.close()

    def _poll(self, poller: zmq.Poller) -> Iterator[tuple[dict[object, int], int | None]]:
        """Poll results, one per wake-up, after running the timers due, with the MQTT socket
        watched (None: no session); ends at `stop()`."""
        timers = self._timers
        watched: tuple[int | None, int] = (None, 0)
        while not self._stopping:
            timers.run_due(time.monotonic())
            if self._stopping:
                return
            mqtt = self._mqtt
            fileno = mqtt.fileno() if mqtt is not None else None
            if mqtt is not None and fileno is None:  # closed by a publish whose write failed
                self._session_ended(mqtt)
                mqtt = None
            flags = zmq.POLLIN | (zmq.POLLOUT if mqtt is not None and mqtt.wants_write() else 0)
            if watched != (fileno, flags):
                if watched[0] is not None and watched[0] != fileno:
                    poller.unregister(watched[0])
                if fileno is not None:
                    poller.register(fileno, flags)
                watched = (fileno, flags)
            yield dict(poller.poll(timers.wait_ms(time.monotonic()))), fileno

    def _dispatch(self, events: dict[object, int], fileno: int | None, malos: MalosLink) -> None:
        mqtt = self._mqtt
        if mqtt is not None and fileno in events:
            flags = events[fileno]
            if (flags & zmq.POLLIN and not mqtt.read()) or (
                flags & zmq.POLLOUT and not mqtt.write()
            ):
                self._session_ended(mqtt)
        update, error, connection = malos.readable(events)
        if update:
            frame = malos.update()
            if frame is not None:
                self._on_update(frame)
        if connection:
            self._on_connection_event(malos.connection_event())
        if error:
            frame = malos.error()
            if frame is not None:
                self._report(frame[:500].decode("ascii", errors="replace").strip(), source="driver")
        wake = self._wake
        if wake is not None and wake[0] in events:
            with contextlib.suppress(BlockingIOError):
                wake[0].recv(64)

    # -- MALOS side ---------------------------------------------------------------------------

    def _send(self, writes: list[PinWrite]) -> None:
        """Queue pin configs for the driver; what ZeroMQ cannot take now is retried later.

        While the driver sends no updates nothing is sent at all: the wanted levels are kept
        and every pin is configured again when it is back (last write wins).
        """
        if self._malos is None or not self._driver_alive:
            return
        for write in writes:
            frame = self._frames.get(write)
            if frame is None:  # at most 16 x 3 different frames: encode each once
                malos_config = self.config.malos
                frame = encode_pin_config(
                    write.pin,
                    write.mode,
                    write.value,
                    update_interval=malos_config.update_interval,
                    ping_timeout=malos_config.ping_timeout,
                )
                self._frames[write] = frame
            if self._malos.send_config(frame):
                self._unsent.discard(write.pin)
                logger.debug("pin %d -> %s %d", write.pin, write.mode.name, write.value)
            elif write.pin not in self._unsent:
                self._unsent.add(write.pin)
                logger.warning("MALOS is not taking configs fast enough; pin %d held", write.pin)

    def _resend_held(self) -> None:
        if self._unsent:
            self._send([self.pins.rewrite(pin) for pin in sorted(self._unsent)])

    def _keep_alive(self) -> None:
        """Ping the driver, and let the MQTT session check its own keep-alive."""
        assert self._malos is not None
        self._malos.ping()
        mqtt = self._mqtt
        if mqtt is not None and not mqtt.tick():
            self._session_ended(mqtt)
        self._timers.call_later(min(self.config.malos.keepalive_interval, TICK), self._keep_alive)

    def _on_update(self, frame: bytes) -> None:
        now = time.monotonic()
        if frame == self._last_frame and self._driver_alive and self.pins.settled:
            # The common update: the same bytes as the last one, and nothing awaited.
            self._last_update = now
            self._resend_held()
            return
        try:
            levels = decode_levels(frame)
        except CodecError as exc:
            # Not a sign of life: a driver sending only garbage is as good as gone.
            self._report(f"malformed update from MALOS ignored ({len(frame)} bytes): {exc}")
            return
        self._last_update = now
        self._last_frame = frame
        if not self._driver_alive:
            # The driver is (back) up, maybe with zeroed registers: configure every pin.
            self._driver_alive = True
            self._unsent.clear()
            self._send(self.pins.writes(levels, now))
            self.pins.forget_published()
            logger.info(
                "MALOS driver is sending updates; %d pins configured", len(self.config.pins)
            )
            if self._held_commands:
                logger.info(
                    "%d commands arrived while MALOS was away; the last for each pin is applied",
                    self._held_commands,
                )
                self._held_commands = 0
            self._publish_availability()
        else:
            self._resend_held()
        for state in self.pins.update(levels, now):
            self._publish_change(state, now)

    def _check_updates(self) -> None:
        """Runs `offline_after` after the last update seen when it was scheduled."""
        offline_after = self.config.malos.offline_after
        due = self._last_update + offline_after
        if time.monotonic() >= due:
            if self._driver_alive:
                logger.warning("no update from MALOS for %.1f s: driver offline", offline_after)
                self._set_driver_alive(False)
            due = time.monotonic() + offline_after
        self._timers.call_at(due, self._check_updates)

    def _on_connection_event(self, connected: bool | None) -> None:
        if connected is False and self._driver_alive:
            # A closed connection means the driver process ended; the next one starts with
            # zeroed shadow registers, so every pin must be configured again. (The
            # re-connection itself says nothing new, and its event may even arrive after the
            # new driver's first update.)
            logger.warning("MALOS closed the connection: driver stopped or restarting")
            self._set_driver_alive(False)

    def _set_driver_alive(self, alive: bool) -> None:
        self._driver_alive = alive
        self._publish_availability()

    def _publish_availability(self) -> None:
        status = ONLINE if self._driver_alive else OFFLINE
        self._publish(self.topics.status, status, qos=1, retain=True)

    # -- MQTT side ----------------------------------------------------------------------------

    def _connect(self) -> None:
        """One attempt to open a session; the next one is scheduled if it fails."""
        mqtt = MqttConnection(
            self.config,
            on_message=self._on_message,
            on_connected=self._on_connected,
            will=(self.topics.status, OFFLINE),
        )
        if self._malos is not None:
            self._malos.ping()  # connecting may block for a moment
        try:
            mqtt.open()
        except (BrokerError, ConfigError, OSError) as exc:  # OSError: refused, unreachable, TLS
            mqtt.close()
            self._retry(exc)
            return
        self._mqtt = mqtt
        self._timers.call_later(OPERATION_TIMEOUT, lambda: self._check_connack(mqtt))

    def _check_connack(self, mqtt: MqttConnection) -> None:
        if self._mqtt is mqtt and not mqtt.connected:
            mqtt.problem = BrokerError(f"no answer to CONNECT within {OPERATION_TIMEOUT:g} s")
            self._session_ended(mqtt)

    def _session_ended(self, mqtt: MqttConnection) -> None:
        if self._mqtt is not mqtt:
            return
        self._mqtt = None
        mqtt.close()
        if self._connected_at is not None:
            self._count_session(time.monotonic() - self._connected_at)
            self._connected_at = None
        self._retry(mqtt.problem or BrokerError("the connection ended"))

    def _count_session(self, lasted: float) -> None:
        """After a session that was accepted: start reconnecting afresh if it lasted, else
        keep backing off, and say what usually cuts sessions short again and again."""
        mqtt_config = self.config.mqtt
        if lasted >= SESSION_SETTLED:
            self._delays = reconnect_delays(mqtt_config.reconnect_min, mqtt_config.reconnect_max)
            self._last_problem = ""
            self._short_sessions = 0
            return
        self._short_sessions += 1
        if self._short_sessions == SHORT_SESSIONS_HINT:
            key = (
                "mqtt.client_id"
                if mqtt_config.client_id is not None
                else "homeassistant.node_id (the client id is made from it)"
            )
            logger.warning(
                "the broker ended %d sessions in a row less than %g s after accepting them; "
                "unless it restarted each time, another client is connected with client id "
                "%r (a broker drops the older connection when the same id connects again): "
                "give each bridge its own %s",
                SHORT_SESSIONS_HINT,
                SESSION_SETTLED,
                self.config.client_id,
                key,
            )

    def _retry(self, exc: Exception) -> None:
        mqtt = self.config.mqtt
        problem = describe_problem(exc)
        delay = next(self._delays)
        # One clear line per new problem; the same one again only at debug level. (The same
        # problem, not the same words: the library's detail added to it can vary by attempt.)
        kind = f"{type(exc).__name__}: {exc}"
        level = logging.DEBUG if kind == self._last_problem else logging.WARNING
        logger.log(
            level, "MQTT broker %s:%d: %s; retrying in %.1f s", mqtt.host, mqtt.port, problem, delay
        )
        self._last_problem = kind
        self._timers.call_later(delay, self._connect)

    def _on_connected(self) -> None:
        """CONNACK: subscribe, re-publish what the broker may have lost, then serve."""
        mqtt_config = self.config.mqtt
        logger.info("connected to MQTT broker %s:%d", mqtt_config.host, mqtt_config.port)
        self._connected_at = time.monotonic()
        mqtt = self._mqtt
        assert mqtt is not None
        mqtt.subscribe(self.topics.command_filter, qos=mqtt_config.qos)
        if self._discovery:
            mqtt.subscribe(self._ha_status_topic, qos=1)
            # This node's retained configs arrive right after the SUBACK; the ones no pin
            # owns any more are cleared once they had time to arrive.
            self._found_configs.clear()
            mqtt.subscribe(self._own_configs, qos=1)
            self._timers.call_later(DISCOVERY_SETTLE, lambda: self._clear_stale_discovery(mqtt))
        self._announce()

    def _clear_stale_discovery(self, mqtt: MqttConnection) -> None:
        if self._mqtt is not mqtt or not mqtt.connected:
            return  # that session ended; the next one looks again
        mqtt.unsubscribe(self._own_configs)
        for topic in discovery.stale_topics(self.config, self._found_configs):
            logger.info("removing stale Home Assistant entity %s", topic)
            mqtt.publish(topic, b"", qos=1, retain=True)

    def _say_goodbye(self) -> None:
        """On a clean stop, say `offline` ourselves: the broker sends the will only on a crash."""
        mqtt, self._mqtt = self._mqtt, None
        if mqtt is None:
            return
        info = mqtt.publish(self.topics.status, OFFLINE, qos=1, retain=True)
        if info is not None and not mqtt.pump(info.is_published, GOODBYE_TIMEOUT):
            logger.debug("could not publish offline: %s", mqtt.problem or "no answer in time")
        mqtt.close()

    def _publish_discovery(self) -> None:
        for announcement in discovery.announcements(self.config):
            self._publish(announcement.topic, announcement.payload, qos=1, retain=True)

    def _publish_snapshot(self) -> None:
        """After (re)connecting: availability and every known pin state, the broker may have
        lost them (no persistence)."""
        self._publish_availability()
        for state in self.pins.known():
            self._publish_state(state)

    def _publish_change(self, state: PinState, now: float) -> None:
        """Publish a pin's new state, at most `mqtt.max_state_rate` times a second: a pin that
        changes faster has its latest state published as soon as the limit allows."""
        pin = state.spec.pin
        if pin in self._held_states:
            return  # its timer publishes whatever the level is by then
        wait = self._state_limits[pin].wait(now)
        if not wait:
            self._publish_state(state)
            return
        self._held_states.add(pin)
        self._timers.call_later(wait, lambda: self._release_state(state))
        if now - self._rate_reported.get(pin, float("-inf")) >= RATE_WARNING_EVERY:
            self._rate_reported[pin] = now
            self._report(
                f"pin {pin} changes more than {self.config.mqtt.max_state_rate} times a second; "
                "its state is published at that rate (the latest level always), see "
                "mqtt.max_state_rate",
                source="driver",
                pin=pin,
            )

    def _release_state(self, state: PinState) -> None:
        self._held_states.discard(state.spec.pin)
        if state.level is not None:
            self._publish_change(state, time.monotonic())

    def _publish_state(self, state: PinState) -> None:
        assert state.level is not None
        self._publish(
            self._state_topics[state.spec.pin],
            state.payload(state.level),
            qos=self.config.mqtt.qos,
            retain=True,
        )

    def _report(self, text: str, *, source: str = "bridge", pin: int | None = None) -> None:
        """Log a problem and report it on `<base>/gpio/status`; floods are thinned out."""
        report = self._reports.admit(text, source, pin)
        if report is None:
            logger.debug("%s (not reported: too many this second)", text)
            return
        logger.warning("%s", text)
        self._publish(self.topics.errors, report, qos=self.config.mqtt.qos)

    def _publish(self, topic: str, payload: str, *, qos: int, retain: bool = False) -> None:
        mqtt = self._mqtt
        if mqtt is not None:  # otherwise published again in the snapshot after reconnecting
            mqtt.publish(topic, payload, qos=qos, retain=retain)

    def _on_message(self, message: Message) -> None:
        topic = message.topic
        payload = bytes(message.payload)
        if message.retain and not self._apply_retained and self.topics.is_command(topic):
            # MQTT 3.1.1 marks a message retained only when it comes from the broker's store at
            # subscription, i.e. at every start and reconnect: acting on it would replay an old
            # command (a relay switched on, a door pulsed) each time.
            self._refuse_retained(topic, payload)
            return
        state = self._command_pins.get(topic)
        if state is not None:  # the common message: a command for a configured output
            self._on_pin_command(state, payload)
            return
        segment = self.topics.pin_segment(topic)
        if segment is not None:
            self._on_command(topic, segment, payload)
        elif topic == self._ha_status_topic:
            if payload.strip() == b"online":
                self._on_home_assistant_birth()
        elif message.retain and payload and topic_matches(self._own_configs, topic):
            self._found_configs.add(topic)

    def _refuse_retained(self, topic: str, payload: bytes) -> None:
        seen = (topic, payload)
        if seen in self._retained_reported:
            logger.debug("retained command on %s not applied (reported before)", shorten(topic))
            return
        if len(self._retained_reported) >= RETAINED_REMEMBERED:
            self._retained_reported.clear()
        self._retained_reported.add(seen)
        text = shorten(payload.decode("utf-8", errors="replace"))
        state = self._command_pins.get(topic)
        self._report(
            f"{shorten(topic)}: retained command {text!r} not applied: a retained command would "
            f"act again at every start and reconnect; clear it with "
            f"mosquitto_pub -r -n -t '{shorten(topic)}' (or set mqtt.retained_commands: apply)",
            pin=None if state is None else state.spec.pin,
        )

    def _on_home_assistant_birth(self) -> None:
        """Announce every entity again, at most once per `ANNOUNCE_WINDOW`: the births that
        arrive meanwhile get one announcement when it ends."""
        if self._announce_timer is not None:
            logger.debug("Home Assistant online again: announcement already scheduled")
            return
        wait = self._announced_at + ANNOUNCE_WINDOW - time.monotonic()
        if wait <= 0:
            logger.info("Home Assistant (re)started: announcing every entity again")
            self._announce()
            return
        logger.debug("Home Assistant online again: announcing in %.1f s", wait)
        self._announce_timer = self._timers.call_later(wait, self._announce)

    def _announce(self) -> None:
        """Publish every discovery config, the availability and every known state."""
        pending, self._announce_timer = self._announce_timer, None
        if pending is not None:
            pending.cancel()
        self._announced_at = time.monotonic()
        self._publish_discovery()
        self._publish_snapshot()

    def _on_command(self, topic: str, segment: str, payload: bytes) -> None:
        """A `set` topic that is not a configured output's own: refused with the reason, unless
        it still names one (a pin number written with a leading zero)."""
        pin = int(segment) if _PIN_SEGMENT.fullmatch(segment) else None
        if pin is None or pin >= PIN_COUNT:
            self._report(f"{shorten(topic)}: {shorten(segment)!r} is not a pin number 0..15")
            return
        state = self.pins.get(pin)
        if state is None:
            self._report(f"pin {pin} is not configured", pin=pin)
            return
        if not state.is_output:
            self._report(f"pin {pin} is an input; only output pins accept commands", pin=pin)
            return
        self._on_pin_command(state, payload)

    def _on_pin_command(self, state: PinState, payload: bytes) -> None:
        spec = state.spec
        pin = spec.pin
        command = _parse_command(payload, spec.payload_on, spec.payload_off)
        if isinstance(command, Refusal):
            self._report(f"pin {pin}: {command.reason}", pin=pin)
            return
        if command.action is Action.NOTHING:
            return
        write = self._apply(state, command)
        if write is not None and not self._driver_alive:
            # One report per outage; how many were held is logged when the driver is back.
            self._held_commands += 1
            wanted = "on" if state.is_on(write.value) else "off"
            if self._held_commands > 1:
                logger.debug("MALOS away: pin %d will be %s when it is back", pin, wanted)
                return
            away, when = (
                ("has not sent its first update yet", "once it is up")
                if self._last_frame is None
                else ("is not sending updates", "when it is back")
            )
            self._report(
                f"MALOS driver {away}; pin {pin} will be {wanted} {when} (commands until then "
                "are kept, the last one per pin is applied)",
                pin=pin,
            )

    def _apply(self, state: PinState, command: Command) -> PinWrite | None:
        """Send a command to the driver; schedule the end of a pulse."""
        pin = state.spec.pin
        self._cancel_pulse(pin)  # a new command replaces a pulse in progress
        write = self.pins.command(state, command.action, time.monotonic())
        if write is None:
            return None
        self._send([write])
        turned_on = state.is_on(write.value)
        duration_ms = command.duration_ms
        if duration_ms is None and turned_on:
            duration_ms = state.spec.pulse_ms
        if duration_ms is not None:
            back = Action.OFF if turned_on else Action.ON
            timer = self._timers.call_later(
                duration_ms / 1000, lambda: self._end_pulse(state, back)
            )
            self._pulses[pin] = (timer, back)
        return write

    def _end_pulse(self, state: PinState, back: Action) -> None:
        self._pulses.pop(state.spec.pin, None)
        write = self.pins.command(state, back, time.monotonic())
        if write is not None:
            self._send([write])

    def _cancel_pulse(self, pin: int) -> Action | None:
        pending = self._pulses.pop(pin, None)
        if pending is None:
            return None
        timer, back = pending
        timer.cancel()
        return back

    def _finish_pulses(self) -> None:
        """On the way out, end every pulse now rather than leave a relay closed."""
        for pin in list(self._pulses):
            back = self._cancel_pulse(pin)
            state = self.pins.get(pin)
            if back is not None and state is not None:
                self._end_pulse(state, back)


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
