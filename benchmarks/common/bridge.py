"""The bridge under test: its config file and its process (`python -m mqtt_gpio_bridge run`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

from common.facts import ROOT
from common.ports import HOST


def bridge_config(
    path: Path, *, mqtt_port: int, malos_port: int, unique: str, outputs: int, inputs: int
) -> str:
    """Write a config with pins 0..outputs-1 as outputs (`initial: "off"`) and the next
    `inputs` as inputs, QoS 1, driver updates every 0.05 s and discovery under
    `soak_ha_<unique>`; its base topic (`soak/<unique>`)."""
    base = f"soak/{unique}"
    lines = [
        "mqtt:",
        f"  host: {HOST}",
        f"  port: {mqtt_port}",
        f"  base_topic: {base}",
        "  qos: 1",
        "malos:",
        f"  host: {HOST}",
        f"  base_port: {malos_port}",
        "  update_interval: 0.05",
        "  keepalive_interval: 0.5",
        "  ping_timeout: 2.0",
        "  offline_after: 1.5",
        "homeassistant:",
        "  discovery: true",
        f"  prefix: soak_ha_{unique}",
        f"  node_id: soak_{unique}",
        "pins:",
    ]
    for pin in range(outputs):
        lines += [f"  - pin: {pin}", "    mode: output", '    initial: "off"']
    for pin in range(outputs, outputs + inputs):
        lines += [f"  - pin: {pin}", "    mode: input"]
    path.write_text("\n".join(lines) + "\n")
    return base


def bridge_argv(config: Path, log_level: str | None = "WARNING") -> list[str]:
    """The bridge's command line (without `--log-level` when `log_level` is None)."""
    argv = [sys.executable, "-m", "mqtt_gpio_bridge", "run", "--config", str(config)]
    return argv if log_level is None else [*argv, "--log-level", log_level]


def start_bridge(
    config: Path,
    log: IO[bytes],
    *,
    log_level: str | None = "WARNING",
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The bridge as a subprocess, stdout and stderr to `log`."""
    return subprocess.Popen(
        bridge_argv(config, log_level), stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env
    )
