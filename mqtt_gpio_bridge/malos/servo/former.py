"""A pin that was a servo in an earlier run and is now an input or output: said once at start.

A servo config switches its pin to the PWM function, and nothing but a power cycle switches it
back (the GPIO driver has no function field), so such a pin no longer follows GPIO writes.
The bridge cannot read a pin's function; what it can see is the retained state the earlier run
left on the broker: an angle (a whole number) where an input or output has ON/OFF.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ...core.concern import Concern, Hub, Route
from ...mqtt.topics import Topics

logger = logging.getLogger(__name__)

LOOK_FOR = 1.0
"""Seconds the retained states are listened to after the first connection."""
_ANGLE = re.compile(r"[0-9]{1,3}")


class FormerServos(Concern):
    """Reads the retained states once, at the first broker session, and logs each input or
    output pin whose retained state is an angle."""

    def __init__(self, hub: Hub) -> None:
        """Prepare; subscribes to nothing before the first connection."""
        super().__init__(hub)
        topics = Topics(hub.config.mqtt.base_topic)
        self._filter = topics.state_filter
        self._topics = {
            topics.state(spec.pin): spec for spec in hub.config.pins if not spec.is_servo
        }
        self._looked = False

    def routes(self) -> Iterable[Route]:
        return [Route(self._filter, self._on_state, qos=None)]

    def connected(self) -> None:
        if self._looked:
            return
        self._looked = True
        # Subscribed before the states of this run are published (same session, in order),
        # so the broker hands over what the earlier run left.
        self.hub.subscribe(self._filter, qos=1)
        self.hub.timers.call_later(LOOK_FOR, lambda: self.hub.unsubscribe(self._filter))

    def _on_state(self, topic: str, payload: bytes, retained: bool) -> None:
        spec = self._topics.get(topic)
        if not retained or spec is None:
            return
        text = payload.decode("utf-8", errors="replace").strip()
        if not _ANGLE.fullmatch(text) or text in (spec.payload_on, spec.payload_off):
            return
        logger.warning(
            "pin %d was a servo when the bridge last ran (its retained state is the angle %s) "
            "and is now configured as an %s: a pin switched to PWM stays PWM until the board is "
            "power-cycled, so it will not follow GPIO writes until then",
            spec.pin,
            text,
            spec.mode,
        )


__all__ = ["FormerServos"]
