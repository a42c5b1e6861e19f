"""One flood phase's processes: Mosquitto, a driver, a recorder and the bridge."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from common import BenchmarkError
from common.bridge import bridge_config, start_bridge
from common.facts import (
    BridgeCode,
)
from common.mosquitto import Mosquitto
from common.ports import free_port_block
from common.processes import (
    TICKS,
    ProcWatch,
    cpu_ticks,
    end_process,
)
from flood_clients import Recorder
from flood_common import INPUTS, ONLINE_TIMEOUT, OUTPUTS

# -- one phase's processes --------------------------------------------------------------------


class Driver(Protocol):
    def stop(self) -> None: ...


@dataclass
class Rig:
    """One Mosquitto, one MALOS driver and one bridge process, for one phase."""

    workdir: Path
    broker: Mosquitto
    bridge: subprocess.Popen[bytes]
    watch: ProcWatch
    recorder: Recorder
    base: str
    prefix: str

    @property
    def pid(self) -> int:
        return self.bridge.pid

    def alive(self) -> bool:
        return self.bridge.poll() is None

    def set_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/set"

    def state_topic(self, pin: int) -> str:
        return f"{self.base}/gpio/{pin}/state"

    def rss_kb(self) -> int:
        """The bridge's VmRSS now (also kept among the watch's samples)."""
        self.watch.read()
        return self.watch.last_rss_kb

    def peak_kb(self, since: float, until: float) -> int:
        return max((kb for at, kb in list(self.watch.samples) if since <= at <= until), default=0)

    def cpu_seconds(self) -> float:
        return cpu_ticks(self.pid) / TICKS

    def broker_cpu_seconds(self) -> float:
        assert self.broker.process is not None
        return cpu_ticks(self.broker.process.pid) / TICKS

    def drop_notices(self) -> int:
        """Lines in which Mosquitto says it dropped messages for a client."""
        log = self.broker.log_path
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(1 for line in text.splitlines() if "dropped" in line)

    def wait_online(self) -> None:
        deadline = time.monotonic() + ONLINE_TIMEOUT
        while True:
            status = self.recorder.last(f"{self.base}/status")
            if status is not None and status.payload == b"online":
                return
            if not self.alive():
                raise BenchmarkError(f"the bridge exited with {self.bridge.returncode}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the bridge was not online after {ONLINE_TIMEOUT:g} s")
            time.sleep(0.02)


@contextlib.contextmanager
def rig(
    workdir: Path,
    code: BridgeCode,
    start_driver: Callable[[int], Driver],
    filters: Callable[[str, str], list[str]],
) -> Iterator[Rig]:
    """Start Mosquitto, the driver, a recorder on `filters(base, prefix)` and the bridge; wait
    for `online`; stop them all on the way out."""
    workdir.mkdir(parents=True)
    broker = Mosquitto(free_port_block(1), workdir)
    driver: Driver | None = None
    recorder: Recorder | None = None
    bridge: subprocess.Popen[bytes] | None = None
    watch: ProcWatch | None = None
    try:
        broker.start()
        malos_port = free_port_block(4, taken={broker.port})
        driver = start_driver(malos_port)
        config_path = workdir / "bridge.yaml"
        bridge_config(
            config_path,
            mqtt_port=broker.port,
            malos_port=malos_port,
            unique=uuid.uuid4().hex[:8],
            outputs=OUTPUTS,
            inputs=INPUTS,
        )
        config = yaml.safe_load(config_path.read_text())
        base, prefix = config["mqtt"]["base_topic"], config["homeassistant"]["prefix"]
        recorder = Recorder(broker.port, filters(base, prefix))
        with (workdir / "bridge.log").open("wb") as log:
            bridge = start_bridge(config_path, log, cwd=code.root, env=code.env())
        watch = ProcWatch(bridge.pid)
        watch.start()
        the_rig = Rig(workdir, broker, bridge, watch, recorder, base, prefix)
        the_rig.wait_online()
        yield the_rig
    finally:
        if watch is not None:
            watch.stop()
        end_process(bridge)
        if recorder is not None:
            recorder.close()
        if driver is not None:
            driver.stop()
        broker.stop()
