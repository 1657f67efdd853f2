#!/usr/bin/env bash
# Creates .venv (once) and installs the project with its dev tools into it.
# Sourced by scripts/sim.sh and scripts/test.sh so each is one command on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | grep -v "is ignored" || true
  .venv/bin/python -c "import vonage_bridge, aiohttp, soxr" \
    || { echo "bootstrap: install failed" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi
