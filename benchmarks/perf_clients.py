"""perf.py's timing tools: one awaited event, MQTT clients, the instrumented driver."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from common.ports import HOST
from paho.mqtt.enums import CallbackAPIVersion
from perf_settings import SAMPLE_TIMEOUT, PerfError, now_ns

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.malos.gpio.codec import PinMode, decode_levels
from mqtt_gpio_bridge.sim.codec import decode_pin_config

# -- waiting for one event -------------------------------------------------------------------


class Slot:
    """One awaited event: the thread that sees it stores its time and wakes the waiter."""

    __slots__ = ("event", "t")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.t = 0

    def hit(self, t: int) -> None:
        self.t = t
        self.event.set()

    def wait(self, timeout: float = SAMPLE_TIMEOUT) -> int | None:
        return self.t if self.event.wait(timeout) else None


class Expectations:
    """Slots keyed by what will be seen; a hit on a key nobody waits for is ignored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Any, Slot] = {}

    def expect(self, key: Any) -> Slot:
        slot = Slot()
        with self._lock:
            self._slots[key] = slot
        return slot

    def hit(self, key: Any, t: int) -> None:
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None:
            slot.hit(t)

    def forget(self, key: Any) -> None:
        with self._lock:
            self._slots.pop(key, None)


# -- MQTT clients ----------------------------------------------------------------------------


def _client(role: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=f"perf-{role}-{uuid.uuid4().hex[:8]}")


def _connect(client: paho.Client, port: int, start_loop: Callable[[], object]) -> None:
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect(HOST, port, keepalive=60)
    start_loop()
    if not connected.wait(10):
        raise PerfError(f"{client._client_id!r} could not connect to the broker")


class Publisher:
    """The paho client that sends commands and baseline messages.

    Its network loop runs in a thread of ours (`loop_forever`), not paho's `loop_start`: with
    no paho thread registered, `publish()` writes to the socket at once from the calling thread,
    as `mosquitto_pub` does, instead of waking a network thread first. The loop thread only
    reads (CONNACK, PUBACKs) and writes what a full socket buffer held back.
    """

    def __init__(self, port: int) -> None:
        self.client = _client("pub")
        self.client.max_inflight_messages_set(0)  # unlimited: a burst is not held back here
        self.client.max_queued_messages_set(0)
        self._thread = threading.Thread(
            target=self.client.loop_forever, name="perf-pub", daemon=True
        )
        _connect(self.client, port, self._thread.start)

    def publish(self, topic: str, payload: str, qos: int = 0) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self._thread.join(5)


class Subscriber:
    """A paho client (with paho's own network thread) that timestamps every message on arrival.

    `expect(topic, payload)` before the action; the slot is hit with the arrival time, taken
    first thing in `on_message`. The last payload of every topic is kept as well.
    """

    def __init__(self, port: int, role: str = "sub", *, count_topic: str | None = None) -> None:
        self.client = _client(role)
        self.expectations = Expectations()
        self.last: dict[str, bytes] = {}
        self.count_topic = count_topic
        self.counted: list[int] = []
        self.credits: threading.Semaphore | None = None
        """Released once per counted message (flow control of a windowed burst)."""
        self._acked: set[int] = set()
        self._cond = threading.Condition()
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        _connect(self.client, port, self.client.loop_start)

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        t = now_ns()
        if message.topic == self.count_topic:
            self.counted.append(t)
            if self.credits is not None:
                self.credits.release()
            return
        self.last[message.topic] = bytes(message.payload)
        self.expectations.hit((message.topic, message.payload), t)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def subscribe(self, topics: Iterable[str], qos: int = 0) -> None:
        """Subscribe and return once the broker acknowledged (retained messages follow)."""
        result, mid = self.client.subscribe([(topic, qos) for topic in topics])
        if result != paho.MQTT_ERR_SUCCESS or mid is None:
            raise PerfError(f"subscribe failed: {result}")
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acked, 10):
                raise PerfError("no SUBACK in 10 s")

    def expect(self, topic: str, payload: str) -> Slot:
        return self.expectations.expect((topic, payload.encode()))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


# -- the simulated driver, instrumented ------------------------------------------------------


@dataclass
class UpdateLog:
    """When the driver sent each update that carried a changed set of levels.

    Fed by `Wire` just before the simulated driver sends an update frame: the start of the
    state latency, "update published -> state received", without the wait for the driver's
    next periodic tick (and without the simulator's own encoding, which MALOS does in C++).
    """

    def __init__(self) -> None:
        self.changes: list[tuple[int, int]] = []
        """(time ns, levels) of each update whose levels differ from the previous one's."""
        self._previous: int | None = None

    def sent(self, t: int, frame: bytes) -> None:
        levels = decode_levels(frame)
        if levels != self._previous:
            self._previous = levels
            self.changes.append((t, levels))

    def sent_with(self, since: int, pin: int, level: int) -> int | None:
        """Time of the first update after `changes[since]` that showed `pin` at `level`."""
        for t, value in self.changes[since:]:
            if (value >> pin) & 1 == level:
                return t
        return None


class ConfigTap:
    """Every config that reached the driver, with its time, and the awaited ones.

    Fed by `Wire` the moment the simulated driver has received the frame, before its own
    decoding and applying (as the ZeroMQ baseline stops at the receive): "the DriverConfig
    arriving at the driver's config socket".
    """

    def __init__(self) -> None:
        self.records: list[tuple[int, int, int, int]] = []
        """(time ns, pin (-1: none), mode, value) of every config."""
        self.expectations = Expectations()
        self.credits: threading.Semaphore | None = None
        """Released once per config (flow control of a windowed burst)."""

    def received(self, t: int, frame: bytes) -> None:
        try:
            config = decode_pin_config(frame)
        except CodecError:
            config = None
        if config is None or config.pin is None:
            self.write(t, -1, -1, -1)
        else:
            self.write(t, config.pin, config.value, config.mode)

    def write(self, t: int, pin: int, value: int, mode: int = PinMode.OUTPUT) -> None:
        """One write seen at the "hardware" at time t: a driver config, or an mqtt-io line."""
        if self.credits is not None:
            self.credits.release()
        self.records.append((t, pin, mode, value))
        self.expectations.hit((pin, value), t)


class Wire:
    """The simulated driver's `on_wire` callback: the time first, then the frame to `updates`
    (an update about to be sent) or to `configs` (a config just received)."""

    def __init__(self, updates: UpdateLog, configs: ConfigTap | None) -> None:
        self.updates = updates
        self.configs = configs

    def __call__(self, kind: str, frame: bytes) -> None:
        t = now_ns()
        if kind == "update":
            self.updates.sent(t, frame)
        elif self.configs is not None:
            self.configs.received(t, frame)
