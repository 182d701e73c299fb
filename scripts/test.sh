#!/usr/bin/env bash
# Set up everything, then run the whole test suite (real Swift, duplicity, gpg, nftables, BIND).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -ra --durations=30 "$@"
