"""mqtt-io beside the bridge in `perf.py`: its venv, its config and its "hardware" on stdout.

mqtt-io (https://pypi.org/project/mqtt-io/) is a benchmark-only comparison, never a
dependency of the project: it gets a venv of its own, `benchmarks/.venv-mqttio` (git-ignored),
made on first use with `python3.11 -m venv` and `pip install mqtt-io==2.7.0`.

What perf.py relies on, read from mqtt-io 2.7.0's sources (`mqtt_io/server.py`,
`mqtt_io/modules/gpio/stdio.py`, `mqtt_io/config/config.schema.yml`):

- The `stdio` GPIO module stands in for the hardware. A write to an output is a `print`:
  `set_pin(pin=0, value=True)`, one line on stdout. A read of an input prints
  `get_pin(pin=8)` and returns False, always: the module does not read stdin, so an input
  can never change and there is no state latency to measure with it.
- Outputs listen on `<prefix>/output/<name>/set` (payload `ON` / `OFF`, subscribed with QoS 1)
  and publish their state on `<prefix>/output/<name>` after each write; inputs publish on
  `<prefix>/input/<name>` when a poll (every `poll_interval`) reads a new value, so once, at
  start-up, with the stdio module.
- `<prefix>/status` carries `running` (retained, QoS 1) once connected and again every
  `keepalive` seconds (10), `stopped` on a clean exit (SIGTERM), `dead` as the last will.
- Logging goes to stderr (a `logging.StreamHandler`), so stdout holds only the module's lines.
  `print` to a pipe is block-buffered, so perf.py starts mqtt-io with `PYTHONUNBUFFERED=1`:
  each line then reaches the pipe when it is printed, as it would on a console.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from common import BenchmarkError

VERSION = "2.7.0"
VENV = Path(__file__).resolve().parent / ".venv-mqttio"
GPIO_MODULE = "console"
"""The name of the `stdio` GPIO module in the generated config."""
RUNNING = "running"
"""mqtt-io's default `status_payload_running`: its "online"."""

_WRITE = re.compile(rb"set_pin\(pin=(\d+), value=(True|False)\)")


def output_name(pin: int) -> str:
    return f"out{pin}"


def input_name(pin: int) -> str:
    return f"in{pin}"


def set_topic(prefix: str, pin: int) -> str:
    return f"{prefix}/output/{output_name(pin)}/set"


def state_topic(prefix: str, pin: int, *, output: bool) -> str:
    return f"{prefix}/output/{output_name(pin)}" if output else f"{prefix}/input/{input_name(pin)}"


def status_topic(prefix: str) -> str:
    return f"{prefix}/status"


def parse_write(line: bytes) -> tuple[int, int] | None:
    """(pin, level) of a `set_pin(...)` line of the stdio module; None for any other line."""
    match = _WRITE.fullmatch(line.strip())
    if match is None:
        return None
    return int(match[1]), 1 if match[2] == b"True" else 0


# -- the venv --------------------------------------------------------------------------------


def venv_python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def installed_version(python: Path) -> str | None:
    """mqtt-io's version in the venv of `python`, None if it is not there (or no venv)."""
    if not python.exists():
        return None
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('mqtt-io'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def ensure_venv(venv: Path = VENV, log: Callable[[str], None] = print) -> Path:
    """The python of a venv holding mqtt-io VERSION, made (or mended) first if need be."""
    python = venv_python(venv)
    if installed_version(python) == VERSION:
        return python
    base = shutil.which("python3.11") or sys.executable
    steps = [
        [base, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", f"mqtt-io=={VERSION}"],
    ]
    if python.exists():  # a venv with another mqtt-io, or none: install into it
        steps = steps[1:]
    for argv in steps:
        log(f"mqtt-io venv: {' '.join(argv)}")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if result.returncode != 0:
            tail = " / ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise BenchmarkError(f"`{' '.join(argv)}` failed ({result.returncode}): {tail}")
    found = installed_version(python)
    if found != VERSION:
        raise BenchmarkError(f"{venv} holds mqtt-io {found}, not {VERSION}")
    return python


# -- the config ------------------------------------------------------------------------------


def config_text(
    *,
    host: str,
    port: int,
    prefix: str,
    outputs: Sequence[int],
    inputs: Sequence[int],
    poll_interval: float,
    ha_prefix: str,
) -> str:
    """An mqtt-io config: the broker, `outputs` and `inputs` on the stdio module, inputs polled
    every `poll_interval`, Home Assistant discovery on (as the bridge's is), warnings only."""
    lines = [
        "mqtt:",
        f"  host: {host}",
        f"  port: {port}",
        f"  topic_prefix: {prefix}",
        "  ha_discovery:",
        "    enabled: yes",
        f"    prefix: {ha_prefix}",
        "gpio_modules:",
        f"  - name: {GPIO_MODULE}",
        "    module: stdio",
        "digital_outputs:" if outputs else "digital_outputs: []",
    ]
    for pin in outputs:
        lines += [
            f"  - name: {output_name(pin)}",
            f"    module: {GPIO_MODULE}",
            f"    pin: {pin}",
            "    initial: low",
        ]
    lines.append("digital_inputs:" if inputs else "digital_inputs: []")
    for pin in inputs:
        lines += [
            f"  - name: {input_name(pin)}",
            f"    module: {GPIO_MODULE}",
            f"    pin: {pin}",
            f"    poll_interval: {poll_interval}",
        ]
    lines += [
        "options:",
        "  install_requirements: no",
        "logging:",
        "  version: 1",
        "  handlers:",
        "    console:",
        "      class: logging.StreamHandler",
        "      level: WARNING",
        "  loggers:",
        "    mqtt_io:",
        "      level: WARNING",
        "      handlers: [console]",
    ]
    return "\n".join(lines) + "\n"


def environment() -> dict[str, str]:
    """The environment to start mqtt-io in: ours, with stdout unbuffered (see above)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


# -- its stdout ------------------------------------------------------------------------------


class StdoutReader:
    """Drains a pipe in a thread and reports every `set_pin` line, `on_write(t, pin, level)`.

    The time is `time.perf_counter_ns()` (perf.py's clock) right after `os.read` returned the
    bytes holding the line: the moment this process could first see the write. Every other
    line is only counted (and the last few kept for error messages); the pipe is always
    drained, so the writer never blocks on it.
    """

    def __init__(self, fd: int, on_write: Callable[[int, int, int], None]) -> None:
        self._fd = fd
        self._on_write = on_write
        self.lines = 0
        self.writes = 0
        self.last_lines: deque[bytes] = deque(maxlen=5)
        self._thread = threading.Thread(target=self._drain, name="perf-stdout", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                return
            t = time.perf_counter_ns()
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self.lines += 1
                self.last_lines.append(line)
                write = parse_write(line)
                if write is not None:
                    self.writes += 1
                    self._on_write(t, *write)

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the end of the stream (the writer gone)."""
        self._thread.join(timeout)
