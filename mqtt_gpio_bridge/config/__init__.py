"""The bridge's YAML configuration: typed objects, loading and human-readable problems.

Every user mistake ends up as one line in `ConfigError.problems`, of the form
`<key path>: <message>`, and all of them are reported at once so a user fixes the file
in one go instead of one error per run.

Why voluptuous (and not pydantic, cattrs or msgspec): the configuration is declared once,
as frozen dataclasses whose fields carry their rule in `Annotated[...]`; the schema that
voluptuous runs is derived from those fields. Voluptuous walks the document, collects every
problem with its key path (`MultipleInvalid`), prefixes the paths of nested problems,
and lets each rule be a plain function, so the messages stay exactly the ones users
read. It is Home Assistant's own config validation library, pure Python, and costs about
0.6 MB resident in the bridge's process, where pydantic cost about 10 MB (the library and
its model building); cattrs + attrs cost about twice voluptuous, and msgspec stops at the
first problem instead of reporting them all.

The modules, one job each:

- `messages.py`: how values and key paths are shown in problem lines;
- `rules.py`: a field's rule (`_Rule`) and the checks every kind of value shares;
- `strings.py`: checks of text that leaves the bridge (MQTT strings, host names, payloads);
- `password.py`: the password (`Secret`), read from its source at run time;
- `kinds.py`: the `Annotated` types several fields share, and `_doc` for descriptions;
- `broker.py`, `model.py`, `links.py`: the frozen dataclasses, one per section;
- `schema.py`: the voluptuous schema derived from them, and problem lines;
- `loading.py`: `load_config`, `parse_config` and YAML problems;
- `summary.py`: `summarize` and `warnings`, for `check-config`;
- `reference.py`: docs/configuration.md, generated from the model.
"""

from __future__ import annotations

from .loading import load_config, parse_config
from .model import (
    BridgeConfig,
    EverloopConfig,
    HealthConfig,
    HomeAssistantConfig,
    LinkSpec,
    MalosConfig,
    MqttConfig,
    PinSpec,
    SensorsConfig,
    TlsConfig,
    default_node_id,
)
from .password import Secret
from .summary import summarize, warnings

__all__ = [
    "BridgeConfig",
    "EverloopConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "LinkSpec",
    "MalosConfig",
    "MqttConfig",
    "PinSpec",
    "Secret",
    "SensorsConfig",
    "TlsConfig",
    "default_node_id",
    "load_config",
    "parse_config",
    "summarize",
    "warnings",
]
