"""The bridge beside Home Assistant: MALOS on another machine, here a network namespace.

The simulated driver runs in its own network namespace, joined to this one by a veth pair, so
the bridge reaches it over a real (virtual) link at the board's own address, as a bridge on the
Home Assistant host reaches a board across the LAN. A "power cut" takes the board's end of the
link down first, so that nothing the board's kernel would send on closing its sockets (FIN,
RST) gets out, then deletes the namespace with everything in it: what a board that loses power
or reboots leaves the bridge with.

The addresses come from 198.18.0.0/15, the range set aside for benchmarking test networks
(RFC 2544): never a network of the machine's own. Needs root and iproute2's `ip`.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqtt_gpio_bridge.config import BridgeConfig
from tests.helpers import (
    BridgeThread,
    Broker,
    Cli,
    MqttProbe,
    bridge_config,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None,
    reason="needs root, iproute2's `ip` and `nft` for a network namespace (CI has them)",
)

FIREWALL = Path(__file__).parent.parent / "deploy" / "malos-firewall.nft"

GPIO_PORT = 20049
"""MALOS's GPIO driver's first port, inside the firewall's range."""

BOOT = 30.0
"""Seconds a board may take to be served again once it is back (the bridge's part of it)."""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class RemoteBoard:
    """A simulated board in its own network namespace, at `address` across a veth link."""

    def __init__(self, malos_port: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.namespace = f"mgb-board-{tag}"
        self.host_end, self.board_end = f"mgbh{tag}", f"mgbb{tag}"
        subnet = f"198.18.{random.randrange(256)}"
        self.host_address, self.address = f"{subnet}.1", f"{subnet}.2"
        self.other_address = f"{subnet}.3"
        """Another machine on the board's network (an address of this namespace's end)."""
        self.malos_port = malos_port
        self.simulator: Cli | None = None
        self.started: list[Cli] = []

    def power_on(self) -> None:
        """Make the namespace and the link, and start the simulated MALOS on every interface."""
        ip("netns", "add", self.namespace)
        ip("link", "add", self.host_end, "type", "veth", "peer", "name", self.board_end)
        ip("link", "set", self.board_end, "netns", self.namespace)
        ip("addr", "add", f"{self.host_address}/29", "dev", self.host_end)
        ip("addr", "add", f"{self.other_address}/29", "dev", self.host_end)
        ip("link", "set", self.host_end, "up")
        ip("-n", self.namespace, "addr", "add", f"{self.address}/29", "dev", self.board_end)
        ip("-n", self.namespace, "link", "set", self.board_end, "up")
        ip("-n", self.namespace, "link", "set", "lo", "up")
        self.simulator = Cli(
            ["simulate", "--host", "0.0.0.0", "--base-port", str(self.malos_port)],
            stdin=True,
            wrapper=["ip", "netns", "exec", self.namespace],
        )
        self.started.append(self.simulator)
        self.simulator.wait_for_line(f"on 0.0.0.0:{self.malos_port}")

    def power_cut(self) -> None:
        """Gone without a word: link down first, then the driver and the namespace."""
        ip("-n", self.namespace, "link", "set", self.board_end, "down")
        assert self.simulator is not None
        self.simulator.kill()
        ip("link", "delete", self.host_end)  # both ends, at once (the namespace goes lazily)
        ip("netns", "delete", self.namespace)

    def firewall(self, bridge_address: str) -> str:
        """Load deploy/malos-firewall.nft on the board for `bridge_address`; the rules in force."""
        example = "define BRIDGE = 192.168.1.10"
        rules = FIREWALL.read_text()
        assert example in rules, f"{FIREWALL} no longer has {example!r}: update this test"
        rules = rules.replace(example, f"define BRIDGE = {bridge_address}")
        on_board = ["ip", "netns", "exec", self.namespace, "nft"]
        subprocess.run([*on_board, "-f", "-"], input=rules, text=True, check=True)
        listed = subprocess.run(
            [*on_board, "list", "table", "inet", "malos_guard"],
            capture_output=True,
            text=True,
            check=True,
        )
        return listed.stdout

    def reachable_from(self, source: str) -> bool:
        """Whether a TCP connection from `source` to the driver's keep-alive port opens."""
        with socket.socket() as client:
            client.bind((source, 0))
            client.settimeout(1.0)  # a dropped SYN is never answered
            try:
                client.connect((self.address, self.malos_port + 1))
            except OSError:
                return False
            return True

    def type(self, line: str) -> None:
        """A console line to the simulated driver, as if someone pressed a button."""
        assert self.simulator is not None
        self.simulator.type(line)

    def wait_for_pin(self, row: str) -> None:
        """Ask the driver for its pins (`show`) until one of the rows reads `row`."""
        assert self.simulator is not None
        simulator = self.simulator

        def shown() -> bool:
            simulator.stdout.clear()
            simulator.type("show")
            try:
                simulator.wait_for_line("pin 15", timeout=2)
            except pytest.fail.Exception:
                return False
            return any(line.rstrip("\n") == row for line in list(simulator.stdout))

        wait_until(shown, BOOT, f"{row!r} in the simulated driver's `show`")

    def close(self) -> None:
        for process in self.started:
            process.kill()
        subprocess.run(["ip", "netns", "delete", self.namespace], capture_output=True, check=False)


@pytest.fixture
def board() -> Iterator[RemoteBoard]:
    remote = RemoteBoard(GPIO_PORT)  # the board's own network: MALOS's ports are free there
    remote.power_on()
    yield remote
    remote.close()
    for process in remote.started:  # shown by pytest only when the test failed
        print(f"--- {process}:\n{process.transcript()}")


def remote_config(broker: Broker, board: RemoteBoard) -> BridgeConfig:
    pins = [{"pin": 0, "mode": "output"}, {"pin": 3, "mode": "input"}]
    return bridge_config(broker, board.malos_port, pins, malos={"host": board.address})


def start_online(
    broker: Broker,
    probe: MqttProbe,
    board: RemoteBoard,
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> str:
    """Start a bridge for the remote board, wait until it is online; its base topic."""
    config = remote_config(broker, board)
    base = config.mqtt.base_topic
    probe.subscribe(f"{base}/#")
    start_bridge(config)
    probe.wait_for(f"{base}/status", "online")
    return base


def check_served(
    probe: MqttProbe, board: RemoteBoard, base: str, output: str, input_level: str
) -> None:
    """A command changes output 0 on the remote board; a change of its input 3 reaches MQTT."""
    probe.clear()
    probe.publish(f"{base}/gpio/0/set", output)
    probe.wait_for(f"{base}/gpio/0/state", output)  # read back from the driver's update
    board.type(f"3 {input_level.lower()}")
    probe.wait_for(f"{base}/gpio/3/state", input_level)


def test_the_firewall_lets_only_the_bridge_machine_reach_malos(board: RemoteBoard) -> None:
    assert board.reachable_from(board.other_address)
    board.firewall(board.host_address)
    assert board.reachable_from(board.host_address)
    assert not board.reachable_from(board.other_address)
    # Loading the file again replaces its rules instead of adding a second set.
    assert board.firewall(board.host_address).count("drop") == 1
    assert not board.reachable_from(board.other_address)


def test_a_board_across_the_network_is_served(
    broker: Broker,
    probe: MqttProbe,
    board: RemoteBoard,
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> None:
    board.firewall(board.host_address)
    base = start_online(broker, probe, board, start_bridge)
    check_served(probe, board, base, "ON", "ON")
    check_served(probe, board, base, "OFF", "OFF")


def test_a_board_that_loses_power_is_served_again_when_it_is_back(
    broker: Broker,
    probe: MqttProbe,
    board: RemoteBoard,
    start_bridge: Callable[[BridgeConfig], BridgeThread],
) -> None:
    """No FIN, no RST: the bridge's connections to the old board are left open on its side."""
    base = start_online(broker, probe, board, start_bridge)
    check_served(probe, board, base, "ON", "ON")

    board.power_cut()
    probe.wait_for(f"{base}/status", "offline")
    probe.clear()
    board.power_on()
    probe.wait_for(f"{base}/status", "online", timeout=BOOT)
    # The rebooted driver starts with every pin an input; the bridge restores its output.
    board.wait_for_pin("pin  0 output high")
    probe.wait_for(f"{base}/gpio/3/state", "OFF")  # the new boot's input, read
    check_served(probe, board, base, "OFF", "ON")
