#!/usr/bin/env bash
# Install Hive as a system service (called by `./install.sh --system`):
#   - the `hive` system user and group
#   - the code and a venv under /opt/hive (hived, hivectl, hive-agent, hive-tui in /opt/hive/.venv/bin)
#   - /etc/hive/hived.yaml from deploy/hived.yaml (an existing one is kept)
#   - /etc/systemd/system/hived.service, enabled and started where systemd runs
# Options:
#   --root DIR   install under DIR instead of / (no user is created, systemd is not touched; for
#                packaging and for trying it out); says what it would have done for those
#   --no-venv    copy the files but do not build the venv (a dry run of the layout)
# Says plainly what it did and what it skipped.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
root=""
venv=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) root="${1#--root=}"; shift ;;
    --no-venv) venv=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh --system: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$root" ]; then
  mkdir -p "$root"
  root="$(cd "$root" && pwd)"
elif [ "$(id -u)" != 0 ]; then
  echo "install.sh --system: run as root (or use --root DIR to install into a directory)" >&2
  exit 1
fi

say() { echo "==> $*"; }
skip() { echo "--> skipped: $*"; }

# 1. the user
if [ -n "$root" ]; then
  skip "user 'hive' (with --root; as root this runs: useradd --system --home-dir /var/lib/hive --shell /usr/sbin/nologin hive)"
elif id hive >/dev/null 2>&1; then
  say "user 'hive' exists"
elif command -v useradd >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/hive --no-create-home --shell /usr/sbin/nologin hive
  say "created system user 'hive'"
else
  echo "install.sh --system: no useradd on this system; create a 'hive' user and run again" >&2
  exit 1
fi

# 2. the code and its venv
opt="$root/opt/hive"
mkdir -p "$opt"
# Tool caches and coverage data are left behind (tests running beside an install write them meanwhile).
tar -C "$src" --exclude=./.venv --exclude=./.git --exclude='*.pyc' --exclude=__pycache__ \
    --exclude=./.hypothesis --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./.schemathesis \
    --exclude='./.coverage*' \
    --exclude=./workflows-examples/deploy-demo --exclude=./workflows-examples/releases-demo -cf - . \
  | tar -C "$opt" -xf -
say "copied Hive to $opt"
if [ "$venv" = 1 ]; then
  python="${PYTHON:-python3}"
  "$python" -m venv "$opt/.venv"
  "$opt/.venv/bin/python" -m pip install --quiet --disable-pip-version-check "$opt"
  say "built $opt/.venv: $("$opt/.venv/bin/hived" --version)"
else
  skip "the venv $opt/.venv (--no-venv)"
fi

# 3. the config
etc="$root/etc/hive"
mkdir -p "$etc"
if [ -e "$etc/hived.yaml" ]; then
  say "kept the existing $etc/hived.yaml"
else
  install -m 0640 "$src/deploy/hived.yaml" "$etc/hived.yaml"
  say "wrote $etc/hived.yaml (edit it, then: systemctl restart hived)"
fi
[ -z "$root" ] && chgrp hive "$etc/hived.yaml"

# 4. the state directory (systemd makes it itself through StateDirectory=; this is for without)
mkdir -p "$root/var/lib/hive"
chmod 0700 "$root/var/lib/hive"
[ -z "$root" ] && chown hive:hive "$root/var/lib/hive"
say "state directory $root/var/lib/hive"

# 5. the unit
unit_dir="$root/etc/systemd/system"
mkdir -p "$unit_dir"
install -m 0644 "$src/deploy/hived.service" "$unit_dir/hived.service"
say "installed $unit_dir/hived.service"
if [ -n "$root" ]; then
  skip "systemctl (with --root; as root this runs: systemctl daemon-reload && systemctl enable --now hived)"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  systemctl enable --now hived
  say "enabled and started hived: systemctl status hived; journalctl -u hived -f"
else
  skip "enabling the service: systemd is not running here; start it with: sudo -u hive /opt/hive/.venv/bin/hived --config /etc/hive/hived.yaml"
fi
say "done. hivectl for operators: HIVE_SOCKET=/run/hive/hived.sock /opt/hive/.venv/bin/hivectl status"
