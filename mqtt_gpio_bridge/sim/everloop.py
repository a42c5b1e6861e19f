"""A simulated MALOS Everloop driver (the LED ring) speaking the real ZeroMQ protocol.

It reproduces the board's Everloop driver (matrix-creator-malos `EverloopDriver` on
matrix-malos-lib `MalosBase` and the HAL's `Everloop` writer) as described in the MALOS
reference:

* four sockets like every driver: config PULL (base, 20021), keep-alive PULL (base+1), errors
  PUB (base+2) and updates PUB (base+3), the PUBs with SNDHWM 20;
* the ring has 35 LEDs on a MATRIX Creator, 18 on a MATRIX Voice (`board`);
* updates only while pinged, like GPIO: one `EverloopImage` carrying only `everloop_length` (the
  LED count) every `delay_between_updates` (1 s by default); they stop a whole
  `timeout_after_last_ping` (5 s) after the last ping; while inactive it checks every 100 ms;
* a config is checked in the driver's order: first the LED count (any other count than the
  board's, a config without `image` included, earns
  `WARNING: Invalid number of Leds it must be =<n>`), then each LED in ring order, stopping at
  the first with a value above 255 (`ERROR: LED values go from 0 to 255.`). Either refusal is
  followed by MalosBase's `0, Invalid specific configuration for Everloop driver.`, shows
  nothing and applies no timing field. An unparsable frame earns
  `0, Invalid configuration for Everloop driver. Could not parse protobuf.` alone;
* an accepted image is shown whole, at once; then `delay_between_updates` and
  `timeout_after_last_ping` apply, as whole milliseconds, each only when > 0. So a timing-only
  config is refused: the timings can only ride along with a whole image.

The driver never reports colours. Not from MALOS, for tests, benchmarks and the console:
`images` logs every image shown with the instant it was shown, `on_wire` reports frames as
they cross the sockets, and `render_ring` draws a ring as coloured blocks in a terminal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import zmq
from google.protobuf.message import DecodeError

from ..malos.everloop.codec import CREATOR_LEDS, MAX_VALUE, VOICE_LEDS
from .driver import MalosProcess, whole_milliseconds
from .proto import DriverConfig, EverloopImage

DEFAULT_EVERLOOP_PORT = 20021
BOARD_LEDS = {"creator": CREATOR_LEDS, "voice": VOICE_LEDS}
"""The ring's LED count on each board, as the HAL reads it from the FPGA."""

ERROR_UNPARSABLE = "0, Invalid configuration for Everloop driver. Could not parse protobuf."
ERROR_BAD_SPECIFIC = "0, Invalid specific configuration for Everloop driver."
ERROR_BAD_VALUE = "ERROR: LED values go from 0 to 255."

Led = tuple[int, int, int, int]
"""One LED: red, green, blue, white."""


def error_led_count(leds: int) -> str:
    """The driver's refusal of an image whose LED count is not `leds`."""
    return f"WARNING: Invalid number of Leds it must be ={leds}"


@dataclass(frozen=True, slots=True)
class ShownImage:
    """One image the ring showed."""

    at: float
    """The `time.monotonic()` instant it was written to the ring."""
    leds: tuple[Led, ...]


class SimulatedEverloopDriver(MalosProcess):
    """The MALOS Everloop driver on four real ZeroMQ ports, run in a background thread.

    Use it as a context manager, or call `start()` and `stop()`. Creating it binds nothing.
    """

    name = "Everloop"

    def __init__(
        self,
        host: str = "127.0.0.1",
        base_port: int = DEFAULT_EVERLOOP_PORT,
        board: str = "creator",
        on_wire: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """Prepare a driver.

        Args:
            host: interface to bind (MALOS itself binds every interface, "*").
            base_port: the config port; base+1..base+3 are used too.
            board: "creator" (35 LEDs) or "voice" (18 LEDs).
            on_wire: called from the driver thread with ("config", frame) as soon as a config
                frame is received, before it is decoded, with ("applied", frame) once it was
                shown (or its errors were published), and with ("update", frame) just before
                an update is sent.

        Raises:
            ValueError: for a board other than "creator" or "voice".
        """
        if board not in BOARD_LEDS:
            raise ValueError(f"board {board!r} is not one of {', '.join(BOARD_LEDS)}")
        super().__init__(host, base_port)
        self.board = board
        self.leds = BOARD_LEDS[board]
        self._on_wire = on_wire
        self._images: list[ShownImage] = []
        self._images_lock = threading.Lock()
        self.configs_received = 0
        """Config frames handled so far, accepted or not."""
        self.updates_sent = 0
        self._update: bytes = EverloopImage(everloop_length=self.leds).SerializeToString()
        """The driver's one update: only `everloop_length`."""

    # -- what tests and users look at -----------------------------------------------------

    @property
    def images(self) -> list[ShownImage]:
        """Every image shown so far, oldest first."""
        with self._images_lock:
            return list(self._images)

    @property
    def shown(self) -> tuple[Led, ...] | None:
        """What the ring shows now: the last image written (None before the first)."""
        with self._images_lock:
            return self._images[-1].leds if self._images else None

    def render(self) -> str:
        """The ring as it is now, as coloured blocks (every LED off before the first image)."""
        shown = self.shown
        return render_ring(shown if shown is not None else [(0, 0, 0, 0)] * self.leds)

    # -- the driver ---------------------------------------------------------------------------

    def _received(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        if self._on_wire is not None:
            self._on_wire("config", frame)
        self._handle_config(frame, errors_out)
        self.configs_received += 1
        if self._on_wire is not None:
            self._on_wire("applied", frame)

    def _tick(
        self, now: float, errors_out: zmq.Socket[bytes], updates_out: zmq.Socket[bytes]
    ) -> None:
        if self._on_wire is not None:
            self._on_wire("update", self._update)
        updates_out.send(self._update)
        self.updates_sent += 1

    def _handle_config(self, frame: bytes, errors_out: zmq.Socket[bytes]) -> None:
        config = DriverConfig()
        try:
            config.ParseFromString(frame)
        except DecodeError:
            errors_out.send_string(ERROR_UNPARSABLE)
            return
        refusal = self._refusal(config.image)
        if refusal is not None:
            errors_out.send_string(refusal)
            errors_out.send_string(ERROR_BAD_SPECIFIC)
            return
        leds = tuple((led.red, led.green, led.blue, led.white) for led in config.image.led)
        with self._images_lock:
            self._images.append(ShownImage(time.monotonic(), leds))
        if config.delay_between_updates > 0:
            self.delay_between_updates = whole_milliseconds(config.delay_between_updates)
        if config.timeout_after_last_ping > 0:
            self.timeout_after_last_ping = whole_milliseconds(config.timeout_after_last_ping)

    def _refusal(self, image: Any) -> str | None:
        """EverloopDriver::ProcessConfig's checks, in its order: the count, then LED by LED."""
        if len(image.led) != self.leds:
            return error_led_count(self.leds)
        for led in image.led:
            if max(led.red, led.green, led.blue, led.white) > MAX_VALUE:
                return ERROR_BAD_VALUE
        return None


def render_ring(leds: Sequence[Led]) -> str:
    """Draw LEDs as a row of blocks with 24-bit ANSI background colours, in ring order.

    The white channel is added to red, green and blue (a terminal has no white LED), each
    capped at 255; an LED that is off is a black block.
    """
    blocks = []
    for red, green, blue, white in leds:
        rgb = ";".join(str(min(MAX_VALUE, channel + white)) for channel in (red, green, blue))
        blocks.append(f"\x1b[48;2;{rgb}m  ")
    return "".join(blocks) + "\x1b[0m"


__all__ = [
    "BOARD_LEDS",
    "DEFAULT_EVERLOOP_PORT",
    "ERROR_BAD_SPECIFIC",
    "ERROR_BAD_VALUE",
    "ERROR_UNPARSABLE",
    "Led",
    "ShownImage",
    "SimulatedEverloopDriver",
    "error_led_count",
    "render_ring",
]
