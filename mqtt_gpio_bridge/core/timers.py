"""Timers for the bridge's single poll loop: what is due next, and running what is due.

The bridge waits on its sockets with one `poll()`; the timeout of that poll is the time until
the earliest timer here. Nothing runs in another thread, so a timer needs no lock.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

COMPACT_AFTER = 64
"""Cancelled timers the queue may hold before it is rebuilt without them (once they are also
half of it). A cancelled timer otherwise stays queued until its time: replacing an hour-long
pulse thousands of times a second would keep every replaced one for an hour."""


class Timer:
    """One scheduled call; `cancel()` keeps it from running."""

    __slots__ = ("_queue", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object], queue: Timers) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._queue: Timers | None = queue
        """The queue holding this timer; None once it has left it (ran or cancelled)."""

    def cancel(self) -> None:
        """Do not run this call."""
        self.cancelled = True
        queue, self._queue = self._queue, None
        if queue is not None:
            queue._dropped()


class Timers:
    """Calls scheduled on a monotonic clock (`time.monotonic` unless a test passes its own),
    earliest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        """The clock every timer here is on; the poll loop passes its readings to `run_due`."""
        self._queue: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()  # equal times run in the order they were scheduled
        self._cancelled = 0
        """Cancelled timers still in `_queue`."""

    def __len__(self) -> int:
        """Timers held in the queue, cancelled ones not yet dropped included."""
        return len(self._queue)

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` once the monotonic clock reaches `when`."""
        timer = Timer(when, callback, self)
        heapq.heappush(self._queue, (when, next(self._order), timer))
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run `callback` after `delay` seconds."""
        return self.call_at(self.clock() + delay, callback)

    def wait_ms(self, now: float) -> int | None:
        """Milliseconds until the earliest timer is due (rounded up), None if there is none."""
        queue = self._queue
        while queue and queue[0][2].cancelled:
            heapq.heappop(queue)
            self._cancelled -= 1
        if not queue:
            return None
        return max(0, int((queue[0][0] - now) * 1000) + 1)

    def run_due(self, now: float) -> None:
        """Run every timer due at `now`, earliest first (new ones due at once run next time)."""
        queue = self._queue
        due: list[Timer] = []
        while queue and queue[0][0] <= now:
            timer = heapq.heappop(queue)[2]
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer._queue = (
                    None  # out of the queue: cancelling it now only keeps it from running
                )
                due.append(timer)
        for timer in due:
            if not timer.cancelled:
                timer.cancelled = True  # ran; cancelling it later does nothing
                timer.callback()

    def _dropped(self) -> None:
        """A queued timer was cancelled; rebuild the queue once they are too many."""
        self._cancelled += 1
        queue = self._queue
        if self._cancelled > COMPACT_AFTER and 2 * self._cancelled > len(queue):
            queue[:] = [entry for entry in queue if not entry[2].cancelled]
            heapq.heapify(queue)
            self._cancelled = 0


__all__ = ["Timer", "Timers"]
