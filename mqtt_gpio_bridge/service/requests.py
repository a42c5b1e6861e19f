"""Requests to the bridge (`<base>/bridge/request/<name>`, an optional JSON object as body) and
the JSON of their answers (pure).

A request is read whole before anything is done: a body that is not UTF-8 JSON, not an object,
too long, with an unknown key or a value of the wrong kind becomes a `BadRequest` that says
what is wrong, answered on `<base>/bridge/response/<name>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.reports import shorten

REQUESTS = ("health_check", "info", "log_level")
"""The names the bridge answers."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_BODY = 1024
"""Bytes of a request's body at most; every request's body is a few dozen."""
TRANSACTION = "transaction"
"""The key of a body that the answer echoes, to pair a request with its answer."""
_KEYS: dict[str, tuple[str, ...]] = {
    "health_check": (),
    "info": (),
    "log_level": ("value",),
}
"""The keys each request's body may have besides `transaction`."""


@dataclass(frozen=True, slots=True)
class Request:
    """A request the bridge carries out."""

    name: str
    transaction: Any = None
    """Echoed in the answer (any JSON value); None when the body had none."""
    has_transaction: bool = False
    level: str | None = None
    """`log_level`: the level asked for, upper case."""


@dataclass(frozen=True, slots=True)
class BadRequest:
    """A request refused, and why."""

    reason: str
    transaction: Any = None
    has_transaction: bool = False


def parse_request(name: str, body: bytes) -> Request | BadRequest:
    """Read the request `name` with its body (empty, or a JSON object)."""
    if len(body) > MAX_BODY:
        return BadRequest(f"the body is {len(body)} bytes; at most {MAX_BODY} are read")
    fields = _body(body)
    if isinstance(fields, BadRequest):
        return fields
    has_transaction = TRANSACTION in fields
    transaction = fields.pop(TRANSACTION, None)

    def refuse(reason: str) -> BadRequest:
        return BadRequest(reason, transaction, has_transaction)

    if name not in _KEYS:
        known = ", ".join(REQUESTS)
        return refuse(f"unknown request {shorten(name)!r}; the requests are {known}")
    unknown = [key for key in fields if key not in _KEYS[name]]
    if unknown:
        keys = ", ".join((*_KEYS[name], TRANSACTION))
        return refuse(f"unknown key {shorten(unknown[0])!r}; {name} takes {keys}")
    level = None
    if name == "log_level":
        value = fields.get("value")
        if not isinstance(value, str) or value.strip().upper() not in LOG_LEVELS:
            shown = "nothing" if value is None else shorten(json.dumps(value))
            return refuse(
                f"value must be one of {', '.join(LOG_LEVELS)} (any case), e.g. "
                f'{{"value": "DEBUG"}}; got {shown}'
            )
        level = value.strip().upper()
    return Request(name, transaction, has_transaction, level)


def _body(body: bytes) -> dict[str, Any] | BadRequest:
    """The body's keys and values: an empty body (Node-RED's `null`) has none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return BadRequest("the body is not UTF-8 text; send a JSON object or nothing")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return BadRequest(f"the body is not JSON: {shorten(text)!r}; send a JSON object or nothing")
    if value is None:
        return {}
    if not isinstance(value, dict):
        return BadRequest(
            f"the body must be a JSON object or nothing, got {shorten(json.dumps(value))}"
        )
    return value


def response_json(outcome: Request | BadRequest, data: Any = None) -> str:
    """The answer to a request: `{"status": "ok", "data": ...}`, or `{"status": "error",
    "error": "..."}` for a `BadRequest`, with the request's `transaction` when it had one."""
    answer: dict[str, Any]
    if isinstance(outcome, BadRequest):
        answer = {"status": "error", "error": outcome.reason}
    else:
        answer = {"status": "ok", "data": data}
    if outcome.has_transaction:
        answer[TRANSACTION] = outcome.transaction
    return json.dumps(answer, separators=(",", ":"))


__all__ = [
    "LOG_LEVELS",
    "MAX_BODY",
    "REQUESTS",
    "BadRequest",
    "Request",
    "parse_request",
    "response_json",
]
