"""The payload of `<base>/bridge/health`: uptime, the process's memory and CPU, the counters
(pure, but for `resident_memory` and `cpu_seconds`, which read the process's own figures)."""

from __future__ import annotations

import os
import time
from typing import Any

from ..core.stats import Stats

STATM = "/proc/self/statm"


def resident_memory(statm: str = STATM) -> int | None:
    """The process's resident memory in bytes (Linux's `/proc/self/statm`), None elsewhere."""
    try:
        with open(statm, encoding="ascii") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """CPU seconds the process has used so far, user and system, every thread."""
    return time.process_time()


def health_payload(
    stats: Stats, *, uptime: float, memory: int | None, cpu: float, time: str
) -> dict[str, Any]:
    """What `<base>/bridge/health` says.

    Args:
        stats: the bridge's counters.
        uptime: seconds since the bridge started.
        memory: resident memory in bytes (None where it cannot be read).
        cpu: CPU seconds (user + system) used since the bridge started.
        time: now, as `core.reports.utc_stamp()` writes it.
    """
    return {
        "time": time,
        "uptime": round(uptime, 3),
        "memory_bytes": memory,
        "cpu_seconds": round(cpu, 3),
        "commands": {
            "received": stats.commands_received,
            "applied": stats.commands_applied,
            "refused": stats.commands_refused,
        },
        "driver_updates": stats.driver_updates,
        "malos_restarts": stats.malos_restarts,
        "broker_reconnects": stats.broker_reconnects,
        "events_published": stats.events_published,
        "sensor_values": stats.sensor_values,
    }


__all__ = ["cpu_seconds", "health_payload", "resident_memory"]
