"""The bridge as a service you can operate, end to end: `<base>/bridge/info`, the health
messages and the requests on `<base>/bridge/request/<name>` (real Mosquitto, the simulator);
and the pure payload builders and request reader behind them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mqtt_gpio_bridge import __version__
from mqtt_gpio_bridge.config import BridgeConfig, PinSpec, parse_config
from mqtt_gpio_bridge.core.stats import Stats
from mqtt_gpio_bridge.service.api import BRIDGE_LOGGER
from mqtt_gpio_bridge.service.health import health_payload, resident_memory
from mqtt_gpio_bridge.service.info import DriverState, info_payload, pin_summary
from mqtt_gpio_bridge.service.requests import (
    MAX_BODY,
    BadRequest,
    Request,
    parse_request,
    response_json,
)
from mqtt_gpio_bridge.sim.driver import ERROR_UNPARSABLE, Board, SimulatedDriver

from .helpers import (
    BridgeThread,
    Broker,
    MqttProbe,
    RawClient,
    Rig,
    bridge_config,
    free_port_block,
    wait_until,
)

INFO_KEYS = {
    "version",
    "python",
    "libraries",
    "drivers",
    "board",
    "pins",
    "sensors",
    "log_level",
    "started",
    "last_driver_error",
}
HEALTH_KEYS = {
    "time",
    "uptime",
    "memory_bytes",
    "cpu_seconds",
    "commands",
    "driver_updates",
    "malos_restarts",
    "broker_reconnects",
    "events_published",
    "sensor_values",
}
RELAY = {"pin": 0, "mode": "output", "name": "Relay", "initial": "off"}
BUTTON = {"pin": 3, "mode": "input", "name": "Button"}


@pytest.fixture(autouse=True)
def _bridge_log_level() -> Iterator[None]:
    """A `log_level` request sets the bridge's logger, which outlives the bridge in-process."""
    level = BRIDGE_LOGGER.level
    yield
    BRIDGE_LOGGER.setLevel(level)


def infos(probe: MqttProbe, base: str) -> list[dict[str, Any]]:
    return [json.loads(message.payload) for message in probe.on(f"{base}/bridge/info")]


def wait_for_info(
    probe: MqttProbe, base: str, condition: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        found = infos(probe, base)
        return found[-1] if found and condition(found[-1]) else None

    info: dict[str, Any] = wait_until(matches, what=what)
    return info


def ask(probe: MqttProbe, base: str, name: str, body: str | bytes = "") -> dict[str, Any]:
    """Send a request and return its answer."""
    topic = f"{base}/bridge/response/{name}"
    before = len(probe.on(topic))
    probe.publish(f"{base}/bridge/request/{name}", body)
    wait_until(lambda: len(probe.on(topic)) > before, what=f"the answer to {name}")
    answer: dict[str, Any] = json.loads(probe.on(topic)[before].payload)
    return answer


# --- info -------------------------------------------------------------------------------------


def test_info_says_what_the_bridge_is_with_the_pins_options_and_no_secret(
    rig: Rig, probe_factory: Callable[..., MqttProbe]
) -> None:
    servo_port = free_port_block(4)
    pins = [
        {**RELAY, "pulse_ms": 500},
        {**BUTTON, "inverted": True, "events": ["single"], "debounce_ms": 30},
        {"pin": 5, "mode": "servo", "max_angle": 120},
    ]
    mqtt = {"username": "bridge", "password": "s3cret-Pw0rd"}
    base = rig.start(pins, mqtt=mqtt, malos={"servo_port": servo_port})
    info = wait_for_info(rig.probe, base, lambda info: info["drivers"]["gpio"]["alive"], "info")
    assert set(info) == INFO_KEYS
    assert info["version"] == __version__
    assert info["python"].count(".") == 2
    assert set(info["libraries"]) == {"paho-mqtt", "pyzmq", "voluptuous", "PyYAML"}
    assert all(isinstance(version, str) for version in info["libraries"].values())
    assert info["drivers"] == {
        "gpio": {"port": rig.malos_port, "alive": True},
        "servo": {"port": servo_port},  # no liveness of its own
    }
    assert info["board"] is None
    assert info["pins"] == [
        {"pin": 0, "mode": "output", "name": "Relay", "initial": "off", "pulse_ms": 500},
        {
            "pin": 3,
            "mode": "input",
            "name": "Button",
            "inverted": True,
            "debounce_ms": 30,
            "events": ["single"],
        },
        {"pin": 5, "mode": "servo", "name": None, "max_angle": 120},
    ]
    assert info["log_level"] in ("DEBUG", "INFO", "WARNING", "ERROR")
    assert info["started"].endswith("Z")
    assert info["last_driver_error"] is None
    texts = [message.text for message in rig.probe.on(f"{base}/bridge/info")]
    assert not any("s3cret" in text or "password" in text for text in texts)
    # Retained: a client that comes later gets it at once.
    later = probe_factory()
    later.subscribe(f"{base}/bridge/info")
    assert later.wait_for(f"{base}/bridge/info").retain


def test_info_follows_the_driver_away_and_back(own_driver_rig: Rig) -> None:
    probe, port = own_driver_rig.probe, own_driver_rig.malos_port
    board = Board()
    with SimulatedDriver("127.0.0.1", port, board):
        base = own_driver_rig.start([RELAY])
        wait_for_info(probe, base, lambda info: info["drivers"]["gpio"]["alive"], "alive")
    wait_for_info(probe, base, lambda info: not info["drivers"]["gpio"]["alive"], "not alive")
    with SimulatedDriver("127.0.0.1", port, board):
        wait_for_info(probe, base, lambda info: info["drivers"]["gpio"]["alive"], "alive again")
        answer = ask(probe, base, "health_check")
    assert answer["data"]["malos_restarts"] == 1


def test_a_driver_error_is_in_the_info_which_is_republished_at_most_once_a_second(
    rig: Rig,
) -> None:
    probe = rig.probe
    base = rig.start([RELAY])
    wait_for_info(probe, base, lambda info: info["drivers"]["gpio"]["alive"], "info")
    before = len(infos(probe, base))
    client = RawClient(rig.malos_port)
    try:
        wait_until(lambda: client.update(0.2) is not None, what="the raw client connected")
        for _ in range(20):
            client.send(b"\x80")  # no protobuf parser takes it: the driver says so, 20 times
        wait_until(
            lambda: sum(r["source"] == "driver" for r in rig.errors(base)) == 20,
            what="20 driver errors on gpio/status",
        )
    finally:
        client.close()
    info = wait_for_info(
        probe, base, lambda info: info["last_driver_error"] is not None, "the error in the info"
    )
    assert set(info["last_driver_error"]) == {"text", "time"}
    assert info["last_driver_error"]["text"] == ERROR_UNPARSABLE
    assert info["last_driver_error"]["time"].endswith("Z")
    # Twenty errors within a moment: the first at once, the rest with the next one.
    assert len(infos(probe, base)) - before <= 3


# --- requests ---------------------------------------------------------------------------------


def test_log_level_changes_the_bridges_logging_at_once_and_the_info(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    probe = rig.probe
    base = rig.start([RELAY])
    wait_for_info(probe, base, lambda info: info["log_level"] != "DEBUG", "info")
    answer = ask(probe, base, "log_level", '{"value": "debug", "transaction": 7}')
    assert answer == {"status": "ok", "data": {"value": "DEBUG"}, "transaction": 7}
    wait_for_info(probe, base, lambda info: info["log_level"] == "DEBUG", "DEBUG in the info")
    probe.publish(f"{base}/gpio/0/set", "ON")  # sent to MALOS: a debug line
    wait_until(
        lambda: any(
            r.levelno == logging.DEBUG and r.name.startswith("mqtt_gpio_bridge.")
            for r in caplog.records
        ),
        what="a debug line from the bridge",
    )
    answer = ask(probe, base, "log_level", '{"value": "Warning"}')
    assert answer == {"status": "ok", "data": {"value": "WARNING"}}  # no transaction: none
    wait_for_info(probe, base, lambda info: info["log_level"] == "WARNING", "WARNING")


def test_health_check_and_info_answer_with_their_data(rig: Rig) -> None:
    probe = rig.probe
    base = rig.start([RELAY])
    answer = ask(probe, base, "health_check", '{"transaction": "abc"}')
    assert answer["status"] == "ok"
    assert answer["transaction"] == "abc"
    assert set(answer) == {"status", "data", "transaction"}
    assert set(answer["data"]) == HEALTH_KEYS
    before = len(infos(probe, base))
    answer = ask(probe, base, "info")
    assert set(answer) == {"status", "data"}
    wait_until(lambda: len(infos(probe, base)) > before, what="the info published again")
    assert answer["data"] == infos(probe, base)[-1]


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("log_level", "DEBUG", "the body is not JSON: 'DEBUG'"),
        ("log_level", '["DEBUG"]', 'the body must be a JSON object or nothing, got ["DEBUG"]'),
        ("log_level", '{"value": 10}', "value must be one of DEBUG, INFO, WARNING, ERROR"),
        ("log_level", '{"value": "LOUD"}', 'got "LOUD"'),
        ("log_level", "{}", "got nothing"),
        ("info", '{"verbose": true}', "unknown key 'verbose'; info takes transaction"),
        ("health_check", b"\xff\xfe", "the body is not UTF-8 text"),
        ("info", "{" + " " * MAX_BODY + "}", f"at most {MAX_BODY} are read"),
    ],
)
def test_a_malformed_request_gets_an_error_and_the_bridge_goes_on(
    rig: Rig, name: str, body: str | bytes, error: str
) -> None:
    probe = rig.probe
    base = rig.start([RELAY])
    answer = ask(probe, base, name, body)
    assert set(answer) == {"status", "error"}
    assert answer["status"] == "error"
    assert error in answer["error"]
    assert ask(probe, base, "health_check")["status"] == "ok"


def test_an_unknown_request_names_the_known_ones_and_echoes_the_transaction(rig: Rig) -> None:
    base = rig.start([RELAY])
    answer = ask(rig.probe, base, "restart", '{"transaction": [1, 2]}')
    assert answer == {
        "status": "error",
        "error": "unknown request 'restart'; the requests are health_check, info, log_level",
        "transaction": [1, 2],
    }


def test_a_retained_request_is_not_carried_out(rig: Rig) -> None:
    probe = rig.probe
    level = BRIDGE_LOGGER.level
    config = bridge_config(rig.broker, rig.malos_port, [RELAY])
    base = config.mqtt.base_topic
    request = f"{base}/bridge/request/log_level"
    probe.publish(request, '{"value": "DEBUG", "transaction": 1}', retain=True)
    try:
        probe.subscribe(f"{base}/#")
        runner = rig.start_bridge(config)
        answer = json.loads(probe.wait_for(f"{base}/bridge/response/log_level").payload)
    finally:
        probe.publish(request, "", retain=True)
    assert answer["status"] == "error"
    assert answer["transaction"] == 1
    assert "retained request is not carried out" in answer["error"]
    assert f"mosquitto_pub -r -n -t '{request}'" in answer["error"]
    assert BRIDGE_LOGGER.level == level
    assert runner.bridge.stats.commands_received == 0  # a request is no pin command


# --- health -----------------------------------------------------------------------------------


def test_health_is_published_on_its_interval_and_counts_commands(rig: Rig) -> None:
    probe = rig.probe
    base = rig.start([RELAY, BUTTON], health={"interval": 0.2})
    topic = f"{base}/bridge/health"
    for payload in ("ON", "OFF", "maybe", "ON"):
        probe.publish(f"{base}/gpio/0/set", payload)

    def counted() -> dict[str, Any] | None:
        last = probe.last(topic)
        health: dict[str, Any] | None = None if last is None else json.loads(last.payload)
        wanted = {"received": 4, "applied": 3, "refused": 1}
        return health if health is not None and health["commands"] == wanted else None

    health = wait_until(counted, what="a health message counting 4 commands, 1 refused")
    assert set(health) == HEALTH_KEYS
    assert health["driver_updates"] > 0
    assert health["memory_bytes"] is None or health["memory_bytes"] > 1_000_000
    assert health["cpu_seconds"] >= 0
    assert (health["malos_restarts"], health["broker_reconnects"]) == (0, 0)
    assert health["events_published"] == 0
    assert health["time"].endswith("Z")
    count = len(probe.on(topic))
    wait_until(lambda: len(probe.on(topic)) >= count + 2, what="two more health messages")
    messages = probe.on(topic)
    assert not any(message.retain for message in messages)
    uptimes = [json.loads(message.payload)["uptime"] for message in messages]
    assert uptimes == sorted(uptimes)


def test_health_interval_0_publishes_none(rig: Rig) -> None:
    probe, simulator = rig.probe, rig.simulator
    base = rig.start([RELAY], health={"interval": 0})
    assert ask(probe, base, "health_check")["status"] == "ok"  # still answers
    sent = simulator.updates_sent
    wait_until(lambda: simulator.updates_sent >= sent + 10, what="ten more driver updates")
    assert probe.on(f"{base}/bridge/health") == []


# --- the pure builders ------------------------------------------------------------------------


def test_pin_summary_shows_only_what_differs_from_the_defaults() -> None:
    spec = PinSpec(pin=4, mode="output", payload_on="open", pulse_ms=100)
    assert pin_summary(spec) == {
        "pin": 4,
        "mode": "output",
        "name": None,
        "payload_on": "open",
        "pulse_ms": 100,
    }


def test_info_payload_is_exactly_its_keys() -> None:
    config = parse_config({"pins": [{"pin": 0, "mode": "output"}]})
    info = info_payload(
        config,
        drivers=[DriverState("GPIO", 20049, False), DriverState("Servo", 20045, None)],
        libraries={"pyzmq": "27.0.0"},
        log_level="INFO",
        started="2026-12-02T04:30:00.123Z",
        last_driver_error={"text": "boom", "time": "2026-12-02T04:31:00.000Z"},
    )
    assert set(info) == INFO_KEYS
    assert info["drivers"] == {"gpio": {"port": 20049, "alive": False}, "servo": {"port": 20045}}
    assert info["pins"] == [{"pin": 0, "mode": "output", "name": None}]
    assert info["last_driver_error"] == {"text": "boom", "time": "2026-12-02T04:31:00.000Z"}
    json.dumps(info)  # all of it JSON


def test_health_payload_counts() -> None:
    stats = Stats()
    stats.commands_received, stats.commands_applied, stats.commands_refused = 4, 3, 1
    health = health_payload(stats, uptime=1.23456, memory=1000, cpu=0.5, time="t")
    assert health == {
        "time": "t",
        "uptime": 1.235,
        "memory_bytes": 1000,
        "cpu_seconds": 0.5,
        "commands": {"received": 4, "applied": 3, "refused": 1},
        "driver_updates": 0,
        "malos_restarts": 0,
        "broker_reconnects": 0,
        "events_published": 0,
        "sensor_values": 0,
    }


def test_resident_memory_reads_statm(tmp_path: Path) -> None:
    statm = tmp_path / "statm"
    statm.write_text("100 25 3 1 0 20 0\n")
    assert resident_memory(str(statm)) == 25 * os.sysconf("SC_PAGE_SIZE")
    assert resident_memory(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", Request("info")),
        (b"  ", Request("info")),
        (b"null", Request("info")),
        (b'{"transaction": null}', Request("info", None, True)),
        (b'{"transaction": "x"}', Request("info", "x", True)),
    ],
)
def test_an_empty_body_or_only_a_transaction_is_a_request(body: bytes, expected: Request) -> None:
    assert parse_request("info", body) == expected


def test_log_level_is_read_in_any_case() -> None:
    assert parse_request("log_level", b'{"value": " error "}') == Request(
        "log_level", level="ERROR"
    )


def test_answers_are_exact_json() -> None:
    ok = Request("info", 5, True)
    assert response_json(ok, {"a": 1}) == '{"status":"ok","data":{"a":1},"transaction":5}'
    assert response_json(Request("info"), None) == '{"status":"ok","data":null}'
    bad = BadRequest("no")
    assert response_json(bad) == '{"status":"error","error":"no"}'
    assert response_json(BadRequest("no", None, True)) == (
        '{"status":"error","error":"no","transaction":null}'
    )


def test_a_broker_restart_is_counted_and_the_info_is_there_again(
    own_broker: Broker,
    simulator: SimulatedDriver,
    probe_factory: Callable[..., MqttProbe],
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> None:
    config = bridge_config(own_broker, simulator.base_port, [RELAY], mqtt={"reconnect_max": 1.0})
    base = config.mqtt.base_topic
    probe = probe_factory(own_broker)
    probe.subscribe(f"{base}/#")
    start_bridge(config)
    wait_for_info(probe, base, lambda info: info["drivers"]["gpio"]["alive"], "info")
    probe.close()
    own_broker.stop()  # without persistence: the retained info is gone with it
    own_broker.start()
    after = probe_factory(own_broker)
    after.subscribe(f"{base}/#")
    after.wait_for(f"{base}/status", "online", timeout=40)
    after.wait_for(f"{base}/bridge/info")  # published again: the broker had lost it
    assert ask(after, base, "health_check")["data"]["broker_reconnects"] == 1
