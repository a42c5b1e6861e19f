"""docs/configuration.md is generated from the model, and the model describes every key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mqtt_gpio_bridge.config import BridgeConfig, MqttConfig, PinSpec, TlsConfig
from mqtt_gpio_bridge.config.reference import REGENERATE, markdown, sections
from mqtt_gpio_bridge.config.schema import _rule_of

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SECTIONS = sections()


def test_docs_configuration_md_is_what_the_model_generates() -> None:
    written = DOC.read_text(encoding="utf-8") if DOC.exists() else ""

    assert written == markdown(), (
        f"{DOC.name} differs from the model (mqtt_gpio_bridge/config/); regenerate it with: "
        f"{REGENERATE}"
    )


def test_the_reference_says_how_to_regenerate_it_at_the_top() -> None:
    assert REGENERATE in "\n".join(markdown().splitlines()[:5])


def test_every_section_is_walked_from_the_whole_file() -> None:
    assert [(path, cls.__name__) for path, cls in SECTIONS] == [
        ("", "BridgeConfig"),
        ("mqtt.", "MqttConfig"),
        ("mqtt.tls.", "TlsConfig"),
        ("malos.", "MalosConfig"),
        ("homeassistant.", "HomeAssistantConfig"),
        ("health.", "HealthConfig"),
        ("pins[].", "PinSpec"),
        ("links[].", "LinkSpec"),
        ("everloop.", "EverloopConfig"),
        ("sensors.", "SensorsConfig"),
    ]


@pytest.mark.parametrize(("path", "cls"), SECTIONS, ids=[path or "top" for path, _ in SECTIONS])
def test_every_field_of_every_section_has_a_description(path: str, cls: type[object]) -> None:
    undocumented = [
        f"{path}{item.name}"
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not str(item.metadata.get("doc", "")).strip()
    ]

    assert undocumented == [], "give these fields metadata=_doc(...) in the model"


@pytest.mark.parametrize(("path", "cls"), SECTIONS[1:], ids=[path for path, _ in SECTIONS[1:]])
def test_every_key_says_what_it_allows(path: str, cls: type[object]) -> None:
    silent = [
        f"{path}{item.name}"
        for item in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not _rule_of(cls, item.name).shows
    ]

    assert silent == [], "their rules have no check made with rules._shows"


def test_every_key_is_in_the_reference_once() -> None:
    text = markdown()

    for path, cls in SECTIONS[1:]:
        for item in dataclasses.fields(cls):  # type: ignore[arg-type]
            assert text.count(f"| `{path}{item.name}` |") == 1, f"{path}{item.name}"


@pytest.mark.parametrize(
    ("row", "cells"),
    [
        ("mqtt.port", ["whole number 1..65535", "`1883`"]),
        ("mqtt.retained_commands", ["`ignore` or `apply`", "`ignore`"]),
        ("mqtt.max_state_rate", ["whole number 1..1000", "`20`", "the latest level"]),
        ("mqtt.client_id", ["at most 65521 bytes in UTF-8", "`mqtt-gpio-bridge-<node_id>`"]),
        ("mqtt.base_topic", ["no `+`, `#`, NUL or control characters", "65521 bytes"]),
        ("mqtt.username", ["no NUL or control characters, at most 65535 bytes in UTF-8"]),
        ("mqtt.host", ["at most 253 characters, 1 to 63 between dots"]),
        ("malos.offline_after", ["seconds, at least 1.5", "`3.0`"]),
        ("homeassistant.node_id", ["at most 128 characters", "`matrix_<hostname>`"]),
        ("pins[].pin", ["whole number 0..15", "required", "MALOS numbering"]),
        ("pins[].payload_on", ["1 to 64 characters, no NUL", "`ON`"]),
        ("pins[].mode", ["`input`, `output` or `servo`", "required", "power-cycled"]),
        ("pins[].initial", ["`on` or `off` (outputs), a whole number", "position cannot be read"]),
        ("pins[].min_angle", ["whole number 0..180", "| `0` |", "servo pins only", "refused"]),
        ("pins[].max_angle", ["whole number 0..180", "| `180` |", "servo pins only", "refused"]),
        ("malos.servo_port", ["whole number 1..65532", "`20045`", "`mode: servo`"]),
    ],
)
def test_rows_show_the_rules_limits_and_defaults(row: str, cells: list[str]) -> None:
    (line,) = [line for line in markdown().splitlines() if line.startswith(f"| `{row}` |")]

    for cell in cells:
        assert cell in line


def test_the_model_classes_documented_are_the_ones_used() -> None:
    documented = {cls for _, cls in SECTIONS}

    assert {BridgeConfig, MqttConfig, TlsConfig, PinSpec} <= documented
