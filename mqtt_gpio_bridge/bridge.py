"""The bridge: owns the lifecycle and wires the MALOS link, the pin table and MQTT together."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time

import aiomqtt

from . import discovery
from .codec import PIN_COUNT, decode_levels, encode_pin_config
from .commands import Action, Command, Refusal, parse_command
from .config import BridgeConfig
from .errors import CodecError, ConfigError
from .malos import MalosLink
from .mqtt import describe_problem, ignore_closed_socket_races, mqtt_client, reconnect_delays
from .pins import PinState, PinTable, PinWrite
from .reports import ReportThrottle
from .topics import Topics

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
DISCOVERY_SETTLE = 1.0
"""Seconds to collect this node's retained discovery configs before clearing stale ones."""
_PIN_SEGMENT = re.compile(r"[0-9]{1,2}")


class Bridge:
    """One MATRIX board on one MQTT broker.

    Creating a bridge opens nothing; `run()` does, and closes everything when cancelled.
    """

    def __init__(self, config: BridgeConfig) -> None:
        """Prepare the bridge from a validated config."""
        self.config = config
        self.topics = Topics(config.mqtt.base_topic)
        # A sent level shows in an update within one update delay; the driver's first delay
        # (1 s by default) still runs when the bridge's first config arrives.
        confirm_timeout = max(2.5, 3 * config.malos.update_interval)
        self.pins = PinTable(config.pins, confirm_timeout)
        self._client: aiomqtt.Client | None = None
        self._malos: MalosLink | None = None
        self._driver_alive = False
        self._pulses: dict[int, tuple[asyncio.TimerHandle, Action]] = {}
        self._unsent: set[int] = set()
        self._reports = ReportThrottle()
        self._found_configs: set[str] = set()
        ha = config.homeassistant
        self._discovery = ha.discovery
        self._ha_status_topic = f"{ha.prefix}/status"
        self._own_configs = discovery.own_configs_filter(config)

    @property
    def available(self) -> bool:
        """True while the driver sends updates (what `<base>/status` says)."""
        return self._driver_alive

    async def run(self) -> None:
        """Serve until cancelled."""
        asyncio.get_running_loop().set_exception_handler(ignore_closed_socket_races)
        malos_config = self.config.malos
        async with MalosLink(malos_config.host, malos_config.base_port) as malos:
            self._malos = malos
            # Nothing is sent before the first update: after a MALOS restart any write
            # resets every pin from zeroed shadow registers, so the levels of the pins to
            # "leave as they are" must be read first.
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._keep_alive(malos), name="malos-keepalive")
                    tasks.create_task(self._follow_updates(malos), name="malos-updates")
                    tasks.create_task(self._follow_connection(malos), name="malos-connection")
                    tasks.create_task(self._follow_errors(malos), name="malos-errors")
                    tasks.create_task(self._mqtt_sessions(), name="mqtt")
            finally:
                self._finish_pulses()
                self._malos = None

    # -- MALOS side ---------------------------------------------------------------------------

    def _send(self, writes: list[PinWrite]) -> None:
        """Queue pin configs for the driver; what ZeroMQ cannot take now is retried later.

        While the driver sends no updates nothing is sent at all: the wanted levels are kept
        and every pin is configured again when it is back (last write wins).
        """
        if self._malos is None or not self._driver_alive:
            return
        malos_config = self.config.malos
        for write in writes:
            frame = encode_pin_config(
                write.pin,
                write.mode,
                write.value,
                update_interval=malos_config.update_interval,
                ping_timeout=malos_config.ping_timeout,
            )
            if self._malos.send_config(frame):
                self._unsent.discard(write.pin)
                logger.debug("pin %d -> %s %d", write.pin, write.mode.name, write.value)
            elif write.pin not in self._unsent:
                self._unsent.add(write.pin)
                logger.warning("MALOS is not taking configs fast enough; pin %d held", write.pin)

    def _resend_held(self) -> None:
        if self._unsent:
            self._send([self.pins.rewrite(pin) for pin in sorted(self._unsent)])

    async def _keep_alive(self, malos: MalosLink) -> None:
        while True:
            malos.ping()
            await asyncio.sleep(self.config.malos.keepalive_interval)

    async def _follow_updates(self, malos: MalosLink) -> None:
        offline_after = self.config.malos.offline_after
        while True:
            try:
                async with asyncio.timeout(offline_after):
                    frame = await malos.next_update()
            except TimeoutError:
                if self._driver_alive:
                    logger.warning("no update from MALOS for %.1f s: driver offline", offline_after)
                    await self._set_driver_alive(False)
                continue
            try:
                levels = decode_levels(frame)
            except CodecError as exc:
                await self._report(
                    f"malformed update from MALOS ignored ({len(frame)} bytes): {exc}"
                )
                continue
            now = time.monotonic()
            if not self._driver_alive:
                # The driver is (back) up, maybe with zeroed registers: configure every pin.
                self._driver_alive = True
                self._unsent.clear()
                self._send(self.pins.writes(levels, now))
                self.pins.forget_published()
                logger.info(
                    "MALOS driver is sending updates; %d pins configured", len(self.config.pins)
                )
                await self._publish_availability()
            else:
                self._resend_held()
            for state in self.pins.update(levels, now):
                await self._publish_state(state)

    async def _follow_connection(self, malos: MalosLink) -> None:
        while True:
            connected = await malos.next_connection_event()
            if not connected and self._driver_alive:
                # A closed connection means the driver process ended; the next one starts
                # with zeroed shadow registers, so every pin must be configured again. (The
                # re-connection itself says nothing new, and its event may even arrive after
                # the new driver's first update.)
                logger.warning("MALOS closed the connection: driver stopped or restarting")
                await self._set_driver_alive(False)

    async def _follow_errors(self, malos: MalosLink) -> None:
        while True:
            frame = await malos.next_error()
            text = frame[:500].decode("ascii", errors="replace").strip()
            await self._report(text, source="driver")

    async def _set_driver_alive(self, alive: bool) -> None:
        self._driver_alive = alive
        await self._publish_availability()

    async def _publish_availability(self) -> None:
        status = ONLINE if self._driver_alive else OFFLINE
        await self._publish(self.topics.status, status, qos=1, retain=True)

    # -- MQTT side ----------------------------------------------------------------------------

    async def _mqtt_sessions(self) -> None:
        mqtt = self.config.mqtt
        delays = reconnect_delays(mqtt.reconnect_min, mqtt.reconnect_max)
        last_problem = ""
        while True:
            try:
                async with mqtt_client(self.config, will=(self.topics.status, OFFLINE)) as client:
                    logger.info("connected to MQTT broker %s:%d", mqtt.host, mqtt.port)
                    delays = reconnect_delays(mqtt.reconnect_min, mqtt.reconnect_max)
                    last_problem = ""
                    await self._serve_session(client)
            except (aiomqtt.MqttError, ConfigError, OSError) as exc:  # OSError: TLS files
                problem = describe_problem(exc)
                delay = next(delays)
                # One clear line per new problem; the same one again only at debug level.
                level = logging.DEBUG if problem == last_problem else logging.WARNING
                logger.log(
                    level,
                    "MQTT broker %s:%d: %s; retrying in %.1f s",
                    mqtt.host,
                    mqtt.port,
                    problem,
                    delay,
                )
                last_problem = problem
                await asyncio.sleep(delay)

    async def _serve_session(self, client: aiomqtt.Client) -> None:
        """One connection: subscribe, re-publish what the broker may have lost, then serve."""
        await client.subscribe(self.topics.command_filter, qos=self.config.mqtt.qos)
        cleanup = None
        if self._discovery:
            await client.subscribe(self._ha_status_topic, qos=1)
            # This node's retained configs arrive right after the SUBACK; the ones no pin
            # owns any more are cleared once they had time to arrive.
            self._found_configs.clear()
            await client.subscribe(self._own_configs, qos=1)
            cleanup = asyncio.create_task(self._clear_stale_discovery(client), name="ha-cleanup")
        self._client = client
        try:
            await self._publish_discovery()
            await self._publish_snapshot()
            async for message in client.messages:
                await self._on_message(message)
        except asyncio.CancelledError:
            await self._say_goodbye(client)
            raise
        finally:
            self._client = None
            if cleanup is not None:
                cleanup.cancel()
                await asyncio.gather(cleanup, return_exceptions=True)

    async def _clear_stale_discovery(self, client: aiomqtt.Client) -> None:
        try:
            await asyncio.sleep(DISCOVERY_SETTLE)
            await client.unsubscribe(self._own_configs)
            for topic in discovery.stale_topics(self.config, self._found_configs):
                logger.info("removing stale Home Assistant entity %s", topic)
                await client.publish(topic, b"", qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            logger.debug("stale discovery cleanup interrupted: %s", exc)

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """On a clean stop, say `offline` ourselves: the broker sends the will only on a crash."""
        try:
            async with asyncio.timeout(2):
                await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            logger.debug("could not publish offline: %s", exc)

    async def _publish_discovery(self) -> None:
        for announcement in discovery.announcements(self.config):
            await self._publish(announcement.topic, announcement.payload, qos=1, retain=True)

    async def _publish_snapshot(self) -> None:
        """After (re)connecting: availability and every known pin state, the broker may have
        lost them (no persistence)."""
        await self._publish_availability()
        for state in self.pins.known():
            await self._publish_state(state)

    async def _publish_state(self, state: PinState) -> None:
        assert state.level is not None
        await self._publish(
            self.topics.state(state.spec.pin),
            state.payload(state.level),
            qos=self.config.mqtt.qos,
            retain=True,
        )

    async def _report(self, text: str, *, source: str = "bridge", pin: int | None = None) -> None:
        """Log a problem and report it on `<base>/gpio/status`; floods are thinned out."""
        report = self._reports.admit(text, source, pin)
        if report is None:
            logger.debug("%s (not reported: too many this second)", text)
            return
        logger.warning("%s", text)
        await self._publish(self.topics.errors, report, qos=self.config.mqtt.qos)

    async def _publish(self, topic: str, payload: str, *, qos: int, retain: bool = False) -> None:
        client = self._client
        if client is None:
            return  # published again in the snapshot after reconnecting
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as exc:
            logger.debug("publish to %s failed: %s", topic, exc)
        # aiomqtt awaits the PUBACK through asyncio.wait_for, which on Python 3.11 swallows a
        # cancellation that arrives as the PUBACK does; the task would then serve on after a
        # stop. The request is still counted, so honour it here.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = message.topic
        payload = message.payload if isinstance(message.payload, bytes) else b""
        if topic.matches(self.topics.command_filter):
            await self._on_command(topic.value, payload)
        elif topic.value == self._ha_status_topic:
            if payload.strip() == b"online":
                logger.info("Home Assistant (re)started: announcing every entity again")
                await self._publish_discovery()
                await self._publish_snapshot()
        elif topic.matches(self._own_configs) and message.retain and payload:
            self._found_configs.add(topic.value)

    async def _on_command(self, topic: str, payload: bytes) -> None:
        segment = self.topics.pin_segment(topic) or ""
        pin = int(segment) if _PIN_SEGMENT.fullmatch(segment) else None
        if pin is None or pin >= PIN_COUNT:
            await self._report(f"{topic}: {segment!r} is not a pin number 0..15")
            return
        state = self.pins.get(pin)
        if state is None:
            await self._report(f"pin {pin} is not configured", pin=pin)
            return
        if not state.is_output:
            await self._report(f"pin {pin} is an input; only output pins accept commands", pin=pin)
            return
        spec = state.spec
        command = parse_command(payload, spec.payload_on, spec.payload_off)
        if isinstance(command, Refusal):
            await self._report(f"pin {pin}: {command.reason}", pin=pin)
            return
        if command.action is Action.NOTHING:
            return
        write = self._apply(state, command)
        if write is not None and not self._driver_alive:
            wanted = "on" if state.is_on(write.value) else "off"
            await self._report(
                f"MALOS driver is not sending updates; pin {pin} will be {wanted} when it is back",
                pin=pin,
            )

    def _apply(self, state: PinState, command: Command) -> PinWrite | None:
        """Send a command to the driver; schedule the end of a pulse."""
        pin = state.spec.pin
        self._cancel_pulse(pin)  # a new command replaces a pulse in progress
        write = self.pins.command(state, command.action, time.monotonic())
        if write is None:
            return None
        self._send([write])
        turned_on = state.is_on(write.value)
        duration_ms = command.duration_ms
        if duration_ms is None and turned_on:
            duration_ms = state.spec.pulse_ms
        if duration_ms is not None:
            back = Action.OFF if turned_on else Action.ON
            timer = asyncio.get_running_loop().call_later(
                duration_ms / 1000, self._end_pulse, state, back
            )
            self._pulses[pin] = (timer, back)
        return write

    def _end_pulse(self, state: PinState, back: Action) -> None:
        self._pulses.pop(state.spec.pin, None)
        write = self.pins.command(state, back, time.monotonic())
        if write is not None:
            self._send([write])

    def _cancel_pulse(self, pin: int) -> Action | None:
        pending = self._pulses.pop(pin, None)
        if pending is None:
            return None
        timer, back = pending
        timer.cancel()
        return back

    def _finish_pulses(self) -> None:
        """On the way out, end every pulse now rather than leave a relay closed."""
        for pin in list(self._pulses):
            back = self._cancel_pulse(pin)
            state = self.pins.get(pin)
            if back is not None and state is not None:
                self._end_pulse(state, back)


async def serve(config: BridgeConfig) -> None:
    """Run a bridge until SIGINT or SIGTERM, then stop cleanly."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await Bridge(config).run()
    except asyncio.CancelledError:
        logger.info("stopped")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


__all__ = ["Bridge", "serve"]
