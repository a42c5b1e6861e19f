"""The simulated MALOS driver and the demo: for trying and testing the bridge without a board.

Not on the run path. It needs the `sim` extra (protobuf and the official MALOS messages):
`pip install "mqtt-gpio-bridge[sim]"`.
"""

from __future__ import annotations

import importlib.util

_REQUIREMENTS = (("google.protobuf", "protobuf"), ("matrix_io", "matrix-io-proto"))


def missing_requirements() -> list[str]:
    """The distributions of the `sim` extra that are not installed (found without importing)."""
    missing = []
    for module, distribution in _REQUIREMENTS:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its parent package (google) is missing too
            found = False
        if not found:
            missing.append(distribution)
    return missing


__all__ = ["missing_requirements"]
