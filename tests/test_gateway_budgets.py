"""Gateway budgets on SQLite and PostgreSQL: limits, reservations, settlement, concurrency, stale holds, alerts."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from services.gateway import budgets
from services.gateway.budgets import (
    RESERVATION_TIMEOUT,
    Budget,
    BudgetExceeded,
    Reservation,
    period_end,
    period_key,
    refuse,
    remove_budget,
    reserve,
    set_budget,
    settle,
    status,
)
from services.gateway.ledger import LedgerRow, report
from services.store.db import make_engine, transaction
from services.store.models import GatewayLedger, GatewayReservation
from services.store.outbox import due

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
D = Decimal


def _row(client: str = "acme", cost: str | None = "0", tags: list[str] | None = None, ts: datetime = T0,
         status: str = "ok", model: str = "claude-sonnet") -> LedgerRow:
    return LedgerRow(ts=ts, client=client, tags=tags or [], caller="cli", model_asked=model, model_used=model,
                     input_tokens=100, output_tokens=20, cost_usd=None if cost is None else D(cost), latency_ms=12.5,
                     status=status)


def _status(engine: Engine, now: datetime = T0, tz: Any = UTC) -> dict[tuple[str, str | None, str], Any]:
    return {(s.budget.client, s.budget.tag, s.budget.period): s for s in status(engine, now=now, tz=tz)}


def _spent_reserved(engine: Engine, client: str = "acme", tag: str | None = None, period: str = "month",
                    now: datetime = T0, tz: Any = UTC) -> tuple[Decimal, Decimal]:
    s = _status(engine, now, tz)[(client, tag, period)]
    return s.spent, s.reserved


def _alerts(engine: Engine) -> list[tuple[str | None, str]]:
    return [(i.dedupe_key, i.text) for i in due(engine, now=datetime.now(UTC) + timedelta(days=3650), limit=100)]


# --- budgets --------------------------------------------------------------------------------------------------------


def test_set_show_and_remove_budgets(engine: Engine) -> None:
    assert status(engine, now=T0) == []
    monthly = set_budget(engine, "acme", D("100"))
    assert monthly == Budget("acme", D("100"), "month") and monthly.id is not None
    set_budget(engine, "acme", D("5.5"), period="day")
    set_budget(engine, "acme", D("20"), period="month", tag=" research ")
    set_budget(engine, "beta", D("0"), period="day")
    changed = set_budget(engine, "acme", D("150.25"))  # same client, period, tag: the limit is replaced
    assert changed.id == monthly.id

    rows = status(engine, now=T0, tz=BERLIN)
    assert [(s.budget.client, s.budget.tag, s.budget.period, s.budget.usd) for s in rows] == [
        ("acme", None, "day", D("5.5")),
        ("acme", None, "month", D("150.25")),
        ("acme", "research", "month", D("20")),
        ("beta", None, "day", D("0")),
    ]
    day = rows[0]
    assert (day.spent, day.reserved, day.percent, day.period_key) == (D(0), D(0), 0.0, "2025-01-15")
    assert day.resets_at == datetime(2025, 1, 16, tzinfo=BERLIN)
    assert rows[1].resets_at == datetime(2025, 2, 1, tzinfo=BERLIN) and rows[1].period_key == "2025-01"
    assert [b.client for b in budgets.list_budgets(engine, client="beta")] == ["beta"]

    assert remove_budget(engine, "acme", period="month", tag="research") is True
    assert remove_budget(engine, "acme", period="month", tag="research") is False
    assert remove_budget(engine, "nobody") is False
    assert ("acme", "research", "month") not in _status(engine)

    with pytest.raises(ValueError, match="budget period 'week' is not one of day, month"):
        set_budget(engine, "acme", D("1"), period="week")
    with pytest.raises(ValueError, match="negative"):
        set_budget(engine, "acme", D("-1"))
    with pytest.raises(ValueError, match="client is empty"):
        set_budget(engine, " ", D("1"))


def test_periods_are_calendar_days_and_months_in_the_time_zone() -> None:
    late = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)  # already 2025-01-01 00:30 in Berlin
    assert period_key("day", late, UTC) == "2024-12-31"
    assert period_key("day", late, BERLIN) == "2025-01-01"
    assert period_key("month", late, BERLIN) == "2025-01"
    assert period_end("month", late, UTC) == datetime(2025, 1, 1, tzinfo=UTC)
    assert period_end("month", late, BERLIN) == datetime(2025, 2, 1, tzinfo=BERLIN)
    assert period_end("day", late, BERLIN) == datetime(2025, 1, 2, tzinfo=BERLIN)
    dst = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)  # the 23-hour day in Berlin
    start, end = budgets.period_start("day", dst, BERLIN), period_end("day", dst, BERLIN)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


# --- reserve / settle -----------------------------------------------------------------------------------------------


def test_reserve_within_budget_and_refuse_over_it(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"), period="month")
    first = reserve(engine, "acme", [], D("4"), now=T0, tz=BERLIN)
    second = reserve(engine, "acme", [], D("4"), now=T0, tz=BERLIN)
    assert first.id is not None and second.id is not None and first.id != second.id
    assert first.amount == D(4) and first.made_at == T0 and len(first.keys) == 1
    assert _spent_reserved(engine, tz=BERLIN) == (D(0), D(8))

    with pytest.raises(BudgetExceeded) as info:
        reserve(engine, "acme", [], D("2.5"), now=T0, tz=BERLIN)
    exc = info.value
    assert (exc.budget.client, exc.budget.period, exc.budget.usd) == ("acme", "month", D(10))
    assert (exc.spent, exc.reserved, exc.requested) == (D(0), D(8), D("2.5"))
    assert exc.resets_at == datetime(2025, 2, 1, tzinfo=BERLIN)
    assert str(exc) == (
        "acme's monthly budget of $10.00 would be exceeded: $0.00 spent and $8.00 held by calls in flight this "
        "month, and this call may cost up to $2.50; it resets 2025-02-01 00:00 Europe/Berlin."
    )
    assert _spent_reserved(engine, tz=BERLIN) == (D(0), D(8))  # the refused call held nothing

    exact = reserve(engine, "acme", [], D("2"), now=T0, tz=BERLIN)  # up to the limit exactly is fine
    settle(engine, first, _row(cost="3.5"), tz=BERLIN)
    with pytest.raises(BudgetExceeded, match=r"\$3.50 spent and \$6.00 held by calls in flight"):
        reserve(engine, "acme", [], D("0.51"), now=T0, tz=BERLIN)
    assert reserve(engine, "acme", [], D("0.5"), now=T0, tz=BERLIN).id is not None
    assert exact.id is not None

    with pytest.raises(ValueError, match="cannot be negative"):
        reserve(engine, "acme", [], D("-1"), now=T0)


def test_zero_budget_refuses_every_priced_call(engine: Engine) -> None:
    set_budget(engine, "beta", D("0"), period="day")
    with pytest.raises(BudgetExceeded, match=r"^beta's daily budget of \$0.00 would be exceeded: \$0.00 spent "
                                             r"today, and this call may cost up to \$0.000001; it resets "
                                             r"2025-01-16 00:00 UTC\.$"):
        reserve(engine, "beta", [], D("0.000001"), now=T0)
    assert reserve(engine, "beta", [], D("0"), now=T0).id is not None


def test_client_without_budget_holds_nothing_but_is_still_recorded(engine: Engine) -> None:
    set_budget(engine, "acme", D("1"))
    free = reserve(engine, "other", ["research"], D("1000"), now=T0)
    assert free == Reservation(None, "other", ["research"], D(1000), keys=[], made_at=T0)
    ledger_id = settle(engine, free, _row(client="other", cost="999"))
    assert ledger_id > 0
    assert [(r.group, r.cost_usd) for r in report(engine, "client")] == [("other", D(999))]
    assert _spent_reserved(engine) == (D(0), D(0))


def test_tag_budgets_apply_only_to_calls_with_the_tag(engine: Engine) -> None:
    set_budget(engine, "acme", D("100"), period="month")
    set_budget(engine, "acme", D("1"), period="day", tag="research")
    set_budget(engine, "acme", D("50"), period="day", tag="ops")

    held = reserve(engine, "acme", ["research", "misc"], D("0.8"), now=T0)
    assert len(held.keys) == 2  # the client's budget and the research one, not ops
    with pytest.raises(BudgetExceeded, match=r"acme's daily budget for tag “research” of \$1\.00 would be exceeded"):
        reserve(engine, "acme", ["research"], D("0.3"), now=T0)
    assert reserve(engine, "acme", [], D("0.3"), now=T0).id is not None  # untagged: only the client budget
    assert reserve(engine, "acme", ["ops"], D("0.3"), now=T0).id is not None
    assert reserve(engine, "beta", ["research"], D("5"), now=T0).id is None  # another client's tag budget
    st = _status(engine)
    assert st[("acme", None, "month")].reserved == D("1.4")
    assert st[("acme", "research", "day")].reserved == D("0.8")
    assert st[("acme", "ops", "day")].reserved == D("0.3")

    settle(engine, held, _row(cost="0.75", tags=["research", "misc"]))
    st = _status(engine)
    assert (st[("acme", "research", "day")].spent, st[("acme", "research", "day")].reserved) == (D("0.75"), D(0))
    assert st[("acme", None, "month")].spent == D("0.75")
    assert st[("acme", "ops", "day")].spent == D(0)


def test_both_periods_apply_and_the_refusal_names_the_one_that_resets_last(engine: Engine) -> None:
    set_budget(engine, "acme", D("1"), period="day")
    set_budget(engine, "acme", D("1"), period="month")
    settle(engine, None, _row(cost="0.9"))
    with pytest.raises(BudgetExceeded) as info:
        reserve(engine, "acme", [], D("0.2"), now=T0)
    assert info.value.budget.period == "month" and info.value.resets_at == datetime(2025, 2, 1, tzinfo=UTC)
    next_day = T0 + timedelta(days=1)
    with pytest.raises(BudgetExceeded, match="monthly"):
        reserve(engine, "acme", [], D("0.2"), now=next_day)
    assert reserve(engine, "acme", [], D("0.1"), now=next_day).id is not None


def test_settle_moves_the_reservation_to_spent_at_the_actual_cost(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"))
    res = reserve(engine, "acme", [], D("2"), now=T0)
    other = reserve(engine, "acme", [], D("1"), now=T0)
    assert _spent_reserved(engine) == (D(0), D(3))

    ledger_id = settle(engine, res, _row(cost="0.123456789"))
    assert _spent_reserved(engine) == (D("0.123456789"), D(1))
    assert settle(engine, res, _row(cost="0")) > ledger_id  # a second settle releases nothing more
    assert _spent_reserved(engine) == (D("0.123456789"), D(1))

    settle(engine, None, _row(cost="0.5"))  # not reserved (e.g. recorded after the fact): still counted
    settle(engine, other, _row(cost=None, status="error"))  # failed, cost unknown: nothing spent
    assert _spent_reserved(engine) == (D("0.623456789"), D(0))
    with transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(GatewayReservation)).scalar_one() == 0


def test_a_successful_call_of_unknown_cost_is_charged_its_worst_case(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"))
    res = reserve(engine, "acme", [], D("1.25"), now=T0)
    settle(engine, res, _row(cost=None))
    assert _spent_reserved(engine) == (D("1.25"), D(0))
    (row,) = report(engine, "client")
    assert (row.cost_usd, row.unpriced) == (D(0), 1)  # the ledger keeps the cost as unknown


def test_a_reservation_is_settled_in_the_period_it_was_made_in(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"), period="month")
    before_midnight = datetime(2025, 1, 31, 22, 59, tzinfo=UTC)  # 23:59 in Berlin
    res = reserve(engine, "acme", [], D("2"), now=before_midnight, tz=BERLIN)
    settle(engine, res, _row(cost="1.5", ts=before_midnight + timedelta(minutes=2)), tz=BERLIN)
    assert _spent_reserved(engine, now=before_midnight, tz=BERLIN) == (D("1.5"), D(0))
    february = before_midnight + timedelta(minutes=2)
    assert _spent_reserved(engine, now=february, tz=BERLIN) == (D(0), D(0))


def test_refused_calls_are_recorded_without_cost(engine: Engine) -> None:
    set_budget(engine, "acme", D("1"))
    row = _row(cost="3")
    row.error = "acme's monthly budget of $1.00 would be exceeded"
    refuse(engine, row)
    (rep,) = report(engine, "client")
    assert (rep.calls, rep.refused, rep.cost_usd, rep.input_tokens) == (1, 1, D(0), 0)
    with transaction(engine) as conn:
        stored = conn.execute(select(GatewayLedger.status, GatewayLedger.error)).one()
    assert tuple(stored) == ("refused", row.error)
    assert _spent_reserved(engine) == (D(0), D(0))


# --- stale reservations ---------------------------------------------------------------------------------------------


def test_stale_reservations_are_released(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"))
    dead = reserve(engine, "acme", [], D("8"), now=T0)  # its process dies mid-call and never settles
    live = reserve(engine, "acme", [], D("1"), now=T0 + timedelta(minutes=10))
    with pytest.raises(BudgetExceeded):
        reserve(engine, "acme", [], D("2"), now=T0 + timedelta(minutes=14))

    after = T0 + RESERVATION_TIMEOUT + timedelta(seconds=1)
    assert _spent_reserved(engine, now=after) == (D(0), D(1))  # status releases it too
    again = reserve(engine, "acme", [], D("8"), now=after)
    assert _spent_reserved(engine, now=after) == (D(0), D(9))

    settle(engine, dead, _row(cost="0.5"))  # the long call finally ends: counted, nothing more released
    assert _spent_reserved(engine, now=after) == (D("0.5"), D(9))
    settle(engine, live, _row(cost="1"))
    settle(engine, again, _row(cost="7"))
    assert _spent_reserved(engine, now=after) == (D("8.5"), D(0))


def test_reserve_releases_stale_holds_before_checking(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"))
    reserve(engine, "acme", [], D("9"), now=T0)
    assert reserve(engine, "acme", [], D("9"), now=T0 + timedelta(minutes=16)).id is not None
    assert _spent_reserved(engine, now=T0 + timedelta(minutes=16)) == (D(0), D(9))


# --- concurrency ----------------------------------------------------------------------------------------------------


def test_concurrent_threads_never_overspend(engine: Engine) -> None:
    set_budget(engine, "acme", D("1"))
    settle(engine, None, _row(cost="0.9", ts=datetime.now(UTC)))
    barrier = threading.Barrier(20)
    held: list[Reservation] = []
    refused: list[BudgetExceeded] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        try:
            res = reserve(engine, "acme", ["t"], D("0.03"))
            with lock:
                held.append(res)
        except BudgetExceeded as exc:
            with lock:
                refused.append(exc)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert (len(held), len(refused)) == (3, 17)  # 0.9 + 3 × 0.03 = 0.99; a fourth would make 1.02
    now = datetime.now(UTC)
    assert _spent_reserved(engine, now=now) == (D("0.9"), D("0.09"))
    for res in held:
        settle(engine, res, _row(cost="0.02", tags=["t"], ts=now))
    assert _spent_reserved(engine, now=now) == (D("0.96"), D(0))


def _reserve_until_refused(url: str, barrier: Any, results: Any) -> None:
    """One process of the multi-process test: reserve and settle at full price until the budget says no."""
    engine = make_engine(url)
    barrier.wait()
    calls = 0
    try:
        while True:
            res = reserve(engine, "acme", [], D("0.013"))
            settle(engine, res, _row(cost="0.013", ts=datetime.now(UTC)))
            calls += 1
    except BudgetExceeded:
        results.put(calls)
    except BaseException as exc:
        results.put(repr(exc))
        raise


def test_concurrent_processes_never_overspend(engine: Engine, db_url: str) -> None:
    set_budget(engine, "acme", D("1"))
    ctx = multiprocessing.get_context("spawn")  # no forked copies of the parent's connection pool
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [ctx.Process(target=_reserve_until_refused, args=(db_url, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert all(isinstance(n, int) for n in got), got
    # Each call holds its full price until settled at that price, so the budget admits floor(1 / 0.013) = 76.
    assert sum(got) == 76, got
    now = datetime.now(UTC)
    assert _spent_reserved(engine, now=now) == (D("0.988"), D(0))
    (row,) = report(engine, "client")
    assert (row.calls, row.cost_usd) == (76, D("0.988"))


# --- alerts ---------------------------------------------------------------------------------------------------------


def test_alerts_at_50_80_and_100_percent_once_per_period(engine: Engine) -> None:
    budget = set_budget(engine, "acme", D("10"), period="month")
    jan = datetime(2025, 1, 10, tzinfo=UTC)

    settle(engine, None, _row(cost="4", ts=jan), tz=BERLIN)
    assert _alerts(engine) == []
    settle(engine, None, _row(cost="1", ts=jan), tz=BERLIN)  # exactly 50 %
    settle(engine, None, _row(cost="3.5", ts=jan), tz=BERLIN)  # 85 %
    set_budget(engine, "acme", D("20"), period="month")  # raised: 42.5 %
    settle(engine, None, _row(cost="8", ts=jan), tz=BERLIN)  # 82.5 %: crosses 50 and 80 again, no new alert
    settle(engine, None, _row(cost="4", ts=jan), tz=BERLIN)  # 102.5 %
    settle(engine, None, _row(cost="1", ts=jan), tz=BERLIN)  # still over: nothing new

    alerts = _alerts(engine)
    assert [key for key, _ in alerts] == [f"budget:{budget.id}:2025-01:{t}" for t in (50, 80, 100)]
    assert alerts[0][1] == ("Budget alert: acme's monthly budget of $10.00 is 50% used — $5.00 spent in 2025-01; "
                            "it resets 2025-02-01 00:00 Europe/Berlin.")
    assert alerts[1][1].startswith("Budget alert: acme's monthly budget of $10.00 is 85% used — $8.50 spent")
    assert alerts[2][1] == ("Budget alert: acme's monthly budget of $20.00 is 102% used — $20.50 spent in "
                            "2025-01; calls that do not fit are refused until it resets 2025-02-01 00:00 "
                            "Europe/Berlin.")

    feb = datetime(2025, 2, 3, tzinfo=UTC)  # a new period alerts again; a jump over two thresholds sends one
    settle(engine, None, _row(cost="17", ts=feb), tz=BERLIN)
    assert [key for key, _ in _alerts(engine)][3:] == [f"budget:{budget.id}:2025-02:80"]


def test_tag_budget_alerts_name_the_tag(engine: Engine) -> None:
    tagged = set_budget(engine, "acme", D("2"), period="day", tag="research")
    set_budget(engine, "acme", D("100"), period="month")
    res = reserve(engine, "acme", ["research"], D("2"), now=T0)
    settle(engine, res, _row(cost="2", tags=["research"]))
    ((key, text),) = _alerts(engine)
    assert key == f"budget:{tagged.id}:2025-01-15:100"
    assert text.startswith("Budget alert: acme's daily budget for tag “research” of $2.00 is 100% used")
    assert text.endswith("until it resets 2025-01-16 00:00 UTC.")


def test_a_fitting_call_sweeps_stale_holds_on_the_periodic_look(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path looks for stale holds only every STALE_CHECK_INTERVAL; when it does, they are released."""
    set_budget(engine, "acme", D("100"))
    reserve(engine, "acme", [], D("5"), now=T0)  # never settled
    monkeypatch.setattr(budgets, "_stale_checked", float("-inf"))
    later = T0 + RESERVATION_TIMEOUT + timedelta(minutes=1)
    held = reserve(engine, "acme", [], D("1"), now=later)
    with engine.connect() as conn:
        amounts = list(conn.execute(select(GatewayReservation.amount_nanos)).scalars())
    assert amounts == [10**9] and held.id is not None  # only the new $1 hold is left


def test_a_budget_removed_while_a_call_is_in_flight_settles_cleanly(engine: Engine) -> None:
    set_budget(engine, "acme", D("10"))
    res = reserve(engine, "acme", [], D("1"))
    assert remove_budget(engine, "acme") is True
    row_id = settle(engine, res, _row(cost="0.5", ts=datetime.now(UTC)))
    assert row_id > 0 and budgets.list_budgets(engine, "acme") == []
