"""The MQTT topic names of one bridge, derived from `mqtt.base_topic` (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the bridge publishes or subscribes to under one base topic."""

    base: str

    @property
    def status(self) -> str:
        """Retained availability: `online` / `offline` (also the last will)."""
        return f"{self.base}/status"

    @property
    def errors(self) -> str:
        """Driver errors and refused commands, as JSON, not retained."""
        return f"{self.base}/gpio/status"

    @property
    def command_filter(self) -> str:
        """The one subscription the bridge needs: every pin's `set` topic."""
        return f"{self.base}/gpio/+/set"

    @property
    def state_filter(self) -> str:
        """Every pin's state topic."""
        return f"{self.base}/gpio/+/state"

    def state(self, pin: int) -> str:
        """Retained state of one pin."""
        return f"{self.base}/gpio/{pin}/state"

    def event(self, pin: int) -> str:
        """Press events of one input pin, as JSON, not retained."""
        return f"{self.base}/gpio/{pin}/event"

    def command(self, pin: int | str) -> str:
        """Where commands for one output or servo pin arrive (`pin` as written: 4 or "04")."""
        return f"{self.base}/gpio/{pin}/set"

    def pin_segment(self, command_topic: str) -> str | None:
        """Return the `<pin>` part of a `<base>/gpio/<pin>/set` topic, or None if not one."""
        prefix = f"{self.base}/gpio/"
        if not command_topic.startswith(prefix) or not command_topic.endswith("/set"):
            return None
        segment = command_topic[len(prefix) : -len("/set")]
        return None if "/" in segment else segment

    # -- the LED ring and the sensors ------------------------------------------------------------

    @property
    def everloop_set(self) -> str:
        """Where commands for the LED ring arrive (Home Assistant's JSON light schema)."""
        return f"{self.base}/everloop/set"

    @property
    def everloop_state(self) -> str:
        """Retained JSON: what the bridge last showed on the ring."""
        return f"{self.base}/everloop/state"

    @property
    def everloop_status(self) -> str:
        """Refused LED ring commands, as JSON, not retained."""
        return f"{self.base}/everloop/status"

    def sensor_state(self, name: str) -> str:
        """Retained value of one sensor (`temperature`)."""
        return f"{self.base}/sensor/{name}/state"

    def sensor_attributes(self, name: str) -> str:
        """Retained JSON beside a sensor's value (the UV index's risk word)."""
        return f"{self.base}/sensor/{name}/attributes"

    def driver_status(self, driver: str) -> str:
        """Retained `online` / `offline` of one MALOS driver (`everloop`, `humidity`): whether
        it sends updates. Entities of that driver need it and `status` both."""
        return f"{self.base}/malos/{driver}/status"

    # -- the bridge's own API (`service/`) --------------------------------------------------------

    @property
    def bridge_info(self) -> str:
        """Retained JSON: what the bridge is and what it talks to."""
        return f"{self.base}/bridge/info"

    @property
    def bridge_health(self) -> str:
        """JSON every `health.interval` seconds, not retained: uptime, resources, counters."""
        return f"{self.base}/bridge/health"

    @property
    def bridge_request_filter(self) -> str:
        """Where requests to the bridge arrive: one level, the request's name."""
        return f"{self.base}/bridge/request/+"

    def bridge_response(self, name: str) -> str:
        """Where the answer to the request `name` goes."""
        return f"{self.base}/bridge/response/{name}"

    def request_name(self, request_topic: str) -> str | None:
        """Return the `<name>` of a `<base>/bridge/request/<name>` topic, or None if not one."""
        prefix = f"{self.base}/bridge/request/"
        if not request_topic.startswith(prefix):
            return None
        name = request_topic[len(prefix) :]
        return None if "/" in name else name
