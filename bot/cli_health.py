"""`aistack health …`: the same commands as `wsl-audit` (bot/wsl_audit.py), under the aistack CLI."""

from __future__ import annotations

from typing import Annotated

import typer

health_app = typer.Typer(help="Host health (wsl-audit): memory, swap, disk, .wslconfig, Docker, processes.",
                         invoke_without_command=True)


@health_app.callback()
def health(ctx: typer.Context,
           as_json: Annotated[bool, typer.Option("--json", help="JSON instead of the table.")] = False,
           explain: Annotated[bool, typer.Option("--explain", help="Print the thresholds in force.")] = False,
           config: Annotated[str | None, typer.Option(help="Thresholds file.")] = None) -> None:
    """Check now (no subcommand): exit 0 ok, 1 warn, 2 crit."""
    if ctx.invoked_subcommand is not None:
        return
    from bot import wsl_audit

    raise typer.Exit(wsl_audit.explain(config) if explain else wsl_audit.check(as_json, config))


def _parent(ctx: typer.Context, name: str) -> object:
    """`aistack health --json events` and `--config F watch`: the group's option, as wsl-audit takes it."""
    return ctx.parent.params.get(name) if ctx.parent is not None else None


@health_app.command("watch")
def watch(ctx: typer.Context,
          interval: Annotated[float, typer.Option(min=1, help="Seconds between checks.")] = 30.0,
          notify: Annotated[bool, typer.Option(help="Queue alerts for the admin chat.")] = True,
          config: Annotated[str | None, typer.Option(help="Thresholds file.")] = None) -> None:
    """Check every --interval seconds; alert once per condition (hysteresis, hourly repeat, resolved)."""
    from bot import wsl_audit

    parent_config = _parent(ctx, "config")
    raise typer.Exit(wsl_audit.watch(interval, config or (str(parent_config) if parent_config else None), notify))


@health_app.command("events")
def events(ctx: typer.Context,
           since: Annotated[str, typer.Option(help="90m, 24h, 7d, a UTC date or an ISO time.")] = "24h",
           level: Annotated[str | None, typer.Option(help="info, warn or crit: this level or worse.")] = None,
           check: Annotated[str | None, typer.Option(help="A check id or family (docker, memory.used).")] = None,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Query the event log (fired, repeated and resolved alerts; warn and crit observations)."""
    from bot import wsl_audit

    if level is not None and level not in ("info", "warn", "crit"):
        raise typer.BadParameter("use info, warn or crit", param_hint="--level")
    raise typer.Exit(wsl_audit.events_cmd(since, level, check, as_json or bool(_parent(ctx, "as_json"))))


@health_app.command("report")
def report(since: Annotated[str, typer.Option()] = "24h",
           notify: Annotated[bool, typer.Option(help="Also queue it for the admin chat.")] = False) -> None:
    """The worst states and counts of the last day."""
    from bot import wsl_audit

    raise typer.Exit(wsl_audit.report_cmd(since, notify))
