"""The MQTT side: one broker connection driven from the bridge's poll loop, backoff, problems.

paho-mqtt does the protocol; this module only opens its socket and feeds it when the poller
says so (`loop_read`, `loop_write`, `loop_misc`), so no thread of paho's runs and nothing
crosses between threads.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ..config import BridgeConfig, TlsConfig
from ..errors import BrokerError, ConfigError

# CONNACK codes for bad credentials: MQTT 3.1.1 (4, 5) and MQTT 5 (134, 135).
_REFUSED_CREDENTIALS = frozenset({4, 5, 134, 135})

OPERATION_TIMEOUT = 5.0
"""Seconds the broker has to accept a connection (CONNACK) before the attempt is given up."""
CONNECT_TIMEOUT = 3.0
"""Seconds for the TCP connection and TLS handshake, which block the loop; the MALOS driver
stops sending updates after 5 s without a ping, so this stays well below that."""


class _LibraryProblems(logging.Filter):
    """Holds back paho's own warnings and errors, keeping the last one for our report.

    paho logs a socket error (a TLS alert such as "certificate required") when it happens,
    while the session then only ends with "connection lost". The bridge reports both in its one
    line per problem instead (see `MqttConnection.describe`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self.last = record.getMessage()
        return False


LIBRARY_LOGGER = logging.getLogger(__name__ + ".paho")
"""Where paho's debug lines go (each connection's problems are held back by its own filter)."""

Message = paho.MQTTMessage


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether `topic` falls under `topic_filter` (wildcards `+` and `#`)."""
    return bool(paho.topic_matches_sub(topic_filter, topic))


class MqttConnection:
    """One session with the configured broker, fed by its owner's poll loop.

    Creating it opens nothing; `open()` connects (blocking for at most `CONNECT_TIMEOUT`), the
    CONNACK then arrives through `read()` and calls `on_connected`. When a call reports the
    session ended (False), `problem` says why; the owner closes it and makes a new one.
    """

    def __init__(
        self,
        config: BridgeConfig,
        *,
        on_message: Callable[[Message], None],
        on_connected: Callable[[], None],
        identifier: str | None = None,
        will: tuple[str, str] | None = None,
    ) -> None:
        """Prepare a session (see `mqtt_gpio_bridge.core.bridge` for the callbacks' use)."""
        self.config = config
        self.connected = False
        self.problem: BrokerError | None = None
        self._on_message = on_message
        self._on_connected = on_connected
        self._identifier = identifier if identifier is not None else config.client_id
        self._will = will
        self._client: paho.Client | None = None
        # paho's log lines of this connection: a child of LIBRARY_LOGGER that only this
        # connection filters, so its last problem is its own.
        self._library_problems = _LibraryProblems()
        self._library_logger = logging.Logger(LIBRARY_LOGGER.name)
        self._library_logger.parent = LIBRARY_LOGGER
        self._library_logger.addFilter(self._library_problems)

    # -- opening and closing -----------------------------------------------------------------

    def open(self) -> None:
        """Connect and send CONNECT.

        Raises:
            ConfigError: the password file or variable cannot be read any more.
            OSError: no connection (refused, unreachable, TLS handshake failed, timed out).
            BrokerError: the connection ended at once.
        """
        mqtt = self.config.mqtt
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._identifier,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        client.enable_logger(self._library_logger)
        client.connect_timeout = CONNECT_TIMEOUT
        if mqtt.username is not None:
            client.username_pw_set(mqtt.username, mqtt.secret())
        if self._will is not None:
            client.will_set(self._will[0], self._will[1], qos=1, retain=True)
        if mqtt.tls is not None:
            client.tls_set_context(tls_context(mqtt.tls))
            client.tls_insecure_set(mqtt.tls.insecure)
        client.on_connect = self._connack
        client.on_message = self._message
        client.on_disconnect = self._disconnected
        self._client = client
        if not self._check(client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive)):
            assert self.problem is not None
            raise self.problem

    def close(self) -> None:
        """Send DISCONNECT if still connected (no last will then), and drop the socket."""
        client, self._client = self._client, None
        self.connected = False
        if client is None:
            return
        if client.is_connected():
            client.disconnect()  # written at once: no paho thread runs
        sock = client.socket()
        if sock is not None:
            sock.close()

    def fileno(self) -> int | None:
        """The socket to poll; None while not open, and once paho has closed it."""
        sock = self._client.socket() if self._client is not None else None
        return None if sock is None else sock.fileno()

    # -- fed by the poll loop ----------------------------------------------------------------

    def wants_write(self) -> bool:
        """Whether paho has bytes waiting for the socket to take them."""
        return self._client is not None and self._client.want_write()

    def read(self) -> bool:
        """Process what the broker sent; False if the session ended."""
        client = self._client
        if client is None:
            return False
        while True:
            if not self._check(client.loop_read()):
                return False
            sock = client.socket()
            if sock is None:  # a write from a callback failed and paho closed it
                return self._check(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            # A TLS socket can hold decrypted bytes the poller cannot see.
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        if self.problem is not None:  # a refused CONNACK
            return False
        # Acknowledge at once: with delayed ACKs the broker (TCP_NODELAY off by default) holds
        # the next small packet, a command, back for up to 40 ms behind its last PUBACK.
        if _QUICKACK is not None and isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return self.write()

    def write(self) -> bool:
        """Send what paho has queued; False if the session ended."""
        client = self._client
        if client is None:
            return False
        return not client.want_write() or self._check(client.loop_write())

    def tick(self) -> bool:
        """Keep-alive bookkeeping (PINGREQ, missing PINGRESP); call about once a second."""
        client = self._client
        if client is None:
            return False
        return self._check(client.loop_misc()) and self.write()

    def pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Serve this connection alone until `until()` holds or `timeout` passes; the result."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            fileno = self.fileno()
            if left <= 0 or fileno is None:
                return False
            writers = [fileno] if self.wants_write() else []
            readable, writable, _ = select.select([fileno], writers, [], left)
            if (readable and not self.read()) or (writable and not self.write()):
                return False
        return True

    # -- requests ------------------------------------------------------------------------------

    def publish(self, topic: str, payload: str | bytes, *, qos: int, retain: bool = False) -> Any:
        """Queue a message (written at once when the socket takes it); its paho info or None."""
        if self._client is None or not self.connected:
            return None
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topic: str, qos: int) -> None:
        """Subscribe to a topic filter."""
        if self._client is not None:
            self._client.subscribe(topic, qos=qos)

    def unsubscribe(self, topic: str) -> None:
        """Leave a topic filter."""
        if self._client is not None:
            self._client.unsubscribe(topic)

    # -- paho's callbacks (run inside loop_read) -----------------------------------------------

    def _connack(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.problem = BrokerError(connack_problem(reason.value, str(reason)))
            return
        self.connected = True
        self._on_connected()

    def _message(self, _client: Any, _userdata: Any, message: Message) -> None:
        self._on_message(message)

    def _disconnected(self, _client: Any, _userdata: Any, *_args: Any) -> None:
        self.connected = False

    def describe(self, exc: Exception) -> str:
        """One line about why this connection failed or ended (see `describe_problem`)."""
        library_error, self._library_problems.last = self._library_problems.last, None
        return describe_problem(exc, library_error)

    def _check(self, rc: MQTTErrorCode) -> bool:
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return True
        if self.problem is None:
            if not self.connected and self.config.mqtt.tls is not None:
                # TLS 1.3 reports a refused client certificate only after the handshake, in
                # an alert that a write can race past; name the likely cause.
                text = TLS_CLOSED_EARLY
            else:
                text = paho.error_string(rc).rstrip(".")
            self.problem = BrokerError(text)
        self.connected = False
        return False


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
TLS_CLOSED_EARLY = (
    "the broker closed the TLS connection before accepting the client "
    "(is a client certificate required? see mqtt.tls.certfile)"
)


def connack_problem(code: int, text: str) -> str:
    """What a refusing CONNACK means for the user."""
    if code in _REFUSED_CREDENTIALS:
        return "the broker refused the credentials (check mqtt.username and the password)"
    return f"the broker refused the connection: {text}"


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context for the broker: verified certificate, host name checked unless insecure."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.certfile is not None:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    context.check_hostname = not tls.insecure
    return context


def describe_problem(exc: Exception, library_error: str | None = None) -> str:
    """One line for the log about why a connection to the broker failed or ended.

    `library_error`, paho's last socket error on that connection, is added: it often names the
    real cause (a TLS alert) behind a bare "The connection was lost".
    """
    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS failed: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        problem = f"no connection within {CONNECT_TIMEOUT:g} s"
    else:
        problem = str(exc) or type(exc).__name__
    if library_error is not None and problem == TLS_CLOSED_EARLY:
        # The alert is read on some attempts only: keep the line the same for every attempt.
        LIBRARY_LOGGER.debug("%s", library_error)
    elif library_error is not None and library_error not in problem:
        problem = f"{problem} ({library_error})"
    return problem
