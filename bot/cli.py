"""`aistack`: the command line beside the bot. Heavy imports (telegram, alembic) stay inside commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from bot.cli_common import fail as _fail
from bot.cli_common import runtime as _runtime
from bot.cli_common import settings as _settings

app = typer.Typer(help="rtgf-ai-stack: run the AI stack from Telegram and the terminal.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema: upgrade, show the revision.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _add_groups() -> None:
    from bot.cli_gateway import budget_app, gateway_app, spend
    from bot.cli_health import PASS_THROUGH, health
    from bot.cli_lore import lore_app
    from bot.cli_sentinel import hooks_app, sentinel_app

    app.add_typer(hooks_app, name="hooks")
    app.add_typer(sentinel_app, name="sentinel")
    app.add_typer(lore_app, name="lore")
    app.add_typer(budget_app, name="budget")
    app.add_typer(gateway_app, name="gateway")
    app.command("health", context_settings=PASS_THROUGH)(health)
    app.command("spend")(spend)


@app.command()
def run() -> None:
    """Main job: the bot when TELEGRAM_BOT_TOKEN is set, else the offline demo."""
    settings = _settings()
    if settings.telegram_bot_token:
        bot()
    else:
        typer.echo("TELEGRAM_BOT_TOKEN is not set: starting the offline demo (set it in .env for the real bot).",
                   err=True)
        demo()


@app.command()
def bot() -> None:
    """Run the Telegram bot (polling) against TELEGRAM_BASE_URL."""
    settings = _settings()
    if not settings.telegram_bot_token:
        _fail("TELEGRAM_BOT_TOKEN is not set; put it in .env, or run `aistack demo` for the offline demo")
    if not settings.admin_chat_id:
        _fail("ADMIN_CHAT_ID is not set: the bot would refuse everyone; set it to your chat id")
    from bot.app import run_bot
    from bot.logs import setup_logging

    rt = _runtime(settings)
    setup_logging(settings.aistack_home)
    run_bot(rt)


@app.command()
def demo(keep: Annotated[bool, typer.Option(help="Keep the temporary home afterwards.")] = False) -> None:
    """Offline demo: local Bot API emulator + the real bot + a chat in this terminal."""
    import asyncio  # here, not at the top: asyncio costs ~60 ms that every other command would pay
    import contextlib

    from bot.demo import run_demo

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(keep=keep))


@app.command()
def doctor() -> None:
    """Check settings, database, Bot API, Claude and Codex folders; print what to fix."""
    from rich.console import Console
    from rich.table import Table

    from services.doctor import run_checks

    checks = run_checks(_settings())
    table = Table("check", "status", "detail", "fix")
    style = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail, c.fix)
    Console().print(table)
    raise typer.Exit(1 if any(c.status == "fail" for c in checks) else 0)


@app.command()
def notify(text: Annotated[str, typer.Argument(help="Message for the admin chat(s); '-' reads stdin.")],
           source: Annotated[str, typer.Option(help="Who is notifying (shown in logs).")] = "cli") -> None:
    """Queue a notification for the admin chat(s); the bot delivers it within seconds."""
    from services.store import outbox

    body = sys.stdin.read() if text == "-" else text
    if not body.strip():
        _fail("nothing to send: the text is empty")
    rt = _runtime()
    item_id = outbox.enqueue(rt.engine, body, source=source)
    typer.echo(f"queued notification #{item_id}")


@app.command()
def digest() -> None:
    """Print the digest the bot would send now."""
    from services.digest import build_digest

    d = build_digest(_runtime())
    for s in d.sections:
        typer.echo(s.title)
        for line in s.lines:
            typer.echo(f"  {line}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (the bot also does this at start)."""
    from services.store import db

    rt = _runtime()
    typer.echo(f"database at revision {db.current_revision(rt.settings.db_url)}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the code's head."""
    from services.store import db

    s = _settings()
    try:
        typer.echo(f"current: {db.current_revision(s.db_url) or 'empty'}  head: {db.head_revision()}")
    except db.DatabaseError as exc:
        _fail(str(exc))


def main() -> None:
    from bot.fast_exit import run_and_exit

    run_and_exit(app)


_add_groups()


if __name__ == "__main__":
    main()
