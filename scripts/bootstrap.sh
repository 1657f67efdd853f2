#!/usr/bin/env bash
# Creates .venv (once) and installs the project with its dev tools into it.
# Sourced by scripts/sim.sh and scripts/test.sh so each is one command on a fresh machine.
# First checks the Python version (one line naming the one found and the one needed), then
# says what it does, a line per step with its duration, and shows pip's progress.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
NEED=3.11
# too_old CMD: prints CMD's version and fails when it is below $NEED (or CMD does not run).
too_old() {
  local version
  version=$("$1" --version 2>&1) || { echo "no working $1"; return 0; }
  found=${version#Python }
  [[ ! $found =~ ^([0-9]+)\.([0-9]+) ]] && { echo "$1 reports $version"; return 0; }
  if (( BASH_REMATCH[1] < 3 || (BASH_REMATCH[1] == 3 && BASH_REMATCH[2] < 11) )); then
    echo "$1 is Python $found"
    return 0
  fi
  return 1
}
if why=$(too_old "$PY"); then
  echo "bootstrap: $why; Python >= $NEED is needed (install it, or set PYTHON=/path/to/python$NEED)" >&2
  exit 1
fi
if [ -x .venv/bin/python ] && why=$(too_old .venv/bin/python); then
  echo "bootstrap: $why (made by an older Python); remove it (rm -rf .venv) and run this again" >&2
  exit 1
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  step() { echo "bootstrap: $*" >&2; t0=$SECONDS; }
  done_in() { echo "bootstrap:   done in $((SECONDS - t0)) s" >&2; }
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv with $PY ($("$PY" --version 2>&1))"
    "$PY" -m venv .venv
    done_in
  fi
  step "installing the project and its dev tools into .venv (about a minute the first time)"
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -e '.[dev]' 2>&1 \
    | grep --line-buffered -E "^(Collecting|Installing|Successfully|ERROR|error)" \
    | while IFS= read -r line; do echo "bootstrap:   pip: $line" >&2; done || true
  done_in
  step "checking the install"
  .venv/bin/python -c "import vonage_bridge, aiohttp, soxr" \
    || { echo "bootstrap: install failed (see pip's lines above)" >&2; exit 1; }
  done_in
  rm -f .venv/.installed-*
  touch "$stamp"
fi
