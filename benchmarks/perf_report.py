"""perf.py's report: the rows, their targets, the notes and the run's facts."""

from __future__ import annotations

import datetime
import math
import statistics
import sys
from collections.abc import Callable
from typing import Any

from common.facts import changed_files, head, machine_facts, sources_sha256
from common.report import fact_rows
from perf_base import Settings
from perf_report_mqttio import (
    added_time,
    mqttio_baseline_rows,
    mqttio_footprint_rows,
    mqttio_latency_rows,
    mqttio_notes,
    mqttio_startup_rows,
    mqttio_state_rows,
)
from perf_run import Perf
from perf_settings import (
    CMD_P50_FACTOR,
    CMD_P99_FACTOR,
    IDLE_CPU_TARGET,
    RSS_TARGET_MB,
    STALL_US,
    STARTUP_TARGET,
    STATE_P50_FACTOR,
    THROUGHPUT_TARGET,
    Series,
    at_most,
    mb,
    ratio,
    secs,
    us,
    verdict,
)


def matrix_section(perf: Perf) -> list[str]:
    """The idle CPU table by pins and update interval, and how it grows."""
    if not perf.idle:
        return []
    matrix = [
        "",
        "Idle CPU (% of one core) and VmRSS by configured pins (all outputs) and update "
        "interval; in brackets the floor, perf_null.py, in the same window:",
        "",
        "| pins | 1 s | 0.1 s | 0.02 s |",
        "|---|---|---|---|",
    ]
    for pins in (1, 4, 16):
        cells = []
        for interval in (1.0, 0.1, 0.02):
            r = next((x for x in perf.idle if x.pins == pins and x.interval == interval), None)
            cells.append(
                "-"
                if r is None
                else f"{r.cpu_pct:.3f}% ({r.null_cpu_pct:.3f}%), {mb(r.rss_kb)}, {r.window_s:.0f} s"
            )
        matrix.append(f"| {pins} | {' | '.join(cells)} |")
    growth = []
    for interval in (1.0, 0.1, 0.02):
        by_pins = {r.pins: r.cpu_pct for r in perf.idle if r.interval == interval}
        if 1 in by_pins and 16 in by_pins:
            growth.append(
                f"at {interval:g} s: 1 -> 16 pins {by_pins[1]:.3f}% -> {by_pins[16]:.3f}%"
            )

    def per_update_us(by_interval: dict[float, float]) -> float:
        """CPU per driver update: the slope between 1 and 50 updates a second."""
        return (by_interval[0.02] - by_interval[1.0]) / 100 / (1 / 0.02 - 1 / 1.0) * 1e6

    for pins in (1, 4, 16):
        by_interval = {r.interval: r.cpu_pct for r in perf.idle if r.pins == pins}
        if 1.0 in by_interval and 0.02 in by_interval:
            growth.append(
                f"{pins} pins: 1 s -> 0.02 s {by_interval[1.0]:.3f}% -> "
                f"{by_interval[0.02]:.3f}% (about {per_update_us(by_interval):.0f} µs of CPU "
                "per update)"
            )
    null_by_interval = {
        interval: statistics.median([r.null_cpu_pct for r in perf.idle if r.interval == interval])
        for interval in (1.0, 0.02)
        if any(r.interval == interval for r in perf.idle)
    }
    if len(null_by_interval) == 2:
        growth.append(
            f"floor (perf_null.py, median): about {per_update_us(null_by_interval):.0f} µs "
            "per update"
        )
    if growth:
        matrix += ["", "Growth: " + "; ".join(growth) + "."]

    return matrix


def throughput_rows(perf: Perf, target: Callable[[str, bool | None], str]) -> list[str]:
    """Rows for 4: the sustained (windowed) run, then the raw burst."""
    rows = []
    kinds = (
        ("windowed", f"sustained, at most {perf.settings.window} in flight end to end"),
        ("burst", "raw burst, all published at once"),
    )
    for kind, title in kinds:
        tp, bb = perf.throughput.get(kind), perf.burst_baseline.get(kind, {})
        if not tp:
            continue
        name = "throughput sustained" if kind == "windowed" else "raw burst"
        goal = f">= {THROUGHPUT_TARGET:.0f}/s, nothing lost"
        ok = tp["rate_per_s"] >= THROUGHPUT_TARGET and tp["nothing_lost"]
        rows.append(
            f"| 4. throughput, {title}: {tp['sent']} QoS 1 sets over 16 outputs -> configs "
            f"| {tp['rate_per_s']:.0f}/s | steady {tp['steady_rate_per_s']:.0f}/s "
            f"| bare paho subscriber, same: {bb.get('rate_per_s', 0):.0f}/s "
            f"(lost {bb.get('lost', '-')}) | {ratio(tp['rate_per_s'], bb.get('rate_per_s', 0))} "
            f"| {goal} | {target(name, ok)} |"
        )
        rows.append(
            f"| 4. ({kind}) configs received / lost / extra / in order / final state right "
            f"| {tp['configs']} / {tp['lost']} / {tp['extra']} / {tp['in_order']} "
            f"/ {tp['final_ok']} | | Mosquitto 'dropped' notices: "
            f"{tp['broker_drop_notices']}; bridge 'not taking configs': "
            f"{tp['bridge_held_warnings']}; publish loop {tp['publish_loop_s']:.2f} s "
            "| | zero lost, in order, final = last | |"
        )
    return rows


def stalls(series: Series) -> int:
    """Samples of a series at or above STALL_US."""
    return sum(1 for value in series.samples if value >= STALL_US)


def build_report(
    perf: Perf, settings: Settings, started: datetime.datetime
) -> tuple[str, dict[str, Any]]:
    s = perf.series
    rtt, paced, hop, cmd, state = s["rtt"], s["rtt_paced"], s["zmq"], s["command"], s["state"]
    cmd_base50, cmd_base99 = rtt.p50 + hop.p50, rtt.p99 + hop.p99
    paced_base50, paced_base99 = paced.p50 + hop.p50, paced.p99 + hop.p99
    far = s["zmq_process"]
    far_base50, far_base99 = paced.p50 + far.p50, paced.p99 + far.p99
    busy, floor, cmd_floor = s["command_busy"], s["state_floor"], s["command_floor"]
    no_stall = stalls(busy) == 0 if busy.samples else None
    targets: list[tuple[str, bool | None]] = []

    def target(name: str, ok: bool | None) -> str:
        targets.append((name, ok))
        return verdict(ok)

    rows = [
        "| measure | p50 | p99 | baseline (same run) p50 / p99 | ratio p50 / p99 | target "
        "| result |",
        "|---|---|---|---|---|---|---|",
        f"| 1. {rtt.name} ({len(rtt.samples)} msgs) | {us(rtt.p50)} | {us(rtt.p99)} "
        "| (baseline) | | | |",
        f"| 1. {s['rtt_end'].name} | {us(s['rtt_end'].p50)} | {us(s['rtt_end'].p99)} "
        f"| {us(rtt.p50)} / {us(rtt.p99)} (start) | {ratio(s['rtt_end'].p50, rtt.p50)} / "
        f"{ratio(s['rtt_end'].p99, rtt.p99)} | drift only | |",
        f"| 1. {paced.name} ({len(paced.samples)}) | {us(paced.p50)} | {us(paced.p99)} "
        "| (baseline) | | | |",
        f"| 1. {hop.name} ({len(hop.samples)}) | {us(hop.p50)} | {us(hop.p99)} "
        "| (baseline) | | | |",
        f"| 1. {far.name} ({len(far.samples)}) | {us(far.p50)} | {us(far.p99)} "
        f"| in one process: {us(hop.p50)} / {us(hop.p99)} | {ratio(far.p50, hop.p50)} / "
        f"{ratio(far.p99, hop.p99)} | information | |",
        *mqttio_baseline_rows(perf),
        f"| 2. {cmd.name} ({len(cmd.samples)}, lost {cmd.lost}) | {us(cmd.p50)} | {us(cmd.p99)} "
        f"| paced round trip + ZeroMQ: {us(paced_base50)} / {us(paced_base99)} "
        f"| {ratio(cmd.p50, paced_base50)} / {ratio(cmd.p99, paced_base99)} "
        f"| p50 <= {CMD_P50_FACTOR}x, p99 <= {CMD_P99_FACTOR}x "
        f"| p50 {target('command p50', at_most(cmd.p50, CMD_P50_FACTOR * paced_base50))}, "
        f"p99 {target('command p99', at_most(cmd.p99, CMD_P99_FACTOR * paced_base99))} |",
        f"| 2. (same, against the back-to-back round trip) | | "
        f"| round trip + ZeroMQ: {us(cmd_base50)} / {us(cmd_base99)} "
        f"| {ratio(cmd.p50, cmd_base50)} / {ratio(cmd.p99, cmd_base99)} | information | |",
        f"| 2. (same, with the ZeroMQ hop into another process) | | "
        f"| paced round trip + ZeroMQ to another process: {us(far_base50)} / {us(far_base99)} "
        f"| {ratio(cmd.p50, far_base50)} / {ratio(cmd.p99, far_base99)} | information | |",
        f"| 2f. {cmd_floor.name} ({len(cmd_floor.samples)}, lost {cmd_floor.lost}) "
        f"| {us(cmd_floor.p50)} | {us(cmd_floor.p99)} | paced round trip + ZeroMQ: "
        f"{us(paced_base50)} / {us(paced_base99)} | {ratio(cmd_floor.p50, paced_base50)} / "
        f"{ratio(cmd_floor.p99, paced_base99)} | information: the bridge's command latency is "
        f"{ratio(cmd.p50, cmd_floor.p50)} / {ratio(cmd.p99, cmd_floor.p99)} of this | - |",
        f"| 2b. {busy.name} ({len(busy.samples)}, lost {busy.lost}) | {us(busy.p50)} "
        f"| {us(busy.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(busy.p50, paced_base50)} / "
        f"{ratio(busy.p99, paced_base99)} "
        f"| no command held >= {STALL_US // 1000} ms (Nagle + delayed ACK) "
        f"| {target('no stall', no_stall)}: {stalls(busy)} held, "
        f"max {us(max(busy.samples, default=math.nan))} |",
        *mqttio_latency_rows(perf, target),
        f"| 3. {state.name} ({len(state.samples)}, lost {state.lost}) | {us(state.p50)} "
        f"| {us(state.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(state.p50, paced_base50)} / "
        f"{ratio(state.p99, paced_base99)} | p50 <= {STATE_P50_FACTOR}x "
        f"| {target('state p50', at_most(state.p50, STATE_P50_FACTOR * paced_base50))} |",
        f"| 3. (same, with the ZeroMQ hop into another process) | | "
        f"| paced round trip + ZeroMQ to another process: {us(far_base50)} / {us(far_base99)} "
        f"| {ratio(state.p50, far_base50)} / {ratio(state.p99, far_base99)} | information | |",
        f"| 3f. {floor.name} ({len(floor.samples)}, lost {floor.lost}) | {us(floor.p50)} "
        f"| {us(floor.p99)} | paced round trip + ZeroMQ: {us(paced_base50)} / "
        f"{us(paced_base99)} | {ratio(floor.p50, paced_base50)} / "
        f"{ratio(floor.p99, paced_base99)} | information: the bridge's state latency is "
        f"{ratio(state.p50, floor.p50)} / {ratio(state.p99, floor.p99)} of this | - |",
        *mqttio_state_rows(perf),
    ]
    rows += throughput_rows(perf, target)
    main_idle = next((r for r in perf.idle if r.pins == 16 and r.interval == 0.1), None)
    fast_idle = next((r for r in perf.idle if r.pins == 16 and r.interval == 0.02), None)
    python_start = statistics.median(perf.python_start_s) if perf.python_start_s else float("nan")
    for r, name, limit in ((main_idle, "0.1 s", IDLE_CPU_TARGET), (fast_idle, "0.02 s", None)):
        if r is None:
            continue
        ok = None if limit is None else r.cpu_pct <= limit
        rows.append(
            f"| 5. idle CPU, 16 pins, update_interval {name} ({r.window_s:.0f} s) "
            f"| {r.cpu_pct:.3f}% | | floor (perf_null.py, same window): {r.null_cpu_pct:.3f}% "
            f"| {ratio(r.cpu_pct, r.null_cpu_pct)} "
            f"| {f'<= {limit:.1f}% of one core' if limit else 'information'} "
            f"| {target('idle CPU 16 pins 0.1 s', ok) if limit else '-'} |"
        )
    if main_idle is not None:
        rows.append(
            f"| 5. resident memory (VmRSS) after the idle window, 16 pins 0.1 s "
            f"| {mb(main_idle.rss_kb)} | | floor: {mb(main_idle.null_rss_kb)} "
            f"| {ratio(main_idle.rss_kb, main_idle.null_rss_kb)} | <= {RSS_TARGET_MB:.0f} MB "
            f"| {target('RSS idle', main_idle.rss_kb / 1024 <= RSS_TARGET_MB)} |"
        )
        rows.append(
            f"| 5. the same, PSS / private (USS) | {mb(main_idle.pss_kb)} "
            f"| {mb(main_idle.uss_kb)} | floor: {mb(main_idle.null_pss_kb)} / "
            f"{mb(main_idle.null_uss_kb)} | {ratio(main_idle.pss_kb, main_idle.null_pss_kb)} / "
            f"{ratio(main_idle.uss_kb, main_idle.null_uss_kb)} | information | |"
        )
    rows += mqttio_footprint_rows(perf, main_idle)
    if perf.peak_hwm_kb:
        rows.append(
            f"| 5. peak resident memory (VmHWM) of any bridge, burst included "
            f"| {mb(perf.peak_hwm_kb)} | | | | <= {RSS_TARGET_MB:.0f} MB "
            f"| {target('peak RSS', perf.peak_hwm_kb / 1024 <= RSS_TARGET_MB)} |"
        )
    bridge_starts = [step for step in perf.startups if step["subject"] == "bridge"]
    if bridge_starts:
        times = [step["online"] for step in bridge_starts]
        median_start = statistics.median(times)
        null_starts = [r.null_startup_s for r in perf.idle if r.null_startup_s is not None]
        null_median = statistics.median(null_starts) if null_starts else float("nan")

        def median_step(key: str) -> str:
            values = [step[key] for step in bridge_starts if step[key] is not None]
            return secs(statistics.median(values)) if values else "-"

        rows.append(
            f"| 5. start-up to `online` ({len(times)} starts) | median {median_start:.3f} s "
            f"| max {max(times):.3f} s (first {times[0]:.3f} s) "
            f"| `python -c pass` {python_start:.3f} s; perf_null.py to first update "
            f"{secs(null_median)} | {ratio(median_start, python_start)} / "
            f"{ratio(median_start, null_median)} | < {STARTUP_TARGET} s "
            f"| median {target('start-up median', median_start < STARTUP_TARGET)}, "
            f"max {target('start-up max', max(times) < STARTUP_TARGET)} |"
        )
        rows.append(
            f"| 5. start-up steps (medians): `offline` published (broker connected) "
            f"| {median_step('mqtt')} | | driver's first update sent: "
            f"{median_step('first_update')} | | information | |"
        )
    rows += mqttio_startup_rows(perf)

    matrix = matrix_section(perf)
    summary = ["", "Targets: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in targets)]
    notes = [
        "",
        "How each figure is taken:",
        "",
        "- Round trip: paho publisher (QoS 0, writes from the calling thread) -> Mosquitto -> "
        "paho subscriber (timestamp first thing in `on_message`); one message in flight.",
        "- ZeroMQ: pyzmq PUSH -> PULL on 127.0.0.1 (the PULL in a thread polling as the "
        "simulated driver does), warm, paced 0.1 s. The same into another process "
        "(`perf_null.py --pull-port`, polling the same way, printing its clock at each "
        "arrival), as every push into MALOS is: information, interleaved with the rest; the "
        "targets keep the in-process hop.",
        "- Command: QoS 0 publish on `<base>/gpio/0/set`, ON/OFF alternating -> the simulated "
        "driver's config socket (its `on_wire` hook, right after the receive, before the "
        "simulator decodes and applies the frame, as the ZeroMQ baseline stops at its "
        "receive); the next sample waits for the bridge's state echo, then 0.1 s. (Until "
        "run 20261126-043553 the end was after the simulator's decoding and applying, "
        "about 40 µs later at p50 on this machine, see `benchmarks/stages.py`.)",
        "- 2b: the same command, 30 ms apart and without waiting for the state echo, so "
        "that commands arrive while the bridge publishes states (QoS 1) and the broker "
        "acknowledges them; with Mosquitto's default `set_tcp_nodelay false`, a command "
        "queued behind an unacknowledged PUBACK waits for the bridge's delayed ACK (up to "
        "40 ms) unless the bridge acknowledges at once (it sets TCP_QUICKACK after each read).",
        "- 2f, the command floor: a QoS 0 set to the same `perf_null.py`, which sends a "
        "prepared config frame from its `on_message` (no parsing, no pin table): one paho "
        "receive and one ZeroMQ push into the driver's process.",
        "- 3f, the state floor: the same flip at the driver of `perf_null.py --mqtt-port`, a "
        "poll loop like the bridge's that republishes each changed update frame at once (QoS "
        "1, no decoding, no pin table): the ZeroMQ hop into another process plus one paho "
        "publish, what any Python bridge on pyzmq and paho pays. Interleaved with the other "
        "samples.",
        "- State: input pin 8 flipped from outside; from the moment the driver sends the "
        "update frame with the changed level (its `on_wire` hook, just before the send) to "
        "the state message at the subscriber; 0.1 s gap before each flip. (Until run "
        "20261126-043553 the start was when the simulator read the levels, before its own "
        "protobuf encoding, about 23 µs earlier at p50.)",
        "- Command, state, paced round trip and ZeroMQ samples are interleaved, one of each "
        "per cycle, so drift hits them alike. Targets compare command and state latency with "
        "the paced round trip: both are paced 0.1 s apart, so each wakes an idle process as "
        "the paced baseline does (the published figure for a round trip here, 300-600 µs, is "
        "the paced one; back to back it is 60-110 µs, shown for information).",
        "- Throughput: configs received / (last config - first publish); steady = the middle "
        "80% of the configs over their time span. Sustained: the publisher holds a command "
        "back while `--window` of them are published and not yet seen at the driver (the "
        "baseline: not yet seen by the bare subscriber). Raw burst: all at once; Mosquitto's "
        "default queue for a QoS 1 subscriber (20 in flight + 1000 queued) then drops what the "
        "subscriber does not take in time, whoever it is. The publisher, the simulated "
        "driver and the bare subscriber share this process (one GIL), so both rates are "
        "lower bounds.",
        "- CPU: every thread's time on a CPU over the window (/proc schedstat, ns); bridge "
        "pins are outputs, initial off, discovery on, other settings default.",
        "- Start-up: from just before the bridge process is spawned to `online` at the "
        "subscriber. The bridge goes online at the driver's first update, and the driver "
        "(like MALOS) looks for a first ping only every 100 ms, so up to 0.1 s of it is the "
        "driver's.",
    ]
    context = ["", "| run | value |", "|---|---|"]
    facts = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **machine_facts(cpu=True, libraries=True),
        "bridge sources sha256": sources_sha256(),
        "bridge code": f"git {head()}"
        + (" + uncommitted changes" if changed_files("mqtt_gpio_bridge") else " (clean)"),
        "load average at each phase": "; ".join(f"{p}: {load}" for p, load in perf.loads),
        "other benchmarks running": "; ".join(perf.contention) or "none seen",
        "exit statuses (SIGTERM)": ", ".join(f"{k} {v}" for k, v in perf.exits.items()),
        "mqtt-io": perf.mqttio_note,
        "logs": str(perf.workdir),
    }
    context += fact_rows(facts)
    mqtt_io = ["", "## mqtt-io", "", *mqttio_notes(perf)]
    text = "\n".join(
        [
            f"# mqtt-gpio-bridge performance, {started:%Y-%m-%d %H:%M}",
            "",
            *rows,
            *summary,
            *matrix,
            *notes,
            *context,
            *mqtt_io,
        ]
    )
    data = {
        "facts": facts,
        "settings": settings.__dict__,
        "series": {key: {**v.summary(), "samples_us": v.samples} for key, v in s.items()},
        "throughput": perf.throughput,
        "throughput_baseline": perf.burst_baseline,
        "idle": [r.__dict__ for r in perf.idle],
        "mqttio_idle": [r.__dict__ for r in perf.mqttio_idle],
        "added_time_us": added_time(perf),
        "startups": perf.startups,
        "python_start_s": perf.python_start_s,
        "targets": dict(targets),
    }
    return text, data
