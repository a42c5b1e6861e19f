"""flood.py's pulse and birth phases."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.facts import (
    BridgeCode,
)
from common.ports import HOST
from flood_clients import ConfigTap, Prober, Received, publish_flood
from flood_common import (
    AFTER_PROBE_GAP,
    AFTER_PROBES,
    FLOOD_PIN,
    INPUTS,
    OUTPUT_MODE,
    OUTPUTS,
    PROBE_GAP,
    PROBE_PIN,
    PULSE_PAYLOAD,
    QUIET,
    QUIET_CAP,
    SETTLE,
    PhaseResult,
    Settings,
    cpu_share,
    latencies,
    mb,
    own_cpu_seconds,
    per_second,
)
from flood_rig import Driver, rig

from mqtt_gpio_bridge.sim.driver import Board, SimulatedDriver

# -- the phases ------------------------------------------------------------------------------


def pulse_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """1. Hour-long pulses replacing each other on one pin, as fast as they can be sent."""
    result = PhaseResult(
        "pulse",
        "1. Pulse flood",
        f"`{PULSE_PAYLOAD}` QoS 0 to `<base>/gpio/{FLOOD_PIN}/set`, {settings.pulses:,} "
        f"spread over {settings.pulse_seconds:g} s from {settings.senders} paho client(s); "
        f"single commands: QoS 1 `ON`/`OFF` to pin {PROBE_PIN}, timed from the publish to its "
        "config at the simulated driver's socket. Configs counted at that socket.",
    )
    tap = ConfigTap()

    def start_driver(port: int) -> Driver:
        return SimulatedDriver(HOST, port, Board(), on_wire=tap).start()

    with rig(workdir, code, start_driver, lambda base, _prefix: [f"{base}/status"]) as run:
        prober = Prober(run.broker.port, tap, PROBE_PIN, run.set_topic(PROBE_PIN))
        try:
            time.sleep(SETTLE)
            before_kb = run.rss_kb()
            before_configs = tap.counts[FLOOD_PIN, OUTPUT_MODE, 1]
            cpu_before, own_before = run.cpu_seconds(), own_cpu_seconds()
            share = [settings.pulses // settings.senders] * settings.senders
            share[0] += settings.pulses - sum(share)
            with ThreadPoolExecutor(settings.senders) as pool:
                futures = [
                    pool.submit(
                        publish_flood,
                        run.broker.port,
                        run.set_topic(FLOOD_PIN),
                        PULSE_PAYLOAD,
                        count,
                        settings.pulse_seconds,
                    )
                    for count in share
                ]
                time.sleep(0.5)
                during = prober.probe_while(lambda: not all(f.done() for f in futures), PROBE_GAP)
                sent = [future.result() for future in futures]
            started = min(s.started for s in sent)
            ended = max(s.ended for s in sent)
            count = sum(s.count for s in sent)
            cpu_flood = run.cpu_seconds() - cpu_before
            own_flood = own_cpu_seconds() - own_before
            time.sleep(max(0.0, ended + settings.window - time.monotonic()))
            after_kb = run.rss_kb()
            cpu_window = run.cpu_seconds() - cpu_before - cpu_flood
            peak_kb = run.peak_kb(started, time.monotonic())
            hwm_kb = run.watch.hwm_kb
            received = tap.counts[FLOOD_PIN, OUTPUT_MODE, 1] - before_configs
            drained = tap.last_at.get(FLOOD_PIN, ended) - ended
            after: list[float | None] = []
            for _ in range(AFTER_PROBES):
                after.append(prober.probe())
                time.sleep(AFTER_PROBE_GAP)
            drops = run.drop_notices()
            alive = run.alive()
        finally:
            prober.close()
    wall = ended - started
    result.add(
        "pulse commands sent",
        f"{count:,} of {settings.pulses:,} in {wall:.2f} s ({count / wall:,.0f}/s)",
        sent=count,
        asked=settings.pulses,
        send_seconds=round(wall, 3),
        senders=settings.senders,
    )
    result.add(
        "pulse configs at the driver",
        f"{received:,} ({100 * received / max(1, count):.1f} % of sent); the last "
        f"{drained:+.2f} s after the last publish",
        configs_at_driver=received,
        last_config_after_s=round(drained, 3),
    )
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add(
        "bridge RSS: before / peak / after the last publish",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(after_kb)} ({settings.window:g} s after); "
        f"VmHWM {mb(hwm_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_after_kb=after_kb,
        vmhwm_kb=hwm_kb,
    )
    result.add(
        "bridge CPU: during the flood / the window after",
        f"{cpu_share(cpu_flood, wall)} / {cpu_window:.2f} s",
        bridge_cpu_flood_s=round(cpu_flood, 2),
        bridge_cpu_window_s=round(cpu_window, 2),
    )
    result.add(
        "this process's CPU during the flood (senders, driver, probes)",
        cpu_share(own_flood, wall),
        own_cpu_flood_s=round(own_flood, 2),
    )
    result.add(
        "single command during the flood",
        latencies(during),
        during_ms=[None if v is None else round(v, 2) for v in during],
    )
    result.add(
        f"single command after ({AFTER_PROBES}, {AFTER_PROBE_GAP:g} s apart)",
        latencies(after),
        after_ms=[None if v is None else round(v, 2) for v in after],
    )
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result


def birth_phase(settings: Settings, code: BridgeCode, workdir: Path) -> PhaseResult:
    """2. Home Assistant's birth message, thousands of times in a few tens of milliseconds."""
    result = PhaseResult(
        "birth",
        "2. Home Assistant birth flood",
        f"{settings.births:,} `online` (QoS 0) to `<homeassistant.prefix>/status` back to back "
        "from one paho client; every message under the base topic or the prefix counted at a "
        "QoS 0 subscriber on `#` (the births themselves left out); 1-s buckets from the first "
        "birth.",
    )

    def start_driver(port: int) -> Driver:
        return SimulatedDriver(HOST, port, Board()).start()

    with rig(workdir, code, start_driver, lambda _base, _prefix: ["#"]) as run:
        births_topic = f"{run.prefix}/status"

        def from_bridge(message: Received) -> bool:
            topic = message.topic
            return topic != births_topic and topic.startswith((f"{run.base}/", f"{run.prefix}/"))

        run.recorder.quiet_after(time.monotonic(), from_bridge, QUIET, QUIET_CAP)
        before_kb = run.rss_kb()
        cpu_before = run.cpu_seconds()
        sent = publish_flood(run.broker.port, births_topic, "online", settings.births, 0)
        window_end = sent.started + settings.window
        time.sleep(max(0.0, window_end - time.monotonic()))
        cpu_window = run.cpu_seconds() - cpu_before
        end_kb = run.rss_kb()
        peak_kb = run.peak_kb(sent.started, time.monotonic())
        published = [m for m in run.recorder.messages(sent.started, window_end) if from_bridge(m)]
        last = run.recorder.quiet_after(sent.started, from_bridge, QUIET, QUIET_CAP)
        cpu_total = run.cpu_seconds() - cpu_before
        total = [m for m in run.recorder.messages(sent.started) if from_bridge(m)]
        drops = run.drop_notices()
        alive = run.alive()
    buckets = per_second([m.at for m in published], sent.started, window_end)
    kinds = Counter(
        "discovery"
        if m.topic.startswith(f"{run.prefix}/")
        else "status"
        if m.topic == f"{run.base}/status"
        else "state"
        if m.topic.endswith("/state")
        else "other"
        for m in published
    )
    answer = OUTPUTS + INPUTS + 1 + OUTPUTS + INPUTS  # discovery, status, every pin's state
    result.add(
        "births sent",
        f"{sent.count:,} in {sent.seconds * 1000:.0f} ms",
        births=sent.count,
        births_ms=round(sent.seconds * 1000, 1),
    )
    result.add(
        f"bridge publishes in the {settings.window:g} s from the first birth",
        f"{len(published):,} ({', '.join(f'{k} {v:,}' for k, v in kinds.most_common())}); "
        f"a full answer to every birth would be {answer} x {sent.count:,} = "
        f"{answer * sent.count:,}",
        publishes=len(published),
        by_kind=dict(kinds),
        full_answer=answer * sent.count,
    )
    result.add(
        "publishes per second (peak; each second)",
        f"{max(buckets):,}; {', '.join(f'{n:,}' for n in buckets)}",
        peak_per_second=max(buckets),
        per_second=buckets,
    )
    result.add(
        "bridge CPU in the window",
        cpu_share(cpu_window, settings.window),
        bridge_cpu_window_s=round(cpu_window, 2),
    )
    result.add(
        "bridge RSS: before / peak in the window / at its end",
        f"{mb(before_kb)} / {mb(peak_kb)} / {mb(end_kb)}",
        rss_before_kb=before_kb,
        rss_peak_kb=peak_kb,
        rss_end_kb=end_kb,
    )
    quiet = (
        f"its last publish {last - sent.started:.1f} s after the first birth"
        if last is not None
        else f"still publishing {QUIET_CAP:g} s after the first birth"
    )
    result.add(
        "until the bridge fell quiet",
        f"{len(total):,} publishes in all, {quiet}; CPU {cpu_total:.2f} s",
        publishes_total=len(total),
        last_publish_after_s=None if last is None else round(last - sent.started, 2),
        bridge_cpu_total_s=round(cpu_total, 2),
    )
    topics = Counter(m.topic for m in total)
    result.add(
        "times each topic was published, until quiet",
        f"{len(topics)} topics, each {min(topics.values(), default=0):,} to "
        f"{max(topics.values(), default=0):,} times",
        per_topic_min=min(topics.values(), default=0),
        per_topic_max=max(topics.values(), default=0),
    )
    result.add("broker 'dropped' notices", str(drops), broker_drop_notices=drops)
    result.add("bridge alive at the end", str(alive), bridge_alive=alive)
    if not alive:
        result.problems.append("the bridge process died")
    return result
