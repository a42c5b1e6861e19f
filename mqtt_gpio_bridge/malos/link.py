"""The four ZeroMQ sockets every MALOS driver talks on, for the bridge's poll loop."""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

import zmq

logger = logging.getLogger(__name__)

CONFIG_LINGER_MS = 1000
_NOBLOCK = int(zmq.NOBLOCK)
"""A plain int: pyzmq's flags are enums, slower to pass at every receive."""
UPDATE_QUEUE = 100
"""Updates kept while the bridge is busy; older ones are dropped by ZeroMQ, never by us."""

# A board across the network can lose power or reboot without closing its TCP connections. The
# bridge's subscriptions then wait on a connection nobody answers, forever (a SUB socket sends
# nothing, so the kernel never finds out), and its pings sit in the kernel's retransmit queue
# for up to 15 minutes. These options let the kernel find such a connection dead within seconds,
# after which ZeroMQ opens a new one. On the board itself (loopback) they never come into play.
TCP_OPTIONS = {
    zmq.TCP_KEEPALIVE: 1,
    zmq.TCP_KEEPALIVE_IDLE: 5,  # seconds of silence before the first probe
    zmq.TCP_KEEPALIVE_INTVL: 1,  # seconds between probes
    zmq.TCP_KEEPALIVE_CNT: 3,  # probes unanswered: the connection is dead
    zmq.TCP_MAXRT: 10_000,  # ms a sent frame may stay unacknowledged (TCP_USER_TIMEOUT)
    zmq.CONNECT_TIMEOUT: 2_000,  # ms per connection attempt, instead of the kernel's ~2 min
}


class LinkSockets(NamedTuple):
    """The sockets a poller watches for one driver."""

    updates: zmq.Socket[bytes]
    errors: zmq.Socket[bytes]
    connection: zmq.Socket[bytes]
    """Events of the update socket's TCP connection (see `MalosLink.connection_event`)."""


class MalosLink:
    """Client side of one MALOS driver: config and keep-alive PUSH, errors and updates SUB.

    Creating the object connects nothing; `with` opens and closes the sockets. ZeroMQ connects
    lazily and reconnects by itself, so a driver that is down, or restarts, needs no handling
    here: the bridge notices it from the updates stopping and resuming, and from the closed
    connection (`connection_event`). Every receive is non-blocking: the bridge calls them when
    its poller says the socket is readable (see `register`).
    """

    def __init__(self, host: str, base_port: int, name: str = "GPIO") -> None:
        """Prepare a link to the driver at `host`, ports `base_port`..`base_port + 3`."""
        self.host = host
        self.base_port = base_port
        self.name = name
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._config: zmq.Socket[bytes] | None = None
        self._keepalive: zmq.Socket[bytes] | None = None
        self._errors: zmq.Socket[bytes] | None = None
        self._updates: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None

    def _endpoint(self, offset: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.base_port + offset}"

    def __enter__(self) -> MalosLink:
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._context = context
        self._config = context.socket(zmq.PUSH)
        self._keepalive = context.socket(zmq.PUSH)
        # Only the newest ping matters; do not pile pings up while the driver is away.
        self._keepalive.setsockopt(zmq.CONFLATE, 1)
        self._errors = context.socket(zmq.SUB)
        self._updates = context.socket(zmq.SUB)
        self._updates.setsockopt(zmq.RCVHWM, UPDATE_QUEUE)
        sockets = (self._config, self._keepalive, self._errors, self._updates)
        # Configs queued at a clean stop (the end of a pulse) still get a moment to leave.
        self._config.setsockopt(zmq.LINGER, CONFIG_LINGER_MS)
        for offset, socket in enumerate(sockets):
            for option, value in TCP_OPTIONS.items():
                socket.setsockopt(option, value)
            if socket is not self._config:
                socket.setsockopt(zmq.LINGER, 0)
            if socket.type == zmq.SUB:
                socket.setsockopt(zmq.SUBSCRIBE, b"")
            socket.connect(self._endpoint(offset))
        # A MALOS restart closes the TCP connection: watching it tells a quick restart (which
        # zeroes the driver's shadow registers) long before the updates could be missed.
        self._monitor = self._updates.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
        )
        logger.info(
            "MALOS %s driver at %s:%d..%d", self.name, self.host, self.base_port, self.base_port + 3
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._updates is not None and self._monitor is not None:
            self._updates.disable_monitor()
        for socket in (self._monitor, self._config, self._keepalive, self._errors, self._updates):
            if socket is not None:
                socket.close()
        if self._context is not None:
            self._context.term()
        self._context = None

    def send_config(self, frame: bytes) -> bool:
        """Queue one serialized `DriverConfig`; False if ZeroMQ's queue is full."""
        assert self._config is not None, "use MalosLink in `with`"
        try:
            self._config.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def ping(self) -> None:
        """Send one keep-alive ping (an empty frame)."""
        assert self._keepalive is not None, "use MalosLink in `with`"
        with contextlib.suppress(zmq.Again):  # a ping is already waiting for the driver
            self._keepalive.send(b"", zmq.NOBLOCK)

    def sockets(self) -> LinkSockets:
        """The sockets the driver talks on, for a poller to watch (while open)."""
        updates, errors, monitor = self._updates, self._errors, self._monitor
        assert updates is not None and errors is not None and monitor is not None, "use `with`"
        return LinkSockets(updates, errors, monitor)

    def update_reader(self, on_frame: Callable[[bytes], None]) -> Callable[[], None]:
        """What the poll loop calls when the update socket is readable (while open): hands the
        next frame to `on_frame`. The hot path at rest, once per update (50 a second at 20 ms):
        it makes no call it can do without."""
        updates = self._updates
        assert updates is not None, "use MalosLink in `with`"
        again = zmq.Again

        def read() -> None:
            try:
                frame: bytes = updates.recv(_NOBLOCK)
            except again:
                return
            on_frame(frame)

        return read

    def error(self) -> bytes | None:
        """The next frame from the driver's error port, None if none is waiting."""
        return _receive(self._errors)

    def connection_event(self) -> bool | None:
        """True if the update connection opened, False if it closed, None if nothing happened."""
        assert self._monitor is not None, "use MalosLink in `with`"
        try:
            message = self._monitor.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        # The first frame starts with the event number, a native 16-bit integer. (Parsed here:
        # zmq.utils.monitor would import asyncio, several MB for one integer.)
        (event,) = struct.unpack_from("=H", message[0])
        return bool(event == zmq.EVENT_CONNECTED)


def _receive(socket: zmq.Socket[bytes] | None) -> bytes | None:
    assert socket is not None, "use MalosLink in `with`"
    try:
        frame: bytes = socket.recv(_NOBLOCK)
    except zmq.Again:
        return None
    return frame
