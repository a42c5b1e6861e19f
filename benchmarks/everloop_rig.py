"""everloop.py's rig: one Mosquitto, the simulated GPIO and Everloop drivers (in this process,
every image timed as it is shown) and the bridge as a subprocess, with or without the LED ring
configured; perf.py's paho publisher and subscriber; a bare ZeroMQ hop into a second Everloop
driver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import zmq
from common.board_rig import BoardRig
from common.ports import HOST, free_port_block, wait_for
from perf_clients import Expectations, Publisher, Slot, Subscriber
from perf_settings import now_ns

from mqtt_gpio_bridge.malos.everloop.codec import CREATOR_LEDS, encode_image
from mqtt_gpio_bridge.sim.everloop import Led, SimulatedEverloopDriver
from mqtt_gpio_bridge.sim.proto import DriverConfig

PINS: list[dict[str, Any]] = [
    *({"pin": p, "mode": "output", "initial": "off"} for p in range(4)),
    *({"pin": p, "mode": "input"} for p in range(4, 8)),
]
INTERVAL = 0.1
"""The GPIO driver's update interval: the bridge's default."""
RING_ONLINE_TIMEOUT = 10.0
"""Seconds for the ring's driver status to read `online` once the bridge is (its first update
comes within the simulated driver's 1 s default delay)."""


def first_led(frame: bytes) -> Led | None:
    """The first LED of an image config frame, as the simulated driver reads it; None for a
    frame without an image or an unparsable one."""
    config = DriverConfig()
    try:
        config.ParseFromString(frame)
    except Exception:  # DecodeError: nothing the bridge sends
        return None
    if not config.image.led:
        return None
    led = config.image.led[0]
    return int(led.red), int(led.green), int(led.blue), int(led.white)


class RingWire:
    """The Everloop driver's `on_wire`: a slot hit, with the time (ns), for whoever waits for
    an image whose first LED is a given colour, once the driver showed it."""

    def __init__(self) -> None:
        self.expectations = Expectations()

    def __call__(self, kind: str, frame: bytes) -> None:
        if kind != "applied":
            return
        t = now_ns()
        if (led := first_led(frame)) is not None:
            self.expectations.hit(led, t)

    def expect(self, led: Led) -> Slot:
        return self.expectations.expect(led)


def _ignore(_kind: str, _frame: bytes) -> None:
    """The GPIO driver's `on_wire`: nothing of it is measured here."""


class Rig(BoardRig):
    """Mosquitto, the simulated GPIO driver, the simulated Everloop driver (only when `fps`
    is given) and the bridge, for one phase.

    Use as a context manager: entering starts them all and returns once the bridge is online,
    the GPIO driver sends updates at INTERVAL and (with the ring) the ring's driver status
    reads `online`, so the bridge knows the LED count; leaving stops them.
    """

    def __init__(self, workdir: Path, name: str, fps: int | None) -> None:
        """`fps`: the config's `everloop.fps`; None for a bridge without `everloop`."""
        super().__init__(workdir, f"everloop/{name}", INTERVAL, PINS, _ignore)
        self.fps = fps
        self.wire = RingWire()
        self.ring: SimulatedEverloopDriver | None = None
        self.sub: Subscriber | None = None
        self.pub: Publisher | None = None

    @property
    def ring_status_topic(self) -> str:
        return f"{self.base}/malos/everloop/status"

    def _start_more(self, taken: set[int]) -> dict[str, Any]:
        self.sub = Subscriber(self.broker.port, "everloop-sub")
        self.sub.subscribe([f"{self.base}/status", self.ring_status_topic], qos=1)
        self.pub = Publisher(self.broker.port)
        if self.fps is None:
            return {}
        ring_port = free_port_block(4, taken=taken)
        self.ring = SimulatedEverloopDriver(HOST, ring_port, on_wire=self.wire).start()
        return {"everloop_port": ring_port}

    def _config(self) -> dict[str, Any]:
        ring = {} if self.fps is None else {"everloop": {"fps": self.fps}}
        return {"pins": list(self.pins), **ring}

    def _start(self) -> None:
        super()._start()
        if self.fps is not None:
            sub = self.sub
            assert sub is not None
            wait_for(
                lambda: sub.last.get(self.ring_status_topic) == b"online",
                RING_ONLINE_TIMEOUT,
                "the ring's driver to be online",
            )

    def status_watch(self) -> dict[str, bytes]:
        assert self.sub is not None
        return self.sub.last

    def command(self, payload: dict[str, Any], qos: int = 0) -> int:
        """Publish `payload` (JSON) on `<base>/everloop/set`; the time just before (ns)."""
        assert self.pub is not None
        text = json.dumps(payload)
        started = now_ns()
        self.pub.publish(f"{self.base}/everloop/set", text, qos=qos)
        return started

    def shown_times(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """The monotonic instants of the images the ring showed from `since` to `until`."""
        assert self.ring is not None
        return [image.at for image in self.ring.images if since <= image.at <= until]

    def _close_more(self) -> None:
        for client in (self.pub, self.sub):
            if client is not None:
                client.close()
        if self.ring is not None:
            self.ring.stop()


class RingHop:
    """A bare ZeroMQ PUSH from this thread into a second simulated Everloop driver: the hop
    the bridge makes to MALOS with an image, to the image shown."""

    def __init__(self) -> None:
        self.wire = RingWire()
        self.driver = SimulatedEverloopDriver(HOST, free_port_block(4), on_wire=self.wire).start()
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://{HOST}:{self.driver.base_port}")

    def sample(self, color: Led) -> int | None:
        """A whole ring of `color` pushed -> shown at the driver (ns); None if it never was.
        The frame is encoded before the clock starts, as the bridge's is before its send."""
        frame = encode_image((color,) * CREATOR_LEDS)
        slot = self.wire.expect(color)
        started = now_ns()
        self.push.send(frame)
        at = slot.wait()
        if at is None:
            self.wire.expectations.forget(color)
        return None if at is None else at - started

    def close(self) -> None:
        self.push.close(0)
        self.context.term()
        self.driver.stop()
