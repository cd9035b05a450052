#!/usr/bin/env bash
# System tools some tests drive: Debian's docker-compose (validates the compose file without a
# Docker engine) and Chromium with its driver (the UI tests). Installed only when missing, and
# only where apt-get can run as root; elsewhere the tests that need them skip with the reason
# (in CI, CI=true, they fail instead).
set -u
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (Debian packages) for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || echo "note: could not install ${missing[*]}; the tests that need them will say so" >&2
else
  echo "note: ${missing[*]} not installed and apt-get is not available as root; the tests that need them will say so" >&2
fi
exit 0
