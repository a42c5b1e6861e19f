"""The frame of a benchmark's `main`: logs folder, phases, facts, report and result files."""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Callable, Container, Iterable
from pathlib import Path
from typing import Any

from . import BenchmarkError
from .facts import bridge_code_line, machine_facts
from .mosquitto import mosquitto_missing
from .processes import interrupt_on_sigterm, load_average
from .report import write_results

Phase = tuple[str, Callable[[], Any]]
"""A phase of a benchmark: its name (the key of its result) and what runs it."""


def run_phases(
    label: str, phases: Iterable[Phase], data: dict[str, Any], repeated: Container[str] = ()
) -> None:
    """Run each phase in turn, its result into `data[name]` as soon as it is there (a list of
    results for the names in `repeated`, which run more than once)."""
    for name, phase in phases:
        print(f"{label}: {name} ... (load {load_average()})", flush=True)
        result = phase()
        if name in repeated:
            data.setdefault(name, []).append(result)
        else:
            data[name] = result


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
