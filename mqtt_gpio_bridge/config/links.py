"""The `links` section: an input's presses or level driving an output, carried out by the
bridge itself (no broker needed), and the rules that tie a link to the configured pins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

import voluptuous as vol

from ..malos.gpio.codec import PIN_COUNT
from ..malos.gpio.commands import MAX_PULSE_MS, MIN_PULSE_MS
from .kinds import _doc
from .messages import Loc, _describe
from .rules import _choice, _integer, _on_off, _refuse_broken, _Rule, _shows, _word
from .schema import _validate_each

if TYPE_CHECKING:
    from .model import PinSpec  # model.py holds the links; only the type is needed here

Trigger = Literal["press", "release", "change", "single", "double", "long"]
LinkAction = Literal["toggle", "on", "off", "pulse", "follow"]
LEVEL_TRIGGERS = ("press", "release", "change")
"""Triggers every input has; the others need the press event in the input's `events`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """One link: what happens to an output when an input is pressed, released or changes.
    Write the `on` key quoted (`"on": single`): YAML reads a bare `on:` as `true`, which the
    bridge also accepts."""

    input: Annotated[int, _Rule(_integer(0, PIN_COUNT - 1))] = field(
        metadata=_doc("the input pin (configured with `mode: input`)")
    )
    on: Annotated[
        Trigger | None,
        _Rule(
            _word, _choice("press", "release", "change", "single", "double", "long"), nullable=True
        ),
    ] = field(
        default=None,
        metadata=_doc(
            "what of the input acts: `press`, `release` and `change` (either) of its logical "
            "level after `debounce_ms`, or one of the press events listed in its `events`. "
            "Required, except with `action: follow` (which is `change`)"
        ),
    )
    output: Annotated[int, _Rule(_integer(0, PIN_COUNT - 1))] = field(
        metadata=_doc("the output pin (configured with `mode: output`)")
    )
    action: Annotated[
        LinkAction, _Rule(_on_off, _choice("toggle", "on", "off", "pulse", "follow"))
    ] = field(
        metadata=_doc(
            "what the output does: `toggle`, `on`, `off`, `pulse` (on for `duration_ms`, "
            "then off), or `follow` (the output mirrors the input's logical level, also at "
            "start)"
        )
    )
    duration_ms: Annotated[
        int | None, _Rule(_integer(MIN_PULSE_MS, MAX_PULSE_MS), nullable=True)
    ] = field(
        default=None,
        metadata=_doc(
            "`pulse` only: how long the output stays on; absent, the output's `pulse_ms`"
        ),
    )

    @property
    def trigger(self) -> Trigger:
        """What acts: `on`, or `change` for a follow link."""
        return "change" if self.on is None else self.on

    def __post_init__(self) -> None:
        problems: list[tuple[Loc, str]] = []
        if self.action == "follow" and self.on not in (None, "change"):
            problems.append(
                (("on",), f"a follow link acts on every change, not on {self.on!r}; leave `on` out")
            )
        if self.action != "follow" and self.on is None:
            problems.append((("on",), f"required for action {self.action!r}: say what acts"))
        if self.duration_ms is not None and self.action != "pulse":
            problems.append((("duration_ms",), f"only a pulse has a duration, not {self.action!r}"))
        _refuse_broken(problems)


@_shows("a list of links (`links[]` below)")
def _links(value: object, key: str) -> tuple[LinkSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise vol.Invalid(
            'must be a list of links, e.g. [{input: 3, "on": single, output: 5, action: '
            f"toggle}}], got {_describe(value)}"
        )
    links, problems = _validate_each(LinkSpec, value, _unquoted_on)
    if problems:
        raise vol.MultipleInvalid(problems)
    return tuple(links)


def _unquoted_on(item: object) -> object:
    """PyYAML reads a bare `on:` key as the boolean true: it means the key `on`."""
    if not isinstance(item, dict) or True not in item:
        return item
    if "on" in item:
        raise vol.Invalid("`on` is written twice (once quoted, once not)", path=["on"])
    return {("on" if name is True else name): value for name, value in item.items()}


def link_problems(links: Sequence[LinkSpec], pins: Sequence[PinSpec]) -> list[tuple[Loc, str]]:
    """What makes links impossible with these pins: each problem with its path under `links`.

    Args:
        links: the validated links.
        pins: the validated pins (`PinSpec`s).
    """
    by_pin = {spec.pin: spec for spec in pins}
    problems: list[tuple[Loc, str]] = []
    followed: dict[int, int] = {}
    for index, link in enumerate(links):
        source = by_pin.get(link.input)
        if source is None:
            problems.append(((index, "input"), f"pin {link.input} is not configured in pins"))
        elif source.mode != "input":
            kind = "a servo pin" if source.is_servo else "an output"
            problems.append(((index, "input"), f"pin {link.input} is {kind}, not an input"))
        elif link.trigger not in LEVEL_TRIGGERS and link.trigger not in source.events:
            listed = ", ".join(source.events) or "none"
            problems.append(
                (
                    (index, "on"),
                    f"pin {link.input} does not detect {link.trigger!r} presses (its events: "
                    f"{listed}); add {link.trigger!r} to its events",
                )
            )
        target = by_pin.get(link.output)
        if target is None:
            problems.append(((index, "output"), f"pin {link.output} is not configured in pins"))
            continue
        if target.is_servo:
            problems.append(
                (
                    (index, "output"),
                    f"pin {link.output} is a servo pin, not an output: links switch outputs on "
                    "and off",
                )
            )
            continue
        if not target.is_output:
            problems.append(((index, "output"), f"pin {link.output} is an input, not an output"))
            continue
        if link.action == "pulse" and link.duration_ms is None and target.pulse_ms is None:
            problems.append(
                (
                    (index, "duration_ms"),
                    f"required for a pulse (or give pin {link.output} a pulse_ms)",
                )
            )
        if link.action == "follow":
            if target.initial is not None:
                problems.append(
                    (
                        (index, "output"),
                        f"pin {link.output} follows pin {link.input}, so its `initial` "
                        "cannot apply; remove one of them",
                    )
                )
            if link.output in followed:
                problems.append(
                    (
                        (index, "output"),
                        f"pin {link.output} already follows an input, at "
                        f"links[{followed[link.output]}]",
                    )
                )
            else:
                followed[link.output] = index
    return problems


__all__ = ["LEVEL_TRIGGERS", "LinkAction", "LinkSpec", "Trigger", "link_problems"]
