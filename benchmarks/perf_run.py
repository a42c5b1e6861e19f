"""perf.py's run: every phase in order."""

from __future__ import annotations

from perf_idle import IdlePhase
from perf_latency import LatencyPhase
from perf_settings import MQTTIO_IDLE_INPUTS


class Perf(LatencyPhase, IdlePhase):
    """One run: every phase in order."""

    def run(self) -> None:
        s = self.settings
        bridge = "bridge" in s.subjects
        self.quiet("broker round trip (back to back)")
        self.start()
        self.round_trips("rtt", s.rtt_messages)
        self.python_starts()
        if bridge:
            self.quiet("latency (command, state, paced baselines)")
            self.latencies()
        if self.mqttio is not None:
            self.quiet("mqtt-io latency (command, paced baselines)")
            self.mqttio_latencies(self.mqttio)
        if bridge:
            self.quiet("throughput baseline (broker only)")
            self.burst_baseline["windowed"] = self.burst_broker_only(s.window)
            self.burst_baseline["burst"] = self.burst_broker_only(None)
            self.quiet("idle 16 pins 0.1 s, then throughput")
            self.idle_window(16, 0.1, s.idle_s, throughput=True)
        if self.mqttio is not None:
            for inputs in MQTTIO_IDLE_INPUTS:
                self.quiet(f"mqtt-io idle 16 pins ({inputs} inputs) 0.1 s")
                self.mqttio_idle_window(self.mqttio, inputs, s.idle_s)
        if bridge:
            self.quiet("idle 16 pins 0.02 s")
            self.idle_window(16, 0.02, s.idle_s)
            for interval in (1.0, 0.1, 0.02):
                for pins in (1, 4):
                    self.quiet(f"idle {pins} pins {interval:g} s")
                    self.idle_window(pins, interval, s.matrix_s)
            self.quiet("idle 16 pins 1 s")
            self.idle_window(16, 1.0, s.matrix_s)
        self.quiet("broker round trip again (drift)")
        self.round_trips("rtt_end", s.rtt_messages)
