"""Smoke test of an installed bridge: Mosquitto, the simulated board and `mqtt-gpio-bridge run`.

    python scripts/smoke.py --bridge /opt/mqtt-gpio-bridge/bin/mqtt-gpio-bridge

Run it with a Python that has this package with the `sim` extra and paho-mqtt (the simulator
runs from it); the bridge under test is the `--bridge` entry point, so that what a board
install put there is what runs. It starts a Mosquitto on a free loopback port, the simulator on
four free ports and the bridge, then checks that the bridge says `online`, that a `set` ON
reaches the simulated pin, that an input driven on the simulator shows up as a state, and that
SIGTERM leaves `offline`. It prints one JSON line (start-up time, the bridge's resident memory)
and exits 1 with the reason on any failure. Everything it started is stopped, on failure too.
scripts/board-emulation.sh runs it inside the ARM roots; it runs on any Linux machine as well.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt

BASE = "smoke"  # mqtt.base_topic of the config under test
INPUT_PIN = 3
OUTPUT_PIN = 0


class SmokeFailure(Exception):
    """A check failed; the message says which and what was seen."""


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds, or fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SmokeFailure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int) -> int:
    """The first of `count` consecutive free ports (the simulator binds four)."""
    for _ in range(200):
        first = free_port()
        if first + count <= 65535 and all(port_is_free(first + i) for i in range(count)):
            return first
    raise SmokeFailure(f"found no {count} consecutive free ports")


def accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class LineReader:
    """Collects a child's output lines in a thread, so they can be awaited with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, predicate: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SmokeFailure(f"timed out after {timeout:.0f} s waiting for {what}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):
                return line


class Probe:
    """An MQTT client that keeps the last payload of every topic under the bridge's base."""

    def __init__(self, port: int) -> None:
        self.latest: dict[str, str] = {}
        self.first_seen: dict[tuple[str, str], float] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="smoke-probe")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{BASE}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload.decode(errors="replace")
        self.first_seen.setdefault((message.topic, payload), time.monotonic())
        self.latest[message.topic] = payload

    def wait_payload(self, topic: str, payload: str, timeout: float) -> float:
        """Wait until `topic` reads `payload`; return when that payload first arrived."""
        wait_for(
            lambda: self.latest.get(topic) == payload,
            timeout,
            f"{topic} = {payload} (last seen: {self.latest.get(topic)!r})",
        )
        return self.first_seen[(topic, payload)]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it lingers: nothing started here outlives the script."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_mosquitto(stack: contextlib.ExitStack, mosquitto: str, workdir: Path) -> int:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = (workdir / "mosquitto.log").open("w")
    stack.callback(log.close)
    process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
    stack.callback(stop_process, process)
    wait_for(lambda: accepts_connections(port), 20, f"Mosquitto on port {port}")
    return port


def start_simulator(
    stack: contextlib.ExitStack, base_port: int, timeout: float
) -> tuple[subprocess.Popen[str], LineReader]:
    # The simulator comes from this Python (it has the `sim` extra), not from the install
    # under test, which a board keeps without protobuf.
    command = [sys.executable, "-m", "mqtt_gpio_bridge", "simulate", "--base-port", str(base_port)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    stack.callback(stop_process, process)
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    reader.wait_line(
        lambda line: line.startswith("simulated MALOS GPIO driver on"),
        timeout,
        "the simulator's start line",
    )
    return process, reader


def type_into(simulator: subprocess.Popen[str], line: str) -> None:
    assert simulator.stdin is not None
    simulator.stdin.write(line + "\n")
    simulator.stdin.flush()


def simulated_level(simulator: subprocess.Popen[str], reader: LineReader, pin: int) -> str:
    """The simulator's own view of a pin (`show`), e.g. "output high"."""
    type_into(simulator, "show")
    prefix = f"pin {pin:2d} "
    line = reader.wait_line(lambda text: text.startswith(prefix), 10, f"`show` row of pin {pin}")
    return " ".join(line[len(prefix) :].split())


def write_config(path: Path, mqtt_port: int, base_port: int) -> None:
    path.write_text(
        f"""\
mqtt:
  host: 127.0.0.1
  port: {mqtt_port}
  base_topic: {BASE}
malos:
  host: 127.0.0.1
  base_port: {base_port}
homeassistant:
  node_id: smoke_board
pins:
  - pin: {OUTPUT_PIN}
    mode: output
    name: Relay
    initial: "off"
  - pin: {INPUT_PIN}
    mode: input
    name: Button
"""
    )


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SmokeFailure(f"no VmRSS in /proc/{pid}/status")


def run_checks(args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    with contextlib.ExitStack() as stack:
        mqtt_port = start_mosquitto(stack, args.mosquitto, workdir)
        base_port = free_port_block(4)
        simulator, sim_output = start_simulator(stack, base_port, args.timeout)
        probe = Probe(mqtt_port)
        stack.callback(probe.close)
        config = workdir / "config.yaml"
        write_config(config, mqtt_port, base_port)

        bridge_log = (workdir / "bridge.log").open("w")
        stack.callback(bridge_log.close)
        results["bridge_log"] = str(workdir / "bridge.log")
        started = time.monotonic()
        bridge = subprocess.Popen(
            [args.bridge, "run", "--config", str(config)], stdout=bridge_log, stderr=bridge_log
        )
        stack.callback(stop_process, bridge)

        online_at = probe.wait_payload(f"{BASE}/status", "online", args.timeout)
        results["startup_ms"] = round((online_at - started) * 1000)
        # Let imports and the first discovery burst settle before reading the footprint.
        time.sleep(1.0)
        results["rss_kib"] = vm_rss_kib(bridge.pid)

        probe.publish(f"{BASE}/gpio/{OUTPUT_PIN}/set", "ON")
        probe.wait_payload(f"{BASE}/gpio/{OUTPUT_PIN}/state", "ON", args.timeout)
        wait_for(
            lambda: simulated_level(simulator, sim_output, OUTPUT_PIN) == "output high",
            args.timeout,
            f"the simulator's pin {OUTPUT_PIN} to be an output driven high",
        )
        results["checks"].append("set ON reached the simulated pin")

        type_into(simulator, f"{INPUT_PIN} on")
        probe.wait_payload(f"{BASE}/gpio/{INPUT_PIN}/state", "ON", args.timeout)
        results["checks"].append("an input driven on the simulator became state ON")

        bridge.send_signal(signal.SIGTERM)
        try:
            code = bridge.wait(args.timeout)
        except subprocess.TimeoutExpired as exc:
            raise SmokeFailure("the bridge did not stop after SIGTERM") from exc
        if code != 0:
            raise SmokeFailure(f"the bridge exited {code} after SIGTERM, not 0")
        probe.wait_payload(f"{BASE}/status", "offline", args.timeout)
        results["checks"].append("SIGTERM: exit 0 and status offline")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bridge",
        default=shutil.which("mqtt-gpio-bridge"),
        help="the installed mqtt-gpio-bridge command to test (default: the one on PATH)",
    )
    parser.add_argument(
        "--mosquitto",
        default=shutil.which("mosquitto") or "/usr/sbin/mosquitto",
        help="the Mosquitto binary (default: on PATH, else /usr/sbin/mosquitto)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each step (default 60)"
    )
    return parser.parse_args()


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mgb-smoke-") as name:
        yield Path(name)


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {
        "ok": False,
        "machine": platform.machine(),
        "bridge": args.bridge,
        "checks": [],
    }
    if not args.bridge or not Path(args.bridge).exists():
        print(f"smoke: no bridge command at {args.bridge!r} (use --bridge)", file=sys.stderr)
        return 2
    with scratch_dir() as workdir:
        try:
            run_checks(args, workdir, results)
        except (SmokeFailure, OSError, subprocess.SubprocessError) as exc:
            results["error"] = str(exc)
            log = workdir / "bridge.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-20:]
                print("smoke: the bridge's last log lines:", *tail, sep="\n  ", file=sys.stderr)
            print(f"smoke: FAILED: {exc}", file=sys.stderr)
        else:
            results["ok"] = True
        results.pop("bridge_log", None)
    print(json.dumps(results), flush=True)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
