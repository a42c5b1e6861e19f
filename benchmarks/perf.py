"""Performance harness: latency, throughput and footprint of the bridge, each next to a baseline.

Run it from the checkout (not part of the test suite; needs `mosquitto` on the PATH):

    .venv/bin/python benchmarks/perf.py            # full run, about 20 minutes
    .venv/bin/python benchmarks/perf.py --quick    # a short smoke run, about 2 minutes

The chart needs matplotlib (`.venv/bin/pip install matplotlib`, a benchmark-only dependency);
without it the PNG is skipped with a note. Results go to `benchmarks/results/perf-<time>.md`,
`.json` (every sample) and `.png` (`--out DIR` to write elsewhere).

One run starts a Mosquitto with a default configuration (a listener on a free port of
127.0.0.1 and `allow_anonymous true`, nothing else: no `set_tcp_nodelay`), simulated MALOS
drivers in this process (`mqtt_gpio_bridge.sim.driver`) and the bridge as a subprocess
(`python -m mqtt_gpio_bridge run --config X --log-level WARNING`), so that its CPU time and
memory in /proc are its own. It measures:

1. Baselines. The broker round trip of a small QoS 0 message between two paho clients
   (publish -> Mosquitto -> subscriber), back to back, one message in flight (2,000 by
   default, measured at the start and again at the end to show drift); the same round trip
   paced 0.1 s apart; and a bare pyzmq PUSH -> PULL, warm, paced 0.1 s apart (the ZeroMQ hop
   no bridge can avoid). The paced baselines are interleaved with the latency samples below,
   so the comparison holds even when the machine drifts.
2. Command latency: a QoS 0 publish on `<base>/gpio/0/set` (what `mosquitto_pub` sends),
   alternating ON/OFF, 0.1 s apart -> the `DriverConfig` for it received at the simulated
   driver's config socket (its `on_wire` callback, in this process: the same clock).
3. State latency: the simulated driver sending the update frame that carries a changed input
   level -> the bridge's state message arriving at an MQTT subscriber (see `UpdateLog`).
4. Throughput: a burst of QoS 1 set commands over 16 output pins; configs per second reaching
   the driver, per-pin loss and order, and the final board and retained states. Baseline: the
   same burst from the same publisher to a bare paho subscriber (QoS 1).
5. Footprint: CPU time (% of one core) and resident memory (VmRSS, VmHWM) of the bridge over
   an idle window with 16 pins at update_interval 0.1 s and 0.02 s, then with 1, 4 and 16 pins
   at 1 s, 0.1 s and 0.02 s; start-up time from process start to `online` on the status
   topic. Baseline: `benchmarks/perf_null.py` in the same window (a zmq.Poller loop receiving
   the same updates, nothing else) and a bare `python -c pass`.

Targets are reported as pass/fail, never asserted (the exit status is 0 unless the run itself
broke). Other benchmarks (`soak.py`, `scale.py`) compete for the same two cores: before each
phase this waits (polling every 30 s) until none is running, unless `--no-wait`.

mqtt-io 2.7.0 runs beside the bridge in the same run (`--subjects bridge,mqttio`, the
default), from a venv of its own that `benchmarks/mqttio.py` makes on first use
(`benchmarks/.venv-mqttio`, benchmark-only; if it cannot be made, the run goes on without it and
the report says why). Its `stdio` GPIO module stands in for the hardware: an output write is a
`set_pin(pin=0, value=True)` line on its stdout, which this process reads from a pipe. For it:

2m. Command latency: the same QoS 0 publish, on its `<base>/output/out0/set` -> the `set_pin`
    line for it, timestamped when this process reads it from mqtt-io's stdout pipe (a reader
    thread blocked in `os.read`). Baselines, paced 0.1 s and interleaved with its commands as
    for the bridge: a round trip, and the pipe hop without mqtt-io (a line written to an
    `os.pipe` here, read by the same reader code). Its added time (command - paced round
    trip - pipe) is set against the bridge's (command - paced round trip - ZeroMQ), each
    with the paced round trip of its own phase: the target is that the bridge adds no more
    than mqtt-io.
3m. State latency: not measured. The stdio module's `get_pin` prints and returns False; it
    reads nothing from stdin, so an input never changes.
5m. Footprint: CPU time and VmRSS of the mqtt-io process over the same idle window, with 16
    pins at 0.1 s: 12 outputs + 4 polled inputs (the configuration of its published figures),
    then 16 polled inputs (every pin read each 0.1 s, as the MALOS driver's update does);
    start-up from process start to `running` on its status topic.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mqttio
from common import BenchmarkError
from common.facts import ROOT
from common.report import write_results
from perf_base import Settings
from perf_chart import write_chart
from perf_report import build_report
from perf_run import Perf
from perf_settings import PerfError
from perf_subjects import MqttIo

# -- main ------------------------------------------------------------------------------------


def prepare_mqttio(*, required: bool) -> tuple[MqttIo | None, str]:
    """mqtt-io for the run, its venv made first if need be, and a note for the report. If the
    venv cannot be made: BenchmarkError when mqtt-io was asked for, else None and why."""
    try:
        python = mqttio.ensure_venv(log=lambda line: print(f"perf: {line}", flush=True))
    except (BenchmarkError, OSError, subprocess.SubprocessError) as exc:
        if required:
            raise BenchmarkError(str(exc)) from exc
        note = f"left out, its venv could not be made ({exc})"
        print(f"perf: mqtt-io {note}", flush=True)
        return None, note
    return MqttIo(python), f"mqtt-io {mqttio.VERSION} from {python}"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; `subject_list` holds the subjects, checked and in order."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (~2 min)")
    parser.add_argument("--samples", type=int, help="latency cycles (500; quick 40)")
    parser.add_argument("--rtt-messages", type=int, help="back-to-back round trips (2000; 300)")
    parser.add_argument("--burst", type=int, help="set commands in a burst (20000; 3000)")
    parser.add_argument(
        "--window",
        type=int,
        default=500,
        help="sustained run: most commands in flight end to end (500)",
    )
    parser.add_argument("--idle", type=float, help="idle window, 16 pins 0.1/0.02 s (60; 5)")
    parser.add_argument("--matrix", type=float, help="idle window, other cells (30; 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait for soak.py/scale.py to end"
    )
    parser.add_argument(
        "--subjects",
        help="comma-separated, of: bridge, mqttio (default: both; mqtt-io is left out, with "
        "a note in the report, if its venv cannot be made)",
    )
    args = parser.parse_args(argv)
    subjects = tuple(dict.fromkeys((args.subjects or "bridge,mqttio").replace(" ", "").split(",")))
    if not set(subjects) <= {"bridge", "mqttio"}:
        parser.error(f"--subjects: bridge and/or mqttio, not {args.subjects!r}")
    args.subject_list = subjects
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    subjects: tuple[str, ...] = args.subject_list
    quick = args.quick

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    settings = Settings(
        samples=pick(args.samples, 500, 40),
        rtt_messages=pick(args.rtt_messages, 2000, 300),
        burst=pick(args.burst, 20000, 3000),
        window=args.window,
        idle_s=pick(args.idle, 60.0, 5.0),
        matrix_s=pick(args.matrix, 30.0, 3.0),
        python_starts=5 if not quick else 2,
        wait_quiet=not args.no_wait,
        subjects=subjects,
    )
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    mqttio_subject, mqttio_note = None, "not asked for (--subjects)"
    if "mqttio" in subjects:
        try:
            mqttio_subject, mqttio_note = prepare_mqttio(required=args.subjects is not None)
        except BenchmarkError as exc:
            print(f"perf: mqtt-io: {exc}", file=sys.stderr)
            return 2

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = datetime.datetime.now()
    workdir = Path(tempfile.mkdtemp(prefix="mqtt-gpio-perf-"))
    perf = Perf(settings, workdir)
    perf.mqttio, perf.mqttio_note = mqttio_subject, mqttio_note
    print(f"perf: logs in {workdir}", flush=True)
    failure = None
    try:
        perf.run()
    except KeyboardInterrupt:
        failure = "interrupted"
    except PerfError as exc:
        failure = str(exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        perf.close()
    text, data = build_report(perf, settings, started)
    if failure:
        text += f"\n\nRun aborted: {failure}\n"
        data["aborted"] = failure
    stem = args.out / f"perf-{started:%Y%m%d-%H%M%S}"
    write_results(stem, text + "\n", data)
    print(text)
    print()
    print(write_chart(perf, stem.with_suffix(".png")))
    print(f"report: {stem.with_suffix('.md')}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
