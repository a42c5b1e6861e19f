"""scale.py's error, port blocks and MQTT side: a recorder of every message, retained states."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from common import BenchmarkError
from common.ports import HOST, free_port_block
from paho.mqtt.enums import CallbackAPIVersion

STEP_TIMEOUT = 10.0
"""Seconds for one command to reach its board, or one input to reach MQTT."""


class ScaleError(BenchmarkError):
    """The run cannot go on (a peer would not start, a bridge died)."""


# -- ports and processes ---------------------------------------------------------------------


def reserve_ports(count: int, taken: set[int]) -> int:
    """A block of `count` free ports on HOST, none handed out before; added to `taken`."""
    base = free_port_block(count, taken)
    taken |= set(range(base, base + count))
    return base


# -- MQTT ------------------------------------------------------------------------------------


@dataclass
class Message:
    at: float
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode(errors="replace")


class Recorder:
    """A paho client that keeps every message it receives on the given filters."""

    def __init__(self, port: int, filters: list[str]) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"scale-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.connect(HOST, port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(topic, 1) for topic in filters])
        if not self._subscribed.wait(STEP_TIMEOUT):
            raise ScaleError("the MQTT recorder could not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Message(time.monotonic(), message.topic, bytes(message.payload), message.retain)
            )

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def last(self, topic: str) -> Message | None:
        with self._lock:
            for message in reversed(self.messages):
                if message.topic == topic:
                    return message
        return None

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(STEP_TIMEOUT)

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


def read_retained(port: int, topic_filter: str, quiet: float = 1.0) -> dict[str, bytes]:
    """Every retained message under `topic_filter`, as a new subscriber gets them."""
    recorder = Recorder(port, [topic_filter])
    try:
        seen = -1
        while seen != len(recorder.snapshot()):
            seen = len(recorder.snapshot())
            time.sleep(quiet)
        return {m.topic: m.payload for m in recorder.snapshot() if m.retain and m.payload}
    finally:
        recorder.close()
