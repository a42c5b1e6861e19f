"""perf.py's report rows for mqtt-io, beside the bridge's."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from perf_base import IdleResult
from perf_run import Perf
from perf_settings import (
    MQTTIO_ADDS_P50,
    MQTTIO_ADDS_P99,
    MQTTIO_IDLE_CPU,
    MQTTIO_IDLE_INPUTS,
    MQTTIO_RSS_MB,
    MQTTIO_STARTUP,
    at_most,
    mb,
    placed,
    ratio,
    secs,
    span,
    us,
)


def added_time(perf: Perf) -> dict[str, float]:
    """Latency each subject adds to its same-run baselines (µs), a difference of percentiles:
    its command latency minus the paced round trip measured in the same phase (interleaved
    with its commands, so under the same conditions) and minus its hop to this process (the
    ZeroMQ PUSH -> PULL for the bridge, the pipe for mqtt-io)."""
    s = perf.series
    bridge_rtt, bridge_cmd, zmq_hop = s["rtt_paced"], s["command"], s["zmq"]
    mqttio_rtt, mqttio_cmd, pipe = s["mqttio_rtt_paced"], s["mqttio_command"], s["pipe"]
    return {
        "bridge_p50": bridge_cmd.p50 - bridge_rtt.p50 - zmq_hop.p50,
        "bridge_p99": bridge_cmd.p99 - bridge_rtt.p99 - zmq_hop.p99,
        "mqttio_p50": mqttio_cmd.p50 - mqttio_rtt.p50 - pipe.p50,
        "mqttio_p99": mqttio_cmd.p99 - mqttio_rtt.p99 - pipe.p99,
    }


def mqttio_baseline_rows(perf: Perf) -> list[str]:
    if perf.mqttio is None:
        return []
    return [
        f"| 1. {x.name} ({len(x.samples)}) | {us(x.p50)} | {us(x.p99)} | (baseline) | | | |"
        for x in (perf.series["mqttio_rtt_paced"], perf.series["pipe"])
    ]


def mqttio_latency_rows(perf: Perf, target: Callable[[str, bool | None], str]) -> list[str]:
    """2m and the comparison of added times (the target), 3m."""
    if perf.mqttio is None:
        return [f"| 2m., 3m., 5m. mqtt-io | not in this run: {perf.mqttio_note} | | | | | |"]
    s = perf.series
    rtt, cmd, pipe, paced = s["rtt"], s["mqttio_command"], s["pipe"], s["mqttio_rtt_paced"]
    base50, base99 = rtt.p50 + pipe.p50, rtt.p99 + pipe.p99
    paced50, paced99 = paced.p50 + pipe.p50, paced.p99 + pipe.p99
    added = added_time(perf)
    a50, a99 = added["mqttio_p50"], added["mqttio_p99"]
    adds50, adds99 = a50 / paced.p50, a99 / paced.p99
    return [
        f"| 2m. {cmd.name} ({len(cmd.samples)}, lost {cmd.lost}) | {us(cmd.p50)} "
        f"| {us(cmd.p99)} | round trip + pipe: {us(base50)} / {us(base99)} "
        f"| {ratio(cmd.p50, base50)} / {ratio(cmd.p99, base99)} | information | - |",
        f"| 2m. (same, against the paced round trip of its phase) | | "
        f"| paced round trip + pipe: {us(paced50)} / {us(paced99)} "
        f"| {ratio(cmd.p50, paced50)} / {ratio(cmd.p99, paced99)} | information | |",
        f"| 2m. mqtt-io's added time: command - paced round trip (its phase) - pipe "
        f"| {us(a50)} | {us(a99)} | paced round trip: {us(paced.p50)} / {us(paced.p99)} "
        f"| adds {adds50:.2f}x / {adds99:.2f}x the paced round trip "
        f"({a50 / rtt.p50:.2f}x / {a99 / rtt.p99:.2f}x the back-to-back one) "
        f"| information; the issue: adds {span(MQTTIO_ADDS_P50, 'x')} / "
        f"{span(MQTTIO_ADDS_P99, 'x')} the round trip (here p50 {placed(adds50, MQTTIO_ADDS_P50)}"
        f", p99 {placed(adds99, MQTTIO_ADDS_P99)} that range) | - |",
        f"| 2. bridge's added time: command - paced round trip (its phase) - ZeroMQ "
        f"| {us(added['bridge_p50'])} | {us(added['bridge_p99'])} | mqtt-io's added time: "
        f"{us(a50)} / {us(a99)} | {ratio(added['bridge_p50'], a50)} / "
        f"{ratio(added['bridge_p99'], a99)} | bridge adds no more than mqtt-io "
        f"| p50 {target('adds <= mqtt-io p50', at_most(added['bridge_p50'], a50))}, "
        f"p99 {target('adds <= mqtt-io p99', at_most(added['bridge_p99'], a99))} |",
    ]


def mqttio_state_rows(perf: Perf) -> list[str]:
    if perf.mqttio is None:
        return []
    return [
        "| 3m. mqtt-io state: input change -> state message | - | - | | "
        "| not measured: its stdio module never reads stdin (`get_pin` prints a line and "
        "returns False), so an input cannot change | - |"
    ]


def mqttio_footprint_rows(perf: Perf, bridge: IdleResult | None) -> list[str]:
    """5m: idle CPU and memory of mqtt-io next to the bridge's (16 pins, 0.1 s, same run)."""
    rows = []
    for r in perf.mqttio_idle:
        issue = f"; the issue: {span(MQTTIO_IDLE_CPU, '%')}" if r.inputs == 4 else ""
        rows.append(
            f"| 5m. mqtt-io idle CPU, 16 pins: {r.outputs} outputs + {r.inputs} inputs polled "
            f"{r.interval:g} s ({r.window_s:.0f} s, {r.stdout_lines_per_s:.0f} stdout lines/s) "
            f"| {r.cpu_pct:.3f}% | | bridge, 16 pins 0.1 s: "
            f"{'-' if bridge is None else f'{bridge.cpu_pct:.3f}%'} "
            f"| {'-' if bridge is None else ratio(r.cpu_pct, bridge.cpu_pct)} "
            f"| information{issue} | - |"
        )
    main = next((r for r in perf.mqttio_idle if r.inputs == 4), None)
    if main is not None:
        rows.append(
            f"| 5m. mqtt-io resident memory (VmRSS) after the idle window, 4 inputs "
            f"| {mb(main.rss_kb)} | | bridge: {'-' if bridge is None else mb(bridge.rss_kb)} "
            f"| {'-' if bridge is None else ratio(main.rss_kb, bridge.rss_kb)} "
            f"| information; the issue: {MQTTIO_RSS_MB} MB | - |"
        )
        rows.append(
            f"| 5m. the same, PSS / private (USS) | {mb(main.pss_kb)} | {mb(main.uss_kb)} "
            f"| bridge: {'-' if bridge is None else f'{mb(bridge.pss_kb)} / {mb(bridge.uss_kb)}'}"
            f" | {'-' if bridge is None else ratio(main.pss_kb, bridge.pss_kb)} / "
            f"{'-' if bridge is None else ratio(main.uss_kb, bridge.uss_kb)} | information | |"
        )
    return rows


def mqttio_startup_rows(perf: Perf) -> list[str]:
    times = [x["online"] for x in perf.startups if x["subject"] == "mqttio"]
    if not times:
        return []
    bridge = [x["online"] for x in perf.startups if x["subject"] == "bridge"]
    bridge_median = statistics.median(bridge) if bridge else float("nan")
    median = statistics.median(times)
    return [
        f"| 5m. mqtt-io start-up to `running` ({len(times)} starts) | median {median:.3f} s "
        f"| max {max(times):.3f} s (first {times[0]:.3f} s) | bridge to `online`: median "
        f"{secs(bridge_median)} | {ratio(median, bridge_median)} "
        f"| information; the issue: {span(MQTTIO_STARTUP, ' s')} | - |"
    ]


def mqttio_notes(perf: Perf) -> list[str]:
    """How the mqtt-io rows (2m, 3m, 5m) are taken, or why there are none."""
    if perf.mqttio is None:
        return [f"Not in this run: {perf.mqttio_note}."]
    return [
        f"{perf.mqttio_note}. Its `stdio` GPIO module stands in for the hardware: a write to "
        "an output prints `set_pin(pin=N, value=True|False)` on its stdout, a read of an input "
        "prints `get_pin(pin=N)` and returns False. It runs with `PYTHONUNBUFFERED=1` (print "
        "to a pipe is block-buffered otherwise), stdout to a pipe this process drains, stderr "
        "(its log, level WARNING) to a file; Home Assistant discovery on, as the bridge's.",
        "",
        "- Command (2m): QoS 0 publish on `<base>/output/out0/set`, ON/OFF alternating -> its "
        "`set_pin(pin=0, ...)` line, timestamped when a thread here has it back from `os.read` "
        "on the stdout pipe; the next sample waits for its state echo on `<base>/output/out0`, "
        "then 0.1 s. Pins 0..7 outputs, 8..15 inputs polled every 0.1 s (so about 80 "
        "`get_pin` lines a second go through the same pipe).",
        "- Pipe: a `set_pin` line written to an `os.pipe` here and read by the same reader "
        "code, paced 0.1 s: the part of 2m that is the hop to this process, not mqtt-io. The "
        "command, a paced round trip and a pipe sample are interleaved, one of each per cycle.",
        "- Added time: command - paced round trip of the same phase - pipe for mqtt-io; "
        "command - paced round trip of its phase - ZeroMQ for the bridge; each a difference "
        "of the percentiles. Both commands are paced 0.1 s apart, so the paced round trip "
        "interleaved with them is the one measured under the same conditions. Its published "
        "figures give mqtt-io's as a multiple of the round trip; the target is the bridge's <= "
        "mqtt-io's, at p50 and at p99.",
        "- State (3m): not measured, see the table.",
        "- Idle (5m): CPU (utime + stime, /proc) and VmRSS / PSS / USS of the mqtt-io process "
        "over the same window as the bridge's 16-pin windows, 3 s after `running`; 16 pins, "
        f"{' and '.join(str(n) for n in MQTTIO_IDLE_INPUTS)} of them polled inputs, the rest "
        "outputs. Each poll prints a line, which is part of what it costs here.",
        "- Start-up (5m): from just before its process is spawned to `running` (retained, "
        "QoS 1) on `<base>/status` at the subscriber; one per mqtt-io process of the run.",
    ]
