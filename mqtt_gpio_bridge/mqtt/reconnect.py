"""When to try the broker again, and what to say about it: the reconnect policy (pure).

The clock and the randomness are passed in, so the policy is tested without waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_SETTLED = 10.0
"""Seconds a broker session must last before reconnecting starts afresh (shortest wait, the
next problem warned about again); one that ends sooner counts as cut short."""
SHORT_SESSIONS_HINT = 3
"""Sessions cut short in a row before the log asks whether the client id is taken."""


@dataclass(frozen=True, slots=True)
class Retry:
    """The next attempt: after `delay` seconds; `warn`: the problem is new (else said before)."""

    delay: float
    warn: bool


class ReconnectPolicy:
    """Jittered exponential backoff over connection attempts and sessions.

    Each wait is random between half and all of `first * 2**n`, capped at `cap`: many bridges
    reconnecting after one broker restart do not come back in step. The backoff starts afresh
    only after a session that lasted `SESSION_SETTLED`; sessions the broker keeps cutting short
    (another client with the same id) keep backing off, and the policy says when to name that
    cause.
    """

    def __init__(
        self,
        first: float = 0.5,
        cap: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """A policy with nothing tried yet."""
        self._first, self._cap = first, cap
        self._clock, self._uniform = clock, uniform
        self._ceiling = first
        self._last_problem = ""
        self._session_start: float | None = None
        self._short_sessions = 0

    def failed(self, problem: str) -> Retry:
        """An attempt failed, or a session ended, because of `problem` (the same problem, the
        same text: not the library's detail, which can vary by attempt): when to try again."""
        delay = self._uniform(self._ceiling / 2, self._ceiling)
        self._ceiling = min(self._cap, self._ceiling * 2)
        warn = problem != self._last_problem
        self._last_problem = problem
        return Retry(delay, warn)

    def connected(self) -> None:
        """The broker accepted a session."""
        self._session_start = self._clock()

    def session_ended(self) -> bool:
        """Count the session that just ended (call before `failed`); True when this is the
        `SHORT_SESSIONS_HINT`-th in a row to be cut short, the moment to name the likely cause."""
        if self._session_start is None:
            return False
        lasted = self._clock() - self._session_start
        self._session_start = None
        if lasted >= SESSION_SETTLED:
            self._ceiling, self._last_problem, self._short_sessions = self._first, "", 0
            return False
        self._short_sessions += 1
        return self._short_sessions == SHORT_SESSIONS_HINT


__all__ = ["SESSION_SETTLED", "SHORT_SESSIONS_HINT", "ReconnectPolicy", "Retry"]
