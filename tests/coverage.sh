#!/usr/bin/env bash
# Line coverage of the whole suite, with the hived, hivectl and hive-agent processes the tests start
# (coverage.py's `patch = subprocess`). Slower than ./test.sh; a measurement, not a gate.
# Extra arguments go to pytest, e.g. tests/coverage.sh tests/unit
set -euo pipefail
cd "$(dirname "$0")/.."
./install.sh --dev >/dev/null
rm -f .coverage .coverage.*
.venv/bin/coverage run -m pytest -q -p no:cacheprovider "$@" || echo "(some tests failed; the figures below still stand)"
.venv/bin/coverage combine -q
.venv/bin/coverage report
