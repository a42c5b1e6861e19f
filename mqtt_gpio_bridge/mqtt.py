"""The MQTT side's building blocks: the client as configured, backoff, readable problems."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import ssl
from collections.abc import Iterator

import aiomqtt

from .config import BridgeConfig, TlsConfig
from .errors import ConfigError

# CONNACK codes for bad credentials: MQTT 3.1.1 (4, 5) and MQTT 5 (134, 135).
_REFUSED_CREDENTIALS = frozenset({4, 5, 134, 135})


class _LibraryProblems(logging.Filter):
    """Holds back paho's own warnings and errors, keeping the last one for our report.

    paho logs a socket error (a TLS alert such as "certificate required") on every attempt,
    while aiomqtt then only says "Operation timed out". The bridge reports both in its one
    line per problem instead (see `describe_problem`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        self.last = record.getMessage()
        return False


OPERATION_TIMEOUT = 5.0
"""Seconds for connecting (and any other broker round trip) before giving up on it."""

LIBRARY_LOGGER = logging.getLogger(__name__ + ".paho")
_library_problems = _LibraryProblems()
LIBRARY_LOGGER.addFilter(_library_problems)


def mqtt_client(
    config: BridgeConfig, *, identifier: str | None = None, will: tuple[str, str] | None = None
) -> aiomqtt.Client:
    """A client for the configured broker (connecting happens in `async with`).

    Args:
        config: the bridge's config.
        identifier: the client id; the bridge's own by default.
        will: topic and payload of the last will (retained, QoS 1), if any.

    Raises:
        ConfigError: the password file or variable cannot be read any more.
    """
    mqtt = config.mqtt
    return aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=mqtt.username,
        password=mqtt.secret(),
        identifier=identifier if identifier is not None else config.client_id,
        will=aiomqtt.Will(will[0], will[1], qos=1, retain=True) if will is not None else None,
        keepalive=mqtt.keepalive,
        clean_session=True,
        tls_context=tls_context(mqtt.tls) if mqtt.tls is not None else None,
        tls_insecure=mqtt.tls.insecure if mqtt.tls is not None else None,
        logger=LIBRARY_LOGGER,
        timeout=OPERATION_TIMEOUT,
    )


def ignore_closed_socket_races(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Event-loop exception handler: drop aiomqtt's writer callbacks for a closed socket.

    When the broker ends a TLS connection during the handshake (a refused client certificate),
    paho closes the socket while aiomqtt still has `add_writer` for it queued; asyncio would log
    that as an ERROR with a traceback on every attempt. The real cause is reported once by the
    bridge (see `describe_problem`).
    """
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno == errno.EBADF:
        LIBRARY_LOGGER.debug("callback on a closed socket ignored: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


def reconnect_delays(first: float = 0.5, cap: float = 30.0) -> Iterator[float]:
    """Jittered exponential backoff: random delays between half and all of first * 2**n, capped.

    The jitter keeps many bridges from reconnecting in step after a broker restart.
    """
    ceiling = first
    while True:
        yield random.uniform(ceiling / 2, ceiling)
        ceiling = min(cap, ceiling * 2)


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context for the broker: verified certificate, host name checked unless insecure."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.certfile is not None:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    context.check_hostname = not tls.insecure
    return context


def describe_problem(exc: Exception) -> str:
    """One line for the log about why a connection to the broker failed or ended.

    The library's last socket error since the previous call is added: it often names the
    real cause (a TLS alert) behind a bare "Operation timed out".
    """
    library_error, _library_problems.last = _library_problems.last, None
    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems)
    if (
        isinstance(exc, aiomqtt.MqttCodeError)
        and getattr(exc.rc, "value", exc.rc) in _REFUSED_CREDENTIALS
    ):
        return "the broker refused the credentials (check mqtt.username and the password)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    problem = str(exc)
    if library_error is not None and library_error not in problem:
        problem = f"{problem} ({library_error})"
    return problem
