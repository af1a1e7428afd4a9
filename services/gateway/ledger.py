"""The spend ledger: one row per model call the gateway made (or refused), attributed to a client, and reports.

Money is stored as integer nano-dollars (`cost_nanos`, 1e-9 USD) so sums are exact on SQLite and PostgreSQL;
the API speaks `Decimal` dollars. A cost of None means the price was unknown (reports count such calls as
`unpriced`), not free.

Calls that cost money go through `budgets.settle` (which writes the ledger row in the same transaction as the
budget totals); `write` here records a row without touching any budget, and `budgets.refuse` records a call a
budget stopped.

Reports aggregate in SQL, in one scan. Days and months are local to `tz`: the zone's UTC offsets over the
reported range (one per stretch between DST transitions, found in Python) go into the query as a CASE on `ts`, so
SQL groups by the local day number directly and returns one row per day (and client), not one per row or per
quarter hour; months are summed from days in Python. A report over 100,000 rows takes a few hundred ms on SQLite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, Integer, case, cast, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from services.lore.clients import NAME_RE as CLIENT_NAME_RE
from services.store.db import transaction
from services.store.driver_sql import Sql, run, run_many, timestamp
from services.store.models import GATEWAY_STATUSES, GatewayLedger, GatewayLedgerTag
from services.store.types import as_utc

GROUPS = ("client", "model", "day", "month", "tag", "caller")
NANOS_PER_USD = 10**9
DAY_SECONDS = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
NO_TAG = "(no tag)"  # the group of untagged calls in a report by tag
NAME_MAX = 64  # clients and tags
ERROR_MAX_CHARS = 2000

_NANO = Decimal(1).scaleb(-9)


# --- money ------------------------------------------------------------------------------------------------------


def to_nanos(usd: Decimal | int | str, *, round_up: bool = False) -> int:
    """Dollars as integer nano-dollars; exact for anything with ≤ 9 decimals, else rounded (up, for a worst case)."""
    value = Decimal(usd) if not isinstance(usd, Decimal) else usd
    if not value.is_finite():
        raise ValueError(f"{usd!r} is not an amount of dollars")
    return int((value / _NANO).quantize(Decimal(1), rounding=ROUND_CEILING if round_up else ROUND_HALF_EVEN))


def to_usd(nanos: int) -> Decimal:
    """Integer nano-dollars as exact Decimal dollars (Decimal('1.5'), not Decimal('1.500000000'))."""
    return Decimal(int(nanos)) / NANOS_PER_USD


def format_usd(usd: Decimal) -> str:
    """"$1,234.50", "$0.42", "$0.0035" — cents unless the amount is smaller than a cent."""
    if usd == 0:
        return "$0.00"
    if abs(usd) >= Decimal("0.01"):
        return f"${usd:,.2f}"
    text = f"{usd:.9f}".rstrip("0")
    return f"${text}" if usd > 0 else f"-${text[1:]}"


# --- names ------------------------------------------------------------------------------------------------------


def check_client(client: str) -> str:
    client = (client or "").strip()
    if not client:
        raise ValueError("client is empty; every call is attributed to a client (use 'internal' for your own)")
    if len(client) > NAME_MAX:
        raise ValueError(f"client {client[:20]!r}… is longer than {NAME_MAX} characters; use a shorter name")
    if not CLIENT_NAME_RE.match(client):  # the same clients LORE archives: one name, one folder, one budget
        raise ValueError(f"client name {client!r}: use lower-case letters, digits, '-' and '_' (as in "
                         "$LORE_ROOT/clients.yaml)")
    return client


def normalize_tags(tags: list[str] | tuple[str, ...] | None) -> list[str]:
    """Tags stripped, blanks dropped, duplicates removed, order kept."""
    if isinstance(tags, str):
        raise ValueError(f"tags must be a list of strings, not the string {tags!r}")
    seen: dict[str, None] = {}
    for tag in tags or ():
        tag = str(tag).strip()
        if not tag:
            continue
        if len(tag) > NAME_MAX:
            raise ValueError(f"tag {tag[:20]!r}… is longer than {NAME_MAX} characters; use a shorter tag")
        seen.setdefault(tag, None)
    return list(seen)


# --- rows -------------------------------------------------------------------------------------------------------


@dataclass
class LedgerRow:
    ts: datetime  # UTC, aware (a naive value is taken as UTC)
    client: str
    tags: list[str]
    caller: str  # "bot" | "agent" | "cli" | "proxy" | ...
    model_asked: str
    model_used: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cost_usd: Decimal | None = None  # None: unknown (model not priced)
    latency_ms: float | None = None
    status: str = "ok"  # "ok" | "error" | "refused"
    request_id: str | None = None
    error: str | None = None


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def row_values(row: LedgerRow) -> tuple[dict[str, Any], list[str]]:
    """The `gateway_ledger` column values for `row` (validated) and its normalized tags."""
    if row.status not in GATEWAY_STATUSES:
        raise ValueError(f"ledger status {row.status!r} is not one of {', '.join(GATEWAY_STATUSES)}")
    tags = normalize_tags(row.tags)
    values = {
        "ts": as_utc(row.ts),
        "client": check_client(row.client),
        "tags": json.dumps(tags),
        "caller": (row.caller or "unknown")[:32],
        "model_asked": _clip(row.model_asked or "", 200),
        "model_used": _clip(row.model_used, 200),
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_creation_input_tokens": row.cache_creation_input_tokens,
        "cache_read_input_tokens": row.cache_read_input_tokens,
        "cost_nanos": to_nanos(row.cost_usd) if row.cost_usd is not None else None,
        "latency_ms": float(row.latency_ms) if row.latency_ms is not None else None,
        "status": row.status,
        "request_id": _clip(row.request_id, 200),
        "error": _clip(row.error, ERROR_MAX_CHARS),
    }
    return values, tags


# Through the driver (services/store/driver_sql.py): every model call writes one, and SQLAlchemy's per-statement
# work cost more than the insert itself.
_COLUMNS = ("ts", "client", "tags", "caller", "model_asked", "model_used", "input_tokens", "output_tokens",
            "cache_creation_input_tokens", "cache_read_input_tokens", "cost_nanos", "latency_ms", "status",
            "request_id", "error")
_INSERT_ROW = Sql(f"INSERT INTO gateway_ledger ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) RETURNING id")
_INSERT_TAG = Sql("INSERT INTO gateway_ledger_tags (ledger_id, tag) VALUES (:ledger_id, :tag)")


def insert_row(conn: Connection, values: dict[str, Any], tags: list[str]) -> int:
    """Write one validated ledger row (from `row_values`) inside the caller's transaction; return its id."""
    params = {**values, "ts": timestamp(conn, values["ts"])}
    ledger_id = int(run(conn, _INSERT_ROW, params).fetchone()[0])
    if tags:
        run_many(conn, _INSERT_TAG, [{"ledger_id": ledger_id, "tag": tag} for tag in tags])
    return ledger_id


def write(engine: Engine, row: LedgerRow) -> int:
    """Record one call in the ledger and return the row id. Budgets are not touched: use `budgets.settle` for that."""
    values, tags = row_values(row)
    with transaction(engine, write=True) as conn:
        return insert_row(conn, values, tags)


def refused_row(row: LedgerRow) -> LedgerRow:
    """`row` as a refused call: status "refused", no cost, no tokens."""
    return replace(row, status="refused", cost_usd=Decimal(0), input_tokens=None, output_tokens=None,
                   cache_creation_input_tokens=None, cache_read_input_tokens=None)


# --- reports ----------------------------------------------------------------------------------------------------


@dataclass
class SpendRow:
    group: str
    calls: int = 0  # every row: ok, error and refused
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: int = 0
    refused: int = 0
    unpriced: int = 0  # successful calls whose cost is unknown (not included in cost_usd)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def _add(self, sums: tuple[Any, ...]) -> None:
        calls, i, o, cc, cr, cost, errors, refused, unpriced = (int(v or 0) for v in sums)
        self.calls += calls
        self.input_tokens += i
        self.output_tokens += o
        self.cache_creation_input_tokens += cc
        self.cache_read_input_tokens += cr
        self.cost_usd += to_usd(cost)
        self.errors += errors
        self.refused += refused
        self.unpriced += unpriced


def total(rows: list[SpendRow]) -> SpendRow:
    """The sum of report rows (by tag, a call with two tags is in two rows: sum a report by client instead)."""
    out = SpendRow("total")
    for r in rows:
        out._add((r.calls, r.input_tokens, r.output_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens,
                  to_nanos(r.cost_usd), r.errors, r.refused, r.unpriced))
    return out


def _epoch(conn: Connection) -> ColumnElement[Any]:
    """`ts` as integer seconds since 1970 (UTC), in SQL."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", GatewayLedger.ts)), BigInteger)
    return cast(func.strftime(literal_column("'%s'"), GatewayLedger.ts), Integer)


def _offset(tz: tzinfo, epoch: int) -> int:
    offset = datetime.fromtimestamp(epoch, UTC).astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offsets(tz: tzinfo, lo: datetime, hi: datetime) -> list[tuple[datetime | None, int]]:
    """The UTC offsets of `tz` over [lo, hi): [(until, offset seconds), …, (None, last offset)]."""
    start, end = int(lo.timestamp()), int(hi.timestamp()) + 1
    out: list[tuple[datetime | None, int]] = []
    current = _offset(tz, start)
    t = start
    while t < end:
        step = min(t + DAY_SECONDS, end)
        if _offset(tz, step) == current:
            t = step
            continue
        a, b = t, step  # the offset changes in (a, b]: find the first second of the new one
        while b - a > 1:
            middle = (a + b) // 2
            a, b = (middle, b) if _offset(tz, middle) == current else (a, middle)
        out.append((datetime.fromtimestamp(b, UTC), current))
        current, t = _offset(tz, b), b
    out.append((None, current))
    return out


def _local_day(conn: Connection, tz: tzinfo, lo: datetime, hi: datetime) -> ColumnElement[Any]:
    """The local day of `ts` in `tz`, as days since 1970-01-01, in SQL (exact for any ts in [lo, hi))."""
    segments = _offsets(tz, lo, hi)
    if len(segments) == 1:
        offset: ColumnElement[Any] = literal_column(str(segments[0][1]))
    else:
        whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [
            (GatewayLedger.ts < until, literal_column(str(off))) for until, off in segments[:-1] if until is not None]
        offset = case(*whens, else_=literal_column(str(segments[-1][1])))
    # `.op("/")`: SQLAlchemy's `/` is true division; integer / integer truncates (dates after 1970 are positive).
    return (_epoch(conn) + offset).self_group().op("/")(literal_column(str(DAY_SECONDS)))


def _day_label(days: Any, fmt: str) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + int(days)).strftime(fmt)


def _span(conn: Connection, cond: list[ColumnElement[bool]], since: datetime | None,
          until: datetime | None) -> tuple[datetime, datetime] | None:
    """[since, until), with the first and last matching `ts` standing in for what is not given; None: no rows."""
    lo = as_utc(since) if since is not None else conn.execute(select(func.min(GatewayLedger.ts)).where(*cond)).scalar()
    hi = as_utc(until) if until is not None else conn.execute(select(func.max(GatewayLedger.ts)).where(*cond)).scalar()
    if lo is None or hi is None:
        return None
    lo, hi = as_utc(lo), as_utc(hi) + timedelta(seconds=1)
    return (lo, hi) if lo < hi else None


def _sums() -> list[ColumnElement[Any]]:
    # Constants as literals, not bound parameters: the statement is the same for every report.
    L = GatewayLedger
    zero: ColumnElement[int] = literal_column("0")
    one: ColumnElement[int] = literal_column("1")
    return [
        func.count(),
        func.sum(func.coalesce(L.input_tokens, zero)),
        func.sum(func.coalesce(L.output_tokens, zero)),
        func.sum(func.coalesce(L.cache_creation_input_tokens, zero)),
        func.sum(func.coalesce(L.cache_read_input_tokens, zero)),
        func.sum(func.coalesce(L.cost_nanos, zero)),
        func.sum(case((L.status == literal_column("'error'"), one), else_=zero)),
        func.sum(case((L.status == literal_column("'refused'"), one), else_=zero)),
        func.sum(case(((L.status == literal_column("'ok'")) & L.cost_nanos.is_(None), one), else_=zero)),
    ]


def _where(client: str | None, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = []
    if client is not None:
        cond.append(GatewayLedger.client == client)
    if since is not None:
        cond.append(GatewayLedger.ts >= as_utc(since))
    if until is not None:
        cond.append(GatewayLedger.ts < as_utc(until))
    return cond


def report(engine: Engine, by: str, client: str | None = None, since: datetime | None = None,
           until: datetime | None = None, tz: tzinfo = UTC) -> list[SpendRow]:
    """Spend grouped `by` client, model (the model used, else the one asked), day or month (local to `tz`), tag
    or caller, over [since, until). Days and months come out in date order; other groups by cost, highest first.

    By tag, a call with several tags counts in each of them, and untagged calls form the group "(no tag)".
    """
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUPS)}")
    L = GatewayLedger
    cond = _where(client, since, until)
    rows: dict[str, SpendRow] = {}
    with transaction(engine) as conn:
        if by in ("day", "month"):
            span = _span(conn, cond, since, until)
            if span is None:
                return []
            fmt = "%Y-%m-%d" if by == "day" else "%Y-%m"
            query = select(_local_day(conn, tz, *span).label("d"), *_sums()).where(*cond).group_by(
                literal_column("d"))
            for days, *sums in conn.execute(query):
                label = _day_label(days, fmt)
                rows.setdefault(label, SpendRow(label))._add(tuple(sums))
            return sorted(rows.values(), key=lambda r: r.group)
        if by == "tag":
            T = GatewayLedgerTag
            key: Any = T.tag
            query = select(key, *_sums()).select_from(L).outerjoin(T, T.ledger_id == L.id)
        else:
            client_key: Any = L.client
            if conn.dialect.name == "sqlite" and client is None:
                # Otherwise SQLite walks ix_gateway_ledger_client_ts to skip a sort and fetches every row through
                # it, at twice the cost of a scan; an expression (client is NOT NULL) cannot use the index.
                client_key = func.coalesce(L.client, literal_column("''"))
            key = {"client": client_key, "model": func.coalesce(L.model_used, L.model_asked), "caller": L.caller}[by]
            query = select(key, *_sums())
        for group, *sums in conn.execute(query.where(*cond).group_by(key)):
            name = str(group) if group is not None else (NO_TAG if by == "tag" else "unknown")
            rows.setdefault(name, SpendRow(name))._add(tuple(sums))
    return sorted(rows.values(), key=lambda r: (-r.cost_usd, r.group))


def daily_by_client(engine: Engine, since: datetime, until: datetime,
                    tz: tzinfo = UTC) -> dict[str, dict[str, Decimal]]:
    """Cost per local day (in `tz`) and client over [since, until), for a chart: {'2025-01-31': {'acme': …}}.

    Every local day the range touches is a key, in order, even when nothing was spent (an empty dict).
    """
    out: dict[str, dict[str, Decimal]] = {}
    day: date = as_utc(since).astimezone(tz).date()
    last: date = (as_utc(until) - timedelta(microseconds=1)).astimezone(tz).date()
    while day <= last:
        out[day.isoformat()] = {}
        day += timedelta(days=1)
    L = GatewayLedger
    if as_utc(since) >= as_utc(until):
        return out
    with transaction(engine) as conn:
        query = (
            select(_local_day(conn, tz, as_utc(since), as_utc(until)).label("d"), L.client,
                   func.sum(func.coalesce(L.cost_nanos, literal_column("0"))))
            .where(*_where(None, since, until))
            .group_by(literal_column("d"), L.client)
        )
        for days, client, nanos in conn.execute(query):
            per_client = out.setdefault(_day_label(days, "%Y-%m-%d"), {})
            per_client[client] = per_client.get(client, Decimal(0)) + to_usd(int(nanos or 0))
    return dict(sorted(out.items()))

