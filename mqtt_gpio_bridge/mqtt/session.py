"""The bridge's presence on the broker across connections: one `MqttConnection` at a time,
opened, watched and replaced as the reconnect policy says, all from the poll loop."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import BridgeConfig
from ..core.timers import Timers
from ..errors import BrokerError, ConfigError
from .connection import OPERATION_TIMEOUT, Message, MqttConnection
from .reconnect import SESSION_SETTLED, SHORT_SESSIONS_HINT, ReconnectPolicy

logger = logging.getLogger(__name__)

GOODBYE_TIMEOUT = 2.0
"""Seconds a clean stop waits for the broker to acknowledge the goodbye message."""


class MqttSession:
    """Connects, notices the end of each session and reconnects; the owner polls `fileno()`.

    `on_connected` runs at each accepted session (subscribe and publish there), `on_message`
    for each message, `before_connect` before each attempt (connecting blocks for a moment).
    Publishing without a session does nothing: the owner publishes again at the next one.
    """

    def __init__(
        self,
        config: BridgeConfig,
        timers: Timers,
        *,
        will: tuple[str, str],
        on_connected: Callable[[], None],
        on_message: Callable[[Message], None],
        before_connect: Callable[[], None] = lambda: None,
    ) -> None:
        """Prepare the session; nothing is opened before `start()`."""
        self.config = config
        self._timers = timers
        self._will = will
        self._on_connected = on_connected
        self._on_message = on_message
        self._before_connect = before_connect
        mqtt = config.mqtt
        self._policy = ReconnectPolicy(mqtt.reconnect_min, mqtt.reconnect_max, clock=timers.clock)
        self._connection: MqttConnection | None = None

    def start(self) -> None:
        """Make the first attempt as soon as the poll loop runs."""
        self._timers.call_later(0, self._connect)

    @property
    def connected(self) -> bool:
        """Whether a session is open and accepted."""
        return self._connection is not None and self._connection.connected

    # -- fed by the poll loop ------------------------------------------------------------------

    def fileno(self) -> int | None:
        """The socket to poll, None without a connection (one paho closed ends here)."""
        connection = self._connection
        if connection is None:
            return None
        fileno = connection.fileno()
        if fileno is None:  # closed by a publish whose write failed
            self._ended(connection)
        return fileno

    def wants_write(self) -> bool:
        """Whether paho has bytes for the socket (poll it for writing too)."""
        return self._connection is not None and self._connection.wants_write()

    def handle(self, readable: bool, writable: bool) -> None:
        """The polled socket is readable and/or writable."""
        connection = self._connection
        if connection is None:
            return
        if (readable and not connection.read()) or (writable and not connection.write()):
            self._ended(connection)

    def tick(self) -> None:
        """Keep-alive bookkeeping; about once a second."""
        connection = self._connection
        if connection is not None and not connection.tick():
            self._ended(connection)

    # -- requests ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, *, qos: int, retain: bool = False) -> None:
        """Publish now if a session is open; otherwise nothing (see the class)."""
        connection = self._connection
        if connection is not None:
            connection.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe in the current session."""
        if self._connection is not None:
            self._connection.subscribe(topic_filter, qos=qos)

    def unsubscribe(self, topic_filter: str) -> None:
        """Leave a filter in the current session."""
        if self._connection is not None:
            self._connection.unsubscribe(topic_filter)

    def current(self) -> object | None:
        """A token of the open session: a timer can check that its session is still the one."""
        return self._connection if self.connected else None

    def close(self, goodbye: tuple[str, str] | None = None) -> None:
        """End the session; on a clean stop say `goodbye` (topic, payload) first, retained,
        because the broker sends the last will only when a client vanishes."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if goodbye is not None:
            info = connection.publish(goodbye[0], goodbye[1], qos=1, retain=True)
            if info is not None and not connection.pump(info.is_published, GOODBYE_TIMEOUT):
                logger.debug("could not say goodbye: %s", connection.problem or "no answer in time")
        connection.close()

    # -- the lifecycle of one connection ----------------------------------------------------------

    def _connect(self) -> None:
        connection = MqttConnection(
            self.config,
            on_message=self._on_message,
            on_connected=lambda: self._accepted(connection),
            will=self._will,
        )
        self._before_connect()
        try:
            connection.open()
        except (BrokerError, ConfigError, OSError) as exc:  # OSError: refused, unreachable, TLS
            connection.close()
            self._retry(connection, exc)
            return
        self._connection = connection
        self._timers.call_later(OPERATION_TIMEOUT, lambda: self._check_connack(connection))

    def _accepted(self, connection: MqttConnection) -> None:
        mqtt = self.config.mqtt
        logger.info("connected to MQTT broker %s:%d", mqtt.host, mqtt.port)
        self._policy.connected()
        self._on_connected()

    def _check_connack(self, connection: MqttConnection) -> None:
        if self._connection is connection and not connection.connected:
            connection.problem = BrokerError(f"no answer to CONNECT within {OPERATION_TIMEOUT:g} s")
            self._ended(connection)

    def _ended(self, connection: MqttConnection) -> None:
        if self._connection is not connection:
            return
        self._connection = None
        connection.close()
        if self._policy.session_ended():
            self._name_the_likely_cause()
        self._retry(connection, connection.problem or BrokerError("the connection ended"))

    def _retry(self, connection: MqttConnection, exc: Exception) -> None:
        mqtt = self.config.mqtt
        problem = connection.describe(exc)
        retry = self._policy.failed(f"{type(exc).__name__}: {exc}")
        # One clear line per new problem; the same one again only at debug level.
        logger.log(
            logging.WARNING if retry.warn else logging.DEBUG,
            "MQTT broker %s:%d: %s; retrying in %.1f s",
            mqtt.host,
            mqtt.port,
            problem,
            retry.delay,
        )
        self._timers.call_later(retry.delay, self._connect)

    def _name_the_likely_cause(self) -> None:
        key = (
            "mqtt.client_id"
            if self.config.mqtt.client_id is not None
            else "homeassistant.node_id (the client id is made from it)"
        )
        logger.warning(
            "the broker ended %d sessions in a row less than %g s after accepting them; "
            "unless it restarted each time, another client is connected with client id "
            "%r (a broker drops the older connection when the same id connects again): "
            "give each bridge its own %s",
            SHORT_SESSIONS_HINT,
            SESSION_SETTLED,
            self.config.client_id,
            key,
        )


__all__ = ["GOODBYE_TIMEOUT", "MqttSession"]
