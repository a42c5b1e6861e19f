"""The MALOS side: the four ZeroMQ sockets of the GPIO driver, as asyncio sockets."""

from __future__ import annotations

import contextlib
import logging
from types import TracebackType

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

logger = logging.getLogger(__name__)

CONFIG_LINGER_MS = 1000
UPDATE_QUEUE = 100
"""Updates kept while the bridge is busy; older ones are dropped by ZeroMQ, never by us."""


class MalosLink:
    """Client side of the MALOS GPIO driver: config and keep-alive PUSH, errors and updates SUB.

    Creating the object connects nothing; `async with` opens and closes the sockets. ZeroMQ
    connects lazily and reconnects by itself, so a driver that is down, or restarts, needs no
    handling here: the bridge notices it from the updates stopping and resuming.
    """

    def __init__(self, host: str, base_port: int) -> None:
        """Prepare a link to the driver at `host`, ports `base_port`..`base_port + 3`."""
        self.host = host
        self.base_port = base_port
        self._context: zmq.asyncio.Context | None = None
        self._config: zmq.asyncio.Socket | None = None
        self._keepalive: zmq.asyncio.Socket | None = None
        self._errors: zmq.asyncio.Socket | None = None
        self._updates: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None

    def _endpoint(self, offset: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.base_port + offset}"

    async def __aenter__(self) -> MalosLink:
        context = zmq.asyncio.Context()
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
        logger.info("MALOS GPIO driver at %s:%d..%d", self.host, self.base_port, self.base_port + 3)
        return self

    async def __aexit__(
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
        assert self._config is not None, "use MalosLink in `async with`"
        try:
            self._config.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def ping(self) -> None:
        """Send one keep-alive ping (an empty frame)."""
        assert self._keepalive is not None, "use MalosLink in `async with`"
        with contextlib.suppress(zmq.Again):  # a ping is already waiting for the driver
            self._keepalive.send(b"", zmq.NOBLOCK)

    async def next_update(self) -> bytes:
        """Wait for the next frame on the driver's update port."""
        assert self._updates is not None, "use MalosLink in `async with`"
        frame: bytes = await self._updates.recv()
        return frame

    async def next_error(self) -> bytes:
        """Wait for the next frame on the driver's error port."""
        assert self._errors is not None, "use MalosLink in `async with`"
        frame: bytes = await self._errors.recv()
        return frame

    async def next_connection_event(self) -> bool:
        """Wait until the update connection opens (True) or closes (False)."""
        assert self._monitor is not None, "use MalosLink in `async with`"
        event = parse_monitor_message(await self._monitor.recv_multipart())
        return bool(event["event"] == zmq.EVENT_CONNECTED)
