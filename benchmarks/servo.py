"""Servo benchmark: how long GPIO outputs float after a servo write, command latency, and
coalescing of a burst of angles.

    .venv/bin/python benchmarks/servo.py                               # full run, ~3 minutes
    .venv/bin/python benchmarks/servo.py --samples 30 --bursts 2       # quick, ~45 s

Each phase starts its own Mosquitto, the simulated MALOS GPIO and servo drivers (in this
process, on one shared `Board`, every config timed as it crosses the wire) and the bridge as a
subprocess. The rows (benchmarks/README.md, "Servo", says what each measures):

1. float window: per servo command, the servo write landing on the board -> the first GPIO
   config landing after it (how long the GPIO outputs are inputs) and -> the last one within
   300 ms (the last restoring write); the direction register checked once each sample has
   settled. At servo `apply_delay` 0, 0.003 and 0.03 s (the last lands the servo write after
   the bridge's first timed restores).
2. command latency: an MQTT publish of an angle -> the angle applied at the servo driver,
   beside the broker hop plus a bare ZeroMQ push into a second servo driver, same run.
3. coalescing: BURST angles published back to back to one pin: how many reach the driver,
   last publish -> last angle applied, and whether that is the last angle published.

It prints a markdown report and writes `results/servo-<time>.md` and `.json`; exit status 1
only if the run broke (a peer would not start, the bridge died), never over a target.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import BenchmarkError
from common.facts import ROOT
from common.processes import load_average
from common.report import fact_rows
from common.run import run_benchmark, run_phases
from perf_settings import GAP, Series, now_ns, verdict
from servo_rig import Rig, ServoHop

OUTPUTS = (0, 1, 2)
INPUT = 3
SERVOS = {4: (0, 180), 9: (10, 170)}
"""Servo pins and their (min_angle, max_angle)."""
PINS: list[dict[str, Any]] = (
    [{"pin": p, "mode": "output", "initial": "off"} for p in OUTPUTS]
    + [{"pin": INPUT, "mode": "input"}]
    + [
        {"pin": p, "mode": "servo", "min_angle": low, "max_angle": high}
        for p, (low, high) in SERVOS.items()
    ]
)
DIRECTIONS = sum(1 << p for p in (*OUTPUTS, *SERVOS))
"""The direction register once settled: every GPIO output and every servo pin an output."""
CONFIG_TEXT = (
    "outputs 0-2 (initial off), input 3, servo pins 4 (0-180) and 9 (10-170), "
    "update_interval 0.05 s"
)
INTERVAL = 0.05
DELAYS = (0.0, 0.003, 0.03)
WINDOW_S = 0.3
"""GPIO configs landing this long after a servo write count as its restores."""
BURST = 500
BURST_PIN = 4
QUIET_S = 1.0
"""A burst is over once no angle has landed for this long."""
LANDING_TIMEOUT = 2.0


def new_angle(rng: random.Random, pin: int, last: int | None) -> int:
    """A random angle in the pin's range, other than `last`."""
    low, high = SERVOS[pin]
    while (angle := rng.randint(low, high)) == last:
        pass
    return angle


def warm(rig: Rig, rng: random.Random) -> dict[int, int]:
    """One command per servo pin, each awaited: every pin's first write is behind us."""
    last: dict[int, int] = {}
    for pin in SERVOS:
        angle = new_angle(rng, pin, None)
        slot = rig.servo_wire.expect(pin, angle)
        rig.command(pin, angle, qos=1)
        if slot.wait(LANDING_TIMEOUT) is None:
            raise BenchmarkError(f"servo pin {pin} never reached {angle}: {rig.log}")
        last[pin] = angle
        time.sleep(0.2)
    return last


# -- 1. float window -------------------------------------------------------------------------


def float_window(
    workdir: Path, delay: float, samples: int, seed: int, gap: tuple[float, float]
) -> dict[str, Any]:
    """`samples` commands on random servo pins, each awaited, `gap` seconds apart after its
    landing; each landing against the GPIO configs after it."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    with Rig(workdir, f"float-{delay:g}", PINS, interval=INTERVAL, apply_delay=delay) as rig:
        last = warm(rig, rng)
        load = load_average()
        for i in range(samples):
            pin = rng.choice(list(SERVOS))
            angle = new_angle(rng, pin, last[pin])
            last[pin] = angle
            slot = rig.servo_wire.expect(pin, angle)
            published = rig.command(pin, angle, qos=1)
            landed = slot.wait(LANDING_TIMEOUT)
            if landed is None:
                rig.servo_wire.expectations.forget((pin, angle))
            time.sleep(rng.uniform(*gap))
            records.append(
                {
                    "pin": pin,
                    "angle": angle,
                    "published": published,
                    "landed": landed,
                    "direction": rig.board.direction,
                }
            )
            if i % 50 == 49:
                rig.check_alive()
        time.sleep(WINDOW_S)
        rig.check_alive()
        configs = list(rig.gpio_wire.configs)
    return {"apply_delay": delay, "load": load, **windows(records, configs)}


def windows(records: list[dict[str, Any]], configs: list[int]) -> dict[str, Any]:
    """Each landing -> the first and the last GPIO config after it, up to WINDOW_S later or the
    next command's publish, whichever comes first."""
    window, floating = Series("window"), Series("float")
    restores: list[int] = []
    per_command: list[int] = []
    cut = 0
    wrong: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if record["direction"] != DIRECTIONS:
            wrong.append(
                {
                    "sample": i,
                    "pin": record["pin"],
                    "angle": record["angle"],
                    "direction": f"{record['direction']:016b}",
                }
            )
        following = records[i + 1]["published"] if i + 1 < len(records) else None
        per_command.append(
            bisect.bisect_right(configs, following if following else configs[-1])
            - bisect.bisect_right(configs, record["published"])
            if configs
            else 0
        )
        landed = record["landed"]
        if landed is None:
            window.record(None)
            floating.record(None)
            continue
        end = landed + int(WINDOW_S * 1e9)
        if following is not None and following < end:
            end = following
            cut += 1
        low, high = bisect.bisect_right(configs, landed), bisect.bisect_right(configs, end)
        restores.append(high - low)
        if high == low:  # no GPIO write after the servo write: the outputs stay inputs
            window.record(None)
            floating.record(None)
            continue
        floating.record(configs[low] - landed)
        window.record(configs[high - 1] - landed)
    return {
        "samples": len(records),
        "window": window.summary(),
        "float": floating.summary(),
        "restores_median": statistics.median(restores) if restores else None,
        "restores_max": max(restores) if restores else None,
        "configs_per_command_median": statistics.median(per_command) if per_command else None,
        "configs_per_command_max": max(per_command) if per_command else None,
        "cut_by_next_command": cut,
        "wrong_directions": wrong,
        "expected_direction": f"{DIRECTIONS:016b}",
    }


# -- 2. command latency ----------------------------------------------------------------------


def command_latency(workdir: Path, samples: int, seed: int) -> dict[str, Any]:
    """Per cycle, each after a GAP of quiet: a QoS 0 angle published -> applied at the servo
    driver; a QoS 0 message published -> received by a subscriber on the same Mosquitto; an
    angle pushed over bare ZeroMQ -> applied at a second servo driver."""
    rng = random.Random(seed)
    bridge, broker, zmq_hop, floor = (Series(n) for n in ("bridge", "broker", "zmq", "floor"))
    pin = BURST_PIN
    with Rig(workdir, "latency", PINS, interval=INTERVAL) as rig:
        assert rig.sub is not None and rig.pub is not None
        sub, pub = rig.sub, rig.pub
        hop = ServoHop()
        try:
            topic = f"{rig.base}/rtt"
            sub.subscribe([topic])
            last = warm(rig, rng)[pin]
            hop_angle = 0
            load = load_average()
            for i in range(-20, samples):  # the first 20 cycles warm every path
                time.sleep(GAP)
                last = new_angle(rng, pin, last)
                slot = rig.servo_wire.expect(pin, last)
                started = rig.command(pin, last, qos=0)
                at = slot.wait(LANDING_TIMEOUT)
                if at is None:
                    rig.servo_wire.expectations.forget((pin, last))
                command = None if at is None else at - started
                time.sleep(GAP)
                arrival = sub.expect(topic, str(i))
                started = now_ns()
                pub.publish(topic, str(i))
                at = arrival.wait()
                hop_ns = None if at is None else at - started
                time.sleep(GAP)
                hop_angle = new_angle(rng, pin, hop_angle)
                push = hop.sample(pin, hop_angle)
                if i < 0:
                    continue
                bridge.record(command)
                broker.record(hop_ns)
                zmq_hop.record(push)
                floor.record(None if hop_ns is None or push is None else hop_ns + push)
                if i % 50 == 49:
                    rig.check_alive()
        finally:
            hop.close()
    return {
        "load": load,
        "bridge": bridge.summary(),
        "broker": broker.summary(),
        "zmq": zmq_hop.summary(),
        "unavoidable": floor.summary(),
        "ratio_p50": bridge.p50 / floor.p50 if floor.samples and bridge.samples else None,
    }


# -- 3. coalescing ---------------------------------------------------------------------------


def wait_quiet(rig: Rig, mark: int, since: float) -> None:
    """Until no angle has landed (after index `mark`) for QUIET_S and QUIET_S passed `since`
    (monotonic); 30 s at most."""
    deadline = time.monotonic() + 30
    count, changed = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = time.monotonic()
        if len(rig.servo_wire.applied) != count:
            count, changed = len(rig.servo_wire.applied), now
        elif now - changed >= QUIET_S and now - since >= QUIET_S and count > mark:
            return
        time.sleep(0.05)
    raise BenchmarkError(f"no angle landed after a burst, or they never stopped: {rig.log}")


def coalescing(workdir: Path, bursts: int, seed: int) -> dict[str, Any]:
    """`bursts` times: BURST random angles to BURST_PIN published as fast as paho writes them
    (QoS 1), then what reached the servo driver."""
    rng = random.Random(seed)
    low, high = SERVOS[BURST_PIN]
    runs: list[dict[str, Any]] = []
    with Rig(workdir, "coalescing", PINS, interval=INTERVAL) as rig:
        warm(rig, rng)
        load = load_average()
        for _ in range(bursts):
            time.sleep(0.5)
            angles = [rng.randint(low, high) for _ in range(BURST)]
            mark = len(rig.servo_wire.applied)
            first = now_ns()
            last_publish = first
            for angle in angles:
                last_publish = rig.command(BURST_PIN, angle, qos=1)
            published = now_ns()
            wait_quiet(rig, mark, time.monotonic())
            rig.check_alive()
            applied = [a for a in rig.servo_wire.applied[mark:] if a[1] == BURST_PIN]
            final_t, _, final = applied[-1]
            runs.append(
                {
                    "configs": len(applied),
                    "publish_ms": (published - first) / 1e6,
                    "last_publish_to_applied_ms": (final_t - last_publish) / 1e6,
                    "final_applied": final,
                    "last_published": angles[-1],
                    "right": final == angles[-1],
                    "direction": f"{rig.board.direction:016b}",
                    "direction_right": rig.board.direction == DIRECTIONS,
                    "applied_angles": [a for _, _, a in applied],
                }
            )
    return {
        "load": load,
        "bursts": runs,
        "configs_median": statistics.median(r["configs"] for r in runs),
        "delay_median_ms": statistics.median(r["last_publish_to_applied_ms"] for r in runs),
        "publish_median_ms": statistics.median(r["publish_ms"] for r in runs),
        "right": sum(r["right"] for r in runs),
        "directions_right": sum(r["direction_right"] for r in runs),
    }


# -- the report --------------------------------------------------------------------------------


def ms(us_value: float | None) -> str:
    return "-" if us_value is None or math.isnan(us_value) else f"{us_value / 1000:.2f} ms"


def three(summary: dict[str, Any]) -> str:
    """`p50 .., p99 .., max ..` of a Series summary, with its count and losses."""
    lost = f", {summary['lost']} without one" if summary["lost"] else ""
    return (
        f"p50 {ms(summary['p50_us'])}, p99 {ms(summary['p99_us'])}, max {ms(summary['max_us'])} "
        f"(n {summary['n']}{lost})"
    )


def float_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        delay = f"apply_delay {r['apply_delay']:g} s"
        rows.append(
            f"| float window, {delay} | servo write landed -> last GPIO config after it: "
            f"{three(r['window'])}; -> first (outputs floating): {three(r['float'])}; GPIO "
            f"configs after the write median {r['restores_median']:g}, max {r['restores_max']}; "
            f"from the publish on (timed restores included) median "
            f"{r['configs_per_command_median']:g}, max {r['configs_per_command_max']}; "
            f"{r['cut_by_next_command']} windows closed by the next command's publish "
            "| reported | - |"
        )
        wrong = len(r["wrong_directions"])
        rows.append(
            f"| directions after each sample, {delay} | {wrong} of {r['samples']} wrong "
            f"(expected {r['expected_direction']}) | 0 wrong | {verdict(wrong == 0)} |"
        )
    return rows


def latency_rows(r: dict[str, Any]) -> list[str]:
    def short(summary: dict[str, Any]) -> str:
        lost = f", {summary['lost']} lost" if summary["lost"] else ""
        return f"p50 {ms(summary['p50_us'])}, p99 {ms(summary['p99_us'])} (n {summary['n']}{lost})"

    ratio = "-" if r["ratio_p50"] is None else f"{r['ratio_p50']:.2f}x"
    return [
        f"| command latency, publish -> angle applied | {short(r['bridge'])}; unavoidable "
        f"(broker hop + ZeroMQ push, paired per cycle) {short(r['unavoidable'])}: broker hop "
        f"{short(r['broker'])}, ZeroMQ push -> applied {short(r['zmq'])}; p50 ratio {ratio} "
        "| reported | - |"
    ]


def coalescing_rows(r: dict[str, Any]) -> list[str]:
    n = len(r["bursts"])
    counts = ", ".join(str(b["configs"]) for b in r["bursts"])
    delays = ", ".join(f"{b['last_publish_to_applied_ms']:.1f}" for b in r["bursts"])
    return [
        f"| coalescing, {BURST} angles back to back (medians of {n}) | {r['configs_median']} "
        f"angle configs reached the servo driver ({counts}); last publish -> last angle applied "
        f"{r['delay_median_ms']:.1f} ms ({delays}); publishing took "
        f"{r['publish_median_ms']:.1f} ms | reported | - |",
        f"| coalescing, final angle = last published | {r['right']} of {n}; directions right "
        f"after {r['directions_right']} of {n} | all | "
        f"{verdict(r['right'] == n and r['directions_right'] == n)} |",
    ]


def build_report(data: dict[str, Any]) -> str:
    lines = [
        f"# Servo benchmark, {data['started']}",
        "",
        "| row | measured | target | |",
        "|---|---|---|---|",
        *float_rows(data.get("float", [])),
        *(latency_rows(data["latency"]) if "latency" in data else []),
        *(coalescing_rows(data["coalescing"]) if "coalescing" in data else []),
        "",
    ]
    for r in data.get("float", []):
        lines.append(f"Float window at apply_delay {r['apply_delay']:g} s: load {r['load']}.")
        lines += [
            f"- sample {w['sample']}: pin {w['pin']} -> {w['angle']}, direction {w['direction']}"
            for w in r["wrong_directions"][:20]
        ]
    if "latency" in data:
        lines.append(f"Command latency: load {data['latency']['load']}.")
    if "coalescing" in data:
        c = data["coalescing"]
        lines.append(f"Coalescing: load {c['load']}.")
        lines += [
            f"- burst {i}: final applied {b['final_applied']}, last published "
            f"{b['last_published']}, direction {b['direction']}"
            for i, b in enumerate(c["bursts"])
            if not (b["right"] and b["direction_right"])
        ]
    lines += ["", f"Config: {CONFIG_TEXT}.", "", "| fact | value |", "|---|---|"]
    lines += fact_rows(data["facts"])
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=int, default=200, help="commands per float row and latency row (200)"
    )
    parser.add_argument("--bursts", type=int, default=5, help=f"bursts of {BURST} angles (5)")
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(0.1, 0.15),
        metavar=("MIN", "MAX"),
        help="seconds from a landing to the next command (0.1 0.15)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, workdir: Path, data: dict[str, Any]) -> None:
    """Every phase in turn, each result into `data` as soon as it is there."""
    gap = (args.gap[0], args.gap[1])
    phases: list[tuple[str, Callable[[], Any]]] = [
        *(
            ("float", lambda d=d: float_window(workdir, d, args.samples, args.seed, gap))
            for d in DELAYS
        ),
        ("latency", lambda: command_latency(workdir, args.samples, args.seed)),
        ("coalescing", lambda: coalescing(workdir, args.bursts, args.seed)),
    ]
    run_phases("servo", phases, data, repeated=("float",))


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("servo", parse_arguments(argv), run, build_report)


if __name__ == "__main__":
    sys.exit(main())
