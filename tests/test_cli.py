"""The command line, end to end: real subprocesses, the real Mosquitto, the simulated driver.

Every test starts `python -m mqtt_gpio_bridge ...` (or the console script) the way a user would
and looks only at what a user sees: exit codes, output lines, MQTT topics, pin levels.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from mqtt_gpio_bridge import __version__
from mqtt_gpio_bridge.malos.gpio.codec import decode_levels
from mqtt_gpio_bridge.sim.driver import SimulatedDriver

from .conftest import WAIT, Broker, MqttProbe, free_port, start_mosquitto, wait_until
from .test_simulator import RawClient

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "mqtt-gpio-bridge"
DEMO_MALOS_PORTS = range(20049, 20053)  # config.example.yaml's base_port .. base_port + 3
STARTUP = 20.0
"""Seconds a fresh Python process may take to import everything and say it is ready."""

PINS: list[dict[str, Any]] = [
    {"pin": 0, "mode": "output", "name": "Relay", "initial": "off"},
    {"pin": 3, "mode": "input", "name": "Button"},
]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


# -- command-line subprocesses ------------------------------------------------------------------


class Cli:
    """One `python -m mqtt_gpio_bridge ...` process; threads collect its output lines."""

    def __init__(self, args: list[str], *, cwd: Path | None = None, stdin: bool = False) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mqtt_gpio_bridge", *args],
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


@pytest.fixture
def cli() -> Iterator[Callable[..., Cli]]:
    """Start command-line processes; every one is killed at the end of the test."""
    started: list[Cli] = []

    def start(*args: str, cwd: Path | None = None, stdin: bool = False) -> Cli:
        started.append(Cli(list(args), cwd=cwd, stdin=stdin))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        # Shown by pytest only when the test failed.
        print(f"--- {process} exited {process.process.returncode}:\n{process.transcript()}")


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


# -- configs, mosquitto clients, brokers ----------------------------------------------------------


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


def mosquitto_address(broker: Broker) -> list[str]:
    return ["-h", broker.host, "-p", str(broker.port)]


def mosquitto_pub(broker: Broker, topic: str, payload: str) -> None:
    subprocess.run(
        # QoS 0, as a user types it: `mosquitto_pub -t matrix/gpio/0/set -m ON`.
        ["mosquitto_pub", *mosquitto_address(broker), "-t", topic, "-m", payload],
        check=True,
        timeout=WAIT,
    )


def retained(broker: Broker, topic: str) -> str:
    """What a new `mosquitto_sub` receives first on `topic`: the retained message, if any."""
    result = subprocess.run(
        ["mosquitto_sub", *mosquitto_address(broker), "-C", "1", "-W", "5", "-t", topic],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    return result.stdout.strip()


def port_taken(port: int) -> bool:
    """Whether a listener holds `port` (SO_REUSEADDR as ZeroMQ does: TIME_WAIT is no owner)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@pytest.fixture
def online_cli_bridge(
    cli: Callable[..., Cli],
    probe: MqttProbe,
    broker: Broker,
    simulator: SimulatedDriver,
    malos_port: int,
    tmp_path: Path,
) -> tuple[Cli, ConfigFile]:
    """A `run` subprocess on the simulator, its topics watched by `probe`, online."""
    config = write_config(tmp_path, broker.port, malos_port)
    probe.subscribe(config.topic("#"))
    bridge = cli("run", "--config", str(config.path))
    probe.wait_for(config.topic("status"), "online", timeout=STARTUP)
    return bridge, config


# -- check-config ---------------------------------------------------------------------------------

BROKEN = """\
mqtt:
  hots: 127.0.0.1
  base_topic: test/broken
pins:
  - pin: 16
    mode: output
  - pin: 2
    mode: output
    payload_on: ON
  - pin: 2
    mode: input
  - pin: 5
    mode: input
    initial: "on"
"""


def test_check_config_lists_every_pin_with_its_state_topic(tmp_path: Path) -> None:
    pins = [*PINS, {"pin": 4, "mode": "input", "payload_on": "OPEN", "payload_off": "CLOSED"}]
    config = write_config(tmp_path, 1883, 20049, pins)

    result = run_cli("check-config", "--config", str(config.path))

    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    pin_lines = [line.strip() for line in result.stdout.splitlines() if "-> " in line]
    assert len(pin_lines) == 3, result.stdout
    for line, spec in zip(pin_lines, pins, strict=True):
        assert line.startswith(f"pin {spec['pin']} {spec['mode']}"), line
        assert f"{config.base}/gpio/{spec['pin']}/state" in line
    assert f"commands on {config.base}/gpio/0/set" in pin_lines[0]


def test_check_config_reports_every_problem_with_its_key_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)

    result = run_cli("check-config", "--config", str(path))

    assert result.returncode == 2
    problems = [line.strip() for line in result.stderr.splitlines()]
    expected = {
        "mqtt.hots: unknown key": "did you mean 'host'",
        "pins[0].pin: ": "16 is out of range 0..15",
        "pins[1].payload_on: ": "quote it",
        "pins[2].pin: ": "pin 2 is already configured at pins[1]",
        "pins[3].initial: ": "pin 5 is an input",
    }
    for key, detail in expected.items():
        line = next((line for line in problems if line.startswith(key)), None)
        assert line is not None, f"no problem line for {key!r} in:\n{result.stderr}"
        assert detail in line
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_on_a_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    result = run_cli("check-config", "--config", str(path))

    assert result.returncode == 2
    assert f"{path}: cannot read: No such file or directory" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_on_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "invalid.yaml"
    path.write_text("mqtt:\n  host: [127.0.0.1\npins: []\n")

    result = run_cli("check-config", "--config", str(path))

    assert result.returncode == 2
    assert f"{path}: invalid YAML at line" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_values_mqtt_cannot_carry_exit_2_with_their_key_paths(tmp_path: Path, command: str) -> None:
    # Before: check-config said "valid"; run died in paho (struct.error, exit 1, restarted
    # forever by a service manager) or never came online, blaming the broker connection.
    path = tmp_path / "unsendable.yaml"
    path.write_text(
        f'mqtt: {{port: {free_port()}, client_id: {"x" * 100_000}, base_topic: "home\\0x"}}\n'
        'homeassistant: {prefix: "ha\\ud800"}\n'
        "malos: {host: " + "m" * 300 + "}\n"
        "pins: [{pin: 0, mode: output}]\n"
    )

    result = run_cli(command, "--config", str(path))

    assert result.returncode == 2, result.stdout + result.stderr
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert problems == [
        "mqtt.client_id: must be at most 65521 bytes in UTF-8 (`health` connects as "
        "<client_id>-health-xxxxxx, which MQTT limits to 65535), got 100000",
        "mqtt.base_topic: must not contain the NUL character U+0000 (at character 5): "
        "MQTT forbids it in strings",
        "homeassistant.prefix: must not contain the lone surrogate U+D800 (at character 3): "
        "it cannot be encoded as UTF-8",
        "malos.host: must be at most 253 characters (the longest host name), got 300",
    ]
    assert "Traceback" not in result.stdout + result.stderr


# -- run ------------------------------------------------------------------------------------------


def test_run_with_a_bad_config_exits_2_with_the_problems(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)

    result = run_cli("run", "--config", str(path))

    assert result.returncode == 2
    assert "configuration problems" in result.stderr
    assert "pins[0].pin: 16 is out of range 0..15" in result.stderr
    assert "mqtt.hots: unknown key" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_drives_a_pin_then_stops_cleanly_on_a_signal(
    online_cli_bridge: tuple[Cli, ConfigFile],
    probe: MqttProbe,
    broker: Broker,
    simulator: SimulatedDriver,
    stop_signal: signal.Signals,
) -> None:
    bridge, config = online_cli_bridge
    probe.wait_for(config.topic("gpio/0/state"), "OFF")

    mosquitto_pub(broker, config.topic("gpio/0/set"), "ON")

    wait_until(lambda: simulator.board.levels() & 1, what="pin 0 high on the board")
    probe.wait_for(config.topic("gpio/0/state"), "ON")
    assert retained(broker, config.topic("gpio/0/state")) == "ON"

    bridge.send_signal(stop_signal)

    assert bridge.wait_exit(5) == 0
    probe.wait_for(config.topic("status"), "offline")
    assert retained(broker, config.topic("status")) == "offline"
    assert "Traceback" not in bridge.transcript()


def test_a_killed_bridge_goes_offline_by_its_last_will(
    online_cli_bridge: tuple[Cli, ConfigFile], probe: MqttProbe, broker: Broker
) -> None:
    bridge, config = online_cli_bridge

    bridge.send_signal(signal.SIGKILL)

    assert bridge.wait_exit(5) == -signal.SIGKILL
    probe.wait_for(config.topic("status"), "offline")
    assert retained(broker, config.topic("status")) == "offline"


def test_run_waits_for_a_broker_that_starts_later(
    cli: Callable[..., Cli],
    probe_factory: Callable[..., MqttProbe],
    simulator: SimulatedDriver,
    malos_port: int,
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(tmp_path, port, malos_port)
    bridge = cli("--log-level", "DEBUG", "run", "--config", str(config.path))

    line = bridge.wait_for_line(f"MQTT broker 127.0.0.1:{port}", "stderr", timeout=STARTUP)
    assert "WARNING" in line
    assert "retrying in" in line
    # The same problem again is logged at debug level only: one clear line, then backoff.
    wait_until(lambda: bridge.count("retrying in") >= 3, what="more connection attempts")
    assert bridge.count("WARNING mqtt_gpio_bridge.mqtt.session: MQTT broker") == 1
    assert bridge.process.poll() is None, "the bridge gave up"

    late = start_mosquitto(tmp_path, port)
    try:
        probe = probe_factory(late)
        probe.subscribe(config.topic("status"))
        probe.wait_for(config.topic("status"), "online")
        assert bridge.count(f"connected to MQTT broker 127.0.0.1:{port}") == 1
    finally:
        bridge.kill()
        late.stop()
    assert "Traceback" not in bridge.transcript()


def test_run_waits_for_a_malos_driver_that_starts_later(
    cli: Callable[..., Cli],
    probe: MqttProbe,
    broker: Broker,
    malos_port: int,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, broker.port, malos_port)
    probe.subscribe(config.topic("#"))
    bridge = cli("run", "--config", str(config.path))

    probe.wait_for(config.topic("status"), "offline", timeout=STARTUP)
    assert retained(broker, config.topic("status")) == "offline"
    assert probe.last(config.topic("gpio/0/state")) is None
    assert bridge.process.poll() is None

    driver = SimulatedDriver("127.0.0.1", malos_port).start()
    try:
        driver.set_input(3, 1)
        probe.wait_for(config.topic("status"), "online")
        probe.wait_for(config.topic("gpio/0/state"), "OFF")
        probe.wait_for(config.topic("gpio/3/state"), "ON")
    finally:
        bridge.kill()
        driver.stop()
    assert "Traceback" not in bridge.transcript()


# -- simulate -------------------------------------------------------------------------------------


def test_simulate_drives_inputs_from_its_console(cli: Callable[..., Cli], malos_port: int) -> None:
    simulated = cli("simulate", "--base-port", str(malos_port), stdin=True)
    simulated.wait_for_line(
        f"simulated MALOS GPIO driver on 127.0.0.1:{malos_port}..{malos_port + 3}",
        timeout=STARTUP,
    )

    simulated.type("3 on")

    assert simulated.wait_for_line("pin 3").strip() == "pin 3 driven high"
    client = RawClient(malos_port)
    try:

        def pin_3_high_in_an_update() -> bool:
            client.ping()  # no update before a ping; a SUB may also miss the first ones
            frame = client.update(timeout=0.2)
            return frame is not None and bool(decode_levels(frame) & (1 << 3))

        wait_until(pin_3_high_in_an_update, what="an update with pin 3 high")
    finally:
        client.close()

    simulated.send_signal(signal.SIGINT)
    assert simulated.wait_exit(5) == 0
    assert "Traceback" not in simulated.transcript()


def test_simulate_on_a_taken_port_says_so(simulator: SimulatedDriver, malos_port: int) -> None:
    result = run_cli("simulate", "--base-port", str(malos_port))

    assert result.returncode != 0
    assert "cannot start the simulator" in result.stderr
    assert f"127.0.0.1:{malos_port}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# -- demo -----------------------------------------------------------------------------------------


@pytest.fixture
def demo_malos_ports() -> None:
    """The demo binds config.example.yaml's MALOS ports; say so clearly if they are taken."""
    taken = [port for port in DEMO_MALOS_PORTS if port_taken(port)]
    if taken:
        pytest.fail(f"the demo needs the MALOS ports 20049..20052, but {taken} are in use")


@pytest.mark.usefixtures("demo_malos_ports")
def test_demo_runs_broker_simulator_and_bridge_together(
    cli: Callable[..., Cli], probe_factory: Callable[..., MqttProbe]
) -> None:
    port = free_port()
    demo = cli("demo", "--mqtt-port", str(port), cwd=ROOT, stdin=True)

    line = demo.wait_for_line("mosquitto_pub", timeout=STARTUP)
    assert f"-p {port}" in line
    probe = probe_factory(Broker("127.0.0.1", port))
    probe.subscribe("matrix/#")
    probe.wait_for("matrix/status", "online")

    # The exact line the demo printed, as a user pastes it.
    subprocess.run(shlex.split(line.strip()), check=True, timeout=WAIT)
    probe.wait_for("matrix/gpio/0/state", "ON")

    demo.type("3 on")
    probe.wait_for("matrix/gpio/3/state", "ON")
    assert demo.wait_for_line("pin 3 driven").strip() == "pin 3 driven high"

    demo.send_signal(signal.SIGINT)
    assert demo.wait_exit(10) == 0
    assert "Traceback" not in demo.transcript()


@pytest.mark.usefixtures("demo_malos_ports")
def test_demo_on_a_taken_mqtt_port_says_so(broker: Broker) -> None:
    result = run_cli("demo", "--mqtt-port", str(broker.port))

    assert result.returncode == 1
    assert f"cannot start the broker on port {broker.port}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# -- version and help -----------------------------------------------------------------------------


def test_version_is_printed() -> None:
    result = run_cli("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"mqtt-gpio-bridge {__version__}"


def test_console_script_help_lists_every_command() -> None:
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "--help"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=30,
        check=False,
    )

    assert result.returncode == 0
    for command in ("run", "check-config", "simulate", "demo"):
        assert f"    {command} " in result.stdout, f"{command} missing from:\n{result.stdout}"


# -- discovery ------------------------------------------------------------------------------


def test_discovery_prints_the_exact_topics_and_payloads(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1883, 20049)
    result = run_cli("discovery", "--config", str(config.path))

    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(config.path.read_text())
    node, prefix = document["homeassistant"]["node_id"], document["homeassistant"]["prefix"]
    assert f"{prefix}/switch/{node}/gpio0/config (retained)" in result.stdout
    assert f"{prefix}/binary_sensor/{node}/gpio3/config (retained)" in result.stdout
    assert f'"unique_id": "{node}_gpio0"' in result.stdout
    assert f'"command_topic": "{config.base}/gpio/0/set"' in result.stdout


def test_discovery_off_says_nothing_is_published(tmp_path: Path) -> None:
    config = write_config(tmp_path, 1883, 20049)
    document = yaml.safe_load(config.path.read_text())
    document["homeassistant"]["discovery"] = False
    config.path.write_text(yaml.safe_dump(document))
    result = run_cli("discovery", "--config", str(config.path))

    assert result.returncode == 0
    assert "nothing is published" in result.stdout
    assert "/config" not in result.stdout


# -- health -----------------------------------------------------------------------------------


def test_health_follows_the_bridges_status(
    cli: Callable[..., Cli],
    broker: Broker,
    simulator: SimulatedDriver,
    malos_port: int,
    probe: MqttProbe,
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, broker.port, malos_port)
    probe.subscribe(config.topic("status"))
    bridge = cli("run", "--config", str(config.path))
    probe.wait_for(config.topic("status"), "online")

    healthy = run_cli("health", "--config", str(config.path))
    assert healthy.returncode == 0
    assert healthy.stdout.strip() == f"{config.base}/status: online"

    simulator.stop()  # the board goes away: the bridge is no longer healthy
    probe.wait_for(config.topic("status"), "offline")
    unhealthy = run_cli("health", "--config", str(config.path))
    assert unhealthy.returncode == 1
    assert unhealthy.stdout.strip() == f"{config.base}/status: offline"
    bridge.kill()


def test_health_without_a_broker_is_unhealthy_and_quick(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), 20049)
    result = run_cli("health", "--config", str(config.path), "--timeout", "2")
    assert result.returncode == 1
    assert "unknown (broker:" in result.stdout
    assert "Traceback" not in result.stderr


WITHOUT_SIM_EXTRA = """
import sys


class Uninstalled:
    # As if protobuf and matrix-io-proto were not installed (a board's `pip install`).
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("google", "matrix_io"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
# matrix-io-proto's namespace-package .pth file imports `matrix_io` at start-up.
for name in [name for name in sys.modules if name.split(".")[0] in ("google", "matrix_io")]:
    del sys.modules[name]
from mqtt_gpio_bridge.cli import main

sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("command", "extra"), [("simulate", "sim"), ("demo", "demo")])
def test_simulator_commands_without_their_extra_name_it_in_one_line(
    command: str, extra: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIM_EXTRA, command],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        env=child_env(),
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line == (
        f"`{command}` needs the simulator's dependencies (protobuf, matrix-io-proto not "
        f"installed): pip install 'mqtt-gpio-bridge[{extra}]'"
    )


def test_run_and_check_config_need_nothing_of_the_simulator(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"pins": PINS}))
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SIM_EXTRA, "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        env=child_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
