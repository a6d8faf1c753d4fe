#!/usr/bin/env bash
# Create .venv beside the checkout and install Zoo with everything the tests and the main job need.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 is pinned so pip takes the local CPU wheel instead of a multi-GB CUDA build.
.venv/bin/python -m pip install -q -e ".[all,test]"
