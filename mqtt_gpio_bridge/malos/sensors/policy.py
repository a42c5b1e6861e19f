"""When a sensor value is published, and as what text: pure, the clock is passed in.

The sensor drivers send a reading every `update_interval` whether it changed or not; publishing
each would flood Home Assistant's recorder with noise. A `Throttle` per value publishes it when
it moved by at least its threshold from the last value *published* (so a slow drift is published
once it adds up), or when `publish_every` seconds passed since the last publish (so a steady
value is still seen to be alive); the first value is always published, and NaN or an infinity
never is.
"""

from __future__ import annotations

import math

_FLOAT32_SLACK = 2.0**-22
"""Relative slack on a threshold, about two float32 steps: the drivers send float32, in which
21.2 and 21.3 are 0.0999985 apart. Without it a value that moved by exactly the threshold, as a
person reads the numbers, would be held back half the time."""


def unpublishable(value: float) -> str | None:
    """Why `value` must not be published ("not a number", "infinite"), or None if it may."""
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "infinite"
    return None


class Throttle:
    """The publishing policy of one sensor value.

    Feed it every reading with `offer`; publish the reading when it says so.
    """

    def __init__(self, threshold: float, publish_every: float) -> None:
        """Prepare a throttle.

        Args:
            threshold: publish once the value moved by at least this much from the last value
                published; 0 publishes every reading.
            publish_every: publish at least every this many seconds, moved or not;
                `math.inf` never publishes for time alone.

        Raises:
            ValueError: for a negative or non-finite threshold, or a `publish_every` that is
                not > 0.
        """
        if not 0 <= threshold < math.inf:
            raise ValueError(f"threshold must be a finite number >= 0, not {threshold!r}")
        if not publish_every > 0:
            raise ValueError(f"publish_every must be > 0 seconds, not {publish_every!r}")
        self.threshold = threshold
        self.publish_every = publish_every
        self._last_value: float | None = None
        self._last_at = 0.0
        self._refused = False
        self.refusal: str | None = None
        """Why the last offer was refused for its value, set only on the first of a run of
        such offers (log it, and a NaN sent every second is logged once); else None."""

    def offer(self, value: float, now: float) -> bool:
        """Whether to publish `value`, read at `now` (seconds, a monotonic clock); when True,
        it becomes the last value published."""
        reason = unpublishable(value)
        self.refusal = None if self._refused else reason
        self._refused = reason is not None
        if reason is not None:
            return False
        last = self._last_value
        if last is not None and now - self._last_at < self.publish_every:
            slack = min(self.threshold / 2, _FLOAT32_SLACK * max(abs(value), abs(last)))
            if abs(value - last) < self.threshold - slack:
                return False
        self._last_value = value
        self._last_at = now
        return True

    def reset(self) -> None:
        """Forget the last value published: the next finite value offered is published (after
        the driver came back, or the broker reconnected and may have lost the state)."""
        self._last_value = None
        self._refused = False
        self.refusal = None

    @property
    def last_published(self) -> float | None:
        """The last value `offer` said to publish (None at first and after `reset`)."""
        return self._last_value


def format_value(value: float, precision: int) -> str:
    """The MQTT payload of `value` with `precision` decimals, e.g. (21.456, 1) -> "21.5".

    Rounded as Python's and Home Assistant's own formatting rounds (to the nearest; an exact
    binary half to even). Never "-0.0": a value that rounds to zero has no sign.

    Raises:
        ValueError: for a value that is not finite (see `unpublishable`) or a negative
            precision.
    """
    reason = unpublishable(value)
    if reason is not None:
        raise ValueError(f"{value!r} is {reason}: not publishable")
    if precision < 0:
        raise ValueError(f"precision must be >= 0, not {precision}")
    text = f"{value:.{precision}f}"
    if text.startswith("-") and not text.strip("-0."):
        return text[1:]
    return text


__all__ = ["Throttle", "format_value", "unpublishable"]
