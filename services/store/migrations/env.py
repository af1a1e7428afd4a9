"""Alembic environment for the store.

Normally run through `services.store.db.upgrade(url)`, which passes an open connection (already
inside a locked transaction) as `config.attributes["connection"]`. The Alembic CLI also works:
`alembic -c services/store/alembic.ini upgrade head` with DATABASE_URL set (or `-x url=...`).
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from services.store.db import make_engine, normalize_url, transaction
from services.store.models import Base

config = context.config
target_metadata = Base.metadata

# Only the Alembic CLI configures logging; inside the bot, the application owns it.
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("no database URL: set DATABASE_URL or pass -x url=sqlite:///path/to/aistack.db")
    return normalize_url(url)


def run_offline() -> None:
    url = _url()
    context.configure(
        url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=url.startswith("sqlite")
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    # SQLite can't ALTER most things in place: batch mode rebuilds the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with transaction(make_engine(_url()), write=True) as conn:
        _run(conn)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
