"""soak.py's MQTT clients: the status monitor, the commander, a retained-state reader."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from common.mosquitto import Mosquitto
from common.ports import HOST
from paho.mqtt.enums import CallbackAPIVersion
from soak_common import ACK_TIMEOUT, SEND_DEADLINE, SoakError, now

# -- MQTT clients ----------------------------------------------------------------------------


@dataclass
class StatusEvent:
    at: float
    instance: int
    payload: str
    retained: bool


class Monitor:
    """A long-lived client on `<base>/status`: when it changed, and on which broker process."""

    def __init__(
        self, broker: Mosquitto, status_topic: str, bridge_alive: Callable[[], bool]
    ) -> None:
        self.broker = broker
        self.bridge_alive = bridge_alive
        self.status_topic = status_topic
        self.events: list[StatusEvent] = []
        self.bridge_seen_on = 0
        """Broker instance on which a status from the bridge was last seen (it is subscribed)."""
        self._connection_instance = 0
        self._cond = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"soak-monitor-{uuid.uuid4().hex[:8]}"
        )
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async(HOST, broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        with self._cond:
            # The previous broker process has exited before `instance` moves on, so a CONNACK
            # seen now comes from the current one.
            self._connection_instance = self.broker.instance
        client.subscribe(self.status_topic, qos=1)

    def _on_message(self, _client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        with self._cond:
            self.events.append(
                StatusEvent(
                    now(),
                    self._connection_instance,
                    message.payload.decode(errors="replace"),
                    bool(message.retain),
                )
            )
            # Only the bridge publishes here (or its will, sent for it by the broker): it
            # has connected to this broker, and it subscribes to `set` before it publishes.
            self.bridge_seen_on = self._connection_instance
            self._cond.notify_all()

    def wait_bridge_subscribed(self, deadline: float) -> None:
        with self._cond:
            while self.bridge_seen_on != self.broker.instance:
                left = deadline - now()
                if not self.bridge_alive():
                    raise SoakError("the bridge process has died")
                if left <= 0:
                    raise SoakError(
                        f"the bridge published nothing on broker #{self.broker.instance}"
                    )
                self._cond.wait(min(left, 0.5))

    def first(
        self, payload: str, *, since: float, instance: int | None, timeout: float
    ) -> StatusEvent | None:
        """Wait for the first status `payload` received at or after `since` (on `instance`)."""
        deadline = now() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if (
                        event.payload == payload
                        and event.at >= since
                        and (instance is None or event.instance == instance)
                    ):
                        return event
                left = deadline - now()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


class Commander:
    """Sends one command at a time and returns only once the broker acknowledged it."""

    def __init__(self, broker: Mosquitto, monitor: Monitor) -> None:
        self.broker = broker
        self.monitor = monitor
        self.client: paho.Client | None = None
        self.client_instance = 0
        self._lost = threading.Event()
        self.attempts = 0
        self.unacknowledged = 0
        self.connections = 0

    def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()

    @staticmethod
    def _new_client() -> tuple[paho.Client, threading.Event, threading.Event]:
        # A fresh client each time: nothing queued in a dead one is ever sent again.
        lost = threading.Event()
        connected = threading.Event()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"soak-cmd-{uuid.uuid4().hex[:8]}",
            reconnect_on_failure=False,
        )

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            (lost if reason.is_failure else connected).set()

        client.on_connect = on_connect
        client.on_disconnect = lambda *_args: lost.set()
        return client, connected, lost

    def _connect(self, deadline: float) -> paho.Client:
        while True:
            if now() > deadline:
                raise SoakError("could not connect to the broker to send a command")
            client, connected, lost = self._new_client()
            instance = self.broker.instance
            try:
                client.connect(HOST, self.broker.port, keepalive=10)
            except OSError:
                time.sleep(0.05)
                continue
            client.loop_start()
            if connected.wait(2.0) and not lost.is_set():
                self.client, self._lost, self.client_instance = client, lost, instance
                self.connections += 1
                return client
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
            time.sleep(0.05)

    def _acknowledged(self, info: paho.MQTTMessageInfo) -> bool:
        end = now() + ACK_TIMEOUT
        while True:
            try:
                info.wait_for_publish(0.05)
                if info.is_published():
                    return True
            except (RuntimeError, ValueError):
                return False
            if self._lost.is_set() or now() > end:
                return False

    def send(self, topic: str, payload: str) -> tuple[float, int]:
        """Publish with QoS 1 until acknowledged; return (time of the PUBACK, broker instance)."""
        deadline = now() + SEND_DEADLINE
        while True:
            self.monitor.wait_bridge_subscribed(deadline)
            client = self.client
            if (
                client is None
                or self._lost.is_set()
                or self.client_instance != self.broker.instance
            ):
                self._drop()
                client = self._connect(deadline)
                continue  # the broker may have restarted while connecting: check the gate again
            self.attempts += 1
            info = client.publish(topic, payload, qos=1)
            if self._acknowledged(info):
                return now(), self.client_instance
            self.unacknowledged += 1
            self._drop()
            if now() > deadline:
                raise SoakError(f"{topic} {payload!r} not acknowledged in {SEND_DEADLINE} s")

    def close(self) -> None:
        self._drop()


def read_retained(port: int, topics: list[str], timeout: float = 2.0) -> dict[str, str] | None:
    """Retained payloads of `topics`, read by a fresh client (None if the broker is away)."""
    found: dict[str, str] = {}
    done = threading.Event()
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-read-{uuid.uuid4().hex[:8]}")

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        if message.retain:
            found[message.topic] = message.payload.decode(errors="replace")
            if len(found) == len(topics):
                done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    try:
        client.connect(HOST, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        client.subscribe([(topic, 1) for topic in topics])
        # Retained messages follow the SUBACK at once; a missing topic has none.
        if subscribed.wait(timeout):
            done.wait(0.3)
        return dict(found)
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()
