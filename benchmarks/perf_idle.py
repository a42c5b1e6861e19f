"""perf.py's idle phase: CPU time and memory over idle windows."""

from __future__ import annotations

import time

from common.processes import (
    memory_detail_kb,
    memory_kb,
)
from perf_base import IdleResult, SubjectIdle
from perf_clients import ConfigTap
from perf_hops import cpu_shares
from perf_settings import PIN_COUNT, SETTLE, PerfError, mb
from perf_subjects import BridgeRun, MqttIo, NullRun
from perf_throughput import ThroughputPhase


class IdlePhase(ThroughputPhase):
    """Idle windows: CPU time and memory of the bridge, perf_null.py and mqtt-io."""

    def idle_window(
        self, pins: int, interval: float, seconds: float, *, throughput: bool = False
    ) -> None:
        """5: one bridge with `pins` outputs idling for `seconds`, perf_null.py beside it."""
        label = f"idle-{pins}p-{interval:g}s"
        tap = ConfigTap()
        run = BridgeRun(self, label, outputs=range(pins), update_interval=interval, tap=tap)
        null: NullRun | None = None
        try:
            run.start()
            # Started once the bridge is up: two interpreters starting at once would share
            # the cores and slow each other's start-up.
            null = NullRun(self, interval).start()
            time.sleep(SETTLE)
            share, wall = cpu_shares((run.pid, null.pid), seconds)
            if not run.alive():
                raise PerfError(f"bridge {label} died")
            rss, hwm = memory_kb(run.pid)
            null_rss, _ = memory_kb(null.pid)
            result = IdleResult(
                pins=pins,
                interval=interval,
                window_s=wall,
                cpu_pct=share[0],
                rss_kb=rss,
                hwm_kb=hwm,
                startup_s=run.startup_s,
                null_cpu_pct=share[1],
                null_rss_kb=null_rss,
                null_startup_s=null.startup_s,
            )
            result.pss_kb, result.uss_kb = memory_detail_kb(run.pid)
            result.null_pss_kb, result.null_uss_kb = memory_detail_kb(null.pid)
            null.stop()
            null = None
            if throughput:
                self.quiet("throughput through the bridge")
                window = self.settings.window
                self.throughput["windowed"] = self.burst_through_bridge(run, tap, window)
                self.throughput["burst"] = self.burst_through_bridge(run, tap, None)
                self.throughput["hwm_after_kb"] = memory_kb(run.pid)[1]
            self.peak_hwm_kb = max(self.peak_hwm_kb, memory_kb(run.pid)[1])
            self.idle.append(result)
            print(
                f"perf:   {label}: {result.cpu_pct:.3f}% CPU, {mb(rss)} "
                f"(null {result.null_cpu_pct:.3f}%), start-up {run.startup_s:.3f} s",
                flush=True,
            )
        finally:
            if null is not None:
                null.stop()
            run.stop()
            self.exits[label] = run.exit_status
            if self.idle and self.idle[-1].pins == pins and self.idle[-1].interval == interval:
                self.idle[-1].exit_status = run.exit_status

    def mqttio_idle_window(self, subject: MqttIo, inputs: int, seconds: float) -> None:
        """5m: mqtt-io with 16 pins, `inputs` of them polled inputs at 0.1 s, idling."""
        interval = 0.1
        label = f"idle-{inputs}in-{interval:g}s"
        run = BridgeRun(
            self,
            label,
            outputs=range(PIN_COUNT - inputs),
            inputs=range(PIN_COUNT - inputs, PIN_COUNT),
            update_interval=interval,
            subject=subject,
        )
        try:
            run.start()
            assert run.stdout is not None
            time.sleep(SETTLE)
            lines_before = run.stdout.lines
            (share,), wall = cpu_shares((run.pid,), seconds)
            lines = run.stdout.lines - lines_before
            if not run.alive():
                raise PerfError(f"mqtt-io {label} died")
            rss, hwm = memory_kb(run.pid)
            pss, uss = memory_detail_kb(run.pid)
            result = SubjectIdle(
                outputs=len(run.outputs),
                inputs=inputs,
                interval=interval,
                window_s=wall,
                cpu_pct=share,
                rss_kb=rss,
                hwm_kb=hwm,
                pss_kb=pss,
                uss_kb=uss,
                startup_s=run.startup_s,
                stdout_lines_per_s=lines / wall,
            )
            self.mqttio_idle.append(result)
            print(
                f"perf:   mqtt-io {label}: {share:.3f}% CPU, {mb(rss)}, "
                f"start-up {run.startup_s:.3f} s",
                flush=True,
            )
        finally:
            run.stop()
            self.exits[f"mqtt-io {label}"] = run.exit_status
            if self.mqttio_idle and self.mqttio_idle[-1].inputs == inputs:
                self.mqttio_idle[-1].exit_status = run.exit_status
