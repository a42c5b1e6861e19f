"""The simulated driver behaves like the board on every point of the MALOS reference.

These tests talk to it as any MALOS client would: raw ZeroMQ sockets and protobuf frames.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mqtt_gpio_bridge.malos.gpio.codec import PinMode, decode_levels, encode_pin_config, pin_level
from mqtt_gpio_bridge.sim.driver import (
    ERROR_BAD_MODE,
    ERROR_BAD_SPECIFIC,
    ERROR_UNPARSABLE,
    Board,
    SimulatedDriver,
    whole_milliseconds,
)
from mqtt_gpio_bridge.sim.proto import DriverConfig

from .helpers import RawClient, wait_until


@pytest.fixture
def client(malos_port: int) -> Iterator[RawClient]:
    raw = RawClient(malos_port)
    yield raw
    raw.close()


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
