"""Processes a benchmark started, and what /proc says about them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from common import BenchmarkError

TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second (the unit of /proc/<pid>/stat's CPU times)."""


def end_process(process: subprocess.Popen[bytes] | None, grace: float = 10.0) -> int | None:
    """SIGTERM one process this run started, SIGKILL it after `grace`; its exit status."""
    if process is None:
        return None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(5)
    return process.returncode


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 on (after the command name, which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> int:
    """utime + stime of a live process, in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12])


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of a process (/proc/<pid>/task/*/schedstat):
    exact where utime + stime count 10 ms ticks, which at an idle bridge's 0.5 % of a core
    are a handful per window. Threads that have ended are not counted."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as file:
                total += int(file.read().split()[0])
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return total


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a live process, from /proc/<pid>/stat."""
    fields = _stat_fields(pid)
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def status_kb(pid: int, key: str, name: str = "status") -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM) or /proc/<pid>/smaps_rollup (Pss)."""
    with open(f"/proc/{pid}/{name}") as file:
        for line in file:
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    raise BenchmarkError(f"no {key} in /proc/{pid}/{name}")


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process, in kB."""
    return status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")


def memory_detail_kb(pid: int) -> tuple[int, int]:
    """(PSS, USS) of a live process in kB, from /proc/<pid>/smaps_rollup: RSS counts shared
    library pages in full, PSS shares them out, USS (private pages) is what it alone holds."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss", "Private_Clean", "Private_Dirty"):
            values[key] = int(rest.split()[0])
    return values["Pss"], values["Private_Clean"] + values["Private_Dirty"]


def maps_library(pid: int, needle: str) -> bool:
    """Whether a mapping of the process names `needle` (a shared library, say)."""
    with open(f"/proc/{pid}/maps") as file:
        return any(needle in line for line in file)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def other_benchmarks() -> list[str]:
    """Command lines of soak.py / scale.py runs on this machine (they would skew the figures)."""
    result = subprocess.run(
        ["pgrep", "-af", "soak.py|scale.py"], capture_output=True, text=True, check=False
    )
    return [line for line in result.stdout.splitlines() if line.strip()]


class ProcWatch(threading.Thread):
    """Polls /proc/<pid>/status of a process (the bridge) for its resident memory."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-poll", daemon=True)
        self.pid = pid
        self.max_rss_kb = 0
        self.last_rss_kb = 0
        self.hwm_kb = 0
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def read(self) -> None:
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{self.pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            rss = int(fields["VmRSS"].split()[0])
            self.hwm_kb = max(self.hwm_kb, int(fields["VmHWM"].split()[0]))
            self.last_rss_kb = rss
            self.max_rss_kb = max(self.max_rss_kb, rss)
            self.samples.append((time.monotonic(), rss))

    def run(self) -> None:
        while not self._stop_event.wait(0.25):
            self.read()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)

    def rss_at(self, moment: float) -> int | None:
        later = [rss for at, rss in self.samples if at >= moment]
        return later[0] if later else None


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so that a run cleans up as on Ctrl-C."""

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
