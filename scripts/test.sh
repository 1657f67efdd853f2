#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (unit + loopback integration).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
.venv/bin/ruff check vonage_bridge tests bench change_url.py
.venv/bin/ruff format --check vonage_bridge tests bench change_url.py
.venv/bin/mypy
.venv/bin/pytest "$@"
