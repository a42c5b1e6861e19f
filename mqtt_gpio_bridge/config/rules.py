"""How one field is checked: the rule kept in its `Annotated[...]` type, and the checks
every kind of value shares (text, whole numbers, seconds, flags, choices).

A check is a function (value, key) -> the cleaned value, or `vol.Invalid` with the message
users read. Checks made with `_shows` also say in words what they allow, for the generated
configuration reference (`reference.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import voluptuous as vol

from .messages import Loc, _describe, _format_loc, _show

Check = Callable[[Any, str], Any]
"""One step of a field's rule: (value, key) -> the cleaned value, or raise `vol.Invalid`."""
TextCheck = Callable[[str, str], str]
"""A step that checks a string `_text` has let through."""


class _Shown:
    """A check that also says what it allows, in words (a cell of the reference's tables)."""

    __slots__ = ("check", "shows")

    def __init__(self, shows: str, check: Check) -> None:
        self.shows = shows
        self.check = check

    def __call__(self, value: Any, key: str) -> Any:
        return self.check(value, key)


def _shows(text: str) -> Callable[[Check], _Shown]:
    """Decorate a check with what it allows, e.g. `@_shows("string")`."""
    return lambda check: _Shown(text, check)


def _note(text: str) -> _Shown:
    """A step that checks nothing and only says what the value is, e.g. `_note("file name")`."""
    return _Shown(text, lambda value, key: value)


class _Rule:
    """A field's rule, kept in its `Annotated[...]` type: the checks, run in order.

    `nullable`: None (e.g. `name:` left empty in YAML) means "not set" and skips the checks.
    `missing`: the message when a field without a default is absent.
    """

    __slots__ = ("checks", "missing", "nullable")

    def __init__(
        self, *checks: Check, nullable: bool = False, missing: str = "required key is missing"
    ) -> None:
        self.checks = checks
        self.nullable = nullable
        self.missing = missing

    def __call__(self, value: object, key: str) -> object:
        if value is None and self.nullable:
            return None
        for check in self.checks:
            value = check(value, key)
        return value

    @property
    def shows(self) -> str:
        """What the rule allows, in words: what its checks say, joined."""
        return ", ".join(check.shows for check in self.checks if isinstance(check, _Shown))


class _Broken(ValueError):
    """Cross-field rules broken on construction: each problem with its path in the object."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{_format_loc(loc)}: {message}" for loc, message in problems))


def _refuse_broken(problems: list[tuple[Loc, str]]) -> None:
    if problems:
        raise _Broken(problems)


@_shows("string")
def _text(value: object, key: str) -> str:
    """Refuse non-strings with a quoting hint, instead of silently coercing them."""
    if isinstance(value, str):
        return value
    # Never echo a secret back, even one YAML mangled into a number.
    secret = key == "password"
    if isinstance(value, bool):
        word, example = ("ON/on/yes/true", "ON") if value else ("OFF/off/no/false", "OFF")
        raise vol.Invalid(
            f"YAML read an unquoted {word} as the boolean {str(value).lower()}; "
            f'quote it, e.g. {key}: "{example}"'
        )
    if isinstance(value, int | float):
        if secret:
            raise vol.Invalid("YAML read the unquoted password as a number; quote it")
        raise vol.Invalid(
            f"YAML read the unquoted {_show(value)} as a number; quote it, "
            f'e.g. {key}: "{_show(value)}"'
        )
    if secret:
        raise vol.Invalid("must be a quoted string")
    raise vol.Invalid(f"must be a string, got {_describe(value)}")


@_shows("not empty")
def _not_empty(value: str, key: str) -> str:
    if not value.strip():
        raise vol.Invalid("must not be empty")
    return value


def _integer(low: int, high: int, why: str = "") -> Check:
    @_shows(f"whole number {low}..{high}")
    def check(value: object, key: str) -> int:
        # bool is an int to Python, never to a user; 1.0 is not a port number either.
        if not isinstance(value, int) or isinstance(value, bool):
            raise vol.Invalid(f"must be a whole number, got {_describe(value)}")
        if not low <= value <= high:
            raise vol.Invalid(f"{_show(value)} is out of range {low}..{high}{why}")
        return value

    return check


def _seconds(maximum: float | None = None, minimum: float | None = None, why: str = "") -> Check:
    """Check a duration: a number, finite, > 0, optionally <= maximum and >= minimum."""
    bounds = f"at least {minimum:g}" if minimum is not None else "greater than 0"
    if maximum is not None:
        bounds += f" and at most {maximum:g}"

    @_shows(f"seconds, {bounds}")
    def check(value: object, key: str) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise vol.Invalid(f"must be a number of seconds, got {_describe(value)}")
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise vol.Invalid(f"must be a finite number of seconds, got {_show(value)}") from None
        if not math.isfinite(seconds):
            raise vol.Invalid(f"must be a finite number of seconds, got {seconds}")
        if minimum is not None and seconds < minimum:
            raise vol.Invalid(f"must be at least {minimum:g} seconds, got {seconds:g}{why}")
        if seconds <= 0 or (maximum is not None and seconds > maximum):
            lower = f"at least {minimum:g}" if minimum is not None else "greater than 0"
            bound = f" and at most {maximum:g}" if maximum is not None else ""
            raise vol.Invalid(f"must be {lower}{bound} seconds, got {seconds:g}")
        return seconds

    return check


@_shows("`true` or `false`")
def _boolean(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"must be true or false, got {_describe(value)}")
    return value


def _choice(*options: str) -> Check:
    allowed = " or ".join(
        [", ".join(repr(option) for option in options[:-1]), repr(options[-1])]
    ).removeprefix(" or ")
    shown = " or ".join(
        [", ".join(f"`{option}`" for option in options[:-1]), f"`{options[-1]}`"]
    ).removeprefix(" or ")

    @_shows(shown)
    def check(value: object, key: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise vol.Invalid(f"must be {allowed}, got {_describe(value)}")
        return value

    return check


def _word(value: object, key: str) -> object:
    # `mode: Output` and `initial: " ON "` mean what they obviously mean.
    return value.strip().lower() if isinstance(value, str) else value


def _on_off(value: object, key: str) -> object:
    # PyYAML reads unquoted on/off as booleans; for a state that is exactly what was meant.
    if isinstance(value, bool):
        return "on" if value else "off"
    return _word(value, key)
