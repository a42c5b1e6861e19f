"""A cap on how often something may happen: at most N times in any one second (pure).

The bridge keeps one per pin for its state messages, so that a driver whose updates flip a pin
thousands of times a second (broken wiring, a hostile process on the MALOS ports) cannot flood
the broker and everything subscribed to it.
"""

from __future__ import annotations

from collections import deque


class RateLimit:
    """At most `per_second` events in any window of one second."""

    __slots__ = ("_times",)

    def __init__(self, per_second: int) -> None:
        """Start with no events seen."""
        self._times: deque[float] = deque(maxlen=per_second)
        """The times of the last `per_second` events, oldest first."""

    def wait(self, now: float) -> float:
        """0.0 if an event may happen at `now` (and count it), else the seconds until one may."""
        times = self._times
        if len(times) < (times.maxlen or 0) or now - times[0] >= 1.0:
            times.append(now)
            return 0.0
        return times[0] + 1.0 - now


__all__ = ["RateLimit"]
