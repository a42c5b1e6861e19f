"""The simulated servo driver behaves like the board's, and fights the GPIO driver as on a board.

These tests talk to it as any MALOS client would: raw ZeroMQ sockets and frames built with the
official protobuf classes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mqtt_gpio_bridge.malos.gpio.codec import PinMode, encode_pin_config
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver, console_command
from mqtt_gpio_bridge.sim.proto import DriverConfig, ServoParams
from mqtt_gpio_bridge.sim.servo import (
    ERROR_NO_UPDATE,
    ERROR_UNPARSABLE,
    SERVO_PERIOD,
    SERVO_PRESCALER,
    ServoCommand,
    SimulatedServoDriver,
    angle_from_duty,
    duty_from_angle,
)

from .helpers import RawClient, free_port_block, wait_until


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
def servo(malos_port: int, board: Board) -> Iterator[SimulatedServoDriver]:
    with SimulatedServoDriver("127.0.0.1", malos_port, board) as driver:
        yield driver


@pytest.fixture
def gpio(board: Board) -> Iterator[tuple[SimulatedDriver, RawClient]]:
    """A GPIO driver on the same board, and a client of it."""
    port = free_port_block(4)
    with SimulatedDriver("127.0.0.1", port, board) as driver:
        raw = RawClient(port)
        yield driver, raw
        raw.close()


def servo_frame(pin: int, angle: int, **timing: float) -> bytes:
    frame: bytes = DriverConfig(
        servo=ServoParams(pin=pin, angle=angle), **timing
    ).SerializeToString()
    return frame


def output(pin: int) -> bytes:
    return encode_pin_config(pin, PinMode.OUTPUT, 1)


def send_gpio(gpio: tuple[SimulatedDriver, RawClient], *frames: bytes) -> None:
    driver, raw = gpio
    before = len(driver.configs)
    for frame in frames:
        raw.send(frame)
    wait_until(lambda: len(driver.configs) == before + len(frames), what="GPIO configs applied")


def send_servo(servo: SimulatedServoDriver, client: RawClient, *frames: bytes) -> None:
    before = len(servo.configs)
    for frame in frames:
        client.send(frame)
    wait_until(lambda: len(servo.configs) == before + len(frames), what="servo configs applied")


def sub_connected(client: RawClient) -> None:
    """Give the SUB sockets time to connect (ZeroMQ slow joiner): nothing must arrive."""
    assert client.error(timeout=0.2) is None


# -- registers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("angle", "duty"), [(0, 1800), (90, 5193), (180, 8586)])
def test_a_servo_config_sets_the_pwm_registers_of_its_pin_and_bank(
    servo: SimulatedServoDriver, client: RawClient, board: Board, angle: int, duty: int
) -> None:
    send_servo(servo, client, servo_frame(6, angle))
    assert board.duty == [0] * 6 + [duty] + [0] * 9
    assert board.period == [0, SERVO_PERIOD, 0, 0]
    assert SERVO_PERIOD == 62500
    assert board.prescaler == [0, SERVO_PRESCALER, 0, 0]
    assert board.function == 1 << 6
    assert board.direction == 1 << 6
    assert servo.configs == [ServoCommand(6, angle, has_servo=True)]
    assert round(angle_from_duty(duty)) == angle


def test_servo_pins_accumulate_in_the_drivers_shadows(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    send_servo(servo, client, servo_frame(1, 90), servo_frame(14, 180), servo_frame(3, 0))
    assert board.direction == board.function == 0b0100_0000_0000_1010
    assert board.prescaler == [SERVO_PRESCALER, 0, 0, SERVO_PRESCALER]
    assert board.period == [SERVO_PERIOD, 0, 0, SERVO_PERIOD]
    assert board.duty[1] == 5193
    assert board.duty[3] == 1800
    assert board.duty[14] == 8586


def test_duty_is_float32_arithmetic_truncated_to_16_bits() -> None:
    assert [duty_from_angle(angle) for angle in (0, 1, 90, 180)] == [1800, 1837, 5193, 8586]
    assert duty_from_angle(1000) == 39500  # no range check on the angle
    assert duty_from_angle(1700) == (1700 * 377 // 10 + 1800) & 0xFFFF  # wrapped: 354
    assert duty_from_angle(2**32 - 1) == 0xFFFF  # saturated to 32 bits first, then cut


def test_a_config_without_servo_moves_pin_0_to_angle_0_without_an_error(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    """ServoDriver::ProcessConfig reads the default ServoParams and always succeeds."""
    sub_connected(client)
    send_servo(servo, client, DriverConfig(delay_between_updates=0.5).SerializeToString())
    assert servo.configs == [ServoCommand(0, 0, has_servo=False)]
    assert board.duty[0] == 1800
    assert board.direction == board.function == 1
    assert servo.delay_between_updates == 0.5
    assert client.error(timeout=0.3) is None


def test_an_unparsable_frame_publishes_the_parse_error_and_writes_nothing(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    sub_connected(client)
    client.send(b"\xff\xff\xff")
    assert client.error() == ERROR_UNPARSABLE
    assert (
        ERROR_UNPARSABLE == "0, Invalid configuration for Servo driver. Could not parse protobuf."
    )
    wait_until(lambda: servo.configs == [None])
    assert board == Board()


@pytest.mark.parametrize("pin", [16, 31, 32, 100, 32768])
def test_a_pin_past_the_banks_rewrites_the_registers_unchanged_and_nothing_else(
    servo: SimulatedServoDriver, client: RawClient, board: Board, pin: int
) -> None:
    send_servo(servo, client, servo_frame(2, 90))
    board.direction = 0xFFFF  # what another driver left: the servo shadow rewrites it
    send_servo(servo, client, servo_frame(pin, 90))
    assert board.direction == board.function == 1 << 2
    assert board.duty == [0, 0, 5193] + [0] * 13
    assert board.period == [SERVO_PERIOD, 0, 0, 0]


def test_only_the_low_16_bits_of_the_pin_count(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    """The driver keeps the pin in an int16_t."""
    send_servo(servo, client, servo_frame(0x10000 + 5, 180))
    assert board.direction == 1 << 5
    assert board.duty[5] == 8586


def test_pin_65535_writes_its_duty_into_bank_0s_period(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    """-1 as an int16_t: bank 0, channel -1, duty address wrapped onto bank 0's period."""
    send_servo(servo, client, servo_frame(0xFFFF, 90))
    assert board.period == [5193, 0, 0, 0]
    assert board.prescaler == [SERVO_PRESCALER, 0, 0, 0]
    assert board.duty == [0] * 16
    assert board.direction == board.function == 0


def test_timings_apply_from_any_config_in_whole_milliseconds(
    servo: SimulatedServoDriver, client: RawClient
) -> None:
    send_servo(servo, client, servo_frame(0, 0, delay_between_updates=0.0015))
    assert servo.delay_between_updates == 0.001
    assert servo.timeout_after_last_ping == 5.0  # 0 is "not set"
    send_servo(servo, client, servo_frame(0, 0, timeout_after_last_ping=0.251))
    # float32(0.251) * 1000 is 250.99998 in float32, truncated to 250 ms
    assert servo.timeout_after_last_ping == 0.25
    assert servo.delay_between_updates == 0.001


# -- pings: no update, an error instead -------------------------------------------------------


def test_a_pinged_servo_driver_publishes_could_not_send_update_and_never_an_update(
    servo: SimulatedServoDriver, client: RawClient
) -> None:
    sub_connected(client)
    assert client.error(timeout=0.3) is None  # not pinged: silent
    send_servo(servo, client, servo_frame(0, 0, delay_between_updates=0.05))
    client.ping()
    assert client.error() == ERROR_NO_UPDATE
    assert ERROR_NO_UPDATE == "1, Could not send update for Servo driver."
    assert client.error() == ERROR_NO_UPDATE  # once per update period
    assert client.update(timeout=0.3) is None


def test_the_errors_stop_a_whole_ping_timeout_after_the_last_ping(
    servo: SimulatedServoDriver, client: RawClient
) -> None:
    frame = servo_frame(0, 0, delay_between_updates=0.02, timeout_after_last_ping=0.2)
    send_servo(servo, client, frame)
    sub_connected(client)
    client.ping()
    assert client.error() == ERROR_NO_UPDATE

    def quiet() -> bool:
        return client.error(timeout=0.1) is None

    wait_until(quiet, what="errors stopped")
    sent = servo.errors_sent
    assert sent >= 5  # 0.2 s of errors every 20 ms, give or take the scheduler
    assert client.error(timeout=0.3) is None
    assert servo.errors_sent == sent
    client.ping()
    assert client.error() == ERROR_NO_UPDATE


# -- the register fight with the GPIO driver -----------------------------------------------


def test_a_servo_write_after_gpio_turns_the_gpio_outputs_into_inputs(
    servo: SimulatedServoDriver,
    client: RawClient,
    board: Board,
    gpio: tuple[SimulatedDriver, RawClient],
) -> None:
    send_gpio(gpio, output(0), output(1))
    assert board.direction == 0b11
    assert board.levels() == 0b11
    send_servo(servo, client, servo_frame(4, 90))
    # The direction register now comes from the servo shadow: only pin 4 is an output.
    assert board.direction == 1 << 4
    assert board.levels() == 0  # 0, 1: inputs, nothing outside; 4: PWM reads low
    assert board.output == 0b11  # the GPIO values are still in the register, not driven
    # Any GPIO config rewrites the direction from the GPIO shadow: 0 and 1 are back, and the
    # servo pin, not an output in the GPIO shadow, is an input and stops driving the servo.
    send_gpio(gpio, output(0))
    assert board.direction == 0b11
    assert board.levels() == 0b11
    assert board.function == 1 << 4  # still PWM: nothing clears the function
    assert board.duty[4] == 5193


def test_a_gpio_driver_holding_the_servo_pin_as_output_keeps_it_driving(
    servo: SimulatedServoDriver,
    client: RawClient,
    board: Board,
    gpio: tuple[SimulatedDriver, RawClient],
) -> None:
    send_gpio(gpio, output(0), output(1), output(4))
    send_servo(servo, client, servo_frame(4, 180))
    assert board.direction == 1 << 4
    send_gpio(gpio, output(1))
    assert board.direction == 0b1_0011
    # A PWM pin no longer follows the GPIO output register.
    assert board.output >> 4 & 1 == 1
    assert board.levels() == 0b11


def test_the_order_knob_decides_which_driver_writes_last(
    servo: SimulatedServoDriver,
    client: RawClient,
    board: Board,
    gpio: tuple[SimulatedDriver, RawClient],
) -> None:
    send_gpio(gpio, output(0), output(1))
    # Servo config sent first, GPIO config second, but the servo write lands last.
    servo.hold()
    client.send(servo_frame(4, 0))
    wait_until(lambda: servo.pending == 1, what="servo config received")
    send_gpio(gpio, output(1))
    assert board.direction == 0b11
    assert board.function == 0  # not applied yet
    servo.release()
    assert board.direction == 1 << 4  # the GPIO outputs are inputs now
    assert servo.pending == 0
    # The other order: the servo write first, then the GPIO write restores pins 0 and 1.
    send_servo(servo, client, servo_frame(5, 90))
    assert board.direction == 0b11_0000
    send_gpio(gpio, output(0))
    assert board.direction == 0b11


def test_configs_held_are_applied_in_order_at_release(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    servo.hold()
    client.send(servo_frame(2, 0))
    client.send(servo_frame(2, 180))
    wait_until(lambda: servo.pending == 2, what="both received")
    assert servo.configs == []
    servo.release()
    assert [command.angle for command in servo.configs if command] == [0, 180]
    assert board.duty[2] == 8586


def test_apply_delay_postpones_each_write(malos_port: int, client: RawClient, board: Board) -> None:
    seen: list[tuple[str, float]] = []
    with SimulatedServoDriver(
        "127.0.0.1",
        malos_port,
        board,
        on_wire=lambda kind, _frame: seen.append((kind, time.monotonic())),
        apply_delay=0.15,
    ) as servo:
        client.send(servo_frame(7, 90))
        wait_until(lambda: len(servo.configs) == 1)
    assert [kind for kind, _ in seen] == ["config", "applied"]
    assert seen[1][1] - seen[0][1] >= 0.15
    assert board.duty[7] == 5193


def test_on_wire_sees_the_frame_as_received_and_once_applied(
    malos_port: int, client: RawClient, board: Board
) -> None:
    seen: list[tuple[str, bytes]] = []
    with SimulatedServoDriver(
        "127.0.0.1", malos_port, board, on_wire=lambda *f: seen.append(f)
    ) as servo:
        frame = servo_frame(3, 45)
        client.send(frame)
        client.send(b"\xff")
        wait_until(lambda: len(servo.configs) == 2)
    assert seen == [
        ("config", frame),
        ("applied", frame),
        ("config", b"\xff"),
        ("applied", b"\xff"),
    ]


# -- a MALOS restart --------------------------------------------------------------------------


def test_a_restarted_servo_driver_starts_from_zeroed_shadows(
    malos_port: int, client: RawClient, board: Board
) -> None:
    with SimulatedServoDriver("127.0.0.1", malos_port, board) as servo:
        send_servo(servo, client, servo_frame(1, 90), servo_frame(9, 90))
    assert board.direction == board.function == 0b10_0000_0010
    # MALOS restarts; the FPGA kept its registers ...
    with SimulatedServoDriver("127.0.0.1", malos_port, board) as restarted:
        assert board.direction == 0b10_0000_0010

        # ... until the first write, which rewrites each register from the zeroed shadows.
        # A config sent while ZeroMQ was still reconnecting can be lost: send until applied.
        def applied() -> bool:
            if restarted.configs:
                return True
            client.send(servo_frame(12, 0))
            return False

        wait_until(applied, what="a config reaching the restarted driver")
        assert board.direction == board.function == 1 << 12
        assert board.prescaler == [0, 0, 0, SERVO_PRESCALER]  # one register, a nibble a bank
        # Period and duty registers have no shadow: they keep what the old driver wrote.
        assert board.period == [SERVO_PERIOD, 0, SERVO_PERIOD, SERVO_PERIOD]
        assert board.duty[1] == board.duty[9] == 5193


def test_a_bound_port_is_an_oserror(malos_port: int, servo: SimulatedServoDriver) -> None:
    with pytest.raises(OSError, match="cannot bind"):
        SimulatedServoDriver("127.0.0.1", malos_port).start()


def test_the_gpio_update_reports_a_pwm_output_pin_low(
    board: Board, gpio: tuple[SimulatedDriver, RawClient]
) -> None:
    """Board.levels(), as the GPIO driver's update reads it: a PWM pin ignores `output`."""
    board.function = 1 << 3
    send_gpio(gpio, output(3), output(2))
    assert board.direction == 0b1100
    assert board.levels() == 0b100


def test_console_show_lists_what_a_servo_config_left_on_a_pwm_pin(
    servo: SimulatedServoDriver, client: RawClient, board: Board
) -> None:
    send_servo(servo, client, servo_frame(4, 90))
    rows = console_command(SimulatedDriver(board=board), "show").splitlines()
    assert rows[4] == "pin  4 output low, PWM: duty 5193 (angle 90), period 62500"
    assert rows[5] == "pin  5 input  low"
