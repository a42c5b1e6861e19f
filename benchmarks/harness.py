"""What the benchmark scripts share: free ports, process ends, /proc readings."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Collection
from pathlib import Path

HOST = "127.0.0.1"


class BenchmarkError(Exception):
    """A benchmark could not run as planned (no ports, a peer did not start...)."""


def bindable(port: int) -> bool:
    """Whether `port` can be bound on HOST right now."""
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, taken: Collection[int] = ()) -> int:
    """A port p such that p .. p+count-1 can all be bound on HOST now and none is in `taken`."""
    for _ in range(500):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            base = int(sock.getsockname()[1])
        block = range(base, base + count)
        if base + count <= 65536 and not set(block) & set(taken) and all(map(bindable, block)):
            return base
    raise BenchmarkError(f"no block of {count} free ports on {HOST}")


def accepts_connections(port: int) -> bool:
    """Whether something listens on HOST:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


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


def cpu_ticks(pid: int) -> int:
    """utime + stime of a live process, in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])
