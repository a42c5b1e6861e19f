"""flood.py's driver phase: a hostile driver flips two inputs at 10 kHz."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
from common import BenchmarkError
from common.facts import (
    BridgeCode,
)
from common.ports import HOST
from flood_clients import Received
from flood_common import (
    FLIP_PINS,
    FLOOD_TICK,
    IDLE_GAP,
    PLANNED_STATE_RATE,
    QUIET,
    QUIET_CAP,
    RESUMED,
    SILENCE,
    PhaseResult,
    Settings,
    mb,
    own_cpu_seconds,
    per_second,
)
from flood_rig import Driver, rig

from mqtt_gpio_bridge.sim.codec import encode_levels
from mqtt_gpio_bridge.sim.driver import PUB_SNDHWM

# -- the hostile driver -----------------------------------------------------------------------


@dataclass(frozen=True)
class DriverFlood:
    sent: int
    started: float
    ended: float
    last_levels: int
    longest_gap_ms: float
    """Longest time between two rounds of sending (this process not scheduled, or the GIL)."""


class HostileDriver:
    """A fake MALOS GPIO driver on four ports of its own that sends valid updates at any rate.

    When not flooding it sends its levels every `IDLE_GAP` seconds, as MALOS does; after a
    flood it stays silent until `resume()`. What the bridge sends (configs, pings) is read and
    dropped.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.levels = 0
        self._silent = False
        self._request: tuple[float, float, tuple[int, int]] | None = None
        self._result: DriverFlood | None = None
        self._done = threading.Event()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._serve, name="hostile-driver", daemon=True)

    def start(self) -> HostileDriver:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise BenchmarkError(f"the hostile driver could not bind: {self._error}")
        return self

    def flood(self, rate: float, seconds: float, pins: tuple[int, int]) -> DriverFlood:
        """Send updates flipping both `pins` each, `rate` a second for `seconds`; then silence."""
        self._done.clear()
        self._request = (rate, seconds, pins)
        if not self._done.wait(seconds + 30) or self._result is None:
            raise BenchmarkError("the hostile driver's flood did not finish")
        return self._result

    def resume(self) -> None:
        """Send the periodic updates again."""
        self._silent = False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _serve(self) -> None:
        context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sockets: list[zmq.Socket[bytes]] = []
        try:
            for offset, kind in enumerate((zmq.PULL, zmq.PULL, zmq.PUB, zmq.PUB)):
                socket = context.socket(kind)
                sockets.append(socket)
                socket.setsockopt(zmq.LINGER, 0)
                if kind == zmq.PUB:
                    socket.setsockopt(zmq.SNDHWM, PUB_SNDHWM)
                socket.bind(f"tcp://{HOST}:{self.port + offset}")
        except zmq.ZMQError as exc:
            self._error = str(exc)
            for socket in sockets:
                socket.close(0)
            context.term()
            self._ready.set()
            return
        config_in, ping_in, _errors_out, updates_out = sockets
        poller = zmq.Poller()
        poller.register(config_in, zmq.POLLIN)
        poller.register(ping_in, zmq.POLLIN)
        self._ready.set()
        next_idle = time.monotonic()
        try:
            while not self._stop.is_set():
                for socket, _ in poller.poll(10):
                    _drain(socket)
                request = self._request
                if request is not None:
                    self._result = self._flood(updates_out, (config_in, ping_in), *request)
                    self._request = None
                    self._silent = True
                    self._done.set()
                    continue
                moment = time.monotonic()
                if not self._silent and moment >= next_idle:
                    updates_out.send(encode_levels(self.levels))
                    next_idle = moment + IDLE_GAP
        finally:
            for socket in sockets:
                socket.close(0)
            context.term()

    def _flood(
        self,
        updates_out: zmq.Socket[bytes],
        inbound: tuple[zmq.Socket[bytes], ...],
        rate: float,
        seconds: float,
        pins: tuple[int, int],
    ) -> DriverFlood:
        levels = (
            (self.levels | 1 << pins[0]) & ~(1 << pins[1]),
            (self.levels | 1 << pins[1]) & ~(1 << pins[0]),
        )
        frames = [encode_levels(levels[0]), encode_levels(levels[1])]
        sent = 0
        longest = 0.0
        started = last_round = time.monotonic()
        while True:
            moment = time.monotonic()
            longest = max(longest, moment - last_round)
            last_round = moment
            if moment - started >= seconds:
                break
            due = int((moment - started) * rate) + 1
            while sent < due:
                updates_out.send(frames[sent % 2])  # a PUB drops beyond its HWM, never blocks
                sent += 1
            for socket in inbound:
                _drain(socket)
            time.sleep(FLOOD_TICK)
        self.levels = levels[(sent - 1) % 2]
        return DriverFlood(sent, started, time.monotonic(), self.levels, longest * 1000)


def _drain(socket: zmq.Socket[bytes]) -> None:
    with contextlib.suppress(zmq.Again):
        while True:
            socket.recv(zmq.NOBLOCK)


def add_state_rate(
    result: PhaseResult, pin: int, times: list[float], flood: DriverFlood, resumed: float
) -> None:
    """One pin's state messages per second during the driver flood, and after its last update."""
    times = [moment for moment in times if moment < resumed]
    during = [moment for moment in times if moment <= flood.ended]
    wall = flood.ended - flood.started
    buckets = per_second(times, flood.started, max([flood.ended, *times]) + 1e-6)
    each = ", ".join(f"{n:,}" for n in buckets)
    result.add(
        f"pin {pin} state messages: mean / peak per second (each second)",
        f"{len(during) / wall:,.0f} / {max(buckets):,} ({each}); {len(times):,} in all, "
        f"{len(times) - len(during):,} after the last update",
        **{
            f"pin{pin}_mean_per_s": round(len(during) / wall, 1),
            f"pin{pin}_peak_per_s": max(buckets),
            f"pin{pin}_per_second": buckets,
            f"pin{pin}_total": len(times),
        },
    )


def check_last_states(
    result: PhaseResult, label: str, seen: dict[int, Received | None], levels: int
) -> None:
    """Whether each pin's last state message says the last level the driver sent."""
    checks = []
    for pin, message in seen.items():
        wanted = "ON" if levels >> pin & 1 else "OFF"
        got = None if message is None else message.payload.decode(errors="replace")
        checks.append(f"pin {pin} {got} (sent {wanted}){'' if got == wanted else ' MISMATCH'}")
        if got != wanted:
            result.problems.append(
                f"{label}: pin {pin} last published {got!r}, last level sent {wanted!r}"
            )
    result.add(f"last published state {label}", "; ".join(checks))


def driver_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """3. A driver flooding valid updates that flip two inputs each time."""
    rate, seconds = settings.driver_rate, settings.driver_seconds
    pins = FLIP_PINS
    result = PhaseResult(
        "driver",
        "3. Driver update flood",
        f"A hostile driver (ports bound by this process, updates PUB SNDHWM {PUB_SNDHWM} like "
        f"MALOS) sends updates flipping inputs {pins[0]} and {pins[1]} each, {rate:,.0f} a "
        f"second for {seconds:g} s, in rounds every {FLOOD_TICK * 1000:g} ms; state messages "
        f"counted at a QoS 0 subscriber on `<base>/#`, in 1-s buckets from the first update. "
        f"Then {SILENCE:g} s without updates, then periodic updates ({IDLE_GAP:g} s) with the "
        f"last levels for {RESUMED:g} s.",
    )
    drivers: list[HostileDriver] = []

    def start_driver(port: int) -> Driver:
        drivers.append(HostileDriver(port).start())
        return drivers[-1]

    with rig(workdir, code, start_driver, lambda base, _prefix: [f"{base}/#"]) as run:
        driver = drivers[0]
        state_topics = {run.state_topic(pin): pin for pin in pins}
        run.recorder.quiet_after(time.monotonic(), lambda _m: True, QUIET, QUIET_CAP)
        before_kb = run.rss_kb()
        cpu_before, broker_before = run.cpu_seconds(), run.broker_cpu_seconds()
        own_before = own_cpu_seconds()
        flood = driver.flood(rate, seconds, pins)
        wall = flood.ended - flood.started
        cpu_flood = run.cpu_seconds() - cpu_before
        broker_flood = run.broker_cpu_seconds() - broker_before
        own_flood = own_cpu_seconds() - own_before
        time.sleep(SILENCE)
        after_silence = {pin: run.recorder.last(run.state_topic(pin)) for pin in pins}
        resumed = time.monotonic()
        driver.resume()
        time.sleep(RESUMED)
        after_resume = {pin: run.recorder.last(run.state_topic(pin)) for pin in pins}
        after_kb = run.rss_kb()
        peak_kb = run.peak_kb(flood.started, time.monotonic())
        states = [m for m in run.recorder.messages(flood.started) if m.topic in state_topics]
        drops = run.drop_notices()
        alive = run.alive()
    result.add(
        "updates sent",
        f"{flood.sent:,} in {wall:.2f} s ({flood.sent / wall:,.0f}/s); longest pause between "
        f"two rounds {flood.longest_gap_ms:.1f} ms",
        updates_sent=flood.sent,
        flood_seconds=round(wall, 3),
        longest_gap_ms=round(flood.longest_gap_ms, 1),
    )
    for pin in pins:
        add_state_rate(
            result, pin, [m.at for m in states if state_topics[m.topic] == pin], flood, resumed
        )
    result.add(
        "planned cap (mqtt.max_state_rate default)",
        f"{PLANNED_STATE_RATE} per pin per second",
        planned_cap=PLANNED_STATE_RATE,
    )
    result.add(
        "CPU during the flood: bridge / Mosquitto / this process (driver, recorder)",
        f"{100 * cpu_flood / wall:.0f} % / {100 * broker_flood / wall:.0f} % / "
        f"{100 * own_flood / wall:.0f} % of one core ({cpu_flood:.2f} / {broker_flood:.2f} / "
        f"{own_flood:.2f} s over {wall:.1f} s)",
        bridge_cpu_flood_s=round(cpu_flood, 2),
        broker_cpu_flood_s=round(broker_flood, 2),
        own_cpu_flood_s=round(own_flood, 2),
    )
    result.add(
        "bridge RSS: before / peak / at the end",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(after_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_end_kb=after_kb,
    )
    check_last_states(result, f"after {SILENCE:g} s of silence", after_silence, flood.last_levels)
    check_last_states(
        result, f"after {RESUMED:g} s of periodic updates", after_resume, flood.last_levels
    )
    result.data["last_state_problems"] = list(result.problems)
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result
