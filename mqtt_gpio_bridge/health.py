"""`mqtt-gpio-bridge health`: ask the broker what the bridge's retained status says.

The retained `<base>/status` is `online` only while the bridge is connected to the broker and
the MALOS driver sends updates; the broker turns it `offline` (the last will) when the bridge
dies. So one look at it answers "is the bridge connected to both sides" for a container
HEALTHCHECK or a monitoring script, without a status file.
"""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt

from .config import BridgeConfig
from .errors import ConfigError
from .mqtt import describe_problem, mqtt_client
from .topics import Topics


def bridge_status(config: BridgeConfig, timeout: float) -> str:
    """The retained status of the configured bridge, or why it could not be read in time."""

    async def within_timeout() -> str:
        try:
            async with asyncio.timeout(timeout):
                return await _read_status(config)
        except TimeoutError:
            return "unknown (no retained status within the timeout)"
        except (aiomqtt.MqttError, ConfigError) as exc:
            return f"unknown (broker: {describe_problem(exc)})"

    return asyncio.run(within_timeout())


async def _read_status(config: BridgeConfig) -> str:
    topic = Topics(config.mqtt.base_topic).status
    identifier = f"{config.client_id}-health-{uuid.uuid4().hex[:6]}"
    async with mqtt_client(config, identifier=identifier) as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            if isinstance(message.payload, bytes):
                return message.payload.decode("utf-8", errors="replace")
    return "unknown"
