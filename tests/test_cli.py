"""The command line, end to end: real subprocesses, the real Mosquitto, the simulated driver.

Every test starts `python -m mqtt_gpio_bridge ...` (or the console script) the way a user would
and looks only at what a user sees: exit codes, output lines, MQTT topics, pin levels.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mqtt_gpio_bridge import __version__
from mqtt_gpio_bridge.cli import EXIT_CODES, main
from mqtt_gpio_bridge.malos.everloop.codec import VOICE_LEDS, decode_length
from mqtt_gpio_bridge.malos.gpio.codec import decode_levels
from mqtt_gpio_bridge.malos.sensors.codec import decode_humidity, decode_uv
from mqtt_gpio_bridge.malos.servo.codec import encode_servo_config
from mqtt_gpio_bridge.malos.servo.driver import FENCE
from mqtt_gpio_bridge.sim import demo as demo_module
from mqtt_gpio_bridge.sim.driver import SimulatedDriver
from mqtt_gpio_bridge.sim.servo import ERROR_UNPARSABLE

from .helpers import (
    PINS,
    STARTUP,
    WAIT,
    Broker,
    Cli,
    ConfigFile,
    MqttProbe,
    RawClient,
    child_env,
    free_port,
    free_port_block,
    run_cli,
    start_mosquitto,
    wait_until,
    write_config,
)

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "mqtt-gpio-bridge"
DEMO_MALOS_PORTS = range(20049, 20053)  # config.example.yaml's base_port .. base_port + 3


# -- configs, mosquitto clients, brokers ----------------------------------------------------------


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
        # Its log line is read from the pipe by another thread: it may come after the message.
        connected = f"connected to MQTT broker 127.0.0.1:{port}"
        wait_until(lambda: bridge.count(connected) >= 1, what="the connected line")
        assert bridge.count(connected) == 1
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


def test_simulate_runs_the_servo_driver_on_the_same_board(
    cli: Callable[..., Cli], malos_port: int
) -> None:
    servo_port = free_port_block(4)
    simulated = cli(
        "simulate", "--base-port", str(malos_port), "--servo-port", str(servo_port), stdin=True
    )
    simulated.wait_for_line(
        f"simulated MALOS servo driver on 127.0.0.1:{servo_port}..{servo_port + 3}",
        timeout=STARTUP,
    )
    client = RawClient(servo_port)
    try:
        client.send(encode_servo_config(6, 90))

        def answered() -> bool:
            client.send(FENCE)  # answered once the angle is applied (resent: slow joiner)
            return client.error(timeout=0.2) == ERROR_UNPARSABLE

        wait_until(answered, what="the servo driver's answer")
    finally:
        client.close()
    simulated.type("show")
    line = simulated.wait_for_line("pin  6 output")
    assert "PWM" in line and "90" in line, line
    simulated.send_signal(signal.SIGINT)
    assert simulated.wait_exit(5) == 0


SENSOR_DRIVERS = {"humidity": "Humidity", "pressure": "Pressure", "uv": "UV", "imu": "IMU"}


def sensor_ports() -> tuple[dict[str, int], list[str]]:
    """Free ports for the four sensor drivers (never MALOS's own: tests run side by side), and
    the `simulate` options that choose them."""
    ports = {sensor: free_port_block(4) for sensor in SENSOR_DRIVERS}
    return ports, [
        word for sensor, port in ports.items() for word in (f"--{sensor}-port", str(port))
    ]


def first_update(port: int, accept: Callable[[bytes], bool], what: str) -> bytes:
    """Ping the driver on `port` until an update `accept`s (a SUB misses the first ones)."""
    client = RawClient(port)
    try:

        def accepted() -> bytes | None:
            client.ping()
            frame = client.update(timeout=0.2)
            return frame if frame is not None and accept(frame) else None

        frame: bytes = wait_until(accepted, what=what)
        return frame
    finally:
        client.close()


def test_simulate_runs_the_sensor_drivers_set_from_its_console(
    cli: Callable[..., Cli], malos_port: int
) -> None:
    ports, options = sensor_ports()
    simulated = cli("simulate", "--base-port", str(malos_port), "--sensors", *options, stdin=True)
    for sensor, name in SENSOR_DRIVERS.items():
        port = ports[sensor]
        simulated.wait_for_line(
            f"simulated MALOS {name} driver on 127.0.0.1:{port}..{port + 3}", timeout=STARTUP
        )
    simulated.wait_for_line("sensor <value> <number>")  # the help lists the sensor commands

    simulated.type("sensor humidity 45.5")

    assert simulated.wait_for_line("Humidity humidity").strip() == "Humidity humidity = 45.5"
    first_update(
        ports["humidity"],
        lambda frame: decode_humidity(frame).humidity == 45.5,
        "a humidity update with 45.5 %",
    )
    simulated.type("show")
    assert simulated.wait_for_line("Humidity:").strip() == (
        "Humidity: humidity 45.5, temperature 30"
    )
    simulated.send_signal(signal.SIGINT)
    assert simulated.wait_exit(5) == 0
    assert "Traceback" not in simulated.transcript()


def test_simulate_as_a_voice_has_18_leds_and_sensors_that_send_zeros(
    cli: Callable[..., Cli], malos_port: int
) -> None:
    ports, options = sensor_ports()  # a port option alone implies --sensors
    everloop_port = free_port_block(4)
    simulated = cli(
        "simulate",
        "--base-port",
        str(malos_port),
        "--board",
        "voice",
        "--everloop-port",
        str(everloop_port),
        *options,
        stdin=True,
    )
    simulated.wait_for_line("simulated board: a MATRIX Voice", timeout=STARTUP)
    simulated.type("sensor uv 7")
    assert simulated.wait_for_line("UV uv_index").strip() == (
        "UV uv_index = 7 (a MATRIX Voice: its updates carry zeros)"
    )

    everloop_update = first_update(everloop_port, lambda _: True, "an Everloop update")
    assert decode_length(everloop_update) == VOICE_LEDS
    uv_update = first_update(ports["uv"], lambda _: True, "a UV update")
    assert (decode_uv(uv_update).uv_index, decode_uv(uv_update).oms_risk) == (0.0, "Low")
    simulated.send_signal(signal.SIGINT)
    assert simulated.wait_exit(5) == 0


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
@pytest.mark.parametrize(
    ("broker_kind", "runs"), [("auto", "broker (Mosquitto)"), ("embedded", "broker (amqtt")]
)
def test_demo_runs_broker_simulator_and_bridge_together(
    cli: Callable[..., Cli], probe_factory: Callable[..., MqttProbe], broker_kind: str, runs: str
) -> None:
    port = free_port()
    demo = cli("demo", "--mqtt-port", str(port), "--broker", broker_kind, cwd=ROOT, stdin=True)

    assert runs in demo.wait_for_line("mqtt-gpio-bridge demo:", timeout=STARTUP)
    line = demo.wait_for_line("mosquitto_pub", timeout=STARTUP)
    assert f"-p {port}" in line
    assert (" -q 1 " in line) == (broker_kind == "embedded")  # amqtt drops quick QoS 0
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
@pytest.mark.parametrize("broker_kind", ["mosquitto", "embedded"])
def test_demo_on_a_taken_mqtt_port_says_so(broker: Broker, broker_kind: str) -> None:
    result = run_cli("demo", "--mqtt-port", str(broker.port), "--broker", broker_kind)

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cannot start the broker (")
    assert f"on port {broker.port}: " in line
    assert line.endswith("; try --mqtt-port")
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
    assert f"{prefix}/device/{node}/config (retained)" in result.stdout
    assert '"p": "binary_sensor"' in result.stdout
    assert f'"unique_id": "{node}_gpio0"' in result.stdout
    assert f'"command_topic": "{config.base}/gpio/0/set"' in result.stdout

    document["homeassistant"]["discovery_mode"] = "entity"
    config.path.write_text(yaml.safe_dump(document))
    result = run_cli("discovery", "--config", str(config.path))

    assert f"{prefix}/switch/{node}/gpio0/config (retained)" in result.stdout
    assert f"{prefix}/binary_sensor/{node}/gpio3/config (retained)" in result.stdout
    assert f'"unique_id": "{node}_gpio0"' in result.stdout


def test_discovery_prints_the_light_and_the_sensors_of_the_board_asked_for(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, 1883, 20049)
    document = yaml.safe_load(config.path.read_text())
    document |= {"everloop": None, "sensors": {"enabled": ["temperature"]}}
    config.path.write_text(yaml.safe_dump(document))
    creator = run_cli("discovery", "--config", str(config.path))
    voice = run_cli("discovery", "--config", str(config.path), "--board", "voice")

    assert creator.returncode == voice.returncode == 0, creator.stderr + voice.stderr
    node = document["homeassistant"]["node_id"]
    for result in (creator, voice):
        assert f'"unique_id": "{node}_everloop"' in result.stdout
    assert f'"unique_id": "{node}_temperature"' in creator.stdout
    assert '"model": "MATRIX Creator"' in creator.stdout
    assert f'"unique_id": "{node}_temperature"' not in voice.stdout
    assert '"model": "MATRIX Voice"' in voice.stdout


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


@pytest.mark.parametrize("command", sorted(EXIT_CODES))
def test_each_command_describes_itself_and_its_exit_status(command: str) -> None:
    result = run_cli(command, "--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "exit status: 0" in text
    description = result.stdout.split("\n\n")[1]  # after the usage lines
    assert not description.lstrip().startswith("options:"), result.stdout


def test_simulate_help_says_where_it_binds_and_that_it_takes_four_ports() -> None:
    text = " ".join(run_cli("simulate", "--help").stdout.split())

    assert "default 127.0.0.1" in text
    assert "BASE+3" in text
    assert "default 20049" in text
    assert "--sensors" in text and "IMU 20013" in text and "(implies --sensors)" in text
    assert "--board {creator,voice}" in text


def test_discovery_into_a_pipe_closed_early_ends_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"pins": [{"pin": pin, "mode": "output"} for pin in range(16)]})
    )
    shell = f"{sys.executable} -m mqtt_gpio_bridge discovery --config {config} | head -n 1"

    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        capture_output=True,
        text=True,
        timeout=STARTUP,
        env=child_env(),
        check=False,
    )

    assert result.stdout.endswith("(retained)\n")
    assert result.stderr == ""


def test_demo_without_a_config_to_find_names_no_file_called_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(demo_module, "EXAMPLE_CONFIG", "no-such-example.yaml")
    monkeypatch.chdir(tmp_path)

    assert main(["demo"]) == 2

    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "configuration problems:",
        "  no-such-example.yaml not found here; pass --config PATH",
    ]


def test_demo_finds_the_example_config_from_anywhere_in_a_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    assert demo_module._find_example() == ROOT / "config.example.yaml"
