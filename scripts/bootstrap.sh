#!/usr/bin/env bash
# Create or refresh a venv with the package and the given extras ("dev", "demo").
# Usage: scripts/bootstrap.sh EXTRAS
# Environment: VENV, the venv directory (default .venv); PYTHON, the interpreter that creates
# it (default python3), e.g. VENV=.venv-3.12 PYTHON="$(pyenv which python3.12)"; pip's own
# PIP_CONSTRAINT, a constraints file (.ci/run's .ci/lowest.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
venv="${VENV:-.venv}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "mqtt-gpio-bridge needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
  exit 1
fi
stamp="$venv/.installed-$extras"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# Reinstall when pyproject.toml or the constraints changed since the last install of these extras.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
  || { [ -n "${PIP_CONSTRAINT:-}" ] && [ "$PIP_CONSTRAINT" -nt "$stamp" ]; }; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
