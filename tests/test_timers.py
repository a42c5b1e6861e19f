"""The poll loop's timers: order, cancelling, and the poll timeout they give."""

from __future__ import annotations

from mqtt_gpio_bridge.timers import Timers


def test_due_timers_run_earliest_first_and_equal_times_in_scheduling_order() -> None:
    timers = Timers()
    ran: list[str] = []
    timers.call_at(2.0, lambda: ran.append("late"))
    timers.call_at(1.0, lambda: ran.append("first"))
    timers.call_at(1.0, lambda: ran.append("second"))
    timers.run_due(1.5)
    assert ran == ["first", "second"]
    timers.run_due(2.0)
    assert ran == ["first", "second", "late"]


def test_a_cancelled_timer_never_runs_and_no_longer_sets_the_timeout() -> None:
    timers = Timers()
    ran: list[str] = []
    soon = timers.call_at(1.0, lambda: ran.append("soon"))
    timers.call_at(5.0, lambda: ran.append("later"))
    soon.cancel()
    assert timers.wait_ms(0.0) == 5001
    timers.run_due(10.0)
    assert ran == ["later"]


def test_the_poll_timeout_rounds_up_never_below_zero_and_is_none_when_idle() -> None:
    timers = Timers()
    assert timers.wait_ms(0.0) is None
    timers.call_at(1.0004, lambda: None)
    assert timers.wait_ms(1.0) == 1  # never wakes before the timer is due
    assert timers.wait_ms(3.0) == 0  # overdue: poll without waiting


def test_a_timer_scheduled_by_a_running_timer_waits_for_the_next_round() -> None:
    timers = Timers()
    ran: list[str] = []

    def again() -> None:
        ran.append("tick")
        timers.call_at(0.0, again)  # due at once, as a periodic timer catching up would be

    timers.call_at(0.0, again)
    timers.run_due(1.0)
    assert ran == ["tick"]  # one round runs what was due when it started, no endless loop
    timers.run_due(1.0)
    assert ran == ["tick", "tick"]
