"""The Everloop light: command parsing, the state payload and rendered frames (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_gpio_bridge.malos.everloop.codec import CREATOR_LEDS, VOICE_LEDS
from mqtt_gpio_bridge.malos.everloop.commands import MAX_PAYLOAD_BYTES, parse_command
from mqtt_gpio_bridge.malos.everloop.effects import animated, render
from mqtt_gpio_bridge.malos.everloop.light import (
    EFFECTS,
    RGBW,
    LightState,
    from_json,
    state_json,
)
from mqtt_gpio_bridge.malos.gpio.commands import Refusal

OFF = LightState()
RED = LightState(on=True, color=(255, 0, 0, 0))
PROPERTY = settings(derandomize=True, max_examples=300, deadline=None)
IMAGE = tuple((index, 0, 0, 0) for index in range(CREATOR_LEDS))
DARK: RGBW = (0, 0, 0, 0)


def parsed(payload: bytes, current: LightState = OFF, leds: int = CREATOR_LEDS) -> LightState:
    result = parse_command(payload, current, leds)
    assert isinstance(result, LightState), result
    return result


def refusal(payload: bytes, current: LightState = OFF, leds: int = CREATOR_LEDS) -> str:
    result = parse_command(payload, current, leds)
    assert isinstance(result, Refusal), result
    return result.reason


# --- Home Assistant's JSON commands ---------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "current", "expected"),
    [
        (b'{"state": "ON"}', OFF, replace(OFF, on=True)),
        (b'{"state": "on"}', OFF, replace(OFF, on=True)),
        (b'{"state": " Off "}', RED, replace(RED, on=False)),
        (b'{"state": "TOGGLE"}', RED, replace(RED, on=False)),
        (b'{"state": "toggle"}', OFF, replace(OFF, on=True)),
        (b'{"brightness": 100}', OFF, replace(OFF, on=True, brightness=100)),
        (b'{"brightness": 128.0}', OFF, replace(OFF, on=True, brightness=128)),
        (b'{"state": "ON", "brightness": 1}', OFF, replace(OFF, on=True, brightness=1)),
        (
            b'{"color": {"r": 1, "g": 2, "b": 3, "w": 4}}',
            OFF,
            replace(OFF, on=True, color=(1, 2, 3, 4)),
        ),
        (b'{"effect": "spin"}', OFF, replace(OFF, on=True, effect="spin")),
        (b'{"effect": "Rainbow"}', RED, replace(RED, effect="rainbow")),
        (b'{"effect": "none"}', replace(RED, effect="blink"), RED),
        (b'{"effect": "off"}', replace(RED, effect="blink"), RED),
        (b'{"effect": null}', replace(RED, effect="blink"), RED),
        (b'{"state": "ON", "transition": 2.5, "flash": "short"}', OFF, replace(OFF, on=True)),
        (b'{"transition": 1}', RED, RED),
    ],
)
def test_home_assistant_commands(payload: bytes, current: LightState, expected: LightState) -> None:
    assert parsed(payload, current) == expected


def test_off_keeps_colour_brightness_and_effect_for_the_next_on() -> None:
    shown = LightState(True, 40, (0, 0, 255, 9), "breathe")
    off = parsed(b'{"state": "OFF"}', shown)
    assert off == replace(shown, on=False)
    assert parsed(b'{"state": "ON"}', off) == shown


def test_off_with_a_colour_stores_it_and_stays_off() -> None:
    off = parsed(b'{"state": "OFF", "color": {"r": 9, "g": 8, "b": 7, "w": 6}}', RED)
    assert off == replace(RED, on=False, color=(9, 8, 7, 6))


def test_brightness_zero_is_off_and_keeps_the_previous_brightness() -> None:
    shown = replace(RED, brightness=90)
    assert parsed(b'{"brightness": 0}', shown) == replace(shown, on=False)
    assert parsed(b'{"state": "ON", "brightness": 0}', shown) == replace(shown, on=False)


def test_a_colour_ends_the_rainbow_but_recolours_other_effects() -> None:
    payload = b'{"color": {"r": 0, "g": 255, "b": 0, "w": 0}}'
    assert parsed(payload, replace(RED, effect="rainbow")).effect is None
    for effect in ("spin", "breathe", "blink"):
        after = parsed(payload, replace(RED, effect=effect))
        assert (after.effect, after.color) == (effect, (0, 255, 0, 0))


def test_a_colour_turning_the_ring_on_shows_it_still_and_ends_a_stored_effect() -> None:
    # Home Assistant's turn_on with a colour, on a ring switched off while it was spinning.
    payload = b'{"state": "ON", "color": {"r": 0, "g": 255, "b": 0, "w": 0}}'
    after = parsed(payload, replace(RED, on=False, effect="spin"))
    assert (after.on, after.effect, after.color) == (True, None, (0, 255, 0, 0))
    # A plain ON brings the effect back, as it was.
    assert parsed(b'{"state": "ON"}', replace(RED, on=False, effect="spin")).effect == "spin"


def test_a_colour_with_rainbow_keeps_the_rainbow_and_stores_the_colour() -> None:
    after = parsed(b'{"effect": "rainbow", "color": {"r": 1, "g": 1, "b": 1, "w": 1}}', RED)
    assert (after.effect, after.color) == ("rainbow", (1, 1, 1, 1))


def test_a_colour_or_effect_ends_a_per_led_image_but_brightness_keeps_it() -> None:
    shown = replace(RED, leds=IMAGE)
    assert parsed(b'{"color": {"r": 1, "g": 2, "b": 3, "w": 4}}', shown).leds is None
    assert parsed(b'{"effect": "spin"}', shown).leds is None
    assert parsed(b'{"effect": "none"}', shown).leds is None
    assert parsed(b'{"brightness": 20}', shown) == replace(shown, brightness=20)
    assert parsed(b'{"state": "OFF"}', shown) == replace(shown, on=False)


# --- Node-RED's per-LED forms ---------------------------------------------------------------


def test_a_whole_image_lights_the_ring_stops_effects_and_keeps_brightness() -> None:
    payload = json.dumps({"leds": [list(led) for led in IMAGE]}).encode()
    current = LightState(False, 77, (5, 5, 5, 5), "spin")
    assert parsed(payload, current) == LightState(True, 77, (5, 5, 5, 5), None, IMAGE)


def test_a_whole_image_takes_rgb_lists_as_white_zero_and_integral_floats() -> None:
    payload = json.dumps({"leds": [[1, 2, 3]] * (VOICE_LEDS - 1) + [[1.0, 2, 3, 4.0]]})
    image = parsed(payload.encode(), leds=VOICE_LEDS).leds
    assert image == ((1, 2, 3, 0),) * (VOICE_LEDS - 1) + ((1, 2, 3, 4),)


def test_a_pretty_printed_image_for_35_leds_fits_the_payload_limit() -> None:
    payload = json.dumps({"leds": [[255] * 4] * CREATOR_LEDS}, indent=4).encode()
    assert len(payload) < MAX_PAYLOAD_BYTES
    assert parsed(payload).leds == ((255, 255, 255, 255),) * CREATOR_LEDS


def test_one_led_starts_from_every_led_at_the_colour_when_on() -> None:
    after = parsed(b'{"led": 3, "color": [0, 0, 9, 1]}', replace(RED, effect="blink"))
    expected = [(255, 0, 0, 0)] * CREATOR_LEDS
    expected[3] = (0, 0, 9, 1)
    assert after == replace(RED, leds=tuple(expected))


def test_one_led_starts_from_all_off_when_the_light_is_off() -> None:
    after = parsed(b'{"led": 17, "color": {"r": 1, "g": 2, "b": 3, "w": 4}}', leds=VOICE_LEDS)
    assert after.on
    assert after.leds == (DARK,) * 17 + ((1, 2, 3, 4),)


def test_one_led_changes_only_that_led_of_the_shown_image() -> None:
    after = parsed(b'{"led": 0, "color": [7, 7, 7]}', replace(RED, leds=IMAGE))
    assert after.leds == ((7, 7, 7, 0), *IMAGE[1:])


def test_one_led_ignores_an_image_of_another_board() -> None:
    after = parsed(b'{"led": 1, "color": [7, 7, 7]}', replace(RED, leds=IMAGE), VOICE_LEDS)
    assert after.leds == ((255, 0, 0, 0), (7, 7, 7, 0)) + ((255, 0, 0, 0),) * 16


# --- plain words and no-ops -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "current", "on"),
    [
        (b"ON", OFF, True),
        (b" on\n", OFF, True),
        (b"OFF", RED, False),
        (b"Off", OFF, False),
        (b"TOGGLE", RED, False),
        (b"toggle", OFF, True),
    ],
)
def test_plain_words(payload: bytes, current: LightState, on: bool) -> None:
    assert parsed(payload, current) == replace(current, on=on)


@pytest.mark.parametrize("payload", [b"", b"  \n"])
def test_an_empty_payload_changes_nothing(payload: bytes) -> None:
    current = replace(RED, effect="spin", brightness=3)
    assert parse_command(payload, current, CREATOR_LEDS) is current


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"{nope", ["unknown payload", "JSON object"]),
        (b"blue", ["unknown payload", "'blue'"]),
        (b"[1, 2]", ["object", "[1, 2]"]),
        (b'"ON"', ["object", '"ON"']),
        (b"\xff\xfe", ["UTF-8"]),
        (b'{"state": "ON", "hs": [1, 2]}', ['unknown key "hs"', "known keys: state, brightness"]),
        (b'{"state": "maybe"}', ["state", '"maybe"']),
        (b'{"state": true}', ["state", "true"]),
        (b'{"brightness": true}', ["brightness", "whole number", "true"]),
        (b'{"brightness": 12.5}', ["brightness", "12.5"]),
        (b'{"brightness": "100"}', ["brightness", '"100"']),
        (b'{"brightness": 256}', ["brightness", "256", "0..255"]),
        (b'{"brightness": -1}', ["brightness", "-1", "0..255"]),
        (b'{"brightness": NaN}', ["brightness", "NaN"]),
        (b'{"color": {"r": 1, "g": 2, "b": 3}}', ["color", "missing w"]),
        (b'{"color": {"g": 2, "b": 3}}', ["color", "missing r, w"]),
        (b'{"color": {"r": 1, "g": 2, "b": 3, "w": 4, "x": 0}}', ["color", '"x"']),
        (b'{"color": {"r": 1, "g": 2, "b": 300, "w": 4}}', ["color.b", "300", "0..255"]),
        (b'{"color": {"r": 1, "g": false, "b": 3, "w": 4}}', ["color.g", "false"]),
        (b'{"color": "red"}', ["color", '"red"']),
        (b'{"color": [1, 2]}', ["color", "[1, 2]"]),
        (b'{"effect": "disco"}', ["effect", '"disco"', "rainbow, spin, breathe, blink"]),
        (b'{"effect": 1}', ["effect", "1", "known"]),
        (b'{"leds": [[0, 0, 0, 0]], "state": "ON"}', ['"leds" goes alone', '"state"']),
        (b'{"leds": [], "led": 1}', ['"leds" goes alone', '"led"']),
        (b'{"led": 1, "color": [1, 2, 3], "brightness": 9}', ['"led"', '"brightness"']),
        (b'{"led": 1}', ["led", "color"]),
        (b'{"leds": "red"}', ["leds", '"red"']),
        (b'{"led": 35, "color": [1, 2, 3]}', ["led", "35", "0..34", "MATRIX Creator"]),
        (b'{"led": -1, "color": [1, 2, 3]}', ["led", "-1", "0..34"]),
        (b'{"led": true, "color": [1, 2, 3]}', ["led", "true"]),
        (b'{"led": 2, "color": [1, 2, 3, 4, 5]}', ["color", "[1, 2, 3, 4, 5]"]),
    ],
)
def test_refusals_name_the_problem(payload: bytes, words: list[str]) -> None:
    reason = refusal(payload, RED)
    for word in words:
        assert word in reason


def test_a_wrong_led_count_names_both_counts_and_the_board() -> None:
    image = json.dumps({"leds": [[1, 2, 3, 4]] * VOICE_LEDS}).encode()
    assert refusal(image) == "leds: expected 35 LEDs (a MATRIX Creator), got 18"
    image = json.dumps({"leds": [[1, 2, 3, 4]] * CREATOR_LEDS}).encode()
    assert refusal(image, leds=VOICE_LEDS) == "leds: expected 18 LEDs (a MATRIX Voice), got 35"


def test_a_bad_led_in_an_image_is_named_by_index() -> None:
    image = [[1, 2, 3, 4]] * CREATOR_LEDS
    image[7] = [1, 2, 999, 4]
    assert refusal(json.dumps({"leds": image}).encode()) == (
        "leds[7][2]: 999 is out of range 0..255"
    )
    image[7] = [1, 2]
    assert "leds[7]" in refusal(json.dumps({"leds": image}).encode())


def test_long_payloads_are_refused_before_decoding() -> None:
    payload = b'{"state": "ON"' + b" " * MAX_PAYLOAD_BYTES + b"}"
    assert str(len(payload)) in refusal(payload)
    assert isinstance(parse_command(b" " * MAX_PAYLOAD_BYTES, RED, CREATOR_LEDS), LightState)


def test_refusals_quote_long_values_shortly() -> None:
    reason = refusal(b'{"brightness": "' + b"x" * 1000 + b'"}')
    assert len(reason) < 120


@pytest.mark.parametrize("depth", [900, 1500])
def test_deep_nesting_is_refused(depth: int) -> None:
    payload = b'{"brightness": ' + b"[" * depth + b"]" * depth + b"}"
    assert isinstance(parse_command(payload, RED, CREATOR_LEDS), Refusal)
    assert isinstance(parse_command(b"[" * 3000, RED, CREATOR_LEDS), Refusal)


@PROPERTY
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    assert isinstance(parse_command(payload, RED, CREATOR_LEDS), LightState | Refusal)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
KEYS = st.sampled_from(["state", "brightness", "color", "effect", "transition", "leds", "led"])


@PROPERTY
@given(st.dictionaries(KEYS, JSON, max_size=4), st.sampled_from([CREATOR_LEDS, VOICE_LEDS]))
def test_arbitrary_json_commands_never_raise_and_stay_valid(
    document: dict[str, object], led_count: int
) -> None:
    result = parse_command(json.dumps(document).encode(), RED, led_count)
    if isinstance(result, LightState):
        assert 1 <= result.brightness <= 255
        assert result.effect is None or result.effect in EFFECTS
        for led in (result.color, *(result.leds or ())):
            assert len(led) == 4
            assert all(type(value) is int and 0 <= value <= 255 for value in led)
        assert result.leds is None or len(result.leds) == led_count


# --- the state payload ----------------------------------------------------------------------


def test_state_json_of_the_default_state() -> None:
    assert state_json(OFF) == (
        '{"state":"OFF","brightness":255,"color_mode":"rgbw",'
        '"color":{"r":255,"g":255,"b":255,"w":0},"effect":null}'
    )


def test_state_json_with_an_effect() -> None:
    state = LightState(True, 12, (1, 2, 3, 4), "breathe")
    assert state_json(state) == (
        '{"state":"ON","brightness":12,"color_mode":"rgbw",'
        '"color":{"r":1,"g":2,"b":3,"w":4},"effect":"breathe"}'
    )


def test_state_json_with_a_per_led_image() -> None:
    state = LightState(True, 255, (9, 9, 9, 9), None, ((1, 2, 3, 4), (0, 0, 0, 0)))
    assert state_json(state) == (
        '{"state":"ON","brightness":255,"color_mode":"rgbw",'
        '"color":{"r":9,"g":9,"b":9,"w":9},"effect":null,"leds":[[1,2,3,4],[0,0,0,0]]}'
    )


@pytest.mark.parametrize(
    "state",
    [
        OFF,
        RED,
        LightState(False, 1, (0, 0, 0, 255), "rainbow"),
        LightState(True, 200, (1, 2, 3, 4), None, IMAGE),
        *(LightState(True, 100, (5, 6, 7, 8), effect) for effect in EFFECTS),
    ],
)
def test_from_json_reads_state_json_back(state: LightState) -> None:
    assert from_json(state_json(state)) == state
    assert from_json(state_json(state).encode()) == state


def test_from_json_takes_none_for_no_effect_and_ignores_extra_keys() -> None:
    text = (
        '{"state":"on","brightness":3,"color":{"r":1,"g":2,"b":3,"w":4},"effect":"none","note":"x"}'
    )
    assert from_json(text) == LightState(True, 3, (1, 2, 3, 4), None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ON",
        "[]",
        "{",
        b"\xff",
        "[" * 5000,
        '{"brightness":255,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null}',
        '{"state":"DIM","brightness":255,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null}',
        '{"state":"ON","brightness":256,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null}',
        '{"state":"ON","brightness":true,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null}',
        '{"state":"ON","brightness":2.0,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3},"effect":null}',
        '{"state":"ON","brightness":2,"color":[1,2,3,4],"effect":null}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3,"w":4},"effect":"disco"}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3,"w":4}}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null,'
        '"leds":[[1,2,3]]}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null,"leds":[]}',
        '{"state":"ON","brightness":2,"color":{"r":1,"g":2,"b":3,"w":4},"effect":null,'
        '"leds":[[1,2,3,-4]]}',
    ],
)
def test_from_json_rejects_anything_else(text: str | bytes) -> None:
    assert from_json(text) is None


@PROPERTY
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_from_json_never_raises(text: str | bytes) -> None:
    assert from_json(text) is None or isinstance(from_json(text), LightState)


# --- rendering ------------------------------------------------------------------------------

TIMES = (0.0, 0.1, 0.26, 0.5, 0.75, 1.0, 1.9, 3.3, 59.97, 86_400.4)


@pytest.mark.parametrize("led_count", [CREATOR_LEDS, VOICE_LEDS])
@pytest.mark.parametrize("effect", [None, *EFFECTS])
@pytest.mark.parametrize("brightness", [1, 128, 255])
def test_frames_have_one_valid_value_per_channel_and_led(
    led_count: int, effect: str | None, brightness: int
) -> None:
    state = LightState(True, brightness, (255, 128, 1, 255), effect)
    for elapsed in TIMES:
        frame = render(state, led_count, elapsed)
        assert len(frame) == led_count
        for led in frame:
            assert len(led) == 4
            assert all(type(value) is int and 0 <= value <= 255 for value in led)


@pytest.mark.parametrize("effect", [None, *EFFECTS])
def test_an_off_light_is_dark(effect: str | None) -> None:
    state = LightState(False, 255, (255, 255, 255, 255), effect, None)
    for elapsed in TIMES:
        assert render(state, CREATOR_LEDS, elapsed) == (DARK,) * CREATOR_LEDS
    assert render(replace(state, leds=IMAGE), CREATOR_LEDS, 0.0) == (DARK,) * CREATOR_LEDS


def test_a_still_colour_is_scaled_by_brightness_and_rounded() -> None:
    state = LightState(True, 128, (3, 100, 1, 255))
    # 3 * 128 / 255 = 1.506; 100 * 128 / 255 = 50.2; 1 * 128 / 255 = 0.502; 255 -> 128
    assert render(state, VOICE_LEDS, 5.0) == ((2, 50, 1, 128),) * VOICE_LEDS
    assert (
        render(replace(state, brightness=255), VOICE_LEDS, 0.0) == ((3, 100, 1, 255),) * VOICE_LEDS
    )


def test_a_per_led_image_is_shown_scaled() -> None:
    state = LightState(True, 51, leds=tuple((index * 5, 255, 0, 10) for index in range(35)))
    frame = render(state, CREATOR_LEDS, 0.0)
    assert frame == tuple((index, 51, 0, 2) for index in range(35))
    assert render(replace(state, brightness=255), CREATOR_LEDS, 0.0) == state.leds


def test_an_image_of_another_length_falls_back_to_the_colour() -> None:
    state = LightState(True, 255, (1, 2, 3, 4), leds=IMAGE)
    assert render(state, VOICE_LEDS, 0.0) == ((1, 2, 3, 4),) * VOICE_LEDS


def test_rainbow_spreads_hues_without_white_and_turns() -> None:
    state = LightState(True, 255, (255, 255, 255, 255), "rainbow")
    frame = render(state, CREATOR_LEDS, 0.0)
    assert all(led[3] == 0 for led in frame)
    assert frame[0] == (255, 0, 0, 0)  # hue 0 at the start
    assert len(set(frame)) == CREATOR_LEDS  # every LED a different hue
    assert render(state, CREATOR_LEDS, 1.0) != frame
    assert render(replace(state, color=(0, 0, 0, 0)), CREATOR_LEDS, 0.0) == frame


def test_rainbow_moves_towards_higher_indices() -> None:
    state = LightState(True, 255, effect="rainbow")
    later = render(state, CREATOR_LEDS, 5.0 / CREATOR_LEDS)  # one LED's share of a turn
    assert later[1] == render(state, CREATOR_LEDS, 0.0)[0]


def test_rainbow_is_scaled_by_brightness() -> None:
    dim = render(LightState(True, 51, effect="rainbow"), CREATOR_LEDS, 0.0)
    assert dim[0] == (51, 0, 0, 0)
    assert max(max(led) for led in dim) == 51


def lit(frame: tuple[RGBW, ...]) -> list[int]:
    return [index for index, led in enumerate(frame) if led != DARK]


@pytest.mark.parametrize("led_count", [CREATOR_LEDS, VOICE_LEDS])
def test_spin_shows_an_arc_of_about_a_sixth_of_the_ring_that_moves(led_count: int) -> None:
    state = LightState(True, 255, (0, 200, 0, 0), "spin")
    frames = [render(state, led_count, elapsed) for elapsed in (0.0, 0.25, 0.5, 1.0)]
    for frame in frames:
        assert 2 <= len(lit(frame)) <= led_count // 6 + 2
        assert all(led in {(0, value, 0, 0) for value in range(201)} for led in frame)
    assert len({tuple(lit(frame)) for frame in frames}) == len(frames)
    # Half a turn after the start, the head (the brightest LED) is opposite where it began.
    assert frames[0][0] == (0, 200, 0, 0)
    greens = [led[1] for led in frames[3]]
    assert greens.index(max(greens)) == led_count // 2


def test_spin_has_a_tail_that_fades_behind_the_head() -> None:
    frame = render(LightState(True, 255, (255, 0, 0, 0), "spin"), CREATOR_LEDS, 0.0)
    # The head at LED 0; the tail behind it is at the end of the ring, dimmer each step.
    tail = [frame[0][0], frame[-1][0], frame[-2][0], frame[-3][0]]
    assert tail == sorted(tail, reverse=True)
    assert tail[0] == 255
    assert 0 < tail[3] < tail[1]


def test_spin_goes_round_once_every_two_seconds() -> None:
    state = LightState(True, 255, (255, 0, 0, 0), "spin")
    # Times exact in binary: 0.3 and 2.3 differ in their last bits, and so may a rounded value.
    assert render(state, CREATOR_LEDS, 0.375) == render(state, CREATOR_LEDS, 2.375)
    assert render(state, CREATOR_LEDS, 0.375) != render(state, CREATOR_LEDS, 1.375)


def test_breathe_rises_and_falls_smoothly_and_never_goes_dark() -> None:
    state = LightState(True, 255, (200, 0, 0, 100), "breathe")
    reds = [render(state, VOICE_LEDS, step * 0.1)[0][0] for step in range(41)]
    assert reds[0] == 200
    assert reds[20] == min(reds) > 0  # dimmest half way through a 4 s breath
    assert reds[40] == 200
    assert reds[:21] == sorted(reds[:21], reverse=True)
    assert reds[20:] == sorted(reds[20:])
    assert max(abs(a - b) for a, b in pairwise(reds)) < 40
    assert len(set(render(state, VOICE_LEDS, 1.3))) == 1  # the whole ring alike


def test_blink_is_off_half_the_time() -> None:
    state = LightState(True, 255, (10, 20, 30, 40), "blink")
    frames = [render(state, CREATOR_LEDS, step * 0.05) for step in range(40)]
    on = [frame for frame in frames if frame == ((10, 20, 30, 40),) * CREATOR_LEDS]
    off = [frame for frame in frames if frame == (DARK,) * CREATOR_LEDS]
    assert len(on) == len(off) == 20
    assert render(state, CREATOR_LEDS, 0.2) != render(state, CREATOR_LEDS, 0.7)


def test_a_non_finite_time_renders_the_start() -> None:
    state = LightState(True, 255, (255, 0, 0, 0), "spin")
    assert render(state, CREATOR_LEDS, float("nan")) == render(state, CREATOR_LEDS, 0.0)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (LightState(True, 255, (1, 0, 0, 0), "spin"), True),
        (LightState(True, 255, (0, 0, 0, 0), "rainbow"), True),
        (LightState(True, 1, (0, 0, 0, 1), "blink"), True),
        (LightState(True, 255, (1, 0, 0, 0), None), False),
        (LightState(False, 255, (1, 0, 0, 0), "spin"), False),
        (LightState(True, 0, (1, 0, 0, 0), "breathe"), False),
        (LightState(True, 255, (0, 0, 0, 0), "breathe"), False),
    ],
)
def test_animated(state: LightState, expected: bool) -> None:
    assert animated(state) is expected
