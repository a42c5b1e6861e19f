"""perf.py's throughput phase: bursts of QoS 1 commands, and the broker-only baseline."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from perf_base import PerfBase
from perf_clients import ConfigTap, Subscriber
from perf_hops import burst_commands, check_order, wait_progress
from perf_settings import BURST_STALL, PIN_COUNT, now_ns
from perf_subjects import BridgeRun


class ThroughputPhase(PerfBase):
    """Bursts of QoS 1 commands: through the bridge, and to a bare subscriber."""

    def publish_burst(
        self, messages: Sequence[tuple[str, str]], credits: threading.Semaphore | None
    ) -> dict[str, Any]:
        """Publish QoS 1 `messages` as fast as paho takes them; with `credits`, one credit per
        message, returned when it arrived at the far end (a window of in-flight messages).

        Returns the times: start, end of the publish loop, last PUBACK, and whether the
        window stalled (a message never arrived).
        """
        started = now_ns()
        infos = []
        stalled = False
        for topic, payload in messages:
            if credits is not None and not credits.acquire(timeout=BURST_STALL):
                stalled = True
                break
            infos.append(self.pub.publish(topic, payload, qos=1))
        published = now_ns()
        acked = self._wait_acked(infos)
        return {
            "started": started,
            "publish_loop_s": (published - started) / 1e9,
            "all_acked_s": None if acked is None else (acked - started) / 1e9,
            "window_stalled": stalled,
        }

    def burst_broker_only(self, window: int | None) -> dict[str, Any]:
        """Throughput baseline: the same QoS 1 burst to a bare paho subscriber."""
        topic = f"perfburst/{self.unique}/{window}"
        counter = Subscriber(self.broker.port, "burst", count_topic=topic)
        try:
            counter.subscribe([topic], qos=1)
            n = self.settings.burst
            counter.credits = None if window is None else threading.Semaphore(window)
            timing = self.publish_burst(
                [(topic, "ON" if i % 2 else "OFF") for i in range(n)], counter.credits
            )
            wait_progress(lambda: len(counter.counted), n)
            got = list(counter.counted)
            span = (got[-1] - timing["started"]) / 1e9 if got else float("nan")
            return {
                **timing,
                "sent": n,
                "received": len(got),
                "lost": n - len(got),
                "rate_per_s": len(got) / span if got else 0.0,
            }
        finally:
            counter.close()

    def _wait_acked(self, infos: list[paho.MQTTMessageInfo]) -> int | None:
        deadline = time.monotonic() + 60
        for info in infos:
            while not info.is_published():
                if time.monotonic() > deadline:
                    return None
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(0.1)
        return now_ns()

    def burst_through_bridge(
        self, run: BridgeRun, tap: ConfigTap, window: int | None
    ) -> dict[str, Any]:
        """4: N set commands, QoS 1, round robin over the 16 outputs, each pin alternating and
        ending ON; every one must become a config, in order, and the pins must end ON.

        `window`: at most that many commands published and not yet seen as configs at the
        driver (None: all at once).
        """
        n = self.settings.burst
        commands = burst_commands(n)
        topics = [run.set_topic(pin) for pin in range(PIN_COUNT)]
        first_record = len(tap.records)
        drops_before = self.broker.drop_notices()
        log = run.log
        held_before = log.read_text(errors="replace").count("not taking configs")
        tap.credits = None if window is None else threading.Semaphore(window)
        timing = self.publish_burst(
            [(topics[pin], "ON" if value else "OFF") for pin, value in commands], tap.credits
        )
        wait_progress(lambda: len(tap.records) - first_record, n)
        time.sleep(0.5)  # anything after the last expected config (resends) is counted too
        tap.credits = None
        records = [(t, pin, value) for t, pin, _mode, value in tap.records[first_record:]]
        in_order, lost_per_pin = check_order(commands, [(p, v) for _t, p, v in records])
        # Final state: every pin ON on the board (output, high) and in its retained state.
        final_problems = []
        levels, direction = run.board.levels(), run.board.direction
        for pin in range(PIN_COUNT):
            if not (direction >> pin) & 1:
                final_problems.append(f"pin {pin}: not an output on the board")
            elif not (levels >> pin) & 1:
                final_problems.append(f"pin {pin}: low on the board, last command ON")
        final_problems += run.wait_states(dict.fromkeys(range(PIN_COUNT), "ON"))
        span = (records[-1][0] - timing["started"]) / 1e9 if records else float("nan")
        times = [t for t, _pin, _value in records]
        steady = float("nan")
        if len(times) >= 20:
            low, high = times[len(times) // 10], times[len(times) * 9 // 10]
            steady = (len(times) * 8 // 10) / ((high - low) / 1e9) if high > low else steady
        lost = sum(max(0, x) for x in lost_per_pin)
        extra = sum(max(0, -x) for x in lost_per_pin)
        return {
            **timing,
            "window": window,
            "sent": n,
            "configs": len(records),
            "lost": lost,
            "extra": extra,
            "lost_per_pin": lost_per_pin,
            "in_order": in_order,
            "final_ok": not final_problems,
            "final_problems": final_problems,
            "nothing_lost": lost == 0 and extra == 0 and in_order and not final_problems,
            "span_s": span,
            "rate_per_s": len(records) / span if records else 0.0,
            "steady_rate_per_s": steady,
            "broker_drop_notices": self.broker.drop_notices() - drops_before,
            "bridge_held_warnings": log.read_text(errors="replace").count("not taking configs")
            - held_before,
        }
