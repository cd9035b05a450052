#!/usr/bin/env bash
# Make sure a Docker engine answers (and docker-compose and debootstrap are there) before the
# Docker tests (marked `docker`). Where none answers and this runs as root, Debian's docker.io
# is installed if missing and `dockerd` started in the background (log: /var/log/dockerd.log).
# Elsewhere this says so and the Docker tests skip with that reason; in CI (CI=true) an engine
# that cannot be started is an error, so those tests never skip silently.
set -u
answers() { docker info >/dev/null 2>&1; }
fail() {
  if [ "${CI:-}" = "true" ]; then echo "error: $1" >&2; exit 1; fi
  echo "note: $1; the docker tests will skip" >&2
  exit 0
}
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if answers && [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  answers || fail "no Docker engine answers and this is not root with apt-get to start one"
  fail "${missing[*]} not installed and apt-get is not available as root"
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages) for the docker tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "could not install ${missing[*]}"
fi
if ! answers; then
  mkdir -p /var/log
  nohup dockerd >>/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do answers && exit 0; sleep 1; done
  tail -n 20 /var/log/dockerd.log >&2
  fail "dockerd did not answer within 60 s (log: /var/log/dockerd.log)"
fi
exit 0
