"""lore_chat_client (each chat's current LORE client) and lore_import_runs (import summaries for the digest)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

A chat works in one client at a time: the bot's LORE commands read only that client's sessions. Import runs
(the daily job and /import) are recorded with their summary, so the digest can say what was archived since.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_now() -> sa.TextClause:
    # Frozen here rather than imported from models: a migration must not change when the code does.
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("timezone('utc', CURRENT_TIMESTAMP)")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "lore_chat_client",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name="pk_lore_chat_client"),
    )
    op.create_table(
        "lore_import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lore_import_runs"),
    )
    op.create_index("ix_lore_import_runs_at", "lore_import_runs", ["at"])


def downgrade() -> None:
    op.drop_index("ix_lore_import_runs_at", table_name="lore_import_runs")
    op.drop_table("lore_import_runs")
    op.drop_table("lore_chat_client")
