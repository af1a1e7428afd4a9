"""The gateway's spend ledger on SQLite and PostgreSQL: rows, restarts, reports by client/model/day/tag/caller."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from services.gateway import ledger
from services.gateway.ledger import (
    NO_TAG,
    LedgerRow,
    SpendRow,
    daily_by_client,
    format_usd,
    report,
    to_nanos,
    to_usd,
    total,
    write,
)
from services.store.db import transaction
from services.store.models import GatewayLedger, GatewayLedgerTag

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
D = Decimal


def _row(ts: datetime, client: str = "acme", cost: str | None = "0.01", tags: list[str] | None = None,
         caller: str = "bot", model_asked: str = "sonnet", model_used: str | None = "claude-sonnet-4-5",
         status: str = "ok", tokens: tuple[int, int, int, int] = (100, 10, 5, 1000)) -> LedgerRow:
    i, o, cc, cr = tokens
    return LedgerRow(ts=ts, client=client, tags=tags or [], caller=caller, model_asked=model_asked,
                     model_used=model_used, input_tokens=i, output_tokens=o, cache_creation_input_tokens=cc,
                     cache_read_input_tokens=cr, cost_usd=None if cost is None else D(cost), latency_ms=250.0,
                     status=status)


def _groups(rows: list[SpendRow]) -> dict[str, tuple[int, Decimal]]:
    return {r.group: (r.calls, r.cost_usd) for r in rows}


def test_money_is_exact() -> None:
    assert to_nanos(D("0.000000001")) == 1
    assert to_nanos(D("1.5")) == 1_500_000_000
    assert to_nanos(D("0.0000000014")) == 1 and to_nanos(D("0.0000000014"), round_up=True) == 2
    assert to_usd(1_500_000_000) == D("1.5") and str(to_usd(1_500_000_000)) == "1.5"
    assert str(to_usd(0)) == "0" and str(to_usd(1_000 * 10**9)) == "1000"
    assert [format_usd(D(x)) for x in ("0", "1234.5", "0.42", "0.0035", "0.000000001")] == [
        "$0.00", "$1,234.50", "$0.42", "$0.0035", "$0.000000001"]
    with pytest.raises(ValueError, match="not an amount"):
        to_nanos(D("NaN"))


def test_write_stores_every_field(engine: Engine) -> None:
    ts = datetime(2025, 1, 15, 12, 0, 0, 123456, tzinfo=UTC)
    row = _row(ts, tags=["research", " research ", "", "ops"], cost="0.123456789")
    row.request_id, row.error = "req_1", None
    ledger_id = write(engine, row)
    with transaction(engine) as conn:
        stored = conn.execute(select(GatewayLedger).where(GatewayLedger.id == ledger_id)).one()
        tags = sorted(conn.execute(select(GatewayLedgerTag.tag).where(GatewayLedgerTag.ledger_id == ledger_id))
                      .scalars())
    assert stored.ts == ts and stored.ts.tzinfo is not None
    assert (stored.client, stored.caller, stored.model_asked, stored.model_used) == ("acme", "bot", "sonnet",
                                                                                      "claude-sonnet-4-5")
    assert (stored.input_tokens, stored.output_tokens, stored.cache_creation_input_tokens,
            stored.cache_read_input_tokens) == (100, 10, 5, 1000)
    assert (stored.cost_nanos, stored.latency_ms, stored.status, stored.request_id) == (123456789, 250.0, "ok",
                                                                                        "req_1")
    assert stored.tags == '["research", "ops"]' and tags == ["ops", "research"]

    naive = _row(datetime(2025, 1, 15, 13, 0), status="error", cost=None)  # naive: taken as UTC
    naive.error = "x" * 5000
    naive_id = write(engine, naive)
    with transaction(engine) as conn:
        stored = conn.execute(select(GatewayLedger).where(GatewayLedger.id == naive_id)).one()
    assert stored.ts == datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
    assert stored.cost_nanos is None and len(stored.error) == ledger.ERROR_MAX_CHARS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "maybe"}, "ledger status 'maybe' is not one of ok, error, refused"),
        ({"client": "  "}, "client is empty"),
        ({"client": "c" * 65}, "longer than 64 characters"),
        ({"tags": ["t" * 65]}, "longer than 64 characters"),
        ({"tags": "research"}, "tags must be a list"),
    ],
)
def test_write_rejects_bad_rows(sqlite_url: str, change: dict[str, object], message: str) -> None:
    from services.store.db import make_engine, upgrade

    upgrade(sqlite_url)
    row = _row(datetime(2025, 1, 1, tzinfo=UTC))
    for name, value in change.items():
        setattr(row, name, value)
    with pytest.raises(ValueError, match=message):
        write(make_engine(sqlite_url), row)


def test_the_ledger_and_budgets_survive_a_restart(engine: Engine, db_url: str) -> None:
    # Another process (a fresh interpreter, fresh engine) writes; this one reads, and the other way round.
    code = """
        import sys
        from datetime import UTC, datetime
        from decimal import Decimal
        from services.gateway import budgets, ledger
        from services.store.db import make_engine
        engine = make_engine(sys.argv[1])
        budgets.set_budget(engine, "acme", Decimal("10"))
        res = budgets.reserve(engine, "acme", ["t"], Decimal("1"))
        budgets.settle(engine, res, ledger.LedgerRow(ts=datetime.now(UTC), client="acme", tags=["t"], caller="cli",
                       model_asked="m", model_used="m", cost_usd=Decimal("0.25")))
        print(len(ledger.report(engine, "client")))
    """
    write(engine, _row(datetime.now(UTC), cost="0.5"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), db_url], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"  # it saw the row written here
    assert _groups(report(engine, "client")) == {"acme": (2, D("0.75"))}
    assert _groups(report(engine, "tag")) == {"t": (1, D("0.25")), NO_TAG: (1, D("0.5"))}
    from services.gateway.budgets import status

    (st,) = status(engine)
    assert (st.budget.usd, st.spent, st.reserved) == (D(10), D("0.25"), D(0))


def _seed(engine: Engine) -> None:
    day1 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    write(engine, _row(day1, "acme", "1.10", ["research"], "bot"))
    write(engine, _row(day1, "acme", "0.40", ["research", "ops"], "agent", model_asked="haiku",
                       model_used="claude-haiku-4-5"))
    write(engine, _row(day1, "beta", "2.00", [], "cli", model_asked="gpt", model_used="gpt-5"))
    write(engine, _row(day1, "beta", None, [], "cli", model_asked="gpt", model_used=None, status="error",
                       tokens=(0, 0, 0, 0)))
    write(engine, ledger.refused_row(_row(day1, "beta", "9", [], "proxy", model_asked="gpt", model_used=None)))
    write(engine, _row(day1, "beta", None, [], "cli", model_asked="local", model_used="ollama/llama3"))
    # 23:30 UTC on 1 March is already 2 March in Berlin; 03:30 UTC on 2 March is still 1 March in New York.
    write(engine, _row(datetime(2025, 3, 1, 23, 30, tzinfo=UTC), "acme", "0.05", ["ops"], "bot"))
    write(engine, _row(datetime(2025, 3, 2, 3, 30, tzinfo=UTC), "acme", "0.003", [], "bot"))
    write(engine, _row(datetime(2025, 4, 1, 0, 0, tzinfo=UTC), "acme", "1", [], "bot"))


def test_report_by_client_model_caller_and_tag(engine: Engine) -> None:
    _seed(engine)
    by_client = report(engine, "client")
    assert [r.group for r in by_client] == ["acme", "beta"]  # highest cost first
    acme, beta = by_client
    assert (acme.calls, acme.cost_usd, acme.errors, acme.refused, acme.unpriced) == (5, D("2.553"), 0, 0, 0)
    assert (acme.input_tokens, acme.output_tokens, acme.cache_creation_input_tokens,
            acme.cache_read_input_tokens) == (500, 50, 25, 5000)
    assert acme.total_tokens == 5575
    assert (beta.calls, beta.cost_usd, beta.errors, beta.refused, beta.unpriced) == (4, D("2"), 1, 1, 1)
    assert total(by_client).cost_usd == D("4.553") and total(by_client).calls == 9

    assert _groups(report(engine, "model")) == {
        "claude-sonnet-4-5": (4, D("2.153")), "gpt-5": (1, D(2)), "claude-haiku-4-5": (1, D("0.4")),
        "gpt": (2, D(0)), "ollama/llama3": (1, D(0)),  # no model used (error, refused): the model asked
    }
    assert _groups(report(engine, "caller")) == {"bot": (4, D("2.153")), "cli": (3, D(2)), "agent": (1, D("0.4")),
                                                 "proxy": (1, D(0))}
    assert _groups(report(engine, "tag")) == {"research": (2, D("1.5")), "ops": (2, D("0.45")),
                                              NO_TAG: (6, D("3.003"))}
    assert _groups(report(engine, "tag", client="acme")) == {"research": (2, D("1.5")), "ops": (2, D("0.45")),
                                                             NO_TAG: (2, D("1.003"))}
    assert report(engine, "client", client="nobody") == []
    with pytest.raises(ValueError, match="unknown grouping 'week': use one of client, model, day, month, tag"):
        report(engine, "week")


def test_report_by_day_and_month_in_the_time_zone(engine: Engine) -> None:
    _seed(engine)
    assert _groups(report(engine, "day")) == {"2025-03-01": (7, D("3.55")), "2025-03-02": (1, D("0.003")),
                                              "2025-04-01": (1, D(1))}
    assert _groups(report(engine, "day", tz=BERLIN)) == {"2025-03-01": (6, D("3.5")),
                                                         "2025-03-02": (2, D("0.053")),
                                                         "2025-04-01": (1, D(1))}
    assert _groups(report(engine, "day", tz=NEW_YORK)) == {"2025-03-01": (8, D("3.553")),
                                                           "2025-03-31": (1, D(1))}
    assert _groups(report(engine, "month", tz=NEW_YORK)) == {"2025-03": (9, D("4.553"))}
    assert _groups(report(engine, "month", tz=BERLIN)) == {"2025-03": (8, D("3.553")), "2025-04": (1, D(1))}
    # since/until: [since, until), any aware time; here Berlin's 2 March only
    since, until = datetime(2025, 3, 2, tzinfo=BERLIN), datetime(2025, 3, 3, tzinfo=BERLIN)
    assert _groups(report(engine, "client", since=since, until=until)) == {"acme": (2, D("0.053"))}
    assert _groups(report(engine, "day", client="beta", since=since, tz=BERLIN)) == {}


def test_daily_by_client_for_a_chart(engine: Engine) -> None:
    _seed(engine)
    since, until = datetime(2025, 2, 28, tzinfo=BERLIN), datetime(2025, 3, 4, tzinfo=BERLIN)
    assert daily_by_client(engine, since, until, BERLIN) == {
        "2025-02-28": {},
        "2025-03-01": {"acme": D("1.5"), "beta": D(2)},
        "2025-03-02": {"acme": D("0.053")},
        "2025-03-03": {},
    }
    # Kathmandu is UTC+05:45: 18:20 UTC is 00:05 the next day there (an hourly grouping would get it wrong).
    write(engine, _row(datetime(2025, 3, 1, 18, 20, tzinfo=UTC), "gamma", "0.7"))
    span = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, 4, tzinfo=UTC)
    assert daily_by_client(engine, *span, ZoneInfo("Asia/Kathmandu")) == {
        "2025-03-01": {"acme": D("1.5"), "beta": D(2)},
        "2025-03-02": {"acme": D("0.053"), "gamma": D("0.7")},
    }


def test_sums_stay_exact_over_many_small_costs(engine: Engine) -> None:
    ts = datetime(2025, 5, 1, tzinfo=UTC)
    with transaction(engine, write=True) as conn:
        for i in range(1000):
            ledger.insert_row(conn, *ledger.row_values(_row(ts + timedelta(seconds=i), cost="0.000000123")))
    ((_, (calls, cost)),) = _groups(report(engine, "day")).items()
    assert (calls, cost) == (1000, D("0.000123"))


def test_days_across_daylight_saving_transitions(engine: Engine) -> None:
    # Each row is 00:30 local the next day only under the offset in force at that moment (CET +1, CEST +2).
    for ts, cost in [
        (datetime(2025, 3, 29, 23, 30, tzinfo=UTC), "1"),  # CET: 2025-03-30 00:30
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), "2"),  # the switch itself: 03:00 CEST on 30 March
        (datetime(2025, 3, 30, 22, 30, tzinfo=UTC), "4"),  # CEST: 2025-03-31 00:30 (CET would say 30 March)
        (datetime(2025, 10, 25, 22, 30, tzinfo=UTC), "8"),  # CEST: 2025-10-26 00:30 (CET would say 25 October)
        (datetime(2025, 10, 26, 23, 30, tzinfo=UTC), "16"),  # CET again: 2025-10-27 00:30
    ]:
        write(engine, _row(ts, cost=cost))
    assert _groups(report(engine, "day", tz=BERLIN)) == {
        "2025-03-30": (2, D(3)), "2025-03-31": (1, D(4)), "2025-10-26": (1, D(8)), "2025-10-27": (1, D(16))}
    assert _groups(report(engine, "month", tz=BERLIN)) == {"2025-03": (3, D(7)), "2025-10": (2, D(24))}
    since, until = datetime(2025, 10, 25, tzinfo=BERLIN), datetime(2025, 10, 28, tzinfo=BERLIN)
    assert daily_by_client(engine, since, until, BERLIN) == {
        "2025-10-25": {}, "2025-10-26": {"acme": D(8)}, "2025-10-27": {"acme": D(16)}}
    assert report(engine, "day", client="nobody") == []
    assert daily_by_client(engine, until, since, BERLIN) == {}
