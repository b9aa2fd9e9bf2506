#!/usr/bin/env bash
# Hive installer: a fresh machine to a working .venv in this checkout.
#   ./install.sh          the daemon, CLI, agent runtime and dashboard
#   ./install.sh --dev    plus the test and lint tools
#   ./install.sh --system [--root DIR] [--no-venv]
#                         as a service: user hive, /opt/hive, /etc/hive/hived.yaml, the systemd unit
# Safe to run again: it reuses the venv and only installs what changed.
set -euo pipefail
cd "$(dirname "$0")"

if [ "${1:-}" = "--system" ]; then
  shift
  exec ./deploy/install-system.sh "$@"
fi

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

python=""
for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 && \
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  found=$(python3 --version 2>&1 || echo "no python3")
  echo "install.sh: Hive needs Python 3.11 or newer (found: $found). Install python3.11 and run again," \
       "or point PYTHON=/path/to/python3.11 at it." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$python" --version)"
  if ! "$python" -m venv .venv; then
    echo "install.sh: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  fi
fi

extras=""
[ "$dev" = 1 ] && extras="[dev]"
echo "==> installing hive${extras} into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
# An editable install leaves Hive's own modules uncompiled: without their bytecode every hivectl
# command compiles them again (~30 ms) wherever __pycache__ cannot be written (PYTHONDONTWRITEBYTECODE,
# a read-only checkout).
.venv/bin/python -m compileall -q hived hivectl tui >/dev/null
echo "==> done: $(.venv/bin/hivectl --version 2>/dev/null || echo hive) in $(pwd)/.venv"
echo "    commands: .venv/bin/hived  .venv/bin/hivectl  .venv/bin/hive-agent  .venv/bin/hive-tui"
