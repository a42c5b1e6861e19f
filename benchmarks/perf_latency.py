"""perf.py's latency phase: commands and state changes, with paced baselines."""

from __future__ import annotations

import time

from common.processes import (
    memory_kb,
)
from perf_base import PerfBase
from perf_clients import ConfigTap, UpdateLog
from perf_hops import PipeHop, ZmqHop, ZmqProcessHop
from perf_settings import (
    BUSY_GAP,
    CMD_PIN,
    GAP,
    SAMPLE_TIMEOUT,
    SETTLE,
    STATE_PIN,
    PerfError,
    now_ns,
)
from perf_subjects import BridgeRun, MqttIo, NullRun

from mqtt_gpio_bridge.sim.codec import encode_levels
from mqtt_gpio_bridge.sim.driver import SimulatedDriver


class LatencyPhase(PerfBase):
    """Command and state latency, each sample next to its paced baselines."""

    def latencies(self) -> None:
        """Command and state latency, interleaved with the paced baselines.

        One cycle: command sample (then its state echo is awaited, so that the bridge is
        quiet again), gap, state sample, gap, paced round trip, gap, paced ZeroMQ hop, gap.
        """
        updates = UpdateLog()
        tap = ConfigTap()
        run = BridgeRun(
            self,
            "latency",
            outputs=range(8),
            inputs=range(8, 16),
            update_interval=0.1,
            updates=updates,
            tap=tap,
        )
        run.start()
        hop, process_hop = ZmqHop(), ZmqProcessHop()
        # Two perf_null.py processes, so that the command floor's writes never show in the
        # updates the state floor republishes.
        floor_updates, floor_tap = UpdateLog(), ConfigTap()
        floor = NullRun(self, 0.1, updates=floor_updates, topic=f"perf/{self.unique}/null-state")
        command_floor = NullRun(self, 0.1, topic=f"perf/{self.unique}/null-cmd", tap=floor_tap)
        floor.start()
        command_floor.start()
        try:
            time.sleep(SETTLE)
            if run.wait_states({pin: "OFF" for pin in range(16)}):
                raise PerfError("the latency bridge did not publish every pin OFF")
            hop.warm()
            process_hop.warm()
            rtt_topic = f"perf/{self.unique}/rtt-paced"
            assert floor.topic is not None
            self.sub.subscribe([rtt_topic, floor.topic])
            for _ in range(20):  # warm the paced path too
                self.rtt_sample(rtt_topic, -1)
            s = self.series
            for i in range(self.settings.samples):
                s["command"].record(self.command_sample(run, tap, value=1 - i % 2))
                time.sleep(GAP)
                s["state"].record(self.state_sample(run, updates, level=1 - i % 2))
                time.sleep(GAP)
                s["state_floor"].record(self.floor_sample(floor, floor_updates, level=1 - i % 2))
                time.sleep(GAP)
                s["command_floor"].record(
                    self.floor_command(command_floor, floor_tap, value=1 - i % 2)
                )
                time.sleep(GAP)
                s["rtt_paced"].record(self.rtt_sample(rtt_topic, i))
                time.sleep(GAP)
                s["zmq"].record(hop.sample())
                time.sleep(GAP)
                s["zmq_process"].record(process_hop.sample())
                time.sleep(GAP)
                if not run.alive():
                    raise PerfError("the latency bridge died")
                if (i + 1) % 100 == 0:
                    print(f"perf:   {i + 1}/{self.settings.samples} latency cycles", flush=True)
            self.busy_commands(run, tap)
            self.peak_hwm_kb = max(self.peak_hwm_kb, memory_kb(run.pid)[1])
        finally:
            hop.close()
            process_hop.close()
            floor.stop()
            command_floor.stop()
            run.stop()
            self.exits["latency bridge"] = run.exit_status

    def timed_set(self, topic: str, tap: ConfigTap, value: int) -> int | None:
        """A QoS 0 set (ON/OFF) on `topic` -> the config for pin 0 at `tap`'s driver (ns)."""
        key = (CMD_PIN, value)
        slot = tap.expectations.expect(key)
        started = now_ns()
        self.pub.publish(topic, "ON" if value else "OFF")
        at = slot.wait()
        if at is None:
            tap.expectations.forget(key)
        return None if at is None else at - started

    def timed_flip(
        self,
        driver: SimulatedDriver | None,
        updates: UpdateLog,
        level: int,
        message: tuple[str, str],
        update_interval: float,
    ) -> int | None:
        """Input pin 8 flipped at `driver`; its update sent -> `message` at the subscriber (ns)."""
        assert driver is not None
        arrival = self.sub.expect(*message)
        mark = len(updates.changes)
        driver.set_input(STATE_PIN, level)
        at = arrival.wait(SAMPLE_TIMEOUT + update_interval)
        sent = updates.sent_with(mark, STATE_PIN, level)
        return None if at is None or sent is None else at - sent

    def command_sample(self, run: BridgeRun, tap: ConfigTap, value: int) -> int | None:
        """2: a QoS 0 set on pin 0 -> its config at the driver (ns); then the state echo."""
        echo = self.sub.expect(run.state_topic(CMD_PIN), "ON" if value else "OFF")
        latency = self.timed_set(run.set_topic(CMD_PIN), tap, value)
        # The bridge publishes the new state at the driver's next update: let that pass, so
        # that the next sample starts with a quiet bridge and broker.
        echo.wait()
        return latency

    def busy_commands(self, run: BridgeRun, tap: ConfigTap) -> None:
        """2b: commands BUSY_GAP apart, so that they meet the bridge's own QoS 1 state
        publishes and the broker's PUBACKs for them (Mosquitto's default `set_tcp_nodelay
        false` then holds a command back until the bridge's TCP acknowledges, up to a delayed
        ACK of 40 ms, unless the bridge acknowledges at once)."""
        series = self.series["command_busy"]
        for i in range(self.settings.samples):
            series.record(self.timed_set(run.set_topic(CMD_PIN), tap, value=1 - i % 2))
            time.sleep(BUSY_GAP)

    def floor_command(self, floor: NullRun, tap: ConfigTap, value: int) -> int | None:
        """2f: a QoS 0 set to perf_null.py -> its config at its driver (ns)."""
        return self.timed_set(f"{floor.topic}/set", tap, value)

    def floor_sample(self, floor: NullRun, updates: UpdateLog, level: int) -> int | None:
        """3f: the same input flip at perf_null.py's driver; update sent -> its republished
        update at the subscriber (ns)."""
        assert floor.topic is not None
        frame = encode_levels(level << STATE_PIN).hex()
        return self.timed_flip(
            floor.driver, updates, level, (floor.topic, frame), floor.update_interval
        )

    def state_sample(self, run: BridgeRun, updates: UpdateLog, level: int) -> int | None:
        """3: input pin 8 flipped from outside; update sent -> state message (ns)."""
        message = (run.state_topic(STATE_PIN), "ON" if level else "OFF")
        return self.timed_flip(run.driver, updates, level, message, run.update_interval)

    def mqttio_latencies(self, subject: MqttIo) -> None:
        """2m: mqtt-io's command latency, interleaved with the paced round trip and pipe hop.

        One cycle: command sample (then its state echo), gap, paced round trip, gap, pipe hop,
        gap. Pins as in the bridge's latency run: 0..7 outputs, 8..15 inputs polled at 0.1 s.
        """
        tap = ConfigTap()
        run = BridgeRun(
            self,
            "latency",
            outputs=range(8),
            inputs=range(8, 16),
            update_interval=0.1,
            tap=tap,
            subject=subject,
        )
        run.start()
        hop = PipeHop()
        try:
            time.sleep(SETTLE)
            if run.wait_states({pin: "OFF" for pin in range(16)}):
                raise PerfError("mqtt-io did not publish every pin OFF")
            hop.warm()
            rtt_topic = f"perf/{self.unique}/rtt-paced-mqttio"
            self.sub.subscribe([rtt_topic])
            for _ in range(20):
                self.rtt_sample(rtt_topic, -1)
            s = self.series
            for i in range(self.settings.samples):
                s["mqttio_command"].record(self.command_sample(run, tap, value=1 - i % 2))
                time.sleep(GAP)
                s["mqttio_rtt_paced"].record(self.rtt_sample(rtt_topic, i))
                time.sleep(GAP)
                s["pipe"].record(hop.sample())
                time.sleep(GAP)
                if not run.alive():
                    raise PerfError("mqtt-io died in the latency run")
                if (i + 1) % 100 == 0:
                    print(f"perf:   {i + 1}/{self.settings.samples} mqtt-io cycles", flush=True)
        finally:
            hop.close()
            run.stop()
            self.exits["mqtt-io latency"] = run.exit_status
