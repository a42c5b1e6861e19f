"""What the tests share besides fixtures: waits, ports, Mosquitto, probes, bridges, the CLI.

The fixtures that hand these out are in conftest.py. Test modules import from here, never from
one another.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as paho
import pytest
import yaml
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from mqtt_gpio_bridge.config import BridgeConfig, parse_config
from mqtt_gpio_bridge.core.bridge import Bridge
from mqtt_gpio_bridge.malos.gpio.codec import decode_levels
from mqtt_gpio_bridge.sim.driver import SimulatedDriver

WAIT = 10.0
"""Seconds any wait-for-condition may take before the test fails."""


def wait_until(condition: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_block(count: int = 4) -> int:
    """A base port such that base .. base+count-1 are all free on 127.0.0.1."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        with contextlib.ExitStack() as stack:
            try:
                for offset in range(count):
                    held = stack.enter_context(socket.socket())
                    held.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise RuntimeError("no block of free ports found")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# -- Mosquitto ------------------------------------------------------------------------------------


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    config_path: Path | None = None

    def start(self) -> None:
        """Start (or restart) the Mosquitto process on the same port, without persistence."""
        assert self.config_path is not None, "an external broker cannot be restarted"
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), what=f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def start_mosquitto(directory: Path, port: int | None = None) -> Broker:
    """Start an anonymous Mosquitto without persistence on `port` (or a free one)."""
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: run scripts/test.sh, which installs it")
    port = free_port() if port is None else port
    config_path = directory / "mosquitto.conf"
    config_path.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    server = Broker("127.0.0.1", port, config_path=config_path)
    server.start()
    return server


# -- MQTT probe -----------------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode()


@dataclass
class MqttProbe:
    """A real paho client that records what it receives, as a user's mosquitto_sub would."""

    broker: Broker
    client: paho.Client = field(init=False)
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        if not connected.wait(WAIT):
            raise RuntimeError("probe could not connect to the broker")

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain)))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *args: done.set()
        self.client.subscribe(topic, qos)
        if not done.wait(WAIT):
            raise RuntimeError(f"subscription to {topic} not acknowledged")

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(WAIT)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [message for message in self.messages if message.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait_for(self, topic: str, payload: str | None = None, timeout: float = WAIT) -> Received:
        """Wait until the last message on `topic` (with `payload`, if given) has arrived."""

        def matches() -> Received | None:
            message = self.last(topic)
            if message is not None and (payload is None or message.text == payload):
                return message
            return None

        result: Received = wait_until(matches, timeout, f"{topic} = {payload!r}")
        return result

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# -- the bridge, in-process -----------------------------------------------------------------------


class BridgeThread:
    """A bridge running in a thread, as `run` would in its process."""

    def __init__(self, config: BridgeConfig) -> None:
        self.bridge = Bridge(config)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bridge", daemon=True)

    def _run(self) -> None:
        try:
            self.bridge.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def start(self) -> BridgeThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.bridge.stop()
        self._thread.join(WAIT)
        if self._thread.is_alive():
            frame = sys._current_frames().get(self._thread.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            pytest.fail(f"the bridge did not stop within {WAIT} s; it is here:\n{stack}")
        if self.error is not None:
            raise self.error


def bridge_config(
    broker: Broker, malos_port: int, pins: list[dict[str, Any]], **sections: Any
) -> BridgeConfig:
    """A config for the test broker and simulator with a unique base topic and node id."""
    unique = uuid.uuid4().hex[:8]
    document: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "base_topic": f"test/{unique}"},
        "malos": {"host": "127.0.0.1", "base_port": malos_port, "update_interval": 0.05},
        "homeassistant": {"node_id": f"test_{unique}", "prefix": f"ha_{unique}"},
        "pins": pins,
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            document.setdefault(name, {}).update(values)
        else:  # a list section (`links`)
            document[name] = values
    return parse_config(document)


@dataclass
class Rig:
    """The usual set-up of a test: the session broker, a MALOS driver, a probe, bridges."""

    broker: Broker
    probe: MqttProbe
    start_bridge: Callable[[BridgeConfig], BridgeThread]
    malos_port: int
    """Where the bridges look for the MALOS driver."""
    own_simulator: SimulatedDriver | None = None
    """The `simulator` fixture's driver; None where the test starts its own driver."""
    bridge: BridgeThread | None = None
    """The bridge started last."""

    @property
    def simulator(self) -> SimulatedDriver:
        """The `simulator` fixture's driver (the `rig` fixture has one, `own_driver_rig` not)."""
        assert self.own_simulator is not None, "this rig has no simulator: use the `rig` fixture"
        return self.own_simulator

    def start_without_waiting(self, pins: list[dict[str, Any]], **sections: Any) -> str:
        """Watch the topics of a new bridge and start it, without waiting for it; its base."""
        config = bridge_config(self.broker, self.malos_port, pins, **sections)
        base = config.mqtt.base_topic
        self.probe.subscribe(f"{base}/#")
        self.bridge = self.start_bridge(config)
        return base

    def start(self, pins: list[dict[str, Any]], **sections: Any) -> str:
        """Start a bridge on the driver, watch its topics, wait until online; its base."""
        base = self.start_without_waiting(pins, **sections)
        self.probe.wait_for(f"{base}/status", "online")
        return base

    def errors(self, base: str) -> list[dict[str, Any]]:
        """The reports published so far on `<base>/gpio/status`, decoded."""
        return [json.loads(message.payload) for message in self.probe.on(f"{base}/gpio/status")]


# -- a bare MALOS client --------------------------------------------------------------------------


class RawClient:
    """A bare MALOS client: PUSH config and keep-alive, SUB errors and updates."""

    def __init__(self, base_port: int) -> None:
        self.context = zmq.Context()
        self.config = self.context.socket(zmq.PUSH)
        self.keepalive = self.context.socket(zmq.PUSH)
        self.errors = self.context.socket(zmq.SUB)
        self.updates = self.context.socket(zmq.SUB)
        for offset, sock in enumerate((self.config, self.keepalive, self.errors, self.updates)):
            sock.setsockopt(zmq.LINGER, 0)
            if sock.type == zmq.SUB:
                sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(f"tcp://127.0.0.1:{base_port + offset}")

    def send(self, frame: bytes) -> None:
        self.config.send(frame)

    def ping(self) -> None:
        self.keepalive.send(b"")

    def update(self, timeout: float = 3.0) -> bytes | None:
        if self.updates.poll(timeout * 1000):
            return bytes(self.updates.recv())
        return None

    def error(self, timeout: float = 3.0) -> str | None:
        if self.errors.poll(timeout * 1000):
            return str(self.errors.recv_string())
        return None

    def drain(self) -> None:
        while self.updates.poll(0):
            self.updates.recv()

    def levels_after_next_update(self) -> int:
        """Skip any queued update, return the levels of the next fresh one."""
        levels = self.levels_of_next_update(3.0)
        assert levels is not None, "no update"
        return levels

    def levels_of_next_update(self, timeout: float = 1.5) -> int | None:
        """The same, or None if no update comes within `timeout` (for a wait that retries)."""
        self.drain()
        frame = self.update(timeout)
        return None if frame is None else decode_levels(frame)

    def close(self) -> None:
        self.context.destroy(0)


# -- the command line, as subprocesses ------------------------------------------------------------


STARTUP = 20.0
"""Seconds a fresh Python process may take to import everything and say it is ready."""

PINS: list[dict[str, Any]] = [
    {"pin": 0, "mode": "output", "name": "Relay", "initial": "off"},
    {"pin": 3, "mode": "input", "name": "Button"},
]
"""The pins of the config files `write_config` writes unless told otherwise."""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class Cli:
    """One `python -m mqtt_gpio_bridge ...` process; threads collect its output lines."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path | None = None,
        stdin: bool = False,
        wrapper: Sequence[str] = (),
    ) -> None:
        """Start it; `wrapper` goes before the command (`ip netns exec NAME`, say)."""
        self.args = args
        self.process = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "mqtt_gpio_bridge", *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=child_env(),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=_collect, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=_collect, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def __str__(self) -> str:
        return f"`mqtt-gpio-bridge {' '.join(self.args)}`"

    def wait_for_line(self, text: str, stream: str = "stdout", timeout: float = WAIT) -> str:
        """Wait for a line containing `text`; fail at once if the process ends without one."""
        lines = self.stdout if stream == "stdout" else self.stderr

        def found() -> str | None:
            ended = not any(reader.is_alive() for reader in self._readers)  # before reading
            line = next((line for line in list(lines) if text in line), None)
            if line is None and ended:
                pytest.fail(f"{self} ended (exit {self.process.poll()}) without printing {text!r}")
            return line

        line: str = wait_until(found, timeout, f"{text!r} on the {stream} of {self}")
        return line

    def count(self, text: str, stream: str = "stderr") -> int:
        lines = self.stdout if stream == "stdout" else self.stderr
        return sum(text in line for line in list(lines))

    def type(self, line: str) -> None:
        """Write one line to the process's standard input, as a user at its terminal would."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself and for all its output; return the exit code."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self} still running after {timeout} s")
        for reader in self._readers:
            reader.join(WAIT)
        return code

    def transcript(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)
        for reader in self._readers:
            reader.join(WAIT)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


def _collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
    stream.close()


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command that ends by itself and return its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "mqtt_gpio_bridge", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
        check=False,
    )


@dataclass
class ConfigFile:
    path: Path
    base: str

    def topic(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"


def write_config(
    tmp_path: Path, mqtt_port: int, malos_port: int, pins: list[dict[str, Any]] = PINS
) -> ConfigFile:
    """A config file for the test broker and simulator, with a unique base topic and node."""
    unique = uuid.uuid4().hex[:8]
    document = {
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "base_topic": f"test/{unique}"},
        "malos": {"host": "127.0.0.1", "base_port": malos_port, "update_interval": 0.05},
        "homeassistant": {"node_id": f"test_{unique}", "prefix": f"ha_{unique}"},
        "pins": pins,
    }
    path = tmp_path / f"bridge-{unique}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return ConfigFile(path, f"test/{unique}")
