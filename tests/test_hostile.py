"""Hostile input: arbitrary config documents and files, arbitrary commands, and garbage or
oversized frames on the driver's error and update ports.

The config and command parts are properties (hypothesis, derandomized so CI sees the same
examples every run). The frame parts run the real bridge against a real Mosquitto, either
with the simulator (update port) or with a fake driver bound in the test, which can publish
any frame on the error port.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import json
import math
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mqtt_gpio_bridge.config import (
    BridgeConfig,
    HomeAssistantConfig,
    MalosConfig,
    MqttConfig,
    PinSpec,
    load_config,
    parse_config,
)
from mqtt_gpio_bridge.errors import CodecError, ConfigError
from mqtt_gpio_bridge.malos.gpio.codec import PinMode
from mqtt_gpio_bridge.malos.gpio.commands import (
    MAX_PULSE_MS,
    MIN_PULSE_MS,
    Action,
    Command,
    Refusal,
    parse_command,
)
from mqtt_gpio_bridge.sim.codec import decode_pin_config, encode_levels

from .helpers import MqttProbe, Rig, wait_until

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies for YAML-shaped documents ----------------------------------------------------------

FIELDS = sorted(
    {
        name
        for model in (BridgeConfig, MqttConfig, MalosConfig, HomeAssistantConfig, PinSpec)
        for name in (item.name for item in dataclasses.fields(model))
    }
)
"""Every key the config knows, so that random documents often hit a real field."""

# CPython refuses str(int) past 4300 digits (sys.get_int_max_str_digits); integers that large
# are covered by the tests below, the properties stay under the limit.
HUGE_INTS = st.sampled_from(
    [2**31, 2**32, 2**63, 2**64 + 1, -(2**63) - 1, 10**100, -(10**300), 10**4000]
)
INTEGERS = st.integers(-3, 20) | st.integers() | HUGE_INTS
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.05, 1.5, 3.0, -0.0, 1e-300, 1e308, 65535.0]
)
WEIRD_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates too
WORDS = st.sampled_from(
    [
        "",
        " ",
        "input",
        " Output ",
        "on",
        "OFF",
        "yes",
        "matrix/#",
        "a/+/b",
        "/lead",
        "trail/",
        "x" * 65,
        "\u202eevil",
        "\x00",
        "\ufeff",
        "pins[0].pin",
        "a: b",
        "{braces}",
        "\U0001f4a5",
        "mdi:door",
        *FIELDS,
    ]
)
SCALARS = st.none() | st.booleans() | INTEGERS | FLOATS | WEIRD_TEXT | WORDS
KEYS = (
    st.sampled_from(FIELDS)
    | WEIRD_TEXT
    | st.integers(-2, 16)
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=True)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
RANDOM_DOCUMENTS = VALUES | st.dictionaries(
    st.sampled_from(["mqtt", "malos", "homeassistant", "pins"]) | KEYS, VALUES, max_size=6
)

VALID_BASE: dict[str, Any] = {
    "mqtt": {
        "host": "broker.local",
        "port": 1883,
        "username": "bridge",
        "password": "s3cret",
        "client_id": "bridge-1",
        "base_topic": "matrix/kitchen",
        "qos": 1,
        "keepalive": 60,
    },
    "malos": {
        "host": "127.0.0.1",
        "base_port": 20049,
        "update_interval": 0.1,
        "keepalive_interval": 1.0,
        "ping_timeout": 5.0,
        "offline_after": 3.0,
    },
    "homeassistant": {
        "discovery": True,
        "prefix": "homeassistant",
        "node_id": "matrix_kitchen",
        "device_name": "MATRIX GPIO",
        "model": "MATRIX Creator",
    },
    "pins": [
        {
            "pin": 0,
            "mode": "output",
            "name": "Garage door",
            "inverted": True,
            "initial": "off",
            "payload_on": "open",
            "payload_off": "closed",
            "device_class": "garage_door",
            "icon": "mdi:garage",
            "pulse_ms": 500,
        },
        {"pin": 3, "mode": "input", "name": "Button"},
        {"pin": 15, "mode": "output"},
    ],
}

Loc = tuple[Any, ...]


def node_paths(node: object, prefix: Loc = ()) -> list[Loc]:
    """Every key path below `node` (mapping keys and list indices), depth first."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return []
    paths: list[Loc] = []
    for key, child in items:
        paths.append((*prefix, key))
        paths.extend(node_paths(child, (*prefix, key)))
    return paths


def node_at(document: Any, path: Loc) -> Any:
    for key in path:
        document = document[key]
    return document


@st.composite
def near_valid_documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[str, Loc, Any]]]:
    """A valid document with one or two edits: a value replaced, a key added or removed."""
    document = copy.deepcopy(VALID_BASE)
    edits: list[tuple[str, Loc, Any]] = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["replace", "replace", "insert", "delete"]))
        paths = node_paths(document)
        if kind == "insert" or not paths:
            mappings = [()] + [p for p in paths if isinstance(node_at(document, p), dict)]
            where = draw(st.sampled_from(mappings))
            key = draw(KEYS)
            value = draw(VALUES)
            node_at(document, where)[key] = value
            edits.append((kind, (*where, key), value))
            continue
        path = draw(st.sampled_from(paths))
        parent = node_at(document, path[:-1])
        if kind == "delete":
            del parent[path[-1]]
            edits.append((kind, path, None))
        else:
            value = draw(st.integers(-1, 16) | st.sampled_from([3, 15]) | VALUES)
            parent[path[-1]] = value
            edits.append((kind, path, value))
    return document, edits


def key_path_prefixes(document: object) -> set[str]:
    """Every key path a problem line may start with, written as the README shows them.

    The paths of the document's own nodes, plus any known field below any of them (for a
    missing required key, or a cross-field rule on a defaulted key), plus `(top level)`.
    """
    paths = {""}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str):  # a non-name key is reported at its mapping's path
                    below = f"{path}.{key}" if path else key
                    paths.add(below)
                    walk(child, below)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                paths.add(f"{path}[{index}]")
                walk(child, f"{path}[{index}]")

    walk(document, "")
    with_fields = {f"{path}.{name}" if path else name for path in paths for name in FIELDS}
    return (paths | with_fields | {"(top level)"}) - {""}


def check_parse_config(document: object) -> BridgeConfig | None:
    """`parse_config` raises nothing but ConfigError, with key-path lines, or gives sane pins."""
    try:
        config = parse_config(document)
    except ConfigError as exc:
        assert isinstance(exc.problems, list)
        assert exc.problems, "a ConfigError without any problem tells the user nothing"
        prefixes = key_path_prefixes(document)
        for line in exc.problems:
            assert isinstance(line, str)
            assert line.strip()
            assert "Traceback" not in line
            assert any(line.startswith(f"{prefix}: ") for prefix in prefixes), line
        return None
    assert isinstance(config, BridgeConfig)
    pins = [spec.pin for spec in config.pins]
    assert pins, "a valid config has at least one pin"
    assert len(set(pins)) == len(pins), pins
    assert all(0 <= pin <= 15 for pin in pins), pins
    assert all(spec.mode in ("input", "output") for spec in config.pins)
    return config


# -- 1. parse_config on arbitrary documents --------------------------------------------------------


def test_the_valid_base_document_is_valid() -> None:
    config = check_parse_config(copy.deepcopy(VALID_BASE))
    assert config is not None
    assert [spec.pin for spec in config.pins] == [0, 3, 15]


@PROPERTY
@given(RANDOM_DOCUMENTS)
def test_parse_config_on_random_documents_reports_problems_by_key_path(document: Any) -> None:
    check_parse_config(document)


@PROPERTY
@given(near_valid_documents())
def test_parse_config_on_near_valid_documents(
    case: tuple[dict[str, Any], list[tuple[str, Loc, Any]]],
) -> None:
    document, edits = case
    check_parse_config(document)
    # The password is never echoed back, even when YAML turned it into a number.
    kind, path, value = edits[0]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if len(edits) == 1 and kind == "replace" and path == ("mqtt", "password") and numeric:
        with pytest.raises(ConfigError) as caught:
            parse_config(document)
        shown = repr(value)
        if len(shown) >= 4:
            assert not any(shown in line for line in caught.value.problems)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"pins": [{"pin": 3, "mode": "output"}, {"pin": 3, "mode": "input"}]}, "pins[1].pin: "),
        ({"pins": [{"pin": 16, "mode": "output"}]}, "pins[0].pin: 16 is out of range 0..15"),
        ({"pins": [{"pin": -1, "mode": "output"}]}, "pins[0].pin: -1 is out of range 0..15"),
        ({"pins": [{"pin": 2**64, "mode": "output"}]}, "pins[0].pin: "),
        ({"pins": [{"pin": 1.0, "mode": "output"}]}, "pins[0].pin: "),
        ({"pins": [{"pin": True, "mode": "output"}]}, "pins[0].pin: "),
        ({"pins": [{"pin": 0, "mode": "output"}], 7: "x"}, "(top level): unknown key 7"),
        (
            {"pins": [{"pin": 0, "mode": "output"}], "malos": {"offline_after": math.nan}},
            "malos.offline_after: must be a finite number of seconds",
        ),
        (
            {"pins": [{"pin": 0, "mode": "output"}], "malos": {"update_interval": math.inf}},
            "malos.update_interval: must be a finite number of seconds",
        ),
        ([], "(top level): the top level must be a mapping"),
        ("pins", "(top level): the top level must be a mapping"),
        (None, "(top level): the top level must be a mapping"),
    ],
)
def test_parse_config_edge_cases_name_the_key(document: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert any(line.startswith(expected) for line in caught.value.problems), caught.value.problems


BASE_PINS = [{"pin": 0, "mode": "output"}]
PAST_DIGIT_LIMIT = 10**5000  # 5001 digits; CPython's str(int) limit is 4300


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (PAST_DIGIT_LIMIT, "(top level)"),
        ({"pins": BASE_PINS, "homeassistant": {"discovery": PAST_DIGIT_LIMIT}}, "homeassistant"),
        ({"pins": [{"pin": 0, "mode": PAST_DIGIT_LIMIT}]}, "pins[0].mode"),
        ({"pins": BASE_PINS, "malos": {"update_interval": PAST_DIGIT_LIMIT}}, "malos"),
        ({"pins": BASE_PINS, PAST_DIGIT_LIMIT: 1}, "(top level)"),
    ],
    ids=["top-level", "discovery", "mode", "update_interval", "key"],
)
def test_parse_config_with_an_int_past_the_str_digit_limit(document: object, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert caught.value.problems[0].startswith(path)


def test_an_absurdly_long_pin_number_is_reported_as_out_of_range() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"pins": [{"pin": PAST_DIGIT_LIMIT, "mode": "output"}]})
    (line,) = caught.value.problems
    assert line.startswith("pins[0].pin: ")
    assert "set_int_max_str_digits" not in line


# -- 2. load_config on arbitrary files -------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "bridge.yaml"


def check_load_config(path: Path) -> BridgeConfig | None:
    """`load_config` gives a BridgeConfig or a ConfigError of readable lines, nothing else."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert exc.problems
        for line in exc.problems:
            assert isinstance(line, str)
            assert line.strip()
            assert "Traceback" not in line
        return None
    assert isinstance(config, BridgeConfig)
    pins = [spec.pin for spec in config.pins]
    assert len(set(pins)) == len(pins)
    assert all(0 <= pin <= 15 for pin in pins)
    return config


BOMS = st.sampled_from([b"", b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])
UNTAGGED_TOKENS = [
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "\n",
    "  ",
    "\t",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "...\n",
    "|\n",
    ">-\n",
    "'",
    '"',
    "#",
    "\\x",
    "pins",
    "pin",
    "mode",
    "output",
    "mqtt",
    "port",
    "0",
    "16",
    "0x1f",
    "1:30",
    "0o17",
    ".nan",
    "-.inf",
    "~",
    "null",
    "yes",
    "2001-12-14",
    "\u2028",
    "\x85",
    "\ufeff",
    "\x7f",
    "\U0001f4a5",
]
TAG_TOKENS = [
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!timestamp ",
    "!!str ",
    "!!binary ",
    "!!set ",
    "!!python/object:os.system ",
    "!custom ",
]


@PROPERTY
@given(BOMS, st.binary(max_size=400))
def test_load_config_on_random_bytes(scratch: Path, bom: bytes, body: bytes) -> None:
    scratch.write_bytes(bom + body)
    check_load_config(scratch)


@PROPERTY
@given(st.text(st.characters(exclude_categories=()), max_size=300) | st.text(max_size=300))
def test_load_config_on_random_text(scratch: Path, text: str) -> None:
    scratch.write_bytes(text.encode("utf-8", errors="surrogatepass"))  # lone surrogates too
    check_load_config(scratch)


@PROPERTY
@given(st.lists(st.sampled_from(UNTAGGED_TOKENS), max_size=60).map("".join))
def test_load_config_on_yaml_token_soup(scratch: Path, text: str) -> None:
    scratch.write_text(text, encoding="utf-8")
    check_load_config(scratch)


@PROPERTY
@given(st.lists(st.sampled_from(UNTAGGED_TOKENS + TAG_TOKENS), max_size=60).map("".join))
def test_load_config_on_yaml_token_soup_with_tags(scratch: Path, text: str) -> None:
    scratch.write_text(text, encoding="utf-8")
    check_load_config(scratch)


@pytest.mark.parametrize(
    "text",
    [
        "pins: [{pin: 0, mode: output, name: 2024-02-30}]\n",
        "pins: [{pin: 0, mode: output, name: 2024-12-14 25:00:00}]\n",
        "pins: [{pin: 0, mode: output}]\nmqtt: {port: 0x_}\n",
        "pins: [{pin: !!int '', mode: output}]\n",
        "pins: [{pin: !!int twelve, mode: output}]\n",
        "pins: [{pin: 0, mode: output}]\nhomeassistant: {discovery: !!bool maybe}\n",
        "pins: [{pin: 0, mode: output, name: !!timestamp soon}]\n",
        "pins: [{pin: 0, mode: output}]\nmalos: {update_interval: !!float fast}\n",
    ],
    ids=["feb-30", "hour-25", "0x_", "empty-int", "int-word", "bool-word", "timestamp", "float"],
)
def test_malformed_typed_scalars_are_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith(f"{path}: invalid YAML")


@PROPERTY
@given(
    near_valid_documents() | RANDOM_DOCUMENTS.map(lambda doc: (doc, [])),
    st.lists(st.dictionaries(KEYS, VALUES, max_size=3) | st.lists(VALUES, max_size=3), max_size=1),
    st.booleans(),
)
def test_load_config_on_yaml_with_anchors_reads_what_parse_config_reads(
    scratch: Path, case: tuple[Any, Any], shared: list[Any], allow_unicode: bool
) -> None:
    document = case[0]
    if isinstance(document, dict) and shared:
        # The same object twice: safe_dump writes it once with an anchor, then an alias.
        document = {**document, "alias_a": shared[0], "alias_b": shared[0]}
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=allow_unicode)
    try:
        scratch.write_bytes(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate written as it is: not UTF-8 on disk
        scratch.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        with pytest.raises(ConfigError) as not_utf8:
            load_config(scratch)
        assert "not UTF-8" in not_utf8.value.problems[0]
        return
    from_file = check_load_config(scratch)
    reread = yaml.safe_load(text)
    if reread is None:
        reread = {}
    try:
        direct: BridgeConfig | None = parse_config(reread)
    except ConfigError as exc:
        direct = None
        # A mapping has the same problems whether it came from a file or not (a non-mapping
        # is reported with the file's name instead of "(top level)").
        if from_file is None and isinstance(reread, dict):
            with pytest.raises(ConfigError) as caught:
                load_config(scratch)
            assert caught.value.problems == exc.problems
    if direct is not None:
        assert from_file == direct


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "pins: at least one pin must be configured"),
        (b"# only a comment\n", "pins: at least one pin must be configured"),
        (b"\xef\xbb\xbf", "pins: at least one pin must be configured"),
        (b"\xff\xfep\x00i\x00n\x00s\x00", "cannot read: not UTF-8 text (byte 0xff at offset 0)"),
        (b"pins: [{pin: 0, mode: output, name: caf\xe9}]\n", "not UTF-8 text (byte 0xe9"),
        (b"\x00", "invalid YAML"),
        (b"pins: [{pin: 0, mode: output}\n", "invalid YAML at line 2"),
        (b"!!python/object/apply:os.system [echo pwned]\n", "invalid YAML at line 1"),
        (b"pins: &a [*a]\n", "pins[0]: must be a mapping"),
        (b"mqtt: &m {nested: *m}\npins: [{pin: 0, mode: output}]\n", "mqtt.nested: unknown key"),
        (b"pins:\n  - &p {pin: 2, mode: output}\n  - *p\n", "pins[1].pin: pin 2 is already"),
        (b"pins: [{<<: 5, mode: output}]\n", "invalid YAML at line 1"),
        (b"? [a, b]\n: 1\npins: [{pin: 0, mode: output}]\n", "invalid YAML at line 1"),
        (b"pins: !!binary aGVsbG8=\n", "pins: must be a list of pins"),
        (b"pins: [{pin: 0, mode: output, name: 2001-12-14}]\n", "pins[0].name: must be a string"),
        (b"- pins\n", "the top level must be a mapping"),
    ],
    ids=[
        "empty",
        "comment",
        "bom-only",
        "utf16",
        "latin1",
        "nul",
        "unclosed",
        "python-tag",
        "self-alias-list",
        "self-alias-map",
        "aliased-pin",
        "bad-merge",
        "complex-key",
        "binary",
        "date",
        "list-top",
    ],
)
def test_load_config_odd_files_give_a_config_error_a_user_can_act_on(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(expected in line for line in caught.value.problems), caught.value.problems


def test_load_config_reads_bom_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    text = "pins:\n  - &out {pin: 0, mode: output, inverted: true}\n  - {<<: *out, pin: 1}\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    config = load_config(path)
    assert [(spec.pin, spec.mode, spec.inverted) for spec in config.pins] == [
        (0, "output", True),
        (1, "output", True),
    ]


DEPTH = 10_000


@pytest.mark.parametrize(
    "text",
    [
        "[" * DEPTH + "]" * DEPTH,
        "{a: " * DEPTH + "1" + "}" * DEPTH,
        "- " * DEPTH + "x\n",
        "pins: " + "[" * DEPTH + "]" * DEPTH + "\n",
        "pins: [{pin: 0, mode: output}]\nmqtt: {host: " + "[" * 1_000 + "]" * 1_000 + "}\n",
    ],
    ids=["flow-list", "flow-map", "block-list", "under-pins", "1000-under-host"],
)
def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith(str(path))


@pytest.mark.parametrize(
    "text",
    [
        "9" * 5_000 + "\n",
        "pins: [{pin: " + "9" * 5_000 + ", mode: output}]\n",
        "pins: [{pin: 0, mode: output}]\nmqtt: {port: " + "1" * 5_000 + "}\n",
    ],
    ids=["top-level", "pin", "port"],
)
def test_a_5000_digit_number_in_the_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)


def billion_laughs(placement: str) -> str:
    """Ten levels of nine aliases each: 9**9 leaves if expanded, a few KB as written."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        items = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{items}]")
    body = "\n".join(lines) + "\n"
    pin = "{pin: 0, mode: output}"
    return {
        "extra-keys": body + f"pins: [{pin}]\n",
        "pins": body + "pins: *l9\n",
        "pin-name": body + "pins: [{pin: 0, mode: output, name: *l9}]\n",
        "section": "mqtt:\n  " + body.replace("\n", "\n  ") + f"\npins: [{pin}]\n",
    }[placement]


BOMB_RUNNER = textwrap.dedent(
    """
    import json, resource, sys, time
    from mqtt_gpio_bridge.config import load_config
    from mqtt_gpio_bridge.errors import ConfigError
    # Expanding the aliases would need gigabytes: fail fast instead of swapping the CI box.
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.monotonic()
    try:
        load_config(sys.argv[1])
        problems = None
    except ConfigError as exc:
        problems = exc.problems
    print(json.dumps({"seconds": time.monotonic() - start, "problems": problems}))
    """
)


@pytest.mark.parametrize("placement", ["extra-keys", "pins", "pin-name", "section"])
def test_billion_laughs_is_refused_fast_and_small(tmp_path: Path, placement: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(billion_laughs(placement), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", BOMB_RUNNER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["seconds"] < 5
    problems = result["problems"]
    assert problems, "an alias bomb is not a valid config"
    # What the user reads stays short: nothing expanded the aliases into text.
    assert sum(len(line) for line in problems) < 5_000
    assert all(line.split(":", 1)[0] for line in problems)


# -- 3. parse_command on arbitrary JSON ------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3_600_003)
    | st.integers()
    | st.sampled_from([0, 1, MAX_PULSE_MS, MAX_PULSE_MS + 1, 2**63, -(2**63), 10**200])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([500.0, 1e3, -0.0, 0.5, 1e300, 3_600_000.0, 3_600_000.5])
    | st.text(max_size=8)
    | st.sampled_from(["ON", "off", " Toggle ", "HIGH", "1", "", "open", "\u0130"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["state", "duration_ms"]) | st.text(max_size=4), children, max_size=3
        )
    ),
    max_leaves=6,
)


@st.composite
def json_commands(draw: st.DrawFn) -> bytes:
    document: dict[str, Any] = {"state": draw(JSON_VALUES)}
    if draw(st.booleans()):
        document["duration_ms"] = draw(JSON_VALUES)
    if draw(st.integers(0, 4)) == 0:
        document[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    if draw(st.integers(0, 4)) == 0:
        del document["state"]
    top: object = document if draw(st.integers(0, 5)) else document.get("state")
    text = json.dumps(top, ensure_ascii=draw(st.booleans()))  # NaN/Infinity as Python writes
    return text.encode("utf-8", errors="surrogatepass")


def check_parse_command(payload: bytes) -> Command | Refusal:
    result = parse_command(payload, "open", "closed")
    assert isinstance(result, Command | Refusal)
    if isinstance(result, Command):
        assert isinstance(result.action, Action)
        duration = result.duration_ms
        assert duration is None or (
            type(duration) is int and MIN_PULSE_MS <= duration <= MAX_PULSE_MS
        ), duration
    else:
        assert isinstance(result.reason, str)
        assert result.reason.strip()
        assert len(result.reason) <= 512, "a refusal is published; it must stay short"
    return result


@PROPERTY
@given(json_commands())
def test_parse_command_on_arbitrary_json(payload: bytes) -> None:
    check_parse_command(payload)


@PROPERTY
@given(st.binary(max_size=300) | st.lists(st.sampled_from(["{", "}", "[", "]", '"', ":", ",",
    "state", "duration_ms", "NaN", "-Infinity", "1e999", "ON", " ", "\\u0000", "\\ud800"]),
    max_size=40).map(lambda parts: "".join(parts).encode()))  # fmt: skip
def test_parse_command_on_arbitrary_bytes(payload: bytes) -> None:
    check_parse_command(payload)


@PROPERTY
@given(
    st.sampled_from(["ON", "on", " High ", "1", "true", "open", "OPEN"]),
    st.integers(MIN_PULSE_MS, MAX_PULSE_MS),
    st.booleans(),
)
def test_a_valid_pulse_is_always_understood(state: str, duration: int, as_float: bool) -> None:
    value: float = float(duration) if as_float else duration
    payload = json.dumps({"state": state, "duration_ms": value}).encode()
    assert check_parse_command(payload) == Command(Action.ON, duration)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"state": "ON", "duration_ms": NaN}', None),
        (b'{"state": "ON", "duration_ms": Infinity}', None),
        (b'{"state": "ON", "duration_ms": -Infinity}', None),
        (b'{"state": "ON", "duration_ms": 1e999}', None),
        (b'{"state": "ON", "duration_ms": -0.0}', None),
        (b'{"state": "ON", "duration_ms": 0.5}', None),
        (b'{"state": "ON", "duration_ms": true}', None),
        (b'{"state": "ON", "duration_ms": "500"}', None),
        (b'{"state": "ON", "duration_ms": 3600001}', None),
        (b'{"state": "ON", "duration_ms": 1' + b"0" * 200 + b"}", None),
        (b'{"state": "ON", "duration_ms": {"ms": 5}}', None),
        (b'{"state": {"state": "ON"}}', None),
        (b'{"state": NaN}', None),
        (b'{"state": 1.0}', None),
        (b"[" * 200 + b"]" * 56, None),
        (b'{"state": "ON", "duration_ms": 1e3}', Command(Action.ON, 1000)),
        (b'{"state": "off", "duration_ms": 3600000.0}', Command(Action.OFF, MAX_PULSE_MS)),
        (b'{"state": "ON", "duration_ms": 1}', Command(Action.ON, 1)),
    ],
)
def test_parse_command_json_edge_cases(payload: bytes, expected: Command | None) -> None:
    result = check_parse_command(payload)
    if expected is None:
        assert isinstance(result, Refusal)
    else:
        assert result == expected


# -- the bridge against hostile frames -------------------------------------------------------------


def stayed_online(probe: MqttProbe, base: str) -> bool:
    statuses = [message.text for message in probe.on(f"{base}/status")]
    return "online" in statuses and "offline" not in statuses[statuses.index("online") :]


class FakeDriver:
    """The driver's four ports bound by the test, serving from one thread.

    Config and keep-alive are PULL sockets, as on the board. Errors and updates are XPUB
    sockets: to the bridge's SUB sockets they are the driver's PUB sockets, and they let the
    test see the bridge's subscription arrive, so that nothing is published into the void.
    Updates go out every 50 ms once pinged, with `levels` (outputs follow the configs).
    """

    def __init__(self, base_port: int) -> None:
        self.base_port = base_port
        self.levels = 0
        self.configs: list[bytes] = []
        self.errors_subscribed = threading.Event()
        self.updates_subscribed = threading.Event()
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="fake-malos", daemon=True)

    def __enter__(self) -> FakeDriver:
        self._thread.start()
        self._ready.wait(10)
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def publish_error(self, frame: bytes) -> None:
        self._outbox.append(("errors", frame))

    def publish_update(self, frame: bytes) -> None:
        self._outbox.append(("updates", frame))

    def set_level(self, pin: int, level: int) -> None:
        self.levels = (self.levels & ~(1 << pin)) | (level << pin)

    def _serve(self) -> None:
        context = zmq.Context()
        sockets: list[zmq.Socket[bytes]] = []
        try:
            config_in, ping_in = context.socket(zmq.PULL), context.socket(zmq.PULL)
            errors_out, updates_out = context.socket(zmq.XPUB), context.socket(zmq.XPUB)
            sockets = [config_in, ping_in, errors_out, updates_out]
            for offset, socket in enumerate(sockets):
                socket.setsockopt(zmq.LINGER, 0)
                socket.bind(f"tcp://127.0.0.1:{self.base_port + offset}")
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            for socket in sockets:
                socket.close(0)
            context.term()
            return
        self._ready.set()
        outputs = {"errors": errors_out, "updates": updates_out}
        joined = {errors_out: self.errors_subscribed, updates_out: self.updates_subscribed}
        poller = zmq.Poller()
        for socket in sockets:
            poller.register(socket, zmq.POLLIN)
        pinged = False
        next_update = time.monotonic()
        try:
            while not self._stop.is_set():
                wait = max(0.0, min(next_update - time.monotonic(), 0.02))
                for socket, _ in poller.poll(int(wait * 1000)):
                    frame = socket.recv()
                    if socket is ping_in:
                        pinged = True
                    elif socket is config_in:
                        self._apply(frame)
                    elif frame[:1] == b"\x01":  # a subscription on an XPUB
                        joined[socket].set()
                while self._outbox:
                    port, frame = self._outbox.popleft()
                    outputs[port].send(frame)
                if pinged and time.monotonic() >= next_update:
                    updates_out.send(encode_levels(self.levels))
                    next_update = time.monotonic() + 0.05
        finally:
            for socket in sockets:
                socket.close(0)
            context.term()

    def _apply(self, frame: bytes) -> None:
        self.configs.append(frame)
        try:
            config = decode_pin_config(frame)
        except CodecError:
            return
        if config.pin is not None and config.mode == PinMode.OUTPUT and config.pin < 16:
            self.set_level(config.pin, config.value & 1)


FAKE_PINS = [
    {"pin": 0, "mode": "output", "initial": "off"},
    {"pin": 6, "mode": "input"},
]


@pytest.fixture
def fake_driver(malos_port: int) -> Iterator[FakeDriver]:
    """A FakeDriver on `malos_port`, where `own_driver_rig`'s bridges look for a driver."""
    with FakeDriver(malos_port) as driver:
        yield driver


def test_driver_errors_of_any_size_and_encoding_are_republished_bounded(
    own_driver_rig: Rig, fake_driver: FakeDriver
) -> None:
    probe = own_driver_rig.probe
    base = own_driver_rig.start(FAKE_PINS)
    probe.wait_for(f"{base}/gpio/6/state", "OFF")
    wait_until(fake_driver.errors_subscribed.is_set, what="the bridge on the error port")

    frames = [
        b"E" * 1_000_000,
        "caf\u00e9 \u2615 ".encode() + b"\xff\xfe\x80 not utf-8 \x00\x1b[31m",
        b"",
        b"last",  # a marker: everything before it has been handled once it shows
    ]
    for frame in frames:
        fake_driver.publish_error(frame)
    wait_until(
        lambda: any(r["error"] == "last" for r in own_driver_rig.errors(base)),
        what="the last driver error on gpio/status",
    )
    messages = probe.on(f"{base}/gpio/status")
    assert len(messages) == len(frames), "one status message per error frame"
    reports = own_driver_rig.errors(base)
    for message, report in zip(messages, reports, strict=True):
        assert report["source"] == "driver"
        assert report["pin"] is None
        assert isinstance(report["error"], str)
        assert len(report["error"]) <= 500
        assert len(message.payload) < 4_000  # a 1 MB driver error is not a 1 MB MQTT message
        assert report["time"].endswith("Z")
    huge, garbled, empty, _ = (report["error"] for report in reports)
    assert huge and set(huge) == {"E"}
    assert "caf" in garbled and "not utf-8" in garbled
    assert len(empty) <= 500  # the empty frame got its own message (counted above)

    # Still online, still following the pins.
    fake_driver.set_level(6, 1)
    probe.wait_for(f"{base}/gpio/6/state", "ON")
    assert stayed_online(probe, base)

    # Garbage on the update port is reported by the bridge, and valid updates keep working.
    fake_driver.publish_update(b"\xff\xff\xff")
    fake_driver.publish_update(b"\x22" + b"\xff" * 100_000)
    fake_driver.set_level(6, 0)
    probe.wait_for(f"{base}/gpio/6/state", "OFF")
    malformed = [r for r in own_driver_rig.errors(base) if r["source"] == "bridge"]
    assert len(malformed) == 2
    assert all("malformed" in r["error"] and len(r["error"]) < 1_000 for r in malformed)
    assert stayed_online(probe, base)

    # And a command still reaches the driver.
    sent_before = len(fake_driver.configs)
    probe.publish(f"{base}/gpio/0/set", "ON")
    probe.wait_for(f"{base}/gpio/0/state", "ON")
    last = decode_pin_config(fake_driver.configs[-1])
    assert len(fake_driver.configs) > sent_before
    assert (last.pin, last.mode, last.value) == (0, PinMode.OUTPUT, 1)
    assert stayed_online(probe, base)


SIM_PINS = [
    {"pin": 0, "mode": "output", "initial": "off"},
    {"pin": 6, "mode": "input"},
    {"pin": 15, "mode": "input"},
]


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return bytes([*out, low])
        out.append(low | 0x80)


def test_oversized_and_malformed_updates_are_survived_and_high_bits_ignored(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(SIM_PINS)
    probe.wait_for(f"{base}/gpio/0/state", "OFF")
    probe.wait_for(f"{base}/gpio/6/state", "OFF")
    probe.wait_for(f"{base}/gpio/15/state", "OFF")
    assert simulator.board.levels() == 0

    malformed = [
        b"\x22" + b"\xff" * 10_000_000,  # 10 MB: a length that never ends
        b"\x20",  # `values` tag, no value
        b"\x20\x80",  # a varint cut after its continuation bit
        b"\x20" + b"\x80" * 11 + b"\x01",  # a varint longer than 10 bytes
        b"\x7a" + varint(10_000_000) + b"\x00" * 100,  # length-delimited, data cut short
        b"\x00\x01",  # field number 0
    ]
    harmless = [
        b"\x78\x01\x82\x06\x03abc",  # unknown fields only: all pins low, as b"" is
        b"\x7a" + varint(10_000_000) + b"\x00" * 10_000_000 + encode_levels(0),  # 10 MB, valid
        encode_levels(0xFFFF_0000),  # bits 16..31 set: there are no such pins
        encode_levels(0x8000_0000),
    ]
    for frame in [*malformed, *harmless]:
        simulator.inject_update(frame)
    # The injected frames go out before the next periodic update, which brings pin 6 high.
    simulator.set_input(6, 1)
    probe.wait_for(f"{base}/gpio/6/state", "ON")

    reports = rig.errors(base)
    assert len(reports) == len(malformed), reports
    for report in reports:
        assert report["source"] == "bridge"
        assert report["pin"] is None
        assert "malformed" in report["error"]
        assert len(report["error"]) < 1_000  # the 10 MB frame is not echoed
    # High bits and unknown fields changed no pin: no glitch on any state topic.
    assert [m.text for m in probe.on(f"{base}/gpio/15/state")] == ["OFF"]
    assert [m.text for m in probe.on(f"{base}/gpio/0/state")] == ["OFF"]
    assert [m.text for m in probe.on(f"{base}/gpio/6/state")] == ["OFF", "ON"]
    assert stayed_online(probe, base)

    # Still serving commands.
    probe.publish(f"{base}/gpio/0/set", "ON")
    probe.wait_for(f"{base}/gpio/0/state", "ON")
    assert simulator.board.levels() & 1 == 1
    assert stayed_online(probe, base)


def test_a_driver_flipping_inputs_thousands_of_times_a_second_is_published_at_the_cap(
    own_driver_rig: Rig, fake_driver: FakeDriver
) -> None:
    probe = own_driver_rig.probe
    pins = [*FAKE_PINS, {"pin": 7, "mode": "input"}]
    base = own_driver_rig.start(pins, mqtt={"max_state_rate": 5})
    probe.wait_for(f"{base}/gpio/6/state", "OFF")
    probe.wait_for(f"{base}/gpio/7/state", "OFF")
    started = time.monotonic()
    for index in range(5000):  # pins 6 and 7 flip on every update
        fake_driver.publish_update(encode_levels(0b11 << 6 if index % 2 == 0 else 0))
    fake_driver.set_level(6, 1)  # where the flood leaves them: 6 high, 7 low
    probe.wait_for(f"{base}/gpio/6/state", "ON")
    probe.wait_for(f"{base}/gpio/7/state", "OFF")
    seconds = time.monotonic() - started
    for pin in (6, 7):
        published = len(probe.on(f"{base}/gpio/{pin}/state")) - 1  # the first is from the start
        assert published <= 5 * (seconds + 1), f"pin {pin}: {published} in {seconds:.1f} s"
    wait_until(
        lambda: [r for r in own_driver_rig.errors(base) if "max_state_rate" in r["error"]],
        what=f"the rate report (state messages: pin 6 {len(probe.on(f'{base}/gpio/6/state'))}, "
        f"pin 7 {len(probe.on(f'{base}/gpio/7/state'))})",
    )
    assert stayed_online(probe, base)


def test_a_driver_sending_only_malformed_updates_counts_as_gone(rig: Rig) -> None:
    simulator, probe = rig.simulator, rig.probe
    base = rig.start(SIM_PINS, malos={"offline_after": 1.5})
    simulator.timeout_after_last_ping = 0.0  # the driver's own updates stop...
    stop = threading.Event()

    def garbage() -> None:  # ...and only garbage arrives, on the same connection
        while not stop.wait(0.05):
            simulator.inject_update(b"\xff\xff\xff")

    sender = threading.Thread(target=garbage, daemon=True)
    sender.start()
    try:
        probe.wait_for(f"{base}/status", "offline", timeout=8)
    finally:
        stop.set()
        sender.join()
    simulator.timeout_after_last_ping = 5.0
    probe.wait_for(f"{base}/status", "online")


def test_reports_quote_a_huge_topic_segment_only_in_part(rig: Rig) -> None:
    probe = rig.probe
    base = rig.start(SIM_PINS)
    for _ in range(3):
        probe.client.publish(f"{base}/gpio/{'7' * 60_000}/set", "ON", qos=0)
    probe.publish(f"{base}/gpio/6/set", "ON")  # a marker behind them (an input: refused)
    wait_until(lambda: len(rig.errors(base)) == 4, what="four reports")
    messages = probe.on(f"{base}/gpio/status")
    assert all(len(message.payload) < 600 for message in messages)
    assert "60000 characters" in rig.errors(base)[0]["error"]
