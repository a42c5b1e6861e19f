"""Pulses in progress: at most one per pin, each ending with the pin sent back (on timers)."""

from __future__ import annotations

from collections.abc import Callable

from ...core.timers import Timer, Timers
from .commands import Action


class Pulses:
    """The pending ends of pulses; a new pulse or command on a pin replaces its pulse."""

    def __init__(self, timers: Timers, end: Callable[[int, Action], None]) -> None:
        """Pulses on `timers`; `end(pin, back)` sends a pin back when its pulse is over."""
        self._timers = timers
        self._end = end
        self._pending: dict[int, tuple[Timer, Action]] = {}

    def __len__(self) -> int:
        """Pulses in progress."""
        return len(self._pending)

    def start(self, pin: int, seconds: float, back: Action) -> None:
        """End `pin`'s pulse in `seconds` with `back`, replacing any pulse in progress."""
        self.cancel(pin)
        timer = self._timers.call_later(seconds, lambda: self._ended(pin, back))
        self._pending[pin] = (timer, back)

    def cancel(self, pin: int) -> Action | None:
        """Forget `pin`'s pulse (a new command replaces it); what it would have sent back."""
        pending = self._pending.pop(pin, None)
        if pending is None:
            return None
        timer, back = pending
        timer.cancel()
        return back

    def finish_all(self) -> None:
        """End every pulse now (a clean stop must not leave a relay closed)."""
        for pin in list(self._pending):
            back = self.cancel(pin)
            if back is not None:
                self._end(pin, back)

    def _ended(self, pin: int, back: Action) -> None:
        self._pending.pop(pin, None)
        self._end(pin, back)


__all__ = ["Pulses"]
