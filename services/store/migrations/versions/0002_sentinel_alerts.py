"""sentinel_alerts (blocked tool calls and the admin's decisions) and outbox.sent_refs (message ids)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

`outbox.sent_refs` remembers which Telegram message each chat got, so a later update (a grouped
alert's count, a decision) can edit the message instead of sending a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("sent_refs", sa.Text(), server_default=sa.text("'{}'"), nullable=False))

    op.create_table(
        "sentinel_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_hash", sa.String(64), nullable=False),
        sa.Column("code", sa.String(12), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("alternative", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("cwd", sa.Text(), nullable=True),
        sa.Column("tool_name", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("approvable", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'open'"), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sentinel_alerts"),
        sa.CheckConstraint("status IN ('open', 'allowed', 'kept')", name=op.f("ck_sentinel_alerts_status")),
    )
    op.create_index("ix_sentinel_alerts_call_hash", "sentinel_alerts", ["call_hash"])
    op.create_index("ix_sentinel_alerts_code", "sentinel_alerts", ["code"])


def downgrade() -> None:
    op.drop_index("ix_sentinel_alerts_code", table_name="sentinel_alerts")
    op.drop_index("ix_sentinel_alerts_call_hash", table_name="sentinel_alerts")
    op.drop_table("sentinel_alerts")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sent_refs")
