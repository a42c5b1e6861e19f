"""How values and key paths are shown in the problem lines users read."""

from __future__ import annotations

from collections.abc import Sequence

Loc = tuple[int | str, ...]
"""Where a problem is, in the document: keys and list indexes, e.g. ("pins", 0, "mode")."""


def _show(value: object, limit: int = 60) -> str:
    """`repr` for messages, safe for any value YAML can produce, and short."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        # repr() refuses integers past Python's digit limit, and nobody wants them printed.
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: object) -> str:
    """Name a parsed YAML value the way a user wrote it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str | int | float):
        return _show(value)
    return f"a {type(value).__name__}"


def _format_loc(loc: Sequence[object]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, str):
            key = part if len(part) <= 60 else part[:57] + "..."
            path += f".{key}" if path else key
        else:
            path += f"[{_show(part)}]"
    return path or "(top level)"
