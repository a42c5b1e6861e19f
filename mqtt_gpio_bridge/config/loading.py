"""Reading the YAML file: `load_config` and `parse_config`, the loader that refuses a key
written twice, and the problem lines for files that are not valid YAML."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import voluptuous as vol
import yaml

from ..errors import ConfigError
from .messages import _describe
from .model import BridgeConfig
from .schema import _problem_line, _validator


def parse_config(data: object) -> BridgeConfig:
    """Validate an already-parsed configuration document.

    Args:
        data: the document, normally what `yaml.safe_load` returned.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: listing every problem found, one line each.
    """
    if not isinstance(data, dict):
        raise ConfigError([_top_level_problem("(top level)", data)])
    try:
        return _validator(BridgeConfig)(data)
    except vol.Invalid as exc:
        errors = exc.errors if isinstance(exc, vol.MultipleInvalid) else [exc]
        raise ConfigError([_problem_line(error) for error in errors]) from None


def _top_level_problem(where: str, data: object) -> str:
    sections = ", ".join(item.name for item in dataclasses.fields(BridgeConfig))
    return (
        f"{where}: the top level must be a mapping of sections ({sections}), got {_describe(data)}"
    )


def load_config(path: str | os.PathLike[str]) -> BridgeConfig:
    """Read, parse and validate a YAML configuration file.

    Args:
        path: the file to read.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML or fails validation;
            every problem is listed.
    """
    name = os.fspath(path)
    try:
        # utf-8-sig: editors on Windows like to start files with a byte order mark.
        with open(name, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{name}: cannot read: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                f"at offset {exc.start})"
            ]
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(name, exc, text)]) from None
    except RecursionError:
        raise ConfigError([f"{name}: invalid YAML: nested too deeply"]) from None
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        # PyYAML's constructors let Python's own errors out for values such as a date that
        # does not exist (2024-02-30), a 5,000-digit number or `!!int twelve`.
        raise ConfigError([f"{name}: invalid YAML value: {str(exc)[:200]}"]) from None
    # An empty file (or one with only comments) is an empty mapping, so the user learns
    # what is missing rather than that "None" is not a mapping.
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([_top_level_problem(name, data)])
    return parse_config(data)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error.

    Plain PyYAML keeps the last one silently: a second `pins:` would drop the first list.
    """


def _unique_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode
) -> Iterator[dict[object, object]]:
    # Compared as written (tag and text), before anything is built: merge keys (`<<`), aliases
    # and complex keys are left to PyYAML as before.
    seen: dict[tuple[str, str], yaml.Mark] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "first written",
                    seen[key],
                    f"key {key_node.value!r} appears twice",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
    return (yield from loader.construct_yaml_map(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


def _yaml_problem(name: str, exc: yaml.YAMLError, text: str) -> str:
    """One line: where PyYAML noticed the mistake, and where what it was reading started
    (an unclosed quote or bracket is found far below where it was opened)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{name}: invalid YAML: {exc}"
    mark, context = exc.problem_mark, exc.context_mark
    detail = exc.problem or "syntax error"
    if (
        exc.context
        and context is not None
        and (context.line, context.column)
        != (
            mark.line,
            mark.column,
        )
    ):
        started = "that started at" if exc.context.startswith("while") else "at"
        detail += f" ({exc.context} {started} line {context.line + 1}, column {context.column + 1})"
    elif exc.context:
        detail += f" ({exc.context})"
    if "'\\t'" in detail:  # PyYAML shows a tab as the escape \t
        detail += "; YAML takes no tabs there: indent with spaces"
    elif exc.problem == "mapping values are not allowed here":
        detail += _missing_colon(text, mark.line)
    return f"{name}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {detail}"


def _missing_colon(text: str, line: int) -> str:
    """A hint for a key written without its ':' on the line above the one PyYAML names:
    PyYAML reads `host localhost` as text that goes on, and stumbles on the next key."""
    lines = text.splitlines()
    for number in range(min(line, len(lines)) - 1, -1, -1):
        above = lines[number].strip()
        if not above or above.startswith("#"):
            continue
        if ":" not in above.removeprefix("- "):
            return f" (is the ':' after the key on line {number + 1} missing?)"
        return ""
    return ""
