"""The bridge's counters, for `<base>/bridge/health`: one small object every part increments.

Each counter is a plain int attribute, incremented where the thing happens (`stats.x += 1`):
the update fast path of the GPIO driver runs 50 times a second, so counting must cost no call.
"""

from __future__ import annotations


class Stats:
    """What happened since the bridge started, counted (all in the poll loop's thread)."""

    __slots__ = (
        "broker_reconnects",
        "commands_applied",
        "commands_received",
        "commands_refused",
        "driver_updates",
        "events_published",
        "malos_restarts",
        "sensor_values",
    )

    def __init__(self) -> None:
        """Every counter at 0."""
        self.commands_received = 0
        """Messages on a command topic (`<base>/gpio/<pin>/set`), retained ones included."""
        self.commands_applied = 0
        """Commands accepted: sent to the driver, or kept for it while it is away."""
        self.commands_refused = 0
        """Commands refused: bad payload, not a configured output or servo, retained."""
        self.driver_updates = 0
        """Frames from the GPIO driver's update port (malformed ones included)."""
        self.malos_restarts = 0
        """Times a MALOS driver came back after having been up."""
        self.broker_reconnects = 0
        """Broker sessions after the first."""
        self.events_published = 0
        """Press events published on `<base>/gpio/<pin>/event`."""
        self.sensor_values = 0
        """Sensor values published on `<base>/sensor/<name>/state`."""


__all__ = ["Stats"]
