"""soak.py's report: recovery times, faults, memory, CPU and the logs' summary."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common.facts import machine_facts
from soak_common import now
from soak_run import Soak

# -- report ----------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f} / {middle:.{digits}f} / {high:.{digits}f} s (n={len(values)})"


def log_summary(path: Path, limit: int = 12) -> tuple[int, list[tuple[str, int]], list[str]]:
    """(line count, most frequent messages with numbers masked, ERROR/traceback lines)."""
    if not path.exists():
        return 0, [], []
    lines = path.read_text(errors="replace").splitlines()
    masked: Counter[str] = Counter()
    serious = []
    for line in lines:
        message = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", line)
        masked[re.sub(r"\d+(\.\d+)?", "N", message)] += 1
        if re.search(r"ERROR|CRITICAL|Traceback|Error:|Exception", line):
            serious.append(line)
    return len(lines), masked.most_common(limit), serious[:40]


def fault_table(soak: Soak) -> list[str]:
    out = [
        "",
        "| # | fault | down | restart at | offline after | recovery | commands | board ok "
        "| checkpoint |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in soak.faults:
        at = f"{f.restarted - soak.load_started:.1f} s" if f.restarted else "-"
        recovery = "never" if f.recovery_s is None else f"{f.recovery_s:.2f} s"
        if f.recovery_upper_bound:
            recovery += " (retained: upper bound)"
        checkpoint = (
            f"{f.checkpoint_s:.2f} s"
            if f.checkpoint_s is not None
            else ("FAILED" if f.checkpoint_problems else "-")
        )
        offline = "-" if f.offline_after_s is None else f"{f.offline_after_s:.3f} s"
        board = "-" if f.checkpoint_board_s is None else f"{f.checkpoint_board_s:.2f} s"
        out.append(
            f"| {f.index} | {f.kind} | {f.down_s:.2f} s | {at} | {offline} | {recovery} "
            f"| {f.acked_before_checkpoint} | {board} | {checkpoint} |"
        )
        if f.error:
            out.append(f"|   | error: {f.error} | | | | | | | |")
    out += [
        "",
        "commands: acknowledged from the fault's start to its checkpoint (sent during the "
        "outage and the recovery); board ok / checkpoint: seconds from the checkpoint's start "
        "(commands paused) until the board, then also the retained states, were right.",
    ]
    return out


def build_report(soak: Soak, outcome: str) -> tuple[str, dict[str, Any]]:
    watch = soak.watch
    duration = (soak.load_ended or now()) - (soak.load_started or now())
    broker_faults = [f for f in soak.faults if f.kind == "broker"]
    malos_faults = [f for f in soak.faults if f.kind == "malos"]
    recoveries = [f.recovery_s for f in soak.faults if f.recovery_s is not None]
    never = [f for f in soak.faults if f.restarted and f.recovery_s is None]
    checkpoint_bad = [f for f in soak.faults if f.checkpoint_problems]
    final_problems = soak.final.get("problems", ["not reached"])
    commander = soak.commander
    cpu = soak.cpu
    early_rss = watch.rss_at(soak.load_started + 30) if watch and soak.load_started else None
    lines_total, frequent, serious = log_summary(soak.bridge_log)
    broker_log = soak.workdir / "mosquitto.log"
    drops = broker_log.read_text(errors="replace").count("dropped") if broker_log.exists() else 0

    cpu_text = "-"
    if cpu is not None:
        share = 100 * (cpu[0] + cpu[1]) / max(1e-9, soak.cpu_wall)
        cpu_text = (
            f"{cpu[0] + cpu[1]:.1f} s (user {cpu[0]:.1f} + sys {cpu[1]:.1f}), "
            f"{share:.1f}% of one CPU over its {soak.cpu_wall:.0f} s"
        )

    def kb(value: int | None) -> str:
        return "-" if not value else f"{value / 1024:.1f} MB"

    rows: list[tuple[str, str]] = [
        ("result", outcome),
        ("load duration", f"{duration:.1f} s (asked {soak.args.minutes} min)"),
        ("seed", str(soak.args.seed)),
        (
            "pins",
            f"{len(soak.expect.outputs)} outputs (initial off), {len(soak.expect.inputs)} inputs",
        ),
        ("start-up to consistent", "-" if soak.startup_s is None else f"{soak.startup_s:.2f} s"),
        ("commands acknowledged", str(soak.acknowledged)),
        ("publish attempts (incl. retries)", str(commander.attempts if commander else 0)),
        ("attempts not acknowledged (retried)", str(commander.unacknowledged if commander else 0)),
        ("command rate", f"{soak.acknowledged / duration:.0f}/s" if duration > 0 else "-"),
        ("input flips", str(soak.input_flips)),
        ("broker restarts", str(sum(1 for f in broker_faults if f.restarted))),
        ("simulator (MALOS) restarts", str(sum(1 for f in malos_faults if f.restarted))),
        ("recovery, all faults min/median/max", spread(recoveries)),
        ("recovery, broker", spread([f.recovery_s for f in broker_faults if f.recovery_s])),
        ("recovery, MALOS", spread([f.recovery_s for f in malos_faults if f.recovery_s])),
        (
            "MALOS stop to status offline",
            spread([f.offline_after_s for f in malos_faults if f.offline_after_s is not None], 3),
        ),
        ("faults never recovered (60 s)", str(len(never))),
        (
            "checkpoint: board right after",
            spread([f.checkpoint_board_s for f in soak.faults if f.checkpoint_board_s is not None]),
        ),
        (
            "checkpoint: board and retained states right after",
            spread([f.checkpoint_s for f in soak.faults if f.checkpoint_s is not None]),
        ),
        (
            "checkpoints failed (15 s)",
            f"{len(checkpoint_bad)} "
            f"({sum(1 for f in checkpoint_bad if f.checkpoint_ambiguous)} explainable by a killed "
            "broker)",
        ),
        ("final status online (retained)", str(soak.final.get("status_online", "-"))),
        ("final mismatches", str(len(final_problems))),
        (
            "final convergence",
            "-" if soak.final.get("converged_s") is None else f"{soak.final['converged_s']:.2f} s",
        ),
        ("bridge alive at the end", str(soak.bridge_died_at is None)),
        ("bridge exit status (after SIGTERM)", str(soak.bridge_exit)),
        ("bridge peak RSS (VmHWM)", kb(watch.hwm_kb if watch else None)),
        ("bridge RSS 30 s into the load", kb(early_rss)),
        ("bridge final RSS", kb(soak.final_rss_kb)),
        ("bridge CPU time user+sys", cpu_text),
        ("bridge log lines (WARNING+)", str(lines_total)),
        ("broker 'dropped' notices", str(drops)),
        ("logs", str(soak.workdir)),
    ]
    rows += [(key, value) for key, value in {**machine_facts(), **soak.code}.items()]
    out = ["| metric | value |", "|---|---|"]
    out += [f"| {key} | {value.replace('|', '/')} |" for key, value in rows]
    out += fault_table(soak)
    details = []
    for f in checkpoint_bad:
        details.append(f"- checkpoint after fault {f.index} ({f.kind}):")
        details += [f"  - {problem}" for problem in f.checkpoint_problems]
    if final_problems:
        details.append("- final check:")
        details += [f"  - {problem}" for problem in final_problems]
        details += [f"  - {reason}" for reason in soak.final.get("lost_with_broker", [])]
    if soak.fatal:
        details.append(f"- run aborted: {soak.fatal}")
    if details:
        out += ["", "Problems:", *details]
    out += ["", "Most frequent bridge log lines (numbers as N):"]
    out += [f"- {count} x `{message}`" for message, count in frequent] or ["- none"]
    if serious:
        out += ["", "Bridge log lines with ERROR/Traceback:", *[f"    {line}" for line in serious]]
    data = {
        "rows": dict(rows),
        "faults": [asdict(f) for f in soak.faults],
        "final": soak.final,
        "bridge_log_top": frequent,
        "bridge_log_serious": serious,
    }
    return "\n".join(out), data
