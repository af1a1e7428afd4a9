"""The SQL store: events (audit trail) and the outbox, on SQLite by default or PostgreSQL by URL.

    engine = make_engine(settings.db_url); upgrade(settings.db_url)  # once at start-up, cheap when current

Then `services.store.events` and `services.store.outbox` take that engine.
"""

from services.store.db import (
    DatabaseError,
    current_revision,
    head_revision,
    make_engine,
    transaction,
    upgrade,
)

__all__ = ["DatabaseError", "current_revision", "head_revision", "make_engine", "transaction", "upgrade"]
