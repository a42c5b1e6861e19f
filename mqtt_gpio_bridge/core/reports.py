"""Reports on `<base>/gpio/status`: their JSON form, and thinning them out in a flood."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

REPORTS_PER_SECOND = 20
"""Reports published per second at most; the rest are counted, then mentioned."""


QUOTE_LIMIT = 80
"""Characters of a topic or payload quoted in a report or log line; the rest is cut."""


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """`text`, or its start and how long it was when it is longer than `limit` characters.

    Reports quote what a client sent; a 60,000-character topic must not become a 60 kB report.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def report_json(text: str, source: str, pin: int | None, when: datetime | None = None) -> str:
    """`{"source", "error", "pin", "time"}` with the time in ISO 8601 UTC, milliseconds."""
    return json.dumps({"source": source, "error": text, "pin": pin, "time": utc_stamp(when)})


def utc_stamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, e.g. `2026-12-02T04:30:00.123Z` (now by
    default): the time stamp of every message the bridge publishes."""
    moment = _utc_now() if moment is None else moment
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc_now() -> datetime:
    """The current time, timezone-aware in UTC: the time stamp of a report."""
    return datetime.now(UTC)


class ReportThrottle:
    """Lets at most `limit` reports through per second and counts the others."""

    def __init__(
        self,
        limit: int = REPORTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Start with an empty window.

        Args:
            limit: Reports let through per second at most.
            clock: Monotonic seconds, which the one-second windows are measured on.
            wall_clock: The time stamped on a report.
        """
        self._limit = limit
        self._clock = clock
        self._wall_clock = wall_clock
        self._window_start = float("-inf")
        self._in_window = 0
        self._suppressed = 0

    def admit(self, text: str, source: str, pin: int | None) -> str | None:
        """The report to publish, or None if it is one too many this second.

        The first report after a thinned-out burst says how many were left out.
        """
        moment = self._clock()
        if moment - self._window_start >= 1.0:
            self._window_start, self._in_window = moment, 0
        self._in_window += 1
        if self._in_window > self._limit:
            self._suppressed += 1
            return None
        if self._suppressed:
            text = f"{text} ({self._suppressed} earlier reports suppressed: too many per second)"
            self._suppressed = 0
        return report_json(text, source, pin, when=self._wall_clock())
