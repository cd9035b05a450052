#!/usr/bin/env bash
# Make sure PostgreSQL answers at 127.0.0.1:5432 before the tests that need it.
# On a machine without a local cluster this says so and the Postgres tests skip with that reason;
# in CI (CI=true) a missing server is an error, so those tests never skip silently.
set -u
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ready; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is not reachable at 127.0.0.1:5432 and could not be started" >&2
  exit 1
fi
echo "note: PostgreSQL is not reachable at 127.0.0.1:5432; the postgres tests will skip" >&2
exit 0
