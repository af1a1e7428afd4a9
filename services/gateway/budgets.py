"""Client budgets: a call is checked against them before it is made, and its actual cost counted after.

A budget limits one client's spend per calendar day or month, local to the settings time zone (`tz`); with a
tag it limits only the client's calls carrying that tag. A call must fit every budget that applies to it: the
client's untagged budget and its budget for each of the call's tags, for both periods.

The call path:

    r = reserve(engine, client, tags, worst_case_usd, tz=tz)  # raises BudgetExceeded: nothing reserved
    ... make the call ...
    settle(engine, r, ledger_row, tz=tz)                       # actual cost counted, ledger row written
    # or, for a call stopped before it was made: refuse(engine, ledger_row)

Running totals live in `gateway_budget_usage` (budget, period key → spent, reserved), updated in the same
transaction as the reservation or settlement, so a check touches a row per budget and never sums the ledger.
`spent + reserved + this call's worst case > limit` refuses the call. The transaction serialises competing
callers, threads and processes alike: on SQLite it holds the write lock from BEGIN (BEGIN IMMEDIATE); on
PostgreSQL each total is row-locked by the statement that changes it, always in (budget id, period key) order so
no two callers deadlock. `reserve` first tries a conditional `UPDATE … SET reserved = reserved + amount WHERE
spent + reserved + amount <= limit` per total (PostgreSQL re-evaluates that condition on the newest row after
waiting for a lock, so two callers can never both take the last dollar); if any total is missing, over its
limit, or stale reservations exist, that transaction is rolled back and a second one creates the totals
(INSERT … ON CONFLICT DO NOTHING), locks them (SELECT … FOR UPDATE), releases stale holds and decides, naming
the budget that refuses. Transactions PostgreSQL aborts as deadlock or serialization victims are retried.

A reservation belongs to the period it was made in and is settled against that period, even if the call ends
after midnight. A reservation never settled (the process died mid-call) is released by the next `reserve` or
`status` once it is older than RESERVATION_TIMEOUT (15 minutes); a call that really runs longer is still
settled normally (its cost is counted, there is just nothing left to release).

A successful call whose cost is unknown (`cost_usd` None: the model is not priced) is charged its reserved
worst case, so an unpriced model cannot slip past a budget; the ledger keeps the cost as unknown.

Alerts: when a settlement takes a budget's spend in the current period to 50, 80 or 100 % of its limit, a
message is queued in the outbox (dedupe key `budget:<id>:<period key>:<threshold>`). The highest threshold
reached is remembered per period (`alerted`), so each threshold alerts at most once per budget and period, even
if the spend crosses it again after the limit was raised; a jump over several thresholds queues only the
highest. The alert is queued right after the settlement commits: a crash in between loses that one message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from time import monotonic
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from services.gateway.ledger import (
    LedgerRow,
    check_client,
    format_usd,
    insert_row,
    normalize_tags,
    refused_row,
    row_values,
    to_nanos,
    to_usd,
)
from services.gateway.ledger import write as write_ledger
from services.store.db import transaction
from services.store.driver_sql import Sql, run, timestamp
from services.store.models import Base, GatewayBudget, GatewayBudgetUsage, GatewayReservation
from services.store.outbox import enqueue
from services.store.types import as_utc, utc_now

log = logging.getLogger(__name__)

PERIODS = ("day", "month")
THRESHOLDS = (50, 80, 100)  # percent of a budget's limit that queue an alert, once per period
RESERVATION_TIMEOUT = timedelta(minutes=15)
ALERT_DEDUPE_WINDOW = timedelta(days=32)  # longer than any period; the key holds the period anyway
STALE_BATCH = 500  # stale reservations released per call (more wait for the next one)
# How often a process's fast path looks for stale reservations. Between looks they can only make a call look
# *less* affordable, and a call that does not fit takes the slow path, which always releases them first.
STALE_CHECK_INTERVAL = 30.0
_RETRY_SQLSTATES = ("40P01", "40001")  # PostgreSQL deadlock / serialization failure: retry the transaction
_ATTEMPTS = 3
_stale_checked = float("-inf")  # monotonic time of this process's last look for stale reservations

Key = tuple[int, str]  # (budget id, period key)
T = TypeVar("T")


# --- periods ----------------------------------------------------------------------------------------------------


def _check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"budget period {period!r} is not one of {', '.join(PERIODS)}")
    return period


def period_start(period: str, when: datetime, tz: tzinfo = UTC) -> datetime:
    """The local midnight (in `tz`) that starts the day or month containing `when`."""
    local = as_utc(when).astimezone(tz).date()
    return datetime.combine(local if period == "day" else local.replace(day=1), time(0), tz)


def period_end(period: str, when: datetime, tz: tzinfo = UTC) -> datetime:
    """The start of the next day or month after `when`: when the budget resets."""
    start = period_start(period, when, tz).date()
    if period == "day":
        nxt: date = start + timedelta(days=1)
    else:
        nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return datetime.combine(nxt, time(0), tz)


def period_key(period: str, when: datetime, tz: tzinfo = UTC) -> str:
    """'2025-01-31' for a day, '2025-01' for a month, local to `tz`."""
    return as_utc(when).astimezone(tz).strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def _zone_name(tz: tzinfo | None, at: datetime) -> str:
    return str(getattr(tz, "key", None) or at.tzname() or "UTC")


def format_time(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} {_zone_name(at.tzinfo, at)}"


# --- values -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    client: str
    usd: Decimal
    period: str  # day | month
    tag: str | None = None  # None: all the client's calls
    id: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        """"acme's monthly budget of $100.00" / "acme's daily budget for tag “research” of $5.00"."""
        what = "daily" if self.period == "day" else "monthly"
        tag = f" for tag “{self.tag}”" if self.tag else ""
        return f"{self.client}'s {what} budget{tag} of {format_usd(self.usd)}"


class BudgetExceeded(Exception):
    """The call would take a budget over its limit; nothing was reserved. str() is one sentence for the user."""

    def __init__(self, budget: Budget, spent: Decimal, reserved: Decimal, requested: Decimal, resets_at: datetime,
                 period_key: str = "") -> None:
        self.budget, self.spent, self.reserved, self.requested = budget, spent, reserved, requested
        self.resets_at, self.period_key = resets_at, period_key
        in_flight = f" and {format_usd(reserved)} held by calls in flight" if reserved else ""
        super().__init__(
            f"{budget.describe()} would be exceeded: {format_usd(spent)} spent{in_flight} "
            f"{'today' if budget.period == 'day' else 'this month'}, and this call may cost up to "
            f"{format_usd(requested)}; it resets {format_time(resets_at)}."
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes despite the custom __init__
        return (type(self), (self.budget, self.spent, self.reserved, self.requested, self.resets_at,
                             self.period_key))


@dataclass
class BudgetStatus:
    budget: Budget
    period_key: str
    spent: Decimal
    reserved: Decimal
    percent: float  # spent / limit × 100 (reserved not included)
    resets_at: datetime


@dataclass
class Reservation:
    id: int | None  # None: no budget applied, nothing was held
    client: str
    tags: list[str]
    amount: Decimal
    keys: list[Key] = field(default_factory=list)  # the (budget id, period key) totals it holds
    made_at: datetime | None = None  # decides the period it is settled in (None: the ledger row's ts)
    # The budgets that applied when it was made, by key: settle charges these without reading the budgets again
    # (a budget set while the call was in flight applies from the next call). None: settle looks them up.
    budgets: dict[Key, _Budget] | None = field(default=None, compare=False, repr=False)


class _Budget(NamedTuple):
    id: int
    client: str
    tag: str
    period: str
    usd_nanos: int

    def public(self) -> Budget:
        return Budget(self.client, to_usd(self.usd_nanos), self.period, self.tag or None, id=self.id)


class _Usage(NamedTuple):
    spent: int
    reserved: int
    alerted: int


@dataclass
class _Alert:
    key: str
    text: str


# --- transactions -----------------------------------------------------------------------------------------------


def _run(engine: Engine, work: Callable[[Connection], T]) -> T:
    """`work` in one write transaction; retried when PostgreSQL picks it as a deadlock or serialization victim."""
    for attempt in range(_ATTEMPTS):
        try:
            with transaction(engine, write=True) as conn:
                return work(conn)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRY_SQLSTATES or attempt == _ATTEMPTS - 1:
                raise
            log.info("budget transaction retried after %s", type(exc.orig).__name__)
    raise AssertionError("unreachable")


# The call path's statements (reserve's fast path, settle) go through the driver (services/store/driver_sql.py):
# SQLAlchemy's per-statement work was most of the gateway's overhead per call. The rest are built once as Core
# statements: building one costs several times what executing it does on SQLite.
_BT = Base.metadata.tables[GatewayBudget.__tablename__]
_UT = Base.metadata.tables[GatewayBudgetUsage.__tablename__]
_RT = Base.metadata.tables[GatewayReservation.__tablename__]
_KEY = (_UT.c.budget_id == bindparam("b")) & (_UT.c.period_key == bindparam("p"))
_SELECT_BUDGETS = Sql("SELECT id, client, tag, period, usd_nanos FROM gateway_budgets WHERE client = :client")
_SELECT_STALE = (
    select(_RT.c.id, _RT.c.amount_nanos, _RT.c["keys"], _RT.c.client, _RT.c.created_at)
    .where(_RT.c.created_at < bindparam("cutoff"))
    .order_by(_RT.c.id)
    .limit(STALE_BATCH)
    .with_for_update(skip_locked=True)  # SQLite: nothing (its write lock is already held)
)
_DELETE_STALE = delete(_RT).where(_RT.c.id.in_(bindparam("ids", expanding=True)))
_DELETE_RESERVATION = Sql('DELETE FROM gateway_reservations WHERE id = :id RETURNING amount_nanos, "keys"')
_INSERT_RESERVATION = Sql('INSERT INTO gateway_reservations (created_at, client, amount_nanos, "keys") '
                          "VALUES (:created_at, :client, :amount_nanos, :keys) RETURNING id")
# Same syntax on SQLite (≥ 3.24) and PostgreSQL.
_ENSURE_USAGE = text("INSERT INTO gateway_budget_usage (budget_id, period_key, spent_nanos, reserved_nanos, alerted)"
                     " VALUES (:b, :p, 0, 0, 0) ON CONFLICT DO NOTHING")
_LOCK_USAGE = select(_UT.c.spent_nanos, _UT.c.reserved_nanos, _UT.c.alerted).where(_KEY).with_for_update()
_STORE_USAGE = update(_UT).where(_KEY).values(spent_nanos=bindparam("spent"), reserved_nanos=bindparam("reserved"),
                                              alerted=bindparam("alerted_to"))
# reserve's fast path: hold `amount` only if it fits (PostgreSQL re-checks the condition on the newest row version
# after waiting for a lock, so this is a correct check-and-set under concurrency).
_HOLD = Sql("UPDATE gateway_budget_usage SET reserved_nanos = reserved_nanos + :amount"
            " WHERE budget_id = :b AND period_key = :p AND spent_nanos + reserved_nanos + :amount <= :limit")
# settle: count the cost, release what the reservation held (never below zero), read back for alerts.
_CHARGE = Sql("UPDATE gateway_budget_usage SET spent_nanos = spent_nanos + :spend,"
              " reserved_nanos = CASE WHEN reserved_nanos > :release THEN reserved_nanos - :release ELSE 0 END"
              " WHERE budget_id = :b AND period_key = :p RETURNING spent_nanos, alerted")
_BUDGET_EXISTS = select(_BT.c.id).where(_BT.c.id == bindparam("b"))
_SET_ALERTED = update(_UT).where(_KEY).values(alerted=bindparam("alerted_to"))


class _SlowPath(Exception):
    """reserve's fast path cannot decide (stale reservations, a missing total, or a refusal): roll back, go slow."""


def _applicable(conn: Connection, client: str, tags: Iterable[str]) -> list[_Budget]:
    wanted = set(tags)
    rows = run(conn, _SELECT_BUDGETS, {"client": client}).fetchall()
    return [_Budget(*r) for r in rows if r[2] == "" or r[2] in wanted]


def _lock(conn: Connection, keys: Iterable[Key], create: Iterable[Key] = ()) -> dict[Key, _Usage]:
    """Lock the usage rows of `keys` in a fixed order (creating those in `create`); absent rows are left out."""
    make = set(create)
    out: dict[Key, _Usage] = {}
    for key in sorted(set(keys) | make):
        params = {"b": key[0], "p": key[1]}
        row = conn.execute(_LOCK_USAGE, params).first()
        if row is None and key in make:
            conn.execute(_ENSURE_USAGE, params)
            row = conn.execute(_LOCK_USAGE, params).first()
        if row is not None:
            out[key] = _Usage(int(row[0]), int(row[1]), int(row[2]))
    return out


def _store(conn: Connection, key: Key, old: _Usage, new: _Usage) -> None:
    if new != old:
        conn.execute(_STORE_USAGE, {"b": key[0], "p": key[1], "spent": new.spent, "reserved": new.reserved,
                                    "alerted_to": new.alerted})


def _take_stale(conn: Connection, now: datetime) -> dict[Key, int]:
    """Delete reservations older than the timeout (skipping any another transaction is handling) and return the
    amounts they held per usage key, for the caller to release."""
    rows = conn.execute(_SELECT_STALE, {"cutoff": now - RESERVATION_TIMEOUT}).all()
    if not rows:
        return {}
    conn.execute(_DELETE_STALE, {"ids": [r.id for r in rows]})
    held: dict[Key, int] = {}
    for r in rows:
        for budget_id, pkey in json.loads(r.keys):
            key = (int(budget_id), str(pkey))
            held[key] = held.get(key, 0) + int(r.amount_nanos)
    log.warning("released %d budget reservation(s) never settled within %s (oldest: %s, client %s)",
                len(rows), RESERVATION_TIMEOUT, rows[0].created_at, rows[0].client)
    return held


def _release(conn: Connection, held: dict[Key, int]) -> None:
    for key in sorted(held):
        run(conn, _CHARGE, {"b": key[0], "p": key[1], "spend": 0, "release": held[key]}).fetchall()


# --- budgets ----------------------------------------------------------------------------------------------------


def set_budget(engine: Engine, client: str, usd: Decimal, period: str = "month", tag: str | None = None) -> Budget:
    """Create or change a budget (same client, period and tag: the limit is replaced; this period's spend stays)."""
    client = check_client(client)
    _check_period(period)
    tags = normalize_tags([tag] if tag is not None else [])
    tag_value = tags[0] if tags else ""
    nanos = to_nanos(usd)
    if nanos < 0:
        raise ValueError(f"budget {usd} USD is negative; use 0 to refuse every call, or remove the budget")
    now = utc_now()
    B = GatewayBudget

    def work(conn: Connection) -> int:
        ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            ins(B)
            .values(client=client, tag=tag_value, period=period, usd_nanos=nanos, created_at=now, updated_at=now)
            .on_conflict_do_update(index_elements=[B.client, B.period, B.tag],
                                   set_={"usd_nanos": nanos, "updated_at": now})
            .returning(B.id)
        )
        return int(conn.execute(stmt).scalar_one())

    budget_id = _run(engine, work)
    return Budget(client, to_usd(nanos), period, tag_value or None, id=budget_id)


def remove_budget(engine: Engine, client: str, period: str = "month", tag: str | None = None) -> bool:
    """Delete a budget and its running totals; False when there was none."""
    _check_period(period)
    B = GatewayBudget
    with transaction(engine, write=True) as conn:
        result = conn.execute(
            delete(B).where(B.client == client.strip(), B.period == period, B.tag == (tag or "").strip())
        )
        return bool(result.rowcount)


def list_budgets(engine: Engine, client: str | None = None) -> list[Budget]:
    """Every budget (or one client's), by client, tag and period."""
    B = GatewayBudget
    query = select(B.id, B.client, B.tag, B.period, B.usd_nanos).order_by(B.client, B.tag, B.period)
    if client is not None:
        query = query.where(B.client == client)
    with transaction(engine) as conn:
        return [_Budget(*r).public() for r in conn.execute(query)]


def status(engine: Engine, now: datetime | None = None, tz: tzinfo = UTC) -> list[BudgetStatus]:
    """Every budget with its spend and reservations in the current period (releasing stale reservations first)."""
    now = as_utc(now) if now is not None else utc_now()
    B = GatewayBudget

    def work(conn: Connection) -> list[BudgetStatus]:
        _release(conn, _take_stale(conn, now))
        budgets = [_Budget(*r) for r in conn.execute(
            select(B.id, B.client, B.tag, B.period, B.usd_nanos).order_by(B.client, B.tag, B.period))]
        keys = {b.id: period_key(b.period, now, tz) for b in budgets}
        usage: dict[Key, tuple[int, int]] = {}
        if budgets:
            query = select(_UT.c.budget_id, _UT.c.period_key, _UT.c.spent_nanos, _UT.c.reserved_nanos).where(
                _UT.c.period_key.in_(sorted(set(keys.values()))))
            usage = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in conn.execute(query)}
        out = []
        for b in budgets:
            spent, reserved = usage.get((b.id, keys[b.id]), (0, 0))
            out.append(BudgetStatus(
                budget=b.public(), period_key=keys[b.id], spent=to_usd(spent), reserved=to_usd(reserved),
                percent=_percent(spent, b.usd_nanos), resets_at=period_end(b.period, now, tz),
            ))
        return out

    return _run(engine, work)


def _percent(spent: int, limit: int) -> float:
    if limit <= 0:
        return 100.0 if spent > 0 else 0.0
    return spent * 100 / limit


def _reached(spent: int, limit: int) -> int:
    """The highest alert threshold `spent` has reached (0: none)."""
    if spent <= 0:
        return 0
    return max((t for t in THRESHOLDS if spent * 100 >= t * limit), default=0)


# --- the call path ----------------------------------------------------------------------------------------------


def reserve(engine: Engine, client: str, tags: list[str], amount: Decimal, now: datetime | None = None,
            tz: tzinfo = UTC) -> Reservation:
    """Hold `amount` (the call's worst-case cost, USD) on every budget that applies to the call, atomically.

    Raises BudgetExceeded (holding nothing) when `spent + reserved + amount` would pass any of them; with several,
    it names the one that resets last (the call cannot succeed before then). Returns a Reservation with id None
    when no budget applies. Releases reservations older than RESERVATION_TIMEOUT on the way.
    """
    client = check_client(client)
    tags = normalize_tags(tags)
    amount_nanos = to_nanos(amount, round_up=True)
    if amount_nanos < 0:
        raise ValueError(f"a call's worst-case cost cannot be negative (got {amount} USD)")
    now = as_utc(now) if now is not None else utc_now()

    def fast(conn: Connection) -> Reservation:
        # The common case in a few statements: totals exist and the call fits every budget.
        global _stale_checked
        if monotonic() - _stale_checked > STALE_CHECK_INTERVAL:
            if conn.execute(_SELECT_STALE, {"cutoff": now - RESERVATION_TIMEOUT}).first() is not None:
                raise _SlowPath
            _stale_checked = monotonic()
        reservation = Reservation(None, client, tags, to_usd(amount_nanos), made_at=now)
        own = {(b.id, period_key(b.period, now, tz)): b for b in _applicable(conn, client, tags)}
        reservation.budgets = own
        if not own:
            return reservation
        keys = sorted(own)
        for key in keys:  # in key order, so concurrent callers lock the totals in the same order
            params = {"b": key[0], "p": key[1], "amount": amount_nanos, "limit": own[key].usd_nanos}
            if run(conn, _HOLD, params).rowcount != 1:
                raise _SlowPath  # rolls back what this transaction held so far
        reservation.id = _insert_reservation(conn, now, client, amount_nanos, keys)
        reservation.keys = keys
        return reservation

    def slow(conn: Connection) -> tuple[Reservation, BudgetExceeded | None]:
        stale = _take_stale(conn, now)
        own = {(b.id, period_key(b.period, now, tz)): b for b in _applicable(conn, client, tags)}
        reservation = Reservation(None, client, tags, to_usd(amount_nanos), made_at=now, budgets=own)
        usage = _lock(conn, stale, create=own)
        refused: BudgetExceeded | None = None
        for key, b in own.items():
            u = usage[key]
            reserved = max(0, u.reserved - stale.get(key, 0))
            if u.spent + reserved + amount_nanos > b.usd_nanos:
                resets = period_end(b.period, now, tz)
                if refused is None or resets > refused.resets_at:
                    refused = BudgetExceeded(b.public(), to_usd(u.spent), to_usd(reserved), to_usd(amount_nanos),
                                             resets, key[1])
        hold = bool(own) and refused is None
        for key, old in usage.items():
            reserved = max(0, old.reserved - stale.get(key, 0)) + (amount_nanos if hold and key in own else 0)
            _store(conn, key, old, old._replace(reserved=reserved))
        if hold:
            reservation.keys = sorted(own)
            reservation.id = _insert_reservation(conn, now, client, amount_nanos, reservation.keys)
        return reservation, refused  # refused: committed anyway, so the stale releases stick

    try:
        return _run(engine, fast)
    except _SlowPath:
        pass
    reservation, refused = _run(engine, slow)
    if refused is not None:
        raise refused
    return reservation


def _insert_reservation(conn: Connection, now: datetime, client: str, amount_nanos: int, keys: list[Key]) -> int:
    row = run(conn, _INSERT_RESERVATION, {"created_at": timestamp(conn, now), "client": client,
                                          "amount_nanos": amount_nanos, "keys": json.dumps(keys)}).fetchone()
    return int(row[0])


def settle(engine: Engine, reservation: Reservation | None, row: LedgerRow, tz: tzinfo = UTC) -> int:
    """Finish a call, in one transaction: release its reservation, add its actual cost to the spend of every budget
    that applies (in the reservation's period), and write its ledger row; return the row id. Then queue the
    alerts for any threshold (50/80/100 %) the spend reached for the first time this period.

    `reservation` may be None (a call that was not reserved: its cost is still counted, in the period of
    `row.ts`). Settling a reservation twice, or one already released as stale, releases nothing more.
    """
    values, tags = row_values(row)
    cost = values["cost_nanos"]
    if cost is None:  # unknown price: charge the worst case so an unpriced model cannot bypass a budget
        cost = to_nanos(reservation.amount, round_up=True) if reservation is not None and row.status == "ok" else 0
    when = reservation.made_at if reservation is not None and reservation.made_at is not None else values["ts"]

    def work(conn: Connection) -> tuple[int, list[_Alert]]:
        held: dict[Key, int] = {}
        if reservation is not None and reservation.id is not None:
            got = run(conn, _DELETE_RESERVATION, {"id": reservation.id}).fetchone()
            if got is not None:  # None: settled already, or released as stale
                held = {(int(b), str(p)): int(got[0]) for b, p in json.loads(got[1])}
        if reservation is not None and reservation.budgets is not None:
            own = reservation.budgets
        else:
            own = {(b.id, period_key(b.period, when, tz)): b for b in _applicable(conn, values["client"], tags)}
        alerts: list[_Alert] = []
        for key in sorted(held.keys() | own.keys()):  # key order: see reserve
            params = {"b": key[0], "p": key[1], "spend": cost if key in own else 0, "release": held.get(key, 0)}
            usage = run(conn, _CHARGE, params).fetchone()
            b = own.get(key)
            if b is None:
                continue
            if usage is None:  # the period's first call (not reserved): create its total
                if conn.execute(_BUDGET_EXISTS, {"b": key[0]}).first() is None:
                    continue  # removed while the call was in flight
                conn.execute(_ENSURE_USAGE, params)
                usage = run(conn, _CHARGE, params).fetchone()
            spent, alerted = int(usage[0]), int(usage[1])
            reached = _reached(spent, b.usd_nanos)
            if reached > alerted:
                conn.execute(_SET_ALERTED, {"b": key[0], "p": key[1], "alerted_to": reached})
                alerts.append(_alert(b, key[1], reached, spent, period_end(b.period, when, tz)))
        return insert_row(conn, values, tags), alerts

    ledger_id, alerts = _run(engine, work)
    for alert in alerts:
        try:
            enqueue(engine, alert.text, source="gateway", dedupe_key=alert.key, dedupe_window=ALERT_DEDUPE_WINDOW)
        except Exception:  # the call is settled and recorded; a lost alert must not turn it into an error
            log.exception("could not queue budget alert %s", alert.key)
    return ledger_id


def _alert(b: _Budget, pkey: str, threshold: int, spent: int, resets_at: datetime) -> _Alert:
    budget = b.public()
    percent = int(_percent(spent, b.usd_nanos))
    then = "calls that do not fit are refused until it resets" if threshold >= 100 else "it resets"
    text = (f"Budget alert: {budget.describe()} is {percent}% used — {format_usd(to_usd(spent))} spent in "
            f"{pkey}; {then} {format_time(resets_at)}.")
    return _Alert(key=f"budget:{b.id}:{pkey}:{threshold}", text=text)


def refuse(engine: Engine, row: LedgerRow) -> int:
    """Record a call that was stopped before it was made (status "refused", no cost, no tokens); return the row id."""
    return write_ledger(engine, refused_row(row))
