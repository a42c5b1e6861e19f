"""Broker credentials and TLS, end to end against real Mosquitto listeners.

One Mosquitto process per module serves every listener a test needs (per-listener settings):
a plain anonymous one for the probes, one with a password file, a TLS one, a TLS one that
requires a client certificate and a TLS one whose certificate names another host. The
certificates are made here with the `openssl` command. Every test looks at what a user
notices: `<base>/status` going `online`, a command reaching the board, or a bridge that keeps
running, logs one clear warning and never shows the password.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mqtt_gpio_bridge.config import load_config
from mqtt_gpio_bridge.sim.driver import SimulatedDriver

from .helpers import (
    PINS,
    STARTUP,
    BridgeThread,
    Broker,
    Cli,
    ConfigFile,
    MqttProbe,
    bridge_config,
    port_open,
    run_cli,
    wait_until,
    write_config,
)
from .helpers import free_port as _free_port

USERNAME = "gpio-bridge"
PASSWORD = "Kq7-secret-horse-Zx9"
"""Distinctive, so that any place it leaks to can be found by a plain substring search."""
WRONG_PASSWORD = "Wr0ng-guess-Pw-71"
PASSWORD_VARIABLE = "MQTT_GPIO_BRIDGE_TEST_PASSWORD"
FAST_RETRIES = {"reconnect_min": 0.2, "reconnect_max": 1.0}
RETRIES_SEEN = 3
"""The first attempt's warning plus two repeats at debug level."""
RETRY_WAIT = 30.0
LOG_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+)\s+(?P<logger>\S+): (?P<message>.*)$")


# -- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA with server and client certificates, and an unrelated second CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    wrong_host_cert: Path
    wrong_host_key: Path


OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

LEAF_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(directory: Path, *args: str) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"openssl {' '.join(args)} failed:\n{result.stderr}"


def _new_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        directory,
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}"),
        *("-config", "openssl.cnf", "-extensions", "ca"),
    )
    return cert, key


def _new_leaf(
    directory: Path,
    name: str,
    ca: tuple[Path, Path],
    serial: int,
    usage: str,
    alt_names: str | None,
) -> tuple[Path, Path]:
    """A certificate for `/CN=<name>` (and `alt_names`, if any) signed by `ca`."""
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
    extensions = directory / f"{name}.ext"
    text = LEAF_EXTENSIONS.format(usage=usage)
    if alt_names is not None:
        text += f"subjectAltName = {alt_names}\n"
    extensions.write_text(text)
    _openssl(
        directory,
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}"),
        *("-config", "openssl.cnf"),
    )
    _openssl(
        directory,
        *("x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1])),
        *("-set_serial", str(serial), "-days", "2", "-out", str(cert)),
        *("-extfile", str(extensions)),
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test certificates")
    directory = tmp_path_factory.mktemp("pki")
    (directory / "openssl.cnf").write_text(OPENSSL_CONFIG)
    ca = _new_ca(directory, "test-ca")
    other_ca, _ = _new_ca(directory, "unrelated-ca")
    server = _new_leaf(directory, "localhost", ca, 2, "serverAuth", "DNS:localhost,IP:127.0.0.1")
    # Names only a host the bridge never connects to: no SAN for localhost or 127.0.0.1.
    wrong = _new_leaf(directory, "wronghost.invalid", ca, 3, "serverAuth", "DNS:wronghost.invalid")
    client = _new_leaf(directory, "bridge-client", ca, 4, "clientAuth", None)
    return Pki(ca[0], *server, *client, other_ca, *wrong)


# -- one Mosquitto, five listeners ----------------------------------------------------------------


@dataclass(frozen=True)
class SecureBroker:
    plain: Broker
    """Anonymous, no TLS: where the probes listen."""
    password_port: int
    tls_port: int
    client_cert_port: int
    wrong_host_port: int

    def at(self, port: int) -> Broker:
        return Broker("127.0.0.1", port)


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    return ports


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto is not installed: run scripts/test.sh, which installs it")
    directory = tmp_path_factory.mktemp("secure-mosquitto")
    password_file = directory / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(password_file), USERNAME, PASSWORD],
        check=True,
        capture_output=True,
        timeout=30,
    )
    plain, password, tls, client_cert, wrong_host = _distinct_free_ports(5)
    server_tls = f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
    log = directory / "mosquitto.log"  # not asserted on; for a look when a test fails
    # Started as root, Mosquitto drops to the `mosquitto` user before it reads the password
    # file, and pytest's temporary directories are private: stay the user the tests run as.
    user = pwd.getpwuid(os.getuid()).pw_name
    config_path = directory / "mosquitto.conf"
    config_path.write_text(
        f"user {user}\n"
        "per_listener_settings true\n"
        "persistence false\n"
        f"log_dest file {log}\n"
        f"listener {plain} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"listener {password} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {password_file}\n"
        f"listener {tls} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"{server_tls}"
        f"listener {client_cert} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"{server_tls}"
        "require_certificate true\n"
        "use_identity_as_username false\n"
        f"listener {wrong_host} 127.0.0.1\n"
        "allow_anonymous true\n"
        f"cafile {pki.ca}\ncertfile {pki.wrong_host_cert}\nkeyfile {pki.wrong_host_key}\n"
    )
    server = Broker("127.0.0.1", plain, config_path=config_path)
    server.start()
    try:
        for port in (password, tls, client_cert, wrong_host):
            wait_until(lambda port=port: port_open(port), what=f"mosquitto listening on {port}")
        yield SecureBroker(server, password, tls, client_cert, wrong_host)
    finally:
        server.stop()


# -- helpers --------------------------------------------------------------------------------------


def security_config(tmp_path: Path, port: int, malos_port: int, **mqtt: Any) -> ConfigFile:
    """A config file like test_cli's, with extra `mqtt` keys (credentials, TLS, backoff)."""
    config = write_config(tmp_path, port, malos_port)
    document = yaml.safe_load(config.path.read_text())
    document["mqtt"].update(mqtt)
    config.path.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


@dataclass
class SecureRig:
    """What a test here works with: the secure broker, certificates, simulator, probe, starters."""

    broker: SecureBroker
    pki: Pki
    simulator: SimulatedDriver
    probe: MqttProbe
    """On the plain listener."""
    start_bridge: Callable[..., BridgeThread]
    cli: Callable[..., Cli]
    malos_port: int
    tmp_path: Path

    def config_file(self, port: int, **mqtt: Any) -> ConfigFile:
        """A config file for the listener on `port` and the simulator, with extra `mqtt` keys."""
        return security_config(self.tmp_path, port, self.malos_port, **mqtt)

    def start_cli_bridge(self, config: ConfigFile, *, debug: bool = False) -> Cli:
        """Watch the config's topics and start `run` on it in a subprocess."""
        self.probe.subscribe(config.topic("#"))
        level = ["--log-level", "DEBUG"] if debug else []
        return self.cli(*level, "run", "--config", str(config.path))

    def expect_online_and_a_working_command(self, port: int, **mqtt: Any) -> None:
        """An in-process bridge on `port` goes online, and `set ON` drives pin 0 high."""
        config = bridge_config(self.broker.at(port), self.malos_port, PINS, mqtt=mqtt)
        base = config.mqtt.base_topic
        self.probe.subscribe(f"{base}/#")
        self.start_bridge(config)
        self.probe.wait_for(f"{base}/status", "online")
        self.probe.wait_for(f"{base}/gpio/0/state", "OFF")

        self.probe.publish(f"{base}/gpio/0/set", "ON")

        wait_until(lambda: self.simulator.board.levels() & 1, what="pin 0 high on the board")
        self.probe.wait_for(f"{base}/gpio/0/state", "ON")


@pytest.fixture
def secure_rig(
    secure_broker: SecureBroker,
    pki: Pki,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
    start_bridge: Callable[..., BridgeThread],
    cli: Callable[..., Cli],
    malos_port: int,
    tmp_path: Path,
) -> SecureRig:
    """The usual peers of a test here, with a probe on the secure broker's plain listener."""
    return SecureRig(
        secure_broker,
        pki,
        simulator,
        probe_factory(secure_broker.plain),
        start_bridge,
        cli,
        malos_port,
        tmp_path,
    )


def log_records(bridge: Cli) -> list[tuple[str, str, str]]:
    """(level, logger, message) of every log line on the bridge's stderr."""
    return [
        (found["level"], found["logger"], found["message"])
        for found in map(LOG_LINE.match, list(bridge.stderr))
        if found is not None
    ]


def expect_one_clear_warning(
    bridge: Cli, probe: MqttProbe, config: ConfigFile, port: int, retries: int = RETRIES_SEEN
) -> str:
    """The bridge keeps retrying with one WARNING line for the problem, repeats at DEBUG only.

    Returns the warning's message.
    """
    where = f"MQTT broker 127.0.0.1:{port}: "

    def the_warning(record: tuple[str, str, str]) -> bool:
        return record[:2] == ("WARNING", "mqtt_gpio_bridge.mqtt.session") and record[2].startswith(
            where
        )

    def other_loud_lines() -> list[tuple[str, str, str]]:
        return [
            record
            for record in log_records(bridge)
            if record[0] not in ("DEBUG", "INFO") and not the_warning(record)
        ]

    # Done after the warning and two repeats, or as soon as anything else is logged loudly.
    wait_until(
        lambda: bridge.count("retrying in") >= retries or other_loud_lines(),
        RETRY_WAIT,
        f"{retries} connection attempts of {bridge}",
    )
    assert not other_loud_lines(), f"more than the one warning:\n{bridge.transcript()}"
    assert bridge.process.poll() is None, f"the bridge gave up:\n{bridge.transcript()}"
    attempts = [record for record in log_records(bridge) if record[2].startswith(where)]
    assert len(attempts) >= retries, bridge.transcript()
    assert the_warning(attempts[0]), "the first attempt is logged as a warning"
    assert {record[0] for record in attempts[1:]} == {"DEBUG"}, attempts
    problems = {record[2].partition("; retrying in")[0] for record in attempts}
    assert len(problems) == 1, f"the repeats are not the same problem: {problems}"
    assert "Traceback" not in bridge.transcript()
    assert "online" not in [message.text for message in probe.on(config.topic("status"))]
    return attempts[0][2]


# -- 1. user name and password --------------------------------------------------------------------


def test_password_in_the_config_connects_and_commands_work(secure_rig: SecureRig) -> None:
    secure_rig.expect_online_and_a_working_command(
        secure_rig.broker.password_port, username=USERNAME, password=PASSWORD
    )


def test_password_file_with_a_trailing_newline_connects(secure_rig: SecureRig) -> None:
    secret = secure_rig.tmp_path / "mqtt-password"
    secret.write_text(PASSWORD + "\n")
    config = bridge_config(
        secure_rig.broker.at(secure_rig.broker.password_port),
        secure_rig.malos_port,
        PINS,
        mqtt={"username": USERNAME, "password_file": str(secret)},
    )
    probe = secure_rig.probe
    probe.subscribe(f"{config.mqtt.base_topic}/status")

    secure_rig.start_bridge(config)

    probe.wait_for(f"{config.mqtt.base_topic}/status", "online")


def test_password_from_the_environment_connects(
    secure_rig: SecureRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = secure_rig.config_file(
        secure_rig.broker.password_port, username=USERNAME, password_env=PASSWORD_VARIABLE
    )
    assert PASSWORD not in config.path.read_text()
    # The `cli` fixture gives its processes the test's environment.
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)

    bridge = secure_rig.start_cli_bridge(config, debug=True)

    secure_rig.probe.wait_for(config.topic("status"), "online", timeout=STARTUP)
    assert "Traceback" not in bridge.transcript()
    assert PASSWORD not in bridge.transcript()


# -- 2. a wrong password --------------------------------------------------------------------------


def test_wrong_password_is_one_clear_warning_and_never_shown(secure_rig: SecureRig) -> None:
    port = secure_rig.broker.password_port
    config = secure_rig.config_file(
        port, username=USERNAME, password=WRONG_PASSWORD, **FAST_RETRIES
    )

    bridge = secure_rig.start_cli_bridge(config, debug=True)

    message = expect_one_clear_warning(bridge, secure_rig.probe, config, port)
    assert "the broker refused the credentials" in message
    assert "mqtt.username" in message
    assert bridge.count("DEBUG") > 0, "the bridge did not log at debug level"
    transcript = bridge.transcript()
    assert WRONG_PASSWORD not in transcript
    assert PASSWORD not in transcript


@pytest.mark.parametrize("source", ["password", "password_env"])
def test_check_config_and_repr_never_show_the_password(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    value = PASSWORD if source == "password" else PASSWORD_VARIABLE
    config = security_config(tmp_path, 1883, 20049, username=USERNAME, **{source: value})

    result = run_cli("check-config", "--config", str(config.path))

    assert result.returncode == 0, result.stderr
    assert f"(user {USERNAME})" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    loaded = load_config(config.path)
    assert loaded.mqtt.secret() == PASSWORD
    dumped = json.dumps(dataclasses.asdict(loaded), default=str)
    for shown in (repr(loaded), str(loaded), repr(loaded.mqtt), dumped):
        assert PASSWORD not in shown


# -- 3. TLS with the test CA, and client certificates ---------------------------------------------


def test_tls_with_the_test_ca_connects_and_commands_work(secure_rig: SecureRig) -> None:
    secure_rig.expect_online_and_a_working_command(
        secure_rig.broker.tls_port, tls={"ca_file": str(secure_rig.pki.ca)}
    )


def test_tls_with_a_client_certificate_connects_where_one_is_required(
    secure_rig: SecureRig,
) -> None:
    pki = secure_rig.pki
    secure_rig.expect_online_and_a_working_command(
        secure_rig.broker.client_cert_port,
        tls={
            "ca_file": str(pki.ca),
            "certfile": str(pki.client_cert),
            "keyfile": str(pki.client_key),
        },
    )


def test_tls_without_the_required_client_certificate_is_one_clear_warning(
    secure_rig: SecureRig,
) -> None:
    port = secure_rig.broker.client_cert_port
    config = secure_rig.config_file(port, tls={"ca_file": str(secure_rig.pki.ca)}, **FAST_RETRIES)

    bridge = secure_rig.start_cli_bridge(config, debug=True)

    # TLS 1.3 sends the broker's "certificate required" alert after the handshake, and the
    # CONNECT can race past it: the warning names the likely cause either way.
    message = expect_one_clear_warning(bridge, secure_rig.probe, config, port, retries=2)
    assert "client certificate required?" in message, message


def test_tls_without_the_required_client_certificate_stays_offline_and_running(
    secure_rig: SecureRig,
) -> None:
    """Refused, not online, no crash, a warning."""
    port = secure_rig.broker.client_cert_port
    config = secure_rig.config_file(port, tls={"ca_file": str(secure_rig.pki.ca)})

    bridge = secure_rig.start_cli_bridge(config)

    # Up to the bridge's connection timeout (OPERATION_TIMEOUT) after start-up.
    line = bridge.wait_for_line(f"MQTT broker 127.0.0.1:{port}: ", "stderr", STARTUP + 10)
    assert "WARNING" in line
    assert bridge.process.poll() is None, "the bridge gave up"
    assert "Traceback" not in bridge.transcript()
    statuses = [message.text for message in secure_rig.probe.on(config.topic("status"))]
    assert "online" not in statuses


# -- 4. an unrelated CA ---------------------------------------------------------------------------


def test_tls_with_an_unrelated_ca_is_one_clear_warning(secure_rig: SecureRig) -> None:
    port = secure_rig.broker.tls_port
    config = secure_rig.config_file(
        port, tls={"ca_file": str(secure_rig.pki.other_ca)}, **FAST_RETRIES
    )

    bridge = secure_rig.start_cli_bridge(config, debug=True)

    message = expect_one_clear_warning(bridge, secure_rig.probe, config, port)
    assert "certificate verify failed" in message.lower(), message


# -- 5. the host name check -----------------------------------------------------------------------


def test_tls_refuses_a_certificate_for_another_host(secure_rig: SecureRig) -> None:
    port = secure_rig.broker.wrong_host_port
    config = secure_rig.config_file(
        port, tls={"ca_file": str(secure_rig.pki.ca), "insecure": False}, **FAST_RETRIES
    )

    bridge = secure_rig.start_cli_bridge(config, debug=True)

    message = expect_one_clear_warning(bridge, secure_rig.probe, config, port)
    assert "certificate verify failed" in message, message
    assert "address mismatch, certificate is not valid for '127.0.0.1'" in message


def test_tls_insecure_accepts_a_certificate_for_another_host(secure_rig: SecureRig) -> None:
    secure_rig.expect_online_and_a_working_command(
        secure_rig.broker.wrong_host_port, tls={"ca_file": str(secure_rig.pki.ca), "insecure": True}
    )


# -- 6. config validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mqtt", "expected"),
    [
        pytest.param(
            {"tls": {"ca_file": "/does/not/exist"}},
            "mqtt.tls.ca_file: /does/not/exist does not exist",
            id="missing-ca-file",
        ),
        pytest.param(
            {"username": USERNAME, "password": PASSWORD, "password_file": "/run/secrets/mqtt"},
            "mqtt.password_file: set only one of password, password_file",
            id="password-and-password-file",
        ),
        pytest.param(
            {"username": USERNAME, "password_env": "MQTT_GPIO_BRIDGE_TEST_UNSET_VARIABLE"},
            "mqtt.password_env: MQTT_GPIO_BRIDGE_TEST_UNSET_VARIABLE is not set",
            id="unset-variable",
        ),
        pytest.param(
            {"password": PASSWORD},
            "mqtt.password: a password needs mqtt.username",
            id="password-without-username",
        ),
    ],
)
def test_check_config_refuses_bad_credentials_and_tls(
    mqtt: dict[str, Any], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MQTT_GPIO_BRIDGE_TEST_UNSET_VARIABLE", raising=False)
    config = security_config(tmp_path, 1883, 20049, **mqtt)

    result = run_cli("check-config", "--config", str(config.path))

    assert result.returncode == 2, result.stdout + result.stderr
    problems = [line.strip() for line in result.stderr.splitlines()]
    assert expected in problems, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
