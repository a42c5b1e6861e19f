"""A simulated MALOS GPIO driver speaking the real ZeroMQ protocol.

It reproduces the board's driver as described in the MALOS reference, quirks included, so that
the bridge under test cannot tell it from a board:

* four sockets: config PULL (base), keep-alive PULL (base+1), errors PUB (base+2) and updates
  PUB (base+3), the PUBs with SNDHWM 20 and no topic prefix;
* no update before the first ping; updates stop a whole `timeout_after_last_ping` after the
  last ping and resume at the next one; while inactive it checks every 100 ms;
* updates are periodic (`delay_between_updates`, default 1.0 s) whether anything changed or not,
  and a new delay only applies after the sleep in progress;
* both timings are kept as whole milliseconds (the float32 seconds times 1000, truncated to an
  int): a delay below 0.001 s becomes 0 ms, and the driver then sends updates in a busy loop;
* an update carries the live level of all 16 pins; all low is a zero-byte frame;
* a config without `gpio` is read as pin 0 INPUT; OUTPUT writes the value, then the direction;
  no pin range check; `value` is not masked (pin 0 value 2 drives pin 1); a bad mode publishes
  two error strings and changes nothing; timing values apply only after an accepted GPIO part
  and only when > 0;
* the HAL shadow registers start at zero in every driver process while the FPGA keeps its
  registers, so the first write after a restart rewrites every pin from the zeroed shadow.

Not from MALOS, a facility for tests and the console:

* press patterns (`Board.play`): an input pin's outside level flips at exact instants (press,
  hold, gap, contact bounce), evaluated at the instant each update samples the levels.

The FPGA registers and the levels applied to input pins from outside live in `Board`, which can
outlive a driver: stop a `SimulatedDriver`, start another on the same `Board`, and you have
"MALOS restarted on a running board".
"""

from __future__ import annotations

import bisect
import collections
import errno
import itertools
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

import zmq

from ..errors import CodecError
from ..malos.gpio.codec import ALL_PINS_MASK, PIN_COUNT
from .codec import PinConfig, decode_pin_config, encode_levels

if TYPE_CHECKING:  # everloop.py and sensors.py import this module
    from .everloop import SimulatedEverloopDriver
    from .sensors import SimulatedSensorDriver

logger = logging.getLogger(__name__)

DEFAULT_UPDATE_DELAY = 1.0
DEFAULT_PING_TIMEOUT = 5.0
INACTIVE_CHECK = 0.1
PUB_SNDHWM = 20
BIND_TIMEOUT = 10.0
"""Seconds `start()` waits for the serving thread to have bound its four sockets."""

ERROR_UNPARSABLE = "0, Invalid configuration for Gpio driver. Could not parse protobuf."
ERROR_BAD_MODE = "invalid gpio mode. check the proto GpioParams (file driver.proto)"
ERROR_BAD_SPECIFIC = "0, Invalid specific configuration for Gpio driver."


@dataclass
class _Timeline:
    """A press pattern on one input pin: its level just before the first flip, and the
    ascending monotonic times of the flips."""

    before: int
    flips: list[float]

    def level(self, now: float) -> tuple[int, bool]:
        """The level at `now` (a flip at `now` has happened) and whether the pattern is over."""
        done = bisect.bisect_right(self.flips, now)
        return self.before ^ (done & 1), done == len(self.flips)


@dataclass
class Board:
    """The FPGA side: what survives a MALOS restart.

    Attributes:
        direction: bit n set = pin n is an output.
        output: output register, bit n = level driven on pin n when it is an output.
        external: levels applied from outside to the pins (what an input reads). For a pin
            playing a press pattern (`play`), the level it rests at until the pattern is over
            and has been read; `external_levels` gives the levels with the patterns applied.
        function: bit n set = pin n is switched to the PWM function (the servo driver sets it;
            nothing in MALOS ever clears it, the GPIO driver has no function field).
        prescaler: the clock prescaler of each bank of four pins (0-3, 4-7, 8-11, 12-15). On
            the FPGA it is one 16-bit register, a nibble per bank, rewritten whole.
        period: the PWM period counter of each bank.
        duty: the PWM duty counter of each pin.
    """

    direction: int = 0
    output: int = 0
    external: int = 0
    function: int = 0
    prescaler: list[int] = field(default_factory=lambda: [0] * 4)
    period: list[int] = field(default_factory=lambda: [0] * 4)
    duty: list[int] = field(default_factory=lambda: [0] * PIN_COUNT)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _timelines: dict[int, _Timeline] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def levels(self, now: float | None = None) -> int:
        """Return the live level of all 16 pins, outputs included.

        Args:
            now: the `time.monotonic()` instant at which press patterns are evaluated
                (default: now). The update loop passes the instant it samples at, so that an
                update shows exactly the levels of that instant.
        """
        with self.lock:
            # No pattern playing (nearly always): not even a clock read on this hot path.
            external = self._external_at(now) if self._timelines else self.external
            # A PWM output pin is driven by its PWM generator, not by the output register: a
            # servo pulse is high for under 2 ms of every 20 ms, so a read of the pin almost
            # always sees it low, and it reads low here. A PWM pin that is an input reads the
            # outside level as any input does.
            driven = self.output & self.direction & ~self.function
            return (driven | (external & ~self.direction)) & ALL_PINS_MASK

    def external_levels(self, now: float | None = None) -> int:
        """Return the levels applied from outside at `now` (default: now), patterns included."""
        with self.lock:
            return self._external_at(now) if self._timelines else self.external

    def set_external(self, pin: int, level: int) -> None:
        """Drive input `pin` from outside (a button, a sensor) to `level` 0 or 1.

        This cancels any press pattern playing on `pin`.
        """
        _check_pin(pin)
        with self.lock:
            self._timelines.pop(pin, None)
            self.external = (self.external & ~(1 << pin)) | ((level & 1) << pin)

    def play(
        self, pin: int, durations_ms: Sequence[float], start: float | None = None
    ) -> list[float]:
        """Play a press pattern on input `pin`: flip its outside level at set times.

        The level flips at `start`, then again after each duration in turn: at `start`,
        `start + d0`, `start + d0 + d1`, ..., `start + d0 + ... + dn`, so `len(durations_ms) + 1`
        flips: with an odd number of durations the pin ends at the level it had before `start`,
        with an even number (none included) at the opposite one. From low,
        `play(3, [200, 150, 200])` makes pin 3 high for 200 ms, low for 150 ms, high for 200 ms,
        then low for good; `play(3, [100])` is one 100 ms press. At the instant of a flip the pin
        already has its new level: `levels(start)` shows the first flip.

        The level is worked out from these times whenever it is read (`levels(now)`), so it is
        exact at the instant an update samples it: no thread, no sleep, no drift. The first read
        at or after the last flip makes the final level the pin's `external` level and forgets
        the pattern, so reads at an earlier `now` after that one see the final level.

        Playing again on the same pin replaces the pattern from the new `start` on: flips of the
        old pattern before it still happen, later ones are dropped, and the new pattern flips
        the level the pin has just before the new `start`. `set_external` on the pin cancels
        the pattern. On an output pin the pattern changes nothing until the pin becomes an
        input, as for `set_external`.

        Args:
            pin: the input pin, 0..15.
            durations_ms: the times between successive flips, in milliseconds, each > 0. Empty:
                a single flip at `start`.
            start: the `time.monotonic()` instant of the first flip; default now. It may be in
                the future (the pattern waits) or any value at all in tests that read
                `levels(now)` at chosen instants.

        Returns:
            The `time.monotonic()` instants of the flips, the first being `start`.

        Raises:
            ValueError: `pin` is out of range, or a duration is not a finite number > 0.
        """
        _check_pin(pin)
        for duration in durations_ms:
            # bool is an int, but `True` ms is a caller's mistake, not a 1 ms press.
            if (
                isinstance(duration, bool)
                or not isinstance(duration, int | float)
                or not math.isfinite(duration)
                or duration <= 0
            ):
                raise ValueError(f"durations are milliseconds > 0, not {duration!r}")
        if start is None:
            start = time.monotonic()
        # Each flip from `start` plus the running total, rather than flip after flip, so that
        # rounding errors do not add up over a long pattern.
        flips = [start] + [start + total / 1000 for total in itertools.accumulate(durations_ms)]
        with self.lock:
            old = self._timelines.get(pin)
            if old is None:
                timeline = _Timeline(self.external >> pin & 1, flips)
            else:
                kept = old.flips[: bisect.bisect_left(old.flips, start)]
                timeline = _Timeline(old.before, kept + flips)
            self._timelines[pin] = timeline
        return flips

    def _external_at(self, now: float | None) -> int:
        """The outside levels at `now`, patterns applied; folds finished ones. Lock held."""
        if now is None:
            now = time.monotonic()
        external = self.external
        for pin, timeline in list(self._timelines.items()):
            level, over = timeline.level(now)
            external = (external & ~(1 << pin)) | (level << pin)
            if over:
                # The pin rests at its final level from now on: no pattern to evaluate. Reading
                # at an earlier instant afterwards gives that final level (no history is kept).
                self.external = (self.external & ~(1 << pin)) | (level << pin)
                del self._timelines[pin]
        return external


def _check_pin(pin: int) -> None:
    if not 0 <= pin < PIN_COUNT:
        raise ValueError(f"pin {pin} is out of range 0..{PIN_COUNT - 1}")


REBIND_WITHIN = 2.0
"""Seconds a port still held by a driver that just stopped is tried again: ZeroMQ closes a
socket in its I/O thread, after `close()` returns, so a driver restarted on the same ports at
once (a MALOS restart in a test) can find them busy for a moment."""


def _bind(socket: zmq.Socket[bytes], endpoint: str) -> None:
    deadline = time.monotonic() + REBIND_WITHIN
    while True:
        try:
            socket.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise OSError(exc.errno, f"cannot bind {endpoint}: {exc.strerror}") from exc
            time.sleep(0.01)


class MalosProcess:
    """What every simulated MALOS driver shares: its four ports, bound and served by a
    background thread, `start()`/`stop()` (or `with`), and MalosBase's keep-alive rule.

    A subclass names itself (`name`, for the log line) and serves its sockets in `_loop`.
    Creating one binds nothing.
    """

    name = "GPIO"

    def __init__(self, host: str, base_port: int) -> None:
        """A driver on `host`, ports `base_port`..`base_port + 3`."""
        self.host = host
        self.base_port = base_port
        self.delay_between_updates = DEFAULT_UPDATE_DELAY
        self.timeout_after_last_ping = DEFAULT_PING_TIMEOUT
        self._last_ping: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> Self:
        """Bind the four sockets and start serving; returns once they are bound.

        Raises:
            OSError: a port could not be bound, or the thread did not bind in time.
        """
        thread_name = f"malos-sim-{self.name.lower()}"
        self._thread = threading.Thread(target=self._serve, name=thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(BIND_TIMEOUT):
            self.stop()
            raise OSError(f"the simulator did not bind its ports within {BIND_TIMEOUT:g} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets (a MALOS process ending)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sockets: list[zmq.Socket[bytes]] = []
        try:
            for kind in (zmq.PULL, zmq.PULL, zmq.PUB, zmq.PUB):
                socket = context.socket(kind)
                sockets.append(socket)
                socket.setsockopt(zmq.LINGER, 0)
                if kind == zmq.PUB:
                    socket.setsockopt(zmq.SNDHWM, PUB_SNDHWM)
            for offset, socket in enumerate(sockets):
                _bind(socket, f"tcp://{self.host}:{self.base_port + offset}")
        except BaseException as exc:
            self._error = exc
            for socket in sockets:
                socket.close(0)
            self._ready.set()
            return
        self._ready.set()
        logger.debug(  # `simulate` prints it for the user; once is enough
            "simulated MALOS %s driver on %s:%d..%d",
            self.name,
            self.host,
            self.base_port,
            self.base_port + 3,
        )
        config_in, ping_in, errors_out, updates_out = sockets
        try:
            self._loop(config_in, ping_in, errors_out, updates_out)
        finally:
            for socket in sockets:
                socket.close(0)

    def _loop(
        self,
        config_in: zmq.Socket[bytes],
        ping_in: zmq.Socket[bytes],
        errors_out: zmq.Socket[bytes],
        updates_out: zmq.Socket[bytes],
    ) -> None:
        """Serve the bound sockets until `stop()`: MalosBase's config, keep-alive and update
        threads, interleaved in one. A received config goes to `_received`; while the driver
        is active, `_tick` runs once per `delay_between_updates` (the delay in force when it
        ran, as the update thread sleeps); `_after_poll` runs after every wake-up."""
        poller = zmq.Poller()
        poller.register(config_in, zmq.POLLIN)
        poller.register(ping_in, zmq.POLLIN)
        next_tick = time.monotonic() + INACTIVE_CHECK
        while not self._stop.is_set():
            # Wake at the next tick, or at least every 100 ms to see stop().
            wait = max(0.0, min(next_tick - time.monotonic(), INACTIVE_CHECK, self._wake_within()))
            for socket, _ in poller.poll(int(wait * 1000)):
                frame = socket.recv(zmq.NOBLOCK)
                if socket is ping_in:
                    self._last_ping = time.monotonic()
                else:
                    self._received(frame, errors_out)
            self._after_poll(errors_out, updates_out)
            now = time.monotonic()
            if now >= next_tick:
                if self._active(now):
                    self._tick(now, errors_out, updates_out)
                    next_tick = now + self.delay_between_updates
                else:
                    next_tick = now + INACTIVE_CHECK

    # -- what a driver does in the loop ----------------------------------------------------------

    def _received(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        """The config thread: one frame from the config port."""
        raise NotImplementedError

    def _tick(
        self, now: float, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]
    ) -> None:
        """The update thread's step while the driver is active: send an update (or an error)."""
        raise NotImplementedError

    def _after_poll(self, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]) -> None:
        """After each wake-up: anything due that is not a config or a tick (test knobs)."""

    def _wake_within(self) -> float:
        """Seconds within which the loop must wake up again, at most (for `_after_poll`)."""
        return INACTIVE_CHECK

    def _active(self, now: float) -> bool:
        """Whether the driver's update thread runs: a ping came within the timeout."""
        return self._last_ping is not None and now - self._last_ping <= self.timeout_after_last_ping


class SimulatedDriver(MalosProcess):
    """The MALOS GPIO driver on four real ZeroMQ ports, run in a background thread.

    Use it as a context manager, or call `start()` and `stop()`. Creating it binds nothing.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int = 20049,
        board: Board | None = None,
        on_wire: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """Prepare a driver.

        Args:
            host: interface to bind (MALOS itself binds every interface, "*").
            base_port: the config port; base+1..base+3 are used too.
            board: the FPGA state; a fresh board has every pin an input, low.
            on_wire: called from the driver thread with ("config", frame) as soon as a
                config frame is received, before it is decoded, and with ("update", frame)
                just before an update frame is sent: the moments frames cross the driver's
                sockets, which benchmarks time.
        """
        super().__init__(host, base_port)
        self.board = board if board is not None else Board()
        self._on_wire = on_wire
        # HAL shadow registers: zero in every new driver process.
        self._shadow_direction = 0
        self._shadow_output = 0
        self._configs: list[PinConfig | None] = []
        self._configs_lock = threading.Lock()
        self.updates_sent = 0
        self._injected: collections.deque[bytes] = collections.deque()

    # -- what tests and users look at -----------------------------------------------------

    @property
    def configs(self) -> list[PinConfig | None]:
        """Every config received so far, decoded (None for an undecodable one)."""
        with self._configs_lock:
            return list(self._configs)

    def inject_update(self, frame: bytes) -> None:
        """Publish `frame` on the update port as it is (fault injection: malformed frames)."""
        self._injected.append(frame)

    def set_input(self, pin: int, level: int) -> None:
        """Drive a pin from outside to `level` (shorthand for `board.set_external`)."""
        self.board.set_external(pin, level)

    def play(
        self, pin: int, durations_ms: Sequence[float], start: float | None = None
    ) -> list[float]:
        """Play a press pattern on input `pin` (shorthand for `board.play`)."""
        return self.board.play(pin, durations_ms, start)

    # -- the driver ---------------------------------------------------------------------------

    def _received(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        if self._on_wire is not None:
            self._on_wire("config", frame)
        self._handle_config(frame, errors_out)

    def _after_poll(self, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]) -> None:
        while self._injected:
            self._send_update(updates_out, self._injected.popleft())

    def _tick(
        self, now: float, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]
    ) -> None:
        self._send_update(updates_out, encode_levels(self.board.levels(now)))
        self.updates_sent += 1

    def _send_update(self, updates_out: zmq.Socket[bytes], frame: bytes) -> None:
        if self._on_wire is not None:
            self._on_wire("update", frame)
        updates_out.send(frame)

    def _handle_config(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        try:
            config: PinConfig | None = decode_pin_config(frame)
        except CodecError:
            config = None
        self._apply_config(config, errors_out)
        # Recorded once applied, so that a test seeing it also sees its effect on the board.
        with self._configs_lock:
            self._configs.append(config)

    def _apply_config(self, config: PinConfig | None, errors_out: zmq.Socket[bytes]) -> None:
        if config is None:
            errors_out.send_string(ERROR_UNPARSABLE)
            return
        # A config without `gpio` reads the default GpioParams: pin 0, INPUT.
        pin = 0 if config.pin is None else config.pin
        if config.mode == 1:  # OUTPUT: value first, then direction
            self._write_output(pin, config.value)
            self._write_direction(pin, 1)
        elif config.mode == 0:  # INPUT: value ignored
            self._write_direction(pin, 0)
        else:
            errors_out.send_string(ERROR_BAD_MODE)
            errors_out.send_string(ERROR_BAD_SPECIFIC)
            return
        if config.delay_between_updates > 0:
            self.delay_between_updates = whole_milliseconds(config.delay_between_updates)
        if config.timeout_after_last_ping > 0:
            self.timeout_after_last_ping = whole_milliseconds(config.timeout_after_last_ping)

    def _write_output(self, pin: int, value: int) -> None:
        if pin >= 32:  # undefined behaviour on the board (shift past the width): do nothing
            return
        # Not masked: value 2 on pin 0 lands on pin 1. The shadow register is 16 bits wide.
        mask = 1 << pin
        self._shadow_output = ((self._shadow_output & ~mask) | (value << pin)) & ALL_PINS_MASK
        with self.board.lock:  # the whole register is rewritten from the shadow
            self.board.output = self._shadow_output

    def _write_direction(self, pin: int, mode: int) -> None:
        if pin >= 32:
            return
        mask = 1 << pin
        self._shadow_direction = ((self._shadow_direction & ~mask) | (mode << pin)) & ALL_PINS_MASK
        with self.board.lock:
            self.board.direction = self._shadow_direction


def whole_milliseconds(seconds: float) -> float:
    """What the driver keeps of a duration, in seconds: an `int` of milliseconds, made from the
    float32 it received times 1000 in float32, truncated (so 0.0009 s is 0: no pause at all)."""
    (product,) = struct.unpack("f", struct.pack("f", seconds * 1000.0))
    return int(product) / 1000


CONSOLE_HELP = """\
commands: <pin> on | <pin> off | <pin> toggle   drive an input pin from outside
          <pin> press <ms>                      flip it, flip it back <ms> later
          <pin> double [<ms> <gap ms>]          two presses (default 120 ms, 150 ms apart)
          <pin> play <ms> <ms> ...              flip it now, then after each <ms> in turn
          show                                  levels and directions of all 16 pins
                                                (and the LED ring and sensors, if simulated)
          help"""

DOUBLE_PRESS_MS = 120.0
DOUBLE_GAP_MS = 150.0

_PATTERN_USAGE = {
    "press": "usage: <pin> press <ms>, e.g. 3 press 200",
    "double": "usage: <pin> double [<ms> <gap ms>], e.g. 3 double 120 150",
    "play": "usage: <pin> play <ms> <ms> ..., e.g. 3 play 200 150 200",
}
_MILLISECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def console_command(
    driver: SimulatedDriver,
    line: str,
    everloop: SimulatedEverloopDriver | None = None,
    sensors: Sequence[SimulatedSensorDriver] = (),
) -> str:
    """Carry out one console line (e.g. "3 on") against the simulated board; return a reply.

    With `everloop`, `show` also draws the LED ring. With `sensors`, lines starting with
    `sensor` go to them (`sim.sensors.sensor_command`), `show` also says what each reads, and
    the help lists the sensor commands.
    """
    words = line.lower().split()
    if not words:
        return ""
    if words[0] == "sensor":
        if not sensors:
            return "no simulated sensors (start `simulate` with --sensors)"
        # Imported here: sensors.py imports this module.
        from .sensors import sensor_command

        return sensor_command(sensors, line)
    if words == ["show"]:
        levels = driver.board.levels()
        direction = driver.board.direction
        rows = [
            f"pin {pin:2d} {'output' if direction >> pin & 1 else 'input '} "
            f"{'high' if levels >> pin & 1 else 'low'}{_pwm_note(driver.board, pin)}"
            for pin in range(PIN_COUNT)
        ]
        if everloop is not None:
            rows.append(f"everloop {everloop.render()}")
        if sensors:
            from .sensors import sensor_command

            rows.append(sensor_command(sensors, "sensor"))
        return "\n".join(rows)
    if len(words) < 2 or not words[0].isdecimal():
        return _console_help(sensors)
    pin = int(words[0])
    command, arguments = words[1], words[2:]
    if command in ("on", "off", "toggle") and not arguments:
        if pin >= PIN_COUNT:
            return f"pin {pin} is out of range 0..{PIN_COUNT - 1}"
        current = driver.board.external_levels() >> pin & 1
        level = {"on": 1, "off": 0, "toggle": 1 - current}[command]
        driver.set_input(pin, level)
        return f"pin {pin} driven {_level_name(level)}{_output_note(driver, pin)}"
    if command in _PATTERN_USAGE:
        return _console_pattern(driver, pin, command, arguments)
    return _console_help(sensors)


def _console_help(sensors: Sequence[SimulatedSensorDriver]) -> str:
    """CONSOLE_HELP, with the sensor commands before its last line (`help`) when they run."""
    if not sensors:
        return CONSOLE_HELP
    from .sensors import SENSOR_COMMANDS

    commands, last = CONSOLE_HELP.rsplit("\n", 1)
    return f"{commands}\n{SENSOR_COMMANDS}\n{last}"


def _console_pattern(driver: SimulatedDriver, pin: int, command: str, arguments: list[str]) -> str:
    """`<pin> press|double|play ...`: play the pattern, say what the pin will do."""
    if pin >= PIN_COUNT:
        return f"pin {pin} is out of range 0..{PIN_COUNT - 1}"
    for word in arguments:
        # Plain decimals only: float() would also take "nan", "inf", "-5" and "1e3".
        if not _MILLISECONDS.fullmatch(word) or not 0 < float(word) < math.inf:
            return f"pin {pin}: durations are milliseconds > 0, not {word!r}"
    durations = [float(word) for word in arguments]
    if command == "press" and len(durations) == 1:
        title = f"press of {_ms(durations[0])}: "
    elif command == "double" and len(durations) in (0, 2):
        press, gap = durations or [DOUBLE_PRESS_MS, DOUBLE_GAP_MS]
        durations = [press, gap, press]
        title = "double press: "
    elif command == "play" and durations:
        title = ""
    else:
        return _PATTERN_USAGE[command]
    # The level the pattern starts from; read just before playing it, which is only a console.
    before = driver.board.external_levels() >> pin & 1
    try:
        driver.play(pin, durations)
    except ValueError as exc:  # checked above; a reply all the same, never a traceback
        return f"pin {pin}: {exc}"
    steps = [
        f"{_level_name(before ^ 1 ^ (index & 1))} {_ms(duration)}"
        for index, duration in enumerate(durations)
    ]
    final = _level_name(before ^ ((len(durations) + 1) & 1))
    return f"pin {pin}: {title}{', '.join(steps)}, then {final}{_output_note(driver, pin)}"


def _pwm_note(board: Board, pin: int) -> str:
    """For `show`: what a servo config left on a PWM pin (nothing for a plain GPIO pin)."""
    if not board.function >> pin & 1:
        return ""
    # Imported here: servo.py imports this module.
    from .servo import angle_from_duty

    duty = board.duty[pin]
    angle = round(angle_from_duty(duty))
    return f", PWM: duty {duty} (angle {angle}), period {board.period[pin // 4]}"


def _level_name(level: int) -> str:
    return "high" if level else "low"


def _ms(milliseconds: float) -> str:
    return f"{int(milliseconds) if milliseconds.is_integer() else milliseconds} ms"


def _output_note(driver: SimulatedDriver, pin: int) -> str:
    if driver.board.direction >> pin & 1:
        return " (an output: the board drives it, the outside level is ignored)"
    return ""
