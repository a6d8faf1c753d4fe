#!/usr/bin/env bash
# Set everything up on a fresh machine and run Zoo's main job (local Spark, no cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/quickstart.py "$@"
