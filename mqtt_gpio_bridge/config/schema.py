"""The schema voluptuous runs, derived from the dataclasses of `model.py`, and the problem
lines a user can act on.

Every field becomes a key of a voluptuous schema (required when it has no default) whose
value is the field's rule; any other key is refused with a did-you-mean hint. The cross-field
rules run when the object is built (`__post_init__`), and their problems join the others.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, get_type_hints

import voluptuous as vol

from .messages import Loc, _describe, _format_loc, _show
from .rules import Check, _Broken, _Rule

_T = TypeVar("_T")

Outside = Callable[[dict[str, Any]], list[tuple[Loc, str]]]
"""A check of what lies outside the document (a file, a variable), run on a section's
validated keys before it is built: only validation runs it, never construction."""

_VALIDATORS: dict[tuple[type[Any], tuple[Outside, ...]], Callable[[object], Any]] = {}


class _UnknownKey(vol.Invalid):
    """A key no field has; one that is not a name is reported at its mapping's path."""


def _rule_of(cls: type[object], name: str) -> _Rule:
    """The `_Rule` in the `Annotated[...]` type of field `name` of dataclass `cls`."""
    hint = get_type_hints(cls, include_extras=True)[name]
    (rule,) = [extra for extra in getattr(hint, "__metadata__", ()) if isinstance(extra, _Rule)]
    return rule


def _validator(cls: type[_T], outside: Sequence[Outside] = ()) -> Callable[[object], _T]:
    """The validator of one dataclass: a mapping in, an instance out, or `vol.Invalid`."""
    cache_key = (cls, tuple(outside))
    if cache_key in _VALIDATORS:
        return _VALIDATORS[cache_key]
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [item.name for item in fields]
    schema: dict[object, object] = {}
    for item in fields:
        rule = _rule_of(cls, item.name)
        has_default = (
            item.default is not dataclasses.MISSING
            or item.default_factory is not dataclasses.MISSING
        )
        key = vol.Optional(item.name) if has_default else vol.Required(item.name, msg=rule.missing)
        schema[key] = _bind(rule, item.name)
    schema[_unknown_key(names)] = object
    mapping = vol.Schema(schema)

    def validate(value: object) -> _T:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise vol.Invalid(f"must be a mapping of keys to values, got {_describe(value)}")
        checked = mapping(value)
        problems = [problem for check in outside for problem in check(checked)]
        try:
            built = cls(**checked)
        except _Broken as exc:
            problems += exc.problems
        if problems:
            raise vol.MultipleInvalid(
                [vol.Invalid(message, path=list(loc)) for loc, message in problems]
            )
        return built

    _VALIDATORS[cache_key] = validate
    return validate


def _validate_each(
    cls: type[_T], items: Sequence[object], prepare: Callable[[object], object] = lambda item: item
) -> tuple[list[_T], list[vol.Invalid]]:
    """Validate every item of a list section (`pins`, `links`) as a `cls`, `prepare`d first:
    the valid ones, and every problem of the others with its index in front of its path."""
    validate = _validator(cls)
    valid: list[_T] = []
    problems: list[vol.Invalid] = []
    for index, item in enumerate(items):
        try:
            valid.append(validate(prepare(item)))
        except vol.Invalid as exc:
            exc.prepend([index])
            problems.extend(exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc])
    return valid, problems


def _bind(rule: _Rule, key: str) -> Callable[[object], object]:
    return lambda value: rule(value, key)


def _unknown_key(names: list[str]) -> Callable[[object], object]:
    def refuse(key: object) -> object:
        if not isinstance(key, str):
            # A key that is not a name (e.g. a number) cannot be a field of any section.
            raise _UnknownKey(f"unknown key {_show(key)}")
        matches = difflib.get_close_matches(key.lower(), names, n=1)
        raise _UnknownKey(
            f"unknown key (did you mean {matches[0]!r}?)" if matches else "unknown key"
        )

    return refuse


def _section(cls: type[object], *outside: Outside) -> Check:
    """The rule of a field that holds a whole section (a dataclass of its own)."""

    def check(value: object, key: str) -> object:
        # `mqtt:` with nothing below it parses as None; treat it like an absent section.
        return _validator(cls, outside)({} if value is None else value)

    return check


def _problem_line(error: vol.Invalid) -> str:
    # A missing key is reported at its schema key, `Required(name)`: show the name.
    loc = [part.schema if isinstance(part, vol.Marker) else part for part in error.path]
    if isinstance(error, _UnknownKey) and loc and not isinstance(loc[-1], str):
        loc = loc[:-1]  # "(top level): unknown key 7", not "[7]: ..."
    return f"{_format_loc(loc)}: {error.msg}"
