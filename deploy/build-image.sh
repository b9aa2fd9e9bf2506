#!/usr/bin/env bash
# Build the Hive image (deploy/Containerfile) on this machine, with no registry and no Docker daemon:
#   1. a Debian bookworm base: `mmdebstrap --variant=minbase` (python3, python3-venv), imported with
#      `podman import` (kept: the tarball in the cache dir, the image in podman's store);
#   2. the wheels of Hive and its dependencies, built on the host (`pip wheel`, Python 3.11 as in the
#      base), into deploy/wheels of a copy of the sources (the build context);
#   3. `podman build` of deploy/Containerfile from that base, pip installing with --no-index.
#
#   deploy/build-image.sh [IMAGE]         default IMAGE: localhost/hive:latest
#
# Environment: HIVE_PODMAN (podman's argv, default "podman"), HIVE_BASE_IMAGE (default
# localhost/hive-base:bookworm), HIVE_IMAGE_CACHE (where the base tarball is kept, default
# ~/.cache/hive-image), PYTHON (the host's Python 3.11 that builds the wheels, default python3.11 or
# python3). Prints the image's size and the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:-localhost/hive:latest}
base=${HIVE_BASE_IMAGE:-localhost/hive-base:bookworm}
cache=${HIVE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hive-image}
read -r -a podman <<< "${HIVE_PODMAN:-podman}"
started=$(date +%s)

fail() { echo "build-image.sh: $*" >&2; exit 1; }
command -v "${podman[0]}" >/dev/null 2>&1 || fail "${podman[0]} not found (apt-get install podman)"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 && { python=$candidate; break; }
  done
fi
[ -n "$python" ] && "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || \
  fail "the wheels must be built by Python 3.11, the base image's (found: ${python:-none}; set PYTHON)"

# 1. The base image: Debian's own packages, nothing from a registry.
if ! "${podman[@]}" image exists "$base"; then
  rootfs="$cache/rootfs-bookworm.tar"
  if [ ! -s "$rootfs" ]; then
    command -v mmdebstrap >/dev/null 2>&1 || fail "mmdebstrap not found (apt-get install mmdebstrap)"
    mkdir -p "$cache"
    echo "build-image.sh: making the Debian base (mmdebstrap, about a minute)"
    # No docs, man pages or translations; the perl that merging /usr pulls in is not wanted either.
    mmdebstrap --variant=minbase --format=tar --include=python3,python3-venv \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
      bookworm "$rootfs.part" >"$cache/mmdebstrap.log" 2>&1 || \
      { tail -20 "$cache/mmdebstrap.log" >&2; fail "mmdebstrap failed (log: $cache/mmdebstrap.log)"; }
    mv "$rootfs.part" "$rootfs"
  fi
  "${podman[@]}" import --quiet "$rootfs" "$base" >/dev/null
  echo "build-image.sh: base image $base imported from $rootfs"
fi

# 2. The wheels, on the host (it has the package index; the build has none), in a copy of the sources
#    (the checkout is left as it is); debug symbols stripped.
ctx=$(mktemp -d "${TMPDIR:-/tmp}/hive-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp -r pyproject.toml README.md hived hivectl tui deploy .dockerignore "$ctx/"
find "$ctx" -name __pycache__ -prune -exec rm -rf {} +
find "$ctx/deploy/wheels" -name '*.whl' -delete
(cd "$ctx" && "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir deploy/wheels \
  "setuptools>=68" wheel . 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2))
if command -v strip >/dev/null 2>&1; then
  "$python" deploy/strip_wheels.py "$ctx"/deploy/wheels/*.whl
fi

# 3. The image. Docker format: OCI images have no HEALTHCHECK.
"${podman[@]}" build --quiet --format docker --file deploy/Containerfile --build-arg "BASE=$base" \
  --build-arg "PIP_ARGS=--no-index" --tag "$image" "$ctx" >/dev/null
"${podman[@]}" image prune --force --filter label=hive.stage=build >/dev/null  # the build stage's image

size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
echo "build-image.sh: built $image: $((size / 1000000)) MB, in $(( $(date +%s) - started ))s"
