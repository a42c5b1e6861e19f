"""Inputs as buttons: debounce, and single/double/long presses told apart (pure, clock given).

The bridge sees an input's level only in the driver's updates, so every time here is the time
of an update: a level change counts from the first update that showed it, a press lasts from
the update that first showed it on to the one that first showed it off. Everything is decided
at updates, which MALOS sends every `malos.update_interval` whether anything changed or not, so
no timer is needed: a long press is found at the first update at or past its threshold, and a
single (when doubles are detected) at the first update after the double window.

No phantom events: the first level seen (at start, or after the driver came back) is where a
pin is, not a change.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from ...config import PinSpec

PRESS = "press"
RELEASE = "release"
"""The two level happenings (of the logical level, after `inverted` and debounce)."""


@dataclass(frozen=True, slots=True)
class Happening:
    """Something an input did.

    Attributes:
        pin: the input pin.
        kind: `press` or `release` (its logical level changed), or the press event `single`,
            `double` or `long`.
        at: monotonic time: for press/release the update that first showed the new level, for
            an event the update at which it was decided.
        held: `long` only: seconds the press had lasted when it was decided.
    """

    pin: int
    kind: str
    at: float
    held: float | None = None


class _Phase(enum.Enum):
    IDLE = enum.auto()
    PRESSED = enum.auto()
    LONG = enum.auto()
    """Pressed, and the long press already published: the release ends it quietly."""
    WAITING = enum.auto()
    """Released once; a second press within the double window makes a double."""


class InputPin:
    """One input: its debounced level and where it is in a press sequence."""

    def __init__(self, spec: PinSpec) -> None:
        """Track the input `spec` (its level is unknown until the first update)."""
        self.pin = spec.pin
        self._inverted = spec.inverted
        self._debounce = spec.debounce_ms / 1000
        self._events = frozenset(spec.events)
        self._double = "double" in self._events
        self._long = "long" in self._events
        self._window = spec.double_press_window
        self._long_after = spec.long_press_after
        self.stable: int | None = None
        """The level taken (0/1, electrical), None before the first update."""
        self._candidate: int | None = None
        self._since = 0.0
        self._phase = _Phase.IDLE
        self._presses = 0
        self._pressed_at = 0.0
        self._released_at = 0.0

    def reset(self) -> None:
        """Forget everything: the next update gives the level, not a change."""
        self.stable = self._candidate = None
        self._phase = _Phase.IDLE
        self._presses = 0

    @property
    def pending(self) -> bool:
        """Whether an update with the same level can still decide something."""
        return (
            self._candidate is not None
            or self._phase is _Phase.WAITING
            or (self._phase is _Phase.PRESSED and self._long)
        )

    def take(self, level: int, now: float, out: list[Happening]) -> None:
        """Take the pin's level from an update at `now`; append what happened to `out`."""
        if self.stable is None:
            self.stable = level
            return
        if level != self.stable:
            if self._candidate != level:
                self._candidate, self._since = level, now
            if now - self._since >= self._debounce:
                self.stable, self._candidate = level, None
                self._edge(bool(level) != self._inverted, self._since, out)
        elif self._candidate is not None:
            self._candidate = None  # a glitch shorter than debounce_ms: nothing happened
        if self._phase is not _Phase.IDLE and self._phase is not _Phase.LONG:
            self._tick(now, out)

    def _edge(self, on: bool, at: float, out: list[Happening]) -> None:
        out.append(Happening(self.pin, PRESS if on else RELEASE, at))
        if not self._events:
            return
        phase = self._phase
        if on:
            presses = 1
            if phase is _Phase.WAITING:
                if at - self._released_at <= self._window:
                    presses = 2
                else:  # the window ended between two updates, before this press
                    self._single(self._released_at + self._window, out)
            self._phase, self._presses, self._pressed_at = _Phase.PRESSED, presses, at
        elif phase is _Phase.LONG:
            self._phase = _Phase.IDLE
        elif phase is _Phase.PRESSED:
            if self._presses == 2:
                out.append(Happening(self.pin, "double", at))
                self._phase = _Phase.IDLE
            elif self._double:
                self._phase, self._released_at = _Phase.WAITING, at
            else:
                self._single(at, out)
        # A release seen while idle ends a press that began before the first update: nothing.

    def _tick(self, now: float, out: list[Happening]) -> None:
        # A change not yet past debounce_ms started at `_since`: judge as of then.
        until = self._since if self._candidate is not None else now
        if self._phase is _Phase.PRESSED:
            held = until - self._pressed_at
            if self._long and held >= self._long_after:
                out.append(Happening(self.pin, "long", now, held))
                self._phase, self._presses = _Phase.LONG, 0
        elif self._phase is _Phase.WAITING and until - self._released_at > self._window:
            self._single(now, out)

    def _single(self, at: float, out: list[Happening]) -> None:
        self._phase, self._presses = _Phase.IDLE, 0
        if "single" in self._events:
            out.append(Happening(self.pin, "single", at))


class Inputs:
    """The inputs that act as buttons: debounced, watched for presses, or the source of a
    link. Other pins pass through untouched."""

    def __init__(self, specs: Iterable[PinSpec], link_sources: Iterable[int] = ()) -> None:
        """Track each input that has `debounce_ms`, `events`, or a link from it."""
        sources = set(link_sources)
        self._pins = [
            InputPin(spec)
            for spec in specs
            if not spec.is_output and (spec.debounce_ms or spec.events or spec.pin in sources)
        ]
        self._debounced = [tracker for tracker in self._pins if tracker._debounce > 0]

    def __bool__(self) -> bool:
        return bool(self._pins)

    @property
    def pending(self) -> bool:
        """Whether an update equal to the last one can still decide something."""
        return any(tracker.pending for tracker in self._pins)

    def reset(self) -> None:
        """The driver (re)started, or stopped: the next update is a start, not a change."""
        for tracker in self._pins:
            tracker.reset()

    def take(self, levels: int, now: float) -> tuple[int, list[Happening]]:
        """Take one update (the 16 levels as a mask) at `now`.

        Returns:
            The levels with each debounced pin showing its debounced level, and what happened.
        """
        happened: list[Happening] = []
        for tracker in self._pins:
            tracker.take(levels >> tracker.pin & 1, now, happened)
        for tracker in self._debounced:
            bit = 1 << tracker.pin
            levels = (levels & ~bit) | (bit if tracker.stable else 0)
        return levels, happened


__all__ = ["PRESS", "RELEASE", "Happening", "InputPin", "Inputs"]
