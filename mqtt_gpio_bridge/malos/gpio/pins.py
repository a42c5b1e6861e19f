"""What the bridge knows and wants of each configured pin (pure state, no I/O).

The board is the source of truth: a pin's published state only ever comes from a driver update.
Outputs also carry the level the user wants, which is what the bridge (re)sends to the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ...config import PinSpec
from .codec import PinMode, pin_level
from .commands import Action


@dataclass(slots=True)
class PinState:
    """One configured pin.

    Attributes:
        spec: the pin's configuration.
        level: last level the board reported (0/1), None before the first update.
        wanted: outputs only: the level to drive (last command, else `initial`, else the level
            read from the first update), None while unknown.
        confirm_by: while a sent level is not yet seen in an update, the monotonic time until
            which contrary reports are taken as "not applied yet" rather than as the state.
        published: the level last published on the state topic, None to publish the next one.
    """

    spec: PinSpec
    level: int | None = None
    wanted: int | None = None
    confirm_by: float | None = None
    published: int | None = None

    @property
    def is_output(self) -> bool:
        return self.spec.is_output

    def is_on(self, level: int) -> bool:
        """Whether a board level is this pin's logical "on" (after `inverted`)."""
        return bool(level) != self.spec.inverted

    def payload(self, level: int) -> str:
        """The state payload for a board level, after `inverted`."""
        return self.spec.payload_on if self.is_on(level) else self.spec.payload_off


@dataclass(frozen=True, slots=True)
class PinWrite:
    """One pin configuration to send to the driver."""

    pin: int
    mode: PinMode
    value: int = 0


class PinTable:
    """The configured pins, keyed by pin number.

    Servo pins are not in it (their state is an angle, kept by the servo module), but they are
    held: every (re)configuration makes them GPIO outputs too, because the GPIO driver rewrites
    the whole direction register from its own shadow and would otherwise turn them into inputs.
    """

    def __init__(self, specs: Iterable[PinSpec], confirm_timeout: float) -> None:
        """Build the table.

        Args:
            specs: the configured pins.
            confirm_timeout: how long a sent output level may take to show in updates.
        """
        specs = list(specs)
        self._pins = {spec.pin: PinState(spec) for spec in specs if not spec.is_servo}
        self.held = tuple(sorted(spec.pin for spec in specs if spec.is_servo))
        """Servo pins: GPIO outputs at level 0 that are never published nor commanded."""
        self._confirm_timeout = confirm_timeout
        # The common update changes nothing: compare masks and skip the per-pin walk, unless
        # a confirmation or a snapshot is outstanding.
        self._last_levels: int | None = None
        self._settled = False
        for state in self._pins.values():
            if state.spec.is_output and state.spec.initial is not None:
                state.wanted = self._level_for(state, on=state.spec.initial == "on")

    def __iter__(self) -> Iterator[PinState]:
        return iter(self._pins.values())

    def get(self, pin: int) -> PinState | None:
        """The state of a configured pin, None for a pin not in the config."""
        return self._pins.get(pin)

    @staticmethod
    def _level_for(state: PinState, *, on: bool) -> int:
        return int(on != state.spec.inverted)

    def writes(self, levels: int, now: float) -> list[PinWrite]:
        """Every pin's mode and each output's wanted level, to (re)configure the driver.

        Args:
            levels: the update that showed the driver (back); outputs with no wanted level
                yet adopt theirs from it ("leave the pin as it is").
            now: monotonic time, to start waiting for confirmation of outputs.
        """
        result = []
        for state in self._pins.values():
            if not state.is_output:
                result.append(PinWrite(state.spec.pin, PinMode.INPUT))
                continue
            if state.wanted is None:
                state.wanted = pin_level(levels, state.spec.pin)
            state.confirm_by = now + self._confirm_timeout
            result.append(PinWrite(state.spec.pin, PinMode.OUTPUT, state.wanted))
        result += [PinWrite(pin, PinMode.OUTPUT) for pin in self.held]
        self._settled = False
        return result

    def rewrite(self, pin: int) -> PinWrite:
        """The config that puts a configured pin where it is wanted now."""
        if pin in self.held:
            return PinWrite(pin, PinMode.OUTPUT)
        state = self._pins[pin]
        if not state.is_output:
            return PinWrite(pin, PinMode.INPUT)
        assert state.wanted is not None, "outputs get a wanted level at the first update"
        return PinWrite(pin, PinMode.OUTPUT, state.wanted)

    def command(self, state: PinState, action: Action, now: float) -> PinWrite | None:
        """Apply a user command to an output pin; return the write to send, if any."""
        if action is Action.NOTHING:
            return None
        if action is Action.TOGGLE:
            # Flip what the board shows, or what was just asked if that is not applied yet.
            current = state.wanted if state.confirm_by is not None else state.level
            if current is None:
                current = state.wanted if state.wanted is not None else 0
            state.wanted = 1 - current
        else:
            state.wanted = self._level_for(state, on=action is Action.ON)
        state.confirm_by = now + self._confirm_timeout
        self._settled = False
        return PinWrite(state.spec.pin, PinMode.OUTPUT, state.wanted)

    @property
    def settled(self) -> bool:
        """True when an update equal to the last one can change nothing."""
        return self._settled

    def update(self, levels: int, now: float) -> list[PinState]:
        """Take one driver update; return the pins whose state must be published now.

        Each returned pin is marked as published at its new `level`.
        """
        last, self._last_levels = self._last_levels, levels
        if self._settled and last is not None:
            # Every pin shows and has published its last level: only the flipped bits count.
            return self._flipped(levels, levels ^ last)
        changed = []
        waiting = False
        for state in self._pins.values():
            level = pin_level(levels, state.spec.pin)
            if state.confirm_by is not None:
                if level == state.wanted or now >= state.confirm_by:
                    state.confirm_by = None
                else:
                    waiting = True
                    continue  # the driver has not applied the sent level yet
            state.level = level
            if state.published != level:
                state.published = level
                changed.append(state)
        self._settled = not waiting
        return changed

    def _flipped(self, levels: int, flipped: int) -> list[PinState]:
        changed = []
        while flipped:
            bit = flipped & -flipped
            flipped ^= bit
            state = self._pins.get(bit.bit_length() - 1)
            if state is not None:
                state.level = state.published = 1 if levels & bit else 0
                changed.append(state)
        return changed

    def forget_published(self) -> None:
        """Make the next update publish every pin (a snapshot)."""
        for state in self._pins.values():
            state.published = None
        self._settled = False

    def known(self) -> list[PinState]:
        """Pins whose level the board has reported."""
        return [state for state in self._pins.values() if state.level is not None]
