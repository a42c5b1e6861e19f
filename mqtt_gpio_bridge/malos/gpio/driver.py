"""The GPIO driver as a part of the bridge: pins configured through MALOS, `set` commands,
pulses, and each pin's state published from the driver's updates.

The board is the source of truth: a state message only ever comes from an update. After the
driver (re)starts, every pin is configured again from what the bridge wants of it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping

from ...core.concern import Hub, Route
from ...core.pacing import RateLimit
from ...core.reports import shorten, utc_stamp
from ...errors import CodecError
from ...mqtt.topics import Topics
from ..driver import Driver
from .codec import PIN_COUNT, decode_levels, encode_pin_config
from .commands import Action, Command, Refusal, parse_command
from .inputs import PRESS, RELEASE, Happening, Inputs
from .links import LinkTable
from .pins import PinState, PinTable, PinWrite
from .pulses import Pulses

logger = logging.getLogger(__name__)

RATE_WARNING_EVERY = 60.0
"""Seconds between two reports that a pin changes faster than `mqtt.max_state_rate`."""
_PIN_SEGMENT = re.compile(r"[0-9]{1,2}")
_parse_command = functools.lru_cache(maxsize=64)(parse_command)
"""The same few payloads arrive again and again; parsing is pure, so each is parsed once."""


class GpioDriver(Driver[int]):
    """The 16 GPIO pins of the board (MALOS port `malos.base_port`)."""

    name = "GPIO"

    def __init__(self, hub: Hub) -> None:
        """Prepare the configured pins; opens nothing."""
        config = hub.config
        super().__init__(hub, config.malos.base_port)
        self.topics = Topics(config.mqtt.base_topic)
        # A sent level shows in an update within one update delay; the driver's first delay
        # (1 s by default) still runs when the bridge's first config arrives.
        confirm_timeout = max(2.5, 3 * config.malos.update_interval)
        self.pins = PinTable(config.pins, confirm_timeout)
        self.pulses = Pulses(hub.timers, self._end_pulse)
        self._state_topics = {
            state.spec.pin: self.topics.state(state.spec.pin) for state in self.pins
        }
        self._last_frame: bytes | None = None
        self._frames: dict[PinWrite, bytes] = {}
        self._unsent: set[int] = set()
        self._held_commands = 0
        """Commands received while the driver sent no updates."""
        self._state_limits = {
            state.spec.pin: RateLimit(config.mqtt.max_state_rate) for state in self.pins
        }
        self._held_states: set[int] = set()
        """Pins whose latest state waits for `_state_limits` to let it through."""
        self._rate_reported: dict[int, float] = {}
        self.links = LinkTable(config.links)
        self.inputs = Inputs(config.pins, self.links.sources)
        self._buttons = bool(self.inputs)
        """Whether some input is debounced, has events or drives a link (checked per update)."""
        self._event_topics = {
            spec.pin: self.topics.event(spec.pin) for spec in config.pins if spec.events
        }
        self._events_unsent = 0
        """Press events that found no broker session since the last one."""
        self._stats = hub.stats

    # -- the hooks -------------------------------------------------------------------------------

    def routes(self) -> Iterable[Route]:
        return [Route(self.topics.command_filter, self._on_command, self.hub.config.mqtt.qos, True)]

    def fast_routes(self) -> Mapping[str, Callable[[bytes], None]]:
        # The common message, a command for a configured output, is found by its topic.
        return {
            self.topics.command(state.spec.pin): functools.partial(self._on_pin_command, state)
            for state in self.pins
            if state.is_output
        }

    def announce(self) -> None:
        for state in self.pins.known():
            self._publish_state(state)

    def connected(self) -> None:
        if self._events_unsent:
            logger.info(
                "%d press events happened while the broker was away; they were not published "
                "(a late press would be wrong), links acted on them",
                self._events_unsent,
            )
            self._events_unsent = 0

    def stop(self) -> None:
        self.pulses.finish_all()

    def came_back(self, update: int) -> None:
        self._unsent.clear()
        now = self.hub.timers.clock()
        # What the driver shows now is where the inputs are, not a press (no phantom events).
        self.inputs.reset()
        self._follow(update, now)
        self._send(self.pins.writes(update, now))
        self.pins.forget_published()
        logger.info(
            "MALOS driver is sending updates; %d pins configured", len(self.hub.config.pins)
        )
        if self._held_commands:
            logger.info(
                "%d commands arrived while MALOS was away; the last for each pin is applied",
                self._held_commands,
            )
            self._held_commands = 0

    # -- the driver's side -----------------------------------------------------------------------

    def on_update(self, frame: bytes) -> None:
        now = self.hub.timers.clock()
        self._stats.driver_updates += 1
        if (
            frame == self._last_frame
            and self.alive
            and self.pins.settled
            and not (self._buttons and self.inputs.pending)
        ):
            # The common update: the same bytes as the last one, and nothing awaited.
            self._last_update = now
            if self._unsent:
                self._resend_held()
            return
        try:
            levels = decode_levels(frame)
        except CodecError as exc:
            self.hub.report(f"malformed update from MALOS ignored ({len(frame)} bytes): {exc}")
            return
        self._last_frame = frame
        was_alive = self.alive
        self.seen(now, levels)  # configures every pin if the driver is (back) up
        if was_alive:
            self._resend_held()
        happened: list[Happening] = []
        if self._buttons:
            levels, happened = self.inputs.take(levels, now)
        for state in self.pins.update(levels, now):
            self._publish_change(state, now)
        for happening in happened:
            self._on_happening(happening)

    # -- inputs as buttons, and links -------------------------------------------------------------

    def _on_happening(self, happening: Happening) -> None:
        """An input was pressed, released, or made a press event: publish, and carry out
        its links (whether or not the broker is there)."""
        if happening.pin in self._event_topics and happening.kind not in (PRESS, RELEASE):
            self._publish_event(happening)
        for output, command in self.links.commands(happening):
            state = self.pins.get(output)
            assert state is not None, "config validation guarantees a configured output"
            logger.debug("link: pin %d %s -> pin %d", happening.pin, happening.kind, output)
            self._apply(state, command)

    def _publish_event(self, happening: Happening) -> None:
        if self.hub.session_token() is None:
            # Not kept for later: a double press published minutes late would be wrong.
            self._events_unsent += 1
            if self._events_unsent == 1:
                logger.warning(
                    "broker unreachable: pin %d %s press not published; press events are not "
                    "kept for later (links still act), the count follows on reconnection",
                    happening.pin,
                    happening.kind,
                )
            return
        event: dict[str, object] = {
            "event_type": happening.kind,
            "pin": happening.pin,
            "time": utc_stamp(),
        }
        if happening.held is not None:
            event["duration_ms"] = round(happening.held * 1000)
        self.hub.publish(
            self._event_topics[happening.pin],
            json.dumps(event, separators=(",", ":")),
            qos=self.hub.config.mqtt.qos,
        )
        self._stats.events_published += 1

    def _follow(self, update: int, now: float) -> None:
        """Outputs that follow an input take its level when the driver is (back) up."""
        is_on = {
            state.spec.pin: state.is_on(update >> state.spec.pin & 1)
            for state in self.pins
            if not state.is_output
        }
        for output, command in self.links.follow_levels(is_on):
            state = self.pins.get(output)
            assert state is not None
            self.pins.command(state, command.action, now)  # sent with every pin just after

    def _send(self, writes: list[PinWrite]) -> None:
        """Queue pin configs for the driver; what ZeroMQ cannot take now is retried later.

        While the driver sends no updates nothing is sent at all: the wanted levels are kept
        and every pin is configured again when it is back (last write wins).
        """
        if not self.alive:
            return
        for write in writes:
            frame = self._frames.get(write)
            if frame is None:  # at most 16 x 3 different frames: encode each once
                malos = self.hub.config.malos
                frame = encode_pin_config(
                    write.pin,
                    write.mode,
                    write.value,
                    update_interval=malos.update_interval,
                    ping_timeout=malos.ping_timeout,
                )
                self._frames[write] = frame
            if self.link.send_config(frame):
                self._unsent.discard(write.pin)
                logger.debug("pin %d -> %s %d", write.pin, write.mode.name, write.value)
            elif write.pin not in self._unsent:
                self._unsent.add(write.pin)
                logger.warning("MALOS is not taking configs fast enough; pin %d held", write.pin)

    def assert_directions(self) -> bool:
        """Send one config that makes the driver rewrite the whole direction register from its
        shadow, where every output and servo pin is an output: a servo config rewrites it from
        the servo driver's shadow, where only servo pins are. False while the driver is away
        (it gets every pin again when it is back)."""
        if not self.alive or not self.pins.held:
            return False
        self._send([self.pins.rewrite(self.pins.held[0])])
        return True

    def _resend_held(self) -> None:
        if self._unsent:
            self._send([self.pins.rewrite(pin) for pin in sorted(self._unsent)])

    # -- states ----------------------------------------------------------------------------------

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
        self.hub.timers.call_later(wait, lambda: self._release_state(state))
        if now - self._rate_reported.get(pin, float("-inf")) >= RATE_WARNING_EVERY:
            self._rate_reported[pin] = now
            self.hub.report(
                f"pin {pin} changes more than {self.hub.config.mqtt.max_state_rate} times a "
                "second; its state is published at that rate (the latest level always), see "
                "mqtt.max_state_rate",
                source="driver",
                pin=pin,
            )

    def _release_state(self, state: PinState) -> None:
        self._held_states.discard(state.spec.pin)
        if state.level is not None:
            self._publish_change(state, self.hub.timers.clock())

    def _publish_state(self, state: PinState) -> None:
        assert state.level is not None
        self.hub.publish(
            self._state_topics[state.spec.pin],
            state.payload(state.level),
            qos=self.hub.config.mqtt.qos,
            retain=True,
        )

    # -- commands --------------------------------------------------------------------------------

    def _on_command(self, topic: str, payload: bytes, retained: bool) -> None:
        """A `set` topic that is not a configured output's own: refused with the reason, unless
        it still names one (a pin number written with a leading zero)."""
        segment = self.topics.pin_segment(topic)
        if segment is None:
            return  # cannot happen: the route's filter `<base>/gpio/+/set` has one level there
        pin = int(segment) if _PIN_SEGMENT.fullmatch(segment) else None
        if pin is None or pin >= PIN_COUNT:
            self.hub.refuse(f"{shorten(topic)}: {shorten(segment)!r} is not a pin number 0..15")
            return
        state = self.pins.get(pin)
        if state is None:
            self.hub.refuse(f"pin {pin} is not configured", pin=pin)
            return
        if not state.is_output:
            self.hub.refuse(f"pin {pin} is an input; only output pins accept commands", pin=pin)
            return
        self._on_pin_command(state, payload)

    def _on_pin_command(self, state: PinState, payload: bytes) -> None:
        spec = state.spec
        pin = spec.pin
        command = _parse_command(payload, spec.payload_on, spec.payload_off)
        if isinstance(command, Refusal):
            self.hub.refuse(f"pin {pin}: {command.reason}", pin=pin)
            return
        if command.action is Action.NOTHING:
            return
        self._stats.commands_applied += 1
        write = self._apply(state, command)
        if write is not None and not self.alive:
            self._hold(state, write)

    def _hold(self, state: PinState, write: PinWrite) -> None:
        """A command while the driver is away: kept; one report per outage, the count later."""
        self._held_commands += 1
        pin, wanted = state.spec.pin, "on" if state.is_on(write.value) else "off"
        if self._held_commands > 1:
            logger.debug("MALOS away: pin %d will be %s when it is back", pin, wanted)
            return
        away, when = (
            ("has not sent its first update yet", "once it is up")
            if self._last_frame is None
            else ("is not sending updates", "when it is back")
        )
        self.hub.report(
            f"MALOS driver {away}; pin {pin} will be {wanted} {when} (commands until then "
            "are kept, the last one per pin is applied)",
            pin=pin,
        )

    def _apply(self, state: PinState, command: Command) -> PinWrite | None:
        """Send a command to the driver; schedule the end of a pulse."""
        pin = state.spec.pin
        self.pulses.cancel(pin)  # a new command replaces a pulse in progress
        write = self.pins.command(state, command.action, self.hub.timers.clock())
        if write is None:
            return None
        self._send([write])
        turned_on = state.is_on(write.value)
        duration_ms = command.duration_ms
        if duration_ms is None and turned_on:
            duration_ms = state.spec.pulse_ms
        if duration_ms is not None:
            self.pulses.start(pin, duration_ms / 1000, Action.OFF if turned_on else Action.ON)
        return write

    def _end_pulse(self, pin: int, back: Action) -> None:
        state = self.pins.get(pin)
        assert state is not None
        write = self.pins.command(state, back, self.hub.timers.clock())
        if write is not None:
            self._send([write])


__all__ = ["GpioDriver"]
