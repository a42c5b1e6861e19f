"""One benchmark phase's peers: a Mosquitto, the simulated GPIO driver on a `Board` (in this
process, so a benchmark sees every frame), and the bridge as a subprocess on them.

A benchmark's rig subclasses `BoardRig`: it starts what else it needs (another driver, its
MQTT clients, among them `status_watch`) in `_start_more`, adds its config in `_config`, and
closes its own in `_close_more`.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver, whole_milliseconds

from . import BenchmarkError
from .bridge import start_bridge
from .mosquitto import NOT_PERSISTED, Mosquitto
from .ports import HOST, free_port_block, wait_for
from .processes import end_process

ONLINE_TIMEOUT = 30.0
"""Seconds for the bridge to read `online` after its process started."""
SETTLED_UPDATES = 3
"""Driver updates at the configured interval to wait for before anything is measured."""


class BoardRig:
    """Use as a context manager: entering starts every peer and returns once the bridge is
    online and the driver sends updates at `interval`; leaving stops them all."""

    def __init__(
        self,
        workdir: Path,
        base: str,
        interval: float,
        pins: Sequence[dict[str, Any]],
        on_wire: Callable[[str, bytes], None],
    ) -> None:
        """A phase named by `base` (its base topic; its logs in `workdir/<base>`)."""
        self.workdir = workdir / base.replace("/", "-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.interval = interval
        self.pins = pins
        self.board = Board()
        self._on_wire = on_wire
        self.broker = Mosquitto(free_port_block(1), self.workdir, NOT_PERSISTED)
        self.driver: SimulatedDriver | None = None
        self.bridge: subprocess.Popen[bytes] | None = None
        self.exit_status: int | None = None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for subclasses --------------------------------------------------------------------------

    def _start_more(self, taken: set[int]) -> dict[str, Any]:
        """Start the other peers (`taken`: ports in use); return extra `malos` config keys."""
        return {}

    def _config(self) -> dict[str, Any]:
        """The config's `pins` (and other top-level sections)."""
        return {"pins": list(self.pins)}

    def status_watch(self) -> dict[str, bytes]:
        """The last payload per topic of a client subscribed to `<base>/status`."""
        raise NotImplementedError

    def _close_more(self) -> None:
        """Close what `_start_more` started (some of it may not have started)."""

    # -- the rig ---------------------------------------------------------------------------------

    def _start(self) -> None:
        self.broker.start()
        malos_port = free_port_block(4, taken={self.broker.port})
        self.driver = SimulatedDriver(HOST, malos_port, self.board, on_wire=self._on_wire).start()
        more = self._start_more({self.broker.port, *range(malos_port - 3, malos_port + 7)})
        config = {
            "mqtt": {"host": HOST, "port": self.broker.port, "base_topic": self.base, "qos": 1},
            "malos": {
                "host": HOST,
                "base_port": malos_port,
                "update_interval": self.interval,
                **more,
            },
            "homeassistant": {"discovery": False},
            **self._config(),
        }
        path = self.workdir / "bridge.yaml"
        path.write_text(json.dumps(config, indent=1) + "\n")  # JSON, which YAML reads
        with self.log.open("ab") as log:
            self.bridge = start_bridge(path, log)
        wait_for(self._online, ONLINE_TIMEOUT, "the bridge to be online")
        driver = self.driver
        wanted = whole_milliseconds(self.interval)
        wait_for(lambda: math.isclose(driver.delay_between_updates, wanted), 10, "the update delay")
        sent = driver.updates_sent
        wait_for(lambda: driver.updates_sent >= sent + SETTLED_UPDATES, 10, "driver updates")

    def _online(self) -> bool:
        assert self.bridge is not None
        if self.bridge.poll() is not None:
            raise BenchmarkError(f"the bridge exited with {self.bridge.returncode}: {self.log}")
        return self.status_watch().get(f"{self.base}/status") == b"online"

    @property
    def log(self) -> Path:
        return self.workdir / "bridge.log"

    @property
    def pid(self) -> int:
        assert self.bridge is not None
        return self.bridge.pid

    def alive(self) -> bool:
        return self.bridge is not None and self.bridge.poll() is None

    def check_alive(self) -> None:
        """Raise `BenchmarkError` if the bridge process has ended."""
        if not self.alive():
            raise BenchmarkError(f"the bridge died: {self.log}")

    def close(self) -> None:
        self.exit_status = end_process(self.bridge)
        self._close_more()
        if self.driver is not None:
            self.driver.stop()
        self.broker.stop()
