"""Prove in a real Home Assistant what the bridge's MQTT discovery does to HA's entities.

    .venv/bin/python scripts/ha_check.py [--keep] [--ha-version X] [--restart-ha]
        [--bridge-src DIR] [--phase NAME=CONFIG[@SRC] ...]

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
once more. It prints the phases, the checks and the timings as tables and exits 0 if every
check passed, 1 if one failed, 2 if the harness itself could not run.

A phase's config is any bridge config: the harness overrides only what it must (broker
address, MALOS ports, the discovery prefix `homeassistant`) and reads what to expect from the
bridge's own `discovery` command, per-entity topics or a device topic's `cmps` alike. Without
--phase: A (two outputs, an input with press events, a servo), B (A again: a restart must
change nothing), C (A without pin 1: its entity must go).
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


def announced(config_file: Path, src: Path) -> tuple[dict[str, Expected], set[str]]:
    """The entities `discovery --config` lists, per-entity topics and device `cmps` alike, and
    the topics that end up holding a config."""
    output = subprocess.run(
        [BRIDGE_PYTHON, "-m", "mqtt_gpio_bridge", "discovery", "--config", str(config_file)],
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
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ha-check-watch")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/#", qos=1)
        self.client.loop_start()

    def _message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        if not message.topic.endswith("/config"):
            return  # e.g. HA's birth message on <prefix>/status
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
    config.setdefault("malos", {}).update(
        host="127.0.0.1", base_port=ports["gpio"], servo_port=ports["servo"]
    )
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

    def by_unique_id(self) -> dict[str, dict[str, Any]]:
        return {entry["unique_id"]: entry for entry in self.registry}


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

    def run_phase(self, phase: Phase, first: bool, log_start: int | None = None) -> None:
        """Run the bridge with the phase's config; `log_start`: where in HA's log it begins
        (default: the log's end; 0 after HA restarted, its new log, start-up included)."""
        phase.expected, phase.expected_topics = announced(phase.config, phase.src)
        if log_start is None:
            log_start = self.ha_log.stat().st_size if self.ha_log.exists() else 0
        started = time.monotonic()
        name = f"bridge-{phase.name}"
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
        phase.timings["bridge stop"] = self.procs.stop(name)
        time.sleep(0.5)
        phase.retained_topics = self.retained.topics()
        phase.timings["phase"] = time.monotonic() - started
        with self.ha_log.open("rb") as handle:
            handle.seek(log_start)
            text = handle.read().decode(errors="replace")
        phase.log_errors, phase.cleared_conflicts = classify_log(text, phase.expected_topics)


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
    specs: list[str] | None, default_src: Path
) -> list[tuple[str, str, dict[str, Any], Path]]:
    """(name, description, config, bridge source) of each phase."""
    if not specs:
        without_1 = json.loads(json.dumps(BUILTIN_A))
        without_1["pins"] = [p for p in without_1["pins"] if p["pin"] != 1]
        return [
            ("A", "builtin A", BUILTIN_A, default_src),
            ("B", "builtin A again", BUILTIN_A, default_src),
            ("C", "builtin A without pin 1", without_1, default_src),
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
        phases.append((name, label, yaml.safe_load(Path(file).read_text()), source))
    return phases


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep HA's config dir and the logs")
    parser.add_argument("--ha-version", help="this Home Assistant release instead of the newest")
    parser.add_argument(
        "--phase",
        action="append",
        metavar="NAME=CONFIG",
        help="a phase: the bridge config it runs (repeat, in order; default: A, B=A, C=A-pin 1)",
    )
    parser.add_argument(
        "--bridge-src",
        type=Path,
        default=REPO,
        help="the bridge's source tree phases run by default (e.g. an unpacked "
        "`git archive` of a release); a phase's own: NAME=CONFIG@SRC",
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
            }
            phases = [
                Phase(name, label, phase_config(cfg, ports, workdir / f"phase-{name}.yaml"), src)
                for name, label, cfg, src in parse_phases(args.phase, args.bridge_src.resolve())
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
                again = Phase(f"{last.name}+HA restart", last.source, last.config, last.src)
                phases.append(again)
                log(f"phase {again.name}")
                run.run_phase(again, first=False, log_start=0)
            retained.close()
            checks = check_phases(phases, run.customised)

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
