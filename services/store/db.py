"""Engines, transactions and schema upgrades for the store: SQLite by default, PostgreSQL by URL.

SQLite is shared by several processes (the bot, git hooks, the CLI), so every connection runs in
WAL mode with a busy timeout, and write transactions take the write lock up front (BEGIN IMMEDIATE)
so a read-then-write never fails half-way with "database is locked".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"

# Per-connection settings; WAL lets readers and one writer work at once across processes.
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_WRITE_OPTION = "aistack_write"
# Arbitrary constant: the PostgreSQL advisory lock that serialises concurrent `upgrade()` calls.
_MIGRATION_LOCK_KEY = 0x41_15_7A_C0


class DatabaseError(Exception):
    """The database cannot be opened, reached or migrated; the message is one line for the user."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever the URL says (`postgresql://`, `postgres://`)."""
    return re.sub(r"^postgres(?:ql)?(?:\+psycopg2)?://", "postgresql+psycopg://", url.strip())


def safe_url(url: str | URL) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", str(url))


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())[:300] or type(orig).__name__


def _cannot_open(url: str | URL, exc: BaseException) -> DatabaseError:
    return DatabaseError(f"cannot open database at {safe_url(url)}: {_one_line(exc)}; check DATABASE_URL")


def make_engine(url: str) -> Engine:
    """The process-wide engine for `url` (cached: every caller shares one pool)."""
    return _engine(normalize_url(url))


@functools.cache
def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"cannot open database at {safe_url(url)}: not a database URL; "
            "check DATABASE_URL (sqlite:///path/to/file.db or postgresql://user@host/db)"
        ) from exc
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        if parsed.get_backend_name() == "postgresql":
            connect_args: dict[str, Any] = {}
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = 10  # fail fast instead of hanging on a dead host
            return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        return create_engine(parsed)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            f"cannot open database at {safe_url(url)}: no driver for this URL ({exc}); "
            "check DATABASE_URL (sqlite:/// or postgresql://)"
        ) from exc


def _sqlite_engine(url: URL) -> Engine:
    path = url.database or ""
    if path and path != ":memory:" and not path.startswith("file:"):
        try:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot_open(url, exc) from exc
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); sqlite3's implicit BEGIN can't be made IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@contextmanager
def transaction(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """A connection inside one transaction, committed on success, rolled back on error.

    `write=True` takes SQLite's write lock at BEGIN (waiting up to the busy timeout) so a
    read-then-write cannot be refused half-way; on PostgreSQL it changes nothing (use FOR UPDATE).
    """
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise _cannot_open(engine.url, exc) from exc
    with conn:
        if write:
            conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


def _read_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    revisions = sorted(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    return ",".join(revisions) or None  # several rows only if someone branched the history


def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or None when it has never been migrated."""
    with transaction(make_engine(url)) as conn:
        return _read_revision(conn)


_REVISION_RE = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_RE = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(None|['\"]([^'\"]+)['\"])", re.M)


@functools.cache
def head_revision() -> str:
    """The newest revision shipped in `migrations/versions` (read without importing Alembic: it is slow)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        rev, down = _REVISION_RE.search(source), _DOWN_RE.search(source)
        if rev is None or down is None:
            return _alembic_head()  # a shape this parser doesn't know: let Alembic decide
        revisions.add(rev.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    if len(heads) != 1:
        return _alembic_head()
    return heads.pop()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DatabaseError(f"no migrations in {MIGRATIONS_DIR}; the package is incomplete, reinstall it")
    return head


def alembic_config(url: str | None = None) -> Any:
    """An Alembic Config built in code (no alembic.ini, no dependence on the working directory)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))  # ConfigParser escaping
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision; a no-op costing one query when already there.

    Safe to call from several processes at once: SQLite serialises on BEGIN IMMEDIATE and
    PostgreSQL on an advisory lock, and whoever comes second finds the work done.
    """
    head = head_revision()
    if current_revision(url) == head:
        return
    engine = make_engine(url)
    try:
        with transaction(engine, write=True) as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            if _read_revision(conn) == head:
                return
            _run_alembic_upgrade(conn, url)
    except DBAPIError as exc:
        # Belt and braces: a racing migrator that slipped past the lock leaves us at head anyway.
        if "already exists" in str(exc) and current_revision(url) == head:
            return
        raise DatabaseError(
            f"cannot upgrade database at {safe_url(url)}: {_one_line(exc)}; check DATABASE_URL"
        ) from exc


def _run_alembic_upgrade(conn: Connection, url: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn  # env.py runs inside our (locked) transaction
    try:
        command.upgrade(cfg, "head")
    except CommandError as exc:
        raise DatabaseError(
            f"cannot upgrade database at {safe_url(url)}: {_one_line(exc)} "
            f"(this aistack knows revisions up to {head_revision()}); upgrade aistack or check DATABASE_URL"
        ) from exc
