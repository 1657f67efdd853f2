#!/usr/bin/env bash
# The local simulation: the bridge plus fake Vonage caller and fake OpenAI Realtime on
# 127.0.0.1, pushing a real speech recording through a whole call. No accounts needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
exec .venv/bin/python -m vonage_bridge.sim "$@"
