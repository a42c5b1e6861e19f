"""The MQTT side's building blocks: the client as configured, backoff, readable problems."""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator

import aiomqtt

from .config import BridgeConfig, TlsConfig
from .errors import ConfigError

# CONNACK codes for bad credentials: MQTT 3.1.1 (4, 5) and MQTT 5 (134, 135).
_REFUSED_CREDENTIALS = frozenset({4, 5, 134, 135})


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
    )


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
    """One line for the log about why a connection to the broker failed or ended."""
    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems)
    if (
        isinstance(exc, aiomqtt.MqttCodeError)
        and getattr(exc.rc, "value", exc.rc) in _REFUSED_CREDENTIALS
    ):
        return "the broker refused the credentials (check mqtt.username and the password)"
    if isinstance(exc, aiomqtt.MqttError) and isinstance(exc.__cause__, ssl.SSLError):
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return str(exc)
