"""Instructions benchmark: the bridge's CPU cost in instructions, counted by callgrind.

Run it from the checkout (not part of the test suite; needs `mosquitto` and `valgrind` on the
PATH):

    .venv/bin/python benchmarks/instructions.py                   # the working tree
    .venv/bin/python benchmarks/instructions.py --compare HEAD~1  # that commit, then the tree
    .venv/bin/python benchmarks/instructions.py --bridge-ref HEAD # the committed bridge only

Wall-clock CPU shares move by +-20 % on a loaded machine; the number of instructions a process
executes does not, so this benchmark counts them: the bridge runs under valgrind's callgrind
(`valgrind --tool=callgrind --instr-atstart=no`), with collection off except during a phase
(`callgrind_control -i on|off PID`), and each phase dumped on its own (`callgrind_control -d
PID`); the `totals:` line of a dump is the instructions of every thread of the bridge in that
phase (Python, paho, pyzmq and libzmq's own threads included). The same code measured twice
gives the same figures within a few tenths of a percent, whatever else the machine does.

Each measurement starts its own Mosquitto (`common.mosquitto`, a free port on 127.0.0.1), the
simulated MALOS driver (`python -m mqtt_gpio_bridge simulate`, inputs driven by `<pin> on` /
`<pin> off` on its stdin) and the bridge (`common.bridge.bridge_config`: pins 0..7 outputs with
`initial: "off"`, 8..15 inputs, QoS 1, driver updates every 0.05 s, discovery on; command line
from `common.bridge.bridge_argv`). The simulator always comes from the working tree, also when
another commit's bridge is measured, so that the driver side is the same for both; the
bridge's config file is one both read the same way. Once the bridge says `online` and every
pin's retained state is `OFF`, a warm-up of up to 50 input flips and 50 commands (not
counted), then three phases:

1. idle: `--idle` seconds (10) with nothing happening but the driver's updates every 0.05 s
   and the keep-alives; instructions per second.
2. state: `--cycles` input flips (500) from the simulated driver, inputs 8..15 in turn, each
   pin on, then off the next time round; each waited for on its state topic before the next.
3. command: `--cycles` `set` commands (QoS 0, as Home Assistant sends them), outputs 0..7 in
   turn, ON then OFF the next time round; each waited for on its state echo before the next.

Pins are taken in turn, not one pin each, so that no pin changes anywhere near
`mqtt.max_state_rate` (20 a second) and no state is held back by that cap. The driver reports
a level at its next periodic update (every 0.05 s), so each event waits for one; that waiting
is idle work, and is taken out:

- per state change = (state phase - idle rate x state phase seconds) / cycles: the update
  with the new level, and the state message it causes.
- per command = (command phase - idle rate x command phase seconds) / cycles. This includes
  the state echo the command causes (the driver's update that reports the new level, and its
  state message), as Home Assistant waits for that echo.
- command's own path = per command - per state change: reading the command and sending its
  config to the driver.

The bridge runs with PYTHONHASHSEED=0 (`--hash-seed`): with Python's random seed, a new one
per process (string hashes, dict and set layouts differ), idle instructions per second of the
same code spread over 2.5 % in ten measurements, with seed 0 over 1.7 % in nine; per state
change and per command over about 1 %. The driver's updates during each phase are
counted too (a ZeroMQ SUB of this script's own on the driver's updates port) and shown beside
the phase's seconds: the driver paces itself, about 20.5 updates a second.

`--repeat K` makes K measurements of each code, each with fresh processes (the median is
reported); `--compare REV` measures that commit's bridge (exported with `git archive` into the
run's /tmp directory; the working tree is left alone) and the working tree's in turn, and
prints the ratio new / old per figure. A measurement takes about 80 s at the defaults.

Results: `benchmarks/results/instructions-<time>.md` and `.json` (`--out DIR` to write
elsewhere), with the commit, the code measured, the machine and valgrind's version. Callgrind's
dumps, logs and configs stay in the `/tmp/mqtt-gpio-instructions-*` directory the report
names. Exit status 1 if a measurement could not run; the figures themselves are not judged.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import zmq
from common import BenchmarkError
from common.bridge import bridge_argv, bridge_config
from common.facts import ROOT, BridgeCode, bridge_code, changed_files, head, machine_facts
from common.mosquitto import Mosquitto, mosquitto_missing
from common.ports import HOST, accepts_connections, free_port_block, wait_for
from common.processes import end_process, interrupt_on_sigterm, load_average
from common.report import fact_rows, write_results
from paho.mqtt.enums import CallbackAPIVersion

OUTPUTS, INPUTS = 8, 8
"""Pins 0..7 outputs (`initial: "off"`), 8..15 inputs."""
WARM_UP = 50
"""Input flips and commands before the first phase, not counted (at most `--cycles`)."""
ONLINE_TIMEOUT = 120.0
"""Seconds for the bridge under valgrind to say `online` (about 10 s here, 0.5 s without)."""
SETTLE = 3.0
"""Seconds after every state is known before the warm-up."""
EVENT_TIMEOUT = 30.0
"""Seconds for one state message to arrive."""
SIMULATE = [sys.executable, "-m", "mqtt_gpio_bridge", "simulate"]
"""The simulated driver's command line (run from the working tree, whatever bridge runs)."""
CONTROL_TIMEOUT = 60.0
"""Seconds for one `callgrind_control` call."""


# -- the bridge under callgrind --------------------------------------------------------------


def valgrind_version() -> str:
    """`valgrind --version` ("?" if it says nothing)."""
    out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


class Callgrind:
    """The bridge as a process under callgrind, collection off until `switch(True)`."""

    def __init__(self, config: Path, code: BridgeCode, workdir: Path, hash_seed: str) -> None:
        self.out = workdir / "callgrind.out"
        self.log_path = workdir / "bridge.log"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={self.out}",
            *bridge_argv(config),
        ]
        env = code.env() | {"PYTHONHASHSEED": hash_seed}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=code.root, env=env
            )
        self.dumps = 0

    def _control(self, *args: str) -> None:
        if self.process.poll() is not None:
            raise BenchmarkError(f"the bridge exited with {self.process.returncode}")
        result = subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)],
            capture_output=True,
            text=True,
            timeout=CONTROL_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise BenchmarkError(f"callgrind_control {' '.join(args)}: {result.stdout}")

    def switch(self, on: bool) -> float:
        """Collection on or off; the moment it switched (the middle of the call)."""
        before = time.monotonic()
        self._control("-i", "on" if on else "off")
        return (before + time.monotonic()) / 2

    def dump(self) -> int:
        """Dump what was collected since the last dump; its instructions (`totals:`)."""
        self._control("-d")
        self.dumps += 1
        path = self.out.with_name(f"{self.out.name}.{self.dumps}")
        wait_for(path.exists, 30, f"callgrind's dump {path}")
        for _ in range(100):
            if match := re.search(r"^totals:\s+(\d+)", path.read_text(), re.MULTILINE):
                return int(match[1])
            time.sleep(0.1)
        raise BenchmarkError(f"no totals: line in {path}")

    def measure(self, work: Callable[[], object]) -> tuple[int, float]:
        """(instructions, seconds) of `work()` with collection on only around it."""
        start = self.switch(True)
        try:
            work()
        finally:
            end = self.switch(False)
        return self.dump(), end - start

    def stop(self) -> int | None:
        return end_process(self.process, grace=60)


# -- MQTT and the driver ---------------------------------------------------------------------


class States:
    """A paho client that keeps the last payload of the bridge's status and state topics."""

    def __init__(self, port: int, base: str) -> None:
        self.base = base
        self.last: dict[str, str] = {}
        self.changed = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"instructions-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.connect(HOST, port, keepalive=60)
        self.client.subscribe([(f"{base}/status", 1), (f"{base}/gpio/+/state", 1)])
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self.changed:
            self.last[message.topic] = message.payload.decode(errors="replace")
            self.changed.notify_all()

    def wait(self, topic: str, payload: str, timeout: float = EVENT_TIMEOUT) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.last.get(topic) == payload, timeout):
                raise BenchmarkError(
                    f"no {payload!r} on {topic} within {timeout:g} s "
                    f"(last: {self.last.get(topic)!r})"
                )

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class UpdateCounter(threading.Thread):
    """Counts the driver's updates (a ZeroMQ SUB of our own on its updates port)."""

    def __init__(self, port: int) -> None:
        super().__init__(name="update-counter", daemon=True)
        self.count = 0
        self._stop_event = threading.Event()
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(f"tcp://{HOST}:{port}")
        self.start()

    def run(self) -> None:
        while not self._stop_event.is_set():
            if self._socket.poll(100):
                self._socket.recv()
                self.count += 1
        self._socket.close(0)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)


class Rig:
    """Mosquitto, the simulated driver (working tree) and the bridge under callgrind."""

    def __init__(self, code: BridgeCode, workdir: Path, hash_seed: str) -> None:
        workdir.mkdir(parents=True)
        self.levels = [0] * (OUTPUTS + INPUTS)
        self.commands = self.flips = 0
        mqtt_port = free_port_block(1)
        malos_port = free_port_block(4, {mqtt_port})
        self.mosquitto = Mosquitto(mqtt_port, workdir)
        self.simulator: subprocess.Popen[str] | None = None
        self.bridge: Callgrind | None = None
        self.states: States | None = None
        self.updates: UpdateCounter | None = None
        try:
            self._start(code, workdir, hash_seed, mqtt_port, malos_port)
        except BaseException:
            self.close()
            raise

    def _start(
        self, code: BridgeCode, workdir: Path, hash_seed: str, mqtt_port: int, malos_port: int
    ) -> None:
        self.mosquitto.start()
        with (workdir / "simulator.log").open("w") as log:
            self.simulator = subprocess.Popen(
                [*SIMULATE, "--base-port", str(malos_port), "--log-level", "WARNING"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
                env=BridgeCode(ROOT, "", "").env(),
            )
        wait_for(lambda: accepts_connections(malos_port + 3), 30, "the simulated driver")
        self.updates = UpdateCounter(malos_port + 3)
        config = workdir / "bridge.yaml"
        unique = uuid.uuid4().hex[:8]
        base = bridge_config(
            config,
            mqtt_port=mqtt_port,
            malos_port=malos_port,
            unique=unique,
            outputs=OUTPUTS,
            inputs=INPUTS,
        )
        self.states = States(mqtt_port, base)
        self.bridge = Callgrind(config, code, workdir, hash_seed)
        self.states.wait(f"{base}/status", "online", ONLINE_TIMEOUT)
        for pin in range(OUTPUTS + INPUTS):
            self.states.wait(f"{base}/gpio/{pin}/state", "OFF")
        time.sleep(SETTLE)

    def phase(self, work: Callable[[], object]) -> tuple[int, float, int]:
        """(instructions, seconds, driver updates) of `work()`, collection on only around it."""
        assert self.bridge is not None and self.updates is not None
        before = self.updates.count
        instructions, seconds = self.bridge.measure(work)
        return instructions, seconds, self.updates.count - before

    def flip(self) -> None:
        """The next input in turn changes level; wait for its state message."""
        assert self.simulator is not None and self.simulator.stdin is not None
        assert self.states is not None
        pin = OUTPUTS + self.flips % INPUTS
        self.flips += 1
        level = self.levels[pin] = 1 - self.levels[pin]
        self.simulator.stdin.write(f"{pin} {'on' if level else 'off'}\n")
        self.simulator.stdin.flush()
        self.states.wait(f"{self.states.base}/gpio/{pin}/state", "ON" if level else "OFF")

    def command(self) -> None:
        """A `set` command to the next output in turn; wait for its state echo."""
        assert self.states is not None
        pin = self.commands % OUTPUTS
        self.commands += 1
        level = self.levels[pin] = 1 - self.levels[pin]
        payload = "ON" if level else "OFF"
        self.states.client.publish(f"{self.states.base}/gpio/{pin}/set", payload, qos=0)
        self.states.wait(f"{self.states.base}/gpio/{pin}/state", payload)

    def close(self) -> list[str]:
        """Stop everything; problems seen on the way."""
        problems = []
        if self.states is not None:
            self.states.close()
        if self.updates is not None:
            self.updates.stop()
        if self.bridge is not None and (status := self.bridge.stop()) not in (0, None):
            problems.append(f"the bridge exited with {status} (log: {self.bridge.log_path})")
        if self.simulator is not None:
            if self.simulator.stdin is not None:
                self.simulator.stdin.close()
            end_process(self.simulator)  # type: ignore[arg-type]
        self.mosquitto.stop()
        return problems


# -- one measurement -------------------------------------------------------------------------


@dataclass
class Measurement:
    """The instructions and seconds of each phase of one bridge process."""

    code: str
    cycles: int
    idle_instructions: int
    idle_seconds: float
    state_instructions: int
    state_seconds: float
    command_instructions: int
    command_seconds: float
    idle_updates: int
    state_updates: int
    command_updates: int

    @property
    def idle_rate(self) -> float:
        return self.idle_instructions / self.idle_seconds

    @property
    def per_state(self) -> float:
        return (self.state_instructions - self.idle_rate * self.state_seconds) / self.cycles

    @property
    def per_command(self) -> float:
        return (self.command_instructions - self.idle_rate * self.command_seconds) / self.cycles

    @property
    def command_own(self) -> float:
        return self.per_command - self.per_state

    def figures(self) -> dict[str, float]:
        return {
            "idle_per_second": self.idle_rate,
            "per_state_change": self.per_state,
            "per_command": self.per_command,
            "command_own_path": self.command_own,
        }


def times(action: Callable[[], None], count: int) -> None:
    for _ in range(count):
        action()


def measure(
    code: BridgeCode, cycles: int, idle: float, hash_seed: str, workdir: Path
) -> Measurement:
    rig = Rig(code, workdir, hash_seed)
    try:
        assert rig.bridge is not None
        for _ in range(min(WARM_UP, cycles)):
            rig.flip()
            rig.command()
        time.sleep(1.0)
        idle_i, idle_s, idle_u = rig.phase(lambda: time.sleep(idle))
        print(f"   idle: {idle_i:,} instructions in {idle_s:.1f} s, {idle_u} updates", flush=True)
        state_i, state_s, state_u = rig.phase(lambda: times(rig.flip, cycles))
        print(
            f"   state: {state_i:,} instructions in {state_s:.1f} s, {state_u} updates", flush=True
        )
        command_i, command_s, command_u = rig.phase(lambda: times(rig.command, cycles))
        print(
            f"   command: {command_i:,} instructions in {command_s:.1f} s, {command_u} updates",
            flush=True,
        )
    finally:
        problems = rig.close()
    if problems:
        raise BenchmarkError("; ".join(problems))
    return Measurement(
        code.label,
        cycles,
        *(idle_i, idle_s, state_i, state_s, command_i, command_s),
        *(idle_u, state_u, command_u),
    )


# -- report ----------------------------------------------------------------------------------

FIGURES = {
    "idle_per_second": "idle instructions / s",
    "per_state_change": "per state change",
    "per_command": "per command (state echo included)",
    "command_own_path": "command's own path",
}


def number(value: float, figure: str) -> str:
    if figure == "idle_per_second":
        return f"{value / 1e6:.3f} M/s"
    return f"{value / 1e3:.1f}k"


def medians(measurements: list[Measurement]) -> dict[str, float]:
    return {
        figure: statistics.median(m.figures()[figure] for m in measurements) for figure in FIGURES
    }


def report(
    facts: dict[str, str], codes: list[BridgeCode], runs: dict[str, list[Measurement]]
) -> str:
    lines = ["# Instructions benchmark", "", "| | |", "|---|---|", *fact_rows(facts), ""]
    header = [
        "code",
        "run",
        *FIGURES.values(),
        "seconds and driver updates: idle / state / command",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, code in enumerate(codes):
        name = ("old", "new")[index] if len(codes) > 1 else "bridge"
        for run, m in enumerate(runs[code.label], 1):
            cells = [number(v, f) for f, v in m.figures().items()]
            seconds = (
                f"{m.idle_seconds:.1f} / {m.state_seconds:.1f} / {m.command_seconds:.1f} s, "
                f"{m.idle_updates} / {m.state_updates} / {m.command_updates}"
            )
            lines.append(f"| {name} | {run} | " + " | ".join(cells) + f" | {seconds} |")
        if len(runs[code.label]) > 1:
            cells = [number(v, f) for f, v in medians(runs[code.label]).items()]
            lines.append(f"| {name} | median | " + " | ".join(cells) + " | |")
    if len(codes) == 2 and all(runs[code.label] for code in codes):
        old, new = (medians(runs[code.label]) for code in codes)
        cells = [f"{new[f] / old[f]:.3f}" for f in FIGURES]
        lines.append("| new / old | | " + " | ".join(cells) + " | |")
    lines += [
        "",
        "Per state change and per command: the phase's instructions minus the idle rate times the "
        "phase's seconds, divided by the cycles; the command's figure includes the state echo "
        "it causes; its own path is per command - per state change.",
        "",
    ]
    return "\n".join(lines)


def run_facts(args: argparse.Namespace, codes: list[BridgeCode], workdir: Path) -> dict[str, str]:
    """The commit, the code measured, the machine, valgrind and the settings."""
    changes = changed_files()
    facts = {
        "commit": (head() or "?") + ("+dirty" if changes else ""),
        "uncommitted changes": ", ".join(changes) or "none",
    }
    for name, code in zip(("old", "new") if args.compare else ("bridge",), codes, strict=True):
        facts[f"{name} code"] = f"{code.label}, sources sha256 {code.sha256}"
    facts["simulated driver"] = "the working tree's (`python -m mqtt_gpio_bridge simulate`)"
    facts |= machine_facts(cpu=True, libraries=True)
    facts["valgrind"] = valgrind_version()
    facts["settings"] = (
        f"cycles {args.cycles}, idle {args.idle:g} s, repeat {args.repeat}, "
        f"warm-up {min(WARM_UP, args.cycles)}, the bridge's PYTHONHASHSEED {args.hash_seed}"
    )
    facts["load average at start"] = load_average()
    facts["logs"] = str(workdir)
    return facts


def measure_all(
    args: argparse.Namespace, codes: list[BridgeCode], workdir: Path
) -> tuple[dict[str, list[Measurement]], list[str]]:
    """`--repeat` measurements of each code, the codes in turn; problems met."""
    runs: dict[str, list[Measurement]] = {code.label: [] for code in codes}
    problems = []
    for repeat in range(args.repeat):
        for index, code in enumerate(codes):
            print(f"\n-- {code.label}, run {repeat + 1} ...", flush=True)
            try:
                m = measure(
                    code,
                    args.cycles,
                    args.idle,
                    args.hash_seed,
                    workdir / f"run-{repeat + 1}-{index}",
                )
            except BenchmarkError as exc:
                problems.append(f"{code.label}, run {repeat + 1}: {exc}")
                print(f"   could not run: {exc}", flush=True)
                continue
            runs[code.label].append(m)
            print(
                "   " + ", ".join(f"{FIGURES[f]} {number(v, f)}" for f, v in m.figures().items()),
                flush=True,
            )
    return runs, problems


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=500, help="flips and commands (500)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle phase seconds (10)")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per code (1)")
    refs = parser.add_mutually_exclusive_group()
    refs.add_argument(
        "--bridge-ref",
        metavar="REV",
        help="measure the bridge of this commit (git archive) instead of the working tree",
    )
    refs.add_argument(
        "--compare", metavar="REV", help="measure this commit's bridge, then the working tree's"
    )
    parser.add_argument(
        "--hash-seed",
        default="0",
        help="the bridge's PYTHONHASHSEED (0; `random` for a new one each process)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.cycles < 1 or args.repeat < 1 or args.idle <= 0:
        parser.error("--cycles and --repeat must be at least 1, --idle above 0")
    if args.hash_seed != "random" and not (
        args.hash_seed.isdecimal() and int(args.hash_seed) <= 4294967295
    ):
        parser.error("--hash-seed is `random` or an integer 0..4294967295")
    return args


def main() -> int:
    args = parse_args()
    if mosquitto_missing():
        return 2
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    interrupt_on_sigterm()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-instructions-"))
    if args.compare:
        codes = [bridge_code(args.compare, workdir), bridge_code(None, workdir)]
    else:
        codes = [bridge_code(args.bridge_ref, workdir)]
    facts = run_facts(args, codes, workdir)
    print("\n".join(f"{key}: {value}" for key, value in facts.items()), flush=True)
    started = time.monotonic()
    runs, problems = measure_all(args, codes, workdir)
    facts["load average at end"] = load_average()
    facts["run time"] = f"{time.monotonic() - started:.0f} s"
    text = report(facts, codes, runs)
    if problems:
        text += "\nProblems:\n" + "".join(f"- {problem}\n" for problem in problems)
    print("\n" + text)
    data = {
        "facts": facts,
        "codes": [{"label": c.label, "sha256": c.sha256} for c in codes],
        "runs": {label: [{**asdict(m), **m.figures()} for m in ms] for label, ms in runs.items()},
        "medians": {label: medians(ms) for label, ms in runs.items() if ms},
        "problems": problems,
    }
    stem = args.out / f"instructions-{stamp}"
    write_results(stem, text, data)
    print(f"written: {stem}.md, {stem}.json")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
