"""A simulated MALOS servo driver speaking the real ZeroMQ protocol, on a shared `Board`.

It reproduces the board's servo driver (matrix-creator-malos `ServoDriver` on matrix-malos-lib
`MalosBase` and the HAL's `GPIOControl`) as described in the MALOS reference, quirks included:

* four sockets like every driver: config PULL (base, 20045), keep-alive PULL (base+1), errors
  PUB (base+2) and updates PUB (base+3), the PUBs with SNDHWM 20;
* no update ever. It does not need pings, but a pinged driver is active like any other, and its
  update step then fails: it publishes `1, Could not send update for Servo driver.` once per
  `delay_between_updates` until a whole `timeout_after_last_ping` passes without a ping;
* every parsable config is accepted, with or without a `servo` field (without one it reads as
  pin 0, angle 0); the only error a config can earn is the parse error;
* per config, in this order: `SetMode(pin, OUTPUT)`, `SetFunction(pin, PWM)`,
  `SetPrescaler(pin / 4, 5)`, `Bank(pin / 4).SetPeriod(62500)`,
  `Bank(pin / 4).SetDuty(pin % 4, duty)` with duty = float32 37.7 * angle + 1800, truncated;
* the driver keeps its **own** HAL shadow registers (direction, function, prescaler), zero at
  start, and every write rewrites the whole register from its shadow: a servo config turns
  every output the servo driver did not set into an input, whatever the GPIO driver set;
* `delay_between_updates` and `timeout_after_last_ping` apply from any accepted config, as
  whole milliseconds, each only when > 0.

Not from MALOS, knobs for tests and benchmarks: `hold()` / `release()` and `apply_delay` decide
when a received config lands on the board relative to the GPIO driver's writes (on the board
that order is a race between two threads), and `on_wire` reports when a config was received and
when its writes landed.
"""

from __future__ import annotations

import collections
import math
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq
from google.protobuf.message import DecodeError

from ..malos.gpio.codec import ALL_PINS_MASK, PIN_COUNT
from .driver import BIND_TIMEOUT, INACTIVE_CHECK, Board, MalosProcess, whole_milliseconds
from .proto import DriverConfig

DEFAULT_SERVO_PORT = 20045
ERROR_UNPARSABLE = "0, Invalid configuration for Servo driver. Could not parse protobuf."
ERROR_NO_UPDATE = "1, Could not send update for Servo driver."

SERVO_PRESCALER = 5
"""The prescaler nibble the driver writes: the clock divided by 2**5."""
SERVO_PERIOD = 62500
"""The period counter the driver writes: 0.02 s * 200 MHz / (32 * 2), all in float32."""
SERVO_OFFSET = 1800


def _float32(value: float) -> float:
    """`value` rounded to the nearest float32, as C++ stores a `float`."""
    (rounded,) = struct.unpack("f", struct.pack("f", value))
    return float(rounded)


_RATIO = _float32(37.7)
"""37.7 as the float32 the driver multiplies by."""

PENDING_CHECK = 0.001
"""Seconds between checks for a held or delayed config that has become due."""

# The HAL's register addresses, relative to the GPIO block (kGPIOBaseAddress): direction,
# output, function, prescaler, then six registers per bank (timer setup, period, duty 0..3).
_FUNCTION_ADDRESS = 2
_PRESCALER_ADDRESS = 3
_BANKS_ADDRESS = 4
_BANK_SIZE = 6
_BANK_COUNT = 4


def duty_from_angle(angle: int) -> int:
    """The duty counter the driver writes for `angle` (a uint32), as the board computes it.

    `37.7f * angle + 1800` in float32 (the angle is first rounded to a float32), converted to
    the driver's `int16_t` and handed to the HAL as a `uint16_t`. The conversion is taken as the
    Raspberry Pi's ARM does it: truncated toward zero, saturated to 32 bits, then the low 16
    bits kept. Only angles above about 1690 wrap; C++ leaves those undefined.
    """
    total = _float32(_float32(_RATIO * _float32(float(angle))) + SERVO_OFFSET)
    whole = min(math.trunc(total), 2**31 - 1)
    return whole & 0xFFFF


def angle_from_duty(duty: int) -> float:
    """The angle a duty counter stands for: the inverse of the driver's formula.

    Returns a float (angles sent are whole numbers; the duty was truncated): round it to show
    the angle a client sent, e.g. `round(angle_from_duty(5193))` is 90. A duty below the offset
    gives a negative angle (nothing the servo driver writes).
    """
    return (duty - SERVO_OFFSET) / _RATIO


@dataclass(frozen=True, slots=True)
class ServoCommand:
    """What one accepted config asked for, as the driver read it (uint32 values)."""

    pin: int
    angle: int
    has_servo: bool
    """False when the config had no `servo` field: the driver then reads pin 0, angle 0."""


class SimulatedServoDriver(MalosProcess):
    """The MALOS servo driver on four real ZeroMQ ports, run in a background thread.

    Use it as a context manager, or call `start()` and `stop()`. Creating it binds nothing.
    Share the `Board` with a `SimulatedDriver` to have both drivers write the same registers,
    each from its own shadow copy, as on the board.
    """

    name = "Servo"

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int = DEFAULT_SERVO_PORT,
        board: Board | None = None,
        on_wire: Callable[[str, bytes], None] | None = None,
        apply_delay: float = 0.0,
    ) -> None:
        """Prepare a driver.

        Args:
            host: interface to bind (MALOS itself binds every interface, "*").
            base_port: the config port; base+1..base+3 are used too.
            board: the FPGA state, usually shared with a `SimulatedDriver`.
            on_wire: called from the driver thread with ("config", frame) as soon as a config
                frame is received, before it is decoded, and with ("applied", frame) just after
                its register writes landed on the board (or its error was published).
            apply_delay: seconds between receiving a config and applying it (test knob, not
                MALOS): to make the servo writes land after the GPIO driver's. Configs are
                applied in the order received.
        """
        super().__init__(host, base_port)
        self.board = board if board is not None else Board()
        self.apply_delay = apply_delay
        self._on_wire = on_wire
        # The servo driver's own GPIOControl: its shadow registers start at zero in every new
        # driver process, whatever the FPGA holds.
        self._shadow_direction = 0
        self._shadow_function = 0
        self._shadow_prescaler = 0
        self.errors_sent = 0
        """How many "Could not send update" errors were published."""
        self._configs: list[ServoCommand | None] = []
        self._configs_lock = threading.Lock()
        # Received frames waiting to be applied: (due instant, frame), in the order received.
        self._pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self._pending_changed = threading.Condition()
        self._held = False

    def stop(self) -> None:
        """Stop serving and close the sockets (a MALOS process ending). Configs received but
        not applied yet (held or delayed) are dropped, as a process ending would drop them."""
        self._stop.set()
        with self._pending_changed:
            self._pending_changed.notify_all()  # a release() waiting gives up at once
        super().stop()

    # -- the order knob (not MALOS) ----------------------------------------------------------

    def hold(self) -> None:
        """Keep received configs unapplied until `release()`, to order writes in a test."""
        with self._pending_changed:
            self._held = True

    def release(self, timeout: float = BIND_TIMEOUT) -> None:
        """Apply every held config, in order; return once they have all landed on the board.

        Raises:
            TimeoutError: they were not applied within `timeout` seconds (driver stopped?).
        """
        with self._pending_changed:
            self._held = False
            if not self._pending_changed.wait_for(lambda: not self._pending, timeout):
                raise TimeoutError(f"held servo configs not applied within {timeout:g} s")

    @property
    def pending(self) -> int:
        """How many received configs wait to be applied (held or delayed)."""
        with self._pending_changed:
            return len(self._pending)

    # -- what tests and users look at -----------------------------------------------------

    @property
    def configs(self) -> list[ServoCommand | None]:
        """Every config applied so far, decoded (None for an unparsable one)."""
        with self._configs_lock:
            return list(self._configs)

    # -- the driver ---------------------------------------------------------------------------

    def _received(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        if self._on_wire is not None:
            self._on_wire("config", frame)
        with self._pending_changed:
            self._pending.append((time.monotonic() + self.apply_delay, frame))

    def _wake_within(self) -> float:
        # A held config must land soon after release(), a delayed one when due.
        return PENDING_CHECK if self.pending else INACTIVE_CHECK

    def _after_poll(self, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]) -> None:
        self._apply_due(errors_out)

    def _tick(
        self, now: float, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]
    ) -> None:
        # SendUpdate fails for this driver: an active one publishes the failure (the update PUB
        # stays bound and silent).
        errors_out.send_string(ERROR_NO_UPDATE)
        self.errors_sent += 1

    def _apply_due(self, errors_out: zmq.Socket[bytes]) -> None:
        """Apply, in order, the received configs that are due and not held."""
        while True:
            with self._pending_changed:
                if self._held or not self._pending:
                    return
                due, frame = self._pending[0]
                if due > time.monotonic():
                    return
            self._handle_config(frame, errors_out)
            with self._pending_changed:
                # Popped only once applied, so that release() returns after the writes landed.
                self._pending.popleft()
                self._pending_changed.notify_all()

    def _handle_config(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        config = DriverConfig()
        try:
            config.ParseFromString(frame)
        except DecodeError:
            errors_out.send_string(ERROR_UNPARSABLE)
            command = None
        else:
            command = ServoCommand(config.servo.pin, config.servo.angle, config.HasField("servo"))
            # ProcessConfig always succeeds: no "Invalid specific configuration" for servo.
            self._write(command.pin, command.angle)
            if config.delay_between_updates > 0:
                self.delay_between_updates = whole_milliseconds(config.delay_between_updates)
            if config.timeout_after_last_ping > 0:
                self.timeout_after_last_ping = whole_milliseconds(config.timeout_after_last_ping)
        with self._configs_lock:
            self._configs.append(command)
        if self._on_wire is not None:
            self._on_wire("applied", frame)

    def _write(self, pin: int, angle: int) -> None:
        """The five HAL calls of ProcessConfig, with the driver's integer types.

        The driver keeps the pin in an `int16_t` and hands it to the HAL as a `uint16_t`: only
        its low 16 bits count (pin 65540 is pin 4). A pin of 16 or more shifts its bit off the
        16-bit shadows, which are then rewritten unchanged; `Bank(pin / 4)` then indexes past
        the HAL's four banks (undefined behaviour in MALOS, a crash at worst): the simulator
        writes no period and no duty for it. Pins 65533..65535 are -3..-1 as an `int16_t`:
        bank 0, channel -3..-1, and the duty lands at the 16-bit address wrapped below bank 0's
        duty registers: the prescaler register, bank 0's timer setup (not simulated), bank 0's
        period.
        """
        pin16 = pin & 0xFFFF
        signed = pin16 - 0x10000 if pin16 & 0x8000 else pin16
        bank = int(signed / 4)  # C++ division truncates toward zero
        channel = signed - 4 * bank
        if pin16 < PIN_COUNT:
            self._shadow_direction |= 1 << pin16
        self._set_register(0, self._shadow_direction)
        if pin16 < PIN_COUNT:
            self._shadow_function |= 1 << pin16
        self._set_register(_FUNCTION_ADDRESS, self._shadow_function)
        bank16 = bank & 0xFFFF
        if bank16 < _BANK_COUNT:
            mask = 0xF << (4 * bank16)
            self._shadow_prescaler = (self._shadow_prescaler & ~mask) | (
                SERVO_PRESCALER << (4 * bank16)
            )
        self._set_register(_PRESCALER_ADDRESS, self._shadow_prescaler)
        if bank16 >= _BANK_COUNT:
            return
        bank_address = _BANKS_ADDRESS + _BANK_SIZE * bank16
        self._set_register(bank_address + 1, SERVO_PERIOD)
        # The channel goes to the HAL as a uint16_t and the address is 16 bits wide.
        self._set_register((bank_address + 2 + (channel & 0xFFFF)) & 0xFFFF, duty_from_angle(angle))

    def _set_register(self, address: int, value: int) -> None:
        """One bus write of a 16-bit `value` at `address` (relative to the GPIO block)."""
        value &= ALL_PINS_MASK
        board = self.board
        with board.lock:
            if address == 0:
                board.direction = value
            elif address == _FUNCTION_ADDRESS:
                board.function = value
            elif address == _PRESCALER_ADDRESS:
                board.prescaler = [value >> (4 * bank) & 0xF for bank in range(_BANK_COUNT)]
            elif _BANKS_ADDRESS <= address < _BANKS_ADDRESS + _BANK_SIZE * _BANK_COUNT:
                bank, register = divmod(address - _BANKS_ADDRESS, _BANK_SIZE)
                if register == 1:
                    board.period[bank] = value
                elif register >= 2:
                    board.duty[4 * bank + register - 2] = value
                # register 0, the bank's timer setup, is not simulated


__all__ = [
    "DEFAULT_SERVO_PORT",
    "ERROR_NO_UPDATE",
    "ERROR_UNPARSABLE",
    "SERVO_PERIOD",
    "SERVO_PRESCALER",
    "ServoCommand",
    "SimulatedServoDriver",
    "angle_from_duty",
    "duty_from_angle",
]
