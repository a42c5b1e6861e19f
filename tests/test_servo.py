"""Servo pins end to end: the real Mosquitto, the bridge, and the simulated GPIO and servo
drivers on one board, whose direction register the two drivers fight over as on a board."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zmq

from mqtt_gpio_bridge.malos.servo import driver as servo_module
from mqtt_gpio_bridge.malos.servo.driver import ACKNOWLEDGED, FENCE, RESTORE_AFTER
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver
from mqtt_gpio_bridge.sim.proto import DriverConfig, ServoParams
from mqtt_gpio_bridge.sim.servo import ERROR_UNPARSABLE, SimulatedServoDriver, duty_from_angle

from .helpers import MqttProbe, Rig, bridge_config, free_port_block, wait_until

SERVO = 4
OUTPUT = 0
INPUT = 1
PINS: list[dict[str, Any]] = [
    {"pin": SERVO, "mode": "servo", "min_angle": 10, "max_angle": 170},
    {"pin": OUTPUT, "mode": "output", "initial": "on"},
    {"pin": INPUT, "mode": "input"},
]
DIRECTIONS = 1 << SERVO | 1 << OUTPUT
"""The direction register as it must be: the output and the servo pin are outputs."""


@dataclass
class ServoRig:
    rig: Rig
    servo: SimulatedServoDriver
    base: str = ""

    @property
    def board(self) -> Board:
        return self.rig.simulator.board

    def start(self, pins: list[dict[str, Any]] = PINS, **malos: Any) -> str:
        self.base = self.rig.start(pins, malos={"servo_port": self.servo.base_port, **malos})
        return self.base

    def command(self, payload: str | bytes, pin: int | str = SERVO) -> None:
        self.rig.probe.publish(f"{self.base}/gpio/{pin}/set", payload)

    def angles(self) -> list[tuple[int, int]]:
        """(pin, angle) of every servo config applied, fences left out."""
        return [(c.pin, c.angle) for c in self.servo.configs if c is not None]

    def wait_angle(self, angle: int, pin: int = SERVO) -> None:
        wait_until(lambda: (pin, angle) in self.angles(), what=f"pin {pin} at {angle}")
        self.rig.probe.wait_for(f"{self.base}/gpio/{pin}/state", str(angle))

    def wait_directions(self, expected: int = DIRECTIONS) -> None:
        wait_until(
            lambda: self.board.direction == expected,
            what=f"directions {expected:016b} (now {self.board.direction:016b})",
        )

    def refused(self) -> list[str]:
        return [error["error"] for error in self.rig.errors(self.base) if error.get("pin") == SERVO]


@pytest.fixture
def servo_driver(simulator: SimulatedDriver) -> Iterator[SimulatedServoDriver]:
    with SimulatedServoDriver("127.0.0.1", free_port_block(4), simulator.board) as driver:
        yield driver


@pytest.fixture
def servos(rig: Rig, servo_driver: SimulatedServoDriver) -> ServoRig:
    return ServoRig(rig, servo_driver)


def test_an_angle_moves_the_servo_and_is_the_pins_retained_state(servos: ServoRig) -> None:
    frames: list[bytes] = []
    servos.servo._on_wire = lambda kind, frame: frames.append(frame) if kind == "config" else None
    base = servos.start()
    servos.command("90")
    servos.wait_angle(90)
    expected = DriverConfig(servo=ServoParams(pin=SERVO, angle=90)).SerializeToString()
    assert frames[0] == expected  # the official classes' bytes
    assert servos.board.duty[SERVO] == duty_from_angle(90)
    assert servos.board.function == 1 << SERVO
    servos.wait_directions()
    late = MqttProbe(servos.rig.broker)
    try:
        late.subscribe(f"{base}/gpio/{SERVO}/state")
        assert late.wait_for(f"{base}/gpio/{SERVO}/state", "90").retain
    finally:
        late.close()
    # The GPIO driver's updates show the PWM pin low: that is no state of a servo pin.
    assert all(m.text == "90" for m in servos.rig.probe.on(f"{base}/gpio/{SERVO}/state"))


@pytest.mark.parametrize(
    ("payload", "angle"),
    [("45", 45), ("45.0", 45), (" 44.5 ", 45), ("44.4", 44), ('{"angle": 120}', 120), ("10", 10)],
)
def test_numbers_and_the_angle_object_are_rounded_to_whole_degrees(
    servos: ServoRig, payload: str, angle: int
) -> None:
    servos.start()
    servos.command(payload)
    servos.wait_angle(angle)


def test_a_pin_number_with_a_leading_zero_still_names_the_servo(servos: ServoRig) -> None:
    servos.start()
    servos.command("33", pin=f"0{SERVO}")
    servos.wait_angle(33)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("ON", "switch command"),
        ("off", "switch command"),
        ("TOGGLE", "switch command"),
        ("true", "switch command"),
        ('{"state": "ON", "duration_ms": 500}', "switch command"),
        ("171", "out of range 10..170"),
        ("9.9", "out of range 10..170"),
        ("-5", "out of range 10..170"),
        ("170.2", "out of range 10..170"),
        ("NaN", "out of range"),
        ("1e400", "out of range"),
        ("ninety", "unknown payload"),
        ('{"angle": "90"}', "unknown payload"),
        ('{"angle": 90, "speed": 2}', 'only "angle"'),
        ("[90]", "unknown payload"),
        (b"\xff\xfe", "not UTF-8"),
        ("9" * 300, "longer than"),
    ],
)
def test_everything_else_is_refused_on_the_status_topic_and_nothing_reaches_malos(
    servos: ServoRig, payload: str | bytes, reason: str
) -> None:
    servos.start()
    servos.command(payload)
    wait_until(servos.refused, what="the refusal")
    assert reason in servos.refused()[0], servos.refused()
    assert f"pin {SERVO}" in servos.refused()[0]
    servos.command("20")  # the pin still serves
    servos.wait_angle(20)
    assert servos.angles() == [(SERVO, 20)]


def test_an_empty_payload_does_nothing(servos: ServoRig) -> None:
    servos.start()
    servos.command("")
    servos.command("25")
    servos.wait_angle(25)
    assert servos.angles() == [(SERVO, 25)]
    assert servos.refused() == []


def test_the_initial_angle_is_sent_once_the_driver_is_up(servos: ServoRig) -> None:
    pins = [{**PINS[0], "initial": 150}, *PINS[1:]]
    servos.start(pins)
    servos.wait_angle(150)
    servos.wait_directions()


def test_without_initial_nothing_is_sent_until_a_command(servos: ServoRig) -> None:
    servos.start()
    servos.command("ninety")  # a round trip through the bridge, then look
    wait_until(servos.refused, what="the refusal")
    assert servos.servo.configs == []
    assert servos.rig.probe.last(f"{servos.base}/gpio/{SERVO}/state") is None


def test_the_directions_are_restored_even_when_the_servo_write_lands_late(
    servos: ServoRig, caplog: pytest.LogCaptureFixture
) -> None:
    """The servo driver's config thread is held past every timed restore and past the
    acknowledgement timeout: the GPIO writes sent meanwhile land first, the servo write then
    makes every GPIO output an input, and only the write sent on its acknowledgement puts them
    back. Without it the output stays an input."""
    caplog.set_level(logging.WARNING, logger="mqtt_gpio_bridge")
    servos.start()
    servos.wait_directions()
    servos.servo.hold()
    gpio_configs = len(servos.rig.simulator.configs)
    servos.command("60")
    wait_until(lambda: servos.servo.pending == 2, what="the angle and the fence received")
    wait_until(
        lambda: any("did not acknowledge" in r.getMessage() for r in caplog.records),
        what="the bridge giving up waiting",
    )
    assert len(servos.rig.simulator.configs) >= gpio_configs + len(RESTORE_AFTER)
    assert servos.board.direction == DIRECTIONS  # nothing landed from the servo driver yet
    servos.servo.release()
    servos.wait_directions()
    assert servos.angles() == [(SERVO, 60)]


@pytest.mark.parametrize("delay", [0.0, 0.003, 0.03])
def test_the_directions_are_right_after_every_command(servos: ServoRig, delay: float) -> None:
    servos.servo.apply_delay = delay
    servos.start()
    for angle in (10, 90, 170, 45):
        servos.command(str(angle))
        servos.wait_angle(angle)
        servos.wait_directions()
    assert servos.board.direction == DIRECTIONS


def test_a_burst_of_500_angles_sends_the_first_and_the_newest(
    servos: ServoRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The driver is held for the whole burst: no giving up on its answer meanwhile, however
    # slowly the 500 messages arrive on a loaded machine.
    monkeypatch.setattr(servo_module, "ACKNOWLEDGE_TIMEOUT", 60.0)
    base = servos.start()
    servos.servo.hold()
    servos.command("10")
    wait_until(lambda: servos.servo.pending == 2, what="the first angle and its fence")
    for index in range(500):
        servos.command(str(11 + index % 150))
    last = 11 + 499 % 150
    servos.command("ninety")  # handled after all 500: the bridge has them all once refused
    wait_until(servos.refused, what="the marker's refusal")
    servos.servo.release()
    servos.wait_angle(last)
    assert servos.angles() == [(SERVO, 10), (SERVO, last)]
    states = [m.text for m in servos.rig.probe.on(f"{base}/gpio/{SERVO}/state")]
    assert states[-1] == str(last)
    servos.wait_directions()


def test_the_answer_awaited_is_the_servo_drivers_parse_error() -> None:
    assert ACKNOWLEDGED.decode() == ERROR_UNPARSABLE  # both from MalosBase::ConfigThread


def test_the_servo_driver_is_never_pinged(servos: ServoRig) -> None:
    # A pinged servo driver publishes an error at every period: 0.1 s here.
    servos.servo.delay_between_updates = 0.1
    servos.start()
    servos.command("40")
    servos.wait_angle(40)
    time.sleep(0.5)  # the test is that nothing happens meanwhile
    assert servos.servo.errors_sent == 0
    assert servos.rig.errors(servos.base) == []  # the acknowledgements are not reported


def test_a_malos_restart_configures_gpio_sends_the_angles_and_restores_the_directions(
    servos: ServoRig,
) -> None:
    base = servos.start()
    servos.command("70")
    servos.wait_angle(70)
    servos.wait_directions()
    board, gpio_port, servo_port = (
        servos.board,
        servos.rig.simulator.base_port,
        servos.servo.base_port,
    )
    servos.servo.stop()
    servos.rig.simulator.stop()
    servos.rig.probe.wait_for(f"{base}/status", "offline")
    # A new MALOS process on the same board: the FPGA keeps its registers, the shadows are new.
    order: list[str] = []
    with (
        SimulatedDriver(
            "127.0.0.1", gpio_port, board, on_wire=lambda k, f: order.append(f"gpio {k}")
        ),
        SimulatedServoDriver(
            "127.0.0.1", servo_port, board, on_wire=lambda k, f: order.append(f"servo {k}")
        ) as servo,
    ):
        servos.servo = servo
        servos.rig.probe.wait_for(f"{base}/status", "online")
        wait_until(lambda: (SERVO, 70) in servos.angles(), what="the angle sent again")
        servos.wait_directions()
        # The GPIO pins are sent before the angle, but two drivers' threads receive them in
        # either order; what must hold is a GPIO config landing after the servo write.
        landed = order.index("servo applied")
        assert "gpio config" in order[landed:]  # the directions restored after it
        assert "gpio config" in order  # and the pins configured again


def test_commands_while_malos_is_away_are_kept_and_the_last_is_sent(
    own_driver_rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    servo_port = free_port_block(4)
    base = own_driver_rig.start_without_waiting(PINS, malos={"servo_port": servo_port})
    wait_until(lambda: own_driver_rig.probe.last(f"{base}/status"), what="a status")
    for angle in ("20", "30", "40"):
        own_driver_rig.probe.publish(f"{base}/gpio/{SERVO}/set", angle)
    wait_until(
        lambda: any(
            "goes to 20 when it is back" in e["error"] for e in own_driver_rig.errors(base)
        ),
        what="the report",
    )
    board = Board()
    with (
        SimulatedDriver("127.0.0.1", own_driver_rig.malos_port, board),
        SimulatedServoDriver("127.0.0.1", servo_port, board) as servo,
    ):
        wait_until(lambda: any(c and c.angle == 40 for c in servo.configs), what="angle 40")
        assert [c.angle for c in servo.configs if c is not None] == [40]
        wait_until(lambda: board.direction == DIRECTIONS, what="the directions")


def test_without_acknowledgements_the_directions_are_restored_on_a_timer(
    servos: ServoRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A servo port where nothing answers (the error port silent): the bridge restores the
    GPIO directions on its timer, says so once, and goes on sending angles."""
    caplog.set_level(logging.WARNING, logger="mqtt_gpio_bridge")
    context = zmq.Context()
    silent = context.socket(zmq.PULL)
    port = free_port_block(4)
    silent.bind(f"tcp://127.0.0.1:{port}")
    try:
        base = servos.rig.start(PINS, malos={"servo_port": port})
        gpio = servos.rig.simulator
        wait_until(lambda: len(gpio.configs) >= len(PINS), what="the pins configured")
        before = len(gpio.configs)
        servos.rig.probe.publish(f"{base}/gpio/{SERVO}/set", "50")
        assert silent.poll(5000)
        assert DriverConfig.FromString(silent.recv()).servo.angle == 50
        wait_until(
            lambda: len(gpio.configs) >= before + len(RESTORE_AFTER), what="the timed restores"
        )
        wait_until(
            lambda: any("did not acknowledge" in r.getMessage() for r in caplog.records),
            what="the warning",
        )
        servos.rig.probe.publish(f"{base}/gpio/{SERVO}/set", "60")
        frames = []
        while not frames or frames[-1] == FENCE:  # the first angle's fence, and asked again
            assert silent.poll(5000)
            frames.append(silent.recv())
        assert frames[0] == FENCE
        assert DriverConfig.FromString(frames[-1]).servo.angle == 60
    finally:
        context.destroy(0)


def test_a_pin_that_was_a_servo_is_named_once_at_start(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mqtt_gpio_bridge")
    config = bridge_config(rig.broker, rig.malos_port, [{"pin": 3, "mode": "output"}])
    base = config.mqtt.base_topic
    rig.probe.publish(f"{base}/gpio/3/state", "90", retain=True)
    rig.probe.publish(f"{base}/gpio/5/state", "45", retain=True)  # not configured: not named
    rig.probe.subscribe(f"{base}/#")
    rig.bridge = rig.start_bridge(config)
    rig.probe.wait_for(f"{base}/status", "online")
    wait_until(
        lambda: [r for r in caplog.records if "was a servo" in r.getMessage()], what="the warning"
    )
    named = [r.getMessage() for r in caplog.records if "was a servo" in r.getMessage()]
    assert len(named) == 1
    assert "pin 3" in named[0] and "power-cycled" in named[0]
    for pin in (3, 5):
        rig.probe.publish(f"{base}/gpio/{pin}/state", "", retain=True)
