"""Prove in a real Home Assistant what the bridge's MQTT discovery does to HA's entities.

    .venv/bin/python scripts/ha_check.py [--keep] [--ha-version X] [--restart-ha]
        [--bridge-src DIR] [--phase NAME=CONFIG[@SRC] ...] [--voice NAME ...]

Installs Home Assistant once into a cache venv outside the repository (~/.cache/
mqtt-gpio-bridge/ha-venv, or $HA_CHECK_CACHE; the newest release pip accepts for the newest
pyenv Python 3.13+), then starts a Mosquitto on a free port, a fresh Home Assistant (its own
config directory, minimal configuration.yaml, onboarded over its HTTP API, the MQTT integration
added through its config flow, as the UI does) and the simulated MALOS drivers.

Each PHASE runs `python -m mqtt_gpio_bridge run` with one bridge config (from the repository,
or from SRC: e.g. an unpacked `git archive` of a release, to upgrade from it), waits until the
broker holds exactly the discovery configs that config announces and HA's entity registry
exactly its entities, drives every entity (switches on and off and the servo to 90 through HA,
the input and its press event on the simulator), records HA's entity registry, devices and
states, and stops the bridge. Checks, phase against phase: a unique id keeps its entity id and
its registry entry, no unique id has two entities, no entity id with a `_2`, a removed pin's
entity and state are gone, one device throughout, the broker's retained configs are exactly the
announced ones, the states followed the commands, a user's customisation (name and area, set in
the first phase) survives, HA logged no error and no MQTT warning, and (at the end) HA's stored
registry agrees with its live one. --restart-ha restarts HA after the last phase and runs it
once more.

A phase whose config has `everloop` or `sensors` also runs, in this process, the simulated
Everloop driver (a MATRIX Creator, or a Voice with --voice NAME) and, with `sensors`, the four
simulated sensor drivers reading known values, on free ports written into its config. Its
checks: the device's model is the board's; the light (unique id `<node>_everloop`, its entity
id, supported_color_modes ["rgbw"], the effect list, available) turned on through HA with an
RGBW colour and a brightness shows that image on the simulated ring and HA's state that colour,
an effect selected through HA draws frames on the ring, turn_off darkens it; on a Creator each
enabled sensor has its entity id, unit, device class, state class and display precision, its
value is the simulated driver's (pressure in hPa), the UV index has the attribute `risk`, and
stopping the humidity driver makes humidity and temperature unavailable and nothing else; on a
Voice no sensor entity exists and no sensor config was announced during the phase.

It prints the phases, the checks and the timings as tables and exits 0 if every check passed,
1 if one failed, 2 if the harness itself could not run.

A phase's config is any bridge config: the harness overrides only what it must (broker
address, MALOS ports, the discovery prefix `homeassistant`) and reads what to expect from the
bridge's own `discovery` command, per-entity topics or a device topic's `cmps` alike. Without
--phase: A (two outputs, an input with press events, a servo), B (A again: a restart must
change nothing), C (A without pin 1: its entity must go), D (C with the LED ring and all
sixteen sensor values, on a Creator), E (D on a Voice: the sensors' entities must go).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as paho
import yaml

try:
    from websockets.sync.client import ClientConnection
    from websockets.sync.client import connect as ws_connect
except ImportError:  # pragma: no cover - the dev venv has it (through amqtt)
    sys.exit(
        "ha_check.py needs the `websockets` package (the dev venv has it): pip install websockets"
    )

REPO = Path(__file__).resolve().parent.parent
BRIDGE_PYTHON = sys.executable
CACHE = Path(os.environ.get("HA_CHECK_CACHE", Path.home() / ".cache" / "mqtt-gpio-bridge"))
PREFIX = "homeassistant"  # the discovery prefix HA listens on (the MQTT integration's default)
AREA_NAME = "HA check area"
CUSTOM_NAME = "HA check custom name"
SERVO_ANGLE = 90

BUILTIN_A = {
    "mqtt": {"base_topic": "hachk"},
    "malos": {"update_interval": 0.02},
    "homeassistant": {"node_id": "hachk", "device_name": "MATRIX GPIO"},
    "pins": [
        {"pin": 0, "mode": "output", "name": "Relay", "initial": "off"},
        {"pin": 1, "mode": "output", "name": "LED", "initial": "off"},
        {"pin": 3, "mode": "input", "name": "Button", "events": ["single"]},
        {"pin": 5, "mode": "servo", "name": "Blinds"},
    ],
}

# The LED ring and the sensors (docs/everloop.md, docs/sensors.md): what HA sends, what the
# simulated drivers read, and what HA must make of it, written down here from the docs rather
# than taken from the bridge's code.
LIGHT_COLOR = (255, 80, 0, 0)
LIGHT_BRIGHTNESS = 128
LIGHT_EFFECT = "spin"
LIGHT_EFFECTS = ["rainbow", "spin", "breathe", "blink"]
BOARD_MODELS = {"creator": "MATRIX Creator", "voice": "MATRIX Voice"}
DEFAULT_MODEL = "MATRIX Creator"  # homeassistant.model's default: the board found replaces it
BOARD_LEDS = {"creator": 35, "voice": 18}
SENSOR_DRIVERS = ("humidity", "pressure", "uv", "imu")
DEFAULT_SENSORS = ["humidity", "temperature", "pressure", "uv_index", "yaw", "pitch", "roll"]
UV_RISK = "High"  # the risk word of the UV index below (6 <= 6.5 < 8)


@dataclass(frozen=True)
class SensorValue:
    """One sensor value: its driver, what the simulated driver reads (in the driver's unit),
    and what Home Assistant must show: its state, unit, device class, display precision."""

    driver: str
    reads: float
    state: float
    unit: str
    device_class: str | None
    precision: int


SENSOR_VALUES = {
    "humidity": SensorValue("humidity", 45.5, 45.5, "%", "humidity", 1),
    "temperature": SensorValue("humidity", 22.3, 22.3, "°C", "temperature", 1),
    # Published in Pa, shown in hPa: 101325 Pa is 1013.25 hPa (1013.2 at one decimal).
    "pressure": SensorValue("pressure", 101325.0, 1013.25, "hPa", "pressure", 1),
    "uv_index": SensorValue("uv", 6.5, 6.5, "UV index", None, 1),
    "yaw": SensorValue("imu", 12.0, 12.0, "°", None, 0),
    "pitch": SensorValue("imu", -3.0, -3.0, "°", None, 0),
    "roll": SensorValue("imu", 45.0, 45.0, "°", None, 0),
    "accel_x": SensorValue("imu", 0.12, 0.12, "g", None, 2),
    "accel_y": SensorValue("imu", -0.05, -0.05, "g", None, 2),
    "accel_z": SensorValue("imu", 0.98, 0.98, "g", None, 2),
    "gyro_x": SensorValue("imu", 1.5, 1.5, "°/s", None, 1),
    "gyro_y": SensorValue("imu", -2.5, -2.5, "°/s", None, 1),
    "gyro_z": SensorValue("imu", 10.0, 10.0, "°/s", None, 1),
    "mag_x": SensorValue("imu", 0.123, 0.123, "G", None, 3),
    "mag_y": SensorValue("imu", -0.456, -0.456, "G", None, 3),
    "mag_z": SensorValue("imu", 0.789, 0.789, "G", None, 3),
}


class HarnessError(Exception):
    """The harness could not do its job (not a failed check)."""


class ProcessDied(HarnessError):
    """A process the harness started exited: no use waiting any longer."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.2) -> Any:
    """Poll `condition` until it returns something true; fail after `timeout` naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except ProcessDied:
            raise
        except (OSError, HarnessError):  # not up yet (URLError is an OSError)
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# --- ports and processes ---------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, avoid: set[int]) -> int:
    """The first of `count` consecutive free ports, none of them in `avoid`."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = int(sock.getsockname()[1])
        block = set(range(first, first + count))
        if first + count <= 65535 and not block & avoid and all(map(port_is_free, block)):
            avoid |= block
            return first
    raise HarnessError(f"found no {count} consecutive free ports")


class Processes:
    """Every process the harness starts, each in its own session, stopped by its own id."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: list[str], stdin: bool = False, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        out = (self.logdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,  # `python -m` imports the package from here first
        )
        out.close()
        self.running[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 20.0) -> float:
        """SIGTERM then, after `timeout`, SIGKILL; returns the seconds it took."""
        proc = self.running.pop(name, None)
        started = time.monotonic()
        if proc is None or proc.poll() is not None:
            return 0.0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} ignored SIGTERM for {timeout:.0f} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return time.monotonic() - started

    def check_alive(self, name: str) -> None:
        proc = self.running.get(name)
        if proc is not None and proc.poll() is not None:
            tail = (self.logdir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise ProcessDied(f"{name} exited with status {proc.returncode}:\n{tail}")

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)


# --- Home Assistant installation -------------------------------------------------------------


def candidate_pythons() -> list[Path]:
    """pyenv's Pythons 3.13 and later, the newest first (HA 2025.x needs 3.13)."""
    found = []
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for path in glob.glob(str(root / "3.*" / "bin" / "python")):
        version = tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.parent.name)[:3])
        if version >= (3, 13):
            found.append((version, Path(path)))
    return [path for _, path in sorted(found, reverse=True)]


def installed_version(venv: Path) -> str | None:
    hass_python = venv / "bin" / "python"
    if not (venv / "bin" / "hass").exists():
        return None
    probe = subprocess.run(
        [str(hass_python), "-c", "from homeassistant.const import __version__; print(__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def pip_install(venv: Path, python: Path, requirement: str) -> bool:
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-U", "pip"], check=True, timeout=600
        )
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", requirement],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        log(f"pip install {requirement} failed: {result.stderr.strip()[-600:]}")
    return result.returncode == 0


def available_versions(venv: Path) -> list[str]:
    """Home Assistant's stable releases this venv's Python may install, the newest first."""
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "index", "versions", "homeassistant"],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Available versions: (.*)", result.stdout)
    versions = match.group(1).split(", ") if match else []
    return [v for v in versions if re.fullmatch(r"\d+\.\d+\.\d+", v)]


def ensure_home_assistant(pinned: str | None) -> tuple[Path, str, float | None]:
    """The cached venv's directory, its HA version, and the install's seconds (None: cached)."""
    pythons = candidate_pythons()
    if not pythons:
        raise HarnessError("no pyenv Python 3.13+ found (Home Assistant 2025.x needs one)")
    python = pythons[0]
    venv = CACHE / (f"ha-venv-{pinned}" if pinned else "ha-venv")
    version = installed_version(venv)
    if version and (pinned is None or version == pinned):
        return venv, version, None
    started = time.monotonic()
    log(f"installing Home Assistant {pinned or '(newest)'} with {python} into {venv}")
    if pip_install(venv, python, f"homeassistant=={pinned}" if pinned else "homeassistant"):
        version = installed_version(venv)
    if not version and not pinned:
        # The newest did not install or does not run: walk down the releases pip may install.
        for candidate in available_versions(venv)[:5]:
            log(f"trying Home Assistant {candidate}")
            if pip_install(venv, python, f"homeassistant=={candidate}"):
                version = installed_version(venv)
                if version:
                    break
    if not version:
        raise HarnessError(f"could not install a working Home Assistant into {venv}")
    return venv, version, time.monotonic() - started


# --- Home Assistant's HTTP and websocket APIs ------------------------------------------------


class HomeAssistant:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.client_id = f"{self.url}/"
        self.token: str | None = None
        self.ws: ClientConnection | None = None
        self.next_id = 1

    def http(self, method: str, path: str, body: Any = None, form: bool = False) -> Any:
        data = None
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None and form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as err:
            raise HarnessError(f"{method} {path}: {err.code} {err.read().decode()[:500]}") from err
        return json.loads(text) if text else None

    def onboard(self) -> None:
        """Create the owner through onboarding and trade its auth code for an access token."""
        answer = self.http(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": self.client_id,
                "name": "HA check",
                "username": "hacheck",
                "password": "hacheck-password",
                "language": "en",
            },
        )
        tokens = self.http(
            "POST",
            "/auth/token",
            {
                "grant_type": "authorization_code",
                "code": answer["auth_code"],
                "client_id": self.client_id,
            },
            form=True,
        )
        self.token = tokens["access_token"]

    def connect_ws(self) -> None:
        self.ws = ws_connect(self.url.replace("http", "ws", 1) + "/api/websocket", max_size=None)
        json.loads(self.ws.recv())  # auth_required
        self.ws.send(json.dumps({"type": "auth", "access_token": self.token}))
        answer = json.loads(self.ws.recv())
        if answer.get("type") != "auth_ok":
            raise HarnessError(f"websocket authentication failed: {answer}")

    def call(self, kind: str, **fields: Any) -> Any:
        assert self.ws is not None
        message_id = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": message_id, "type": kind, **fields}))
        while True:
            answer = json.loads(self.ws.recv(timeout=30))
            if answer.get("id") == message_id and answer.get("type") == "result":
                if not answer.get("success"):
                    raise HarnessError(f"{kind} failed: {answer.get('error')}")
                return answer.get("result")

    def add_mqtt(self, broker_port: int) -> str:
        """Add the MQTT integration through its config flow (the UI's path); its entry's id."""
        flow = self.http("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        if flow.get("step_id") != "broker":
            raise HarnessError(f"MQTT config flow: unexpected first step {flow}")
        result = self.http(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": "127.0.0.1", "port": broker_port},
        )
        if result.get("type") != "create_entry":
            raise HarnessError(f"MQTT config flow did not create an entry: {result}")
        return str(result["result"]["entry_id"])

    def service(self, domain: str, service: str, entity_id: str, **data: Any) -> None:
        self.call(
            "call_service",
            domain=domain,
            service=service,
            target={"entity_id": entity_id},
            service_data=data,
        )

    def states(self) -> dict[str, dict[str, Any]]:
        return {state["entity_id"]: state for state in self.call("get_states")}


# --- what a bridge config announces -----------------------------------------------------------


@dataclass
class Expected:
    """One entity a config announces, from the bridge's own `discovery` output."""

    unique_id: str
    domain: str
    config: dict[str, Any]

    def get(self, key: str, abbreviation: str) -> Any:
        return self.config.get(key, self.config.get(abbreviation))

    @property
    def pin(self) -> int | None:
        topic = self.get("state_topic", "stat_t") or ""
        match = re.search(r"/gpio/(\d+)/(state|event)$", topic)
        return int(match.group(1)) if match else None


def announced(
    config_file: Path, src: Path, board: str | None = None
) -> tuple[dict[str, Expected], set[str]]:
    """The entities `discovery --config` lists (for `board`, when the config pings the LED
    ring), per-entity topics and device `cmps` alike, and the topics that end up holding a
    config."""
    argv = [BRIDGE_PYTHON, "-m", "mqtt_gpio_bridge", "discovery", "--config", str(config_file)]
    if board is not None:
        argv += ["--board", board]
    output = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=True,
        cwd=src,
    ).stdout
    decoder = json.JSONDecoder()
    found: dict[str, Expected] = {}
    topics: set[str] = set()
    for match in re.finditer(r"^(\S+/config)\b[^\n]*\n", output, re.MULTILINE):
        try:
            payload, _ = decoder.raw_decode(output[match.end() :].lstrip())
        except json.JSONDecodeError:
            continue  # an empty payload: a topic being cleared
        if not isinstance(payload, dict) or payload.get("migrate_discovery"):
            continue
        topics.add(match.group(1))
        parts = match.group(1).split("/")
        components = payload.get("cmps", payload.get("components"))
        if isinstance(components, dict):  # device-based discovery
            for component in components.values():
                domain = component.get("platform", component.get("p"))
                unique_id = component.get("unique_id", component.get("uniq_id"))
                if unique_id:
                    found[unique_id] = Expected(unique_id, domain, {**payload, **component})
            continue
        unique_id = payload.get("unique_id", payload.get("uniq_id"))
        if unique_id and len(parts) >= 4:
            found[unique_id] = Expected(unique_id, parts[-4], payload)
    return found, topics


class Retained:
    """The discovery configs the broker holds under the prefix, kept current by a subscription."""

    def __init__(self, port: int) -> None:
        self.configs: dict[str, bytes] = {}
        self.history: list[tuple[str, bytes]] = []  # every config message, in order
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ha-check-watch")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/#", qos=1)
        self.client.loop_start()

    def _message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        if not message.topic.endswith("/config"):
            return  # e.g. HA's birth message on <prefix>/status
        self.history.append((message.topic, bytes(message.payload)))
        if message.payload:
            self.configs[message.topic] = message.payload
        else:
            self.configs.pop(message.topic, None)

    def topics(self) -> set[str]:
        return set(self.configs)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def phase_config(source: dict[str, Any], ports: dict[str, int], path: Path) -> Path:
    """`source` with the harness's broker, MALOS ports and discovery prefix, written to `path`."""
    config = json.loads(json.dumps(source))
    mqtt = config.setdefault("mqtt", {})
    for key in ("tls", "username", "password", "password_file", "password_env"):
        mqtt.pop(key, None)
    mqtt.update(host="127.0.0.1", port=ports["broker"])
    malos = config.setdefault("malos", {})
    malos.update(host="127.0.0.1", base_port=ports["gpio"], servo_port=ports["servo"])
    # Only with the sections that use them: an earlier release's config knows no such keys.
    if "everloop" in config or "sensors" in config:
        malos["everloop_port"] = ports["everloop"]
    if "sensors" in config:
        malos.update({f"{driver}_port": ports[driver] for driver in SENSOR_DRIVERS})
    config.setdefault("homeassistant", {}).update(discovery=True, prefix=PREFIX)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- one phase -------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    source: str
    config: Path
    src: Path = REPO  # the bridge's source tree this phase runs
    board: str = "creator"  # the board the simulated LED ring and sensors are
    expected: dict[str, Expected] = field(default_factory=dict)
    expected_topics: set[str] = field(default_factory=set)
    retained_topics: set[str] = field(default_factory=set)
    registry: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    ready_states: dict[str, str] = field(default_factory=dict)
    final_states: dict[str, str] = field(default_factory=dict)
    actions: list[tuple[str, str, bool, str]] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    cleared_conflicts: list[str] = field(default_factory=list)  # benign: see classify_log
    timings: dict[str, float] = field(default_factory=dict)
    features: list[tuple[str, bool, str]] = field(default_factory=list)  # ring and sensors
    history_start: int = 0  # where this phase begins in Retained.history

    def by_unique_id(self) -> dict[str, dict[str, Any]]:
        return {entry["unique_id"]: entry for entry in self.registry}

    @property
    def settings(self) -> dict[str, Any]:
        """The bridge config this phase runs, as written."""
        loaded = yaml.safe_load(self.config.read_text())
        return loaded if isinstance(loaded, dict) else {}

    @property
    def pings_ring(self) -> bool:
        """Whether the bridge asks the Everloop driver for the board (`everloop` or `sensors`)."""
        settings = self.settings
        return "everloop" in settings or "sensors" in settings


class Run:
    def __init__(
        self, ha: HomeAssistant, procs: Processes, entry_id: str, ha_log: Path, retained: Retained
    ) -> None:
        self.ha = ha
        self.retained = retained
        self.procs = procs
        self.entry_id = entry_id
        self.ha_log = ha_log
        self.sim: IO[bytes] | None = None
        self.everloop: Any = None  # the phase's SimulatedEverloopDriver
        self.sensors: dict[str, Any] = {}  # its simulated sensor drivers, by driver name
        self.area_id: str | None = None
        self.customised: str | None = None  # the unique id whose entity the user renamed

    def mqtt_registry(self) -> list[dict[str, Any]]:
        entries = self.ha.call("config/entity_registry/list")
        return [entry for entry in entries if entry.get("platform") == "mqtt"]

    def simulate(self, line: str) -> None:
        assert self.sim is not None
        self.sim.write(f"{line}\n".encode())
        self.sim.flush()

    def wait_state(self, entity_id: str, accept: Callable[[dict[str, Any]], bool]) -> str:
        def check() -> str | None:
            state = self.ha.states().get(entity_id)
            return state["state"] if state and accept(state) else None

        try:
            return str(wait_for(check, 10, f"{entity_id}'s state"))
        except HarnessError:
            state = self.ha.states().get(entity_id)
            return f"timed out at {state['state'] if state else 'no state'}"

    def drive(self, phase: Phase, entity_ids: dict[str, str]) -> None:
        """Command every entity and check HA's state follows; records (entity, action, ok)."""
        for unique_id, expected in sorted(phase.expected.items()):
            entity_id = entity_ids.get(unique_id)
            if entity_id is None:
                continue
            if expected.domain == "switch":
                for service, want in (("turn_on", "on"), ("turn_off", "off")):
                    self.ha.service("switch", service, entity_id)
                    got = self.wait_state(entity_id, lambda s, w=want: s["state"] == w)
                    phase.actions.append((entity_id, f"switch.{service}", got == want, got))
            elif expected.domain == "number":
                self.ha.service("number", "set_value", entity_id, value=SERVO_ANGLE)
                got = self.wait_state(entity_id, lambda s: _number(s["state"]) == SERVO_ANGLE)
                ok = _number(got) == SERVO_ANGLE
                phase.actions.append((entity_id, f"number.set_value {SERVO_ANGLE}", ok, got))
            elif expected.domain == "binary_sensor" and expected.pin is not None:
                for level in ("on", "off"):
                    self.simulate(f"{expected.pin} {level}")
                    got = self.wait_state(entity_id, lambda s, w=level: s["state"] == w)
                    phase.actions.append(
                        (entity_id, f"sim pin {expected.pin} {level}", got == level, got)
                    )
            elif expected.domain == "event" and expected.pin is not None:
                types = expected.get("event_types", "evt_typ") or []
                if "single" not in types:
                    continue
                before = self.ha.states().get(entity_id, {}).get("state")
                self.simulate(f"{expected.pin} press 150")
                got = self.wait_state(
                    entity_id,
                    lambda s, b=before: (
                        s["state"] != b and s["attributes"].get("event_type") == "single"
                    ),
                )
                ok = not got.startswith("timed out")
                phase.actions.append(
                    (entity_id, f"sim pin {expected.pin} press", ok, "single" if ok else got)
                )

    def customise(self, phase: Phase) -> None:
        """The user's edit: a name and an area on the first switch (else the first entity)."""
        entries = sorted(
            phase.registry,
            key=lambda e: (e["entity_id"].split(".")[0] != "switch", e["unique_id"]),
        )
        if not entries:
            return
        if self.area_id is None:
            self.area_id = self.ha.call("config/area_registry/create", name=AREA_NAME)["area_id"]
        target = entries[0]
        self.ha.call(
            "config/entity_registry/update",
            entity_id=target["entity_id"],
            name=CUSTOM_NAME,
            area_id=self.area_id,
        )
        self.customised = target["unique_id"]
        log(f"customised {target['entity_id']}: name {CUSTOM_NAME!r}, area {self.area_id}")

    # -- the LED ring and the sensors -----------------------------------------------------

    def start_drivers(self, phase: Phase) -> None:
        """The simulated Everloop driver when the phase's config pings the ring, and the four
        sensor drivers with `sensors`, on the ports its config names, as `phase.board`."""
        if not phase.pings_ring:
            return
        from mqtt_gpio_bridge.sim.everloop import SimulatedEverloopDriver
        from mqtt_gpio_bridge.sim.sensors import sensor_drivers

        settings = phase.settings
        malos = settings["malos"]
        self.everloop = SimulatedEverloopDriver(
            "127.0.0.1", malos["everloop_port"], board=phase.board
        )
        self.everloop.start()
        if "sensors" in settings:
            ports = {driver: malos[f"{driver}_port"] for driver in SENSOR_DRIVERS}
            self.sensors = {
                driver.name.lower(): driver
                for driver in sensor_drivers("127.0.0.1", phase.board, ports)
            }
            for name, value in SENSOR_VALUES.items():
                self.sensors[value.driver].set(**{name: value.reads})
            for driver in self.sensors.values():
                driver.start()

    def stop_drivers(self) -> None:
        for driver in [self.everloop, *self.sensors.values()]:
            if driver is not None:
                driver.stop()
        self.everloop = None
        self.sensors = {}

    def wait_attributes(
        self, entity_id: str, accept: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> tuple[bool, dict[str, Any]]:
        """(whether `accept` took the entity's state within `timeout`, its last state)."""
        last: dict[str, Any] = {}

        def check() -> bool:
            nonlocal last
            last = self.ha.states().get(entity_id) or {}
            return bool(last) and accept(last)

        try:
            wait_for(check, timeout, f"{entity_id}'s state")
        except HarnessError:
            return False, last
        return True, last

    def wait_ring(self, accept: Callable[[Any], bool], timeout: float = 10) -> tuple[bool, Any]:
        """(whether the ring showed an image `accept` takes within `timeout`, what it shows)."""
        assert self.everloop is not None
        ring = self.everloop
        try:
            wait_for(lambda: accept(ring.shown), timeout, "the ring", 0.05)
        except HarnessError:
            return False, ring.shown
        return True, ring.shown

    def check_features(self, phase: Phase, entity_ids: dict[str, str]) -> None:
        """The LED ring's light, the sensors, the board's model, and (last: it stops a driver)
        the humidity driver's entities going unavailable alone; rows in `phase.features`."""
        if not phase.pings_ring:
            return
        settings = phase.settings
        ha_settings = settings.get("homeassistant") or {}
        add = lambda check, ok, detail="": phase.features.append((check, ok, detail))  # noqa: E731

        model = ha_settings.get("model", DEFAULT_MODEL)
        want_model = BOARD_MODELS[phase.board] if model == DEFAULT_MODEL else model
        models = [d.get("model") for d in phase.devices]
        add("device model = the board", models == [want_model], f"{models}, want {want_model}")

        light = next((e for e in phase.expected.values() if e.domain == "light"), None)
        if "everloop" in settings:
            if light is None:
                add("light announced", False, "no light in the bridge's discovery configs")
            else:
                self.check_light(phase, light, entity_ids.get(light.unique_id), add)

        if "sensors" not in settings:
            return
        enabled = list((settings.get("sensors") or {}).get("enabled") or DEFAULT_SENSORS)
        node = _node_id(phase)
        if phase.board == "voice":
            self.check_no_sensors(phase, node, add)
            return
        sensors = {name: entity_ids.get(f"{node}_{name}") for name in enabled}
        self.check_sensors(phase, sensors, add)
        self.check_humidity_stop(
            phase, sensors, entity_ids.get(light.unique_id) if light else None, add
        )

    def check_light(
        self,
        phase: Phase,
        light: Expected,
        entity_id: str | None,
        add: Callable[[str, bool, str], None],
    ) -> None:
        node = _node_id(phase)
        want_id = _entity_id("light", light)
        state = self.ha.states().get(entity_id or "", {})
        attributes = state.get("attributes", {})
        problems = []
        if light.unique_id != f"{node}_everloop":
            problems.append(f"unique id {light.unique_id}, want {node}_everloop")
        if entity_id != want_id:
            problems.append(f"entity id {entity_id}, want {want_id}")
        if attributes.get("supported_color_modes") != ["rgbw"]:
            problems.append(f"supported_color_modes {attributes.get('supported_color_modes')}")
        if attributes.get("effect_list") != LIGHT_EFFECTS:
            problems.append(f"effect_list {attributes.get('effect_list')}")
        if state.get("state") in (None, "unavailable"):
            problems.append(f"state {state.get('state')}")
        add(
            "light: ids, rgbw, effects, available",
            not problems,
            "; ".join(problems) or f"{entity_id} ({light.unique_id}) {state.get('state')}",
        )
        if entity_id is None or self.everloop is None:
            return
        leds = BOARD_LEDS[phase.board]
        lit = tuple(int(c * LIGHT_BRIGHTNESS / 255 + 0.5) for c in LIGHT_COLOR)

        self.ha.service(
            "light",
            "turn_on",
            entity_id,
            rgbw_color=list(LIGHT_COLOR),
            brightness=LIGHT_BRIGHTNESS,
        )
        state_ok, state = self.wait_attributes(
            entity_id,
            lambda s: (
                s["state"] == "on"
                and list(s["attributes"].get("rgbw_color") or []) == list(LIGHT_COLOR)
                and s["attributes"].get("brightness") == LIGHT_BRIGHTNESS
                and s["attributes"].get("color_mode") == "rgbw"
            ),
        )
        add("light: HA state on, that colour", state_ok, _light_state(state))
        # An effect an earlier phase left is kept through off and a restart and goes on in the
        # new colour (docs/everloop.md; HA shows no effect while off): end it, with HA's "off".
        note = ""
        running = state.get("attributes", {}).get("effect")
        if running not in (None, "off"):
            self.ha.service("light", "turn_on", entity_id, effect="off")
            ended, _ = self.wait_attributes(
                entity_id, lambda s: s["attributes"].get("effect") in (None, "off")
            )
            note = f" (the {running} resumed, ended with effect off{'' if ended else ': failed'})"
        shown_ok, shown = self.wait_ring(lambda image: image == (lit,) * leds)
        add(
            f"light: turn_on rgbw {list(LIGHT_COLOR)} brightness {LIGHT_BRIGHTNESS} -> ring",
            shown_ok,
            (f"{leds} x {lit}" if shown_ok else f"ring shows {_ring(shown)}, want {leds} x {lit}")
            + note,
        )

        before = len(self.everloop.images)
        self.ha.service("light", "turn_on", entity_id, effect=LIGHT_EFFECT)
        effect_ok, state = self.wait_attributes(
            entity_id,
            lambda s: s["state"] == "on" and s["attributes"].get("effect") == LIGHT_EFFECT,
        )
        time.sleep(1.5)
        frames = [image.leds for image in self.everloop.images[before:]]
        distinct = set(frames)
        moving = len(distinct) >= 3 and any(any(any(led) for led in frame) for frame in frames)
        add(
            f"light: effect {LIGHT_EFFECT} -> frames on the ring",
            moving and effect_ok,
            f"{len(frames)} frames in 1.5 s, {len(distinct)} different; HA {_light_state(state)}",
        )

        self.ha.service("light", "turn_off", entity_id)
        dark_ok, shown = self.wait_ring(lambda image: image == ((0, 0, 0, 0),) * leds)
        off_ok, state = self.wait_attributes(entity_id, lambda s: s["state"] == "off")
        add(
            "light: turn_off -> ring dark, HA off",
            dark_ok and off_ok,
            f"ring {'dark' if dark_ok else _ring(shown)}; HA {state.get('state')}",
        )

    def check_sensors(
        self, phase: Phase, sensors: dict[str, str | None], add: Callable[[str, bool, str], None]
    ) -> None:
        by_uid = {e.unique_id: e for e in phase.expected.values()}
        node = _node_id(phase)
        problems, precision = [], []
        for name, entity_id in sensors.items():
            want = SENSOR_VALUES[name]
            expected = by_uid.get(f"{node}_{name}")
            if entity_id is None or expected is None:
                problems.append(f"{name}: no entity")
                continue
            want_id = _entity_id("sensor", expected)
            if entity_id != want_id:
                problems.append(f"{name}: entity id {entity_id}, want {want_id}")
            attributes = self.ha.states().get(entity_id, {}).get("attributes", {})
            for key, value in (
                ("unit_of_measurement", want.unit),
                ("device_class", want.device_class),
                ("state_class", "measurement"),
            ):
                if attributes.get(key) != value:
                    problems.append(f"{name}: {key} {attributes.get(key)!r}, want {value!r}")
            entry = self.ha.call("config/entity_registry/get", entity_id=entity_id)
            shown = (entry.get("options") or {}).get("sensor", {})
            got = shown.get("suggested_display_precision")
            if got != want.precision:
                precision.append(f"{name}: {got}, want {want.precision}")
        add(
            "sensors: ids, unit, device_class, state_class",
            not problems,
            "; ".join(problems) or f"{len(sensors)} sensors",
        )
        add(
            "sensors: suggested display precision",
            not precision,
            "; ".join(precision) or f"{len(sensors)} sensors",
        )

        def matches(name: str, state: dict[str, Any]) -> bool:
            value = _number(str(state.get("state")))
            want = SENSOR_VALUES[name]
            return value is not None and abs(value - want.state) <= 0.5 * 10**-want.precision

        wrong: list[str] = []

        def all_match() -> bool:
            states = self.ha.states()
            wrong[:] = [
                f"{name} {states.get(eid or '', {}).get('state')} (want {want.state})"
                for name, eid in sensors.items()
                for want in [SENSOR_VALUES[name]]
                if not matches(name, states.get(eid or "", {}))
            ]
            return not wrong

        with contextlib.suppress(HarnessError):
            wait_for(all_match, 15, "the sensors' values")
        states = self.ha.states()
        shown = ", ".join(
            f"{name} {states.get(eid or '', {}).get('state')}" for name, eid in sensors.items()
        )
        add("sensors: values = the simulated drivers'", not wrong, "; ".join(wrong) or shown)
        if "uv_index" in sensors:
            attributes = states.get(sensors["uv_index"] or "", {}).get("attributes", {})
            add(
                "sensors: UV index has attribute risk",
                attributes.get("risk") == UV_RISK,
                f"risk {attributes.get('risk')!r}, want {UV_RISK!r}",
            )

    def check_humidity_stop(
        self,
        phase: Phase,
        sensors: dict[str, str | None],
        light: str | None,
        add: Callable[[str, bool, str], None],
    ) -> None:
        """Stop the humidity driver: its values go unavailable, nothing else does."""
        own = [eid for name, eid in sensors.items() if eid and name in ("humidity", "temperature")]
        others = [eid for name, eid in sensors.items() if eid and eid not in own]
        others += [light] if light else []
        if not own or "humidity" not in self.sensors:
            return
        started = time.monotonic()
        self.sensors["humidity"].stop()

        def gone() -> bool:
            states = self.ha.states()
            return all(states.get(eid, {}).get("state") == "unavailable" for eid in own)

        try:
            wait_for(gone, 20, "the humidity driver's entities to go unavailable")
            detail = f"{', '.join(own)} unavailable after {time.monotonic() - started:.1f} s"
            ok = True
        except HarnessError:
            states = self.ha.states()
            detail = ", ".join(f"{eid} {states.get(eid, {}).get('state')}" for eid in own)
            ok = False
        add("humidity driver stopped: its entities unavailable", ok, detail)
        time.sleep(1.0)
        states = self.ha.states()
        down = [eid for eid in others if states.get(eid, {}).get("state") in (None, "unavailable")]
        add(
            "humidity driver stopped: light, other sensors available",
            not down,
            f"unavailable: {down}" if down else f"{len(others)} entities available",
        )

    def check_no_sensors(
        self, phase: Phase, node: str, add: Callable[[str, bool, str], None]
    ) -> None:
        """On a Voice: no sensor entity in HA, and no sensor ever announced during the phase."""
        uids = {f"{node}_{name}" for name in SENSOR_VALUES}
        found = sorted(e["entity_id"] for e in phase.registry if e["unique_id"] in uids)
        add("voice: no sensor entity", not found, f"found {found}" if found else "none")
        announced_sensors = []
        for topic, payload in self.retained.history[phase.history_start :]:
            with contextlib.suppress(ValueError):
                document = json.loads(payload) if payload else {}
                components = document.get("cmps", document.get("components")) or {}
                for key, component in components.items():
                    if f"{node}_{key}" in uids and set(component) - {"p", "platform"}:
                        announced_sensors.append(f"{topic}:{key}")
                if document.get("unique_id", document.get("uniq_id")) in uids:
                    announced_sensors.append(topic)
        add(
            "voice: no sensor config announced",
            not announced_sensors,
            f"{announced_sensors}" if announced_sensors else "none on the broker during the phase",
        )

    def run_phase(self, phase: Phase, first: bool, log_start: int | None = None) -> None:
        """Run the bridge with the phase's config; `log_start`: where in HA's log it begins
        (default: the log's end; 0 after HA restarted, its new log, start-up included)."""
        board = phase.board if phase.pings_ring else None
        phase.expected, phase.expected_topics = announced(phase.config, phase.src, board)
        if log_start is None:
            log_start = self.ha_log.stat().st_size if self.ha_log.exists() else 0
        started = time.monotonic()
        name = f"bridge-{phase.name}"
        phase.history_start = len(self.retained.history)
        self.start_drivers(phase)
        self.procs.start(
            name,
            [BRIDGE_PYTHON, "-m", "mqtt_gpio_bridge", "run", "--config", str(phase.config)],
            cwd=phase.src,
        )
        want = {uid: e.domain for uid, e in phase.expected.items()}

        def ready() -> bool:
            self.procs.check_alive(name)
            if self.retained.topics() != phase.expected_topics:
                return False  # the bridge has not finished (a migration comes in batches)
            registry = self.mqtt_registry()
            have = {e["unique_id"]: e["entity_id"].split(".")[0] for e in registry}
            if have != want:
                return False
            states = self.ha.states()
            return all(
                states.get(e["entity_id"], {}).get("state") not in (None, "unavailable")
                for e in registry
            )

        try:
            wait_for(ready, 60, f"phase {phase.name}: HA's entities to match {sorted(want)}", 0.3)
        except HarnessError as err:
            registry = self.mqtt_registry()
            got = sorted((e["unique_id"], e["entity_id"]) for e in registry)
            topics = sorted(self.retained.topics())
            raise HarnessError(f"{err}; HA has {got}; the broker holds {topics}") from None
        phase.timings["entities ready"] = time.monotonic() - started
        phase.registry = self.mqtt_registry()
        states = self.ha.states()
        phase.ready_states = {
            e["entity_id"]: states.get(e["entity_id"], {}).get("state", "-") for e in phase.registry
        }
        if first:
            self.customise(phase)
            phase.registry = self.mqtt_registry()
        entity_ids = {e["unique_id"]: e["entity_id"] for e in phase.registry}
        self.drive(phase, entity_ids)
        states = self.ha.states()
        phase.final_states = {
            e["entity_id"]: states.get(e["entity_id"], {}).get("state", "-") for e in phase.registry
        }
        phase.devices = [
            d
            for d in self.ha.call("config/device_registry/list")
            if self.entry_id in d.get("config_entries", [])
        ]
        self.check_features(phase, entity_ids)
        phase.timings["bridge stop"] = self.procs.stop(name)
        self.stop_drivers()  # after the bridge: its clean stop darkens the ring
        time.sleep(0.5)
        phase.retained_topics = self.retained.topics()
        phase.timings["phase"] = time.monotonic() - started
        with self.ha_log.open("rb") as handle:
            handle.seek(log_start)
            text = handle.read().decode(errors="replace")
        phase.log_errors, phase.cleared_conflicts = classify_log(text, phase.expected_topics)


def _node_id(phase: Phase) -> str:
    """The phase's node id: its config's, else the one its MALOS link entity's unique id has."""
    node = (phase.settings.get("homeassistant") or {}).get("node_id")
    if node:
        return str(node)
    for unique_id in phase.expected:
        if unique_id.endswith("_malos"):
            return unique_id.removesuffix("_malos")
    return ""


def _device_name(expected: Expected) -> str:
    device = expected.config.get("device", expected.config.get("dev")) or {}
    return str(device.get("name", ""))


def _entity_id(domain: str, expected: Expected) -> str:
    """The entity id Home Assistant makes from the device's and the entity's names."""
    name = expected.config.get("name", "")
    return f"{domain}.{_slug(f'{_device_name(expected)} {name}')}"


def _slug(text: str) -> str:
    """Home Assistant's entity id slug of a name (ASCII names)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _ring(image: Any) -> str:
    """An image of the ring, short: its distinct LEDs and how many show each."""
    if image is None:
        return "nothing"
    return ", ".join(f"{n} x {led}" for led, n in Counter(image).most_common(3))


def _light_state(state: dict[str, Any]) -> str:
    attributes = state.get("attributes", {})
    keys = ("color_mode", "rgbw_color", "brightness", "effect")
    return f"{state.get('state')} " + " ".join(f"{k}={attributes.get(k)}" for k in keys)


# Start-up noise of this machine, not of MQTT: the camera helpers want the system's libturbojpeg.
IGNORED = ("Error loading libturbojpeg",)
CONFLICT = re.compile(r"conflicting discovery message was received on topic (\S+?)(?: from |;)")


def classify_log(text: str, announced_topics: set[str]) -> tuple[list[str], list[str]]:
    """(problems, benign) among the lines HA logged during a phase.

    Problems: any ERROR, and any MQTT warning, but one: a "conflicting discovery message" on a
    topic this phase's config does not announce is the old form's topic being cleared after a
    migration or a rollback. HA itself asks for that empty payload once the entity moved
    ("publish an empty (retained) payload to <old topic>") and then logs it as a conflict,
    because the entity now belongs to the other topic. A conflict on a topic the config
    announces is a config HA refused: a problem.
    """
    problems, benign = [], []
    for line in text.splitlines():
        if any(noise in line for noise in IGNORED):
            continue
        conflict = CONFLICT.search(line)
        if conflict and conflict.group(1) not in announced_topics:
            benign.append(line)
        elif re.search(r"\b(ERROR|CRITICAL)\b", line) or (
            " WARNING " in line and "homeassistant.components.mqtt" in line
        ):
            problems.append(line)
    return problems, benign


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# --- checks ----------------------------------------------------------------------------------


def check_phases(phases: list[Phase], customised: str | None) -> list[tuple[str, str, bool, str]]:
    rows: list[tuple[str, str, bool, str]] = []
    first_seen: dict[str, tuple[str, dict[str, Any]]] = {}  # unique id -> (phase, entry)
    first_device: str | None = None
    for index, phase in enumerate(phases):
        reg = phase.by_unique_id()
        add = lambda check, ok, detail="", p=phase.name: rows.append((p, check, ok, detail))  # noqa: E731

        have = {e["unique_id"]: e["entity_id"].split(".")[0] for e in phase.registry}
        want = {uid: e.domain for uid, e in phase.expected.items()}
        add("registry = announced entities", have == want, _diff(want, have))

        counts = Counter(e["unique_id"] for e in phase.registry)
        dupes = sorted(uid for uid, n in counts.items() if n > 1)
        add("one entity per unique id", not dupes, ", ".join(dupes))

        suffixed = sorted(
            e["entity_id"] for e in phase.registry if re.search(r"_\d+$", e["entity_id"])
        )
        add("no entity id with a _2 suffix", not suffixed, ", ".join(suffixed))

        moved, recreated = [], []
        for uid, entry in reg.items():
            if uid in first_seen:
                seen_in, old = first_seen[uid]
                if old["entity_id"] != entry["entity_id"]:
                    moved.append(f"{old['entity_id']} ({seen_in}) -> {entry['entity_id']}")
                if old["id"] != entry["id"]:
                    recreated.append(f"{entry['entity_id']} (registry entry replaced)")
            else:
                first_seen[uid] = (phase.name, entry)
        if index:
            add("same unique id -> same entity id", not moved, "; ".join(moved))
            add("same registry entries (not recreated)", not recreated, "; ".join(recreated))

            gone = sorted(set(phases[index - 1].by_unique_id()) - set(want))
            left = sorted(uid for uid in gone if uid in reg)
            stale_states = sorted(
                phases[index - 1].by_unique_id()[uid]["entity_id"]
                for uid in gone
                if phases[index - 1].by_unique_id()[uid]["entity_id"] in phase.final_states
            )
            detail = f"removed {', '.join(gone)}" if gone else "nothing removed"
            if left or stale_states:
                detail += f"; left over: {left + stale_states}"
            add("removed pins' entities gone", not left and not stale_states, detail)

        device_ids = {e["device_id"] for e in phase.registry}
        one = len(device_ids) == 1 and len(phase.devices) == 1
        add(
            "one device for all entities",
            one,
            f"{len(device_ids)} device id(s) in entities, {len(phase.devices)} MQTT device(s)",
        )
        device_id = next(iter(device_ids)) if len(device_ids) == 1 else None
        if first_device is None:
            first_device = device_id
        elif index:
            add("same device as the first phase", device_id == first_device, str(device_id))

        extra = sorted(phase.retained_topics - phase.expected_topics)
        missing = sorted(phase.expected_topics - phase.retained_topics)
        add(
            "broker's retained configs = announced",
            not extra and not missing,
            f"{len(phase.retained_topics)} topics"
            + (f"; left over {extra}" if extra else "")
            + (f"; missing {missing}" if missing else ""),
        )

        failed = [f"{e} {a}: {got}" for e, a, ok, got in phase.actions if not ok]
        add(
            "states follow the commands",
            bool(phase.actions) and not failed,
            f"{len(phase.actions)} actions" + (f"; failed: {failed}" if failed else ""),
        )

        if customised and customised in reg:
            entry = reg[customised]
            ok = entry.get("name") == CUSTOM_NAME and entry.get("area_id") is not None
            add(
                "user customisation kept",
                ok,
                f"{entry['entity_id']}: name={entry.get('name')!r} area={entry.get('area_id')}",
            )

        add(
            "no ERROR, no MQTT warning in HA's log",
            not phase.log_errors,
            f"{len(phase.log_errors)} lines, first: {phase.log_errors[0][:300]}"
            if phase.log_errors
            else (
                f"{len(phase.cleared_conflicts)} conflict warnings for cleared old topics (benign)"
                if phase.cleared_conflicts
                else ""
            ),
        )
    return rows


def with_features(
    phases: list[Phase], rows: list[tuple[str, str, bool, str]]
) -> list[tuple[str, str, bool, str]]:
    """`rows` with each phase's LED ring and sensor checks after its own."""
    rows = rows + [(phase.name, *row) for phase in phases for row in phase.features]
    order = {phase.name: index for index, phase in enumerate(phases)}
    return sorted(rows, key=lambda row: order[row[0]])  # stable: each phase's rows in order


def _diff(want: dict[str, str], have: dict[str, str]) -> str:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    if not missing and not extra:
        return f"{len(have)} entities"
    return f"missing {missing}, unexpected {extra}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def print_report(phases: list[Phase], checks: list[tuple[str, str, bool, str]]) -> None:
    rows = []
    for phase in phases:
        for entry in sorted(phase.registry, key=lambda e: e["entity_id"]):
            rows.append(
                [
                    phase.name,
                    entry["unique_id"],
                    entry["entity_id"],
                    (entry["device_id"] or "-")[:8],
                    entry["id"][:8],
                    str(entry.get("disabled_by")),
                    phase.ready_states.get(entry["entity_id"], "-"),
                    phase.final_states.get(entry["entity_id"], "-")[:26],
                ]
            )
    print()
    print(
        table(
            [
                "phase",
                "unique_id",
                "entity_id",
                "device",
                "reg id",
                "disabled",
                "at start",
                "after drive",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            ["phase", "check", "result", "detail"],
            [[p, c, "PASS" if ok else "FAIL", d] for p, c, ok, d in checks],
        )
    )
    print()
    print(
        table(
            ["phase", "config", "entities ready (s)", "bridge stop (s)", "phase total (s)"],
            [
                [
                    p.name,
                    p.source,
                    f"{p.timings.get('entities ready', 0):.1f}",
                    f"{p.timings.get('bridge stop', 0):.1f}",
                    f"{p.timings.get('phase', 0):.1f}",
                ]
                for p in phases
            ],
        )
    )


# --- the whole run ---------------------------------------------------------------------------


def write_ha_config(config_dir: Path, http_port: int) -> None:
    """A minimal HA: no default_config, only what MQTT, onboarding and the APIs need."""
    (config_dir / "configuration.yaml").write_text(
        "homeassistant:\n"
        "  name: mqtt-gpio-bridge check\n"
        "  latitude: 0\n  longitude: 0\n  elevation: 0\n"
        "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: DE\n"
        "http:\n"
        f"  server_host: 127.0.0.1\n  server_port: {http_port}\n"
        "api:\nconfig:\nonboarding:\nwebsocket_api:\n"
        "logger:\n  default: warning\n  logs:\n    homeassistant.components.mqtt: info\n"
    )


@contextlib.contextmanager
def environment(keep: bool) -> Iterator[tuple[Path, Processes]]:
    workdir = Path(tempfile.mkdtemp(prefix="ha-check-"))
    procs = Processes(workdir)
    try:
        yield workdir, procs
    finally:
        procs.stop_all()
        if keep:
            log(f"kept {workdir} (HA config in {workdir / 'ha'}, logs in {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_phases(
    specs: list[str] | None, default_src: Path, voice: set[str] | None = None
) -> list[tuple[str, str, dict[str, Any], Path, str]]:
    """(name, description, config, bridge source, board) of each phase."""
    voice = voice or set()
    if not specs:
        if voice:
            raise HarnessError("--voice names a phase of --phase (the builtin E is a Voice)")
        without_1 = json.loads(json.dumps(BUILTIN_A))
        without_1["pins"] = [p for p in without_1["pins"] if p["pin"] != 1]
        ring = {
            **without_1,
            "everloop": {},
            "sensors": {"enabled": list(SENSOR_VALUES), "update_interval": 0.5},
        }
        return [
            ("A", "builtin A", BUILTIN_A, default_src, "creator"),
            ("B", "builtin A again", BUILTIN_A, default_src, "creator"),
            ("C", "builtin A without pin 1", without_1, default_src, "creator"),
            ("D", "builtin C + ring + all sensors", ring, default_src, "creator"),
            ("E", "builtin D on a Voice", ring, default_src, "voice"),
        ]
    phases = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        file, at, src = rest.partition("@")
        if not sep or not file:
            raise HarnessError(f"--phase {spec}: write NAME=CONFIG.yaml or NAME=CONFIG.yaml@SRC")
        source = Path(src).resolve() if at else default_src
        if not (source / "mqtt_gpio_bridge" / "__main__.py").exists():
            raise HarnessError(f"--phase {spec}: {source} holds no mqtt_gpio_bridge package")
        label = file + (f" @{src}" if at else "")
        board = "voice" if name in voice else "creator"
        label += " (Voice)" if board == "voice" else ""
        phases.append((name, label, yaml.safe_load(Path(file).read_text()), source, board))
    unknown = sorted(voice - {name for name, *_ in phases})
    if unknown:
        raise HarnessError(f"--voice {', '.join(unknown)}: no such phase")
    return phases


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep HA's config dir and the logs")
    parser.add_argument("--ha-version", help="this Home Assistant release instead of the newest")
    parser.add_argument(
        "--phase",
        action="append",
        metavar="NAME=CONFIG",
        help="a phase: the bridge config it runs (repeat, in order; default: A, B=A, "
        "C=A-pin 1, D=C+ring+sensors, E=D on a Voice)",
    )
    parser.add_argument(
        "--bridge-src",
        type=Path,
        default=REPO,
        help="the bridge's source tree phases run by default (e.g. an unpacked "
        "`git archive` of a release); a phase's own: NAME=CONFIG@SRC",
    )
    parser.add_argument(
        "--voice",
        action="append",
        default=[],
        metavar="NAME",
        help="in phase NAME, simulate a MATRIX Voice (18 LEDs, no sensors) instead of a Creator "
        "(repeat; matters for a config with `everloop` or `sensors`)",
    )
    parser.add_argument(
        "--restart-ha",
        action="store_true",
        help="after the last phase, restart Home Assistant and run that phase once more",
    )
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    try:
        venv, version, install_s = ensure_home_assistant(args.ha_version)
        if install_s is not None:
            timings["HA install"] = install_s
        log(f"Home Assistant {version} ({venv})")
        with environment(args.keep) as (workdir, procs):
            taken: set[int] = set()
            ports = {
                "broker": free_port_block(1, taken),
                "http": free_port_block(1, taken),
                "gpio": free_port_block(4, taken),
                "servo": free_port_block(4, taken),
                "everloop": free_port_block(4, taken),
                **{driver: free_port_block(4, taken) for driver in SENSOR_DRIVERS},
            }
            phases = [
                Phase(
                    name,
                    label,
                    phase_config(cfg, ports, workdir / f"phase-{name}.yaml"),
                    src,
                    board,
                )
                for name, label, cfg, src, board in parse_phases(
                    args.phase, args.bridge_src.resolve(), set(args.voice)
                )
            ]
            (workdir / "mosquitto.conf").write_text(
                f"listener {ports['broker']} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            )
            procs.start("mosquitto", ["mosquitto", "-c", str(workdir / "mosquitto.conf")])
            wait_for(lambda: not port_is_free(ports["broker"]), 10, "Mosquitto")

            config_dir = workdir / "ha"
            config_dir.mkdir()
            write_ha_config(config_dir, ports["http"])
            ha = HomeAssistant(ports["http"])

            def boot_ha() -> float:
                started = time.monotonic()
                procs.start("hass", [str(venv / "bin" / "hass"), "-c", str(config_dir)])

                def http_up() -> bool:
                    procs.check_alive("hass")
                    return ha.http("GET", "/api/onboarding") is not None

                wait_for(http_up, 600, "Home Assistant's HTTP API", 0.5)
                if ha.token is None:
                    ha.onboard()
                running = lambda: ha.http("GET", "/api/config")["state"] == "RUNNING"  # noqa: E731
                wait_for(running, 300, "Home Assistant to run")
                return time.monotonic() - started

            def mqtt_loaded() -> bool:
                entries = ha.call("config_entries/get", domain="mqtt")
                return any(e["entry_id"] == entry_id and e["state"] == "loaded" for e in entries)

            timings["HA start"] = boot_ha()
            started = time.monotonic()
            entry_id = ha.add_mqtt(ports["broker"])
            ha.connect_ws()
            wait_for(mqtt_loaded, 60, "the MQTT config entry to load")
            timings["MQTT entry"] = time.monotonic() - started

            sim = procs.start(
                "simulator",
                [
                    BRIDGE_PYTHON,
                    "-m",
                    "mqtt_gpio_bridge",
                    "simulate",
                    "--base-port",
                    str(ports["gpio"]),
                    "--servo-port",
                    str(ports["servo"]),
                ],
                stdin=True,
            )
            wait_for(lambda: not port_is_free(ports["gpio"]), 15, "the simulator")
            retained = Retained(ports["broker"])
            run = Run(ha, procs, entry_id, config_dir / "home-assistant.log", retained)
            run.sim = sim.stdin
            for index, phase in enumerate(phases):
                log(f"phase {phase.name}: {phase.source}")
                run.run_phase(phase, first=index == 0)
                took = phase.timings["phase"]
                log(f"phase {phase.name}: {len(phase.registry)} entities in {took:.1f} s")
            if args.restart_ha:
                # Home Assistant restarts and reads the retained configs afresh, the bridge
                # running the last phase's config again: nothing may change.
                assert ha.ws is not None
                ha.ws.close()
                procs.stop("hass", 60)
                timings["HA restart"] = boot_ha()
                ha.connect_ws()
                wait_for(mqtt_loaded, 60, "the MQTT config entry to load")
                last = phases[-1]
                again = Phase(
                    f"{last.name}+HA restart", last.source, last.config, last.src, last.board
                )
                phases.append(again)
                log(f"phase {again.name}")
                run.run_phase(again, first=False, log_start=0)
            retained.close()
            checks = with_features(phases, check_phases(phases, run.customised))

            # HA writes its registries on a delay; a stop flushes them. They must agree with
            # what the API said in the last phase.
            assert ha.ws is not None
            ha.ws.close()
            timings["HA stop"] = procs.stop("hass", 60)
            stored = json.loads((config_dir / ".storage" / "core.entity_registry").read_text())
            on_disk = sorted(
                (e["unique_id"], e["entity_id"])
                for e in stored["data"]["entities"]
                if e["platform"] == "mqtt"
            )
            live = sorted((e["unique_id"], e["entity_id"]) for e in phases[-1].registry)
            checks.append(
                (
                    "end",
                    "stored registry = live registry",
                    on_disk == live,
                    f"{len(on_disk)} entities",
                )
            )
        print_report(phases, checks)
        print()
        print(
            f"Home Assistant {version}; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
        failed = [c for c in checks if not c[2]]
        print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
        return 1 if failed else 0
    except (HarnessError, subprocess.CalledProcessError) as err:
        print(f"ha_check: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
