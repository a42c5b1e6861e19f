"""soak.py's run: load, faults (broker or driver restarts) and the checks after each."""

from __future__ import annotations

import argparse
import contextlib
import random
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from common.bridge import bridge_config, start_bridge
from common.facts import bridge_code_line, sources_sha256
from common.mosquitto import LOGGED, Mosquitto
from common.ports import HOST, free_port_block
from common.processes import ProcWatch, cpu_seconds, end_process
from soak_clients import Commander, Monitor, read_retained
from soak_common import (
    BURST,
    CHECKPOINT_TIMEOUT,
    DOWN_TIME,
    FAULT_GAP,
    FINAL_TIMEOUT,
    INPUT_FLIP_CHANCE,
    OFF_PAYLOADS,
    ON_PAYLOADS,
    PAUSE,
    PIN_COUNT,
    RECOVERY_TIMEOUT,
    Expectation,
    Fault,
    SoakError,
    now,
    problem_pins,
)

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver


class Soak:
    def __init__(self, args: argparse.Namespace, outputs: int, inputs: int) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.expect = Expectation(list(range(outputs)), list(range(outputs, outputs + inputs)))
        self.workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-soak-"))
        self.unique = uuid.uuid4().hex[:8]
        self.board = Board()
        self.broker: Mosquitto | None = None
        self.driver: SimulatedDriver | None = None
        self.driver_lock = threading.Lock()
        self.malos_port = 0
        self.monitor: Monitor | None = None
        self.commander: Commander | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.bridge_log = self.workdir / "bridge.log"
        self.watch: ProcWatch | None = None
        self.stopping = threading.Event()
        self.faults: list[Fault] = []
        self.fault_thread: threading.Thread | None = None
        self.broker_kills: list[tuple[float, int]] = []
        self.base = ""
        self.acknowledged = 0
        self.input_flips = 0
        self.started = 0.0
        self.load_started = 0.0
        self.load_ended = 0.0
        self.startup_s: float | None = None
        self.final: dict[str, Any] = {}
        self.bridge_exit: int | None = None
        self.bridge_died_at: float | None = None
        self.cpu: tuple[float, float] | None = None
        self.cpu_wall = 0.0
        self.bridge_started = 0.0
        self.final_rss_kb = 0
        self.fatal: str | None = None
        self.board_ok_at: float | None = None
        self.code: dict[str, str] = {}

    # -- set-up and tear-down --------------------------------------------------------------

    def start(self) -> None:
        self.started = now()
        self.broker = Mosquitto(free_port_block(1), self.workdir, LOGGED, SoakError)
        self.broker.start()
        self.malos_port = free_port_block(4)
        config_path = self.workdir / "bridge.yaml"
        self.base = bridge_config(
            config_path,
            mqtt_port=self.broker.port,
            malos_port=self.malos_port,
            unique=self.unique,
            outputs=len(self.expect.outputs),
            inputs=len(self.expect.inputs),
        )
        self.monitor = Monitor(self.broker, f"{self.base}/status", self.bridge_alive)
        self.commander = Commander(self.broker, self.monitor)
        with self.driver_lock:
            self.driver = SimulatedDriver(HOST, self.malos_port, self.board).start()
        # What the bridge process is about to import.
        self.code = {
            "bridge sources sha256": sources_sha256(),
            "bridge code at launch": bridge_code_line(),
        }
        with self.bridge_log.open("ab") as log:
            self.bridge = start_bridge(config_path, log)
        self.bridge_started = now()
        self.watch = ProcWatch(self.bridge.pid)
        self.watch.start()
        if self.monitor.first("online", since=0, instance=None, timeout=FINAL_TIMEOUT) is None:
            raise SoakError(f"{self.base}/status never read online after the bridge started")
        problems = self.wait_consistent(FINAL_TIMEOUT)
        if problems:
            raise SoakError("after start: " + "; ".join(problems))
        self.startup_s = now() - self.started

    def cleanup(self) -> None:
        self.stopping.set()
        if self.fault_thread is not None:
            self.fault_thread.join(15)
        if self.bridge is not None:
            if self.bridge.poll() is None and self.watch is not None:
                self.watch.read()
                self.final_rss_kb = self.watch.last_rss_kb
                with contextlib.suppress(OSError):
                    self.cpu = cpu_seconds(self.bridge.pid)
                    self.cpu_wall = now() - self.bridge_started
            code = end_process(self.bridge)
            if self.bridge_exit is None:
                self.bridge_exit = code
        if self.watch is not None:
            self.watch.stop()
        with self.driver_lock:
            if self.driver is not None:
                self.driver.stop()
                self.driver = None
        if self.commander is not None:
            self.commander.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.broker is not None:
            self.broker.stop()

    # -- checks ----------------------------------------------------------------------------

    def state_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/state"

    def problems_now(self, *, need_retained: bool) -> list[str]:
        """Differences between the expectation and the board (and the retained states)."""
        problems = []
        levels = self.board.levels()
        wanted = self.expect.mask()
        with self.board.lock:
            direction = self.board.direction
        for pin in range(PIN_COUNT):
            if (levels ^ wanted) >> pin & 1:
                problems.append(
                    f"pin {pin}: board {levels >> pin & 1}, expected {wanted >> pin & 1}"
                )
            if (direction ^ self.expect.direction()) >> pin & 1:
                problems.append(f"pin {pin}: direction {'out' if direction >> pin & 1 else 'in'}")
        if problems or not need_retained:
            return problems
        assert self.broker is not None
        pins = self.expect.outputs + self.expect.inputs
        topics = [f"{self.base}/status"] + [self.state_topic(pin) for pin in pins]
        retained = read_retained(self.broker.port, topics)
        if retained is None:
            return ["broker unreachable for the retained check"]
        if retained.get(topics[0]) != "online":
            problems.append(f"retained status {retained.get(topics[0])!r}")
        for pin in pins:
            want = "ON" if wanted >> pin & 1 else "OFF"
            got = retained.get(self.state_topic(pin))
            if got != want:
                problems.append(f"pin {pin}: retained state {got!r}, expected {want!r}")
        return problems

    def wait_consistent(self, timeout: float) -> list[str]:
        """Wait until board and retained states match; return what still differs, if anything.

        Sets `board_ok_at` to when the board (levels and directions) last became right.
        """
        deadline = now() + timeout
        self.board_ok_at = None
        while True:
            problems = self.problems_now(need_retained=False)
            if problems:
                self.board_ok_at = None
            else:
                self.board_ok_at = self.board_ok_at or now()
                problems = self.problems_now(need_retained=True)
                if not problems:
                    return []
            if now() > deadline:
                return problems
            time.sleep(0.05)

    def lost_with_broker(self, pin: int) -> str | None:
        """Why a pin's last command may have been lost by a killed broker, if it may have."""
        acked_on = self.expect.acked_on.get(pin)
        acked_at = self.expect.acked_at.get(pin)
        if acked_on is None or acked_at is None:
            return None
        for killed_at, instance in self.broker_kills:
            if instance == acked_on and killed_at >= acked_at:
                return (
                    f"pin {pin}: its last command was acknowledged by broker #{instance} "
                    f"{killed_at - acked_at:.3f} s before that broker was killed"
                )
        return None

    # -- load and faults -------------------------------------------------------------------

    def command(self, pin: int, level: int) -> None:
        assert self.commander is not None
        payload = self.rng.choice(ON_PAYLOADS if level else OFF_PAYLOADS)
        acked_at, instance = self.commander.send(f"{self.base}/gpio/{pin}/set", payload)
        self.expect.level[pin] = level
        self.expect.acked_at[pin] = acked_at
        self.expect.acked_on[pin] = instance
        self.acknowledged += 1

    def burst(self) -> None:
        for _ in range(self.rng.randint(*BURST)):
            self.command(self.rng.choice(self.expect.outputs), self.rng.randint(0, 1))
        if self.expect.inputs and self.rng.random() < INPUT_FLIP_CHANCE:
            pin = self.rng.choice(self.expect.inputs)
            level = (self.expect.external >> pin & 1) ^ 1
            self.expect.external = (self.expect.external & ~(1 << pin)) | (level << pin)
            self.board.set_external(pin, level)
            self.input_flips += 1

    def run_fault(self, fault: Fault) -> None:
        try:
            self._run_fault(fault)
        except Exception as exc:
            fault.error = f"{type(exc).__name__}: {exc}"

    def _run_fault(self, fault: Fault) -> None:
        assert self.broker is not None and self.monitor is not None
        fault.started = now()
        if fault.kind == "broker":
            self.broker.stop()
            self.broker_kills.append((fault.started, self.broker.instance))
            if self.stopping.wait(fault.down_s):
                return
            self.broker.start()
            fault.restarted = now()
            online = self.monitor.first(
                "online", since=0, instance=self.broker.instance, timeout=RECOVERY_TIMEOUT
            )
        else:
            with self.driver_lock:
                if self.driver is not None:
                    self.driver.stop()
                    self.driver = None
            if self.stopping.wait(fault.down_s):
                return
            with self.driver_lock:
                self.driver = SimulatedDriver(HOST, self.malos_port, self.board).start()
            fault.restarted = now()
            online = self.monitor.first(
                "online", since=fault.restarted, instance=None, timeout=RECOVERY_TIMEOUT
            )
            offline = self.monitor.first("offline", since=fault.started, instance=None, timeout=0)
            if offline is not None:
                fault.offline_after_s = offline.at - fault.started
            elif online is None:
                fault.error = (
                    "status never read offline: the bridge did not notice the MALOS restart"
                )
        if online is not None:
            fault.recovery_s = max(0.0, online.at - fault.restarted)
            fault.recovery_upper_bound = online.retained

    def checkpoint(self, fault: Fault) -> None:
        began = now()
        fault.acked_before_checkpoint = self.acknowledged - fault.acked_at_start
        problems = self.wait_consistent(CHECKPOINT_TIMEOUT)
        if self.board_ok_at is not None:
            fault.checkpoint_board_s = self.board_ok_at - began
        if not problems:
            fault.checkpoint_s = now() - began
            return
        fault.checkpoint_problems = problems
        reasons = [self.lost_with_broker(pin) for pin in problem_pins(problems)]
        # Explainable only if every wrong pin's last command went through a killed broker.
        fault.checkpoint_ambiguous = bool(reasons) and all(reasons)
        fault.checkpoint_problems += [reason for reason in reasons if reason is not None]

    def bridge_alive(self) -> bool:
        assert self.bridge is not None
        if self.bridge.poll() is None:
            return True
        if self.bridge_died_at is None:
            self.bridge_died_at = now() - self.started
            self.bridge_exit = self.bridge.returncode
        return False

    def fault_running(self) -> bool:
        if self.fault_thread is not None and not self.fault_thread.is_alive():
            self.fault_thread = None
        return self.fault_thread is not None

    def load(self) -> None:
        self.load_started = now()
        end = self.load_started + self.args.minutes * 60
        next_fault = self.load_started + self.rng.uniform(*FAULT_GAP)
        current: Fault | None = None
        while now() < end:
            if not self.bridge_alive():
                return
            if current is None and now() >= next_fault and end - now() > 5:
                kind = self.rng.choice(["broker", "malos"])
                current = Fault(len(self.faults) + 1, kind, self.rng.uniform(*DOWN_TIME))
                current.acked_at_start = self.acknowledged
                self.faults.append(current)
                self.fault_thread = threading.Thread(
                    target=self.run_fault, args=(current,), name="fault", daemon=True
                )
                self.fault_thread.start()
            self.burst()
            if current is not None and not self.fault_running():
                if current.error is None and current.recovery_s is not None:
                    self.checkpoint(current)
                current = None
                next_fault = now() + self.rng.uniform(*FAULT_GAP)
            time.sleep(self.rng.uniform(*PAUSE))
        if self.fault_thread is not None:
            self.fault_thread.join()
            self.fault_thread = None
            if current is not None and current.error is None and current.recovery_s is not None:
                self.checkpoint(current)
        self.load_ended = now()

    def finish(self) -> None:
        assert self.monitor is not None
        began = now()
        self.final["bridge_alive"] = self.bridge_alive()
        status_ok = False
        while now() - began < FINAL_TIMEOUT and self.broker is not None:
            retained = read_retained(self.broker.port, [f"{self.base}/status"])
            if retained and retained.get(f"{self.base}/status") == "online":
                status_ok = True
                break
            time.sleep(0.1)
        self.final["status_online"] = status_ok
        problems = self.wait_consistent(max(1.0, FINAL_TIMEOUT - (now() - began)))
        self.final["converged_s"] = None if problems else now() - began
        self.final["problems"] = problems
        self.final["lost_with_broker"] = [
            reason for pin in problem_pins(problems) if (reason := self.lost_with_broker(pin))
        ]
