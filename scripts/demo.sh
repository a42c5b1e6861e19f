#!/usr/bin/env bash
# Try the bridge without a board or a broker: a broker, the simulated MATRIX driver and the
# bridge with config.example.yaml. The broker is Mosquitto, installed with apt if it is missing
# and apt can be used here; otherwise the demo falls back to its embedded broker (amqtt).
# Extra arguments go to `mqtt-gpio-bridge demo` (e.g. --mqtt-port 1884, --broker embedded).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "installing Debian packages: ${missing[*]} (for the demo's broker and its clients)" >&2
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    echo "could not install them; the demo uses its embedded broker" >&2
  fi
fi
scripts/bootstrap.sh demo
PATH="$PATH:/usr/sbin" exec .venv/bin/mqtt-gpio-bridge demo "$@"
