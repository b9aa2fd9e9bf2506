#!/usr/bin/env bash
# The one command that runs Hive's checks: install with the dev tools, lint (ruff, the import contracts),
# then the whole test suite.
# PostgreSQL tests run when HIVE_TEST_PG_URL is set (.ci/run sets it), and are skipped otherwise.
# Extra arguments go to pytest, e.g. ./test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")"
./install.sh --dev
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache  # the import contracts in pyproject.toml
# Tests run in parallel (pytest-xdist): most of their time is spent waiting on daemons and agents, not
# on a CPU. HIVE_TEST_WORKERS=0 runs them in this process (e.g. for pdb); worksteal evens out the tail.
exec .venv/bin/python -m pytest -n "${HIVE_TEST_WORKERS:-3}" --dist worksteal "$@"
