"""Timers for the bridge's single poll loop: what is due next, and running what is due.

The bridge waits on its sockets with one `poll()`; the timeout of that poll is the time until
the earliest timer here. Nothing runs in another thread, so a timer needs no lock.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable


class Timer:
    """One scheduled call; `cancel()` keeps it from running."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run this call (it is dropped when its time comes)."""
        self.cancelled = True


class Timers:
    """Calls scheduled on the `time.monotonic()` clock, earliest first."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # equal times run in the order they were scheduled

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` once the monotonic clock reaches `when`."""
        timer = Timer(when, callback)
        heapq.heappush(self._queue, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` after `delay` seconds."""
        return self.call_at(time.monotonic() + delay, callback)

    def wait_ms(self, now: float) -> int | None:
        """Milliseconds until the earliest timer is due (rounded up), None if there is none."""
        queue = self._queue
        while queue and queue[0][2].cancelled:
            heapq.heappop(queue)
        if not queue:
            return None
        return max(0, int((queue[0][0] - now) * 1000) + 1)

    def run_due(self, now: float) -> None:
        """Run every timer due at `now`, earliest first (new ones due at once run next time)."""
        queue = self._queue
        due: list[Timer] = []
        while queue and queue[0][0] <= now:
            due.append(heapq.heappop(queue)[2])
        for timer in due:
            if not timer.cancelled:
                timer.cancelled = True  # ran; cancelling it later does nothing
                timer.callback()


__all__ = ["Timer", "Timers"]
