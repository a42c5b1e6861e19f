"""servo.py's rig: one Mosquitto, the simulated GPIO and servo drivers on one `Board` (in this
process, every config timed as it crosses the wire), and the bridge as a subprocess with servo
pins; perf.py's paho publisher and subscriber; a bare ZeroMQ hop into a second servo driver."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq
from common.board_rig import BoardRig
from common.ports import HOST, free_port_block
from perf_clients import Expectations, Publisher, Slot, Subscriber
from perf_settings import now_ns

from mqtt_gpio_bridge.malos.servo.codec import encode_servo_config
from mqtt_gpio_bridge.malos.servo.driver import FENCE
from mqtt_gpio_bridge.sim.driver import Board
from mqtt_gpio_bridge.sim.proto import DriverConfig
from mqtt_gpio_bridge.sim.servo import SimulatedServoDriver


def servo_angle(frame: bytes) -> tuple[int, int] | None:
    """(pin, angle) of a servo config frame, as the simulated driver reads it; None for the
    fence or anything unparsable."""
    if frame == FENCE:
        return None
    config = DriverConfig()
    try:
        config.ParseFromString(frame)
    except Exception:  # DecodeError: nothing the bridge sends but the fence
        return None
    return int(config.servo.pin), int(config.servo.angle)


class GpioWire:
    """The GPIO driver's `on_wire`: the time of every config received (the driver applies it
    right after, in the same thread, so this is when it lands). Appends only."""

    def __init__(self) -> None:
        self.configs: list[int] = []

    def __call__(self, kind: str, frame: bytes) -> None:
        if kind == "config":
            self.configs.append(now_ns())


class ServoWire:
    """The servo driver's `on_wire`: (time, pin, angle) of every angle applied (fences left
    out), and a slot hit for whoever waits for a (pin, angle) to land."""

    def __init__(self) -> None:
        self.applied: list[tuple[int, int, int]] = []
        self.received = 0
        self.expectations = Expectations()

    def __call__(self, kind: str, frame: bytes) -> None:
        t = now_ns()
        if kind == "config":
            self.received += 1
            return
        if kind == "applied" and (angle := servo_angle(frame)) is not None:
            self.applied.append((t, *angle))
            self.expectations.hit(angle, t)

    def expect(self, pin: int, angle: int) -> Slot:
        return self.expectations.expect((pin, angle))


class Rig(BoardRig):
    """Mosquitto, both simulated drivers on one board, and the bridge, for one phase.

    Use as a context manager: entering starts them all and returns once the bridge is online
    and the GPIO driver sends updates at `interval`; leaving stops them.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        pins: Sequence[dict[str, Any]],
        *,
        interval: float = 0.05,
        apply_delay: float = 0.0,
    ) -> None:
        self.gpio_wire = GpioWire()
        self.servo_wire = ServoWire()
        super().__init__(workdir, f"servo/{name}", interval, pins, self.gpio_wire)
        self.apply_delay = apply_delay
        self.servo: SimulatedServoDriver | None = None
        self.sub: Subscriber | None = None
        self.pub: Publisher | None = None

    def _start_more(self, taken: set[int]) -> dict[str, Any]:
        servo_port = free_port_block(4, taken=taken)
        self.servo = SimulatedServoDriver(
            HOST, servo_port, self.board, on_wire=self.servo_wire, apply_delay=self.apply_delay
        ).start()
        self.sub = Subscriber(self.broker.port, "servo-sub")
        self.sub.subscribe([f"{self.base}/status"], qos=1)
        self.pub = Publisher(self.broker.port)
        return {"servo_port": servo_port}

    def status_watch(self) -> dict[str, bytes]:
        assert self.sub is not None
        return self.sub.last

    def command(self, pin: int, angle: int, qos: int = 0) -> int:
        """Publish `angle` on the pin's set topic; the time just before publishing (ns)."""
        assert self.pub is not None
        started = now_ns()
        self.pub.publish(f"{self.base}/gpio/{pin}/set", str(angle), qos=qos)
        return started

    def _close_more(self) -> None:
        for client in (self.pub, self.sub):
            if client is not None:
                client.close()
        if self.servo is not None:
            self.servo.stop()


class ServoHop:
    """A bare ZeroMQ PUSH from this thread into a second simulated servo driver (its own
    board): the hop the bridge makes to MALOS with an angle, to the angle applied."""

    def __init__(self) -> None:
        self.wire = ServoWire()
        self.driver = SimulatedServoDriver(
            HOST, free_port_block(4), Board(), on_wire=self.wire
        ).start()
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.connect(f"tcp://{HOST}:{self.driver.base_port}")

    def sample(self, pin: int, angle: int) -> int | None:
        """One angle pushed -> applied at the driver (ns); None if it never landed."""
        slot = self.wire.expect(pin, angle)
        started = now_ns()
        self.push.send(encode_servo_config(pin, angle))
        at = slot.wait()
        if at is None:
            self.wire.expectations.forget((pin, angle))
        return None if at is None else at - started

    def close(self) -> None:
        self.push.close(0)
        self.context.term()
        self.driver.stop()
