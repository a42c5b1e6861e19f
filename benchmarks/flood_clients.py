"""flood.py's MQTT side (a recorder, flood senders) and the simulated driver's side."""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from common import BenchmarkError
from common.ports import HOST
from flood_common import OUTPUT_MODE, PROBE_TIMEOUT, SEND_GRACE
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.sim.codec import PinConfig, decode_pin_config

# -- MQTT clients ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    at: float
    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """A paho client with its own network thread keeping every message on its filters.

    It subscribes with QoS 0, so that acknowledging does not slow it down; a subscriber that
    still falls behind loses messages at the broker, which logs it (see `Rig.drop_notices`).
    """

    def __init__(self, port: int, filters: Sequence[str]) -> None:
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"flood-rec-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect(HOST, port, keepalive=60)
        self.client.loop_start()
        self.client.subscribe([(topic, 0) for topic in filters])
        if not subscribed.wait(10):
            raise BenchmarkError("the recording MQTT client could not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        received = Received(time.monotonic(), message.topic, bytes(message.payload), message.retain)
        with self._lock:
            self._messages.append(received)

    def messages(self, since: float = -math.inf, until: float = math.inf) -> list[Received]:
        """Messages received from `since` up to `until` (monotonic clock)."""
        with self._lock:
            return [m for m in self._messages if since <= m.at <= until]

    def last(self, topic: str) -> Received | None:
        with self._lock:
            for message in reversed(self._messages):
                if message.topic == topic:
                    return message
        return None

    def quiet_after(
        self, since: float, wanted: Callable[[Received], bool], quiet: float, cap: float
    ) -> float | None:
        """Wait until no wanted message arrived for `quiet` s; the time of the last one (None:
        still arriving when `cap` seconds from `since` had passed)."""
        while True:
            with self._lock:
                last = next((m.at for m in reversed(self._messages) if wanted(m)), since)
            moment = time.monotonic()
            if moment - max(last, since) >= quiet:
                return last
            if moment - since > cap:
                return None
            time.sleep(0.1)

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


@dataclass(frozen=True)
class Sent:
    count: int
    started: float
    ended: float
    """When the last byte was handed to the socket."""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def publish_flood(port: int, topic: str, payload: str, count: int, seconds: float) -> Sent:
    """Publish `count` QoS 0 messages from one paho client driven by the calling thread.

    Without a network thread paho writes each publish to the socket at once. The messages are
    spread evenly over `seconds` (0: back to back); a sender that falls behind sends as fast
    as it can and stops where it is `SEND_GRACE` seconds after its schedule.
    """
    connected = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"flood-send-{uuid.uuid4().hex[:8]}"
    )
    client.on_connect = lambda *_args: connected.set()
    client.connect(HOST, port, keepalive=60)
    deadline = time.monotonic() + 10
    while not connected.is_set():
        client.loop(0.05)
        if time.monotonic() > deadline:
            raise BenchmarkError("a flood sender got no CONNACK")
    fine = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)
    sent = 0
    started = time.monotonic()
    give_up = started + seconds + SEND_GRACE
    try:
        while sent < count:
            moment = time.monotonic()
            if moment > give_up:
                break
            due = count if seconds <= 0 else min(count, int((moment - started) * count / seconds))
            if sent >= due:
                time.sleep(0.001)
                continue
            while sent < due:
                info = client.publish(topic, payload, qos=0)
                if info.rc not in fine:
                    raise BenchmarkError(f"a flood publish failed: {paho.error_string(info.rc)}")
                sent += 1
        while client.want_write():  # what the socket did not take yet
            if client.loop_write() not in fine:
                raise BenchmarkError("a flood sender lost its connection")
            time.sleep(0.001)
        ended = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    return Sent(sent, started, ended)


# -- the simulated driver's side --------------------------------------------------------------


class ConfigTap:
    """The simulated driver's `on_wire` hook: counts configs per (pin, mode, value) as they
    cross its socket, and timestamps the one a single command waits for."""

    def __init__(self) -> None:
        self._decoded: dict[bytes, PinConfig | None] = {}
        self.counts: Counter[tuple[int | None, int, int]] = Counter()
        self.last_at: dict[int | None, float] = {}
        self._lock = threading.Lock()
        self._awaited: tuple[int, int] | None = None
        self._arrived = threading.Event()
        self._arrived_at = 0.0

    def __call__(self, kind: str, frame: bytes) -> None:
        if kind != "config":
            return
        at = time.monotonic()
        if frame in self._decoded:
            config = self._decoded[frame]
        else:
            try:
                config = decode_pin_config(frame)
            except CodecError:
                config = None
            self._decoded[frame] = config
        if config is None:
            return
        self.counts[config.pin, config.mode, config.value] += 1
        self.last_at[config.pin] = at
        with self._lock:
            if self._awaited == (config.pin, config.value) and config.mode == OUTPUT_MODE:
                self._awaited = None
                self._arrived_at = at
                self._arrived.set()

    def expect(self, pin: int, value: int) -> None:
        """Wait for the next output config of `pin` with `value` (see `arrival`)."""
        with self._lock:
            self._arrived.clear()
            self._awaited = (pin, value)

    def arrival(self, timeout: float) -> float | None:
        """When the expected config crossed the socket; None if it did not within `timeout`."""
        if not self._arrived.wait(timeout):
            with self._lock:
                self._awaited = None
            return None
        return self._arrived_at


class Prober:
    """Single commands on one output pin: QoS 1 `ON`/`OFF` publish -> its config at the driver."""

    def __init__(self, port: int, tap: ConfigTap, pin: int, topic: str) -> None:
        self.tap, self.pin, self.topic = tap, pin, topic
        self.level = 0  # `initial: "off"`
        connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"flood-probe-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda *_args: connected.set()
        self.client.connect(HOST, port, keepalive=60)
        self.client.loop_start()
        if not connected.wait(10):
            raise BenchmarkError("the probing MQTT client got no CONNACK")

    def probe(self) -> float | None:
        """One command to the other level; milliseconds until its config, None if lost."""
        self.level = 1 - self.level
        self.tap.expect(self.pin, self.level)
        started = time.monotonic()
        self.client.publish(self.topic, "ON" if self.level else "OFF", qos=1)
        arrived = self.tap.arrival(PROBE_TIMEOUT)
        return None if arrived is None else (arrived - started) * 1000

    def probe_while(self, running: Callable[[], bool], gap: float) -> list[float | None]:
        """A command every `gap` seconds while `running()` holds."""
        results = []
        while running():
            started = time.monotonic()
            results.append(self.probe())
            time.sleep(max(0.0, gap - (time.monotonic() - started)))
        return results

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()
