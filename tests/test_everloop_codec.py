"""The Everloop driver's wire format: the bridge's bytes against the official classes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mqtt_gpio_bridge.errors import CodecError
from mqtt_gpio_bridge.malos.everloop.codec import (
    CREATOR_LEDS,
    VOICE_LEDS,
    decode_length,
    encode_image,
)
from mqtt_gpio_bridge.sim.proto import DriverConfig, EverloopImage

Led = tuple[int, int, int, int]

VALUES = st.integers(0, 255)
LEDS = st.tuples(VALUES, VALUES, VALUES, VALUES)


def official(leds: list[Led]) -> bytes:
    config = DriverConfig()
    config.image.SetInParent()  # present even with no LED, as the bridge sends it
    for red, green, blue, white in leds:
        config.image.led.add(red=red, green=green, blue=blue, white=white)
    return bytes(config.SerializeToString())


def random_image(rng: random.Random, count: int) -> list[Led]:
    # Values around the one- and two-byte varint step, zeros (left out) and anything.
    choices = [0, 0, 1, 127, 128, 255]

    def value() -> int:
        return rng.choice(choices) if rng.random() < 0.5 else rng.randrange(256)

    return [(value(), value(), value(), value()) for _ in range(count)]


# -- images ---------------------------------------------------------------------------------------


def test_one_led_is_the_official_frame() -> None:
    assert encode_image([(1, 2, 3, 4)]) == bytes.fromhex("1a0a0a080801100218032004")
    assert encode_image([(255, 0, 128, 0)]) == bytes.fromhex("1a080a0608ff01188001")
    assert encode_image([(1, 2, 3, 4)]) == official([(1, 2, 3, 4)])


@pytest.mark.parametrize("count", [CREATOR_LEDS, VOICE_LEDS])
def test_a_ring_all_off_still_carries_every_led(count: int) -> None:
    frame = encode_image([(0, 0, 0, 0)] * count)
    assert frame == bytes((0x1A, 2 * count)) + b"\x0a\x00" * count
    assert frame == official([(0, 0, 0, 0)] * count)
    config = DriverConfig()
    config.ParseFromString(frame)
    assert len(config.image.led) == count


@pytest.mark.parametrize("count", [CREATOR_LEDS, VOICE_LEDS])
def test_a_ring_all_at_255_matches_the_official_classes(count: int) -> None:
    leds = [(255, 255, 255, 255)] * count
    assert encode_image(leds) == official(leds)
    assert len(encode_image(leds)) == 3 + 14 * count  # a two-byte length from 10 LEDs on


@pytest.mark.parametrize("count", [CREATOR_LEDS, VOICE_LEDS, 1, 9, 10])
@pytest.mark.parametrize("seed", range(40))
def test_random_images_match_the_official_classes(count: int, seed: int) -> None:
    leds = random_image(random.Random(seed * 100 + count), count)
    assert encode_image(leds) == official(leds)


@given(st.lists(LEDS, max_size=40))
def test_any_image_matches_the_official_classes(leds: list[Led]) -> None:
    assert encode_image(leds) == official(leds)


def test_the_official_classes_read_back_what_was_encoded() -> None:
    leds = random_image(random.Random(7), CREATOR_LEDS)
    config = DriverConfig()
    config.ParseFromString(encode_image(leds))
    assert [(led.red, led.green, led.blue, led.white) for led in config.image.led] == leds
    assert config.image.everloop_length == 0
    assert not config.HasField("gpio")
    assert config.delay_between_updates == 0  # nothing else rides along


@pytest.mark.parametrize(
    ("leds", "message"),
    [
        ([(256, 0, 0, 0)], "LED 0: red 256 is not a whole number 0..255"),
        ([(0, 0, 0, 0), (0, -1, 0, 0)], "LED 1: green -1 is not a whole number 0..255"),
        ([(0, 0, 1.5, 0)], "LED 0: blue 1.5 is not a whole number 0..255"),
        ([(0, 0, 0, 1000)], "LED 0: white 1000 is not a whole number 0..255"),
        ([(0, 0, 0, "1")], "LED 0: white '1' is not a whole number 0..255"),
        ([(0, 0, 0)], r"LED 0: \(0, 0, 0\) is not \(red, green, blue, white\)"),
        ([(0, 0, 0, 0, 0)], r"LED 0: \(0, 0, 0, 0, 0\) is not \(red, green, blue, white\)"),
        ([5], "LED 0: 5 is not"),
        (None, "NoneType is not a sequence"),
    ],
)
def test_what_the_driver_would_refuse_or_cannot_be_an_led_is_never_encoded(
    leds: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_image(leds)  # type: ignore[arg-type]


# -- updates --------------------------------------------------------------------------------------


def official_length(update: bytes) -> int | None:
    image = EverloopImage()
    try:
        image.ParseFromString(update)
    except Exception:  # protobuf's DecodeError; any refusal counts the same here
        return None
    return int(image.everloop_length)


def bridge_length(update: bytes) -> int | None:
    try:
        return decode_length(update)
    except CodecError:
        return None


@pytest.mark.parametrize(("count", "hex_update"), [(CREATOR_LEDS, "1023"), (VOICE_LEDS, "1012")])
def test_the_drivers_update_gives_the_led_count(count: int, hex_update: str) -> None:
    update = EverloopImage(everloop_length=count).SerializeToString()
    assert update == bytes.fromhex(hex_update)
    assert decode_length(update) == count


def test_an_empty_update_is_a_length_of_zero() -> None:
    assert decode_length(b"") == 0


def test_leds_in_an_update_are_read_past_and_the_last_length_wins() -> None:
    image = EverloopImage(everloop_length=18)
    image.led.add(red=3, white=300)
    update = image.SerializeToString() + EverloopImage(everloop_length=35).SerializeToString()
    assert decode_length(update) == 35


def test_a_negative_length_is_read_as_an_int32() -> None:
    update = EverloopImage(everloop_length=-1).SerializeToString()
    assert len(update) == 11  # sign-extended to ten varint bytes
    assert decode_length(update) == -1


@pytest.mark.parametrize(
    "update",
    [
        b"\x10",
        b"\x10\x80",
        b"\x0a\x05\x08",
        b"\x0a\x01\xff",
        b"\x00",
        b"\x14",
        b"\x10" + b"\xff" * 10,
    ],
)
def test_malformed_updates_are_a_codec_error(update: bytes) -> None:
    with pytest.raises(CodecError, match="not an EverloopImage update"):
        decode_length(update)
    assert official_length(update) is None


@given(st.integers(-(2**31), 2**31 - 1), st.lists(LEDS, max_size=3), st.binary(max_size=20))
def test_updates_with_every_field_decode_as_protobuf_decodes_them(
    length: int, leds: list[Led], unknown: bytes
) -> None:
    image = EverloopImage(everloop_length=length)
    for red, green, blue, white in leds:
        image.led.add(red=red, green=green, blue=blue, white=white)
    # An unknown length-delimited field (number 9) after the official ones.
    update = image.SerializeToString() + b"\x4a" + bytes([len(unknown)]) + unknown
    assert bridge_length(update) == official_length(update) == length


@given(st.binary(max_size=40))
def test_any_bytes_decode_as_protobuf_decodes_them_or_are_refused_alike(update: bytes) -> None:
    assert bridge_length(update) == official_length(update)


TAG_LIKE = [bytes((byte,)) for byte in b"\x08\x0a\x10\x12\x0b\x0c\x13\x14\x15\x0d\x09\x03\x04"]
TAG_LIKE += [b"\x00", b"\x01", b"\x02", b"\x23", b"\x7f", b"\x80", b"\xff"]


@given(st.lists(st.sampled_from(TAG_LIKE), max_size=30))
def test_frames_built_from_tag_like_bytes_decode_as_protobuf_decodes_them(
    pieces: list[bytes],
) -> None:
    """Groups, LedValues with unknown fields, lengths that run past the end."""
    update = b"".join(pieces)
    assert bridge_length(update) == official_length(update)
