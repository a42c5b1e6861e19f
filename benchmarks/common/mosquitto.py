"""A Mosquitto for one benchmark run: a listener on the loopback host, nothing persisted."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import BenchmarkError
from common.ports import HOST, accepts_connections
from common.processes import end_process

DEFAULT = "allow_anonymous true\n"
"""A default configuration: `allow_anonymous` only because Mosquitto 2 refuses anonymous
clients on a listener otherwise; everything else (set_tcp_nodelay false, max_inflight_messages
20, max_queued_messages 1000, no persistence) is Mosquitto's default."""
NOT_PERSISTED = "allow_anonymous true\npersistence false\n"
LOGGED = NOT_PERSISTED + "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
"""Not persisted, and errors, warnings and notices (connections, drops) in its log."""


class Mosquitto:
    """One Mosquitto on a fixed port that can be stopped and started again."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        settings: str = LOGGED,
        error: type[BenchmarkError] = BenchmarkError,
    ) -> None:
        self.port = port
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(f"listener {port} {HOST}\n{settings}")
        self.log_path = workdir / "mosquitto.log"
        self.error = error
        self.process: subprocess.Popen[bytes] | None = None
        self.instance = 0
        """Which broker process is (or was last) running: 1 for the first, +1 per restart."""

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.instance + 1}\n".encode())
            log.flush()
            # Counted before the process exists: a connection made from now on is to it.
            self.instance += 1
            self.process = subprocess.Popen(
                ["mosquitto", "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while not accepts_connections(self.port):
            if self.process.poll() is not None:
                raise self.error(
                    f"mosquitto exited with {self.process.returncode}: {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise self.error(f"mosquitto is not listening on {self.port} after 10 s")
            time.sleep(0.005)

    def drop_notices(self) -> int:
        """How many times Mosquitto logged that it dropped messages for a client."""
        if not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count("dropped")

    def stop(self) -> None:
        end_process(self.process)
        self.process = None


def mosquitto_missing() -> bool:
    """Whether `mosquitto` is not on the PATH (then say so on stderr)."""
    if shutil.which("mosquitto") is not None:
        return False
    print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
    return True
