"""The poll loop's timers: order, cancelling, and the poll timeout they give."""

from __future__ import annotations

from mqtt_gpio_bridge.core.timers import COMPACT_AFTER, Timers


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


def test_cancelled_timers_do_not_pile_up_in_the_queue() -> None:
    # A Node-RED loop replacing an hour-long pulse thousands of times a second: each
    # replacement cancels the previous timer, which must not stay queued for an hour.
    timers = Timers()
    timers.call_at(10.0, lambda: None)  # a timer that stays, as the keep-alive does
    pulse = timers.call_at(3600.0, lambda: None)
    for _ in range(100_000):
        pulse.cancel()
        pulse = timers.call_at(3600.0, lambda: None)
    assert len(timers) <= 2 * (COMPACT_AFTER + 2)
    ran: list[str] = []
    timers.call_at(5.0, lambda: ran.append("kept"))
    assert timers.wait_ms(0.0) == 5001
    timers.run_due(3600.0)
    assert ran == ["kept"]
    assert len(timers) == 0


def test_cancelling_a_timer_that_already_ran_or_twice_changes_nothing() -> None:
    timers = Timers()
    ran: list[int] = []
    early = timers.call_at(1.0, lambda: ran.append(1))
    timers.run_due(1.0)
    late = [timers.call_at(2.0, lambda n=n: ran.append(n)) for n in range(2, 2 + COMPACT_AFTER * 3)]
    for _ in range(COMPACT_AFTER * 3):
        early.cancel()  # ran already: must not count as a cancelled timer in the queue
    late[0].cancel()
    late[0].cancel()
    timers.run_due(2.0)
    assert ran == [1, *range(3, 2 + COMPACT_AFTER * 3)]
