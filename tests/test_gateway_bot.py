"""The gateway's money through Telegram: the real bot against the local Bot API emulator, the ledger and budgets
seeded through the services (`ledger.write`, `budgets.set_budget`, `budgets.settle`)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from handlers import gateway as gateway_handlers
from services.digest import build_digest, sections
from services.gateway import budgets, ledger, report
from services.gateway.ledger import LedgerRow
from tests.bot_fixtures import ADMIN, BotHarness

D = Decimal
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _today() -> date:
    return datetime.now(UTC).date()  # the harness runs the bot with TZ=UTC


def _at(day: date, hour: int = 0, minute: int = 1) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def _row(ts: datetime, client: str, model: str, cost: str | None, i: int = 0, o: int = 0,
         status: str = "ok") -> LedgerRow:
    return LedgerRow(ts=ts, client=client, tags=[], caller="agent", model_asked=model,
                     model_used=model if status == "ok" else None, input_tokens=i or None, output_tokens=o or None,
                     cost_usd=None if cost is None else D(cost), status=status)


def seed(h: BotHarness) -> None:
    """acme: two claude calls yesterday ($1.50), a local call and a failed one today; beta: $2.25 three days ago
    and $10 twenty days ago (in 30d, not in 7d); internal: one refused call today."""
    e, today = h.rt.engine, _today()
    yesterday = today - timedelta(days=1)
    for row in [
        _row(_at(yesterday, 12), "acme", "claude-sonnet", "0.75", 1000, 500),
        _row(_at(yesterday, 13), "acme", "claude-sonnet", "0.75", 1000, 500),
        _row(_at(today), "acme", "local", "0", 20000, 3000),
        _row(_at(today), "acme", "local", "0", status="error"),
        _row(_at(today - timedelta(days=3), 9), "beta", "gpt-4o", "2.25", 12000, 800),
        _row(_at(today - timedelta(days=20), 9), "beta", "gpt-4o", "10", 50000, 2000),
        _row(_at(today), "internal", "claude-sonnet", None, status="refused"),
    ]:
        ledger.write(e, row)


def table(msg: Any) -> dict[str, list[str]]:
    """The <pre> table of a /spend answer: first cell → the other cells."""
    pre = next(e for e in msg.entities if e["type"] == "pre")
    units = msg.text.encode("utf-16-le")  # entity offsets count UTF-16 code units
    text = units[2 * pre["offset"]:2 * (pre["offset"] + pre["length"])].decode("utf-16-le")
    return {cells[0]: cells[1:] for line in text.splitlines() if not line.startswith("-")
            for cells in [line.split()]}


def check_png(photo: Any) -> Image.Image:
    assert photo.kind == "photo" and photo.filename == "spend.png"
    assert photo.data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(photo.data))
    image.load()
    assert image.format == "PNG"
    return image


async def press(h: BotHarness, message: Any, data: str, done: Any) -> None:
    h.emu.press_button(ADMIN, message.message_id, data)
    await h.emu.wait_until(done)


# ------------------------------------------------------------------------------------------------ /spend

async def test_spend_shows_a_table_by_client_and_a_png_chart(bot_stack: BotHarness) -> None:
    seed(bot_stack)
    msg, photo = await bot_stack.say("/spend", count=2)
    assert "Gateway spend by client, last 7 days" in msg.text and "), UTC" in msg.text
    rows = table(msg)
    assert rows["client"] == ["calls", "in", "out", "cost", "$"]
    assert rows["beta"] == ["1", "12k", "800", "2.2500"]  # the $10 twenty days ago is outside 7d
    assert rows["acme"] == ["4", "22k", "4.0k", "1.5000"]  # 2 claude + 1 local + 1 failed call
    assert rows["internal"] == ["1", "0", "0", "0.0000"]  # refused: counted, free
    assert rows["total"] == ["6", "34k", "4.8k", "3.7500"]
    assert list(rows)[1:4] == ["beta", "acme", "internal"]  # by cost, highest first
    assert "Total $3.75 over 6 call(s)" in msg.text
    assert "1 failed and 1 refused call(s)" in msg.text

    image = check_png(photo)
    assert image.size[0] == 900 and 380 <= image.size[1] <= 600
    assert photo.caption.startswith("Daily spend by client, last 7 days")

    [month] = (await bot_stack.say("/spend 30d", count=2))[:1]
    assert table(month)["beta"][-1] == "12.2500"

    [none] = await bot_stack.say("/spend 2020-01")
    assert "No gateway calls in this period" in none.text


async def test_spend_quick_action_button_sends_table_and_chart(bot_stack: BotHarness) -> None:
    seed(bot_stack)
    [menu] = await bot_stack.say("/start")
    assert "cmd:spend" in [b["callback_data"] for b in menu.buttons]
    before = len(bot_stack.emu.sent(ADMIN))
    bot_stack.emu.press_button(ADMIN, menu.message_id, "cmd:spend")
    msg, photo = (await bot_stack.emu.wait_for_sent(before + 2, chat_id=ADMIN))[before:]
    assert table(msg)["total"][-1] == "3.7500"
    check_png(photo)


async def test_spend_for_a_client_groups_by_model(bot_stack: BotHarness) -> None:
    seed(bot_stack)
    msg, photo = await bot_stack.say("/spend acme today", count=2)
    assert "client acme by model, today" in msg.text
    rows = table(msg)
    assert rows["model"][0] == "calls"
    assert rows["local"] == ["2", "20k", "3.0k", "0.0000"]  # the failed call is counted under the model asked
    assert "claude-sonnet" not in rows  # yesterday's calls are not today's
    check_png(photo)
    assert photo.caption.startswith("acme's daily spend, today")

    msg, _ = await bot_stack.say("/spend 7d acme", count=2)  # either order
    rows = table(msg)
    assert rows["claude-sonnet"] == ["2", "2.0k", "1.0k", "1.5000"]
    assert set(rows) == {"model", "claude-sonnet", "local", "total"}


async def test_spend_rejects_bad_periods(bot_stack: BotHarness) -> None:
    [bad] = await bot_stack.say("/spend 2026-13")
    assert "'2026-13' is not a month: use YYYY-MM" in bad.text
    [bad] = await bot_stack.say("/spend acme beta")
    assert "usage: /spend [client] [today|7d|30d|month|YYYY-MM]" in bad.text


# ------------------------------------------------------------------------------------------------ /budget

async def test_budget_lists_every_budget_with_spend_and_reset(bot_stack: BotHarness) -> None:
    [empty] = await bot_stack.say("/budget")
    assert "No budgets yet" in empty.text
    e = bot_stack.rt.engine
    budgets.set_budget(e, "acme", D(50), "month")
    budgets.set_budget(e, "beta", D("2.5"), "day")
    budgets.settle(e, None, _row(datetime.now(UTC), "acme", "claude-sonnet", "12.5", 100, 100))
    [msg] = await bot_stack.say("/budget")
    now = datetime.now(UTC)
    first = report._next_month(now.date())
    assert f"acme: $12.50 spent of $50.00 per month (25 %), resets {first} 00:00 UTC" in msg.text
    assert f"beta: $0.00 spent of $2.50 per day (0 %), resets {now.date() + timedelta(days=1)} 00:00 UTC" in msg.text


async def test_budget_is_set_only_after_the_confirm_button(bot_stack: BotHarness) -> None:
    e = bot_stack.rt.engine
    [ask] = await bot_stack.say("/budget acme 50 month")
    assert "Set the budget of acme: $50.00 per month?" in ask.text and "no such budget yet" in ask.text
    assert [(b["text"], b["callback_data"]) for b in ask.buttons] == [
        ("✅ Set", "gb:set:acme:50:month"), ("✖️ Cancel", "gb:cancel")]
    assert budgets.list_budgets(e) == []  # asking sets nothing

    await press(bot_stack, ask, "gb:set:acme:50:month", lambda: "Budget set" in ask.text)
    assert ask.text == "✅ Budget set: acme $50.00 per month." and ask.buttons == []
    assert bot_stack.emu.callback_answers[-1].get("text") == "Budget set"
    [b] = budgets.list_budgets(e)
    assert (b.client, b.usd, b.period, b.tag) == ("acme", D(50), "month", None)

    [again] = await bot_stack.say("/budget acme 12.50")  # the period defaults to month; the current one is shown
    assert "acme: $12.50 per month?" in again.text and "Now: $50.00 per month." in again.text
    assert again.buttons[0]["callback_data"] == "gb:set:acme:12.5:month"


async def test_cancel_leaves_no_budget(bot_stack: BotHarness) -> None:
    [ask] = await bot_stack.say("/budget acme 50 day")
    await press(bot_stack, ask, "gb:cancel", lambda: "cancelled" in ask.text)
    assert ask.buttons == []
    assert budgets.list_budgets(bot_stack.rt.engine) == []


async def test_bad_budget_requests_get_clear_errors(bot_stack: BotHarness) -> None:
    [bad] = await bot_stack.say("/budget acme lots")
    assert "'lots' is not an amount of USD: write it like 50 or 12.5" in bad.text
    assert "Usage: /budget" in bad.text and bad.buttons == []
    [neg] = await bot_stack.say("/budget acme -5")
    assert "-5 is negative" in neg.text
    [inf] = await bot_stack.say("/budget acme Infinity")
    assert "is not an amount of USD" in inf.text
    [period] = await bot_stack.say("/budget acme 5 week")
    assert "'week' is not a budget period: use day or month" in period.text
    [usage] = await bot_stack.say("/budget acme")
    assert usage.text.startswith("Usage: /budget")
    [long] = await bot_stack.say(f"/budget {'x' * 60} 5")
    assert "too long for a button" in long.text and long.buttons == []
    assert budgets.list_budgets(bot_stack.rt.engine) == []


# ------------------------------------------------------------------------------------------------ digest

async def test_digest_lists_yesterdays_spend_and_budgets_over_80_percent(bot_stack: BotHarness) -> None:
    rt = bot_stack.rt
    assert report.section(rt) is None  # no spend, no budgets: the gateway is not in use
    seed(bot_stack)
    budgets.set_budget(rt.engine, "acme", D(50), "month")
    budgets.set_budget(rt.engine, "beta", D(100), "month")
    budgets.settle(rt.engine, None, _row(datetime.now(UTC), "acme", "claude-sonnet", "42.5", 10, 10))

    msgs = await bot_stack.say("/digest")
    text = "\n".join(m.text for m in msgs)
    yesterday = _today() - timedelta(days=1)
    assert "Gateway" in text
    assert f"Yesterday ({yesterday}, UTC): $1.50 over 2 call(s)" in text
    assert "  acme: $1.50, 2 call(s)" in text and "beta:" not in text.split("Gateway", 1)[1].split("Budgets")[0]
    assert "Budgets at 80 % or more: 1" in text
    assert "acme: $42.50 spent of $50.00 per month (85 %)" in text
    assert "beta: $0.00 spent" not in text


async def test_digest_section_follows_the_settings_time_zone(bot_stack: BotHarness) -> None:
    """23:30 UTC on the 9th is the 10th in Berlin: 'yesterday' at noon on the 11th (Berlin) includes it."""
    from services.runtime import Runtime

    berlin = bot_stack.rt.settings.model_copy(update={"tz": "Europe/Berlin"})
    rt = Runtime(settings=berlin, engine=bot_stack.rt.engine)
    ledger.write(rt.engine, _row(datetime(2026, 3, 9, 23, 30, tzinfo=UTC), "acme", "m", "1.25"))
    ledger.write(rt.engine, _row(datetime(2026, 3, 9, 22, 30, tzinfo=UTC), "acme", "m", "7"))  # the 9th in Berlin
    now = datetime(2026, 3, 11, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    section = report.section(rt, now=now)
    assert section is not None and section.lines[0] == "Yesterday (2026-03-10, Europe/Berlin): $1.25 over 1 call(s)"
    assert sections()[-1] == "Gateway"  # registered through PROVIDERS, after LORE
    assert "Gateway" not in [s.title for s in build_digest(rt).sections]  # nothing yesterday (today), no budget


# ------------------------------------------------------------------------------------------------ parsing

def test_periods_are_local_days() -> None:
    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # already April 1st in Berlin
    w = report.window(None, tz, now)
    assert w.label == "last 7 days (2026-03-26 to 2026-04-01)"
    assert (w.since, w.until) == (datetime(2026, 3, 26, tzinfo=tz), datetime(2026, 4, 2, tzinfo=tz))
    assert report.window("today", tz, now).since == datetime(2026, 4, 1, tzinfo=tz)
    assert report.window("30d", tz, now).since == datetime(2026, 3, 3, tzinfo=tz)
    assert report.window("month", tz, now).since == datetime(2026, 4, 1, tzinfo=tz)
    dec = report.window("2025-12", tz, now)
    assert (dec.since, dec.until) == (datetime(2025, 12, 1, tzinfo=tz), datetime(2026, 1, 1, tzinfo=tz))
    for bad, says in [("2026-05", "has not begun"), ("2026-00", "not a month"), ("week", "not a period")]:
        with pytest.raises(report.ReportError, match=says):
            report.window(bad, tz, now)


def test_budget_requests_are_checked_and_fit_a_button() -> None:
    req = report.budget_request("acme", "$1,250.50", "DAY")
    assert (req.client, req.usd, req.period, req.amount) == ("acme", D("1250.50"), "day", "1250.5")
    assert gateway_handlers._set_data(req) == "gb:set:acme:1250.5:day"
    assert gateway_handlers._parse_set("gb:set:acme:1250.5:day") == req
    with pytest.raises(report.ReportError, match="lower-case letters"):  # clients are LORE's folder names
        gateway_handlers._parse_set("gb:set:a:b:7:month")
    assert report.budget_request("acme", "0").usd == 0  # 0 refuses every call: allowed, as in the CLI
    for usd, says in [("1e3", "not an amount"), ("NaN", "not an amount"), ("2000000", "more than"),
                      ("0.0000001", "more than 6 decimals"), ("", "not an amount")]:
        with pytest.raises(report.ReportError, match=says):
            report.budget_request("acme", usd)
    with pytest.raises(report.ReportError, match="client is empty"):
        report.budget_request(" ", "5")
