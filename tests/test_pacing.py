"""The per-pin cap on state messages, with an explicit clock."""

from __future__ import annotations

import pytest

from mqtt_gpio_bridge.core.pacing import RateLimit


def test_at_most_n_events_in_any_one_second_window() -> None:
    limit = RateLimit(3)
    assert [limit.wait(0.0), limit.wait(0.1), limit.wait(0.2)] == [0.0, 0.0, 0.0]
    assert limit.wait(0.5) == 0.5  # the fourth waits until the first is a second old
    assert limit.wait(1.0) == 0.0
    assert limit.wait(1.05) == pytest.approx(0.05)  # now the second (0.1) is the oldest counted
    assert limit.wait(1.1) == 0.0


def test_a_refused_event_is_not_counted() -> None:
    limit = RateLimit(1)
    assert limit.wait(0.0) == 0.0
    for moment in (0.2, 0.4, 0.6, 0.8):
        assert limit.wait(moment) > 0
    assert limit.wait(1.0) == 0.0


def test_a_thousand_events_a_second_come_out_as_the_limit() -> None:
    limit = RateLimit(20)
    # Steps of 1/1024 s are exact in binary floating point.
    allowed = [n / 1024 for n in range(5 * 1024) if limit.wait(n / 1024) == 0.0]
    assert len(allowed) == 100  # 20 a second for 5 seconds
    for index in range(20, len(allowed)):
        assert allowed[index] - allowed[index - 20] >= 1.0
