"""Home Assistant discovery as a part of the bridge: at each connection, read this node's
retained discovery configs, then publish what `discovery.plan` decides (the configs, a
migration between the two discovery forms, stale configs cleared); announce again when Home
Assistant restarts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.concern import Concern, Hub, Route
from ..core.timers import Timer
from . import discovery

if TYPE_CHECKING:
    from ..malos.driver import Driver

logger = logging.getLogger(__name__)

DISCOVERY_SETTLE = 1.0
"""Seconds to collect this node's retained discovery configs after connecting."""
MIGRATION_STEP = 1.0
"""Seconds between two batches of a migration: Home Assistant unloads an entity in a task of
its own after the migration request, which must be done before its new config arrives."""
ANNOUNCE_WINDOW = 5.0
"""Seconds between two announcements of every entity when Home Assistant says `online` again
and again: further births in that time are answered by one announcement at its end."""


class HomeAssistant(Concern):
    """Publishes the discovery configs (retained), answers Home Assistant's birth message, and
    moves this node's configs from the form it finds to the configured one.

    Nothing is announced in a session before this node's retained configs were read: publishing
    an entity in the new form while Home Assistant still holds it in the old one would make it
    refuse the new config for good (a unique id it already has).
    """

    def __init__(self, hub: Hub) -> None:
        """Prepare; subscribes to nothing before a connection."""
        super().__init__(hub)
        config = hub.config
        self._status_topic = f"{config.homeassistant.prefix}/status"
        self._own_filters = (
            discovery.own_configs_filter(config),
            discovery.device_topic(config),
        )
        self._found: dict[str, bytes] = {}
        self._ready = False
        """This session's configs were read and the plan's configs published."""
        self._announced_at = float("-inf")
        self._birth_timer: Timer | None = None
        self._board: str | None = None
        """The board the configs announced name (None: not known then)."""
        self._waiting: object | None = None
        """The session whose plan waits for the board (sensors need it: no sensor entity
        exists before the board is known to be a Creator)."""
        self._said_waiting = False

    def routes(self) -> Iterable[Route]:
        # The own configs are subscribed for a moment at each connection only (`connected`).
        own = [
            Route(topic_filter, self._on_own_config, qos=None) for topic_filter in self._own_filters
        ]
        if not self.hub.config.homeassistant.discovery:
            return own  # only to clear a device config left from a run with discovery on
        return [Route(self._status_topic, self._on_status, qos=1), *own]

    def connected(self) -> None:
        # This node's retained configs arrive right after the SUBACK; once they had time to,
        # the plan runs.
        self._found.clear()
        self._ready = False
        self._waiting = None
        for topic_filter in self._own_filters:
            self.hub.subscribe(topic_filter, qos=1)
        session = self.hub.session_token()
        self.hub.timers.call_later(DISCOVERY_SETTLE, lambda: self._run_plan(session))

    def announce(self) -> None:
        timer, self._birth_timer = self._birth_timer, None
        if timer is not None:
            timer.cancel()
        if not self._ready:
            return  # the plan announces once this node's retained configs are known
        self._announced_at = self.hub.timers.clock()
        self._board = self.hub.board
        self._publish(discovery.announcements(self.hub.config, self._board))

    def driver_changed(self, driver: Driver[Any]) -> None:
        # The LED ring's driver told the board: the device's model names it, and the sensors
        # exist on a Creator only.
        if self._waiting is not None and self.hub.board is not None:
            session, self._waiting = self._waiting, None
            self._run_plan(session)
            return
        if self._ready and self.hub.board != self._board:
            logger.info("the board is a MATRIX %s: announced again", self.hub.board)
            self.announce()

    def _publish(self, announcements: list[discovery.Announcement]) -> None:
        for announcement in announcements:
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
        if retained:
            self._found[topic] = payload

    def _run_plan(self, session: object | None) -> None:
        if session is None or self.hub.session_token() is not session:
            return  # that session ended; the next one looks again
        if self.hub.config.sensors is not None and self.hub.board is None:
            if not self._said_waiting:
                self._said_waiting = True
                logger.info(
                    "Home Assistant discovery waits for the MALOS Everloop driver to tell the "
                    "board (sensor entities exist on a MATRIX Creator only)"
                )
            self._waiting = session
            return
        for topic_filter in self._own_filters:
            self.hub.unsubscribe(topic_filter)
        self._board = self.hub.board
        batches = discovery.plan(self.hub.config, self._found, self._board)
        current = set(discovery.announcements(self.hub.config, self._board))
        self._describe(batches)
        for index, batch in enumerate(batches):
            self.hub.timers.call_later(
                index * MIGRATION_STEP, functools.partial(self._run_batch, session, batch, current)
            )
        if not batches:
            self._ready = True

    def _run_batch(
        self,
        session: object | None,
        batch: list[discovery.Announcement],
        current: set[discovery.Announcement],
    ) -> None:
        if self.hub.session_token() is not session:
            return  # cut short: the next session finds what is left and goes on from there
        self._publish(batch)
        if current.issubset(batch):
            self._ready = True
            self._announced_at = self.hub.timers.clock()
            if self.hub.board != self._board:
                self.announce()  # the board became known during a migration

    def _describe(self, batches: list[list[discovery.Announcement]]) -> None:
        config = self.hub.config
        for batch in batches:
            for announcement in batch:
                if announcement.payload == discovery.MIGRATE:
                    logger.info(
                        "moving Home Assistant entity %s to %s discovery",
                        announcement.topic,
                        config.homeassistant.discovery_mode,
                    )
                elif not announcement.payload:
                    logger.info("removing Home Assistant discovery config %s", announcement.topic)


__all__ = ["ANNOUNCE_WINDOW", "DISCOVERY_SETTLE", "MIGRATION_STEP", "HomeAssistant"]
