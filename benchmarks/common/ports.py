"""Free ports on the loopback host, and waiting for a listener or a condition."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Collection

from common import BenchmarkError

HOST = "127.0.0.1"


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


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    poll: float = 0.02,
    error: type[BenchmarkError] = BenchmarkError,
) -> None:
    """Poll `condition` until it is true; `error` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
