"""The LED ring end to end: the real Mosquitto, the bridge, the simulated GPIO driver and the
simulated Everloop driver (35 LEDs as on a MATRIX Creator, 18 as on a Voice)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zmq

from mqtt_gpio_bridge.sim.everloop import SimulatedEverloopDriver
from mqtt_gpio_bridge.sim.proto import EverloopImage

from .helpers import Rig, free_port_block, wait_until

PINS: list[dict[str, Any]] = [{"pin": 0, "mode": "output"}]
RED = {"r": 255, "g": 0, "b": 0, "w": 0}
DARK = (0, 0, 0, 0)


@dataclass
class RingRig:
    rig: Rig
    ring: SimulatedEverloopDriver
    base: str = ""

    def start(self, everloop: dict[str, Any] | None = None, **sections: Any) -> str:
        sections.setdefault("everloop", everloop or {})
        malos = {"everloop_port": self.ring.base_port, **sections.pop("malos", {})}
        self.base = self.rig.start(PINS, malos=malos, **sections)
        self.rig.probe.wait_for(f"{self.base}/malos/everloop/status", "online")
        return self.base

    def command(self, payload: str | dict[str, Any]) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.rig.probe.publish(f"{self.base}/everloop/set", text)

    def state(self) -> dict[str, Any]:
        """The last state published (waits for the first)."""
        message = self.rig.probe.wait_for(f"{self.base}/everloop/state")
        document: dict[str, Any] = json.loads(message.payload)
        return document

    def wait_shown(self, leds: tuple[tuple[int, int, int, int], ...], ring: Any = None) -> None:
        ring = ring or self.ring
        wait_until(lambda: ring.shown == leds, what=f"the ring to show {leds[:2]}...")

    def refusals(self) -> list[str]:
        messages = self.rig.probe.on(f"{self.base}/everloop/status")
        return [json.loads(message.payload)["error"] for message in messages]


@pytest.fixture
def ring(request: pytest.FixtureRequest) -> Iterator[SimulatedEverloopDriver]:
    board = getattr(request, "param", "creator")
    with SimulatedEverloopDriver("127.0.0.1", free_port_block(4), board=board) as driver:
        yield driver


@pytest.fixture
def leds(rig: Rig, ring: SimulatedEverloopDriver) -> RingRig:
    return RingRig(rig, ring)


def wait_for_board(rig: Rig, base: str, board: str) -> None:
    def told() -> bool:
        info = json.loads(rig.probe.wait_for(f"{base}/bridge/info").payload)
        return bool(info["board"] == board)

    wait_until(told, what=f"board {board} in bridge/info")


def uniform(color: tuple[int, int, int, int], count: int = 35) -> tuple[Any, ...]:
    return (color,) * count


def test_the_board_is_found_from_the_ring_and_told_in_info(leds: RingRig) -> None:
    base = leds.start()
    probe = leds.rig.probe
    wait_for_board(leds.rig, base, "Creator")
    info = json.loads(probe.wait_for(f"{base}/bridge/info").payload)
    assert info["drivers"]["everloop"] == {"port": leds.ring.base_port, "alive": True}
    assert leds.ring.images == []  # nothing is shown before a command


@pytest.mark.parametrize("ring", ["voice"], indirect=True)
def test_a_voice_is_told_apart_by_its_18_leds(leds: RingRig) -> None:
    base = leds.start()
    probe = leds.rig.probe
    wait_for_board(leds.rig, base, "Voice")
    bridge = leds.rig.bridge
    assert bridge is not None
    ha = bridge.bridge.config.homeassistant
    device_topic = f"{ha.prefix}/device/{ha.node_id}/config"
    probe.subscribe(device_topic)
    wait_until(
        lambda: json.loads(probe.wait_for(device_topic).payload)["dev"]["model"] == "MATRIX Voice",
        what="the device's model to be the board found",
    )
    leds.command({"state": "ON", "color": RED})
    leds.wait_shown(uniform((255, 0, 0, 0), 18))
    leds.command({"leds": [[0, 0, 255, 0]] * 35})
    wait_until(leds.refusals, what="a refusal")
    assert "18" in leds.refusals()[0]


def test_colour_and_brightness_are_shown_and_published(leds: RingRig) -> None:
    leds.start()
    leds.command({"state": "ON", "color": RED})
    leds.wait_shown(uniform((255, 0, 0, 0)))
    leds.command({"brightness": 51})
    leds.wait_shown(uniform((51, 0, 0, 0)))
    wait_until(lambda: leds.state()["brightness"] == 51, what="brightness 51 published")
    assert leds.state() == {
        "state": "ON",
        "brightness": 51,
        "color_mode": "rgbw",
        "color": RED,
        "effect": None,
    }
    leds.command("OFF")
    leds.wait_shown(uniform(DARK))
    wait_until(lambda: leds.state()["state"] == "OFF", what="OFF published")
    message = leds.rig.probe.last(f"{leds.base}/everloop/state")
    assert message is not None and message.retain is False  # live; retained on resubscribe


def test_a_per_led_image_and_one_led(leds: RingRig) -> None:
    leds.start()
    image = [[index * 7, 0, 255 - index * 7, index] for index in range(35)]
    leds.command({"leds": image})
    leds.wait_shown(tuple(tuple(led) for led in image))
    leds.command({"led": 3, "color": [1, 2, 3, 4]})
    image[3] = [1, 2, 3, 4]
    leds.wait_shown(tuple(tuple(led) for led in image))
    wait_until(lambda: leds.state().get("leds") == image, what="the image in the state")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "JSON"),
        ({"state": "ON", "effect": "disco"}, "disco"),
        ({"state": "ON", "color": {"r": 256, "g": 0, "b": 0, "w": 0}}, "256"),
        ({"leds": [[0, 0, 0, 0]] * 18}, "35"),
        ({"led": 35, "color": [1, 1, 1, 1]}, "35"),
        ({"colour": RED}, "colour"),
    ],
)
def test_refused_commands_are_reported_and_nothing_is_sent(
    leds: RingRig, payload: str | dict[str, Any], reason: str
) -> None:
    base = leds.start()
    leds.command(payload)
    wait_until(leds.refusals, what="a refusal on everloop/status")
    (refusal,) = leds.refusals()
    assert refusal.startswith("everloop: ") and reason in refusal
    # Then a good command still works, and it is the first thing the driver received.
    leds.command({"state": "ON", "color": RED})
    leds.wait_shown(uniform((255, 0, 0, 0)))
    assert leds.ring.configs_received == 1
    assert leds.rig.probe.on(f"{base}/gpio/status") == []  # the ring's own status topic


def test_an_effect_runs_in_well_formed_frames_never_faster_than_fps(leds: RingRig) -> None:
    leds.start(everloop={"fps": 10})
    began = time.monotonic()
    leds.command({"state": "ON", "effect": "spin", "color": {"r": 0, "g": 0, "b": 255, "w": 0}})
    wait_until(lambda: len(leds.ring.images) >= 6, what="six frames")
    frames = leds.ring.images
    elapsed = time.monotonic() - began
    leds.command({"effect": "none"})
    leds.wait_shown(uniform((0, 0, 255, 0)))
    assert all(len(frame.leds) == 35 for frame in frames)
    assert all(0 <= value <= 255 for frame in frames for led in frame.leds for value in led)
    assert len({frame.leds for frame in frames[:6]}) == 6  # the arc moves at every frame
    # Counted, not timed: however late the frames land, no more than 10 a second were sent.
    assert len(frames) <= 10 * elapsed + 1
    wait_until(lambda: leds.state()["effect"] is None, what="the effect's end published")


def test_a_malos_restart_shows_the_image_again(leds: RingRig) -> None:
    leds.start()
    leds.command({"state": "ON", "color": RED, "brightness": 100})
    shown = uniform((100, 0, 0, 0))
    leds.wait_shown(shown)
    port = leds.ring.base_port
    leds.ring.stop()
    leds.rig.probe.wait_for(f"{leds.base}/malos/everloop/status", "offline")
    # GPIO is the bridge's own availability: the ring's absence does not take it offline.
    assert leds.rig.probe.last(f"{leds.base}/status").text == "online"  # type: ignore[union-attr]
    with SimulatedEverloopDriver("127.0.0.1", port) as restarted:
        leds.wait_shown(shown, ring=restarted)
        leds.rig.probe.wait_for(f"{leds.base}/malos/everloop/status", "online")


@pytest.mark.parametrize("on_stop", ["off", "keep"])
def test_on_stop_decides_what_the_ring_shows_after_a_clean_stop(
    leds: RingRig, on_stop: str
) -> None:
    leds.start(everloop={"on_stop": on_stop})
    leds.command({"state": "ON", "color": RED})
    leds.wait_shown(uniform((255, 0, 0, 0)))
    bridge = leds.rig.bridge
    assert bridge is not None
    bridge.stop()
    if on_stop == "off":
        leds.wait_shown(uniform(DARK))
        wait_until(lambda: leds.state()["state"] == "OFF", what="OFF published at stop")
    else:
        leds.rig.probe.wait_for(f"{leds.base}/status", "offline")
        assert leds.ring.shown == uniform((255, 0, 0, 0))
        assert leds.state()["state"] == "ON"


def test_a_new_run_shows_what_the_last_run_left_retained(leds: RingRig) -> None:
    base = leds.start(everloop={"on_stop": "keep"})
    leds.command({"state": "ON", "color": RED, "effect": "breathe"})
    wait_until(lambda: len(leds.ring.images) >= 3, what="the effect running")
    first = leds.rig.bridge
    assert first is not None
    first.stop()
    count = len(leds.ring.images)
    config = first.bridge.config
    leds.rig.start_bridge(config)  # the same base topic: the retained state is there
    wait_until(lambda: len(leds.ring.images) >= count + 3, what="the effect resumed")
    assert leds.state()["effect"] == "breathe"
    assert base == config.mqtt.base_topic


def test_commands_before_the_ring_answers_are_shown_once_it_does(
    rig: Rig,
) -> None:
    port = free_port_block(4)
    base = rig.start(PINS, malos={"everloop_port": port}, everloop={})
    rig.probe.publish(f"{base}/everloop/set", json.dumps({"state": "ON", "color": RED}))
    rig.probe.publish(f"{base}/everloop/set", json.dumps({"leds": [[1, 1, 1, 1]] * 35}))
    wait_until(lambda: rig.probe.on(f"{base}/everloop/status"), what="the leds refusal")
    with SimulatedEverloopDriver("127.0.0.1", port) as ring:
        wait_until(lambda: ring.shown == uniform((255, 0, 0, 0)), what="the colour shown")


def test_sensors_alone_ping_the_ring_for_the_board_but_make_no_light(
    rig: Rig, ring: SimulatedEverloopDriver
) -> None:
    base = rig.start(PINS, malos={"everloop_port": ring.base_port}, sensors={})
    rig.probe.wait_for(f"{base}/malos/everloop/status", "online")
    wait_for_board(rig, base, "Creator")
    rig.probe.publish(f"{base}/everloop/set", "ON")
    rig.probe.publish(f"{base}/gpio/0/set", "ON")
    rig.probe.wait_for(f"{base}/gpio/0/state", "ON")
    assert ring.images == []


def test_malformed_ring_updates_are_reported_once_while_they_keep_coming(rig: Rig) -> None:
    port = free_port_block(4)
    context = zmq.Context.instance()
    sockets = [context.socket(kind) for kind in (zmq.PULL, zmq.PULL, zmq.PUB, zmq.XPUB)]
    try:
        for offset, socket in enumerate(sockets):
            socket.setsockopt(zmq.LINGER, 0)
            socket.bind(f"tcp://127.0.0.1:{port + offset}")
        updates = sockets[3]
        base = rig.start(PINS, malos={"everloop_port": port}, everloop={})
        assert updates.poll(10_000), "the bridge never subscribed to the ring's updates"
        updates.recv()  # its subscription

        def send(frames: list[bytes]) -> None:
            for frame in frames:
                updates.send(frame)
                time.sleep(0.02)  # a pace for the driver's updates, not a wait for the bridge

        valid = EverloopImage(everloop_length=35).SerializeToString()
        send([b"\x80"] * 5 + [valid] + [b"\x80"] * 5 + [valid])
        rig.probe.wait_for(f"{base}/malos/everloop/status", "online")
        text = "malformed update from the MALOS Everloop driver"
        wait_until(
            lambda: len([e for e in rig.errors(base) if text in e["error"]]) >= 2,
            what="two reports",
        )
        reports = [e for e in rig.errors(base) if text in e["error"]]
        assert len(reports) == 2  # once per run of bad updates
    finally:
        for socket in sockets:
            socket.close(0)
