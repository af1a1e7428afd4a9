"""The gateway's money side: budget check + ledger write per call, concurrent ledger writes, and reports.

    .venv/bin/python benchmarks/gateway_ledger.py [--calls 2000] [--threads 8] [--writes 4000] [--rows 100000]
                                                  [--url postgresql://…]   # default: a fresh SQLite file

Prints:
- reserve + settle per call (single thread; the client has a monthly, a daily and a tag budget, so each call
  checks and updates three running totals and writes one ledger row with its tags): p50 / p95 / p99 in ms,
  and the same for a client without budgets;
- ledger writes per second from `--threads` threads;
- `report` by client / model / day / tag / caller and `daily_by_client` over `--rows` ledger rows (seeded with
  executemany, spread over 90 days, 20 clients, 6 models), in ms (median of 3 runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert, select  # noqa: E402

from services.gateway import budgets, ledger  # noqa: E402
from services.store.db import make_engine, transaction, upgrade  # noqa: E402
from services.store.models import GatewayLedger, GatewayLedgerTag  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(client: str, tags: list[str], cost: str | None = "0.0123") -> ledger.LedgerRow:
    return ledger.LedgerRow(ts=datetime.now(UTC), client=client, tags=tags, caller="bench", model_asked="sonnet",
                            model_used="claude-sonnet-4-5", input_tokens=1200, output_tokens=300,
                            cache_creation_input_tokens=0, cache_read_input_tokens=4000,
                            cost_usd=None if cost is None else Decimal(cost), latency_ms=812.0, request_id="req_x")


def bench_calls(engine: Engine, calls: int, client: str, tags: list[str]) -> tuple[list[float], ...]:
    total, res_t, set_t = [], [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        r = budgets.reserve(engine, client, tags, Decimal("0.25"), tz=TZ)
        t1 = time.perf_counter()
        budgets.settle(engine, r, row(client, tags), tz=TZ)
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1000)
        res_t.append((t1 - t0) * 1000)
        set_t.append((t2 - t1) * 1000)
    return total, res_t, set_t


def show(label: str, ms: list[float]) -> None:
    print(f"  {label:<34} p50 {pct(ms, 50):6.2f} ms   p95 {pct(ms, 95):6.2f} ms   p99 {pct(ms, 99):6.2f} ms")


def bench_threads(engine: Engine, threads: int, writes: int) -> float:
    per = writes // threads
    barrier = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(per):
            ledger.write(engine, row(f"client{n}", ["t"]))

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def seed(engine: Engine, rows: int) -> float:
    rnd = random.Random(7)
    clients = [f"client{i:02d}" for i in range(20)]
    models = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gpt-5", "gpt-5-mini", "ollama/llama3"]
    callers = ["bot", "agent", "cli", "proxy"]
    tags = ["research", "ops", "drafting", "review"]
    start = datetime.now(UTC) - timedelta(days=90)
    t0 = time.perf_counter()
    with transaction(engine, write=True) as conn:
        first = conn.execute(select(GatewayLedger.id).order_by(GatewayLedger.id.desc()).limit(1)).scalar() or 0
        batch: list[dict[str, object]] = []
        tag_rows: list[dict[str, object]] = []
        for n in range(rows):
            ledger_id = first + n + 1
            call_tags = rnd.sample(tags, k=rnd.choice((0, 0, 1, 1, 2)))
            status = rnd.choices(("ok", "error", "refused"), weights=(96, 3, 1))[0]
            batch.append({
                "id": ledger_id, "ts": start + timedelta(seconds=rnd.uniform(0, 90 * 86400)),
                "client": rnd.choice(clients), "tags": "[]", "caller": rnd.choice(callers),
                "model_asked": "alias", "model_used": rnd.choice(models) if status == "ok" else None,
                "input_tokens": rnd.randint(10, 20000), "output_tokens": rnd.randint(1, 4000),
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": rnd.randint(0, 50000),
                "cost_nanos": rnd.randint(1_000, 500_000_000) if status == "ok" else 0, "latency_ms": 900.0,
                "status": status, "request_id": None, "error": None,
            })
            tag_rows += [{"ledger_id": ledger_id, "tag": t} for t in call_tags]
            if len(batch) == 10_000:
                conn.execute(insert(GatewayLedger), batch)
                batch = []
        if batch:
            conn.execute(insert(GatewayLedger), batch)
        if tag_rows:
            conn.execute(insert(GatewayLedgerTag), tag_rows)
    return time.perf_counter() - t0


def timed(fn: object, *args: object, **kwargs: object) -> tuple[float, object]:
    runs = []
    out: object = None
    for _ in range(3):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)  # type: ignore[operator]
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--writes", type=int, default=4000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--url", help="database URL (default: a fresh SQLite file in a temporary directory)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'aistack.db'}"
        upgrade(url)
        engine = make_engine(url)
        print(f"database: {engine.dialect.name}")
        budgets.set_budget(engine, "acme", Decimal("1000000"), period="month")
        budgets.set_budget(engine, "acme", Decimal("100000"), period="day")
        budgets.set_budget(engine, "acme", Decimal("50000"), period="month", tag="research")

        bench_calls(engine, 50, "acme", ["research"])  # warm-up: pool, statement caches
        print(f"reserve + settle, single thread, {args.calls} calls:")
        total, res_t, set_t = bench_calls(engine, args.calls, "acme", ["research"])
        show("3 budgets (total)", total)
        show("  reserve", res_t)
        show("  settle (incl. ledger row)", set_t)
        total, _, _ = bench_calls(engine, args.calls, "nobudget", [])
        show("no budget (total)", total)

        rate = bench_threads(engine, args.threads, args.writes)
        print(f"ledger writes, {args.threads} threads: {rate:,.0f} rows/s")

        seconds = seed(engine, args.rows)
        with transaction(engine) as conn:
            n = len(conn.execute(select(GatewayLedger.id)).all())
        print(f"seeded {args.rows:,} rows in {seconds:.1f} s ({n:,} ledger rows in all); reports (median of 3):")
        for by in ("client", "model", "day", "tag", "caller"):
            ms, out = timed(ledger.report, engine, by, tz=TZ)
            print(f"  report by {by:<7} {ms:7.1f} ms  ({len(out):,} groups)")  # type: ignore[arg-type]
        now = datetime.now(UTC)
        ms, _ = timed(ledger.report, engine, "day", client="client03", since=now - timedelta(days=30), tz=TZ)
        print(f"  report by day, one client, 30 days {ms:7.1f} ms")
        ms, out = timed(ledger.daily_by_client, engine, now - timedelta(days=90), now, TZ)
        print(f"  daily_by_client, 90 days {ms:7.1f} ms  ({len(out):,} days)")  # type: ignore[arg-type]
        engine.dispose()
        # What the user waits for: the whole `aistack spend` process (interpreter, CLI, settings, query, table).
        import os
        import subprocess

        env = {**os.environ, "DATABASE_URL": url, "AISTACK_HOME": tmp, "TZ": "UTC"}
        aistack = str(Path(sys.executable).parent / "aistack")
        for by in ("client", "day"):
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                subprocess.run([aistack, "spend", "--by", by], env=env, check=True, stdout=subprocess.DEVNULL)
                runs.append((time.perf_counter() - t) * 1000)
            print(f"  `aistack spend --by {by}` whole process {statistics.median(runs):7.1f} ms (median of 3)")


if __name__ == "__main__":
    main()
