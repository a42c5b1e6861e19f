"""The kinds of value several fields share, as `Annotated` types carrying their rule, and
`_doc`, the metadata that carries a field's description."""

from __future__ import annotations

from typing import Annotated

from .rules import _boolean, _not_empty, _note, _Rule, _seconds, _text
from .strings import _host, _payload, _readable_file, _topic_prefix, _utf8


def _doc(text: str, default: str | None = None) -> dict[str, str]:
    """A field's metadata: its description and, if the value is not shown well, its default."""
    return {"doc": text} if default is None else {"doc": text, "default": default}


NonEmptyText = Annotated[str, _Rule(_text, _not_empty, _utf8)]
OptionalText = Annotated[str | None, _Rule(_text, _utf8, nullable=True)]
OptionalName = Annotated[str | None, _Rule(_text, _not_empty, _utf8, nullable=True)]
# Names for the operating system (a file, a variable), which reports its own problems.
FileName = Annotated[str | None, _Rule(_text, _note("file name"), nullable=True)]
VariableName = Annotated[str | None, _Rule(_text, _note("variable name"), nullable=True)]
Host = Annotated[str, _Rule(_text, _not_empty, _host)]
TopicPrefix = Annotated[str, _Rule(_text, _topic_prefix)]
Payload = Annotated[str, _Rule(_text, _payload)]
Flag = Annotated[bool, _Rule(_boolean)]
Seconds = Annotated[float, _Rule(_seconds())]
ReadableFile = Annotated[str | None, _Rule(_text, _readable_file, nullable=True)]
