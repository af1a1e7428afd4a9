"""events (audit trail) and outbox (messages waiting for the bot)

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Timestamps are naive UTC. Defaults live in the database too, so a stdlib-sqlite3 writer can
`INSERT INTO outbox(source, text) VALUES ('hook', ?)` and get a valid pending row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_now() -> sa.TextClause:
    # Frozen here rather than imported from models: a migration must not change when the code does.
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("timezone('utc', CURRENT_TIMESTAMP)")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("args", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_outcome_at", "events", ["outcome", "at"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("format", sa.String(8), server_default=sa.text("'text'"), nullable=False),
        sa.Column("buttons", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_to", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.CheckConstraint("format IN ('text', 'html')", name=op.f("ck_outbox_format")),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'dead')", name=op.f("ck_outbox_status")),
    )
    op.create_index("ix_outbox_dedupe_key", "outbox", ["dedupe_key"])
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_next_attempt_at", table_name="outbox")
    op.drop_index("ix_outbox_dedupe_key", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_events_outcome_at", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
