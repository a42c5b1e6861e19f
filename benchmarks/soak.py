"""Soak test: the bridge as a subprocess, a real Mosquitto, the simulated board, faults.

Run it from the checkout (not part of the test suite):

    .venv/bin/python benchmarks/soak.py --minutes 10 [--seed N] [--pins 12:4] [--report out.md]

For the chosen time it sends bursts of ON/OFF commands (MQTT QoS 1, each one waited on until
the broker acknowledges it) to random output pins, flips the simulated inputs now and then, and
every 10..30 s either restarts Mosquitto (same port, no persistence) or restarts the simulated
MALOS driver on the same `Board` (what a MALOS restart is). After each fault it waits for
`<base>/status` = `online`, then for the board and the retained states to match the last
acknowledged command of every pin (a "checkpoint"). At the end it checks the same once more,
prints a markdown table, and exits 1 on any mismatch, on a fault the bridge never recovered
from, or if the bridge process died.

Commands are only counted once acknowledged. A command sent while the broker is down is retried
until acknowledged; after a broker restart no command is sent until the bridge has published
its status on the new broker (so it has subscribed again): `set` is not retained, and a broker
without persistence drops commands nobody is subscribed to, by design of MQTT.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
from pathlib import Path

from common.mosquitto import mosquitto_missing
from common.processes import interrupt_on_sigterm
from soak_common import PIN_COUNT, SoakError, now
from soak_report import build_report
from soak_run import Soak

# -- main ------------------------------------------------------------------------------------


def parse_pins(text: str) -> tuple[int, int]:
    outputs, _, inputs = text.partition(":")
    try:
        counts = int(outputs), int(inputs or 0)
    except ValueError:
        raise argparse.ArgumentTypeError("use OUTPUTS:INPUTS, e.g. 12:4") from None
    if counts[0] < 1 or counts[1] < 0 or sum(counts) > PIN_COUNT:
        raise argparse.ArgumentTypeError("at least 1 output, and at most 16 pins in all")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (10)")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: random)")
    parser.add_argument(
        "--pins",
        type=parse_pins,
        default=(12, 4),
        metavar="OUT:IN",
        help="pins 0..OUT-1 are outputs (initial off), the next IN are inputs (12:4)",
    )
    parser.add_argument("--report", type=Path, help="also write the report (.json: as JSON)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if mosquitto_missing():
        return 2
    interrupt_on_sigterm()
    soak = Soak(args, *args.pins)
    print(f"soak: seed {args.seed}, {args.minutes} min, logs in {soak.workdir}", flush=True)
    interrupted = False
    try:
        soak.start()
        print(f"soak: started in {soak.startup_s:.2f} s; load running", flush=True)
        soak.load()
        soak.finish()
    except KeyboardInterrupt:
        interrupted = True
        soak.fatal = "interrupted"
    except SoakError as exc:
        soak.fatal = str(exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.load_ended = soak.load_ended or now()
        soak.cleanup()
    failed = bool(
        soak.fatal
        or soak.final.get("problems", True)
        or not soak.final.get("status_online")
        or soak.bridge_died_at is not None
        or any(f.restarted and f.recovery_s is None for f in soak.faults)
        or any(f.error for f in soak.faults)
        or any(f.checkpoint_problems and not f.checkpoint_ambiguous for f in soak.faults)
    )
    outcome = "INTERRUPTED" if interrupted else ("FAIL" if failed else "PASS")
    text, data = build_report(soak, outcome)
    print(text)
    if args.report is not None:
        if args.report.suffix == ".json":
            args.report.write_text(json.dumps(data, indent=2, default=str) + "\n")
        else:
            args.report.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
