"""The Everloop LED ring as a part of the bridge: Home Assistant JSON-light commands (and
per-LED images from Node-RED) shown on the ring, effects animated in the poll loop, and the
board told apart by the ring's LED count.

The driver has no read-back: the state the bridge publishes is what it last showed. It is
retained, and a new run restores it from the broker (an effect resumes), so a restart of the
bridge or of MALOS leaves the ring as it was. The driver's updates carry only its LED count (35
on a MATRIX Creator, 18 on a Voice), which is the one reliable way to tell the boards apart, so
the driver is pinged whenever the LED ring or the sensors are configured; nothing is sent to it
before that count is known.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...core.concern import Hub, Route
from ...core.timers import Timer
from ...errors import CodecError
from ...mqtt.topics import Topics
from ..driver import Driver
from ..gpio.commands import Refusal
from .codec import CREATOR_LEDS, VOICE_LEDS, decode_length, encode_image
from .commands import parse_command
from .effects import animated, render
from .light import LightState, from_json, state_json

logger = logging.getLogger(__name__)

BOARDS = {CREATOR_LEDS: "Creator", VOICE_LEDS: "Voice"}
"""The board, by the LED count of its ring."""
LOOK_FOR = 1.0
"""Seconds the retained state of an earlier run is listened for after the first connection."""


class EverloopDriver(Driver[int]):
    """The LED ring (MALOS port `malos.everloop_port`); with `everloop` unset, only the board."""

    name = "Everloop"
    status_name = "everloop"

    def __init__(self, hub: Hub) -> None:
        """Prepare; opens nothing."""
        config = hub.config
        super().__init__(hub, config.malos.everloop_port)
        self.settings = config.everloop
        self.topics = Topics(config.mqtt.base_topic)
        self.led_count: int | None = None
        """The ring's LED count from the driver's updates; None until the first."""
        self.state = LightState()
        self._known = False
        """The state is known (restored from the broker or commanded): it is published, and
        shown on the ring whenever the driver is up."""
        self._looking = False
        self._effect_started = 0.0
        self._frame: Timer | None = None
        self._sent: bytes | None = None
        """The last image sent since the driver came up (an unchanged frame is not sent)."""
        self._held = False
        """A command came while the driver was away (said once until it is back)."""

    @property
    def board(self) -> str | None:
        """The board, "Creator" or "Voice", once the ring's LED count is known."""
        return None if self.led_count is None else BOARDS.get(self.led_count)

    # -- the hooks -------------------------------------------------------------------------------

    def routes(self) -> Iterable[Route]:
        if self.settings is None:
            return ()
        qos = self.hub.config.mqtt.qos
        return [
            Route(
                self.topics.everloop_set,
                lambda _t, payload, _r: self._on_command(payload),
                qos,
                command=True,
            ),
            Route(self.topics.everloop_state, self._on_state, qos=None),
        ]

    def fast_routes(self) -> Mapping[str, Callable[[bytes], None]]:
        if self.settings is None:
            return {}
        return {self.topics.everloop_set: self._on_command}

    def connected(self) -> None:
        if self.settings is None or self._looking or self._known:
            return
        # What an earlier run showed, retained: subscribed before this run publishes a state.
        self._looking = True
        state_topic = self.topics.everloop_state
        self.hub.subscribe(state_topic, qos=1)
        self.hub.timers.call_later(LOOK_FOR, lambda: self.hub.unsubscribe(state_topic))

    def announce(self) -> None:
        super().announce()
        if self._known:
            self._publish_state()

    def driver_changed(self, driver: Driver[Any]) -> None:
        if driver is self and not self.alive:
            self._stop_frames()
            self._sent = None

    def stop(self) -> None:
        self._stop_frames()
        if self.settings is None or not self._known:
            return
        if self.settings.on_stop == "off" and self.state.on and self.alive and self.led_count:
            # Dark, and said so; with the driver away the ring is left as it is (and the
            # state, which says what it shows, too).
            self.state = dataclasses.replace(self.state, on=False)
            self._send(render(self.state, self.led_count, 0.0))
            self._publish_state()

    # -- the driver's side -----------------------------------------------------------------------

    def on_update(self, frame: bytes) -> None:
        try:
            length = decode_length(frame)
        except CodecError as exc:
            self._bad(f"malformed update from the MALOS Everloop driver: {exc}")
            return
        if length <= 0:
            self._bad(f"the MALOS Everloop driver says the ring has {length} LEDs")
            return
        self._last_problem = None
        self.seen(self.hub.timers.clock(), length)

    def _bad(self, problem: str) -> None:
        """Report an update that is no valid one, once while they keep coming (one a second)."""
        self._say_once(problem, lambda said: self.hub.report(said, source="driver"))

    def came_back(self, update: int) -> None:
        if update != self.led_count:
            board = BOARDS.get(update)
            logger.info(
                "the LED ring has %d LEDs: %s",
                update,
                f"a MATRIX {board}" if board else "not a board the bridge knows",
            )
            self.led_count = update
            sensors = self.hub.config.sensors
            if sensors is not None and board != "Creator":
                logger.warning(
                    "the enabled sensors (%s) are not published: only a MATRIX Creator has "
                    "them (on a Voice MALOS runs their drivers all the same, sending zeros)",
                    ", ".join(sensors.enabled),
                )
        self._sent = None
        self._held = False
        if self._known:
            self._show(restart_effect=False)  # MALOS restarted: the image again, or the effect on

    # -- commands --------------------------------------------------------------------------------

    def _on_command(self, payload: bytes) -> None:
        if self.led_count is None and b'"led' in payload:
            state: LightState | Refusal = Refusal(
                "the ring's LED count is not known yet (no update from the MALOS Everloop "
                "driver): per-LED images wait for it, colours and effects do not"
            )
        else:
            state = parse_command(payload, self.state, self.led_count or CREATOR_LEDS)
        if isinstance(state, Refusal):
            self.hub.refuse(f"everloop: {state.reason}", topic=self.topics.everloop_status)
            return
        self.hub.stats.commands_applied += 1
        restart = state.effect != self.state.effect or not self.state.on
        self.state = state
        self._known = True
        if not self.alive and not self._held:
            self._held = True  # said once per outage
            logger.info("the LED ring shows the command once the MALOS Everloop driver answers")
        self._show(restart_effect=restart)

    def _on_state(self, topic: str, payload: bytes, retained: bool) -> None:
        if not retained or self._known:
            return
        state = from_json(payload.decode("utf-8", errors="replace"))
        if state is None:
            logger.info("the retained LED ring state is not one the bridge wrote: ignored")
            return
        logger.info("the LED ring is restored to what the bridge showed when it last ran")
        self.state = state
        self._known = True
        self._show(restart_effect=True)

    # -- frames ----------------------------------------------------------------------------------

    def _show(self, *, restart_effect: bool) -> None:
        """Show the state now (when the driver is up) and publish it; start or go on with its
        effect."""
        self._publish_state()
        self._stop_frames()
        if not self.alive or self.led_count is None:
            return
        now = self.hub.timers.clock()
        if restart_effect:
            self._effect_started = now
        self._next_frame()

    def _next_frame(self) -> None:
        """Send the frame due now, and schedule the next one while an effect runs."""
        self._frame = None
        count = self.led_count
        if count is None or not self.alive:
            return
        clock = self.hub.timers.clock()
        self._send(render(self.state, count, clock - self._effect_started))
        if not animated(self.state) or self.settings is None:
            return
        fps = self.settings.fps
        # On the grid of the effect's start, so the pace does not drift; a late wake-up skips
        # the frames it missed rather than sending them in a burst.
        due = math.floor((clock - self._effect_started) * fps) + 1
        self._frame = self.hub.timers.call_at(self._effect_started + due / fps, self._next_frame)

    def _send(self, image: tuple[tuple[int, int, int, int], ...]) -> None:
        frame = encode_image(image)
        if frame == self._sent:
            return
        if self.link.send_config(frame):
            self._sent = frame

    def _stop_frames(self) -> None:
        if self._frame is not None:
            self._frame.cancel()
            self._frame = None

    def _publish_state(self) -> None:
        self.hub.publish(
            self.topics.everloop_state,
            state_json(self.state),
            qos=self.hub.config.mqtt.qos,
            retain=True,
        )


__all__ = ["BOARDS", "EverloopDriver"]
