"""The deployment files agree with the repository and with the bridge: Dockerfile, compose
stack, systemd unit, example configs, package metadata.

No Docker engine is needed (none of this builds or runs an image). Validating
docker-compose.yml against the Compose Specification schema and linting the Dockerfile need
tools outside the dev extras: `deploy/check.sh` runs them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mqtt_gpio_bridge.cli import main
from mqtt_gpio_bridge.config import load_config

from .helpers import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "mqtt-gpio-bridge.service"
UNIT_241 = ROOT / "deploy" / "systemd-241" / "mqtt-gpio-bridge.service"
UNITS = [UNIT, UNIT_241]
CONFIG_IN_IMAGE = "/config/config.yaml"
IMAGE_UID = 10001

# Files the user writes before `docker compose up`, each with the repository file it starts from.
USER_SUPPLIED = {"config.yaml": "config.example.yaml"}

EXAMPLE_CONFIGS = sorted(
    path
    for pattern in ("*.yaml", "*.yml", "deploy/**/*.yaml", "examples/**/*.yaml")
    for path in ROOT.glob(pattern)
    # config.yaml is the user's own (see USER_SUPPLIED), not an example of the repository.
    if path.name != COMPOSE.name
    and path.relative_to(ROOT).as_posix() not in USER_SUPPLIED
    # Tools' own files (.pre-commit-config.yaml) are not bridge configs.
    and not path.name.startswith(".")
)


# -- helpers ------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def with_defaults(text: str) -> str:
    """Resolve compose interpolation as with no variable set: `${X:-default}` -> `default`."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)


def bind_sources(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every bind mount of a service, short or long syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            if source.startswith((".", "/", "$")):
                found.append((source, rest.split(":")[0]))
        elif volume.get("type") == "bind":
            found.append((volume["source"], volume["target"]))
    return found


def unit_entries(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as {section: [(key, value), ...]}, keeping repeated keys in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def service_values(key: str, unit: Path = UNIT) -> list[str]:
    return [value for name, value in unit_entries(unit)["Service"] if name == key]


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into build stages."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append(line)
    return stages


# -- docker-compose.yml ---------------------------------------------------------------------------


def test_compose_services_and_profiles() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "bridge", "simulator"}
    assert re.fullmatch(r"eclipse-mosquitto:2(\.\d+)*", services["mosquitto"]["image"])
    # Only the simulator is optional: `docker compose up` on a board starts broker and bridge.
    assert services["simulator"]["profiles"] == ["simulator"]
    assert "profiles" not in services["bridge"]
    assert "profiles" not in services["mosquitto"]
    assert services["bridge"]["restart"] == "unless-stopped"
    assert services["mosquitto"]["restart"] == "unless-stopped"
    assert services["simulator"]["command"] == ["simulate", "--host", "0.0.0.0"]


def test_compose_builds_from_this_dockerfile() -> None:
    services = compose()["services"]
    for name in ("bridge", "simulator"):
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, name


def test_compose_files_exist() -> None:
    """Every bind mount and secret file is in the repository, or is one the user writes."""
    document = compose()
    for name, service in document["services"].items():
        for source, target in bind_sources(service):
            relative = with_defaults(source).removeprefix("./")
            if relative in USER_SUPPLIED:
                assert (ROOT / USER_SUPPLIED[relative]).is_file(), relative
            else:
                assert (ROOT / relative).is_file(), f"{name}: {source} -> {target} is missing"
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "$")):
                assert volume.split(":")[0] in document.get("volumes", {}), volume
            elif isinstance(volume, dict) and volume.get("type") == "volume":
                assert volume["source"] in document.get("volumes", {}), volume
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in document.get("secrets", {}), f"{name}: secret {secret_name}"


def test_compose_secret_files_stay_out_of_git() -> None:
    """The password file is the user's: its folder exists and git ignores what is in it."""
    for name, secret in compose()["secrets"].items():
        path = ROOT / with_defaults(secret["file"]).removeprefix("./")
        ignore = path.parent / ".gitignore"
        assert ignore.is_file(), f"secret {name}: {path.parent} has no .gitignore"
        patterns = ignore.read_text().splitlines()
        assert "*" in patterns and "!.gitignore" in patterns, f"secret {name}: {ignore}"
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "prune deploy/secrets" in manifest, "the sdist must not pick up a password"


def test_compose_bridge_mounts() -> None:
    bridge = compose()["services"]["bridge"]
    mounts = dict((target, source) for source, target in bind_sources(bridge))
    assert CONFIG_IN_IMAGE in mounts
    config_mount = next(
        volume
        for volume in bridge["volumes"]
        if isinstance(volume, dict) and volume["target"] == CONFIG_IN_IMAGE
    )
    assert config_mount["read_only"] is True
    # A missing config.yaml must be an error, not an empty directory made by Docker.
    assert config_mount["bind"]["create_host_path"] is False
    # Docker mounts a compose secret at /run/secrets/<name>: what mqtt.password_file names.
    assert [
        secret if isinstance(secret, str) else secret["source"] for secret in bridge["secrets"]
    ] == ["mqtt_password"]


def test_compose_simulator_is_where_the_bridge_looks() -> None:
    """With host networking the bridge reaches the simulator through its published ports."""
    services = compose()["services"]
    assert services["bridge"]["network_mode"] == "host"
    assert "network_mode" not in services["simulator"]
    config = load_config(ROOT / "deploy" / "config.simulator.yaml")
    base = config.malos.base_port
    assert config.malos.host == "127.0.0.1"
    # Published on the host's loopback only: MALOS has no authentication.
    assert services["simulator"]["ports"] == [f"127.0.0.1:{base}-{base + 3}:{base}-{base + 3}"]
    published = [str(port).split(":")[-2] for port in services["mosquitto"]["ports"]]
    assert str(config.mqtt.port) in published
    assert config.mqtt.host in {"localhost", "127.0.0.1"}
    # The image's health check needs a bridge config; the simulator has none.
    assert services["simulator"]["healthcheck"] == {"disable": True}


@pytest.mark.broker  # starts Mosquitto itself, without the `broker` fixture
def test_mosquitto_conf_starts_a_broker(tmp_path: Path) -> None:
    """deploy/mosquitto.conf, with the container's paths moved here, runs the local Mosquitto."""
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: run scripts/test.sh, which installs it")
    port = free_port()
    text = (ROOT / "deploy" / "mosquitto.conf").read_text()
    assert re.search(r"^listener 1883$", text, re.MULTILINE)
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    text = text.replace("/mosquitto/data/", f"{tmp_path}/")
    config = tmp_path / "mosquitto.conf"
    config.write_text(text)
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until(
            lambda: port_open(port) or process.poll() is not None, what="mosquitto to listen"
        )
        assert process.poll() is None, process.communicate()[0].decode()
    finally:
        process.terminate()
        process.wait(10)


# -- example configs ------------------------------------------------------------------------------


def test_example_configs_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in EXAMPLE_CONFIGS}
    assert {"config.example.yaml", "deploy/config.simulator.yaml"} <= names


@pytest.mark.parametrize(
    "path", EXAMPLE_CONFIGS, ids=[path.relative_to(ROOT).as_posix() for path in EXAMPLE_CONFIGS]
)
def test_example_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(path)
    assert config.pins
    assert main(["check-config", "--config", str(path)]) == 0
    assert "valid" in capsys.readouterr().out


# -- Dockerfile and .dockerignore -----------------------------------------------------------------


def test_dockerfile_final_stage() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: the build tools stay in the first stage"
    final = stages[-1]
    joined = "\n".join(final)
    assert "pip install" not in joined
    # Only the run-time library a pyzmq compiled against Debian's libzmq needs (32-bit ARM).
    installs = [words.split() for words in re.findall(r"apt-get install ([^&;]*)", joined)]
    assert installs == [["-y", "--no-install-recommends", "libzmq5"]]
    assert any(line.startswith("COPY --from=") for line in final)
    users = [line.split(None, 1)[1] for line in final if line.startswith("USER ")]
    assert users == [f"{IMAGE_UID}:{IMAGE_UID}"], "numeric, non-root user"
    healthcheck = next(line for line in final if line.startswith("HEALTHCHECK "))
    assert f'"health", "--config", "{CONFIG_IN_IMAGE}"' in healthcheck
    assert f'CMD ["run", "--config", "{CONFIG_IN_IMAGE}"]' in final


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allow list: each COPY source must be on it, and exist."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert "*" in (ROOT / ".dockerignore").read_text().splitlines()
    copied = []
    for stage in dockerfile_stages():
        for line in stage:
            words = line.split()
            if words[0] == "COPY" and not any(word.startswith("--from") for word in words):
                copied += [word.rstrip("/") for word in words[1:-1] if not word.startswith("--")]
    assert copied
    for source in copied:
        assert source in allowed, f"COPY {source}: excluded by .dockerignore"
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


# -- systemd unit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.parent.name)
def test_unit_hardening(unit: Path) -> None:
    expected = {
        "Restart": "on-failure",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert service_values(key, unit) == [value], key
    assert service_values("DynamicUser", unit) == ["yes"] or service_values("User", unit)
    (families,) = service_values("RestrictAddressFamilies", unit)
    assert set(families.split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_unit_runs_the_venv_with_a_credential() -> None:
    (exec_start,) = service_values("ExecStart")
    program, *arguments = exec_start.split()
    assert program == "/opt/mqtt-gpio-bridge/bin/mqtt-gpio-bridge"
    assert arguments[:2] == ["run", "--config"]
    assert service_values("LoadCredential") == ["mqtt_password:/etc/mqtt-gpio-bridge/mqtt_password"]
    # The path the config's password_file must name: /run/credentials/<unit>/<credential id>.
    documented = f"/run/credentials/{UNIT.name}/mqtt_password"
    assert f"password_file: {documented}" in UNIT.read_text()


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.parent.name)
def test_unit_lets_libzmq_set_its_scheduler(unit: Path) -> None:
    """libzmq's threads call sched_setscheduler and abort when it fails (seen with strace)."""
    filters = service_values("SystemCallFilter", unit)
    denies_resources = [
        index
        for index, value in enumerate(filters)
        if value.startswith("~") and "@resources" in value.split()
    ]
    if denies_resources:
        later = filters[denies_resources[-1] + 1 :]
        assert any("sched_setscheduler" in value.split() for value in later), filters


def scratch_unit(tmp_path: Path, unit: Path) -> Path:
    """The unit with ExecStart on this Python, which exists here, unlike /opt/..."""
    text = unit.read_text().replace(
        "ExecStart=/opt/mqtt-gpio-bridge/bin/mqtt-gpio-bridge",
        f"ExecStart={sys.executable} -m mqtt_gpio_bridge",
    )
    assert text != unit.read_text()
    path = tmp_path / unit.name
    path.write_text(text)
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.parent.name)
def test_unit_verifies(tmp_path: Path, unit: Path) -> None:
    path = scratch_unit(tmp_path, unit)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False
    )
    complaints = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not complaints, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.parent.name)
def test_unit_security_exposure(tmp_path: Path, unit: Path) -> None:
    path = scratch_unit(tmp_path, unit)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if found is None:
        pytest.skip(f"systemd-analyze security --offline is not supported here: {result.stderr}")
    # 1.2 when written (2.1 for systemd 241's, read by systemd 252, with fewer settings); what
    # is left is the network access the bridge exists for.
    assert float(found.group(1)) <= (2.0 if unit is UNIT else 2.5), result.stdout


SYSTEMD_SINCE = {
    # The systemd release that brought each setting the units use, from systemd's NEWS and the
    # "Added in version" lines of systemd.exec(5)/systemd.service(5) (v257). Settings older
    # than 187 are not listed. `key=value`: that value came later than the key.
    "Type=exec": 240,
    "RestartPreventExitStatus": 189,
    "TimeoutStopSec": 188,
    "DynamicUser": 232,
    "LoadCredential": 247,
    "ProtectSystem": 214,
    "ProtectSystem=strict": 232,
    "ProtectHome": 214,
    "PrivateDevices": 209,
    "PrivateUsers": 232,
    "PrivateMounts": 239,
    "NoNewPrivileges": 187,
    "AmbientCapabilities": 229,
    "RestrictAddressFamilies": 211,
    "RestrictNamespaces": 233,
    "RestrictRealtime": 231,
    "RestrictSUIDSGID": 242,
    "LockPersonality": 235,
    "MemoryDenyWriteExecute": 231,
    "ProtectClock": 245,
    "ProtectControlGroups": 232,
    "ProtectHostname": 242,
    "ProtectKernelLogs": 244,
    "ProtectKernelModules": 232,
    "ProtectKernelTunables": 232,
    "ProtectProc": 247,
    "ProcSubset": 247,
    "SystemCallArchitectures": 209,
    "SystemCallFilter": 187,
    "SystemCallFilter=@system-service": 239,  # an unknown group in an allow-list kills the service
    "SystemCallErrorNumber": 209,
}
OLDER_SETTINGS = {"ExecStart", "Restart", "RestartSec", "Environment", "UMask", "PrivateTmp"}
OLDER_SETTINGS |= {"CapabilityBoundingSet", "User", "Group", "Type"}


def systemd_needed(key: str, value: str) -> int:
    """The oldest systemd that knows `key=value`; fails for a setting the table lacks."""
    assert key in SYSTEMD_SINCE or key in OLDER_SETTINGS, f"add {key}= to SYSTEMD_SINCE"
    values = {value, *value.lstrip("~").split()}
    return max(SYSTEMD_SINCE.get(key, 0), *(SYSTEMD_SINCE.get(f"{key}={v}", 0) for v in values))


def test_the_systemd_241_unit_is_the_unit_without_what_241_lacks() -> None:
    """Everything of the main unit that systemd 241 knows, a fixed user instead of the rest."""
    main = unit_entries(UNIT)["Service"]
    old = unit_entries(UNIT_241)["Service"]
    assert all(systemd_needed(key, value) <= 241 for key, value in old), old
    identity = {"DynamicUser", "LoadCredential", "User", "Group"}
    kept = [(k, v) for k, v in main if systemd_needed(k, v) <= 241 and k not in identity]
    assert [(k, v) for k, v in old if k not in identity] == kept
    assert service_values("User", UNIT_241) == service_values("Group", UNIT_241)
    assert "/etc/mqtt-gpio-bridge/mqtt_password" in UNIT_241.read_text()
    assert unit_entries(UNIT_241)["Unit"] == unit_entries(UNIT)["Unit"]
    assert unit_entries(UNIT_241)["Install"] == unit_entries(UNIT)["Install"]


# -- package metadata -----------------------------------------------------------------------------


def test_package_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    for name in project["license-files"]:
        assert (ROOT / name).is_file()
    license_text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in license_text and "the mqtt-gpio-bridge authors" in license_text
    classifiers = set(project["classifiers"])
    minimum = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert minimum is not None
    versions = {
        int(c.rsplit(".", 1)[1])
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert min(versions) == int(minimum.group(1))
    assert {"Operating System :: POSIX :: Linux", "Topic :: Home Automation"} <= classifiers
    # PEP 639: a license expression and a License classifier are refused together.
    assert not any(c.startswith("License ::") for c in classifiers)
    assert (ROOT / "mqtt_gpio_bridge" / "py.typed").is_file()
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    assert "include config.example.yaml" in manifest
