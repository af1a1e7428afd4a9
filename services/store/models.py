"""Tables of the store. The schema itself is created by Alembic (`migrations/versions/`), not by these models.

Keep both in step: a column changed here needs a new migration revision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text  # `text` is also a column name below
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.store.types import UTCDateTime, utc_now, utcnow

# Named constraints so Alembic (and SQLite batch mode) can find them again later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OUTCOMES = ("ok", "error", "refused")
OUTBOX_FORMATS = ("text", "html")
OUTBOX_STATUSES = ("pending", "delivered", "dead")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Event(Base):
    """One thing the bot was asked to do, and how it went (the audit trail and the /stats source)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow(), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # command | callback | message | …
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    username: Mapped[str | None] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(String(64))
    args: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | error | refused
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_events_outcome_at", "outcome", "at"),)


class OutboxMessage(Base):
    """A Telegram message waiting to go to the admin chats; written by anyone, sent only by the bot."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow())
    source: Mapped[str] = mapped_column(String(32))  # cli | hook | bot | cron
    text: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(8), default="text", server_default=sql_text("'text'"))
    buttons: Mapped[str | None] = mapped_column(Text)  # JSON: [[[label, callback_data], …], …]
    dedupe_key: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default=sql_text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON list of chat ids that already got the message.
    delivered_to: Mapped[str] = mapped_column(Text, default="[]", server_default=sql_text("'[]'"))
    last_error: Mapped[str | None] = mapped_column(Text)
    # JSON {chat_id: [message_id, …]}: what each chat got, so the message can be edited later.
    sent_refs: Mapped[str] = mapped_column(Text, default="{}", server_default=sql_text("'{}'"))

    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint("format IN ('text', 'html')", name="format"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
    )


ALERT_STATUSES = ("open", "allowed", "kept")


class SentinelAlert(Base):
    """A blocked (or approval-seeking) tool call shown to the admin; identical repeats raise `count`."""

    __tablename__ = "sentinel_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_hash: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(12), index=True)  # what the hook told the agent to quote
    rule_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    alternative: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    cwd: Mapped[str | None] = mapped_column(Text)
    tool_name: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(128))
    approvable: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer, default=1, server_default=sql_text("1"))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default=sql_text("'open'"))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outbox_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("status IN ('open', 'allowed', 'kept')", name="status"),)


class LoreChatClient(Base):
    """The LORE client a chat works in: /search, /session, /sessions and /usage see only this client."""

    __tablename__ = "lore_chat_client"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    client: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow())


class LoreImportRun(Base):
    """One LORE import run (daily job or /import) and its summary, for the digest."""

    __tablename__ = "lore_import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow(), index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # daily | command
    ok: Mapped[bool] = mapped_column(Boolean)  # no errors
    summary: Mapped[str] = mapped_column(Text)  # JSON: run.Summary.to_dict()


# --- gateway: budgets, their running totals, open reservations and the spend ledger ------------------
# Money is integer nano-dollars (1e-9 USD) everywhere: exact on SQLite and PostgreSQL alike, fine enough for a
# single cheap token, and 9.2 billion dollars of headroom in a BIGINT.

GATEWAY_PERIODS = ("day", "month")
GATEWAY_STATUSES = ("ok", "error", "refused")


class GatewayBudget(Base):
    """A spending limit for one client (all its calls, or only those carrying `tag`) per calendar day or month."""

    __tablename__ = "gateway_budgets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(64), default="", server_default=sql_text("''"))  # '' = every call
    period: Mapped[str] = mapped_column(String(8))  # day | month
    usd_nanos: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, server_default=utcnow())

    __table_args__ = (
        UniqueConstraint("client", "period", "tag"),
        CheckConstraint("period IN ('day', 'month')", name="period"),
        CheckConstraint("usd_nanos >= 0", name="usd_nanos"),
    )


class GatewayBudgetUsage(Base):
    """A budget's running totals in one period ('2025-01-31' or '2025-01', local to the settings time zone).

    `spent` is settled cost, `reserved` the worst case of calls in flight; `alerted` the highest alert threshold
    (percent) already queued this period. Updated in the same transaction as reservations and settlements.
    """

    __tablename__ = "gateway_budget_usage"

    budget_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("gateway_budgets.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    period_key: Mapped[str] = mapped_column(String(10), primary_key=True)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default=sql_text("0"))
    reserved_nanos: Mapped[int] = mapped_column(BigInteger, default=0, server_default=sql_text("0"))
    alerted: Mapped[int] = mapped_column(Integer, default=0, server_default=sql_text("0"))


class GatewayReservation(Base):
    """A call in flight: its worst-case cost is held on `keys` (JSON [[budget_id, period_key], …]) until settled."""

    __tablename__ = "gateway_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    client: Mapped[str] = mapped_column(String(64))
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    keys: Mapped[str] = mapped_column(Text)


class GatewayLedger(Base):
    """One model call (or a call the gateway refused) and what it cost, attributed to a client."""

    __tablename__ = "gateway_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    client: Mapped[str] = mapped_column(String(64))
    tags: Mapped[str] = mapped_column(Text, default="[]", server_default=sql_text("'[]'"))  # JSON list, for display
    caller: Mapped[str] = mapped_column(String(32))  # bot | agent | cli | proxy | …
    model_asked: Mapped[str] = mapped_column(String(200))
    model_used: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_creation_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_nanos: Mapped[int | None] = mapped_column(BigInteger)  # NULL: cost unknown (model not priced)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(8))  # ok | error | refused
    request_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_gateway_ledger_client_ts", "client", "ts"),
        CheckConstraint("status IN ('ok', 'error', 'refused')", name="status"),
    )


class GatewayLedgerTag(Base):
    """One tag of one ledger row (a call may carry several), for reports by tag."""

    __tablename__ = "gateway_ledger_tags"

    ledger_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("gateway_ledger.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
