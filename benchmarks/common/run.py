"""The frame of a benchmark's `main`: logs folder, phases, facts, report and result files."""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import BenchmarkError
from .facts import bridge_code_line, machine_facts
from .mosquitto import mosquitto_missing
from .processes import interrupt_on_sigterm
from .report import write_results


def run_benchmark(
    name: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Path, dict[str, Any]], None],
    build_report: Callable[[dict[str, Any]], str],
) -> int:
    """Run `run(args, workdir, data)`, then print its report and write
    `<args.out>/<name>-<time>.md` and `.json`.

    Returns the exit status: 2 without Mosquitto, 1 if the run broke (interrupted, a peer
    would not start), else 0; a missed target is never a failure of the run.
    """
    if mosquitto_missing():
        return 2
    interrupt_on_sigterm()
    started = datetime.datetime.now()
    workdir = Path(tempfile.mkdtemp(prefix=f"mqtt-gpio-{name}-"))
    print(f"{name}: logs in {workdir}", flush=True)
    data: dict[str, Any] = {"started": f"{started:%Y-%m-%d %H:%M:%S}", "args": vars(args)}
    failure = None
    t0 = time.monotonic()
    try:
        run(args, workdir, data)
    except KeyboardInterrupt:
        failure = "interrupted"
    except (BenchmarkError, OSError) as exc:
        failure = str(exc)
    data["facts"] = {
        "command": " ".join(sys.argv),
        "bridge": bridge_code_line(),
        **machine_facts(cpu=True, libraries=True),
        "run": f"{time.monotonic() - t0:.0f} s",
        "logs": str(workdir),
    }
    text = build_report(data)
    if failure:
        text += f"\nRun aborted: {failure}\n"
        data["aborted"] = failure
    stem = args.out / f"{name}-{started:%Y%m%d-%H%M%S}"
    write_results(stem, text, data)
    print(text)
    print(f"report: {stem.with_suffix('.md')}")
    return 1 if failure else 0
