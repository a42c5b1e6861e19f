"""soak.py's timings and payloads, and its bookkeeping of faults and expected states."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from common import BenchmarkError

PIN_COUNT = 16

ACK_TIMEOUT = 5.0
"""Seconds to wait for one PUBACK before reconnecting and sending the command again."""
SEND_DEADLINE = 180.0
"""Seconds one command may take, retries included, before the run is declared broken."""
RECOVERY_TIMEOUT = 60.0
"""Seconds after a restart within which `status` must read `online` again."""
CHECKPOINT_TIMEOUT = 15.0
"""Seconds after a recovery within which the board must show every acknowledged command."""
FINAL_TIMEOUT = 30.0
"""Seconds at the end for `status` = `online`, then for the board and retained states."""
FAULT_GAP = (10.0, 30.0)
DOWN_TIME = (0.2, 3.0)
BURST = (1, 200)
PAUSE = (0.0, 1.0)
INPUT_FLIP_CHANCE = 0.3
ON_PAYLOADS = ["ON", "on", "1", "true", "high", '"ON"', '{"state": "ON"}', '{"state": true}']
OFF_PAYLOADS = ["OFF", "off", "0", "false", "low", '"OFF"', '{"state": "OFF"}', '{"state": false}']


class SoakError(BenchmarkError):
    """The run cannot go on (a peer would not start, a command could not be delivered)."""


def now() -> float:
    return time.monotonic()


# -- the bridge process ----------------------------------------------------------------------


def problem_pins(problems: list[str]) -> list[int]:
    """The pins named by "pin N: ..." problem lines (board level or direction differences)."""
    pins = {
        int(m.group(1)) for p in problems if (m := re.match(r"pin (\d+): (board|direction)", p))
    }
    return sorted(pins)


# -- bookkeeping -----------------------------------------------------------------------------


@dataclass
class Fault:
    index: int
    kind: str  # "broker" or "malos"
    down_s: float
    started: float = 0.0
    restarted: float = 0.0
    recovery_s: float | None = None
    recovery_upper_bound: bool = False
    offline_after_s: float | None = None
    checkpoint_s: float | None = None
    checkpoint_board_s: float | None = None
    acked_at_start: int = 0
    acked_before_checkpoint: int = 0
    checkpoint_problems: list[str] = field(default_factory=list)
    checkpoint_ambiguous: bool = False
    error: str | None = None


@dataclass
class Expectation:
    """What the board must show: last acknowledged command per output, inputs as driven."""

    outputs: list[int]
    inputs: list[int]
    level: dict[int, int] = field(default_factory=dict)
    acked_at: dict[int, float] = field(default_factory=dict)
    acked_on: dict[int, int] = field(default_factory=dict)
    external: int = 0

    def mask(self) -> int:
        value = self.external
        for pin in self.outputs:
            value = (value & ~(1 << pin)) | (self.level.get(pin, 0) << pin)
        return value

    def direction(self) -> int:
        return sum(1 << pin for pin in self.outputs)
