"""What a part of the bridge looks like to the core: an object with hooks.

A MALOS driver, Home Assistant discovery, the bridge's own API (`service/`), and whatever
comes next are each one `Concern`. The core (`core/bridge.py`) runs the poll loop and
calls their hooks; it knows nothing of pins, LEDs or discovery. Adding a part means adding a
module with a concern in it and listing it where the core builds its concerns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import BridgeConfig
    from ..malos.driver import Driver
    from .stats import Stats
    from .timers import Timers


@dataclass(frozen=True, slots=True)
class Route:
    """A topic filter and what handles the messages arriving on it.

    Attributes:
        topic_filter: what to subscribe to (wildcards allowed).
        handler: called with (topic, payload, retained) for each message that matches.
        qos: the subscription's QoS; None for a filter the concern subscribes to itself, when
            and for as long as it needs (the route still delivers what arrives).
        command: a command topic: a retained message on it is a replay of an old command and
            never reaches the handler (unless `mqtt.retained_commands: apply`).
    """

    topic_filter: str
    handler: Callable[[str, bytes, bool], None]
    qos: int | None
    command: bool = False


class Hub(Protocol):
    """What the core offers every concern."""

    config: BridgeConfig
    timers: Timers
    stats: Stats
    """The counters of `<base>/bridge/health`: increment them where things happen."""

    @property
    def board(self) -> str | None:
        """ "Creator" or "Voice" once known (from the LED ring's driver), else None."""

    def publish(self, topic: str, payload: str | bytes, *, qos: int, retain: bool = False) -> None:
        """Publish if a broker session is open (else it is published again at the next one)."""

    def report(
        self, text: str, *, source: str = "bridge", pin: int | None = None, topic: str | None = None
    ) -> None:
        """Log a problem and report it on `topic`, by default `<base>/gpio/status` (thinned out
        in floods)."""

    def refuse(self, text: str, *, pin: int | None = None, topic: str | None = None) -> None:
        """Report a refused command, and count it."""

    def subscribe(self, topic_filter: str, qos: int) -> None:
        """Subscribe in the current session (for a route with `qos` None)."""

    def unsubscribe(self, topic_filter: str) -> None:
        """Leave a filter in the current session."""

    def session_token(self) -> object | None:
        """A token of the open broker session, None without one: a timer started in one
        session can tell whether it still runs."""

    def announce(self) -> None:
        """Have every concern publish again everything it keeps retained on the broker."""

    def driver_changed(self, driver: Driver[Any]) -> None:
        """A driver came up or went away (see `Driver.alive`)."""

    def driver_error(self, driver: str, text: str) -> None:
        """A MALOS driver (its name, "GPIO") said `text` on its error port: report it."""


class Concern:
    """One part of the bridge; the core calls these hooks, all in the poll loop's thread.

    Override the ones you need; none of them may block.
    """

    def __init__(self, hub: Hub) -> None:
        """Keep the hub; a concern opens nothing before `start()`."""
        self.hub = hub

    def routes(self) -> Iterable[Route]:
        """The topic filters this concern takes messages on."""
        return ()

    def fast_routes(self) -> Mapping[str, Callable[[bytes], None]]:
        """Exact command topics and their handlers (payload only), tried before any filter:
        the hot path, one dict lookup per message. Each must also fall under a route."""
        return {}

    def open(self, stack: contextlib.ExitStack) -> Mapping[object, Callable[[], None]]:
        """Open this concern's sockets (closed by `stack` when the bridge stops) and return
        the ones the poll loop watches, with what to call when one is readable."""
        return {}

    def start(self) -> None:
        """The poll loop is about to run: schedule the first timers."""

    def connected(self) -> None:
        """A broker session was accepted; the routes are subscribed."""

    def announce(self) -> None:
        """Publish everything this concern keeps retained (after each connection, and when
        Home Assistant restarts: the broker may have lost it)."""

    def driver_changed(self, driver: Driver[Any]) -> None:
        """A driver came up or went away."""

    def driver_error(self, driver: str, text: str) -> None:
        """A MALOS driver (its name, "GPIO") said `text` on its error port (already reported)."""

    def stop(self) -> None:
        """A clean stop: finish what must not be left half done (the session is still open)."""


__all__ = ["Concern", "Hub", "Route"]
