"""The gateway's money for the bot and the digest: spend tables and charts over a period, budget lines, checked
budget requests, and the digest's "Gateway" section. Plain text only (the caller escapes); no Telegram import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from services import digest
from services.runtime import Runtime
from services.text_table import fixed_width

from . import budgets, chart, ledger
from .ledger import SpendRow, format_usd

PERIOD_WORDS = ("today", "7d", "30d", "month")
DEFAULT_PERIOD = "7d"
_MONTH = re.compile(r"^\d{4}-\d{2}$")
MAX_BUDGET_USD = Decimal(1_000_000)
BUDGET_DECIMALS = 6
NAME_WIDTH = 16  # characters of a client or model name in the table
HOT_PERCENT = 80.0  # budgets at or above this share of their limit are in the digest


class ReportError(ValueError):
    """A request the user has to change (bad period, amount…); str() says how."""


# ------------------------------------------------------------------------------------------------ periods

@dataclass(frozen=True)
class Window:
    label: str  # "last 7 days (2026-11-20 to 2026-11-26)"
    since: datetime  # local midnight, aware
    until: datetime  # exclusive: the local midnight after the last day


def is_period(arg: str) -> bool:
    return arg.lower() in PERIOD_WORDS or bool(_MONTH.match(arg))


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz)


def _next_month(day: date) -> date:
    return day.replace(year=day.year + 1, month=1, day=1) if day.month == 12 else day.replace(month=day.month + 1,
                                                                                               day=1)


def window(arg: str | None, tz: tzinfo, now: datetime | None = None) -> Window:
    """A period argument as local days: `today`, `7d` (the default: the last 7 days, today included), `30d`,
    `month` (this calendar month so far) or `YYYY-MM` (that whole month)."""
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    tomorrow = _midnight(today + timedelta(days=1), tz)
    word = (arg or DEFAULT_PERIOD).strip().lower()
    if word == "today":
        return Window(f"today ({today})", _midnight(today, tz), tomorrow)
    if word in ("7d", "30d"):
        n = int(word[:-1])
        first = today - timedelta(days=n - 1)
        return Window(f"last {n} days ({first} to {today})", _midnight(first, tz), tomorrow)
    if word == "month":
        first = today.replace(day=1)
        return Window(f"this month ({first} to {today})", _midnight(first, tz), tomorrow)
    if _MONTH.match(word):
        try:
            first = date(int(word[:4]), int(word[5:7]), 1)
        except ValueError:
            raise ReportError(f"{arg!r} is not a month: use YYYY-MM, e.g. {today:%Y-%m}") from None
        if first > today:
            raise ReportError(f"{arg} has not begun yet")
        return Window(f"{first:%Y-%m}", _midnight(first, tz), _midnight(_next_month(first), tz))
    raise ReportError(f"{arg!r} is not a period: use {', '.join(PERIOD_WORDS)} or a month as YYYY-MM")


def parse_spend_args(args: list[str]) -> tuple[str | None, str | None]:
    """`/spend [client] [period]` (either order) → (client, period)."""
    client: str | None = None
    period: str | None = None
    for a in args:
        if is_period(a) and period is None:
            period = a
        elif client is None and not is_period(a):
            client = a
        else:
            raise ReportError("usage: /spend [client] [today|7d|30d|month|YYYY-MM]")
    return client, period


# ------------------------------------------------------------------------------------------------ spend

@dataclass
class Spend:
    window: Window
    client: str | None
    by: str  # "client", or "model" for one client
    rows: list[SpendRow]
    total: SpendRow
    daily: dict[str, dict[str, Decimal]]  # local day → client → USD, every day of the window


def spend(engine: Engine, tz: tzinfo, client: str | None = None, period: str | None = None,
          now: datetime | None = None) -> Spend:
    """Spend over a period: by client, or by model when a client is given, and per day for the chart."""
    w = window(period, tz, now)
    by = "model" if client else "client"
    rows = ledger.report(engine, by, client=client, since=w.since, until=w.until, tz=tz)
    daily = ledger.daily_by_client(engine, w.since, w.until, tz)
    if client is not None:
        daily = {day: {c: v for c, v in per.items() if c == client} for day, per in daily.items()}
    return Spend(window=w, client=client, by=by, rows=rows, total=ledger.total(rows), daily=daily)


def tokens(n: int) -> str:
    """A token count in at most five characters: 950, 1.2k, 35k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _name(text: str) -> str:
    return text if len(text) <= NAME_WIDTH else text[:NAME_WIDTH - 1] + "…"


def _cost(r: SpendRow) -> str:
    return f"{r.cost_usd:,.4f}" + ("*" if r.unpriced else "")


def spend_table(s: Spend) -> str:
    """A fixed-width table (for <pre>): one row per client or model, then the total."""
    body = [(_name(r.group), f"{r.calls:,}", tokens(r.input_tokens + r.cache_creation_input_tokens
                                                    + r.cache_read_input_tokens), tokens(r.output_tokens), _cost(r))
            for r in s.rows]
    t = s.total
    foot = ("total", f"{t.calls:,}", tokens(t.input_tokens + t.cache_creation_input_tokens
                                            + t.cache_read_input_tokens), tokens(t.output_tokens), _cost(t))
    return fixed_width((s.by, "calls", "in", "out", "cost $"), body, foot)


def spend_notes(s: Spend) -> list[str]:
    """What the table leaves out: failed and refused calls, calls without a price."""
    t = s.total
    notes = []
    if t.errors or t.refused:
        notes.append(f"{t.errors} failed and {t.refused} refused call(s) are counted in calls (they cost nothing)")
    if t.unpriced:
        notes.append(f"* {t.unpriced} call(s) of models without a price are not in the cost")
    return notes


def chart_title(s: Spend, tz: tzinfo) -> str:
    who = f"{s.client}'s daily spend" if s.client else "Daily spend by client"
    return f"{who}, {s.window.label}, {_zone(tz)}"


def chart_png(s: Spend, tz: tzinfo) -> bytes:
    return chart.daily_spend_png(s.daily, chart_title(s, tz))


def _zone(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or "UTC")


# ------------------------------------------------------------------------------------------------ budgets

def budget_line(st: budgets.BudgetStatus) -> str:
    b = st.budget
    tag = f" [{b.tag}]" if b.tag else ""
    reserved = f" + {format_usd(st.reserved)} reserved" if st.reserved else ""
    return (f"{b.client}{tag}: {format_usd(st.spent)} spent{reserved} of {format_usd(b.usd)} per {b.period} "
            f"({st.percent:.0f} %), resets {budgets.format_time(st.resets_at)}")


def budget_status(engine: Engine, tz: tzinfo, now: datetime | None = None) -> list[budgets.BudgetStatus]:
    return budgets.status(engine, now=now, tz=tz)


@dataclass(frozen=True)
class BudgetRequest:
    client: str
    usd: Decimal
    period: str

    @property
    def amount(self) -> str:
        """The amount in plain digits (no exponent), as it travels in a button."""
        text = format(self.usd, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text


def budget_request(client: str, usd: str, period: str | None = None) -> BudgetRequest:
    """A budget to set, checked: a known period, a finite amount of USD from 0 up, at most 6 decimals."""
    try:
        name = ledger.check_client(client)
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    period = (period or "month").strip().lower()
    if period not in budgets.PERIODS:
        raise ReportError(f"{period!r} is not a budget period: use {' or '.join(budgets.PERIODS)}")
    text = usd.strip().removeprefix("$").replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ReportError(f"{usd!r} is not an amount of USD: write it like 50 or 12.5") from None
    if not amount.is_finite() or "e" in text.lower():
        raise ReportError(f"{usd!r} is not an amount of USD: write it like 50 or 12.5")
    if amount < 0:
        raise ReportError(f"{usd} is negative: a budget is 0 (refuse every call) or more USD")
    if amount > MAX_BUDGET_USD:
        raise ReportError(f"{usd} USD is more than the {format_usd(MAX_BUDGET_USD)} a budget may be")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -BUDGET_DECIMALS:
        raise ReportError(f"{usd} has more than {BUDGET_DECIMALS} decimals")
    return BudgetRequest(name, amount, period)


def current_budget(engine: Engine, req: BudgetRequest) -> budgets.Budget | None:
    """The budget the request would replace (same client and period, no tag), if any."""
    return next((b for b in budgets.list_budgets(engine, req.client) if b.period == req.period and b.tag is None),
                None)


def set_budget(engine: Engine, req: BudgetRequest) -> budgets.Budget:
    try:
        return budgets.set_budget(engine, req.client, req.usd, period=req.period)
    except ValueError as exc:
        raise ReportError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ digest

def section(rt: Runtime, now: datetime | None = None) -> digest.Section | None:
    """Yesterday's spend by client (a local day in the settings' zone) and the budgets at 80 % or more of their
    current period. Left out when the gateway has neither spend yesterday nor any budget."""
    tz: ZoneInfo = rt.settings.zone
    now = now or datetime.now(UTC)
    yesterday = now.astimezone(tz).date() - timedelta(days=1)
    since, until = _midnight(yesterday, tz), _midnight(yesterday + timedelta(days=1), tz)
    rows = ledger.report(rt.engine, "client", since=since, until=until, tz=tz)
    statuses = budgets.status(rt.engine, now=now, tz=tz)
    if not rows and not statuses:
        return None
    lines: list[str] = []
    if rows:
        t = ledger.total(rows)
        lines.append(f"Yesterday ({yesterday}, {_zone(tz)}): {format_usd(t.cost_usd)} over {t.calls:,} call(s)"
                     + (f", {t.errors} failed" if t.errors else "") + (f", {t.refused} refused" if t.refused else ""))
        lines += [f"  {r.group}: {format_usd(r.cost_usd)}, {r.calls:,} call(s)"
                  + (f" (+{r.unpriced} unpriced)" if r.unpriced else "") for r in rows]
    else:
        lines.append(f"Yesterday ({yesterday}, {_zone(tz)}): no gateway calls")
    hot = [st for st in statuses if st.percent >= HOT_PERCENT]
    if hot:
        lines.append(f"Budgets at {HOT_PERCENT:.0f} % or more: {len(hot)}")
        lines += [f"  {budget_line(st)}" for st in sorted(hot, key=lambda st: -st.percent)]
    elif statuses:
        lines.append(f"Budgets: none at {HOT_PERCENT:.0f} % or more ({len(statuses)} set)")
    return digest.Section("Gateway", lines)


@digest.register("Gateway", order=40)
def gateway_section(rt: Runtime, since: datetime) -> digest.Section | None:
    return section(rt)
