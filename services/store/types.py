"""Column types shared by the models: UTC timestamps that read back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive value is taken to be UTC already (that is how the DB stores it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC ('YYYY-MM-DD HH:MM:SS[.ffffff]' on SQLite), returned as aware UTC.

    Naive storage lets a stdlib-sqlite3 writer use `datetime('now')` and still compare correctly.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a foreign writer's text that the dialect did not parse
            value = datetime.fromisoformat(value)
        return as_utc(value)


class utcnow(FunctionElement[datetime]):
    """Server-side "now, in UTC, without zone": the DB default for timestamp columns."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"  # SQLite's CURRENT_TIMESTAMP is already UTC text


@compiles(utcnow, "postgresql")
def _utcnow_pg(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # CURRENT_TIMESTAMP would be cast to the session time zone when stored without zone.
    return "timezone('utc', CURRENT_TIMESTAMP)"
