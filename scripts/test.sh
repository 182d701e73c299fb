#!/usr/bin/env bash
# Set up everything, then run the whole test suite (real Swift, duplicity, gpg, nftables, BIND).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check .
# Several workers (pytest-xdist), each with its own session fixtures (its own Swift, BIND,
# namespaces): the tests mostly wait on servers and subprocesses, so 3 workers on 2 cores.
exec .venv/bin/python -m pytest -q -ra --durations=30 -n "${CFBACKUP_TEST_WORKERS:-3}" \
    --dist loadgroup "$@"
