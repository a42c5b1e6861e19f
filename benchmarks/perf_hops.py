"""perf.py's baseline hops (ZeroMQ, a pipe) and helpers for bursts and CPU shares."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import mqttio
import zmq
from common.facts import ROOT
from common.ports import HOST, free_port_block
from common.processes import cpu_ns, end_process
from perf_clients import Slot
from perf_settings import BURST_STALL, ONLINE_TIMEOUT, PIN_COUNT, SAMPLE_TIMEOUT, PerfError, now_ns

# -- the bare ZeroMQ hop ---------------------------------------------------------------------


class ZmqHop:
    """A pyzmq PUSH (this thread) -> PULL (a thread polling like the simulated driver)."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.pull = self.context.socket(zmq.PULL)
        self.push = self.context.socket(zmq.PUSH)
        for sock in (self.pull, self.push):
            sock.setsockopt(zmq.LINGER, 0)
        port = self.pull.bind_to_random_port(f"tcp://{HOST}")
        self.push.connect(f"tcp://{HOST}:{port}")
        self._slot: Slot | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="perf-zmq-pull", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        while not self._stop.is_set():
            for sock, _ in poller.poll(100):  # the simulated driver polls at most 100 ms too
                sock.recv(zmq.NOBLOCK)
                t = now_ns()
                slot, self._slot = self._slot, None
                if slot is not None:
                    slot.hit(t)

    def sample(self) -> int | None:
        """One message through the hop; its latency in ns, None if it never arrived."""
        slot = Slot()
        self._slot = slot
        started = now_ns()
        self.push.send(b"\x08\x01")
        at = slot.wait()
        return None if at is None else at - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.pull.close(0)
        self.push.close(0)
        self.context.term()


class ZmqProcessHop:
    """A pyzmq PUSH (this thread) -> PULL in another process (`perf_null.py --pull-port`),
    which prints its monotonic clock at each arrival: the hop every bridge makes into MALOS."""

    def __init__(self) -> None:
        port = free_port_block(1)
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://{HOST}:{port}")  # ZeroMQ connects once the PULL is bound
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "perf_null.py"), "--pull-port", str(port)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        if self._line(ONLINE_TIMEOUT) != b"ready":
            self.close()
            raise PerfError("perf_null.py --pull-port did not start")

    def _line(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        return self.stdout.readline().strip() if ready else None

    def sample(self) -> int | None:
        """One message through the hop; its latency in ns, None if it never arrived."""
        started = now_ns()
        self.push.send(b"\x08\x01")
        line = self._line(SAMPLE_TIMEOUT)
        return None if not line else int(line) - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        end_process(self.process)
        self.push.close(0)
        self.context.term()


class PipeHop:
    """mqtt-io's hop to this process without mqtt-io: a `set_pin` line written to an `os.pipe`
    here, read by the `mqttio.StdoutReader` that reads mqtt-io's stdout (a thread of its own)."""

    LINE = b"set_pin(pin=0, value=True)\n"

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._slot: Slot | None = None
        self._reader = mqttio.StdoutReader(self._read_fd, self._on_write)

    def _on_write(self, t: int, _pin: int, _level: int) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.hit(t)

    def sample(self) -> int | None:
        """One line through the pipe; its latency in ns, None if it never arrived."""
        slot = Slot()
        self._slot = slot
        started = now_ns()
        os.write(self._write_fd, self.LINE)
        at = slot.wait()
        return None if at is None else at - started

    def warm(self, count: int = 50) -> None:
        for _ in range(count):
            self.sample()

    def close(self) -> None:
        os.close(self._write_fd)
        self._reader.join()
        os.close(self._read_fd)


def cpu_shares(pids: Sequence[int], seconds: float) -> tuple[list[float], float]:
    """The % of one core each process used while this one slept `seconds`; the wall time."""
    before = [cpu_ns(pid) for pid in pids]
    t0 = time.monotonic()
    time.sleep(seconds)
    after = [cpu_ns(pid) for pid in pids]
    wall = time.monotonic() - t0
    return [100 * (b - a) / 1e9 / wall for a, b in zip(before, after, strict=True)], wall


def wait_progress(count: Callable[[], int], target: int) -> None:
    """Wait until `count()` reaches `target`, or stays put for BURST_STALL seconds."""
    last, changed = count(), time.monotonic()
    while last < target and time.monotonic() - changed < BURST_STALL:
        time.sleep(0.02)
        if count() != last:
            last, changed = count(), time.monotonic()


def burst_commands(n: int) -> list[tuple[int, int]]:
    """(pin, value) of n commands: round robin over the 16 pins, each pin alternating between
    ON and OFF and ending ON (so that every command changes its pin)."""
    per_pin = [n // PIN_COUNT + (1 if pin < n % PIN_COUNT else 0) for pin in range(PIN_COUNT)]
    seen = [0] * PIN_COUNT
    commands = []
    for i in range(n):
        pin = i % PIN_COUNT
        seen[pin] += 1
        commands.append((pin, (per_pin[pin] - seen[pin] + 1) % 2))
    return commands


def check_order(
    sent: Sequence[tuple[int, int]], received: Sequence[tuple[int, int]]
) -> tuple[bool, list[int]]:
    """Whether `received` is `sent` in order with some commands missing (a subsequence), and how
    many each pin lost (negative: more received than sent).

    MQTT keeps one client's order, the bridge handles messages in turn and ZeroMQ keeps
    order, so the configs must come in the order of the commands.
    """
    position, in_order = 0, True
    for config in received:
        while position < len(sent) and sent[position] != config:
            position += 1
        if position == len(sent):
            in_order = False
            break
        position += 1
    lost = [0] * PIN_COUNT
    for pin, _value in sent:
        lost[pin] += 1
    for pin, _value in received:
        if 0 <= pin < PIN_COUNT:
            lost[pin] -= 1
    return in_order, lost
