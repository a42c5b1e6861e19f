"""Pulses on timers driven by an explicit clock: when each ends, and what replaces it."""

from __future__ import annotations

from mqtt_gpio_bridge.core.timers import COMPACT_AFTER, Timers
from mqtt_gpio_bridge.malos.gpio.commands import Action
from mqtt_gpio_bridge.malos.gpio.pulses import Pulses


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Clock, Timers, Pulses, list[tuple[float, int, Action]]]:
    clock = Clock()
    timers = Timers(clock)
    ended: list[tuple[float, int, Action]] = []
    pulses = Pulses(timers, lambda pin, back: ended.append((clock.now, pin, back)))
    return clock, timers, pulses, ended


def advance(clock: Clock, timers: Timers, seconds: float) -> None:
    clock.now += seconds
    timers.run_due(clock.now)


def test_a_pulse_ends_at_its_time_not_before() -> None:
    clock, timers, pulses, ended = make()
    pulses.start(3, 0.5, Action.OFF)
    advance(clock, timers, 0.499)
    assert ended == []
    advance(clock, timers, 0.001)
    assert ended == [(0.5, 3, Action.OFF)]
    assert len(pulses) == 0


def test_a_new_pulse_replaces_the_one_in_progress_on_its_pin_only() -> None:
    clock, timers, pulses, ended = make()
    pulses.start(3, 1.0, Action.OFF)
    pulses.start(4, 1.0, Action.ON)
    advance(clock, timers, 0.6)
    pulses.start(3, 1.0, Action.OFF)  # again: ends 1.0 s from now
    advance(clock, timers, 0.4)
    assert ended == [(1.0, 4, Action.ON)]
    advance(clock, timers, 0.6)
    assert ended == [(1.0, 4, Action.ON), (1.6, 3, Action.OFF)]


def test_a_cancelled_pulse_never_ends_and_says_what_it_would_have_sent() -> None:
    clock, timers, pulses, ended = make()
    pulses.start(2, 1.0, Action.ON)
    assert pulses.cancel(2) is Action.ON
    assert pulses.cancel(2) is None
    advance(clock, timers, 5.0)
    assert ended == []


def test_finishing_all_ends_every_pulse_now() -> None:
    clock, timers, pulses, ended = make()
    pulses.start(1, 10.0, Action.OFF)
    pulses.start(2, 20.0, Action.ON)
    advance(clock, timers, 1.0)
    pulses.finish_all()
    assert sorted(ended) == [(1.0, 1, Action.OFF), (1.0, 2, Action.ON)]
    advance(clock, timers, 30.0)
    assert len(ended) == 2  # their timers do not fire again


def test_an_hour_long_pulse_replaced_a_hundred_thousand_times_leaves_the_queue_small() -> None:
    clock, timers, pulses, ended = make()
    for _ in range(100_000):
        pulses.start(0, 3600.0, Action.OFF)
        clock.now += 0.0001
    assert len(timers) <= 2 * (COMPACT_AFTER + 1)
    advance(clock, timers, 3600.0)
    assert [pin for _, pin, _ in ended] == [0]  # only the last one ends
