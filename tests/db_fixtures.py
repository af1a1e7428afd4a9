"""Database fixtures: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from AISTACK_TEST_POSTGRES_URL (a server URL with rights to CREATE DATABASE), e.g.
    eval "$(bash .ci/postgres.sh)"; export AISTACK_TEST_POSTGRES_URL
Each test gets a fresh database, dropped afterwards. Without the variable the PostgreSQL cases are
skipped, except under CI (env CI set), where they fail: CI must never silently skip PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from services.store.db import make_engine, normalize_url, upgrade

PG_ENV = "AISTACK_TEST_POSTGRES_URL"
_HOW = f'start one with: eval "$(bash .ci/postgres.sh)"; export {PG_ENV}'

__all__ = ["db_url", "engine", "pg_admin", "pg_url", "sqlite_url"]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the PostgreSQL admin database, for CREATE/DROP DATABASE."""
    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set but CI is: PostgreSQL tests must run in CI; {_HOW}")
        pytest.skip(f"PostgreSQL tests need {PG_ENV}; {_HOW}")
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect():
            pass
    except DBAPIError as exc:
        pytest.fail(f"{PG_ENV}={url} is set but unreachable: {' '.join(str(exc.orig).split())}; {_HOW}")
    yield admin
    admin.dispose()


def _fresh_pg_database(admin: Engine) -> Iterator[str]:
    name = f"aistack_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        make_engine(url).dispose()  # the cached engine's pool would hold the database open
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A not-yet-created SQLite database file (its directory does not exist either)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'data' / 'aistack.db'}"


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    yield from _fresh_pg_database(pg_admin)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Engine:
    """The store's engine on a migrated database."""
    upgrade(db_url)
    return make_engine(db_url)
