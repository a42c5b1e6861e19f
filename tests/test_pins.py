"""The pin table: what is sent to the driver and what is published, without any I/O."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_gpio_bridge.config import parse_config
from mqtt_gpio_bridge.malos.gpio.codec import PinMode
from mqtt_gpio_bridge.malos.gpio.commands import Action
from mqtt_gpio_bridge.malos.gpio.pins import PinTable, PinWrite

CONFIRM = 2.5


def table(*pins: dict[str, object]) -> PinTable:
    return PinTable(parse_config({"pins": list(pins)}).pins, CONFIRM)


def published(changed: list[object]) -> list[tuple[int, str]]:
    return [(s.spec.pin, s.payload(s.level)) for s in changed]  # type: ignore[attr-defined]


def test_first_update_configures_every_pin_and_adopts_unknown_output_levels() -> None:
    pins = table(
        {"pin": 0, "mode": "output", "initial": "on"},
        {"pin": 1, "mode": "output"},
        {"pin": 2, "mode": "input"},
    )
    assert pins.writes(0b010, now=0) == [
        PinWrite(0, PinMode.OUTPUT, 1),
        PinWrite(1, PinMode.OUTPUT, 1),
        PinWrite(2, PinMode.INPUT),
    ]


def test_inverted_initial_on_is_a_low_level() -> None:
    pins = table({"pin": 4, "mode": "output", "initial": "on", "inverted": True})
    assert pins.writes(0, now=0) == [PinWrite(4, PinMode.OUTPUT, 0)]


def test_only_changes_are_published_after_the_first_snapshot() -> None:
    pins = table({"pin": 3, "mode": "input"}, {"pin": 5, "mode": "input"})
    assert published(pins.update(0, now=0)) == [(3, "OFF"), (5, "OFF")]
    assert pins.update(0, now=0.1) == []
    assert published(pins.update(0b1000, now=0.2)) == [(3, "ON")]
    assert pins.update(0b1000 | 1 << 9, now=0.3) == []  # unconfigured pin 9 changed


def test_a_sent_level_not_yet_applied_is_not_published_as_the_state() -> None:
    pins = table({"pin": 0, "mode": "output", "initial": "off"})
    pins.writes(0, now=0)
    assert published(pins.update(0, now=0.1)) == [(0, "OFF")]
    state = pins.get(0)
    assert state is not None
    assert pins.command(state, Action.ON, now=1.0) == PinWrite(0, PinMode.OUTPUT, 1)
    assert pins.update(0, now=1.05) == []  # sampled before the driver applied it
    assert published(pins.update(1, now=1.1)) == [(0, "ON")]


def test_an_unconfirmed_level_gives_way_to_the_board_after_the_timeout() -> None:
    pins = table({"pin": 0, "mode": "output", "initial": "on"})
    pins.writes(0, now=0)
    assert pins.update(0, now=1) == []
    assert published(pins.update(0, now=CONFIRM + 0.1)) == [(0, "OFF")]


def test_toggle_flips_the_reported_level_and_composes_while_pending() -> None:
    pins = table({"pin": 0, "mode": "output", "initial": "off"})
    pins.writes(0, now=0)
    pins.update(0, now=0.1)
    state = pins.get(0)
    assert state is not None
    assert pins.command(state, Action.TOGGLE, now=1) == PinWrite(0, PinMode.OUTPUT, 1)
    assert pins.command(state, Action.TOGGLE, now=1.01) == PinWrite(0, PinMode.OUTPUT, 0)
    pins.update(0, now=1.1)
    assert pins.command(state, Action.TOGGLE, now=2) == PinWrite(0, PinMode.OUTPUT, 1)


def test_nothing_does_nothing() -> None:
    pins = table({"pin": 0, "mode": "output", "initial": "off"})
    state = pins.get(0)
    assert state is not None
    assert pins.command(state, Action.NOTHING, now=0) is None


def test_forget_published_makes_the_next_update_a_full_snapshot() -> None:
    pins = table({"pin": 3, "mode": "input"}, {"pin": 5, "mode": "input"})
    pins.update(0b1000, now=0)
    pins.forget_published()
    assert published(pins.update(0b1000, now=1)) == [(3, "ON"), (5, "OFF")]


def states(pins: PinTable) -> list[tuple[int, int | None, int | None, float | None, int | None]]:
    return [(s.spec.pin, s.level, s.wanted, s.confirm_by, s.published) for s in pins]


_STEP = st.one_of(
    st.tuples(st.just("update"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("command"), st.sampled_from([Action.ON, Action.OFF, Action.TOGGLE])),
    st.tuples(st.just("writes"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("forget"), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(
    pin_numbers=st.lists(st.integers(0, 15), min_size=1, max_size=16, unique=True),
    outputs=st.integers(0, 0xFFFF),
    steps=st.lists(st.tuples(_STEP, st.floats(0, 2)), max_size=40),
)
def test_updates_after_a_settled_one_walk_only_the_flipped_bits_with_the_same_result(
    pin_numbers: list[int], outputs: int, steps: list[tuple[tuple[str, object], float]]
) -> None:
    """The shortcut taken when nothing awaits confirmation (look at the changed bits only)
    publishes what a walk over every pin publishes, and leaves every pin the same."""
    specs = [
        {"pin": pin, "mode": "output" if outputs >> pin & 1 else "input"} for pin in pin_numbers
    ]
    fast, full = table(*specs), table(*specs)
    output = next((pin for pin in pin_numbers if outputs >> pin & 1), None)
    now = 0.0
    for (kind, argument), elapsed in steps:
        now += elapsed
        if kind == "update":
            assert isinstance(argument, int)
            full._settled = False  # the walk over every pin, as before the shortcut
            got = sorted(published(fast.update(argument, now)))
            assert got == sorted(published(full.update(argument, now)))
        elif kind == "command" and output is not None:
            assert isinstance(argument, Action)
            for pins in (fast, full):
                state = pins.get(output)
                assert state is not None
                pins.command(state, argument, now)
        elif kind == "writes":
            assert isinstance(argument, int)
            assert fast.writes(argument, now) == full.writes(argument, now)
        elif kind == "forget":
            fast.forget_published()
            full.forget_published()
        assert states(fast) == states(full)
