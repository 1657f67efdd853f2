#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite (unit + loopback integration).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
paths=(vonage_bridge tests change_url.py)
[ -d bench ] && paths+=(bench)
.venv/bin/ruff check "${paths[@]}"
.venv/bin/ruff format --check "${paths[@]}"
.venv/bin/mypy
.venv/bin/pytest "$@"
