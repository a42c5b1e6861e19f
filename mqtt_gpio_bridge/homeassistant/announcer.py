"""Home Assistant discovery as a part of the bridge: announce every entity at each connection
and when Home Assistant restarts, and remove the entities this node no longer has."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..core.concern import Concern, Hub, Route
from ..core.timers import Timer
from . import discovery

logger = logging.getLogger(__name__)

DISCOVERY_SETTLE = 1.0
"""Seconds to collect this node's retained discovery configs before clearing stale ones."""
ANNOUNCE_WINDOW = 5.0
"""Seconds between two announcements of every entity when Home Assistant says `online` again
and again: further births in that time are answered by one announcement at its end."""


class HomeAssistant(Concern):
    """Publishes the discovery configs (retained), answers Home Assistant's birth message, and
    clears this node's configs that no configured pin owns any more."""

    def __init__(self, hub: Hub) -> None:
        """Prepare the announcements of the configured pins."""
        super().__init__(hub)
        config = hub.config
        self._status_topic = f"{config.homeassistant.prefix}/status"
        self._own_configs = discovery.own_configs_filter(config)
        self._found_configs: set[str] = set()
        self._announced_at = float("-inf")
        self._birth_timer: Timer | None = None

    def routes(self) -> Iterable[Route]:
        return [
            Route(self._status_topic, self._on_status, qos=1),
            # Subscribed for a moment at each connection only (see `connected`).
            Route(self._own_configs, self._on_own_config, qos=None),
        ]

    def connected(self) -> None:
        # This node's retained configs arrive right after the SUBACK; the ones no pin owns
        # any more are cleared once they had time to arrive.
        self._found_configs.clear()
        self.hub.subscribe(self._own_configs, qos=1)
        session = self.hub.session_token()
        self.hub.timers.call_later(DISCOVERY_SETTLE, lambda: self._clear_stale(session))

    def announce(self) -> None:
        timer, self._birth_timer = self._birth_timer, None
        if timer is not None:
            timer.cancel()
        self._announced_at = self.hub.timers.clock()
        for announcement in discovery.announcements(self.hub.config):
            self.hub.publish(announcement.topic, announcement.payload, qos=1, retain=True)

    def _on_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip() != b"online":
            return
        # Announce at most once per window: the births that arrive meanwhile get one
        # announcement when it ends.
        if self._birth_timer is not None:
            logger.debug("Home Assistant online again: announcement already scheduled")
            return
        wait = self._announced_at + ANNOUNCE_WINDOW - self.hub.timers.clock()
        if wait <= 0:
            logger.info("Home Assistant (re)started: announcing every entity again")
            self.hub.announce()
            return
        logger.debug("Home Assistant online again: announcing in %.1f s", wait)
        self._birth_timer = self.hub.timers.call_later(wait, self.hub.announce)

    def _on_own_config(self, topic: str, payload: bytes, retained: bool) -> None:
        if retained and payload:
            self._found_configs.add(topic)

    def _clear_stale(self, session: object | None) -> None:
        if session is None or self.hub.session_token() is not session:
            return  # that session ended; the next one looks again
        self.hub.unsubscribe(self._own_configs)
        for topic in discovery.stale_topics(self.hub.config, self._found_configs):
            logger.info("removing stale Home Assistant entity %s", topic)
            self.hub.publish(topic, b"", qos=1, retain=True)


__all__ = ["ANNOUNCE_WINDOW", "DISCOVERY_SETTLE", "HomeAssistant"]
