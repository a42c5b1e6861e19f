"""The simulated MALOS Everloop driver, spoken to over raw ZeroMQ as a client would."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from mqtt_gpio_bridge.malos.everloop.codec import (
    CREATOR_LEDS,
    VOICE_LEDS,
    decode_length,
    encode_image,
)
from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver, console_command
from mqtt_gpio_bridge.sim.everloop import (
    ERROR_BAD_SPECIFIC,
    ERROR_BAD_VALUE,
    ERROR_UNPARSABLE,
    SimulatedEverloopDriver,
    error_led_count,
    render_ring,
)
from mqtt_gpio_bridge.sim.proto import DriverConfig

from .helpers import RawClient, wait_until

Led = tuple[int, int, int, int]


@pytest.fixture(params=["creator", "voice"])
def board_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def everloop(malos_port: int, board_name: str) -> Iterator[SimulatedEverloopDriver]:
    with SimulatedEverloopDriver("127.0.0.1", malos_port, board_name) as driver:
        yield driver


@pytest.fixture
def creator(malos_port: int) -> Iterator[SimulatedEverloopDriver]:
    with SimulatedEverloopDriver("127.0.0.1", malos_port) as driver:
        yield driver


def rainbow(count: int) -> list[Led]:
    return [(index * 7 % 256, 255 - index, index % 3 * 100, index % 2) for index in range(count)]


def image_frame(leds: list[Led], **timing: float) -> bytes:
    """A config built with the official classes: values above 255 are possible here."""
    config = DriverConfig(**timing)
    config.image.SetInParent()
    for red, green, blue, white in leds:
        config.image.led.add(red=red, green=green, blue=blue, white=white)
    frame: bytes = config.SerializeToString()
    return frame


def send(driver: SimulatedEverloopDriver, client: RawClient, *frames: bytes) -> None:
    before = driver.configs_received
    for frame in frames:
        client.send(frame)
    wait_until(lambda: driver.configs_received == before + len(frames), what="configs handled")


def sub_connected(client: RawClient) -> None:
    """Give the SUB sockets time to connect (ZeroMQ slow joiner): nothing must arrive."""
    assert client.error(timeout=0.2) is None


def errors(client: RawClient) -> list[str]:
    """Every error published until none comes for 0.3 s."""
    texts = []
    while (text := client.error(timeout=0.3)) is not None:
        texts.append(text)
    return texts


# -- updates --------------------------------------------------------------------------------------


def test_the_board_decides_the_led_count() -> None:
    assert SimulatedEverloopDriver(board="creator").leds == CREATOR_LEDS == 35
    assert SimulatedEverloopDriver(board="voice").leds == VOICE_LEDS == 18
    with pytest.raises(ValueError, match="board 'pi' is not one of creator, voice"):
        SimulatedEverloopDriver(board="pi")


def test_updates_come_only_while_pinged_and_carry_the_led_count(
    everloop: SimulatedEverloopDriver, client: RawClient
) -> None:
    sub_connected(client)
    assert client.update(timeout=0.3) is None  # no ping yet: silent
    client.ping()
    update = client.update()
    assert update is not None
    assert decode_length(update) == everloop.leds
    assert update == bytes((0x10, everloop.leds))  # only everloop_length, nothing else
    assert errors(client) == []


def test_updates_stop_a_whole_ping_timeout_after_the_last_ping_and_resume_at_the_next(
    everloop: SimulatedEverloopDriver, client: RawClient
) -> None:
    frame = image_frame(rainbow(everloop.leds), delay_between_updates=0.02)
    send(everloop, client, image_frame(rainbow(everloop.leds), timeout_after_last_ping=0.2), frame)
    sub_connected(client)
    client.ping()
    assert client.update() is not None

    def quiet() -> bool:
        client.drain()
        return client.update(timeout=0.1) is None

    wait_until(quiet, what="updates stopped")
    sent = everloop.updates_sent
    assert sent >= 5  # 0.2 s of updates every 20 ms, give or take the scheduler
    assert client.update(timeout=0.3) is None
    assert everloop.updates_sent == sent
    client.ping()
    assert client.update() is not None


def test_the_default_update_period_is_one_second(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    assert creator.delay_between_updates == 1.0
    assert creator.timeout_after_last_ping == 5.0
    sub_connected(client)
    client.ping()
    assert client.update() is not None
    started = time.monotonic()
    client.ping()
    assert client.update() is not None
    assert time.monotonic() - started > 0.5  # the next one waits for the period, pings or not


# -- images ---------------------------------------------------------------------------------------


def test_an_accepted_image_is_shown_whole_at_once(
    everloop: SimulatedEverloopDriver, client: RawClient
) -> None:
    sub_connected(client)
    leds = rainbow(everloop.leds)
    before = time.monotonic()
    send(everloop, client, encode_image(leds))
    after = time.monotonic()
    assert everloop.shown == tuple(leds)
    [image] = everloop.images
    assert image.leds == tuple(leds)
    assert before <= image.at <= after
    assert errors(client) == []


def test_each_image_replaces_the_last_and_all_are_logged(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    assert creator.shown is None
    off = [(0, 0, 0, 0)] * CREATOR_LEDS
    white = [(0, 0, 0, 255)] * CREATOR_LEDS
    send(creator, client, encode_image(white), encode_image(off))
    assert [image.leds for image in creator.images] == [tuple(white), tuple(off)]
    assert creator.images[0].at <= creator.images[1].at
    assert creator.shown == tuple(off)


def test_a_wrong_led_count_is_refused_with_the_drivers_two_errors(
    everloop: SimulatedEverloopDriver, client: RawClient
) -> None:
    sub_connected(client)
    other = CREATOR_LEDS + VOICE_LEDS - everloop.leds  # the other board's image
    send(everloop, client, encode_image(rainbow(other)), encode_image(rainbow(everloop.leds - 1)))
    refusal = [error_led_count(everloop.leds), ERROR_BAD_SPECIFIC]
    assert errors(client) == refusal * 2
    assert error_led_count(35) == "WARNING: Invalid number of Leds it must be =35"
    assert ERROR_BAD_SPECIFIC == "0, Invalid specific configuration for Everloop driver."
    assert everloop.images == []


def test_a_config_without_an_image_is_a_wrong_led_count_and_its_timings_are_not_applied(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    """ProcessConfig reads the default EverloopImage: no LED."""
    sub_connected(client)
    send(creator, client, DriverConfig(delay_between_updates=0.05).SerializeToString())
    assert errors(client) == [error_led_count(CREATOR_LEDS), ERROR_BAD_SPECIFIC]
    assert creator.delay_between_updates == 1.0
    assert creator.images == []


@pytest.mark.parametrize("channel", ["red", "green", "blue", "white"])
@pytest.mark.parametrize("value", [256, 1000, 2**32 - 1])
def test_a_value_above_255_is_refused_and_nothing_is_shown(
    creator: SimulatedEverloopDriver, client: RawClient, channel: str, value: int
) -> None:
    sub_connected(client)
    leds = rainbow(CREATOR_LEDS)
    config = DriverConfig.FromString(image_frame(leds, delay_between_updates=0.05))
    setattr(config.image.led[34], channel, value)
    send(creator, client, config.SerializeToString())
    assert errors(client) == [ERROR_BAD_VALUE, ERROR_BAD_SPECIFIC]
    assert ERROR_BAD_VALUE == "ERROR: LED values go from 0 to 255."
    assert creator.images == []
    assert creator.delay_between_updates == 1.0  # a refused config applies no timing


def test_many_bad_values_earn_one_error_and_a_wrong_count_hides_them(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    """The driver stops at the first bad LED, and checks the count before any value."""
    sub_connected(client)
    send(creator, client, image_frame([(300, 300, 300, 300)] * CREATOR_LEDS))
    assert errors(client) == [ERROR_BAD_VALUE, ERROR_BAD_SPECIFIC]
    send(creator, client, image_frame([(300, 0, 0, 0)] * VOICE_LEDS))
    assert errors(client) == [error_led_count(CREATOR_LEDS), ERROR_BAD_SPECIFIC]
    assert creator.images == []


def test_an_unparsable_frame_publishes_the_parse_error_alone(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    sub_connected(client)
    send(creator, client, b"\xff\xff\xff")
    assert errors(client) == [ERROR_UNPARSABLE]
    assert (
        ERROR_UNPARSABLE
        == "0, Invalid configuration for Everloop driver. Could not parse protobuf."
    )
    assert creator.images == []


def test_timings_apply_from_accepted_images_in_whole_milliseconds(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    leds = rainbow(CREATOR_LEDS)
    send(creator, client, image_frame(leds, delay_between_updates=0.0015))
    assert creator.delay_between_updates == 0.001
    assert creator.timeout_after_last_ping == 5.0  # 0 is "not set"
    send(creator, client, image_frame(leds, timeout_after_last_ping=0.251))
    # float32(0.251) * 1000 is 250.99998 in float32, truncated to 250 ms
    assert creator.timeout_after_last_ping == 0.25
    assert creator.delay_between_updates == 0.001


def test_on_wire_sees_configs_as_received_and_handled_and_updates_as_sent(
    malos_port: int, client: RawClient
) -> None:
    seen: list[tuple[str, bytes]] = []
    with SimulatedEverloopDriver(
        "127.0.0.1", malos_port, "voice", on_wire=lambda *wire: seen.append(wire)
    ) as driver:
        frame = encode_image(rainbow(VOICE_LEDS))
        send(driver, client, frame, b"\xff")
        client.ping()
        wait_until(lambda: driver.updates_sent, what="an update")
    assert seen[:4] == [
        ("config", frame),
        ("applied", frame),
        ("config", b"\xff"),
        ("applied", b"\xff"),
    ]
    assert seen[4] == ("update", b"\x10\x12")


def test_a_bound_port_is_an_oserror(malos_port: int, creator: SimulatedEverloopDriver) -> None:
    with pytest.raises(OSError, match="cannot bind"):
        SimulatedEverloopDriver("127.0.0.1", malos_port).start()


# -- the ring in a terminal -----------------------------------------------------------------------


def test_the_ring_is_drawn_as_one_coloured_block_per_led() -> None:
    drawn = render_ring([(255, 0, 0, 0), (0, 0, 0, 0), (10, 20, 30, 100), (200, 0, 0, 100)])
    assert drawn == (
        "\x1b[48;2;255;0;0m  "
        "\x1b[48;2;0;0;0m  "
        "\x1b[48;2;110;120;130m  "  # white lightens every channel ...
        "\x1b[48;2;255;100;100m  "  # ... up to 255
        "\x1b[0m"
    )


def test_console_show_draws_the_ring_after_the_pins(
    creator: SimulatedEverloopDriver, client: RawClient
) -> None:
    gpio = SimulatedDriver(board=Board())
    assert console_command(gpio, "show").count("\n") == 15  # without a ring: the pins only
    rows = console_command(gpio, "show", creator).splitlines()
    assert rows[0] == "pin  0 input  low"
    assert rows[16] == "everloop " + render_ring([(0, 0, 0, 0)] * CREATOR_LEDS)
    leds = rainbow(CREATOR_LEDS)
    send(creator, client, encode_image(leds))
    rows = console_command(gpio, "show", creator).splitlines()
    assert rows[16] == "everloop " + render_ring(leds)
    assert rows[16].count("  ") == CREATOR_LEDS
