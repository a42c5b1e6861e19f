"""Writing a report: markdown rows of facts, and the .md and .json result files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def fact_rows(facts: Mapping[str, object]) -> list[str]:
    """`| key | value |` rows (a `|` in a value written as `/`)."""
    return [f"| {key} | {str(value).replace('|', '/')} |" for key, value in facts.items()]


def write_results(stem: Path, text: str, data: Any, indent: int = 1) -> None:
    """`<stem>.md` (the text) and `<stem>.json` (the data), the folder made if need be."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(data, indent=indent, default=str) + "\n")
