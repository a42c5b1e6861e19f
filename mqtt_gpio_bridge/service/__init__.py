"""The bridge as a service you can operate: `<base>/bridge/info`, `<base>/bridge/health` and
requests on `<base>/bridge/request/<name>` (docs/bridge-api.md).

`info.py` and `health.py` build the payloads and `requests.py` reads requests, all pure;
`api.py` is the one concern that wires them to the broker.
"""

from __future__ import annotations

from .api import BridgeApi

__all__ = ["BridgeApi"]
