"""A fresh PostgreSQL database per test, on the local server at 127.0.0.1:5432.

Without a server, tests that need one skip with the reason; in CI (CI=true) they fail instead,
so they never skip silently there.
"""

import contextlib
import uuid
from collections.abc import Iterator

from tests.ci_support import skip_or_fail_in_ci

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"


def _connect(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=dbname, connect_timeout=3)
    conn.autocommit = True
    return conn


def require_postgres() -> None:
    try:
        _connect().close()
    except Exception as e:  # any connection problem means the same thing here
        message = (
            f"PostgreSQL is not reachable at {HOST}:{PORT} ({str(e).strip()}); "
            "start it with scripts/ensure_postgres.sh"
        )
        skip_or_fail_in_ci(message)


@contextlib.contextmanager
def fresh_database(prefix: str = "research_test") -> Iterator[str]:
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = _connect()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()


def postgres_storage(db_name: str) -> dict:
    """The ``storage`` section of a dagster.yaml for that database."""
    return {
        "postgres": {
            "postgres_db": {
                "username": USER,
                "password": "",
                "hostname": HOST,
                "db_name": db_name,
                "port": PORT,
                "scheme": "postgresql+psycopg2",
            }
        }
    }
