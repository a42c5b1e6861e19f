#!/usr/bin/env bash
# Run the test suite against a real Mosquitto, installing what a fresh Debian machine lacks:
# mosquitto and its clients (the broker the tests start), systemd-analyze (checks the unit in
# deploy/), iproute2 and nftables (a board across a network namespace, behind
# deploy/malos-firewall.nft: those tests need root, as CI has), the venv. Extra arguments go to pytest, e.g. scripts/test.sh -k simulator
#
# Without Mosquitto (and without apt), the tests that need no broker run on their own: every test
# that needs one is marked `broker` (tests/conftest.py), so after `scripts/bootstrap.sh dev`:
#   .venv/bin/python -m pytest -m "not broker"
#
# VENV and PYTHON choose the venv and the Python that creates it (see scripts/bootstrap.sh);
# .ci/run runs this script once per supported Python, each in its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian installs the broker as /usr/sbin/mosquitto; a service's or CI's PATH may lack sbin.
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
# Even with MQTT_TEST_BROKER set, some tests start brokers of their own (restarts, TLS).
command -v mosquitto_passwd >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
scripts/bootstrap.sh dev
exec "${VENV:-.venv}/bin/python" -m pytest "$@"
