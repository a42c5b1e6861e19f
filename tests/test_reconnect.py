"""The reconnect policy, with an explicit clock and explicit randomness: no test waits."""

from __future__ import annotations

import pytest

from mqtt_gpio_bridge.mqtt.reconnect import SESSION_SETTLED, SHORT_SESSIONS_HINT, ReconnectPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, pick: str = "high") -> ReconnectPolicy:
    """A policy whose random pick is the top (or bottom) of each range."""
    return ReconnectPolicy(
        0.5, 30.0, clock=clock, uniform=lambda low, high: high if pick == "high" else low
    )


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    reconnect = policy(Clock())
    delays = [reconnect.failed("refused").delay for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_each_wait_is_random_between_half_and_all_of_its_step() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return (low + high) / 2

    reconnect = ReconnectPolicy(1.0, 4.0, clock=Clock(), uniform=uniform)
    assert [reconnect.failed("x").delay for _ in range(4)] == [0.75, 1.5, 3.0, 3.0]
    assert seen == [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.0, 4.0)]


def test_a_problem_is_warned_about_once_until_another_comes() -> None:
    reconnect = policy(Clock())
    warns = [reconnect.failed(problem).warn for problem in ("refused", "refused", "tls", "tls")]
    assert warns == [True, False, True, False]


def test_a_session_that_lasted_starts_the_backoff_afresh() -> None:
    clock = Clock()
    reconnect = policy(clock)
    for _ in range(5):
        reconnect.failed("refused")
    reconnect.connected()
    clock.now += SESSION_SETTLED
    assert reconnect.session_ended() is False
    retry = reconnect.failed("refused")
    assert (retry.delay, retry.warn) == (0.5, True)  # the first wait, and said again


@pytest.mark.parametrize("lasted", [0.0, SESSION_SETTLED - 0.01])
def test_sessions_cut_short_keep_backing_off_and_the_third_names_the_cause(lasted: float) -> None:
    clock = Clock()
    reconnect = policy(clock)
    hints, delays = [], []
    for _ in range(SHORT_SESSIONS_HINT + 2):
        reconnect.connected()
        clock.now += lasted
        hints.append(reconnect.session_ended())
        delays.append(reconnect.failed("the connection ended").delay)
    assert hints == [False, False, True, False, False]  # said once, at the third
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_an_attempt_that_never_got_a_session_is_not_a_session() -> None:
    reconnect = policy(Clock())
    assert reconnect.session_ended() is False
    assert reconnect.failed("refused").delay == 0.5
