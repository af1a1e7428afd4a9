"""The one bootstrap: settings → home folders → migrated database. CLI, bot and tests all start here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from services.settings import Settings
from services.store import db


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine


def bootstrap(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Create AISTACK_HOME, open the database and bring its schema to head (fast when already there)."""
    settings.aistack_home.mkdir(parents=True, exist_ok=True)
    if migrate:
        db.upgrade(settings.db_url)
    return Runtime(settings=settings, engine=db.make_engine(settings.db_url))
