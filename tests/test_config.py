"""Tests of the configuration loader: defaults, every rule, and the problem lines users see."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest

from mqtt_gpio_bridge.cli import main
from mqtt_gpio_bridge.config import (
    BridgeConfig,
    HomeAssistantConfig,
    MqttConfig,
    PinSpec,
    Secret,
    default_node_id,
    load_config,
    parse_config,
    summarize,
)
from mqtt_gpio_bridge.errors import ConfigError
from mqtt_gpio_bridge.homeassistant.discovery import announcements, config_topic
from mqtt_gpio_bridge.mqtt.topics import Topics

MINIMAL = "pins: [{pin: 0, mode: output}]\n"

BUSY_LOOP = (
    ": the driver keeps whole milliseconds, turns anything below 0.001 s into 0 ms and then "
    "sends updates in a busy loop that takes a core of the Pi"
)


@pytest.fixture(autouse=True)
def _fixed_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # The default node_id comes from the host name; pin it so expectations are stable.
    monkeypatch.setattr(socket, "gethostname", lambda: "testhost")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


def problems_with_pin(pin_yaml: str, tmp_path: Path) -> list[str]:
    """Problems of a file whose only pin is given as a YAML flow mapping body."""
    return problems_of(tmp_path, f"pins:\n  - {{{pin_yaml}}}\n")


# --- defaults ------------------------------------------------------------------------------


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))

    assert config.mqtt.host == "localhost"
    assert config.mqtt.port == 1883
    assert config.mqtt.username is None
    assert config.mqtt.password is None
    assert config.mqtt.base_topic == "matrix"
    assert config.mqtt.qos == 1
    assert config.mqtt.keepalive == 60
    assert config.malos.host == "127.0.0.1"
    assert config.malos.base_port == 20049
    assert config.malos.servo_port == 20045
    assert config.malos.update_interval == 0.1
    assert config.malos.keepalive_interval == 1.0
    assert config.malos.ping_timeout == 5.0
    assert config.malos.offline_after == 3.0
    assert config.homeassistant.discovery is True
    assert config.homeassistant.prefix == "homeassistant"
    assert config.homeassistant.node_id == "matrix_testhost"
    assert config.homeassistant.device_name == "MATRIX GPIO"
    assert config.homeassistant.model == "MATRIX Creator"
    assert config.health.interval == 60
    assert config.client_id == "mqtt-gpio-bridge-matrix_testhost"
    assert config.pins == (PinSpec(pin=0, mode="output"),)
    pin = config.pins[0]
    assert pin.is_output
    assert (pin.name, pin.inverted, pin.initial) == (None, False, None)
    assert (pin.payload_on, pin.payload_off) == ("ON", "OFF")
    assert (pin.device_class, pin.icon) == (None, None)


def test_full_file_is_read_as_written(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
mqtt:
  host: broker.lan
  port: 8883
  username: bridge
  password: "s3cret"
  client_id: my-bridge
  base_topic: house/matrix
  qos: 2
  keepalive: 30
malos:
  host: 10.0.0.5
  base_port: 30000
  update_interval: 0.5
  keepalive_interval: 2
  ping_timeout: 10
  offline_after: 4
homeassistant:
  discovery: false
  prefix: ha
  node_id: Kitchen-Pi_1
  device_name: Kitchen GPIO
  model: MATRIX Voice
pins:
  - pin: 15
    mode: input
    name: Door
    inverted: true
    payload_on: OPEN
    payload_off: CLOSED
    device_class: door
    icon: mdi:door
""",
        )
    )

    assert config.mqtt.host == "broker.lan"
    assert config.mqtt.port == 8883
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert config.client_id == "my-bridge"
    assert config.mqtt.base_topic == "house/matrix"
    assert config.malos.keepalive_interval == 2.0
    assert config.homeassistant.node_id == "Kitchen-Pi_1"
    assert config.homeassistant.discovery is False
    pin = config.pins[0]
    assert not pin.is_output
    assert (pin.pin, pin.name, pin.inverted) == (15, "Door", True)
    assert (pin.payload_on, pin.payload_off, pin.device_class, pin.icon) == (
        "OPEN",
        "CLOSED",
        "door",
        "mdi:door",
    )


def test_empty_section_means_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "mqtt:\nmalos:\nhomeassistant:\n" + MINIMAL))

    assert config.mqtt.port == 1883
    assert config.malos.base_port == 20049
    assert config.homeassistant.discovery is True


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))

    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'port'"):
        config.mqtt.port = 1  # type: ignore[misc]


# --- node_id and client_id -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_name", "node_id"),
    [
        ("raspberrypi", "matrix_raspberrypi"),
        ("Kitchen-Pi.local", "matrix_kitchen_pi_local"),
        ("a--b..c", "matrix_a_b_c"),
        ("pi_2", "matrix_pi_2"),
    ],
)
def test_default_node_id_is_derived_from_host_name(
    monkeypatch: pytest.MonkeyPatch, host_name: str, node_id: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: host_name)

    assert default_node_id() == node_id
    assert parse_config({"pins": [{"pin": 0, "mode": "output"}]}).homeassistant.node_id == node_id


def test_two_hosts_get_different_node_ids_and_client_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    data = {"pins": [{"pin": 0, "mode": "output"}]}
    monkeypatch.setattr(socket, "gethostname", lambda: "kitchen")
    kitchen = parse_config(data)
    monkeypatch.setattr(socket, "gethostname", lambda: "garage")
    garage = parse_config(data)

    assert kitchen.homeassistant.node_id == "matrix_kitchen"
    assert garage.homeassistant.node_id == "matrix_garage"
    assert kitchen.client_id == "mqtt-gpio-bridge-matrix_kitchen"
    assert garage.client_id == "mqtt-gpio-bridge-matrix_garage"


def test_client_id_follows_a_configured_node_id(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "homeassistant: {node_id: attic}\n" + MINIMAL))

    assert config.client_id == "mqtt-gpio-bridge-attic"


def test_bad_node_id_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "homeassistant: {node_id: my pi}\n" + MINIMAL) == [
        "homeassistant.node_id: 'my pi' may only contain letters, digits, '_' and '-'"
    ]


# --- file level problems -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(str(tmp_path))

    assert caught.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


def test_binary_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(b"pins: \xff\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [f"{path}: cannot read: not UTF-8 text (byte 0xff at offset 6)"]


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "mqtt:\n  host: a\n port: 1\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: invalid YAML at line 3, column 2: ")


def test_tab_indentation_is_a_yaml_error(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "mqtt:\n\thost: a\n")

    assert "invalid YAML at line 2, column 1: " in problem
    assert "cannot start any token" in problem


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- pin: 0\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [
        f"{path}: the top level must be a mapping of sections "
        "(mqtt, malos, homeassistant, health, pins, links, everloop, sensors), got a list"
    ]


def test_parse_config_refuses_non_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("pins")

    assert caught.value.problems == [
        "(top level): the top level must be a mapping of sections "
        "(mqtt, malos, homeassistant, health, pins, links, everloop, sensors), got 'pins'"
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())

    assert load_config(path).pins[0].pin == 0


# --- pins ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "pins:\n", "pins: []\n", "mqtt: {}\n"])
def test_at_least_one_pin_is_required(tmp_path: Path, text: str) -> None:
    assert problems_of(tmp_path, text) == ["pins: at least one pin must be configured"]


def test_pins_must_be_a_list(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "pins: {pin: 0, mode: output}\n") == [
        "pins: must be a list of pins, e.g. [{pin: 0, mode: output}], got a mapping"
    ]


def test_pin_entry_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "pins: [3]\n") == [
        "pins[0]: must be a mapping of keys to values, got 3"
    ]


@pytest.mark.parametrize(
    ("pin", "problem"), [(16, "16 is out of range 0..15"), (-1, "-1 is out of range 0..15")]
)
def test_pin_number_range(tmp_path: Path, pin: int, problem: str) -> None:
    assert problems_with_pin(f"pin: {pin}, mode: input", tmp_path) == [f"pins[0].pin: {problem}"]


def test_pin_number_must_be_an_integer(tmp_path: Path) -> None:
    assert problems_with_pin('pin: "3", mode: input', tmp_path) == [
        "pins[0].pin: must be a whole number, got '3'"
    ]


def test_mode_is_required(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 3", tmp_path) == ["pins[0].mode: required key is missing"]


def test_mode_must_be_input_output_or_servo(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 3, mode: out", tmp_path) == [
        "pins[0].mode: must be 'input', 'output' or 'servo', got 'out'"
    ]


def test_mode_and_initial_ignore_case_and_whitespace(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, 'pins:\n  - {pin: 1, mode: " Output ", initial: " ON "}\n')
    )

    assert config.pins[0].mode == "output"
    assert config.pins[0].initial == "on"


@pytest.mark.parametrize(
    ("word", "initial"), [("on", "on"), ("off", "off"), ("yes", "on"), ("no", "off")]
)
def test_unquoted_initial_boolean_is_what_the_user_meant(
    tmp_path: Path, word: str, initial: str
) -> None:
    config = load_config(write(tmp_path, f"pins:\n  - {{pin: 1, mode: output, initial: {word}}}\n"))

    assert config.pins[0].initial == initial


def test_initial_must_be_on_or_off(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 1, mode: output, initial: high", tmp_path) == [
        "pins[0].initial: must be 'on' or 'off' (outputs) or a whole number of degrees "
        "(servos), got 'high'"
    ]


def test_initial_on_an_input_is_refused(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 4, mode: input, initial: off", tmp_path) == [
        "pins[0].initial: only outputs and servo pins have an initial state; pin 4 is an input"
    ]


def test_unquoted_on_payload_is_refused_with_quoting_hint(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 0, mode: output, payload_on: ON", tmp_path) == [
        "pins[0].payload_on: YAML read an unquoted ON/on/yes/true as the boolean true; "
        'quote it, e.g. payload_on: "ON"'
    ]


def test_unquoted_off_payload_is_refused_with_quoting_hint(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 0, mode: output, payload_off: no", tmp_path) == [
        "pins[0].payload_off: YAML read an unquoted OFF/off/no/false as the boolean false; "
        'quote it, e.g. payload_off: "OFF"'
    ]


def test_quoted_payloads_are_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, 'pins:\n  - {pin: 0, mode: output, payload_on: "on", payload_off: "off"}\n')
    )

    assert (config.pins[0].payload_on, config.pins[0].payload_off) == ("on", "off")


def test_numeric_payload_is_refused_with_quoting_hint(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 0, mode: output, payload_on: 1, payload_off: 0", tmp_path) == [
        'pins[0].payload_on: YAML read the unquoted 1 as a number; quote it, e.g. payload_on: "1"',
        "pins[0].payload_off: YAML read the unquoted 0 as a number; "
        'quote it, e.g. payload_off: "0"',
    ]


def test_boolean_or_numeric_name_is_refused(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "pins:\n  - {pin: 0, mode: output, name: yes}\n  - {pin: 1, mode: input, name: 12}\n",
    )

    assert problems == [
        "pins[0].name: YAML read an unquoted ON/on/yes/true as the boolean true; "
        'quote it, e.g. name: "ON"',
        'pins[1].name: YAML read the unquoted 12 as a number; quote it, e.g. name: "12"',
    ]


def test_payloads_must_differ_ignoring_case(tmp_path: Path) -> None:
    assert problems_with_pin(
        'pin: 0, mode: output, payload_on: "Go", payload_off: "GO"', tmp_path
    ) == ['pins[0].payload_off: must differ from payload_on ("Go"), ignoring case']


def test_payload_must_not_be_empty(tmp_path: Path) -> None:
    assert problems_with_pin('pin: 0, mode: output, payload_on: ""', tmp_path) == [
        "pins[0].payload_on: must not be empty"
    ]


def test_payload_length_limit(tmp_path: Path) -> None:
    ok = load_config(
        write(tmp_path, f'pins: [{{pin: 0, mode: output, payload_on: "{"x" * 64}"}}]\n')
    )
    assert len(ok.pins[0].payload_on) == 64

    assert problems_with_pin(f'pin: 0, mode: output, payload_on: "{"x" * 65}"', tmp_path) == [
        "pins[0].payload_on: must be at most 64 characters, got 65"
    ]


def test_inverted_must_be_a_boolean(tmp_path: Path) -> None:
    assert problems_with_pin('pin: 0, mode: output, inverted: "maybe"', tmp_path) == [
        "pins[0].inverted: must be true or false, got 'maybe'"
    ]


def test_duplicate_pin_points_at_the_first_one(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
pins:
  - {pin: 1, mode: input}
  - {pin: 3, mode: output}
  - {pin: 2, mode: input}
  - {pin: 3, mode: input}
""",
    )

    assert problems == ["pins[3].pin: pin 3 is already configured at pins[1]"]


def test_duplicate_pin_is_reported_with_errors_elsewhere(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
mqtt: {qos: "1"}
pins:
  - {pin: 3, mode: output}
  - {pin: 3, mode: output, payload_on: ON}
""",
    )

    assert problems == [
        "mqtt.qos: must be a whole number, got '1'",
        "pins[1].payload_on: YAML read an unquoted ON/on/yes/true as the boolean true; "
        'quote it, e.g. payload_on: "ON"',
        "pins[1].pin: pin 3 is already configured at pins[0]",
    ]


def test_duplicates_are_checked_when_models_are_built_directly() -> None:
    pin = PinSpec(pin=5, mode="input")

    with pytest.raises(ValueError, match=r"pin 5 is already configured at pins\[0\]"):
        BridgeConfig(pins=(pin, pin))


# --- mqtt ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("port", "0", "0 is out of range 1..65535"),
        ("port", "65536", "65536 is out of range 1..65535"),
        ("qos", "3", "3 is out of range 0..2"),
        ("keepalive", "4", "4 is out of range 5..3600"),
        ("keepalive", "3601", "3601 is out of range 5..3600"),
        ("port", "1883.0", "must be a whole number, got 1883.0"),
        ("host", '""', "must not be empty"),
        ("client_id", '""', "must not be empty"),
        ("base_topic", '""', "must not be empty"),
        ("base_topic", "home/+", "must not contain the MQTT wildcards '+' or '#'"),
        ("base_topic", '"home/#"', "must not contain the MQTT wildcards '+' or '#'"),
        ("base_topic", "/home", "must not start or end with '/'"),
        ("base_topic", "home/", "must not start or end with '/'"),
    ],
)
def test_mqtt_rules(tmp_path: Path, key: str, value: str, problem: str) -> None:
    assert problems_of(tmp_path, f"mqtt:\n  {key}: {value}\n" + MINIMAL) == [
        f"mqtt.{key}: {problem}"
    ]


def test_mqtt_range_edges_are_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "mqtt: {port: 65535, qos: 0, keepalive: 5}\n" + MINIMAL))

    assert (config.mqtt.port, config.mqtt.qos, config.mqtt.keepalive) == (65535, 0, 5)


def test_password_is_never_shown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'mqtt: {username: bob, password: "hunter2"}\n' + MINIMAL))

    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)
    assert not any("hunter2" in line for line in summarize(config))
    assert "bob" in summarize(config)[0]


def test_numeric_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "mqtt: {password: 987654}\n" + MINIMAL)

    assert problems == ["mqtt.password: YAML read the unquoted password as a number; quote it"]
    assert "987654" not in str(problems)


# --- malos ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (
            "base_port",
            "0",
            "0 is out of range 1..65532 (the driver uses base_port to base_port + 3)",
        ),
        (
            "base_port",
            "65533",
            "65533 is out of range 1..65532 (the driver uses base_port to base_port + 3)",
        ),
        (
            "servo_port",
            "0",
            "0 is out of range 1..65532 (the driver uses servo_port to servo_port + 3)",
        ),
        (
            "servo_port",
            "65533",
            "65533 is out of range 1..65532 (the driver uses servo_port to servo_port + 3)",
        ),
        ("servo_port", '"20045"', "must be a whole number, got '20045'"),
        ("servo_port", "true", "must be a whole number, got the boolean true"),
        ("update_interval", "0", f"must be at least 0.005 seconds, got 0{BUSY_LOOP}"),
        ("update_interval", "0.0049", f"must be at least 0.005 seconds, got 0.0049{BUSY_LOOP}"),
        ("update_interval", "61", "must be at least 0.005 and at most 60 seconds, got 61"),
        ("update_interval", ".inf", "must be a finite number of seconds, got inf"),
        ("update_interval", '"0.1"', "must be a number of seconds, got '0.1'"),
        ("keepalive_interval", "-1", "must be greater than 0 seconds, got -1"),
        ("ping_timeout", "0", "must be greater than 0 seconds, got 0"),
        (
            "offline_after",
            "1.4",
            "must be at least 1.5 seconds, got 1.4 (the driver starts with 1 s between "
            "updates and would look offline at start)",
        ),
        ("host", '""', "must not be empty"),
    ],
)
def test_malos_rules(tmp_path: Path, key: str, value: str, problem: str) -> None:
    assert problems_of(tmp_path, f"malos:\n  {key}: {value}\n" + MINIMAL) == [
        f"malos.{key}: {problem}"
    ]


def test_keepalive_must_be_shorter_than_ping_timeout(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "malos: {keepalive_interval: 5, ping_timeout: 5}\n" + MINIMAL) == [
        "malos.keepalive_interval: must be less than malos.ping_timeout (5 s), or the driver "
        "stops sending updates between two pings"
    ]


def test_offline_after_must_exceed_update_interval(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "malos: {update_interval: 2, offline_after: 2}\n" + MINIMAL) == [
        "malos.offline_after: must be greater than malos.update_interval (2 s), or every pause "
        "between updates would look like an outage"
    ]


def test_both_timing_problems_are_reported_together(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "malos: {keepalive_interval: 9, ping_timeout: 5, update_interval: 4, offline_after: 3}\n"
        + MINIMAL,
    )

    assert [problem.split(":")[0] for problem in problems] == [
        "malos.keepalive_interval",
        "malos.offline_after",
    ]


def test_integer_seconds_are_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "malos: {update_interval: 1, offline_after: 2}\n" + MINIMAL)
    )

    assert config.malos.update_interval == 1.0
    assert config.malos.offline_after == 2.0


# --- home assistant ------------------------------------------------------------------------


def test_homeassistant_rules(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        'homeassistant: {discovery: "yes", prefix: "ha/", device_name: ""}\n' + MINIMAL,
    )

    assert problems == [
        "homeassistant.discovery: must be true or false, got 'yes'",
        "homeassistant.prefix: must not start or end with '/'",
        "homeassistant.device_name: must not be empty",
    ]


# --- health ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "interval"), [("0", 0.0), ("0.1", 0.1), ("30", 30.0)])
def test_health_interval_0_is_off_and_seconds_are_taken(
    tmp_path: Path, value: str, interval: float
) -> None:
    config = load_config(write(tmp_path, f"health: {{interval: {value}}}\n" + MINIMAL))
    assert config.health.interval == interval


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("-1", "must be at least 0.1 seconds, got -1 (or 0: no health messages)"),
        ("0.05", "must be at least 0.1 seconds, got 0.05 (or 0: no health messages)"),
        ("86401", "must be at least 0.1 and at most 86400 seconds, got 86401"),
        (".inf", "must be a finite number of seconds, got inf"),
        ('"60"', "must be a number of seconds (0: off), got '60'"),
        ("off", "must be a number of seconds (0: off), got the boolean false"),
        ("", "must be a number of seconds (0: off), got nothing (null)"),
    ],
)
def test_health_interval_rules(tmp_path: Path, value: str, problem: str) -> None:
    assert problems_of(tmp_path, f"health:\n  interval: {value}\n" + MINIMAL) == [
        f"health.interval: {problem}"
    ]


def test_health_section_keys_are_checked(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "health: {intervall: 5}\n" + MINIMAL) == [
        "health.intervall: unknown key (did you mean 'interval'?)"
    ]


# --- unknown keys and several problems at once ---------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "mqqt: {}\n" + MINIMAL) == [
        "mqqt: unknown key (did you mean 'mqtt'?)"
    ]


def test_unknown_nested_keys_suggest_the_right_one(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "mqtt: {hots: x}\n"
        "homeassistant: {Prefix: ha}\n"
        "pins: [{pin: 0, mode: output, invert: true}]\n",
    )

    assert problems == [
        "mqtt.hots: unknown key (did you mean 'host'?)",
        "homeassistant.Prefix: unknown key (did you mean 'prefix'?)",
        "pins[0].invert: unknown key (did you mean 'inverted'?)",
    ]


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "malos: {zzz: 1}\n" + MINIMAL) == ["malos.zzz: unknown key"]


def test_bad_port_unknown_key_and_duplicate_pin_are_all_reported(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
mqtt:
  port: 99999
  hots: broker
pins:
  - {pin: 2, mode: output}
  - {pin: 2, mode: input}
""",
    )

    assert problems == [
        "mqtt.port: 99999 is out of range 1..65535",
        "mqtt.hots: unknown key (did you mean 'host'?)",
        "pins[1].pin: pin 2 is already configured at pins[0]",
    ]


def test_many_problems_in_one_run(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
mqtt: {qos: 5}
malos: {base_port: 70000}
homeassistant: {node_id: "a b"}
pins:
  - {pin: 16, mode: output}
  - {pin: 1, mode: input, initial: on}
  - {pin: 2, mode: sideways}
extra: 1
""",
    )

    assert problems == [
        "mqtt.qos: 5 is out of range 0..2",
        "malos.base_port: 70000 is out of range 1..65532 "
        "(the driver uses base_port to base_port + 3)",
        "homeassistant.node_id: 'a b' may only contain letters, digits, '_' and '-'",
        "pins[0].pin: 16 is out of range 0..15",
        "pins[1].initial: only outputs and servo pins have an initial state; pin 1 is an input",
        "pins[2].mode: must be 'input', 'output' or 'servo', got 'sideways'",
        "extra: unknown key",
    ]


def test_parse_config_reports_problems_without_a_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"mqtt": {"port": 0}, "pins": [{"pin": 0, "mode": "input"}]})

    assert caught.value.problems == ["mqtt.port: 0 is out of range 1..65535"]


# --- summarize -----------------------------------------------------------------------------


def test_summarize_describes_broker_driver_pins_and_discovery(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
pins:
  - {pin: 3, mode: output, name: Relay, initial: on}
  - {pin: 4, mode: input, name: Door, inverted: true}
  - {pin: 5, mode: input}
""",
        )
    )

    assert summarize(config) == [
        "mqtt localhost:1883 as mqtt-gpio-bridge-matrix_testhost, base topic matrix, qos 1",
        "retained commands ignored, at most 20 states a second per pin",
        "malos 127.0.0.1:20049..20052, updates every 0.1 s, offline after 3 s",
        'pin 3 output "Relay" -> matrix/gpio/3/state, commands on matrix/gpio/3/set (initial on)',
        'pin 4 input "Door" -> matrix/gpio/4/state (inverted)',
        "pin 5 input -> matrix/gpio/5/state",
        "home assistant discovery on (device form), prefix homeassistant, node_id matrix_testhost",
    ]


def test_summarize_with_discovery_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "homeassistant: {discovery: false}\n" + MINIMAL))

    assert summarize(config)[-1] == "home assistant discovery off"


def test_keys_left_empty_in_yaml_mean_not_set(tmp_path: Path) -> None:
    path = tmp_path / "empty-values.yaml"
    path.write_text(
        "mqtt:\n  client_id:\n  username:\npins:\n  - pin: 0\n    mode: output\n    name:\n"
    )
    config = load_config(path)
    assert config.mqtt.client_id is None
    assert config.pins[0].name is None
    assert config.client_id.startswith("mqtt-gpio-bridge-")


def test_tls_switch_and_section() -> None:
    base = {"pins": [{"pin": 0, "mode": "output"}]}
    assert parse_config(base | {"mqtt": {"tls": False}}).mqtt.tls is None
    assert parse_config(base | {"mqtt": {"tls": None}}).mqtt.tls is None
    tls = parse_config(base | {"mqtt": {"tls": True}}).mqtt.tls
    assert tls is not None
    assert (tls.ca_file, tls.insecure) == (None, False)


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    base = {"pins": [{"pin": 0, "mode": "output"}]}
    from_file = parse_config(base | {"mqtt": {"username": "u", "password_file": str(secret)}})
    assert from_file.mqtt.secret() == "s3cret"
    monkeypatch.setenv("BRIDGE_TEST_PASSWORD", "from-env")
    from_env = parse_config(
        base | {"mqtt": {"username": "u", "password_env": "BRIDGE_TEST_PASSWORD"}}
    )
    assert from_env.mqtt.secret() == "from-env"
    with pytest.raises(ConfigError) as caught:
        parse_config(base | {"mqtt": {"username": "u", "password": "x", "password_env": "Y"}})
    assert caught.value.problems == ["mqtt.password_env: set only one of password, password_env"]
    with pytest.raises(ConfigError) as caught:
        parse_config(base | {"mqtt": {"reconnect_min": 10.0, "reconnect_max": 5.0}})
    assert caught.value.problems == ["mqtt.reconnect_min: must not exceed mqtt.reconnect_max (5 s)"]


def test_a_key_written_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "pins:\n  - {pin: 0, mode: output}\nmqtt:\n  port: 1883\npins:\n  - {pin: 1, mode: input}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: invalid YAML at line 5, column 1: "
        "key 'pins' appears twice (first written at line 1, column 1)"
    ]


# --- values that end up in MQTT: what the protocol and the broker can carry ----------------
# Before these rules, check-config passed each of these and `run` then died with a traceback
# from paho (struct.error for a field over 65535 bytes, UnicodeEncodeError for a lone
# surrogate) or reconnected forever because Mosquitto closed the connection (a NUL or a
# control character: "Malformed UTF-8").

PINS = [{"pin": 0, "mode": "output"}]
MQTT_STRING_KEYS = [
    ("mqtt", "client_id"),
    ("mqtt", "username"),
    ("mqtt", "base_topic"),
    ("homeassistant", "prefix"),
]


def problems_of_document(document: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"pins": PINS} | document)
    return caught.value.problems


@pytest.mark.parametrize(("section", "key"), MQTT_STRING_KEYS)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ab\x00c", "must not contain the NUL character U+0000 (at character 3): MQTT forbids it"),
        ("a\x1b[31m", "must not contain the control character U+001B (at character 2): MQTT"),
        ("tab\there", "must not contain the control character U+0009 (at character 4): MQTT"),
        ("del\x7f", "must not contain the control character U+007F (at character 4): MQTT"),
        ("c1\x85", "must not contain the control character U+0085 (at character 3): MQTT"),
        ("x\uffff", "must not contain the Unicode noncharacter U+FFFF (at character 2): MQTT"),
        ("x\ufdd0", "must not contain the Unicode noncharacter U+FDD0 (at character 2): MQTT"),
        ("x\U0001fffe", "must not contain the Unicode noncharacter U+1FFFE (at character 2)"),
        ("x\ud800", "must not contain the lone surrogate U+D800 (at character 2): it cannot be "),
        ("\udcff", "must not contain the lone surrogate U+DCFF (at character 1): it cannot be "),
    ],
    ids=["nul", "escape", "tab", "del", "c1", "uffff", "ufdd0", "u1fffe", "ud800", "udcff"],
)
def test_characters_mqtt_cannot_carry_are_refused_with_the_key(
    section: str, key: str, value: str, problem: str
) -> None:
    (line,) = problems_of_document({section: {key: value}})

    assert line.startswith(f"{section}.{key}: {problem}"), line


@pytest.mark.parametrize(("section", "key"), MQTT_STRING_KEYS)
def test_unicode_that_mqtt_carries_is_accepted(section: str, key: str) -> None:
    # Non-ASCII text, a byte order mark and a no-break space are all fine in MQTT strings.
    value = "k\u00fcche/\u2615\ufeff\u00a0\U0001f4a1"

    config = parse_config({"pins": PINS, section: {key: value}})

    assert getattr(getattr(config, section), key) == value


def test_yaml_escapes_that_mqtt_cannot_carry_are_refused(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        'mqtt: {base_topic: "home\\0x", client_id: "id\\ud800", username: "u\\x01"}\n'
        'homeassistant: {prefix: "ha\\tx"}\n' + MINIMAL,
    )

    assert sorted(line.partition(": ")[0] for line in problems) == [
        "homeassistant.prefix",
        "mqtt.base_topic",
        "mqtt.client_id",
        "mqtt.username",
    ]
    assert (
        "mqtt.base_topic: must not contain the NUL character U+0000 (at character 5): "
        "MQTT forbids it in strings"
    ) in problems


def test_a_100_kb_client_id_is_refused_with_the_key(tmp_path: Path) -> None:
    assert problems_of(tmp_path, f"mqtt: {{client_id: {'x' * 100_000}}}\n" + MINIMAL) == [
        "mqtt.client_id: must be at most 65521 bytes in UTF-8 (`health` connects as "
        "<client_id>-health-xxxxxx, which MQTT limits to 65535), got 100000"
    ]


def test_client_id_length_leaves_room_for_the_health_check() -> None:
    longest = "x" * (65535 - len("-health-123456"))
    assert parse_config({"pins": PINS, "mqtt": {"client_id": longest}}).client_id == longest

    (line,) = problems_of_document({"mqtt": {"client_id": longest + "x"}})
    assert line.startswith("mqtt.client_id: must be at most 65521 bytes in UTF-8")
    assert line.endswith("got 65522")


def test_lengths_are_counted_in_utf8_bytes_not_characters() -> None:
    # 21,841 characters, 65,523 bytes: over the limit although far fewer characters.
    (line,) = problems_of_document({"mqtt": {"client_id": "\u20ac" * 21_841}})

    assert line.endswith("got 65523")


def test_user_name_length_limit() -> None:
    longest = "u" * 65535
    assert parse_config({"pins": PINS, "mqtt": {"username": longest}}).mqtt.username == longest

    assert problems_of_document({"mqtt": {"username": longest + "u"}}) == [
        "mqtt.username: must be at most 65535 bytes in UTF-8 (the MQTT limit), got 65536"
    ]


def test_base_topic_must_leave_room_for_the_longest_topic_built_from_it() -> None:
    longest = "b" * (65535 - len("/gpio/15/state"))
    config = parse_config({"pins": PINS, "mqtt": {"base_topic": longest}})
    assert len(Topics(config.mqtt.base_topic).state(15)) == 65535

    assert problems_of_document({"mqtt": {"base_topic": longest + "b"}}) == [
        "mqtt.base_topic: must be at most 65521 bytes in UTF-8 (so that "
        "<mqtt.base_topic>/gpio/15/state fits in MQTT's 65535), got 65522"
    ]


def test_discovery_prefix_must_leave_room_for_the_node_id_and_the_longest_topic() -> None:
    node_id = "kitchen"
    room = 65535 - len(f"/binary_sensor/{node_id}/gpio15/config")
    section = {"node_id": node_id, "prefix": "p" * room}
    config = parse_config({"pins": PINS, "homeassistant": section})
    assert len(config_topic(config, "binary_sensor", 15)) == 65535

    assert problems_of_document({"homeassistant": section | {"prefix": "p" * (room + 1)}}) == [
        f"homeassistant.prefix: must be at most {room} bytes in UTF-8 (so that "
        f"<homeassistant.prefix>/binary_sensor/{node_id}/gpio15/config fits in MQTT's 65535), "
        f"got {room + 1}"
    ]


def test_the_prefix_length_is_checked_when_built_directly() -> None:
    with pytest.raises(ValueError, match=r"prefix: must be at most \d+ bytes in UTF-8"):
        HomeAssistantConfig(prefix="p" * 70_000, node_id="n")


def test_node_id_length_limit_keeps_topics_and_the_client_id_short() -> None:
    longest = "n" * 128
    config = parse_config({"pins": PINS, "homeassistant": {"node_id": longest}})
    assert config.client_id == f"mqtt-gpio-bridge-{longest}"

    assert problems_of_document({"homeassistant": {"node_id": "n" * 100_000}}) == [
        "homeassistant.node_id: must be at most 128 characters, got 100000"
    ]


def test_default_node_id_from_a_very_long_host_name_stays_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "a" * 200 + ".example.com")

    node_id = default_node_id()

    assert node_id == ("matrix_" + "a" * 200)[:128]
    assert parse_config({"pins": PINS}).homeassistant.node_id == node_id


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("O\x00N", "must not contain the NUL character U+0000 (at character 2)"),
        ("O\ud800N", "must not contain the lone surrogate U+D800 (at character 2): it cannot be "),
    ],
)
def test_payloads_must_be_sendable(value: str, problem: str) -> None:
    (line,) = problems_of_document({"pins": [{"pin": 0, "mode": "output", "payload_on": value}]})

    assert line.startswith(f"pins[0].payload_on: {problem}"), line


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("pins[0]", "name"),
        ("pins[0]", "icon"),
        ("pins[0]", "device_class"),
        ("homeassistant", "device_name"),
        ("homeassistant", "model"),
    ],
)
def test_text_for_home_assistant_must_be_encodable(where: str, key: str) -> None:
    # json.dumps would escape it as "\ud800", but it is no character: print() and UTF-8 fail.
    pin: dict[str, object] = {"pin": 0, "mode": "input"}
    document: dict[str, object] = {"pins": [pin]}
    if where == "pins[0]":
        pin[key] = "Re\ud800lay"
    else:
        document[where] = {key: "Re\ud800lay"}

    with pytest.raises(ConfigError) as caught:
        parse_config(document)

    assert caught.value.problems == [
        f"{where}.{key}: must not contain the lone surrogate U+D800 (at character 3): "
        "it cannot be encoded as UTF-8"
    ]


def test_every_accepted_text_can_be_published_and_printed(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
mqtt: {client_id: "br\u00fccke", username: "b\u00e4r", base_topic: "haus/k\u00fcche"}
homeassistant: {prefix: "ha/\u2615", device_name: "Caf\u00e9", model: "\U0001f4a1"}
pins:
  - {pin: 0, mode: output, name: "L\u00e4mpchen", icon: "mdi:\u00e9", device_class: "x\u00e9"}
""",
        )
    )

    for line in summarize(config):
        line.encode("utf-8")
    for announcement in announcements(config):
        announcement.topic.encode("utf-8")
        json.loads(announcement.payload)


# --- the password: MQTT binary data, checked wherever it comes from, and never shown --------


def test_a_password_too_long_for_mqtt_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s" * 65536
    (tmp_path / "password").write_text(secret + "\n")
    monkeypatch.setenv("BRIDGE_TEST_PASSWORD", secret)
    message = "is longer than MQTT allows: at most 65535 bytes in UTF-8"

    for source, value in [
        ("password", secret),
        ("password_file", str(tmp_path / "password")),
        ("password_env", "BRIDGE_TEST_PASSWORD"),
    ]:
        problems = problems_of_document({"mqtt": {"username": "u", source: value}})
        assert problems == [f"mqtt.{source}: {message}"]


def test_the_longest_password_mqtt_carries_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s" * 65535 + "\r\n")
    mqtt = {"username": "u", "password_file": str(tmp_path / "password")}

    assert parse_config({"pins": PINS, "mqtt": mqtt}).mqtt.secret() == "s" * 65535


def test_a_password_that_is_not_utf8_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An environment value Python could not decode, a file that is not UTF-8, a YAML escape.
    monkeypatch.setenv("BRIDGE_TEST_PASSWORD", "pa\udcffss")  # os.environ's bytes b"pa\xffss"
    (tmp_path / "password").write_bytes(b"pa\xffss")

    assert problems_of_document(
        {"mqtt": {"username": "u", "password_env": "BRIDGE_TEST_PASSWORD"}}
    ) == ["mqtt.password_env: BRIDGE_TEST_PASSWORD is not UTF-8 text"]
    assert problems_of_document(
        {"mqtt": {"username": "u", "password_file": str(tmp_path / "password")}}
    ) == ["mqtt.password_file: cannot read: not UTF-8 text"]
    assert problems_of_document({"mqtt": {"username": "u", "password": "pa\ud800ss"}}) == [
        "mqtt.password: contains a lone surrogate (U+D800..U+DFFF), which cannot be encoded "
        "as UTF-8"
    ]


def test_a_password_may_hold_any_character_mqtt_binary_data_can(tmp_path: Path) -> None:
    # Unlike MQTT strings, the password is binary data: a NUL or a control character is fine.
    mqtt = {"username": "u", "password": "p\x00\x1b\x7f\uffff"}

    assert parse_config({"pins": PINS, "mqtt": mqtt}).mqtt.secret() == "p\x00\x1b\x7f\uffff"


def test_a_password_file_that_grew_later_is_a_config_error_at_reading(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("short\n")
    config = parse_config({"pins": PINS, "mqtt": {"username": "u", "password_file": str(path)}})
    path.write_text("z" * 70_000)

    with pytest.raises(ConfigError) as caught:
        config.mqtt.secret()

    assert caught.value.problems == [
        "mqtt.password_file: is longer than MQTT allows: at most 65535 bytes in UTF-8"
    ]


def test_an_endless_password_file_is_refused_without_reading_it_all() -> None:
    mqtt = {"username": "u", "password_file": "/dev/zero"}

    assert problems_of_document({"mqtt": mqtt}) == [
        "mqtt.password_file: is longer than MQTT allows: at most 65535 bytes in UTF-8"
    ]


# --- host names: refused before a library fails late on them -------------------------------


@pytest.mark.parametrize("section", ["mqtt", "malos"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("local\x00host", "must not contain the NUL character U+0000 (at character 6)"),
        ("broker\n", "must not contain the control character U+000A (at character 7)"),
        (
            "a\ud800",
            "must not contain the lone surrogate U+D800 (at character 2): "
            "it cannot be encoded as UTF-8",
        ),
        ("x" * 100_000, "must be at most 253 characters (the longest host name), got 100000"),
        (
            "a" * 64 + ".lan",
            "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... is not a valid host "
            "name: every part between dots must have 1 to 63 characters",
        ),
        (
            "a..lan",
            "'a..lan' is not a valid host name: every part between dots must have 1 to 63 "
            "characters",
        ),
        (
            ".".join(["b" * 63] * 4),
            "must be at most 253 characters (the longest host name), got 255",
        ),
        (
            "\u00fc" * 60,
            "'" + "\u00fc" * 56 + "... is not a valid host name: every part between dots "
            "must have 1 to 63 characters",
        ),
        (
            "a\u2028b",
            "'a\\u2028b' is not a valid host name: Invalid character '\\u2028'",
        ),
    ],
    ids=[
        "nul",
        "newline",
        "surrogate",
        "100k",
        "label-64",
        "empty-label",
        "255",
        "idna-label-too-long",
        "idna-invalid",
    ],
)
def test_host_names_that_cannot_be_looked_up_are_refused(
    section: str, value: str, problem: str
) -> None:
    assert problems_of_document({section: {"host": value}}) == [f"{section}.host: {problem}"]


@pytest.mark.parametrize("section", ["mqtt", "malos"])
@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "broker.lan.",
        "10.0.0.5",
        "::1",
        "fe80::1%eth0",
        "br\u00f6ker.lan",
        "a" * 63 + ".lan",
        ".".join(["b" * 63] * 3 + ["c" * 61]),  # 253 characters
    ],
)
def test_host_names_and_addresses_are_accepted(section: str, host: str) -> None:
    config = parse_config(
        {"pins": PINS, section: {"host": host}, "homeassistant": {"node_id": "kitchen"}}
    )

    assert getattr(config, section).host == host


@pytest.mark.parametrize("host", ["192.168.1.50", "matrix-kitchen.lan", "fe80::1%eth0"])
def test_a_board_elsewhere_needs_a_node_id_of_its_own(host: str) -> None:
    """The default node id comes from the host name of the bridge's machine, not the board's."""
    problems = problems_of_document({"pins": PINS, "malos": {"host": host}})

    assert problems == [
        f"homeassistant.node_id: must be set when malos.host ({host}) is another machine: the "
        f"default, {default_node_id()!r}, is made from the name of the machine the bridge runs "
        "on, not the board's, and a second bridge here would take the same one (e.g. node_id: "
        "matrix_kitchen)"
    ]
    config = parse_config(
        {"pins": PINS, "malos": {"host": host}, "homeassistant": {"node_id": "matrix_kitchen"}}
    )
    assert config.homeassistant.node_id == "matrix_kitchen"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.1.1", "::1", "localhost", "LOCALHOST.", "ip6-localhost"]
)
def test_the_board_itself_needs_no_node_id(host: str) -> None:
    config = parse_config({"pins": PINS, "malos": {"host": host}})

    assert config.homeassistant.node_id == default_node_id()


# --- retained commands and the state rate ---------------------------------------------------


def test_retained_commands_and_state_rate_defaults() -> None:
    mqtt = parse_config({"pins": PINS}).mqtt

    assert mqtt.retained_commands == "ignore"
    assert mqtt.max_state_rate == 20


@pytest.mark.parametrize(
    ("written", "read"), [("apply", "apply"), (" Apply ", "apply"), ("IGNORE", "ignore")]
)
def test_retained_commands_ignore_case_and_whitespace(
    tmp_path: Path, written: str, read: str
) -> None:
    config = load_config(write(tmp_path, f'mqtt: {{retained_commands: "{written}"}}\n' + MINIMAL))

    assert config.mqtt.retained_commands == read


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("obey", "must be 'ignore' or 'apply', got 'obey'"),
        ("yes", "must be 'ignore' or 'apply', got the boolean true"),
        ("1", "must be 'ignore' or 'apply', got 1"),
    ],
)
def test_retained_commands_must_be_ignore_or_apply(
    tmp_path: Path, value: str, problem: str
) -> None:
    assert problems_of(tmp_path, f"mqtt: {{retained_commands: {value}}}\n" + MINIMAL) == [
        f"mqtt.retained_commands: {problem}"
    ]


def test_max_state_rate_range_edges_are_accepted(tmp_path: Path) -> None:
    for rate in (1, 1000):
        config = load_config(write(tmp_path, f"mqtt: {{max_state_rate: {rate}}}\n" + MINIMAL))
        assert config.mqtt.max_state_rate == rate


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "0 is out of range 1..1000"),
        ("1001", "1001 is out of range 1..1000"),
        ("-5", "-5 is out of range 1..1000"),
        ("2.5", "must be a whole number, got 2.5"),
        ('"20"', "must be a whole number, got '20'"),
        ("true", "must be a whole number, got the boolean true"),
    ],
)
def test_max_state_rate_must_be_an_integer_in_range(
    tmp_path: Path, value: str, problem: str
) -> None:
    assert problems_of(tmp_path, f"mqtt: {{max_state_rate: {value}}}\n" + MINIMAL) == [
        f"mqtt.max_state_rate: {problem}"
    ]


def test_summarize_shows_retained_commands_and_state_rate(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "mqtt: {retained_commands: apply, max_state_rate: 5}\n" + MINIMAL)
    )

    assert summarize(config)[1] == "retained commands applied, at most 5 states a second per pin"


@pytest.mark.parametrize(("section", "key"), [("mqtt", "base_topic"), ("homeassistant", "prefix")])
def test_topics_starting_with_a_dollar_are_the_brokers(section: str, key: str) -> None:
    (line,) = problems_of_document({section: {key: "$home"}})

    assert line.startswith(f"{section}.{key}: must not start with '$'"), line


# --- YAML mistakes: the line of the mistake, and where what PyYAML was reading started -------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "mqtt:\n  host localhost\n  port: 1883\n" + MINIMAL,
            "invalid YAML at line 3, column 7: mapping values are not allowed here "
            "(is the ':' after the key on line 2 missing?)",
        ),
        (
            "mqtt:\n  host: a\n port: 1\n" + MINIMAL,
            "invalid YAML at line 3, column 2: expected <block end>, but found "
            "'<block mapping start>' (while parsing a block mapping that started at line 1, "
            "column 1)",
        ),
        (
            "pins:\n  - pin: 0\n    mode: output\n   name: x\n",
            "invalid YAML at line 4, column 4: expected <block end>, but found "
            "'<block mapping start>' (while parsing a block collection that started at "
            "line 2, column 3)",
        ),
        (
            'mqtt:\n  host: "localhost\n  port: 1883\n' + MINIMAL,
            "invalid YAML at line 5, column 1: found unexpected end of stream "
            "(while scanning a quoted scalar that started at line 2, column 9)",
        ),
        (
            "mqtt:\n  host: [127.0.0.1\npins: []\n",
            "invalid YAML at line 3, column 5: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence that started at line 2, column 9)",
        ),
        (
            "pins:\n  - {pin: 0, mode: output\n  - {pin: 1, mode: input}\n",
            "invalid YAML at line 3, column 5: expected ',' or '}', but got '{' "
            "(while parsing a flow mapping that started at line 2, column 5)",
        ),
        (
            "mqtt:\n\thost: a\n",
            "invalid YAML at line 2, column 1: found character '\\t' that cannot start any "
            "token (while scanning for the next token); YAML takes no tabs there: indent with "
            "spaces",
        ),
        (
            "mqtt:\n  host: a: b\n" + MINIMAL,
            "invalid YAML at line 2, column 10: mapping values are not allowed here",
        ),
    ],
    ids=[
        "missing-colon",
        "bad-indent",
        "bad-indent-in-list",
        "unclosed-quote",
        "unclosed-bracket",
        "unclosed-brace",
        "tab",
        "colon-in-value",
    ],
)
def test_yaml_mistakes_name_the_line_to_look_at(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [f"{path}: {problem}"]


# --- the password source: read by validation and at run time, never by construction --------


def test_building_mqtt_config_touches_neither_files_nor_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("construction read a file or the environment")

    monkeypatch.setattr("builtins.open", refuse)
    monkeypatch.setattr(os, "access", refuse)
    monkeypatch.setattr(os.environ, "get", refuse)

    from_file = MqttConfig(username="u", password_file=str(tmp_path / "missing"))
    from_env = MqttConfig(username="u", password_env="MQTT_GPIO_BRIDGE_TEST_UNSET")

    assert from_file.password_file == str(tmp_path / "missing")
    assert from_env.password_env == "MQTT_GPIO_BRIDGE_TEST_UNSET"


def test_a_built_config_reads_its_password_source_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MQTT_GPIO_BRIDGE_TEST_UNSET", raising=False)
    missing = tmp_path / "missing"
    from_file = MqttConfig(username="u", password_file=str(missing))
    from_env = MqttConfig(username="u", password_env="MQTT_GPIO_BRIDGE_TEST_UNSET")

    with pytest.raises(ConfigError) as file_error:
        from_file.secret()
    with pytest.raises(ConfigError) as env_error:
        from_env.secret()

    assert file_error.value.problems == [
        f"mqtt.password_file: cannot read: [Errno 2] No such file or directory: '{missing}'"
    ]
    assert env_error.value.problems == ["mqtt.password_env: MQTT_GPIO_BRIDGE_TEST_UNSET is not set"]
    missing.write_text("later\n")
    assert from_file.secret() == "later"


def test_the_rules_that_need_no_reading_still_hold_on_construction() -> None:
    with pytest.raises(ValueError, match="set only one of password, password_file"):
        MqttConfig(username="u", password=Secret("x"), password_file="/run/secrets/mqtt")
    with pytest.raises(ValueError, match=r"password_env: a password needs mqtt\.username"):
        MqttConfig(password_env="X")
    with pytest.raises(ValueError, match="password: contains a lone surrogate"):
        MqttConfig(username="u", password=Secret("a\ud800"))


def test_validation_reads_the_password_source_and_reports_it_with_everything_else(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing"
    document = {
        "mqtt": {
            "username": "u",
            "password_file": str(missing),
            "reconnect_min": 10,
            "reconnect_max": 5,
        },
        "pins": [{"pin": 0, "mode": "sideways"}],
    }

    with pytest.raises(ConfigError) as caught:
        parse_config(document)

    assert caught.value.problems == [
        f"mqtt.password_file: cannot read: [Errno 2] No such file or directory: '{missing}'",
        "mqtt.reconnect_min: must not exceed mqtt.reconnect_max (5 s)",
        "pins[0].mode: must be 'input', 'output' or 'servo', got 'sideways'",
    ]


def test_check_config_reports_an_unreadable_password_file_with_its_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    path = write(tmp_path, f"mqtt: {{username: u, password_file: '{missing}'}}\n" + MINIMAL)

    assert main(["check-config", "--config", str(path)]) == 2

    assert (
        f"  mqtt.password_file: cannot read: [Errno 2] No such file or directory: '{missing}'"
    ) in capsys.readouterr().err.splitlines()


# --- inputs as buttons, and links ----------------------------------------------------------------

BUTTONS = """\
pins:
  - {pin: 3, mode: input, events: [single, long], debounce_ms: 30}
  - {pin: 5, mode: output}
  - {pin: 6, mode: output}
"""


def test_button_keys_are_read_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BUTTONS))
    button = config.pins[0]
    assert (button.events, button.debounce_ms) == (("single", "long"), 30)
    assert (button.double_press_window, button.long_press_after) == (0.4, 0.8)
    assert config.pins[1].events == () and config.pins[1].debounce_ms == 0
    assert config.links == ()


def test_events_is_a_list_of_known_events_each_once(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "pins: [{pin: 3, mode: input, events: double}]")).pins[
        0
    ].events == ("double",)
    assert problems_with_pin("pin: 3, mode: input, events: [single, triple]", tmp_path) == [
        "pins[0].events: 'triple' is not an event; the events are 'single', 'double' and 'long'"
    ]
    assert problems_with_pin("pin: 3, mode: input, events: [long, LONG]", tmp_path) == [
        "pins[0].events: 'long' is listed twice"
    ]
    assert problems_with_pin("pin: 3, mode: input, events: {single: 1}", tmp_path) == [
        "pins[0].events: must be a list such as [single, double, long], got a mapping"
    ]


def test_button_keys_on_an_output_or_without_their_event_are_refused(tmp_path: Path) -> None:
    assert problems_with_pin(
        "pin: 5, mode: output, events: [single], debounce_ms: 20", tmp_path
    ) == [
        "pins[0].debounce_ms: only inputs have debounce_ms; pin 5 is an output",
        "pins[0].events: only inputs have events; pin 5 is an output",
    ]
    assert problems_with_pin(
        "pin: 3, mode: input, events: [single], double_press_ms: 300, long_press_ms: 5", tmp_path
    ) == [
        "pins[0].long_press_ms: 5 is out of range 20..60000",
    ]
    assert problems_with_pin(
        "pin: 3, mode: input, events: [single], double_press_ms: 300", tmp_path
    ) == [
        "pins[0].double_press_ms: is only used when events lists 'double'; pin 3 has events "
        "['single']"
    ]


def test_links_accept_on_quoted_or_not(tmp_path: Path) -> None:
    text = BUTTONS + (
        "links:\n"
        "  - {input: 3, on: single, output: 5, action: toggle}\n"
        '  - {input: 3, "on": long, output: 6, action: pulse, duration_ms: 500}\n'
        "  - {input: 3, output: 5, action: follow}\n"
        "  - {input: 3, on: press, output: 6, action: on}\n"  # `action: on` unquoted too
    )
    links = load_config(write(tmp_path, text)).links
    assert [(link.trigger, link.action, link.duration_ms) for link in links] == [
        ("single", "toggle", None),
        ("long", "pulse", 500),
        ("change", "follow", None),
        ("press", "on", None),
    ]


def test_every_link_mistake_is_refused_with_its_key_path(tmp_path: Path) -> None:
    text = BUTTONS.replace("{pin: 6, mode: output}", "{pin: 6, mode: output, initial: on}") + (
        "links:\n"
        "  - {input: 3, on: double, output: 5, action: toggle}\n"
        "  - {input: 5, on: press, output: 6, action: toggle}\n"
        "  - {input: 3, on: press, output: 7, action: on}\n"
        "  - {input: 3, on: press, output: 3, action: on}\n"
        "  - {input: 3, on: press, output: 5, action: pulse}\n"
        "  - {input: 3, output: 6, action: follow}\n"
        "  - {input: 9, on: release, output: 5, action: off}\n"
    )
    assert problems_of(tmp_path, text) == [
        "links[0].on: pin 3 does not detect 'double' presses (its events: single, long); add "
        "'double' to its events",
        "links[1].input: pin 5 is an output, not an input",
        "links[2].output: pin 7 is not configured in pins",
        "links[3].output: pin 3 is an input, not an output",
        "links[4].duration_ms: required for a pulse (or give pin 5 a pulse_ms)",
        "links[5].output: pin 6 follows pin 3, so its `initial` cannot apply; remove one of them",
        "links[6].input: pin 9 is not configured in pins",
    ]


def test_a_link_on_its_own_is_checked_too(tmp_path: Path) -> None:
    text = BUTTONS + (
        "links:\n"
        "  - {input: 3, output: 5, action: toggle}\n"
        "  - {input: 3, on: press, output: 5, action: follow}\n"
        "  - {input: 3, on: press, output: 5, action: toggle, duration_ms: 100}\n"
        '  - {input: 3, on: press, "on": press, output: 5, action: on}\n'
        "  - {input: 3, on: tap, output: 5, action: blink}\n"
        "  - just a string\n"
    )
    assert problems_of(tmp_path, text) == [
        "links[0].on: required for action 'toggle': say what acts",
        "links[1].on: a follow link acts on every change, not on 'press'; leave `on` out",
        "links[2].duration_ms: only a pulse has a duration, not 'toggle'",
        "links[3].on: `on` is written twice (once quoted, once not)",
        "links[4].on: must be 'press', 'release', 'change', 'single', 'double' or 'long', "
        "got 'tap'",
        "links[4].action: must be 'toggle', 'on', 'off', 'pulse' or 'follow', got 'blink'",
        "links[5]: must be a mapping of keys to values, got 'just a string'",
    ]


def test_two_follow_links_cannot_drive_one_output(tmp_path: Path) -> None:
    text = BUTTONS.replace(
        "  - {pin: 5, mode: output}\n", "  - {pin: 4, mode: input}\n  - {pin: 5, mode: output}\n"
    ) + (
        "links:\n"
        "  - {input: 3, output: 5, action: follow}\n"
        "  - {input: 4, output: 5, action: follow}\n"
    )
    assert problems_of(tmp_path, text) == [
        "links[1].output: pin 5 already follows an input, at links[0]"
    ]


def test_events_with_slow_updates_get_a_warning_naming_the_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "malos: {update_interval: 0.1}\n" + BUTTONS)
    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "  pins[0].events: the driver sends levels every 0.1 s (malos.update_interval), so a "
        "quick tap can fall between two updates and be missed; set malos.update_interval: 0.02 "
        "for buttons"
    ) in out.splitlines()
    fast = write(tmp_path, "malos: {update_interval: 0.05}\n" + BUTTONS)
    assert main(["check-config", "--config", str(fast)]) == 0
    assert "warning" not in capsys.readouterr().out


# --- servo pins ------------------------------------------------------------------------------


def test_a_servo_pin_gets_the_full_angle_range_and_no_initial_angle(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "pins: [{pin: 4, mode: Servo, name: Blinds}]\n"))

    (pin,) = config.pins
    assert (pin.mode, pin.is_servo, pin.is_output) == ("servo", True, False)
    assert (pin.min_angle, pin.max_angle, pin.initial) == (None, None, None)
    assert (pin.lowest_angle, pin.highest_angle) == (0, 180)
    assert pin.name == "Blinds"
    assert not config.pins[0].inverted


def test_a_servo_pin_reads_its_angles_as_written(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "pins:\n  - {pin: 4, mode: servo, min_angle: 30, max_angle: 150, initial: 30, "
            "icon: mdi:blinds}\n",
        )
    )

    (pin,) = config.pins
    assert (pin.min_angle, pin.max_angle, pin.initial) == (30, 150, 30)
    assert (pin.lowest_angle, pin.highest_angle) == (30, 150)
    assert pin.icon == "mdi:blinds"


@pytest.mark.parametrize("mode", ["input", "output"])
def test_only_servo_pins_are_servos(mode: str) -> None:
    assert not PinSpec(pin=1, mode=mode).is_servo  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("angles", "problems"),
    [
        ("min_angle: -1", ["pins[0].min_angle: -1 is out of range 0..180"]),
        ("max_angle: 181", ["pins[0].max_angle: 181 is out of range 0..180"]),
        ("min_angle: 10.5", ["pins[0].min_angle: must be a whole number, got 10.5"]),
        ('max_angle: "90"', ["pins[0].max_angle: must be a whole number, got '90'"]),
        ("max_angle: true", ["pins[0].max_angle: must be a whole number, got the boolean true"]),
        (
            "min_angle: 90, max_angle: 90",
            ["pins[0].max_angle: 90 must be greater than min_angle (90)"],
        ),
        (
            "min_angle: 120, max_angle: 60",
            ["pins[0].max_angle: 60 must be greater than min_angle (120)"],
        ),
        (
            "min_angle: 180",
            [
                "pins[0].max_angle: 180 must be greater than min_angle (180) (max_angle "
                "defaults to 180)"
            ],
        ),
    ],
)
def test_servo_angle_range_mistakes_are_refused(
    tmp_path: Path, angles: str, problems: list[str]
) -> None:
    assert problems_with_pin(f"pin: 4, mode: servo, {angles}", tmp_path) == problems


def test_the_narrowest_servo_ranges_are_accepted(tmp_path: Path) -> None:
    pins = load_config(
        write(
            tmp_path,
            "pins:\n"
            "  - {pin: 4, mode: servo, min_angle: 0, max_angle: 1}\n"
            "  - {pin: 5, mode: servo, min_angle: 179}\n"
            "  - {pin: 6, mode: servo, max_angle: 1}\n",
        )
    ).pins
    assert [(pin.lowest_angle, pin.highest_angle) for pin in pins] == [(0, 1), (179, 180), (0, 1)]


@pytest.mark.parametrize(
    ("initial", "problem"),
    [
        ("181", "181 is out of range 0..180 (min_angle..max_angle)"),
        ("-1", "-1 is out of range 0..180 (min_angle..max_angle)"),
        ("90.5", "must be 'on' or 'off' (outputs) or a whole number of degrees (servos), got 90.5"),
        (
            '"ninety"',
            "must be 'on' or 'off' (outputs) or a whole number of degrees (servos), got 'ninety'",
        ),
        ("on", "a servo's initial is an angle, a whole number 0..180, not 'on'"),
        ('"off"', "a servo's initial is an angle, a whole number 0..180, not 'off'"),
        ("yes", "a servo's initial is an angle, a whole number 0..180, not 'on'"),
    ],
)
def test_a_servo_initial_must_be_an_angle_in_range(
    tmp_path: Path, initial: str, problem: str
) -> None:
    assert problems_with_pin(f"pin: 4, mode: servo, initial: {initial}", tmp_path) == [
        f"pins[0].initial: {problem}"
    ]


def test_a_servo_initial_is_checked_against_its_own_range(tmp_path: Path) -> None:
    assert problems_with_pin(
        "pin: 4, mode: servo, min_angle: 45, max_angle: 135, initial: 30", tmp_path
    ) == ["pins[0].initial: 30 is out of range 45..135 (min_angle..max_angle)"]
    edges = "pins:\n  - {pin: 4, mode: servo, min_angle: 45, max_angle: 135, initial: %d}\n"
    assert load_config(write(tmp_path, edges % 45)).pins[0].initial == 45
    assert load_config(write(tmp_path, edges % 135)).pins[0].initial == 135


def test_an_angle_is_no_initial_state_for_an_output_or_an_input(tmp_path: Path) -> None:
    assert problems_with_pin("pin: 1, mode: output, initial: 90", tmp_path) == [
        "pins[0].initial: an output's initial is 'on' or 'off', not an angle (90)"
    ]
    assert problems_with_pin("pin: 1, mode: input, initial: 90", tmp_path) == [
        "pins[0].initial: only outputs and servo pins have an initial state; pin 1 is an input"
    ]
    assert problems_with_pin("pin: 1, mode: input, initial: on", tmp_path) == [
        "pins[0].initial: only outputs and servo pins have an initial state; pin 1 is an input"
    ]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (
            "inverted: true",
            "inverted: only inputs and outputs can be inverted; pin 4 is a servo pin",
        ),
        (
            'payload_on: "OPEN"',
            "payload_on: only inputs and outputs have payload_on; pin 4 is a servo pin, its "
            "state is an angle",
        ),
        (
            'payload_off: "CLOSED"',
            "payload_off: only inputs and outputs have payload_off; pin 4 is a servo pin, its "
            "state is an angle",
        ),
        (
            "device_class: door",
            "device_class: only inputs and outputs have a device_class; pin 4 is a servo pin",
        ),
        ("pulse_ms: 500", "pulse_ms: only outputs can be pulsed; pin 4 is a servo pin"),
        ("debounce_ms: 30", "debounce_ms: only inputs have debounce_ms; pin 4 is a servo pin"),
        ("events: [single]", "events: only inputs have events; pin 4 is a servo pin"),
        (
            "double_press_ms: 300",
            "double_press_ms: only inputs have double_press_ms; pin 4 is a servo pin",
        ),
        (
            "long_press_ms: 900",
            "long_press_ms: only inputs have long_press_ms; pin 4 is a servo pin",
        ),
    ],
)
def test_keys_a_servo_pin_has_no_use_for_are_refused(
    tmp_path: Path, key: str, problem: str
) -> None:
    assert problems_with_pin(f"pin: 4, mode: servo, {key}", tmp_path) == [f"pins[0].{problem}"]


def test_keys_left_at_their_defaults_are_accepted_on_a_servo_pin(tmp_path: Path) -> None:
    text = (
        'pins:\n  - {pin: 4, mode: servo, inverted: false, payload_on: "ON", '
        'payload_off: "OFF", debounce_ms: 0, events: [], device_class: , name: Blinds}\n'
    )
    assert load_config(write(tmp_path, text)).pins[0].is_servo


def test_every_servo_mistake_is_reported_at_once(tmp_path: Path) -> None:
    assert problems_with_pin(
        "pin: 4, mode: servo, inverted: true, pulse_ms: 500, events: [long], initial: on",
        tmp_path,
    ) == [
        "pins[0].initial: a servo's initial is an angle, a whole number 0..180, not 'on'",
        "pins[0].inverted: only inputs and outputs can be inverted; pin 4 is a servo pin",
        "pins[0].pulse_ms: only outputs can be pulsed; pin 4 is a servo pin",
        "pins[0].events: only inputs have events; pin 4 is a servo pin",
    ]


@pytest.mark.parametrize(("mode", "kind"), [("output", "an output"), ("input", "an input")])
@pytest.mark.parametrize("key", ["min_angle", "max_angle"])
def test_angles_on_a_pin_that_is_not_a_servo_are_refused(
    tmp_path: Path, mode: str, kind: str, key: str
) -> None:
    assert problems_with_pin(f"pin: 2, mode: {mode}, {key}: 90", tmp_path) == [
        f"pins[0].{key}: only servo pins have {key}; pin 2 is {kind}"
    ]


def test_a_servo_pin_cannot_be_in_a_link(tmp_path: Path) -> None:
    text = BUTTONS + (
        "  - {pin: 4, mode: servo}\n"
        "links:\n"
        "  - {input: 4, on: press, output: 5, action: toggle}\n"
        "  - {input: 3, on: press, output: 4, action: on}\n"
        "  - {input: 3, output: 4, action: follow}\n"
    )
    assert problems_of(tmp_path, text) == [
        "links[0].input: pin 4 is a servo pin, not an input",
        "links[1].output: pin 4 is a servo pin, not an output: links switch outputs on and off",
        "links[2].output: pin 4 is a servo pin, not an output: links switch outputs on and off",
    ]


def test_a_servo_pin_can_be_built_directly_and_keeps_its_rules() -> None:
    spec = PinSpec(pin=4, mode="servo", min_angle=10, max_angle=170, initial=90)
    assert (spec.lowest_angle, spec.highest_angle, spec.initial) == (10, 170, 90)
    with pytest.raises(ValueError, match=r"initial: 5 is out of range 10\.\.170"):
        PinSpec(pin=4, mode="servo", min_angle=10, max_angle=170, initial=5)
    with pytest.raises(ValueError, match="only servo pins have max_angle; pin 4 is an output"):
        PinSpec(pin=4, mode="output", max_angle=90)


def test_the_servo_port_may_sit_right_next_to_the_gpio_ports(tmp_path: Path) -> None:
    for ports in ("{base_port: 20049, servo_port: 20045}", "{base_port: 20049, servo_port: 20053}"):
        config = load_config(write(tmp_path, f"malos: {ports}\n" + MINIMAL))
        assert abs(config.malos.servo_port - config.malos.base_port) == 4


@pytest.mark.parametrize("servo_port", [20046, 20049, 20052])
def test_the_servo_ports_must_not_overlap_the_gpio_ports(tmp_path: Path, servo_port: int) -> None:
    text = f"malos: {{base_port: 20049, servo_port: {servo_port}}}\n" + MINIMAL
    assert problems_of(tmp_path, text) == [
        f"malos.servo_port: the servo driver's ports {servo_port}..{servo_port + 3} overlap the "
        "GPIO driver's 20049..20052 (malos.base_port); each driver needs four ports of its own"
    ]


def test_summarize_describes_a_servo_pin_and_its_driver(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
malos: {servo_port: 30000}
pins:
  - {pin: 4, mode: servo, name: Blinds, min_angle: 20, max_angle: 160, initial: 90}
  - {pin: 5, mode: servo}
""",
        )
    )

    assert summarize(config)[2:6] == [
        "malos 127.0.0.1:20049..20052, updates every 0.1 s, offline after 3 s",
        "malos servo driver 127.0.0.1:30000..30003",
        'pin 4 servo "Blinds" -> matrix/gpio/4/state, commands on matrix/gpio/4/set '
        "(angles 20..160, initial 90)",
        "pin 5 servo -> matrix/gpio/5/state, commands on matrix/gpio/5/set (angles 0..180)",
    ]


def test_summarize_names_the_servo_driver_only_when_a_pin_is_a_servo(tmp_path: Path) -> None:
    assert not any("servo" in line for line in summarize(load_config(write(tmp_path, MINIMAL))))


# -- the LED ring and the sensors -------------------------------------------------------------


def test_everloop_and_sensors_are_absent_unless_named_and_empty_means_defaults(
    tmp_path: Path,
) -> None:
    assert (
        load_config(write(tmp_path, MINIMAL)).everloop,
        load_config(write(tmp_path, MINIMAL)).sensors,
    ) == (None, None)
    config = load_config(write(tmp_path, "everloop:\nsensors:\n" + MINIMAL))
    assert config.everloop is not None and config.sensors is not None
    assert (config.everloop.fps, config.everloop.on_stop) == (20, "off")
    assert config.sensors.enabled == (
        "humidity",
        "temperature",
        "pressure",
        "uv_index",
        "yaw",
        "pitch",
        "roll",
    )
    assert (config.sensors.update_interval, config.sensors.publish_every) == (2.0, 300.0)
    assert config.sensors.calibrate_temperature is None
    assert (config.sensors.threshold("temperature"), config.sensors.threshold("pressure")) == (
        0.1,
        10.0,
    )
    config = load_config(
        write(tmp_path, "sensors: {thresholds: {pressure: 50}, enabled: uv_index}\n" + MINIMAL)
    )
    assert config.sensors is not None
    assert (config.sensors.threshold("pressure"), config.sensors.enabled) == (50.0, ("uv_index",))
    assert config.malos.driver_ports() == [
        ("base_port", 20049),
        ("servo_port", 20045),
        ("everloop_port", 20021),
        ("humidity_port", 20017),
        ("pressure_port", 20025),
        ("uv_port", 20029),
        ("imu_port", 20013),
    ]


def test_everloop_and_sensor_mistakes_name_their_keys(tmp_path: Path) -> None:
    text = (
        """\
everloop: {fps: 40, on_stop: maybe}
sensors:
  enabled: [temprature, humidity, humidity]
  thresholds: {humidity: -1, colour: 2}
  publish_every: 0.5
  calibrate_temperature: 200
malos: {everloop_port: 20050, imu_port: 20019}
"""
        + MINIMAL
    )
    problems = problems_of(tmp_path, text)
    assert "everloop.fps: 40 is out of range 1..30" in problems
    assert "everloop.on_stop: must be 'off' or 'keep', got 'maybe'" in problems
    assert any(
        p.startswith("sensors.enabled: 'temprature' is not a sensor (did you mean 'temperature'?")
        for p in problems
    )
    assert any(p.startswith("sensors.thresholds") for p in problems)
    assert "sensors.publish_every: must be at least 1 seconds, got 0.5" in problems
    assert any(p.startswith("sensors.calibrate_temperature: must be the room's") for p in problems)
    assert (
        "malos.everloop_port: the Everloop driver's ports 20050..20053 overlap the GPIO driver's "
        "20049..20052 (malos.base_port); each driver needs four ports of its own"
    ) in problems
    assert (
        "malos.imu_port: the IMU driver's ports 20019..20022 overlap the humidity driver's "
        "20017..20020 (malos.humidity_port); each driver needs four ports of its own"
    ) in problems


def test_a_sensor_listed_twice_and_publish_every_below_the_interval_are_refused(
    tmp_path: Path,
) -> None:
    text = "sensors: {enabled: [humidity, humidity], update_interval: 10, publish_every: 5}\n"
    assert problems_of(tmp_path, text + MINIMAL) == ["sensors.enabled: 'humidity' is listed twice"]
    text = "sensors: {update_interval: 10, publish_every: 5}\n"
    assert problems_of(tmp_path, text + MINIMAL) == [
        "sensors.publish_every: must be at least sensors.update_interval (10 s)"
    ]
    text = "sensors: {thresholds: {humidity: -1}}\n"
    assert problems_of(tmp_path, text + MINIMAL) == [
        "sensors.thresholds.humidity: must be a number >= 0 (0: publish every change), got -1"
    ]
