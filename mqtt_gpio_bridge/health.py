"""`mqtt-gpio-bridge health`: ask the broker what the bridge's retained status says.

The retained `<base>/status` is `online` only while the bridge is connected to the broker and
the MALOS driver sends updates; the broker turns it `offline` (the last will) when the bridge
dies. So one look at it answers "is the bridge connected to both sides" for a container
HEALTHCHECK or a monitoring script, without a status file.
"""

from __future__ import annotations

import time
import uuid

from .config import BridgeConfig
from .errors import BrokerError, ConfigError
from .mqtt.connection import Message, MqttConnection
from .mqtt.topics import Topics


def bridge_status(config: BridgeConfig, timeout: float) -> str:
    """The retained status of the configured bridge, or why it could not be read in time."""
    topic = Topics(config.mqtt.base_topic).status
    found: list[str] = []

    def on_message(message: Message) -> None:
        found.append(message.payload.decode("utf-8", errors="replace"))

    connection = MqttConnection(
        config,
        identifier=f"{config.client_id}-health-{uuid.uuid4().hex[:6]}",
        on_message=on_message,
        on_connected=lambda: connection.subscribe(topic, qos=1),
    )
    deadline = time.monotonic() + timeout
    try:
        connection.open()
        if connection.pump(lambda: bool(found), deadline - time.monotonic()):
            return found[0]
        if connection.problem is not None:
            return f"unknown (broker: {connection.describe(connection.problem)})"
        return "unknown (no retained status within the timeout)"
    except (BrokerError, ConfigError, OSError) as exc:
        return f"unknown (broker: {connection.describe(exc)})"
    finally:
        connection.close()
