"""Servo pins as a part of the bridge: angles from `set` commands sent to MALOS's servo driver,
and the GPIO directions put back after every servo write.

The servo driver rewrites the whole direction register from its own shadow, in which only servo
pins are outputs, so each servo write turns every GPIO output into an input until the GPIO
driver writes the register again. Its config thread runs beside the GPIO driver's, and nothing
acknowledges a servo config, so a GPIO write sent after it may land before it. The bridge makes
the servo driver acknowledge: after the angles it sends one frame that does not parse, which the
servo driver's config thread answers on its error port *after* applying every config before it
(one thread, one socket, in order). The GPIO write that restores the directions is sent when that
answer arrives, so it lands after the servo writes whatever the threads do. Should the answer be
lost, the directions are also restored on a timer, several times over the next tens of ms.

The servo driver is not a `Driver`: it sends no updates (so it has no liveness of its own, and
the GPIO driver's, from the same MALOS process, stands for it) and must never be pinged (a
pinged servo driver publishes an error at every period).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ...config import PinSpec
from ...core.concern import Concern, Hub
from ...core.timers import Timer
from ...mqtt.topics import Topics
from ..driver import Driver, error_text
from ..gpio.commands import Refusal
from ..gpio.driver import GpioDriver
from ..link import MalosLink
from .codec import encode_servo_config
from .commands import parse_angle

logger = logging.getLogger(__name__)

FENCE = b"\x80"
"""A frame no protobuf parser accepts (a varint cut short): the servo driver answers it with
`ACKNOWLEDGED` once every config sent before it is applied. (MALOS also logs one line for it.)"""
ACKNOWLEDGED = b"0, Invalid configuration for Servo driver. Could not parse protobuf."
RESTORE_AFTER = (0.005, 0.02, 0.05)
"""Seconds after a servo write at which the GPIO directions are restored again while its
acknowledgement has not arrived."""
ACKNOWLEDGE_TIMEOUT = 0.25
"""Seconds to wait for an acknowledgement before the next angles go out without it; the
bridge then asks again, every ACKNOWLEDGE_TIMEOUT, until an answer comes."""
ASK_AGAIN = 20
"""How many more fences at most after an unanswered one (5 s). The answer can be lost when the
error port's subscription is not connected yet (MALOS just restarted: ZeroMQ reconnects each
socket on its own), and a later fence, sent after every angle so far, is answered after them."""


class ServoDriver(Concern):
    """The servo pins (MALOS port `malos.servo_port`), driven through `gpio` for directions."""

    name = "Servo"

    def __init__(self, hub: Hub, gpio: GpioDriver) -> None:
        """Prepare the configured servo pins; opens nothing."""
        super().__init__(hub)
        config = hub.config
        self.gpio = gpio
        self.link = MalosLink(config.malos.host, config.malos.servo_port, self.name)
        self.topics = Topics(config.mqtt.base_topic)
        self.specs = {spec.pin: spec for spec in config.pins if spec.is_servo}
        self._wanted: dict[int, int] = {
            pin: spec.initial for pin, spec in self.specs.items() if isinstance(spec.initial, int)
        }
        """The angle each pin should be at: its last command, else its `initial`."""
        self._sent: dict[int, int] = {}
        """The angle last sent for each pin: what its state topic says."""
        self._pending: dict[int, None] = {}
        """Pins whose wanted angle is not sent yet, in the order they were asked (a set)."""
        self._in_flight = False
        """Angles were sent and their acknowledgement has not arrived."""
        self._timers: list[Timer] = []
        self._held_commands = 0
        """Commands received while the GPIO driver sent no updates."""
        self._unacknowledged = 0
        """Writes whose acknowledgement did not come in time (reported once)."""
        self._unanswered = False
        """Angles were sent since the last answer: a late or repeated fence is still wanted."""
        self._asking: Timer | None = None

    # -- the hooks -------------------------------------------------------------------------------

    def fast_routes(self) -> Mapping[str, Callable[[bytes], None]]:
        # Under the GPIO driver's `<base>/gpio/+/set` subscription. A pin written with a
        # leading zero (`04`) is still that pin, as for outputs.
        routes: dict[str, Callable[[bytes], None]] = {}
        for pin, spec in self.specs.items():
            handler = functools.partial(self._on_command, spec)
            routes[self.topics.command(pin)] = handler
            if pin < 10:
                routes[self.topics.command(f"0{pin}")] = handler
        return routes

    def open(self, stack: contextlib.ExitStack) -> Mapping[object, Callable[[], None]]:
        """Open the link; only its error port matters (the driver sends no updates)."""
        stack.enter_context(self.link)
        sockets = self.link.sockets()
        return {
            sockets.errors: self._read_error,
            sockets.connection: self._read_connection_event,
        }

    def announce(self) -> None:
        for pin in self._sent:
            self._publish_state(pin)

    def driver_changed(self, driver: Driver[Any]) -> None:
        if driver is not self.gpio:
            return
        self._forget_in_flight()
        if not driver.alive:
            return
        # The GPIO driver was just configured (it is up, maybe after a MALOS restart with zeroed
        # shadows): send every angle again, then the directions go back on the answer.
        self._pending = dict.fromkeys(self._wanted)
        if self._held_commands:
            logger.info(
                "%d servo commands arrived while MALOS was away; the last for each pin is sent",
                self._held_commands,
            )
            self._held_commands = 0
        self._flush()

    # -- commands --------------------------------------------------------------------------------

    def _on_command(self, spec: PinSpec, payload: bytes) -> None:
        pin = spec.pin
        angle = parse_angle(payload, spec.lowest_angle, spec.highest_angle)
        if isinstance(angle, Refusal):
            self.hub.refuse(f"pin {pin}: {angle.reason}", pin=pin)
            return
        if angle is None:
            return
        self.hub.stats.commands_applied += 1
        self._wanted[pin] = angle
        self._pending[pin] = None  # a newer angle for the same pin replaces the older one
        if not self.gpio.alive:
            self._hold(pin, angle)
            return
        self._flush()

    def _hold(self, pin: int, angle: int) -> None:
        self._held_commands += 1
        if self._held_commands == 1:
            self.hub.report(
                f"MALOS is not sending updates; servo pin {pin} goes to {angle} when it is back "
                "(commands until then are kept, the last one per pin is sent)",
                pin=pin,
            )

    # -- the driver's side -----------------------------------------------------------------------

    def _flush(self) -> None:
        """Send the pending angles and the fence, unless earlier ones await their answer: then
        the newest angle of each pin waits (no backlog builds up behind a slow driver)."""
        if self._in_flight or not self._pending or not self.gpio.alive:
            return
        sent = []
        for pin in list(self._pending):
            angle = self._wanted[pin]
            if not self.link.send_config(encode_servo_config(pin, angle)):
                break  # ZeroMQ's queue is full: the rest waits for the next round
            del self._pending[pin]
            self._sent[pin] = angle
            sent.append(pin)
            logger.debug("servo pin %d -> %d", pin, angle)
        if not sent:
            self._timers.append(self.hub.timers.call_later(ACKNOWLEDGE_TIMEOUT, self._flush))
            return
        self.link.send_config(FENCE)  # after the angles in the same queue, or not at all
        self._in_flight = True
        self._unanswered = True
        timers = self.hub.timers
        self._timers = [timers.call_later(delay, self._restore) for delay in RESTORE_AFTER]
        self._timers.append(timers.call_later(ACKNOWLEDGE_TIMEOUT, self._give_up))
        for pin in sent:
            self._publish_state(pin)

    def _restore(self) -> None:
        """A timed restore, for an acknowledgement that may never come."""
        if self._in_flight:
            self.gpio.assert_directions()

    def _acknowledged(self) -> None:
        """The servo driver applied every angle sent before the fence: restore the directions
        now (this write cannot land before them), then send what came meanwhile."""
        self.gpio.assert_directions()
        self._unanswered = False
        if self._in_flight:
            self._forget_in_flight()
            self._flush()

    def _give_up(self) -> None:
        """No answer in time: the next angles go out, and the bridge asks again meanwhile."""
        if not self._in_flight:
            return
        self._unacknowledged += 1
        if self._unacknowledged == 1:
            logger.warning(
                "the MALOS servo driver did not acknowledge a servo write within %g s; asking "
                "again every %g s for up to %g s, the GPIO directions restored on a timer "
                "meanwhile (is the servo driver running at %s:%d?)",
                ACKNOWLEDGE_TIMEOUT,
                ACKNOWLEDGE_TIMEOUT,
                ASK_AGAIN * ACKNOWLEDGE_TIMEOUT,
                self.link.host,
                self.link.base_port,
            )
        self._forget_in_flight()
        if self._asking is not None:
            self._asking.cancel()
        self._ask_again(ASK_AGAIN)
        self._flush()

    def _ask_again(self, left: int) -> None:
        """Send one more fence while no answer came since the last angles; its answer (which
        comes after every angle sent so far) restores the directions."""
        self._asking = None
        if not self._unanswered or not self.gpio.alive:
            return
        if left == 0:
            logger.warning(
                "the MALOS servo driver answered none of %d requests: the GPIO directions were "
                "restored on a timer only and may be wrong until the next servo command",
                ASK_AGAIN + 1,
            )
            return
        self.link.send_config(FENCE)
        self.gpio.assert_directions()
        self._asking = self.hub.timers.call_later(
            ACKNOWLEDGE_TIMEOUT, lambda: self._ask_again(left - 1)
        )

    def _forget_in_flight(self) -> None:
        self._in_flight = False
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _read_error(self) -> None:
        frame = self.link.error()
        if frame is None:
            return
        if frame == ACKNOWLEDGED:
            self._acknowledged()
            return
        self.hub.driver_error(self.name, error_text(frame))

    def _read_connection_event(self) -> None:
        # Only drained: a MALOS restart is told by the GPIO driver (one process runs both).
        self.link.connection_event()

    def _publish_state(self, pin: int) -> None:
        self.hub.publish(
            self.topics.state(pin), str(self._sent[pin]), qos=self.hub.config.mqtt.qos, retain=True
        )


__all__ = ["ACKNOWLEDGED", "FENCE", "ServoDriver"]
