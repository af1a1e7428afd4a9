"""gateway: budgets, their running totals per period, calls in flight, and the spend ledger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Money is integer nano-dollars (1e-9 USD): exact on SQLite and PostgreSQL. `gateway_budget_usage` keeps each
budget's spent and reserved amounts per period ('YYYY-MM-DD' or 'YYYY-MM' in the settings time zone), so a
budget check reads one row instead of summing the ledger. A budget's tag is '' when it covers every call (NOT
NULL, so the unique constraint holds: NULLs never collide).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_now() -> sa.TextClause:
    # Frozen here rather than imported from models: a migration must not change when the code does.
    if op.get_bind().dialect.name == "postgresql":
        return sa.text("timezone('utc', CURRENT_TIMESTAMP)")
    return sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "gateway_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(64), server_default=sa.text("''"), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("usd_nanos", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=_utc_now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_budgets"),
        sa.UniqueConstraint("client", "period", "tag", name="uq_gateway_budgets_client_period_tag"),
        sa.CheckConstraint("period IN ('day', 'month')", name=op.f("ck_gateway_budgets_period")),
        sa.CheckConstraint("usd_nanos >= 0", name=op.f("ck_gateway_budgets_usd_nanos")),
    )
    op.create_table(
        "gateway_budget_usage",
        sa.Column("budget_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("period_key", sa.String(10), nullable=False),
        sa.Column("spent_nanos", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("reserved_nanos", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("alerted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["gateway_budgets.id"], ondelete="CASCADE",
                                name="fk_gateway_budget_usage_budget_id_gateway_budgets"),
        sa.PrimaryKeyConstraint("budget_id", "period_key", name="pk_gateway_budget_usage"),
    )
    op.create_table(
        "gateway_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_reservations"),
    )
    op.create_index("ix_gateway_reservations_created_at", "gateway_reservations", ["created_at"])
    op.create_table(
        "gateway_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("tags", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("model_asked", sa.String(200), nullable=False),
        sa.Column("model_used", sa.String(200), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_creation_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cache_read_input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_ledger"),
        sa.CheckConstraint("status IN ('ok', 'error', 'refused')", name=op.f("ck_gateway_ledger_status")),
    )
    op.create_index("ix_gateway_ledger_ts", "gateway_ledger", ["ts"])
    op.create_index("ix_gateway_ledger_client_ts", "gateway_ledger", ["client", "ts"])
    op.create_table(
        "gateway_ledger_tags",
        sa.Column("ledger_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["ledger_id"], ["gateway_ledger.id"], ondelete="CASCADE",
                                name="fk_gateway_ledger_tags_ledger_id_gateway_ledger"),
        sa.PrimaryKeyConstraint("ledger_id", "tag", name="pk_gateway_ledger_tags"),
    )
    op.create_index("ix_gateway_ledger_tags_tag", "gateway_ledger_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_gateway_ledger_tags_tag", table_name="gateway_ledger_tags")
    op.drop_table("gateway_ledger_tags")
    op.drop_index("ix_gateway_ledger_client_ts", table_name="gateway_ledger")
    op.drop_index("ix_gateway_ledger_ts", table_name="gateway_ledger")
    op.drop_table("gateway_ledger")
    op.drop_index("ix_gateway_reservations_created_at", table_name="gateway_reservations")
    op.drop_table("gateway_reservations")
    op.drop_table("gateway_budget_usage")
    op.drop_table("gateway_budgets")
