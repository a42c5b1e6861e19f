"""Flood benchmark: the bridge under floods of pulse commands, Home Assistant births and updates.

Run it from the checkout (not part of the test suite; needs `mosquitto` on the PATH):

    .venv/bin/python benchmarks/flood.py                      # all phases, under a minute
    .venv/bin/python benchmarks/flood.py --phase pulse        # one phase: pulse, birth, driver
    .venv/bin/python benchmarks/flood.py --quick              # shorter floods
    .venv/bin/python benchmarks/flood.py --bridge-ref HEAD    # run the bridge of a commit

Each phase starts its own Mosquitto (a free port on 127.0.0.1, `common.mosquitto`), its own
MALOS driver and the bridge as a process of its own (`python -m mqtt_gpio_bridge run --config X
--log-level WARNING`, config written by `common.bridge.bridge_config`: pins 0..7 outputs with
`initial: "off"`, 8..15 inputs, QoS 1, discovery on), so that no phase inherits another's
memory. The bridge's memory is VmRSS from /proc/<pid>/status (`common.processes.ProcWatch`,
every 0.25 s, plus a reading at each mark); its CPU time is utime + stime from /proc/<pid>/stat.

1. pulse: `{"state":"ON","duration_ms":3600000}` QoS 0 to pin 0's `set` topic, 200,000 times
   spread over 15 s (or as fast as the paho clients manage), each from a paho client without
   a network thread (every publish writes to the socket at once). Simulated driver in this
   process; configs are counted where they cross its socket (`on_wire`). Memory before, peak,
   and 5 s after the last publish; the latency of single commands on pin 1 (QoS 1 `ON`/`OFF`
   publish -> that config at the driver's socket), about one a second during the flood, and
   ten after. Each replaced hour-long pulse leaves a cancelled timer queued until its time.
2. birth: 2,000 `online` messages to `<homeassistant.prefix>/status`, back to back; every
   message the bridge publishes in the 5 s after (a QoS 0 subscriber on `#` counts topics
   under the base topic or the discovery prefix, the births themselves left out), the peak
   per second, the bridge's CPU time and memory; then how long until it falls quiet.
3. driver: a hostile driver (this process binds the four ZeroMQ ports itself: config PULL,
   keep-alive PULL, errors PUB, updates PUB with SNDHWM 20 like MALOS) sends valid updates
   flipping inputs 8 and 9 at 10 kHz for 5 s; state messages per pin per second (peak and
   mean, at a QoS 0 subscriber), the bridge's CPU share, and whether the last published state
   of each pin equals the last level sent: after 1 s of silence, then after 1 s of the
   periodic updates a driver sends anyway.

Results: `benchmarks/results/flood-<time>.md` and `.json` (`--out DIR` to write elsewhere),
with the commit and the machine. Logs and configs stay in the `/tmp/mqtt-gpio-flood-*`
directory the report names. The exit status is 1 if a phase could not run, the bridge died,
or a last published state differs from the last level sent; figures are never judged.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import BenchmarkError
from common.facts import (
    ROOT,
    BridgeCode,
    bridge_code,
)
from common.mosquitto import mosquitto_missing
from common.processes import (
    interrupt_on_sigterm,
    load_average,
)
from common.report import fact_rows, write_results
from flood_common import PhaseResult, Settings, run_facts
from flood_driver import driver_phase
from flood_phases import birth_phase, pulse_phase

PHASES: dict[str, Callable[[Settings, BridgeCode, Path], PhaseResult]] = {
    "pulse": pulse_phase,
    "birth": birth_phase,
    "driver": driver_phase,
}


# -- report ----------------------------------------------------------------------------------


def render(result: PhaseResult) -> str:
    lines = [f"## {result.title}", "", result.description, "", "| figure | value |", "|---|---|"]
    lines += [f"| {label} | {text.replace('|', '/')} |" for label, text in result.rows]
    if result.problems:
        lines += ["", "Problems:", *[f"- {problem}" for problem in result.problems]]
    return "\n".join(lines)


def report(facts: dict[str, str], settings: Settings, results: list[PhaseResult]) -> str:
    lines = ["# Flood benchmark", "", "| | |", "|---|---|"]
    lines += fact_rows(facts)
    lines += [f"| settings | {settings} |", ""]
    for result in results:
        lines += [render(result), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=[*PHASES, "all"], default="all", help="(all)")
    parser.add_argument("--quick", action="store_true", help="shorter floods")
    parser.add_argument("--senders", type=int, default=1, help="pulse flood clients (1)")
    parser.add_argument(
        "--bridge-ref",
        metavar="REV",
        help="run the bridge of this commit (git archive) instead of the working tree",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if args.senders < 1:
        parser.error("--senders must be at least 1")
    if mosquitto_missing():
        return 2
    interrupt_on_sigterm()
    settings = Settings.quick(args.senders) if args.quick else Settings(senders=args.senders)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-flood-"))
    code = bridge_code(args.bridge_ref, workdir)
    facts = run_facts(code)
    facts["logs"] = str(workdir)
    print("\n".join(f"{key}: {value}" for key, value in facts.items()), flush=True)
    results = []
    for name in PHASES if args.phase == "all" else [args.phase]:
        print(f"\n-- {name} ...", flush=True)
        try:
            result = PHASES[name](settings, code, workdir / name)
        except BenchmarkError as exc:
            result = PhaseResult(name, f"{name}: could not run", "", problems=[str(exc)])
        results.append(result)
        print(render(result), flush=True)
    facts["load average at end"] = load_average()
    stem = args.out / f"flood-{stamp}"
    data = {
        "facts": facts,
        "settings": settings.__dict__,
        "phases": {r.name: {**r.data, "problems": r.problems} for r in results},
    }
    write_results(stem, report(facts, settings, results), data)
    print(f"\nwritten: {stem}.md, {stem}.json")
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
