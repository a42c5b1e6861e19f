"""Pure tests of inputs as buttons: debounce and press classification at given update times,
and what links make of them."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from mqtt_gpio_bridge.config import LinkSpec, PinSpec
from mqtt_gpio_bridge.malos.gpio.commands import Action, Command
from mqtt_gpio_bridge.malos.gpio.inputs import Happening, InputPin, Inputs
from mqtt_gpio_bridge.malos.gpio.links import LinkTable

TICK = 0.02
"""Seconds between two driver updates in these tests."""


def button(**options: object) -> PinSpec:
    return PinSpec(pin=3, mode="input", **options)  # type: ignore[arg-type]


def levels_at_ticks(pattern: Iterable[tuple[int, float]], tail: float = 2.0) -> list[int]:
    """Update-by-update levels of a pin that holds each (level, seconds) in turn, starting at
    rest (0) for one update, then `tail` seconds at rest."""
    levels = [0]
    for level, seconds in [*pattern, (0, tail)]:
        levels += [level] * round(seconds / TICK)
    return levels


def play(spec: PinSpec, levels: list[int]) -> list[Happening]:
    """Feed one level per update (TICK apart) to a tracker; return what happened."""
    tracker = InputPin(spec)
    out: list[Happening] = []
    for index, level in enumerate(levels):
        tracker.take(level, index * TICK, out)
    return out


def kinds(happened: list[Happening]) -> list[str]:
    return [happening.kind for happening in happened]


def events(happened: list[Happening]) -> list[str]:
    return [kind for kind in kinds(happened) if kind not in ("press", "release")]


# --- levels and debounce ----------------------------------------------------------------------


def test_the_first_level_seen_is_no_change() -> None:
    # Pressed already when the bridge starts (or MALOS comes back): no press, and the release
    # that follows is a level change but no single.
    assert kinds(play(button(events=("single",)), [1, 1, 1, 0, 0])) == ["release"]


def test_without_debounce_every_change_counts_from_the_update_that_showed_it() -> None:
    happened = play(button(), [0, 1, 0, 0])
    assert happened == [Happening(3, "press", 1 * TICK), Happening(3, "release", 2 * TICK)]


def test_a_glitch_shorter_than_debounce_gives_nothing() -> None:
    # Seen high at two updates 20 ms apart: held 20 ms < 50 ms.
    assert play(button(debounce_ms=50), [0, 1, 1, 0, 0, 0]) == []


def test_a_level_that_holds_for_debounce_counts_from_when_it_was_first_seen() -> None:
    happened = play(button(debounce_ms=50), [0, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    # First seen at update 1, held 60 ms by update 4: a press at update 1's time.
    assert happened == [Happening(3, "press", 1 * TICK), Happening(3, "release", 6 * TICK)]


def test_inputs_shows_the_debounced_level_in_the_mask() -> None:
    inputs = Inputs([button(debounce_ms=50), PinSpec(pin=4, mode="input")])
    assert inputs.take(0, 0.0) == (0, [])
    # Pin 3 up for a moment, pin 4 (no debounce) passes through as it is.
    levels, happened = inputs.take(0b11000, TICK)
    assert levels == 0b10000
    assert happened == []
    assert inputs.pending
    levels, _ = inputs.take(0b11000, 4 * TICK)
    assert levels == 0b11000


def test_inverted_buttons_press_on_the_low_level() -> None:
    happened = play(button(inverted=True, events=("single",)), [1, 0, 0, 1, 1])
    assert kinds(happened) == ["press", "release", "single"]


# --- single, double, long -------------------------------------------------------------------


def test_single_without_double_is_published_at_the_release() -> None:
    happened = play(button(events=("single",)), levels_at_ticks([(1, 0.1)], tail=0.1))
    assert kinds(happened) == ["press", "release", "single"]
    assert happened[-1].at == happened[1].at


def test_single_with_double_waits_for_the_window() -> None:
    spec = button(events=("single", "double"))
    happened = play(spec, levels_at_ticks([(1, 0.1)]))
    assert events(happened) == ["single"]
    release = happened[1].at
    single = happened[2].at
    # The first update more than double_press_ms (400 ms) after the release.
    assert single > release + 0.4
    assert single <= release + 0.4 + TICK + 1e-9


def test_double() -> None:
    happened = play(
        button(events=("single", "double")), levels_at_ticks([(1, 0.1), (0, 0.2), (1, 0.1)])
    )
    assert events(happened) == ["double"]


def test_gap_equal_to_the_window_is_a_double_and_one_update_more_is_two_singles() -> None:
    spec = button(events=("single", "double"), double_press_ms=200)
    at_edge = play(spec, levels_at_ticks([(1, 0.1), (0, 0.2), (1, 0.1)]))
    assert events(at_edge) == ["double"]
    past = play(spec, levels_at_ticks([(1, 0.1), (0, 0.2 + TICK), (1, 0.1)]))
    assert events(past) == ["single", "single"]


def test_long_fires_when_the_hold_reaches_the_threshold_not_at_the_release() -> None:
    happened = play(button(events=("single", "long")), levels_at_ticks([(1, 2.0)]))
    assert kinds(happened) == ["press", "long", "release"]
    press, long_press = happened[0], happened[1]
    assert long_press.at == pytest.approx(press.at + 0.8)
    assert long_press.held == pytest.approx(0.8)


def test_a_short_press_is_no_long_one() -> None:
    happened = play(button(events=("single", "double", "long")), levels_at_ticks([(1, 0.78)]))
    assert events(happened) == ["single"]


def test_without_long_a_long_hold_is_a_single() -> None:
    assert events(play(button(events=("single",)), levels_at_ticks([(1, 2.0)]))) == ["single"]


def test_only_the_listed_events_are_published() -> None:
    spec = button(events=("double",))
    assert events(play(spec, levels_at_ticks([(1, 0.1)]))) == []
    assert events(play(spec, levels_at_ticks([(1, 0.1), (0, 0.1), (1, 0.1)]))) == ["double"]


def test_pending_says_whether_the_same_level_can_still_decide_something() -> None:
    tracker = InputPin(button(events=("single", "double")))
    out: list[Happening] = []
    tracker.take(0, 0.0, out)
    assert not tracker.pending
    tracker.take(1, TICK, out)
    tracker.take(0, 2 * TICK, out)
    assert tracker.pending  # the double window is open
    tracker.take(0, 1.0, out)
    assert not tracker.pending
    assert events(out) == ["single"]


def test_reset_forgets_a_press_in_progress() -> None:
    tracker = InputPin(button(events=("single", "long")))
    out: list[Happening] = []
    tracker.take(0, 0.0, out)
    tracker.take(1, TICK, out)
    tracker.reset()  # MALOS restarted
    tracker.take(1, 2.0, out)
    tracker.take(1, 3.0, out)
    assert kinds(out) == ["press"]


# --- links --------------------------------------------------------------------------------


def test_links_turn_happenings_into_commands() -> None:
    table = LinkTable(
        [
            LinkSpec(input=3, on="single", output=5, action="toggle"),
            LinkSpec(input=3, on="long", output=6, action="pulse", duration_ms=300),
            LinkSpec(input=3, output=7, action="follow"),
        ]
    )
    assert table.sources == {3}
    assert table.commands(Happening(3, "single", 0.0)) == [(5, Command(Action.TOGGLE))]
    assert table.commands(Happening(3, "long", 0.0, 0.8)) == [(6, Command(Action.ON, 300))]
    assert table.commands(Happening(3, "press", 0.0)) == [(7, Command(Action.ON))]
    assert table.commands(Happening(3, "release", 0.0)) == [(7, Command(Action.OFF))]
    assert table.commands(Happening(4, "press", 0.0)) == []
    assert table.follow_levels({3: True}) == [(7, Command(Action.ON))]
