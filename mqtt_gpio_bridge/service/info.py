"""The payload of `<base>/bridge/info`: what the bridge is, what it talks to, how it is set up
(pure, but for `library_versions`, which reads the installed packages' metadata)."""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any, NamedTuple

from .. import __version__
from ..config import BridgeConfig, PinSpec

LIBRARIES = ("paho-mqtt", "pyzmq", "voluptuous", "PyYAML")
"""The distributions the run path imports, as their versions are asked of the bridge."""
_ALWAYS = ("pin", "mode", "name")
"""Pin keys shown whatever their value; every other one only where it differs from its default."""


class DriverState(NamedTuple):
    """One MALOS driver the bridge talks to."""

    name: str
    """As in log lines: "GPIO", "Servo"."""
    port: int
    """Its first port."""
    alive: bool | None
    """Whether it sends updates; None for a driver without liveness of its own (servo)."""


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """The installed version of each distribution, None for one that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def pin_summary(spec: PinSpec) -> dict[str, Any]:
    """A pin's number, mode and name, and each of its options that differs from the default."""
    summary: dict[str, Any] = {key: getattr(spec, key) for key in _ALWAYS}
    for item in dataclasses.fields(spec):
        value = getattr(spec, item.name)
        if item.name in _ALWAYS or value == item.default:
            continue
        summary[item.name] = list(value) if isinstance(value, tuple) else value
    return summary


def drivers_summary(drivers: Iterable[DriverState]) -> dict[str, dict[str, Any]]:
    """`{"gpio": {"port": 20049, "alive": true}, "servo": {"port": 20045}}`."""
    summary: dict[str, dict[str, Any]] = {}
    for driver in drivers:
        entry: dict[str, Any] = {"port": driver.port}
        if driver.alive is not None:
            entry["alive"] = driver.alive
        summary[driver.name.lower()] = entry
    return summary


def sensors_summary(config: BridgeConfig, board: str | None) -> dict[str, Any] | None:
    """The sensors enabled and whether the board has them (None while it is not known; only a
    MATRIX Creator has); None without a `sensors` section."""
    if config.sensors is None:
        return None
    present = None if board is None else board == "Creator"
    return {"enabled": list(config.sensors.enabled), "present": present}


def info_payload(
    config: BridgeConfig,
    *,
    drivers: Iterable[DriverState],
    libraries: Mapping[str, str | None],
    log_level: str,
    started: str,
    last_driver_error: Mapping[str, str] | None,
    board: str | None = None,
) -> dict[str, Any]:
    """What `<base>/bridge/info` says (no secret: nothing of the `mqtt` section is in it).

    Args:
        config: the bridge's config (only its pins are shown).
        drivers: the MALOS drivers and their state.
        libraries: `library_versions()`.
        log_level: the bridge's logging level ("INFO").
        started: when the bridge started, as `core.reports.utc_stamp()` writes it.
        last_driver_error: `{"text", "time"}` of the last frame of a driver's error port.
        board: "Creator" or "Voice" once known.
    """
    return {
        "version": __version__,
        "python": platform.python_version(),
        "libraries": dict(libraries),
        "drivers": drivers_summary(drivers),
        "board": board,
        "pins": [pin_summary(spec) for spec in config.pins],
        "sensors": sensors_summary(config, board),
        "log_level": log_level,
        "started": started,
        "last_driver_error": None if last_driver_error is None else dict(last_driver_error),
    }


__all__ = [
    "LIBRARIES",
    "DriverState",
    "info_payload",
    "library_versions",
    "pin_summary",
    "sensors_summary",
]
