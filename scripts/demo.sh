#!/usr/bin/env bash
# Set up everything, then show the whole product in a minute against a real local Swift.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
exec .venv/bin/python scripts/demo.py "$@"
