"""Tables of the store. The schema itself is created by Alembic (`migrations/versions/`), not by these tables.

Keep both in step: a column changed here needs a new migration revision (tests/test_store.py compares them).

SQLAlchemy Core tables, not ORM classes: nothing here uses the ORM, and declaring ten mapped classes (plus
importing `sqlalchemy.orm`) cost every command ~0.3 s at start-up. Each table is wrapped in a `TableRef`, which
reads like the mapped class it replaced: `Event.at` is a column, `select(Event)` / `insert(Event)` take the table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text  # `text` is also a column name below

from services.store.types import UTCDateTime, utc_now, utcnow

# Named constraints so Alembic (and SQLite batch mode) can find them again later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base:
    """Where the tables live (`Base.metadata`), as with the declarative base this replaced."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TableRef:
    """A table that reads like a mapped class: attribute access gives columns, SQLAlchemy takes it as the table."""

    __slots__ = ("__table__",)

    def __init__(self, table: Table) -> None:
        object.__setattr__(self, "__table__", table)

    @property
    def __tablename__(self) -> str:
        return str(self.__table__.name)

    def __clause_element__(self) -> Table:
        return self.__table__

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probe dunders on an empty instance: no column has such a name
            raise AttributeError(name)
        try:
            return self.__table__.c[name]
        except KeyError:
            raise AttributeError(f"table {self.__table__.name} has no column {name!r}") from None


def _table(name: str, *parts: Any) -> Any:
    # Any: the columns are reached as attributes (Event.at), which a precise type could not list.
    return TableRef(Table(name, Base.metadata, *parts))


OUTCOMES = ("ok", "error", "refused")
OUTBOX_FORMATS = ("text", "html")
OUTBOX_STATUSES = ("pending", "delivered", "dead")


# One thing the bot was asked to do, and how it went (the audit trail and the /stats source).
Event = _table(
    "events",
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, default=utc_now, server_default=utcnow(), index=True, nullable=False),
    Column("kind", String(32), nullable=False),  # command | callback | message | …
    Column("chat_id", BigInteger),
    Column("user_id", BigInteger),
    Column("username", String(64)),
    Column("command", String(64), nullable=False),
    Column("args", Text),
    Column("outcome", String(16), nullable=False),  # ok | error | refused
    Column("detail", Text),
    Index("ix_events_outcome_at", "outcome", "at"),
)


# A Telegram message waiting to go to the admin chats; written by anyone, sent only by the bot.
OutboxMessage = _table(
    "outbox",
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime, default=utc_now, server_default=utcnow(), nullable=False),
    Column("source", String(32), nullable=False),  # cli | hook | bot | cron
    Column("text", Text, nullable=False),
    Column("format", String(8), default="text", server_default=sql_text("'text'"), nullable=False),
    Column("buttons", Text),  # JSON: [[[label, callback_data], …], …]
    Column("dedupe_key", String(200), index=True),
    Column("status", String(16), default="pending", server_default=sql_text("'pending'"), nullable=False),
    Column("attempts", Integer, default=0, server_default=sql_text("0"), nullable=False),
    Column("next_attempt_at", UTCDateTime, default=utc_now, server_default=utcnow(), nullable=False),
    Column("delivered_at", UTCDateTime),
    # JSON list of chat ids that already got the message.
    Column("delivered_to", Text, default="[]", server_default=sql_text("'[]'"), nullable=False),
    Column("last_error", Text),
    # JSON {chat_id: [message_id, …]}: what each chat got, so the message can be edited later.
    Column("sent_refs", Text, default="{}", server_default=sql_text("'{}'"), nullable=False),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    CheckConstraint("format IN ('text', 'html')", name="format"),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
)


ALERT_STATUSES = ("open", "allowed", "kept")


# A blocked (or approval-seeking) tool call shown to the admin; identical repeats raise `count`.
SentinelAlert = _table(
    "sentinel_alerts",
    Column("id", Integer, primary_key=True),
    Column("call_hash", String(64), index=True, nullable=False),
    Column("code", String(12), index=True, nullable=False),  # what the hook told the agent to quote
    Column("rule_id", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("alternative", Text),
    Column("subject", Text),
    Column("cwd", Text),
    Column("tool_name", String(64), nullable=False),
    Column("session_id", String(128)),
    Column("approvable", Boolean, nullable=False),
    Column("count", Integer, default=1, server_default=sql_text("1"), nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("status", String(16), default="open", server_default=sql_text("'open'"), nullable=False),
    Column("decided_by", String(128)),
    Column("decided_at", UTCDateTime),
    Column("outbox_id", Integer),
    CheckConstraint("status IN ('open', 'allowed', 'kept')", name="status"),
)


# The LORE client a chat works in: /search, /session, /sessions and /usage see only this client.
LoreChatClient = _table(
    "lore_chat_client",
    Column("chat_id", BigInteger, primary_key=True, autoincrement=False),
    Column("client", String(64), nullable=False),
    Column("set_at", UTCDateTime, default=utc_now, server_default=utcnow(), nullable=False),
)


# One LORE import run (daily job or /import) and its summary, for the digest.
LoreImportRun = _table(
    "lore_import_runs",
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, default=utc_now, server_default=utcnow(), index=True, nullable=False),
    Column("trigger", String(16), nullable=False),  # daily | command
    Column("ok", Boolean, nullable=False),  # no errors
    Column("summary", Text, nullable=False),  # JSON: run.Summary.to_dict()
)


# --- gateway: budgets, their running totals, open reservations and the spend ledger ------------------
# Money is integer nano-dollars (1e-9 USD) everywhere: exact on SQLite and PostgreSQL alike, fine enough for a
# single cheap token, and 9.2 billion dollars of headroom in a BIGINT.

GATEWAY_PERIODS = ("day", "month")
GATEWAY_STATUSES = ("ok", "error", "refused")


# A spending limit for one client (all its calls, or only those carrying `tag`) per calendar day or month.
GatewayBudget = _table(
    "gateway_budgets",
    Column("id", Integer, primary_key=True),
    Column("client", String(64), nullable=False),
    Column("tag", String(64), default="", server_default=sql_text("''"), nullable=False),  # '' = every call
    Column("period", String(8), nullable=False),  # day | month
    Column("usd_nanos", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, default=utc_now, server_default=utcnow(), nullable=False),
    Column("updated_at", UTCDateTime, default=utc_now, server_default=utcnow(), nullable=False),
    UniqueConstraint("client", "period", "tag"),
    CheckConstraint("period IN ('day', 'month')", name="period"),
    CheckConstraint("usd_nanos >= 0", name="usd_nanos"),
)


# A budget's running totals in one period ('2025-01-31' or '2025-01', local to the settings time zone).
# `spent` is settled cost, `reserved` the worst case of calls in flight; `alerted` the highest alert threshold
# (percent) already queued this period. Updated in the same transaction as reservations and settlements.
GatewayBudgetUsage = _table(
    "gateway_budget_usage",
    Column("budget_id", Integer, ForeignKey("gateway_budgets.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("period_key", String(10), primary_key=True),
    Column("spent_nanos", BigInteger, default=0, server_default=sql_text("0"), nullable=False),
    Column("reserved_nanos", BigInteger, default=0, server_default=sql_text("0"), nullable=False),
    Column("alerted", Integer, default=0, server_default=sql_text("0"), nullable=False),
)


# A call in flight: its worst-case cost is held on `keys` (JSON [[budget_id, period_key], …]) until settled.
GatewayReservation = _table(
    "gateway_reservations",
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime, index=True, nullable=False),
    Column("client", String(64), nullable=False),
    Column("amount_nanos", BigInteger, nullable=False),
    Column("keys", Text, nullable=False),
)


# One model call (or a call the gateway refused) and what it cost, attributed to a client.
GatewayLedger = _table(
    "gateway_ledger",
    Column("id", Integer, primary_key=True),
    Column("ts", UTCDateTime, index=True, nullable=False),
    Column("client", String(64), nullable=False),
    Column("tags", Text, default="[]", server_default=sql_text("'[]'"), nullable=False),  # JSON list, for display
    Column("caller", String(32), nullable=False),  # bot | agent | cli | proxy | …
    Column("model_asked", String(200), nullable=False),
    Column("model_used", String(200)),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cache_creation_input_tokens", BigInteger),
    Column("cache_read_input_tokens", BigInteger),
    Column("cost_nanos", BigInteger),  # NULL: cost unknown (model not priced)
    Column("latency_ms", Float),
    Column("status", String(8), nullable=False),  # ok | error | refused
    Column("request_id", String(200)),
    Column("error", Text),
    Index("ix_gateway_ledger_client_ts", "client", "ts"),
    CheckConstraint("status IN ('ok', 'error', 'refused')", name="status"),
)


# One tag of one ledger row (a call may carry several), for reports by tag.
GatewayLedgerTag = _table(
    "gateway_ledger_tags",
    Column("ledger_id", Integer, ForeignKey("gateway_ledger.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("tag", String(64), primary_key=True, index=True),
)
