"""`mqtt-gpio-bridge demo`: an embedded broker, the simulated driver and the bridge, together."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from ..config import BridgeConfig, load_config
from ..core.bridge import serve
from ..errors import ConfigError
from .driver import CONSOLE_HELP, SimulatedDriver, console_command

logger = logging.getLogger(__name__)

EXAMPLE_CONFIG = "config.example.yaml"
BROKER_STOP_TIMEOUT = 3


def _find_example() -> Path:
    for folder in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = folder / EXAMPLE_CONFIG
        if candidate.is_file():
            return candidate
    raise ConfigError([f"{EXAMPLE_CONFIG} not found here; pass --config PATH"])


def _demo_config(config_path: str | None, mqtt_port: int) -> BridgeConfig:
    config = load_config(config_path or _find_example())
    # Everything runs on this machine: the embedded broker and the simulator.
    mqtt = dataclasses.replace(config.mqtt, host="127.0.0.1", port=mqtt_port)
    malos = dataclasses.replace(config.malos, host="127.0.0.1")
    return dataclasses.replace(config, mqtt=mqtt, malos=malos)


def _instructions(config: BridgeConfig) -> str:
    mqtt = config.mqtt
    base = mqtt.base_topic
    where = f"-h {mqtt.host} -p {mqtt.port}"
    outputs = [spec for spec in config.pins if spec.is_output]
    inputs = [spec for spec in config.pins if not spec.is_output]
    lines = [
        "",
        "mqtt-gpio-bridge demo: broker, simulated MATRIX board and bridge are running.",
        "In another terminal (apt-get install mosquitto-clients), watch everything:",
        f"  mosquitto_sub {where} -v -t '{base}/#'",
    ]
    if outputs:
        pin = outputs[0].pin
        # -q 1: the embedded broker (amqtt 0.12) drops a QoS 0 message whose sender
        # disconnects at once, as mosquitto_pub does; Mosquitto itself does not.
        publish = f"mosquitto_pub {where} -q 1 -t {base}/gpio/{pin}/set -m"
        lines += [
            "drive an output pin:",
            f"  {publish} ON",
            f"  {publish} TOGGLE",
            f'  {publish} \'{{"state": "ON", "duration_ms": 1000}}\'',
            "see a refused command on the error topic:",
            f"  {publish} maybe",
        ]
    if inputs:
        lines += [f"press a button on input pin {inputs[0].pin}: type '{inputs[0].pin} on' here."]
    lines += [CONSOLE_HELP, "Ctrl-C stops broker, simulator and bridge.", ""]
    return "\n".join(lines)


class EmbeddedBroker:
    """amqtt's broker on its own asyncio loop in a thread, so the bridge runs as `run` does."""

    def __init__(self, host: str, port: int) -> None:
        self.address = f"{host}:{port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker", daemon=True)
        self._broker: Any = None

    def start(self) -> None:
        """Start listening; raises what amqtt raises when it cannot."""
        from amqtt.broker import Broker

        async def start() -> Any:
            broker = Broker(
                {
                    "listeners": {"default": {"type": "tcp", "bind": self.address}},
                    "plugins": {
                        "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                            "allow_anonymous": True
                        }
                    },
                }
            )
            await broker.start()
            return broker

        self._thread.start()
        self._broker = asyncio.run_coroutine_threadsafe(start(), self._loop).result()

    def stop(self) -> None:
        """Stop the broker (amqtt 0.12 can wait forever for clients still connected)."""
        if self._broker is not None:
            done = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                done.result(BROKER_STOP_TIMEOUT)
            except TimeoutError:
                logger.info(
                    "embedded broker did not stop within %d s; leaving anyway",
                    BROKER_STOP_TIMEOUT,
                )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(BROKER_STOP_TIMEOUT)


def _console(driver: SimulatedDriver) -> None:
    for line in sys.stdin:
        reply = console_command(driver, line)
        if reply:
            print(reply, flush=True)


def run_demo(config_path: str | None, mqtt_port: int) -> int:
    """Run broker, simulator and bridge until Ctrl-C; return the exit status."""
    err = sys.stderr
    try:
        from amqtt.errors import BrokerError
    except ImportError:
        print("the demo needs the embedded broker: pip install 'mqtt-gpio-bridge[demo]'", file=err)
        return 1
    config = _demo_config(config_path, mqtt_port)
    # The embedded broker is chatty at INFO, and logs a traceback of its own when it cannot
    # listen; that case is reported below in one line.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    driver = SimulatedDriver(config.malos.host, config.malos.base_port)
    try:
        driver.start()
    except OSError as exc:
        print(f"cannot start the simulator: {exc}", file=err)
        return 1
    broker = EmbeddedBroker(config.mqtt.host, config.mqtt.port)
    try:
        broker.start()
    except (OSError, BrokerError) as exc:
        print(f"cannot start the broker on port {mqtt_port}: {exc}; try --mqtt-port", file=err)
        broker.stop()
        driver.stop()
        return 1
    try:
        print(_instructions(config), flush=True)
        threading.Thread(target=_console, args=(driver,), name="console", daemon=True).start()
        serve(config)
    finally:
        broker.stop()
        driver.stop()
    return 0
