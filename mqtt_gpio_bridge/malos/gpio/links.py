"""Links: what an input's happenings do to outputs, as commands (pure).

The GPIO driver carries the commands out from the driver's updates, like commands from MQTT,
so a wall button keeps switching its light while the broker or the network is down.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...config import LinkSpec
from .commands import Action, Command
from .inputs import PRESS, RELEASE, Happening

_ACTIONS = {"toggle": Action.TOGGLE, "on": Action.ON, "off": Action.OFF, "pulse": Action.ON}


class LinkTable:
    """The configured links, found by input pin and happening."""

    def __init__(self, links: Iterable[LinkSpec]) -> None:
        """Index `links` by (input pin, what they act on)."""
        self._by_trigger: dict[tuple[int, str], list[tuple[int, Command | None]]] = {}
        self._follows: list[tuple[int, int]] = []
        for link in links:
            if link.action == "follow":
                self._follows.append((link.input, link.output))
                command = None  # the level decides
            else:
                command = Command(_ACTIONS[link.action], link.duration_ms)
            kinds = (PRESS, RELEASE) if link.trigger == "change" else (link.trigger,)
            for kind in kinds:
                self._by_trigger.setdefault((link.input, kind), []).append((link.output, command))

    def __bool__(self) -> bool:
        return bool(self._by_trigger)

    @property
    def sources(self) -> set[int]:
        """The input pins some link acts on."""
        return {pin for pin, _ in self._by_trigger}

    def commands(self, happening: Happening) -> list[tuple[int, Command]]:
        """The (output pin, command) pairs a happening calls for, in config order."""
        found = self._by_trigger.get((happening.pin, happening.kind))
        if not found:
            return []
        follow = Command(Action.ON if happening.kind == PRESS else Action.OFF)
        return [(output, follow if command is None else command) for output, command in found]

    def follow_levels(self, is_on: dict[int, bool]) -> list[tuple[int, Command]]:
        """What follow links make of their outputs when the inputs' logical levels are first
        known (at start, and when the driver comes back).

        Args:
            is_on: each input pin's logical level.
        """
        return [
            (output, Command(Action.ON if is_on[source] else Action.OFF))
            for source, output in self._follows
            if source in is_on
        ]


__all__ = ["LinkTable"]
