"""The configuration reference, generated from the model: docs/configuration.md.

Every field of every section gives one row: its key, what it allows (said by its rule's
checks, `rules._shows`), its default and its description (`metadata=_doc(...)` in the model).
Regenerate the file after changing the model:

    python -m mqtt_gpio_bridge.config.reference > docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from typing import Any

from .model import BridgeConfig
from .schema import _rule_of

__all__ = ["REGENERATE", "markdown", "sections"]

REGENERATE = "python -m mqtt_gpio_bridge.config.reference > docs/configuration.md"

_INTRO = f"""\
# Configuration reference

<!-- Generated from mqtt_gpio_bridge/config/ (the model's fields and rules): do not edit.
     Regenerate with: {REGENERATE} -->

The bridge reads one YAML file (`--config`). [`config.example.yaml`](../config.example.yaml)
is a complete example to start from; check a file with

```sh
mqtt-gpio-bridge check-config --config config.yaml
```

which prints what the bridge will do, or every problem at once, each with its key path
(`mqtt.port: 99999 is out of range 1..65535`), and exits 2. Unknown keys are errors (with a
"did you mean"). Any text must be encodable as UTF-8: a lone surrogate (`"\\ud800"` in YAML)
is refused. Quote text that YAML would read as something else: a bare `ON`, `off`, `yes` or
`12` is a boolean or a number, and refused with a hint where text is expected.
"""


def _dataclass_in(hint: Any) -> type[Any] | None:
    """The dataclass a field holds (a section, `tls`, the pins), if any."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    for argument in typing.get_args(hint):
        if argument is not Ellipsis and (found := _dataclass_in(argument)) is not None:
            return found
    return None


def _default(item: dataclasses.Field[Any]) -> str:
    if "default" in item.metadata:
        return str(item.metadata["default"])
    if item.default is dataclasses.MISSING:
        return "required"
    value = item.default
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _rows(cls: type[Any], path: str) -> list[tuple[str, str, str, str]]:
    return [
        (
            f"`{path}{item.name}`",
            _rule_of(cls, item.name).shows,
            _default(item),
            str(item.metadata.get("doc", "")),
        )
        for item in dataclasses.fields(cls)
    ]


def sections() -> list[tuple[str, type[Any]]]:
    """Every section with its key path, walked from `BridgeConfig`: ("mqtt.", MqttConfig)..."""
    found: list[tuple[str, type[Any]]] = []

    def walk(cls: type[Any], path: str) -> None:
        found.append((path, cls))
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            inner = _dataclass_in(hints[item.name])
            if inner is not None:
                many = typing.get_origin(hints[item.name]) in (tuple, list)
                walk(inner, f"{path}{item.name}{'[]' if many else ''}.")

    walk(BridgeConfig, "")
    return found


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown() -> str:
    """docs/configuration.md: an introduction, then one table per section."""
    out = [_INTRO]
    for path, cls in sections():
        title = f"`{path.rstrip('.')}`" if path else "Sections"
        # cleandoc: Python 3.13 strips a docstring's indentation itself, older ones do not.
        out += [f"## {title}", "", inspect.cleandoc(cls.__doc__ or ""), ""]
        if not path:
            out += ["| key | description |", "|---|---|"]
            for item in dataclasses.fields(cls):
                out.append(f"| `{item.name}` | {_escape(str(item.metadata.get('doc', '')))} |")
            out.append("")
            continue
        out += ["| key | type and allowed values | default | description |", "|---|---|---|---|"]
        for row in _rows(cls, path):
            out.append("| " + " | ".join(_escape(cell) for cell in row) + " |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
