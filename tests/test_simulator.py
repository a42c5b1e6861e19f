"""The simulated driver behaves like the board on every point of the MALOS reference.

These tests talk to it as any MALOS client would: raw ZeroMQ sockets and protobuf frames.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from mqtt_gpio_bridge.malos.gpio.codec import PinMode, decode_levels, encode_pin_config, pin_level
from mqtt_gpio_bridge.sim.driver import (
    CONSOLE_HELP,
    ERROR_BAD_MODE,
    ERROR_BAD_SPECIFIC,
    ERROR_UNPARSABLE,
    Board,
    SimulatedDriver,
    console_command,
    whole_milliseconds,
)
from mqtt_gpio_bridge.sim.proto import DriverConfig

from .helpers import WAIT, RawClient, wait_until


def fast(pin: int, mode: PinMode, value: int = 0) -> bytes:
    return encode_pin_config(pin, mode, value, update_interval=0.02, ping_timeout=2.0)


def test_no_update_before_the_first_ping(simulator: SimulatedDriver, client: RawClient) -> None:
    assert client.update(timeout=0.5) is None
    client.ping()
    assert client.update(timeout=1.0) is not None


def test_all_low_update_is_a_zero_byte_frame(simulator: SimulatedDriver, client: RawClient) -> None:
    client.ping()
    assert client.update() == b""


def test_updates_are_periodic_even_without_changes(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    client.send(fast(4, PinMode.INPUT))
    wait_until(lambda: simulator.delay_between_updates == pytest.approx(0.02))
    client.drain()
    frames = [client.update() for _ in range(5)]
    assert frames == [b""] * 5


def test_updates_stop_after_the_ping_timeout_and_resume_at_the_next_ping(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.send(encode_pin_config(1, PinMode.INPUT, update_interval=0.02, ping_timeout=0.3))
    client.ping()
    wait_until(lambda: simulator.timeout_after_last_ping == pytest.approx(0.3))
    assert client.update() is not None
    time.sleep(0.5)  # the quirk under test is a span of time with no ping
    client.drain()
    assert client.update(timeout=0.5) is None
    client.ping()
    assert client.update(timeout=0.5) is not None


def test_a_new_delay_applies_only_after_the_sleep_in_progress(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    assert client.update() is not None  # now sleeping the default 1.0 s
    started = time.monotonic()
    client.send(fast(2, PinMode.INPUT))
    assert client.update() is not None
    assert time.monotonic() - started > 0.7  # the old delay still ran out


def test_update_carries_every_pin_outputs_included(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    client.send(fast(9, PinMode.OUTPUT, 1))
    simulator.set_input(0, 1)
    wait_until(lambda: client.levels_after_next_update() == 513, what="pins 0 and 9 high")


def test_config_without_gpio_turns_pin_0_into_an_input(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    client.send(fast(0, PinMode.OUTPUT, 1))
    wait_until(lambda: pin_level(client.levels_after_next_update(), 0) == 1)
    client.send(DriverConfig(delay_between_updates=0.02).SerializeToString())
    wait_until(lambda: pin_level(client.levels_after_next_update(), 0) == 0, what="pin 0 input")
    assert simulator.board.direction & 1 == 0


def test_value_is_not_masked(simulator: SimulatedDriver, client: RawClient) -> None:
    client.ping()
    client.send(fast(1, PinMode.OUTPUT, 0))
    frame = DriverConfig()
    frame.gpio.pin = 0
    frame.gpio.mode = 1
    frame.gpio.value = 2  # lands on pin 1
    client.send(frame.SerializeToString())
    wait_until(lambda: client.levels_after_next_update() == 0b10, what="pin 1 driven by value 2")


def test_no_range_check_and_no_error_for_pins_16_to_31(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    frame = DriverConfig()
    frame.gpio.pin = 20
    frame.gpio.mode = 1
    frame.gpio.value = 1
    client.send(frame.SerializeToString())
    wait_until(lambda: len(simulator.configs) == 1)
    assert client.error(timeout=0.3) is None
    assert client.levels_after_next_update() == 0


def test_bad_mode_publishes_two_errors_and_changes_nothing(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.ping()
    client.update()
    frame = DriverConfig(delay_between_updates=0.5)
    frame.gpio.pin = 3
    frame.gpio.mode = 7
    client.send(frame.SerializeToString())
    assert client.error() == ERROR_BAD_MODE
    assert client.error() == ERROR_BAD_SPECIFIC
    assert simulator.board.direction == 0
    assert simulator.delay_between_updates == 1.0  # timing not applied either


def test_undecodable_config_publishes_the_parse_error(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    client.update(timeout=0.2)  # let the SUB connect (slow joiner)
    client.send(b"\xff\xff\xff")
    assert client.error() == ERROR_UNPARSABLE


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (0.0009, 0.0),  # 0 ms: the driver then sends updates in a busy loop
        (0.0015, 0.001),
        (0.02, 0.02),
        (0.251, 0.25),  # float32(0.251) * 1000 = 250.99998 in float32, truncated
    ],
)
def test_timings_are_kept_in_whole_milliseconds(
    simulator: SimulatedDriver, client: RawClient, sent: float, kept: float
) -> None:
    """As the driver's `int` milliseconds (matrix-malos-lib's MalosBase::ConfigThread)."""
    client.ping()
    frame = DriverConfig(delay_between_updates=sent, timeout_after_last_ping=4 + sent)
    frame.gpio.pin = 5
    client.send(frame.SerializeToString())
    wait_until(lambda: len(simulator.configs) == 1)
    assert simulator.delay_between_updates == kept
    assert simulator.timeout_after_last_ping == whole_milliseconds(4 + sent)


def test_input_mode_ignores_value(simulator: SimulatedDriver, client: RawClient) -> None:
    client.ping()
    frame = DriverConfig(delay_between_updates=0.02)
    frame.gpio.pin = 5
    frame.gpio.mode = 0
    frame.gpio.value = 1
    client.send(frame.SerializeToString())
    wait_until(lambda: simulator.delay_between_updates == pytest.approx(0.02))
    assert client.levels_after_next_update() == 0
    assert simulator.board.output == 0


def test_a_restarted_driver_rewrites_every_pin_from_zeroed_shadow_registers(
    malos_port: int, client: RawClient
) -> None:
    board = Board()
    with SimulatedDriver("127.0.0.1", malos_port, board):
        client.ping()
        client.send(fast(2, PinMode.OUTPUT, 1))
        client.send(fast(7, PinMode.OUTPUT, 1))
        wait_until(lambda: client.levels_after_next_update() == 0b1000_0100)
    # MALOS restarts; the FPGA kept its registers, so the pins still read high ...
    with SimulatedDriver("127.0.0.1", malos_port, board) as restarted:
        # Ping on each try, as a real client does: a ping sent while ZeroMQ was still
        # reconnecting to the new driver can be lost with the old connection.
        # A lost ping means no update at all: ping again rather than fail.
        wait_until(lambda: client.ping() or client.levels_of_next_update() == 0b1000_0100)
        # ... until the first write, which rewrites the register from the zeroed shadow.
        client.send(fast(2, PinMode.OUTPUT, 1))
        wait_until(lambda: len(restarted.configs) == 1)
        wait_until(
            lambda: client.ping() or client.levels_of_next_update() == 0b100,
            what="pin 7 reset",
        )
        assert board.direction == 0b100


def test_any_client_ping_keeps_updates_flowing_to_every_subscriber(
    simulator: SimulatedDriver, client: RawClient, malos_port: int
) -> None:
    other = RawClient(malos_port)
    try:
        other.ping()
        assert client.update() is not None
    finally:
        other.close()


def test_on_wire_sees_each_config_as_received_and_each_update_as_sent(
    malos_port: int, client: RawClient
) -> None:
    """The hook benchmarks time frames with: the config bytes before any decoding (even an
    undecodable one), and the update bytes about to go out."""
    seen: list[tuple[str, bytes]] = []
    board = Board()
    with SimulatedDriver("127.0.0.1", malos_port, board, on_wire=lambda *f: seen.append(f)):
        client.ping()
        config = fast(3, PinMode.OUTPUT, 1)
        client.send(config)
        client.send(b"\xff")
        wait_until(lambda: ("config", b"\xff") in seen, what="both configs seen")
        wait_until(lambda: client.levels_after_next_update() == 1 << 3, what="pin 3 high")
    configs = [frame for kind, frame in seen if kind == "config"]
    assert configs == [config, b"\xff"]
    updates = [decode_levels(frame) for kind, frame in seen if kind == "update"]
    assert updates and updates[-1] == 1 << 3


# -- press patterns: not MALOS, the test and console facility ---------------------------------

START = 1000.0
"""Where the pure timeline tests start their patterns: any instant works, `levels(now)` is
evaluated at the instants a test chooses."""
JUST = 1e-6
"""Seconds: well above the rounding of instants near START, well below any duration."""


def test_levels_follow_a_pattern_exactly_at_every_flip() -> None:
    board = Board()
    board.set_external(5, 1)  # another input, untouched by the pattern
    flips = board.play(3, [200, 150, 200], start=START)
    assert flips == pytest.approx([START, START + 0.2, START + 0.35, START + 0.55], abs=1e-9)
    expected = [1, 0, 1, 0]  # at each flip; the level before the first one is 0
    assert board.levels(START - JUST) == 1 << 5
    for flip, level in zip(flips, expected, strict=True):
        assert pin_level(board.levels(flip - JUST), 3) == 1 - level, f"just before {flip}"
        assert pin_level(board.levels(flip), 3) == level, f"at {flip}: a flip has happened"
        assert pin_level(board.levels(flip + JUST), 3) == level, f"just after {flip}"
        assert pin_level(board.levels(flip), 5) == 1
    # Over: the final level is now the pin's resting level, read without a timeline.
    assert board.external == 1 << 5
    assert board.levels(START + 3600) == 1 << 5


def test_an_even_number_of_durations_ends_on_the_opposite_level() -> None:
    board = Board()
    board.play(3, [100, 100], start=START)
    assert pin_level(board.levels(START + 0.15), 3) == 0
    assert pin_level(board.levels(START + 0.2), 3) == 1
    assert board.external == 1 << 3  # folded: it stays high


def test_a_press_on_a_pin_resting_high_goes_low() -> None:
    """An active-low button: the pattern flips whatever level the pin rests at."""
    board = Board()
    board.set_external(3, 1)
    board.play(3, [100], start=START)
    assert pin_level(board.levels(START - JUST), 3) == 1
    assert pin_level(board.levels(START), 3) == 0
    assert pin_level(board.levels(START + 0.1), 3) == 1


def test_a_pattern_on_an_output_pin_does_not_show_while_it_is_an_output() -> None:
    board = Board(direction=1 << 3, output=0)
    board.play(3, [100], start=START)
    assert board.levels(START + 0.05) == 0
    assert pin_level(board.external_levels(START + 0.05), 3) == 1


def test_a_future_start_waits_and_the_default_start_is_now() -> None:
    board = Board()
    before = time.monotonic()
    flips = board.play(3, [60_000])
    assert before <= flips[0] <= time.monotonic()
    assert pin_level(board.levels(), 3) == 1  # read at the real now, within the minute
    later = time.monotonic() + 60
    board.play(4, [100], start=later)
    assert pin_level(board.levels(), 4) == 0
    assert pin_level(board.levels(later), 4) == 1


def test_playing_again_replaces_the_pattern_from_its_start() -> None:
    board = Board()
    board.play(3, [1000], start=START)  # high from START to START + 1
    flips = board.play(3, [100], start=START + 0.5)
    assert flips == pytest.approx([START + 0.5, START + 0.6], abs=1e-9)
    assert pin_level(board.levels(START + 0.4), 3) == 1  # the old pattern up to the new start
    assert pin_level(board.levels(START + 0.5), 3) == 0  # the new one flips the level it finds
    assert pin_level(board.levels(START + 0.6), 3) == 1
    # The old flip at START + 1 was dropped: the pin stays high.
    assert pin_level(board.levels(START + 1.5), 3) == 1
    assert board.external == 1 << 3


def test_a_new_pattern_before_the_old_one_started_drops_it_whole() -> None:
    board = Board()
    board.play(3, [100], start=START + 10)
    board.play(3, [100, 100], start=START)
    assert pin_level(board.levels(START + 0.25), 3) == 1
    assert pin_level(board.levels(START + 10.05), 3) == 1  # no flip left at START + 10


def test_set_external_cancels_the_pattern() -> None:
    board = Board()
    board.play(3, [100], start=START)
    board.set_external(3, 0)
    assert board.levels(START + 0.05) == 0
    board.play(3, [100], start=START)
    board.set_external(3, 1)
    assert pin_level(board.levels(START + 0.05), 3) == 1
    assert pin_level(board.levels(START + 0.5), 3) == 1


@pytest.mark.parametrize(
    "durations", [[0], [-5], [100, 0], [math.nan], [math.inf], ["100"], [True], [None]]
)
def test_a_pattern_needs_durations_above_zero(durations: list[Any]) -> None:
    board = Board()
    with pytest.raises(ValueError, match="milliseconds > 0"):
        board.play(3, durations, start=START)
    assert board.levels(START) == 0  # nothing was played


@pytest.mark.parametrize("pin", [-1, 16])
def test_a_pattern_needs_a_pin_in_range(pin: int) -> None:
    with pytest.raises(ValueError, match=r"out of range 0\.\.15"):
        Board().play(pin, [100])


def test_no_durations_is_a_single_flip() -> None:
    board = Board()
    assert board.play(3, [], start=START) == [START]
    assert pin_level(board.levels(START), 3) == 1
    assert board.external == 1 << 3


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> tuple[SimulatedDriver, list[list[float]]]:
    """A driver that is never started (the console needs none), and the patterns it played."""
    driver = SimulatedDriver(board=Board())
    played: list[list[float]] = []
    play = driver.board.play

    def record(pin: int, durations_ms: list[float], start: float | None = None) -> list[float]:
        played.append([pin, *durations_ms])
        return play(pin, durations_ms, start)

    monkeypatch.setattr(driver.board, "play", record)
    return driver, played


@pytest.mark.parametrize(
    ("line", "reply", "pattern"),
    [
        ("3 press 200", "pin 3: press of 200 ms: high 200 ms, then low", [3, 200]),
        ("3 PRESS 12.5", "pin 3: press of 12.5 ms: high 12.5 ms, then low", [3, 12.5]),
        (
            "3 double",
            "pin 3: double press: high 120 ms, low 150 ms, high 120 ms, then low",
            [3, 120, 150, 120],
        ),
        (
            "4 double 80 100",
            "pin 4: double press: high 80 ms, low 100 ms, high 80 ms, then low",
            [4, 80, 100, 80],
        ),
        ("3 play 2 3 190", "pin 3: high 2 ms, low 3 ms, high 190 ms, then low", [3, 2, 3, 190]),
        ("3 play 100 100", "pin 3: high 100 ms, low 100 ms, then high", [3, 100, 100]),
    ],
)
def test_console_plays_patterns_and_says_what_the_pin_will_do(
    console: tuple[SimulatedDriver, list[list[float]]],
    line: str,
    reply: str,
    pattern: list[float],
) -> None:
    driver, played = console
    assert console_command(driver, line) == reply
    assert played == [pattern]


def test_console_patterns_start_from_the_level_the_pin_has(
    console: tuple[SimulatedDriver, list[list[float]]],
) -> None:
    driver, _ = console
    driver.set_input(3, 1)  # an active-low button at rest
    assert console_command(driver, "3 press 200") == "pin 3: press of 200 ms: low 200 ms, then high"


def test_console_says_a_pattern_on_an_output_is_ignored(
    console: tuple[SimulatedDriver, list[list[float]]],
) -> None:
    driver, _ = console
    driver.board.direction = 1 << 3
    assert console_command(driver, "3 press 200").endswith(
        "then low (an output: the board drives it, the outside level is ignored)"
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("3 press", "usage: <pin> press <ms>, e.g. 3 press 200"),
        ("3 press 1 2", "usage: <pin> press <ms>, e.g. 3 press 200"),
        ("3 double 80", "usage: <pin> double [<ms> <gap ms>], e.g. 3 double 120 150"),
        ("3 play", "usage: <pin> play <ms> <ms> ..., e.g. 3 play 200 150 200"),
        ("3 press 0", "pin 3: durations are milliseconds > 0, not '0'"),
        ("3 press -5", "pin 3: durations are milliseconds > 0, not '-5'"),
        ("3 press abc", "pin 3: durations are milliseconds > 0, not 'abc'"),
        ("3 play 100 nan", "pin 3: durations are milliseconds > 0, not 'nan'"),
        ("3 double 1e3 100", "pin 3: durations are milliseconds > 0, not '1e3'"),
        ("3 press " + "9" * 400, f"pin 3: durations are milliseconds > 0, not '{'9' * 400}'"),
        ("16 press 100", "pin 16 is out of range 0..15"),
        ("3 squeeze 100", CONSOLE_HELP),
    ],
)
def test_console_refuses_bad_patterns_with_a_reply(
    console: tuple[SimulatedDriver, list[list[float]]], line: str, reply: str
) -> None:
    driver, played = console
    assert console_command(driver, line) == reply
    assert played == []


def test_console_toggle_flips_the_level_a_pattern_left() -> None:
    driver = SimulatedDriver(board=Board())
    driver.play(3, [60_000])  # high for a minute
    assert console_command(driver, "3 toggle") == "pin 3 driven low"
    assert driver.board.levels() == 0  # and the pattern is cancelled


def test_console_help_lists_the_pattern_commands() -> None:
    for command in ("<pin> press <ms>", "<pin> double", "<pin> play <ms> <ms> ..."):
        assert command in CONSOLE_HELP


def test_a_press_shows_on_the_wire_for_its_duration(
    simulator: SimulatedDriver, client: RawClient
) -> None:
    """Updates every 10 ms, a 100 ms press: one run of high updates, none before the press.

    How many is left loose (at most one per 10 ms of the press, at least one): a busy machine
    can delay the update loop; the exact levels at exact instants are the pure tests' job.
    """
    client.ping()
    client.send(encode_pin_config(3, PinMode.INPUT, update_interval=0.01, ping_timeout=10.0))
    wait_until(lambda: simulator.delay_between_updates == pytest.approx(0.01))
    assert client.update() is not None  # subscribed (slow joiner)
    client.drain()
    flips = simulator.play(3, [100])
    received: list[tuple[float, int]] = []  # (local receive time, pin 3 level)
    deadline = time.monotonic() + WAIT
    # Until an update sampled after the release arrives: it is low, and received after it.
    while not (received and received[-1][0] > flips[1] and received[-1][1] == 0):
        assert time.monotonic() < deadline, f"no low update after the press: {received}"
        frame = client.update()
        assert frame is not None, "updates stopped"
        received.append((time.monotonic(), pin_level(decode_levels(frame), 3)))
    levels = "".join(str(level) for _, level in received)
    assert levels.strip("0") == "1" * levels.count("1"), f"one run of high updates: {levels}"
    assert 1 <= levels.count("1") <= 11, levels  # 100 ms at one update per >= 10 ms
    assert all(at >= flips[0] for at, level in received if level), "high before the press"
