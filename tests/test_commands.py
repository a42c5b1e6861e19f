"""Parsing of `set` payloads: every accepted form, clear refusals, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_gpio_bridge.malos.gpio.commands import (
    MAX_PAYLOAD_BYTES,
    Action,
    Command,
    Refusal,
    parse_command,
)


@pytest.mark.parametrize(
    ("payload", "action"),
    [
        (b"ON", Action.ON),
        (b"on", Action.ON),
        (b"  On\n", Action.ON),
        (b"1", Action.ON),
        (b"true", Action.ON),
        (b"HIGH", Action.ON),
        (b'"on"', Action.ON),
        (b'{"state": "ON"}', Action.ON),
        (b'{"state": true}', Action.ON),
        (b'{"state": 1}', Action.ON),
        (b"OFF", Action.OFF),
        (b"0", Action.OFF),
        (b"False", Action.OFF),
        (b"low", Action.OFF),
        (b'{"state": "off"}', Action.OFF),
        (b'{"state": false}', Action.OFF),
        (b"toggle", Action.TOGGLE),
        (b'{"state": "TOGGLE"}', Action.TOGGLE),
        (b"", Action.NOTHING),
        (b"   ", Action.NOTHING),
    ],
)
def test_accepted_payloads(payload: bytes, action: Action) -> None:
    assert parse_command(payload) == Command(action)


@pytest.mark.parametrize(
    ("payload", "command"),
    [
        (b'{"state": "ON", "duration_ms": 500}', Command(Action.ON, 500)),
        (b'{"state": "off", "duration_ms": 1}', Command(Action.OFF, 1)),
        (b'{"state": "ON", "duration_ms": 3600000}', Command(Action.ON, 3_600_000)),
        (b'{"state": "ON", "duration_ms": 250.0}', Command(Action.ON, 250)),
    ],
)
def test_pulse_commands(payload: bytes, command: Command) -> None:
    assert parse_command(payload) == command


def test_the_pins_own_payloads_are_accepted_case_insensitively() -> None:
    assert parse_command(b"open", "OPEN", "CLOSED") == Command(Action.ON)
    assert parse_command(b"Closed", "OPEN", "CLOSED") == Command(Action.OFF)
    assert parse_command(b'{"state": "open"}', "OPEN", "CLOSED") == Command(Action.ON)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"maybe", "unknown payload 'maybe'"),
        (b"2", "unknown payload '2'"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not valid JSON"),
        (b'{"state": "ON", "extra": 1}', 'an object with "state"'),
        (b'{"duration_ms": 500}', 'an object with "state"'),
        (b'{"state": "ON", "duration_ms": 0}', "out of range 1..3600000"),
        (b'{"state": "ON", "duration_ms": "5"}', "whole number of milliseconds"),
        (b'{"state": "ON", "duration_ms": 1e400}', "whole number of milliseconds"),
        (b'{"state": "BLINK"}', "unknown JSON state"),
        (b'{"state": 2}', "unknown JSON state"),
        (b"[1]" * 10, "unknown payload"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "longer than"),
    ],
)
def test_refusals_say_why(payload: bytes, words: str) -> None:
    result = parse_command(payload)
    assert isinstance(result, Refusal)
    assert words in result.reason


def test_a_huge_payload_is_refused_without_being_decoded() -> None:
    result = parse_command(b"\xff" * 10_000_000)
    assert isinstance(result, Refusal)
    assert "10000000 bytes" in result.reason


def test_deeply_nested_json_is_refused_not_raised() -> None:
    result = parse_command(b'{"state":' * 100 + b"1" + b"}" * 100)
    assert isinstance(result, Refusal)


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 10))
def test_arbitrary_bytes_give_a_command_or_a_refusal(payload: bytes) -> None:
    result = parse_command(payload)
    assert isinstance(result, Command | Refusal)
    if isinstance(result, Refusal):
        assert result.reason


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_arbitrary_json_gives_a_command_or_a_refusal(document: object) -> None:
    import json

    payload = json.dumps(document).encode()
    result = parse_command(payload)
    assert isinstance(result, Command | Refusal)
