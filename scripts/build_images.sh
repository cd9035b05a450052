#!/usr/bin/env bash
# Build every image of the compose deployment on a machine with no image registry:
#   1. two Debian bookworm base images made with debootstrap (python3 + venv; postgresql-15),
#      imported into the engine (once: kept while their tags exist);
#   2. a wheelhouse with a wheel for every distribution in requirements.lock, built on the host
#      (.cache/wheelhouse; rebuilt only when the lock changes);
#   3. research_assets:$RESEARCH_ASSETS_VERSION from the Dockerfile with that base and wheelhouse
#      (no network inside the build), and research-assets-postgres:15 from deploy/postgres.
# Then: docker compose -f docker-compose.yml -f docker-compose.local.yml up -d
#
# Needs root (debootstrap) the first time, a Docker engine, and Debian's mirror and PyPI reachable
# from the host. PYTHON (default .venv/bin/python, else python3; Python 3.11 like the image)
# builds the wheelhouse; torch comes as whatever that pip finds for the locked version (a local
# CPU wheel here, or set PIP_FIND_LINKS / use TORCH_INDEX_URL for a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${RESEARCH_ASSETS_VERSION:-0.1.0}"
BASE=research-assets-base:bookworm
PG_BASE=research-assets-postgres-base:bookworm
APP_IMAGE="research_assets:$VERSION"
PG_IMAGE=research-assets-postgres:15
ROOTFS="${RESEARCH_ASSETS_ROOTFS:-/var/tmp/research-assets-rootfs}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WHEELHOUSE=.cache/wheelhouse
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"

say() { echo "build_images: $*" >&2; }
took() { say "$1 in $(( $(date +%s) - $2 )) s"; }

# A base image from debootstrap --variant=minbase with the packages given.
base_image() {
  local name=$1 packages=$2 dir="$ROOTFS/${1%%:*}" start
  if docker image inspect "$name" >/dev/null 2>&1; then return 0; fi
  command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  start=$(date +%s)
  rm -rf "$dir"
  mkdir -p "$dir"
  debootstrap --variant=minbase --include="$packages" bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1 \
    || { tail -n 20 "$dir.log" >&2; say "debootstrap of $name failed (log: $dir.log)"; exit 1; }
  tar -C "$dir" --exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' -c . \
    | docker import -c 'ENV LANG=C.UTF-8' - "$name" >/dev/null
  rm -rf "$dir"
  took "base image $name" "$start"
}

start=$(date +%s)
# Both at once (mostly downloads); each says why it failed.
base_image "$BASE" python3,python3-venv & app_base=$!
base_image "$PG_BASE" postgresql-15 & pg_base=$!
wait "$app_base"
wait "$pg_base"

# The wheelhouse, keyed by the lock's hash.
lock_hash=$(sha256sum requirements.lock | cut -c1-16)
if [ "$(cat "$WHEELHOUSE/.lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  step=$(date +%s)
  rm -rf "$WHEELHOUSE"
  mkdir -p "$WHEELHOUSE"
  "$PYTHON" -m pip wheel --quiet --no-deps -r requirements.lock -w "$WHEELHOUSE"
  echo "$lock_hash" >"$WHEELHOUSE/.lock-hash"
  took "wheelhouse ($(ls "$WHEELHOUSE" | grep -c '\.whl$') wheels)" "$step"
fi

step=$(date +%s)
build_args=(--build-arg BASE_IMAGE="$BASE" --build-arg WHEELHOUSE="$WHEELHOUSE")
# The dependency stage tagged by the lock's hash: `docker image prune` keeps it, so the next build
# reuses it (an untagged stage is a dangling image, and its cache goes with it).
docker build --quiet "${build_args[@]}" --target dependencies \
  -t "research-assets-dependencies:$lock_hash" . >/dev/null
docker build --quiet "${build_args[@]}" -t "$APP_IMAGE" . >/dev/null
took "image $APP_IMAGE" "$step"
step=$(date +%s)
docker build --quiet --build-arg BASE_IMAGE="$PG_BASE" -t "$PG_IMAGE" deploy/postgres >/dev/null
took "image $PG_IMAGE" "$step"
took "all images" "$start"
