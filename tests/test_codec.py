"""The bytes on the wire are the official ones (test vectors of the MALOS reference)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.malos.gpio.codec import PinMode, decode_levels, encode_pin_config, pin_level
from mqtt_gpio_bridge.sim.codec import decode_pin_config, encode_levels
from mqtt_gpio_bridge.sim.proto import DriverConfig, GpioParams


def test_pin_0_output_high_matches_the_reference_vector() -> None:
    assert encode_pin_config(0, PinMode.OUTPUT, 1) == bytes.fromhex("42 04 10 01 18 01")


def test_pin_3_output_high_matches_the_reference_vector() -> None:
    assert encode_pin_config(3, PinMode.OUTPUT, 1) == bytes.fromhex("42 06 08 03 10 01 18 01")


def test_all_low_update_is_a_zero_byte_frame() -> None:
    assert encode_levels(0) == b""
    assert decode_levels(b"") == 0


def test_update_513_means_pins_0_and_9_high() -> None:
    assert encode_levels(513) == bytes.fromhex("20 81 04")
    levels = decode_levels(bytes.fromhex("20 81 04"))
    assert [pin for pin in range(16) if pin_level(levels, pin)] == [0, 9]


def test_every_config_carries_a_gpio_field_even_pin_0_input() -> None:
    # Without `gpio` the driver would read "pin 0 INPUT"; an explicit field is always there.
    frame = encode_pin_config(0, PinMode.INPUT, update_interval=0.1, ping_timeout=5.0)
    decoded = decode_pin_config(frame)
    assert decoded.pin == 0
    assert decoded.mode == PinMode.INPUT
    assert decoded.delay_between_updates == pytest.approx(0.1)
    assert decoded.timeout_after_last_ping == pytest.approx(5.0)


def test_a_timing_only_config_decodes_without_a_pin() -> None:
    frame = DriverConfig(delay_between_updates=2.0).SerializeToString()
    assert decode_pin_config(frame).pin is None


@pytest.mark.parametrize(("pin", "value"), [(16, 1), (-1, 0), (0, 2), (3, -1)])
def test_out_of_range_pins_and_values_are_never_encoded(pin: int, value: int) -> None:
    with pytest.raises(ValueError, match=r"out of range|not 0 or 1"):
        encode_pin_config(pin, PinMode.OUTPUT, value)


@pytest.mark.parametrize("frame", [b"\xff", b"\x20", b"\x0a\x05ab", b"\x22\xff\xff\xff\xff\xff"])
def test_malformed_update_frames_raise_codec_error(frame: bytes) -> None:
    with pytest.raises(CodecError):
        decode_levels(frame)


def test_update_bits_above_15_are_ignored() -> None:
    assert decode_levels(encode_levels(0x1_0001)) == 1


# -- the bridge's own wire code against the official classes -----------------------------------


@pytest.mark.parametrize("mode", list(PinMode))
@pytest.mark.parametrize("pin", range(16))
@pytest.mark.parametrize("value", [0, 1])
@pytest.mark.parametrize(("interval", "timeout"), [(0.0, 0.0), (0.1, 5.0), (0.02, 0.5)])
def test_every_config_the_bridge_sends_is_what_the_official_classes_write(
    pin: int, mode: PinMode, value: int, interval: float, timeout: float
) -> None:
    official = DriverConfig()
    if interval:
        official.delay_between_updates = interval
    if timeout:
        official.timeout_after_last_ping = timeout
    official.gpio.pin = pin
    official.gpio.mode = int(mode)
    if mode == PinMode.OUTPUT:
        official.gpio.value = value
    frame = encode_pin_config(pin, mode, value, update_interval=interval, ping_timeout=timeout)
    assert frame == official.SerializeToString()


def official_levels(frame: bytes) -> int | None:
    """What protobuf reads from an update frame: the 16 levels, None if it refuses the frame."""
    params = GpioParams()
    try:
        params.ParseFromString(frame)
    except Exception:  # protobuf's DecodeError; any refusal counts the same here
        return None
    return int(params.values) & 0xFFFF


def bridge_levels(frame: bytes) -> int | None:
    try:
        return decode_levels(frame)
    except CodecError:
        return None


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 1), st.binary())
def test_updates_with_every_field_decode_as_protobuf_decodes_them(
    values: int, pin: int, mode: int, unknown: bytes
) -> None:
    # Fields the driver never sets, and an unknown length-delimited field (number 9).
    official = GpioParams(values=values, pin=pin, mode=mode, value=pin % 7)
    frame = official.SerializeToString() + b"\x4a" + bytes([len(unknown) % 128]) + unknown
    assert bridge_levels(frame) == official_levels(frame)


@given(st.binary(max_size=40))
def test_any_bytes_decode_as_protobuf_decodes_them_or_are_refused_alike(frame: bytes) -> None:
    assert bridge_levels(frame) == official_levels(frame)


@given(
    st.lists(
        st.sampled_from(
            [
                b"\x20",
                b"\x08",
                b"\x80",
                b"\x01",
                b"\x7f",
                b"\x0b",
                b"\x0c",
                b"\x1b",
                b"\x1c",
                b"\x25",
                b"\x21",
                b"\x22",
                b"\x03",
                b"\x00",
                b"\xff",
            ]
        ),
        max_size=30,
    )
)
def test_frames_built_from_tag_like_bytes_decode_as_protobuf_decodes_them(
    pieces: list[bytes],
) -> None:
    frame = b"".join(pieces)
    assert bridge_levels(frame) == official_levels(frame)


@pytest.mark.parametrize(
    "frame", [b"\x0b\x00\x37\x0c", b"\x13\x00\x00\x14", b"\x20\x05\x0b\x00\x37\x0c"]
)
def test_field_0_inside_an_unknown_group_is_stepped_over_as_protobuf_does(frame: bytes) -> None:
    """Found by fuzzing the Everloop codec: the GPIO codec used to refuse these."""
    assert bridge_levels(frame) == official_levels(frame) is not None


def test_the_bridge_runs_without_protobuf() -> None:
    """The run path keeps protobuf (and its ~4.5 MB) out: only the simulator loads it."""
    script = (
        "import sys\n"
        "import mqtt_gpio_bridge.core.bridge, mqtt_gpio_bridge.cli\n"
        "loaded = [m for m in sys.modules if m.startswith(('google.protobuf', 'asyncio'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_importing_the_package_leaves_protobuf_alone() -> None:
    """No backend switch, no import of the old generated modules: other protobuf users in the
    process keep working, whatever protobuf release is installed."""
    report = (
        "from google.protobuf.internal import api_implementation\n"
        "import google.protobuf\n"
        "print(api_implementation.Type(), google.protobuf.__version__)\n"
    )
    ours = (
        "import mqtt_gpio_bridge.sim.codec, sys\n"
        "assert not [m for m in sys.modules if m.startswith('matrix_io.proto.malos')], 'imported'\n"
    )

    def run(script: str) -> tuple[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        backend, version = result.stdout.split()
        return backend, version

    # The backend protobuf picks by itself: upb where a wheel has it, "python" where none does
    # (no armv7 wheel: a 32-bit Pi gets the pure-Python one).
    alone = run(report)
    assert run(ours + report) == alone
    assert int(alone[1].split(".")[0]) >= 4
