#!/usr/bin/env bash
# Run the test suite against a real Mosquitto, installing what a fresh Debian machine lacks.
# Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null 2>&1 && [ -z "${MQTT_TEST_BROKER:-}" ]; then
  echo "installing mosquitto (Debian packages mosquitto, mosquitto-clients)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi
scripts/bootstrap.sh dev
exec .venv/bin/python -m pytest "$@"
