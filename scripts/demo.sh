#!/usr/bin/env bash
# Try the bridge without a board or a broker: embedded MQTT broker, simulated MATRIX driver and
# the bridge with config.example.yaml. Extra arguments go to `mqtt-gpio-bridge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh demo
exec .venv/bin/mqtt-gpio-bridge demo "$@"
