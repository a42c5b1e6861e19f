"""`mqtt-gpio-bridge demo`: a broker, the simulated driver and the bridge, together.

The broker is a real Mosquitto when one is installed (what users run), else amqtt, embedded
in this process (the `demo` extra): amqtt 0.12 hands every retained message to any subscriber
whatever its filter, and drops a QoS 0 message whose sender disconnects at once, as
`mosquitto_pub` does, so it is only the fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..config import BridgeConfig, load_config
from ..core.bridge import serve
from ..errors import ConfigError
from ..malos.sensors.catalog import DRIVERS as SENSOR_DRIVERS
from .driver import CONSOLE_HELP, MalosProcess, SimulatedDriver, console_command
from .everloop import SimulatedEverloopDriver
from .sensors import SimulatedSensorDriver, sensor_drivers
from .servo import SimulatedServoDriver

logger = logging.getLogger(__name__)

EXAMPLE_CONFIG = "config.example.yaml"
BROKER_STOP_TIMEOUT = 3
BROKER_START_TIMEOUT = 5.0
BROKERS = ("auto", "mosquitto", "embedded")
"""`--broker`: Mosquitto if installed, else the embedded one (auto); or either one."""


class DemoBroker(Protocol):
    """A broker the demo runs for the time of the demo."""

    name: str
    drops_quick_qos0: bool
    """Whether a QoS 0 message from a client that disconnects at once can be lost."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class BrokerNotStarted(Exception):
    """The demo's broker could not start (the message says why)."""


def _find_example() -> Path:
    # Here, or in the checkout the package runs from (mqtt_gpio_bridge/sim/demo.py).
    for folder in (Path.cwd(), Path(__file__).resolve().parents[2]):
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


def _instructions(config: BridgeConfig, broker: DemoBroker) -> str:
    mqtt = config.mqtt
    base = mqtt.base_topic
    where = f"-h {mqtt.host} -p {mqtt.port}"
    outputs = [spec for spec in config.pins if spec.is_output]
    inputs = [spec for spec in config.pins if spec.mode == "input"]
    servos = [spec for spec in config.pins if spec.is_servo]
    lines = [
        "",
        f"mqtt-gpio-bridge demo: broker ({broker.name}), simulated MATRIX board and bridge are "
        "running.",
        "In another terminal (apt-get install mosquitto-clients), watch everything:",
        f"  mosquitto_sub {where} -v -t '{base}/#'",
    ]
    if outputs:
        pin = outputs[0].pin
        # -q 1 for the embedded broker (amqtt 0.12): it drops a QoS 0 message whose sender
        # disconnects at once, as mosquitto_pub does; Mosquitto does not.
        qos = " -q 1" if broker.drops_quick_qos0 else ""
        publish = f"mosquitto_pub {where}{qos} -t {base}/gpio/{pin}/set -m"
        lines += [
            "drive an output pin:",
            f"  {publish} ON",
            f"  {publish} TOGGLE",
            f'  {publish} \'{{"state": "ON", "duration_ms": 1000}}\'',
            "see a refused command on the error topic:",
            f"  {publish} maybe",
        ]
    if servos:
        pin = servos[0].pin
        lines += [
            f"move the servo on pin {pin}, then type 'show' here to see its angle:",
            f"  mosquitto_pub {where} -q 1 -t {base}/gpio/{pin}/set -m 90",
        ]
    if inputs:
        lines += [f"press a button on input pin {inputs[0].pin}: type '{inputs[0].pin} on' here."]
    if broker.drops_quick_qos0:
        lines += [
            "(The embedded broker hands every retained message to any subscriber, whatever",
            " its filter: install Mosquitto to see what users see.)",
        ]
    lines += [CONSOLE_HELP, "Ctrl-C stops broker, simulator and bridge.", ""]
    return "\n".join(lines)


class MosquittoBroker:
    """A Mosquitto process listening on `host:port` only, without persistence."""

    name = "Mosquitto"
    drops_quick_qos0 = False

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._folder = tempfile.TemporaryDirectory(prefix="mqtt-gpio-demo-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it listens; `BrokerNotStarted` with its own words if not."""
        if not _free(self.host, self.port):  # else the other listener would look like ours
            self.stop()
            raise BrokerNotStarted(f"{self.host}:{self.port} is in use")
        folder = Path(self._folder.name)
        config = folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
        )
        log = folder / "mosquitto.log"
        with log.open("wb") as output:
            self._process = subprocess.Popen(
                ["mosquitto", "-c", str(config)], stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + BROKER_START_TIMEOUT
        while not _listening(self.host, self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text(errors="replace").strip().splitlines()
                self.stop()
                raise BrokerNotStarted(said[-1] if said else "Mosquitto did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the process and remove its folder."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(BROKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._folder.cleanup()


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Mosquitto binds
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """amqtt's broker on its own asyncio loop in a thread, so the bridge runs as `run` does."""

    name = "amqtt, embedded"
    drops_quick_qos0 = True

    def __init__(self, host: str, port: int) -> None:
        self.address = f"{host}:{port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker", daemon=True)
        self._broker: Any = None

    def start(self) -> None:
        """Start listening; `BrokerNotStarted` when it cannot."""
        from amqtt.broker import Broker
        from amqtt.errors import BrokerError

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
        try:
            self._broker = asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        except (OSError, BrokerError) as exc:
            self.stop()
            raise BrokerNotStarted(str(exc)) from None

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


def _console(
    driver: SimulatedDriver,
    everloop: SimulatedEverloopDriver | None,
    sensors: Sequence[SimulatedSensorDriver],
) -> None:
    for line in sys.stdin:
        reply = console_command(driver, line, everloop, sensors)
        if reply:
            print(reply, flush=True)


def _choose_broker(kind: str, host: str, port: int) -> DemoBroker | str:
    """The broker to run, or why there is none."""
    mosquitto = shutil.which("mosquitto") is not None
    if kind == "mosquitto" or (kind == "auto" and mosquitto):
        if not mosquitto:
            return "Mosquitto is not installed (apt-get install mosquitto)"
        return MosquittoBroker(host, port)
    try:
        import amqtt  # noqa: F401
    except ImportError:
        return (
            "no broker: install Mosquitto (apt-get install mosquitto), or the embedded one "
            "with pip install 'mqtt-gpio-bridge[demo]'"
        )
    # The embedded broker is chatty at INFO, and logs a traceback of its own when it cannot
    # listen; that case is reported in one line.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    return EmbeddedBroker(host, port)


def run_demo(config_path: str | None, mqtt_port: int, broker_kind: str = "auto") -> int:
    """Run broker, simulator and bridge until Ctrl-C; return the exit status."""
    err = sys.stderr
    config = _demo_config(config_path, mqtt_port)
    broker = _choose_broker(broker_kind, config.mqtt.host, config.mqtt.port)
    if isinstance(broker, str):
        print(f"cannot run the demo: {broker}", file=err)
        return 1
    malos = config.malos
    driver = SimulatedDriver(malos.host, malos.base_port)
    processes: list[MalosProcess] = [driver]
    if any(spec.is_servo for spec in config.pins):
        processes.append(SimulatedServoDriver(malos.host, malos.servo_port, driver.board))
    everloop = None
    if config.everloop is not None or config.sensors is not None:
        everloop = SimulatedEverloopDriver(malos.host, malos.everloop_port)
        processes.append(everloop)
    sensors: list[SimulatedSensorDriver] = []
    if config.sensors is not None:
        ports = {name: getattr(malos, f"{name}_port") for name in SENSOR_DRIVERS}
        sensors = sensor_drivers(malos.host, ports=ports)
        processes += sensors
    try:
        for process in processes:
            process.start()
    except OSError as exc:
        print(f"cannot start the simulator: {exc}", file=err)
        _stop(processes)
        return 1
    try:
        broker.start()
    except BrokerNotStarted as exc:
        print(
            f"cannot start the broker ({broker.name}) on port {mqtt_port}: {exc}; try --mqtt-port",
            file=err,
        )
        _stop(processes)
        return 1
    try:
        print(_instructions(config, broker), flush=True)
        console = threading.Thread(
            target=_console, args=(driver, everloop, sensors), name="console", daemon=True
        )
        console.start()
        serve(config)
    finally:
        broker.stop()
        _stop(processes)
    return 0


def _stop(processes: Sequence[MalosProcess]) -> None:
    for process in processes:
        process.stop()
