"""Many boards on one broker: N bridges (20 by default) against N simulated boards.

Run it from the checkout (not part of the test suite):

    .venv/bin/python benchmarks/scale.py [--boards 20] [--idle 30] [--report out.md]

It starts one Mosquitto on a free port of 127.0.0.1, N simulated MALOS GPIO drivers in this
process (threads, each on its own block of four ports, each with its own `Board`) and N bridges
as subprocesses (`python -m mqtt_gpio_bridge run`), board NN with `base_topic: matrix/boardNN`,
`node_id: matrix_boardNN`, 16 pins (0..7 outputs, 8..15 inputs) and discovery on under one
shared prefix. Then it checks that

* every bridge reports `online`;
* every pin of every board is discovered exactly once: one retained config per unique id,
  N x 16 in all, each published once, with N distinct devices of 16 entities each;
* a command to one board's pin changes that board's simulated pin and no other board's (all
  N boards' levels are compared before and after), and an input flipped on one board shows
  up on that board's state topic only;
* the bridges then idle for `--idle` seconds: their summed CPU time (utime + stime from
  /proc, as % of one core) and their memory (VmRSS);
* on SIGTERM every bridge exits 0 and leaves a retained `offline`.

It prints a markdown table and exits 1 if any check failed. Everything stays on 127.0.0.1;
logs and configs stay in the `/tmp/mqtt-gpio-scale-*` directory the report names.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from common import BenchmarkError
from common.bridge import bridge_argv
from common.facts import ROOT, cpu_model, mosquitto_version
from common.mosquitto import NOT_PERSISTED, Mosquitto, mosquitto_missing
from common.ports import HOST, wait_for
from common.processes import TICKS, cpu_ticks, end_process, maps_library, status_kb
from scale_mqtt import STEP_TIMEOUT, Recorder, ScaleError, read_retained, reserve_ports

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

PINS = 16
OUTPUTS = range(8)
INPUTS = range(8, 16)
START_TIMEOUT = 90.0
"""Seconds for all bridges to be online with every state and discovery config published."""
SETTLE = 0.5
"""Seconds to wait after a change before comparing every board (5 driver updates)."""


# -- the run ---------------------------------------------------------------------------------


@dataclass
class BoardUnderTest:
    number: int
    driver: SimulatedDriver
    config_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"board{self.number:02d}"

    @property
    def base_topic(self) -> str:
        return f"matrix/{self.name}"

    @property
    def node_id(self) -> str:
        return f"matrix_{self.name}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def state_topic(self, pin: int) -> str:
        return f"{self.base_topic}/gpio/{pin}/state"

    def level(self, pin: int) -> int:
        return (self.driver.board.levels() >> pin) & 1


def component(pin: int) -> str:
    return "switch" if pin in OUTPUTS else "binary_sensor"


def level_is(board: BoardUnderTest, pin: int, level: int) -> Callable[[], bool]:
    return lambda: board.level(pin) == level


def state_is(recorder: Recorder, topic: str, payload: str) -> Callable[[], bool]:
    def check() -> bool:
        message = recorder.last(topic)
        return message is not None and message.text == payload

    return check


@dataclass
class Results:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append((name, passed, detail))
        print(f"[{'ok' if passed else 'FAILED'}] {name}{': ' + detail if detail else ''}")
        return passed

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.checks)


class Scale:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-scale-"))
        self.ports: set[int] = set()
        self.broker_port = reserve_ports(1, self.ports)
        self.broker: subprocess.Popen[bytes] | None = None
        self.boards: list[BoardUnderTest] = []
        self.recorder: Recorder | None = None
        self.results = Results()

    # -- setup ---------------------------------------------------------------------------

    def start_broker(self) -> None:
        mosquitto = Mosquitto(self.broker_port, self.workdir, NOT_PERSISTED, ScaleError)
        mosquitto.start()
        self.broker = mosquitto.process

    def board_config(self, number: int, malos_port: int) -> dict[str, Any]:
        name = f"board{number:02d}"
        pins: list[dict[str, Any]] = [
            {"pin": pin, "mode": "output", "name": f"{name} out {pin}", "initial": "off"}
            for pin in OUTPUTS
        ]
        pins += [{"pin": pin, "mode": "input", "name": f"{name} in {pin}"} for pin in INPUTS]
        return {
            "mqtt": {"host": HOST, "port": self.broker_port, "base_topic": f"matrix/{name}"},
            "malos": {
                "host": HOST,
                "base_port": malos_port,
                "update_interval": self.args.update_interval,
            },
            "homeassistant": {
                "discovery": True,
                # Per-entity configs: the checks below count one retained config per pin.
                "discovery_mode": "entity",
                "prefix": self.args.prefix,
                "node_id": f"matrix_{name}",
                "device_name": f"MATRIX GPIO {name}",
            },
            "pins": pins,
        }

    def start_boards(self) -> None:
        for number in range(1, self.args.boards + 1):
            malos_port = reserve_ports(4, self.ports)
            driver = SimulatedDriver(HOST, malos_port, Board()).start()
            path = self.workdir / f"board{number:02d}.yaml"
            path.write_text(yaml.safe_dump(self.board_config(number, malos_port)))
            self.boards.append(BoardUnderTest(number, driver, path))

    def start_bridges(self) -> float:
        environment = dict(os.environ, PYTHONPATH=str(ROOT))
        started = time.monotonic()
        for board in self.boards:
            with (self.workdir / f"{board.name}.log").open("wb") as log:
                board.process = subprocess.Popen(
                    bridge_argv(board.config_path, log_level=None),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    env=environment,
                )
        return started

    def alive(self) -> None:
        dead = [b.name for b in self.boards if b.process is None or b.process.poll() is not None]
        if dead:
            raise ScaleError(f"bridge process(es) died: {', '.join(dead)}; see {self.workdir}")

    # -- checks --------------------------------------------------------------------------

    def wait_started(self, started: float) -> None:
        recorder = self.recorder
        assert recorder is not None
        statuses = [f"{b.base_topic}/status" for b in self.boards]
        states = [b.state_topic(pin) for b in self.boards for pin in range(PINS)]
        expected_configs = len(self.boards) * PINS

        def online() -> bool:
            self.alive()
            return all(
                (m := recorder.last(topic)) is not None and m.text == "online" for topic in statuses
            )

        wait_for(online, START_TIMEOUT, "every bridge online")
        all_online = time.monotonic() - started

        def states_seen() -> bool:
            self.alive()
            seen = {m.topic for m in recorder.snapshot()}
            return all(topic in seen for topic in states)

        def configs_seen() -> bool:
            prefix = f"{self.args.prefix}/"
            configs = {m.topic for m in recorder.snapshot() if m.topic.startswith(prefix)}
            return len(configs) >= expected_configs

        wait_for(states_seen, START_TIMEOUT, "every pin state")
        # Fewer configs than pins is a finding for check_discovery to detail, not a stop.
        with contextlib.suppress(BenchmarkError):
            wait_for(configs_seen, STEP_TIMEOUT, "every discovery config")
        self.results.numbers["time until all online"] = f"{all_online:.1f} s"
        self.results.check(
            "every board online", True, f"{len(statuses)} of {len(statuses)} `online`"
        )

    def check_discovery(self) -> None:
        recorder = self.recorder
        assert recorder is not None
        prefix = self.args.prefix
        retained = read_retained(self.broker_port, f"{prefix}/#")
        payloads = {topic: json.loads(payload) for topic, payload in retained.items()}
        expected_topics = {
            f"{prefix}/{component(pin)}/{b.node_id}/gpio{pin}/config"
            for b in self.boards
            for pin in range(PINS)
        }
        total = len(self.boards) * PINS
        self.results.check(
            "retained configs are exactly the expected ones",
            set(payloads) == expected_topics,
            f"{len(payloads)} retained, {total} expected, "
            f"{len(set(payloads) - expected_topics)} unexpected, "
            f"{len(expected_topics - set(payloads))} missing",
        )
        unique_ids = Counter(p.get("unique_id") for p in payloads.values())
        duplicates = sorted(u for u, n in unique_ids.items() if n > 1)
        self.results.check(
            "one retained config per unique_id",
            len(unique_ids) == total and not duplicates,
            f"{len(unique_ids)} distinct unique_ids, duplicates: {duplicates or 'none'}",
        )
        devices: dict[tuple[str, ...], set[str]] = defaultdict(set)
        wrong_board = []
        for topic, payload in payloads.items():
            node = topic.split("/")[-3]
            devices[tuple(payload["device"]["identifiers"])].add(node)
            if not payload["state_topic"].startswith(f"matrix/{node.removeprefix('matrix_')}/"):
                wrong_board.append(topic)
        entities_per_device = Counter(tuple(p["device"]["identifiers"]) for p in payloads.values())
        self.results.check(
            "device identifiers distinct, 16 entities each",
            len(devices) == len(self.boards)
            and all(len(nodes) == 1 for nodes in devices.values())
            and set(entities_per_device.values()) == {PINS},
            f"{len(devices)} devices, entities per device: "
            f"{sorted(set(entities_per_device.values()))}",
        )
        self.results.check(
            "each entity's state topic is its own board's",
            not wrong_board,
            f"{len(wrong_board)} wrong",
        )
        published = Counter(
            m.topic for m in recorder.snapshot() if m.topic in expected_topics and m.payload
        )
        repeated = {t: n for t, n in published.items() if n != 1}
        self.results.check(
            "each config published once",
            len(published) == total and not repeated,
            f"{sum(published.values())} publications of {len(published)} topics"
            + (f", repeated: {sorted(repeated.items())[:5]}" if repeated else ""),
        )

    def levels(self) -> list[int]:
        return [b.driver.board.levels() for b in self.boards]

    def check_commands(self) -> None:
        recorder = self.recorder
        assert recorder is not None
        latencies: list[float] = []
        leaks: list[str] = []
        for board in self.boards:
            pin = OUTPUTS[(board.number - 1) % len(OUTPUTS)]
            for payload, level in (("ON", 1), ("OFF", 0)):
                before = self.levels()
                sent = time.monotonic()
                recorder.publish(f"{board.base_topic}/gpio/{pin}/set", payload)
                wait_for(
                    level_is(board, pin, level),
                    STEP_TIMEOUT,
                    f"{board.name} pin {pin} = {level}",
                    poll=0.001,
                )
                latencies.append(time.monotonic() - sent)
                topic = board.state_topic(pin)
                wait_for(state_is(recorder, topic, payload), STEP_TIMEOUT, f"{topic} = {payload}")
                time.sleep(SETTLE)
                after = self.levels()
                for index, (old, new) in enumerate(zip(before, after, strict=True)):
                    wanted = old
                    if index == board.number - 1:
                        wanted = (old & ~(1 << pin)) | (level << pin)
                    if new != wanted:
                        leaks.append(
                            f"{payload} to {board.name} pin {pin}: board{index + 1:02d} "
                            f"{old:016b} -> {new:016b}"
                        )
        commands = 2 * len(self.boards)
        self.results.check(
            "a command changes only its own board",
            not leaks,
            f"{commands} commands, all {len(self.boards)} boards compared after each; "
            + (f"leaks: {leaks[:3]}" if leaks else "no other board changed"),
        )
        self.results.numbers["command -> simulated pin (median / max)"] = (
            f"{statistics.median(latencies) * 1000:.0f} / {max(latencies) * 1000:.0f} ms"
        )

    def check_inputs(self) -> None:
        recorder = self.recorder
        assert recorder is not None
        leaks: list[str] = []
        for board in self.boards:
            pin = INPUTS[(board.number - 1) % len(INPUTS)]
            for level, payload in ((1, "ON"), (0, "OFF")):
                mark = time.monotonic()
                board.driver.set_input(pin, level)
                topic = board.state_topic(pin)
                wait_for(state_is(recorder, topic, payload), STEP_TIMEOUT, f"{topic} = {payload}")
                time.sleep(SETTLE)
                leaks += [
                    f"{m.topic} {m.text}"
                    for m in recorder.snapshot()
                    if m.at >= mark
                    and "/gpio/" in m.topic
                    and m.topic.endswith("/state")
                    and m.topic != board.state_topic(pin)
                ]
        self.results.check(
            "an input shows up on its own board's topic only",
            not leaks,
            f"{2 * len(self.boards)} input changes; "
            + (f"other state messages: {leaks[:3]}" if leaks else "no other state message"),
        )

    def measure_idle(self) -> None:
        recorder = self.recorder
        assert recorder is not None and self.broker is not None
        time.sleep(2.0)
        self.alive()
        pids = [b.pid for b in self.boards]
        load_before = os.getloadavg()
        start = time.monotonic()
        ticks_before = [cpu_ticks(pid) for pid in pids]
        broker_before = cpu_ticks(self.broker.pid)
        own_before = resource.getrusage(resource.RUSAGE_SELF)
        messages_before = len(recorder.snapshot())
        time.sleep(self.args.idle)
        ticks_after = [cpu_ticks(pid) for pid in pids]
        broker_after = cpu_ticks(self.broker.pid)
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        elapsed = time.monotonic() - start
        messages = len(recorder.snapshot()) - messages_before
        self.alive()

        def percent(ticks: float) -> float:
            return ticks / TICKS / elapsed * 100

        per_bridge = [percent(a - b) for a, b in zip(ticks_after, ticks_before, strict=True)]
        rss = [status_kb(pid, "VmRSS") for pid in pids]
        peak = [status_kb(pid, "VmHWM") for pid in pids]
        # RSS counts the pages of shared libraries once per process; PSS shares them out.
        pss = [status_kb(pid, "Pss", "smaps_rollup") for pid in pids]
        own = (own_after.ru_utime + own_after.ru_stime) - (
            own_before.ru_utime + own_before.ru_stime
        )
        numbers = self.results.numbers
        numbers["idle window"] = f"{elapsed:.1f} s"
        numbers["bridges' CPU, total (% of one core)"] = f"{sum(per_bridge):.1f} %"
        numbers["bridge CPU, average / max (% of one core)"] = (
            f"{statistics.mean(per_bridge):.2f} / {max(per_bridge):.2f} %"
        )
        numbers["bridges' RSS, total"] = f"{sum(rss) / 1024:.0f} MiB"
        numbers["bridge RSS, average / max"] = (
            f"{statistics.mean(rss) / 1024:.1f} / {max(rss) / 1024:.1f} MiB"
        )
        numbers["bridge peak RSS (VmHWM), max"] = f"{max(peak) / 1024:.1f} MiB"
        numbers["bridges' PSS, total (shared pages split)"] = f"{sum(pss) / 1024:.0f} MiB"
        numbers["Mosquitto CPU (% of one core)"] = f"{percent(broker_after - broker_before):.2f} %"
        numbers["simulators + recorder, this process (% of one core)"] = (
            f"{own / elapsed * 100:.1f} %"
        )
        numbers["MQTT messages received while idle"] = str(messages)
        numbers["load average before / after (1 min)"] = (
            f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f}"
        )
        ctypes_loaded = [b.name for b in self.boards if maps_library(b.pid, "_ctypes")]
        numbers["bridges with _ctypes mapped"] = str(len(ctypes_loaded))

    def stop_bridges(self) -> None:
        codes = {b.name: end_process(b.process) for b in self.boards if b.process is not None}
        bad = {name: code for name, code in codes.items() if code != 0}
        self.results.check(
            "every bridge exits 0 on SIGTERM", not bad, f"exit statuses not 0: {bad or 'none'}"
        )
        retained = read_retained(self.broker_port, "matrix/+/status", quiet=0.5)
        offline = [t for t, p in retained.items() if p == b"offline"]
        self.results.check(
            "every board left `offline`",
            len(offline) == len(self.boards),
            f"{len(offline)} of {len(self.boards)}",
        )

    # -- whole run -----------------------------------------------------------------------

    def run(self) -> None:
        self.start_broker()
        self.start_boards()
        self.recorder = Recorder(
            self.broker_port,
            [f"{self.args.prefix}/#", "matrix/+/status", "matrix/+/gpio/+/state"],
        )
        started = self.start_bridges()
        self.wait_started(started)
        self.check_discovery()
        self.check_commands()
        self.check_inputs()
        self.measure_idle()
        self.stop_bridges()

    def cleanup(self) -> None:
        for board in self.boards:
            if board.process is not None:
                end_process(board.process)
            board.driver.stop()
        if self.recorder is not None:
            self.recorder.close()
        if self.broker is not None:
            end_process(self.broker)


def machine_facts() -> dict[str, str]:
    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu_model() or platform.machine(),
        "Python": platform.python_version(),
        "Mosquitto": mosquitto_version(),
    }


def report(scale: Scale, outcome: str) -> str:
    args = scale.args
    lines = [
        f"## {args.boards} bridges, one Mosquitto ({outcome})",
        "",
        f"{args.boards} bridge processes, each with 16 pins (8 outputs, 8 inputs), its own "
        f"simulated board (threads of the benchmark process) and discovery under "
        f"`{args.prefix}/`; driver updates every {args.update_interval:g} s.",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in machine_facts().items()]
    lines += [f"| {key} | {value} |" for key, value in scale.results.numbers.items()]
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    lines += [
        f"| {name} | {'ok' if passed else '**FAILED**'} | {detail} |"
        for name, passed, detail in scale.results.checks
    ]
    lines += ["", f"Logs and configs: `{scale.workdir}`", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=20, help="boards and bridges (20)")
    parser.add_argument("--idle", type=float, default=30.0, help="idle window, seconds (30)")
    parser.add_argument("--prefix", default="homeassistant", help="discovery prefix")
    parser.add_argument(
        "--update-interval", type=float, default=0.1, help="malos.update_interval (0.1)"
    )
    parser.add_argument("--report", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    if not 1 <= args.boards <= 99:
        parser.error("--boards must be 1..99")
    if mosquitto_missing():
        return 2
    scale = Scale(args)
    outcome = "passed"
    try:
        scale.run()
    except BenchmarkError as exc:
        scale.results.check("run completed", False, str(exc))
    finally:
        scale.cleanup()
    if not scale.results.passed:
        outcome = "FAILED"
    text = report(scale, outcome)
    print()
    print(text)
    if args.report:
        args.report.write_text(text)
    return 0 if scale.results.passed else 1


if __name__ == "__main__":
    sys.exit(main())
