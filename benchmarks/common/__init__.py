"""What the benchmark scripts share.

- `ports`: the host, free ports, waiting for a listener or a condition.
- `processes`: ending processes, CPU time and memory from /proc, other benchmarks running.
- `facts`: the machine (CPU, Python, Mosquitto, libraries) and the code (commit, changes, a
  hash of the bridge's sources, a commit exported with `git archive`).
- `mosquitto`: a Mosquitto on a given port, started and stopped as often as needed.
- `bridge`: a bridge config file and the bridge as a subprocess.
- `report`: markdown tables and result files.
- `run`: the frame of a benchmark's `main` (logs folder, facts, report, result files, exit
  status).
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """A benchmark could not run as planned (no ports, a peer did not start...)."""
