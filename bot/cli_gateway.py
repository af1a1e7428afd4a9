"""`aistack spend`, `aistack budget …` and `aistack gateway ask`: the gateway's money side and one call path.

Only `gateway ask` imports LiteLLM (~4 s); reports and budgets read the database alone.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from bot.cli_common import fail as _fail
from bot.cli_common import runtime as _runtime

budget_app = typer.Typer(help="Budgets per client (and tag), per day or month, enforced before each call.",
                         no_args_is_help=True)
gateway_app = typer.Typer(help="The model gateway: one call path for local and cloud models.", no_args_is_help=True)


def _day(value: str | None, tz: Any, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"{value!r} is not a date: use YYYY-MM-DD")
    if len(value) == 10:
        d = datetime.combine(d.date(), time(0), tz)
        if end:
            from datetime import timedelta

            d += timedelta(days=1)
    return d if d.tzinfo else d.replace(tzinfo=tz)


def spend(by: Annotated[str, typer.Option(help="client, model, day, tag or caller.")] = "client",
          client: Annotated[str | None, typer.Option(help="Only this client.")] = None,
          since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD, in TZ).")] = None,
          until: Annotated[str | None, typer.Option(help="Up to and including this date.")] = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          as_csv: Annotated[bool, typer.Option("--csv")] = False) -> None:
    """Spend from the gateway's ledger, grouped as asked."""
    from services.gateway import ledger

    rt = _runtime()
    tz = rt.settings.zone
    try:
        rows = ledger.report(rt.engine, by, client=client, since=_day(since, tz), until=_day(until, tz, end=True),
                             tz=tz)
    except ValueError as exc:
        _fail(str(exc))
    dicts = [_row(r) for r in rows]
    if as_json:
        sys.stdout.write(json.dumps({"by": by, "rows": dicts}, indent=2, default=str) + "\n")
        return
    if as_csv:
        w = csv.DictWriter(sys.stdout, fieldnames=list(dicts[0]) if dicts else ["group"])
        w.writeheader()
        w.writerows(dicts)
        return
    from services.text_table import fixed_width

    rows_out = [[str(d["group"]), f"{d['calls']:,}", f"{d['input_tokens'] or 0:,}", f"{d['output_tokens'] or 0:,}",
                 f"{Decimal(str(d['cost_usd'])):,.4f}", str(d["errors"]), str(d["refused"])] for d in dicts]
    typer.echo(f"spend by {by} ({tz})")
    typer.echo(fixed_width([by, "calls", "input", "output", "cost $", "errors", "refused"], rows_out, rule="─"))


def _row(r: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    d = asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r)
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in d.items()}


@budget_app.command("set")
def budget_set(client: str, usd: str,
               period: Annotated[str, typer.Option(help="day or month.")] = "month",
               tag: Annotated[str | None, typer.Option(help="Only calls with this tag.")] = None) -> None:
    """Set CLIENT's budget to USD per period; calls that could exceed it are refused before they are sent."""
    from services.gateway import budgets

    try:
        amount = Decimal(usd.lstrip("$"))
    except InvalidOperation:
        _fail(f"{usd!r} is not an amount in USD (e.g. 50 or 12.5)")
    if amount < 0 or not amount.is_finite():
        _fail("a budget must be a positive amount of USD")
    if period not in budgets.PERIODS:
        _fail(f"period must be one of {', '.join(budgets.PERIODS)}")
    rt = _runtime()
    try:
        b = budgets.set_budget(rt.engine, client, amount, period=period, tag=tag)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"budget for {b.client}{f' [{b.tag}]' if b.tag else ''}: ${b.usd} per {b.period}")


@budget_app.command("show")
def budget_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every budget with what is spent and reserved in its current period."""
    from services.gateway import budgets

    rt = _runtime()
    rows = budgets.status(rt.engine, tz=rt.settings.zone)
    if as_json:
        sys.stdout.write(json.dumps([_row(r) for r in rows], indent=2, default=str) + "\n")
        return
    if not rows:
        typer.echo("no budgets: set one with `aistack budget set CLIENT USD --period month`")
        return
    for st in rows:
        b = st.budget
        typer.echo(f"{b.client}{f' [{b.tag}]' if b.tag else ''}: ${st.spent:.4f} spent + ${st.reserved:.4f} reserved "
                   f"of ${b.usd} per {b.period} ({st.percent:.0f} %), resets {st.resets_at:%Y-%m-%d %H:%M %Z}")


@budget_app.command("remove")
def budget_remove(client: str, period: Annotated[str, typer.Option()] = "month",
                  tag: Annotated[str | None, typer.Option()] = None) -> None:
    """Remove a budget (calls are then no longer limited by it)."""
    from services.gateway import budgets

    rt = _runtime()
    if not budgets.remove_budget(rt.engine, client, period=period, tag=tag):
        _fail(f"no {period} budget for {client}{f' [{tag}]' if tag else ''}")
    typer.echo("removed")


@gateway_app.command("ask")
def ask(client: str, prompt: str, model: Annotated[str, typer.Option(help="A model_name from the config.")] = "local",
        max_tokens: Annotated[int, typer.Option(min=1)] = 512,
        tag: Annotated[list[str] | None, typer.Option(help="Tags for the ledger; repeatable.")] = None) -> None:
    """Send one prompt through the gateway as CLIENT (budgeted, logged) and print the answer and its cost."""
    from services.gateway import budgets
    from services.gateway.router import GatewayConfigError
    from services.gateway.service import Gateway, GatewayError

    rt = _runtime()
    try:
        gw = Gateway(rt.settings, rt.engine)
        r = gw.complete(client, [{"role": "user", "content": prompt}], model=model, max_tokens=max_tokens,
                        tags=tag or [], caller="cli")
    except (GatewayConfigError, GatewayError, budgets.BudgetExceeded) as exc:
        _fail(str(exc))
    typer.echo(r.text)
    cost = "unknown" if r.cost_usd is None else f"${r.cost_usd:.6f}"
    typer.echo(f"[{r.model_used}, {r.input_tokens} in / {r.output_tokens} out, {cost}, {r.latency_ms:.0f} ms]",
               err=True)


@gateway_app.command("serve")
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535)] = 4000,
          config: Annotated[str | None, typer.Option(help="Gateway config (default GATEWAY_CONFIG).")] = None) -> None:
    """Run the real LiteLLM proxy with our budgets and ledger (for apps that need an HTTP endpoint)."""
    import os
    from pathlib import Path

    from bot.cli_common import settings as _settings
    from services.gateway import proxy

    settings = _settings()
    try:
        argv, env, where = proxy.prepare(settings, Path(config) if config else None, host, port)
    except proxy.ProxyError as exc:
        _fail(str(exc))
    runtime = _runtime(settings)  # migrate the ledger's database before the proxy's first call needs it
    runtime.engine.dispose()
    typer.echo(f"LiteLLM proxy on http://{host}:{port} (OpenAI /v1/chat/completions, Anthropic /v1/messages); "
               f"clients authenticate with the master key from {where}", err=True)
    os.execve(argv[0], argv, env)
