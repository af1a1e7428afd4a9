"""`aistack lore …`: import AI sessions into the per-client archive, and search, show and account them."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli_common import fail as _fail
from bot.cli_common import settings as _settings

lore_app = typer.Typer(help="LORE: archive every AI session per client; search it; account tokens and cost.",
                       no_args_is_help=True)
prices_app = typer.Typer(help="The pinned model price table.", no_args_is_help=True)
lore_app.add_typer(prices_app, name="prices")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ClientOpt = Annotated[str | None, typer.Option("--client", help="Only this client.")]
AllOpt = Annotated[bool, typer.Option("--all-clients", help="Every client (you are the owner of all of them).")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _clients(client: str | None, all_clients: bool) -> list[str]:
    from services.lore import service
    from services.lore.clients import ClientsError, check_name

    s = _settings()
    try:
        names = service.client_names(s)
        if client and all_clients:
            _fail("give --client NAME or --all-clients, not both")
        if client:
            return [check_name(client)]
        if all_clients:
            return names
    except ClientsError as exc:
        _fail(str(exc))
    _fail(f"name the client to search with --client NAME (one of: {', '.join(names)}) or use --all-clients")


@lore_app.command("import")
def import_(chatgpt: Annotated[list[Path] | None, typer.Option("--chatgpt", help="A ChatGPT export (zip or "
                                                                "conversations.json); repeatable.")] = None,
            gemini: Annotated[list[Path] | None, typer.Option("--gemini", help="A Google Takeout Gemini "
                                                               "export (zip or MyActivity.json); repeatable.")] = None,
            client: Annotated[str | None, typer.Option("--client", help="Client for these exports (they carry "
                                                       "no working directory to match rules against).")] = None,
            platform: Annotated[list[str] | None, typer.Option("--platform", help="Only these home folders: "
                                                               "claude_code, codex.")] = None,
            as_json: JsonOpt = False) -> None:
    """Import Claude Code and Codex sessions from their home folders, plus any exports given or in the inbox."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.lore import service
    from services.lore.clients import ClientsError

    s = _settings()
    exports = [("chatgpt", p) for p in chatgpt or []] + [("gemini", p) for p in gemini or []]
    for _, p in exports:
        if not p.exists():
            _fail(f"{p}: no such file")
    quiet = as_json or not sys.stderr.isatty()
    try:
        if quiet:
            summary = service.import_all(s, exports, client=client, platforms=platform)
        else:
            with Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          transient=True) as bar:
                task = bar.add_task("import", total=None)

                def progress(done: int, total: int, what: str) -> None:
                    bar.update(task, completed=done, total=total)

                summary = service.import_all(s, exports, client=client, platforms=platform, progress=progress)
    except ClientsError as exc:
        _fail(str(exc))
    _record(s, summary)
    if as_json:
        _print_json(summary.to_dict())
    else:
        added, updated = sum(summary.added.values()), sum(summary.updated.values())
        typer.echo(f"{added} added, {updated} updated, {summary.unchanged + summary.skipped_units} unchanged "
                   f"({summary.units} sources, {summary.bytes_read / 1e6:.1f} MB read in {summary.seconds:.1f} s)")
        for c in sorted(set(summary.added) | set(summary.updated)):
            typer.echo(f"  {c}: {summary.added[c]} added, {summary.updated[c]} updated")
        if summary.bad_lines:
            typer.echo(f"{len(summary.bad_lines)} malformed line(s) skipped:")
            for b in summary.bad_lines[:20]:
                typer.echo(f"  {b}")
            if len(summary.bad_lines) > 20:
                typer.echo(f"  … and {len(summary.bad_lines) - 20} more (--json lists all)")
        if summary.replaced_utf8:
            typer.echo(f"{summary.replaced_utf8} line(s) had invalid UTF-8 (replaced with U+FFFD)")
    for e in summary.errors:
        typer.echo(f"error: {e}", err=True)
    if summary.errors:
        raise typer.Exit(1)


def _record(s: Any, summary: Any) -> None:
    """The run goes into the database too, so the daily digest counts what the CLI archived."""
    from services.lore import report
    from services.runtime import bootstrap
    from services.store.db import DatabaseError

    try:
        rt = bootstrap(s)
        report.record_run(rt.engine, summary, "cli")
        rt.engine.dispose()
    except DatabaseError as exc:
        typer.echo(f"warning: the run was not recorded for the digest ({exc})", err=True)


@lore_app.command("usage")
def usage(by: Annotated[str, typer.Option("--by", help="session, day, month, model, client or project.")] = "day",
          since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD, local to --tz).")] = None,
          until: Annotated[str | None, typer.Option(help="Up to and including this date.")] = None,
          tz: Annotated[str | None, typer.Option(help="Time zone for days and months (default TZ).")] = None,
          client: ClientOpt = None, as_json: JsonOpt = False) -> None:
    """Tokens and cost over the archive, grouped as asked."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from services.lore import service
    from services.lore import usage as usage_mod

    s = _settings()
    try:
        zone = ZoneInfo(tz) if tz else s.zone
    except (ZoneInfoNotFoundError, ValueError):
        _fail(f"unknown time zone {tz!r}; use an IANA name such as Europe/Berlin")
    conn = service.connect(s)
    try:
        rows = usage_mod.report(conn, by, [client] if client else None, since, until, zone)
    except usage_mod.UsageError as exc:
        _fail(str(exc))
    finally:
        conn.close()
    tot = usage_mod.total(rows)
    if as_json:
        _print_json({"by": by, "tz": str(zone), "rows": [r.to_dict() for r in rows], "total": tot.to_dict()})
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"usage by {by} ({zone})")
    for col in (by, "input", "output", "cache write", "cache read", "total", "cost $"):
        t.add_column(col, justify="left" if col == by else "right")
    for r in [*rows, tot]:
        name = r.group if not r.label else f"{r.label[:40]} ({r.group.split(':')[-1][:8]})"
        cost = f"{r.cost_usd:,.4f}" + ("*" if r.unpriced_calls else "")
        t.add_row(name, f"{r.input_tokens:,}", f"{r.output_tokens:,}", f"{r.cache_creation_input_tokens:,}",
                  f"{r.cache_read_input_tokens:,}", f"{r.total_tokens:,}", cost)
    Console().print(t)
    if tot.unpriced_calls:
        typer.echo(f"* {tot.unpriced_calls} call(s) of models without a price are not in the cost")


@lore_app.command("search")
def search(query: Annotated[str, typer.Argument(help="Words, \"a phrase\", or identifiers and paths.")],
           client: ClientOpt = None, all_clients: AllOpt = False,
           platform: Annotated[str | None, typer.Option(help="claude_code, codex, chatgpt, gemini.")] = None,
           state: Annotated[str | None, typer.Option(help="hypothesis, codified, validated, promoted.")] = None,
           since: Annotated[str | None, typer.Option(help="Sessions started on or after (YYYY-MM-DD).")] = None,
           until: Annotated[str | None, typer.Option(help="Sessions started before (YYYY-MM-DD).")] = None,
           model: Annotated[str | None, typer.Option(help="Sessions that used this model.")] = None,
           limit: Annotated[int, typer.Option(min=1, max=200)] = 10, as_json: JsonOpt = False) -> None:
    """Search the archive; results are grouped by session, best first."""
    from services.lore import search as search_mod
    from services.lore import service

    names = _clients(client, all_clients)
    s = _settings()
    conn = service.connect(s)
    try:
        hits = search_mod.search(conn, query, names, search_mod.Filters(platform, state, since, until, model), limit)
    except search_mod.SearchError as exc:
        _fail(str(exc))
    finally:
        conn.close()
    if as_json:
        _print_json([h.to_dict() for h in hits])
        return
    if not hits:
        typer.echo("no matches")
        return
    for h in hits:
        typer.echo(f"{h.key}  [{h.client}] {h.started or ''}  {h.title or ''}")
        if h.snippet:
            typer.echo(f"    {h.snippet}")


@lore_app.command("show")
def show(key: Annotated[str, typer.Argument(help="Session key (platform:id) or the start of its id.")],
         yaml_: Annotated[bool, typer.Option("--yaml", help="Print the archived YAML itself.")] = False) -> None:
    """Print a session readably (Markdown)."""
    from services.lore import service

    try:
        f = service.find(_settings(), key)
    except service.LoreError as exc:
        _fail(str(exc))
    sys.stdout.write(f.path.read_text(encoding="utf-8") if yaml_ else service.markdown(f.doc) + "\n")


@lore_app.command("promote")
def promote(key: str, to: Annotated[str, typer.Option("--to", help="codified, validated or promoted.")],
            by: Annotated[str | None, typer.Option(help="Who decides (default: your login).")] = None) -> None:
    """Move a session's knowledge state; recorded with who and when, as a commit."""
    from services.lore import service

    try:
        k = service.promote(_settings(), key, to, by or getpass.getuser())
    except service.LoreError as exc:
        _fail(str(exc))
    typer.echo(f"{key}: {k['history'][-1].get('from')} → {k['state']}")


@lore_app.command("reindex")
def reindex() -> None:
    """Rebuild the search and usage index from the archived YAML files."""
    from services.lore import service

    n = service.reindex(_settings())
    typer.echo(f"reindexed {n} session(s)")


@lore_app.command("export-index")
def export_index(out: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")]
                 = None) -> None:
    """Write this machine's session index (JSON) for `merge-index` on another machine."""
    from services.lore import service

    data = service.export_index(_settings())
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(data['sessions'])} session(s) → {out}")
    else:
        sys.stdout.write(text)


@lore_app.command("merge-index")
def merge_index(files: list[Path],
                out: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")]
                = None) -> None:
    """Merge session indexes from several machines into one."""
    from services.lore import service

    docs = []
    for f in files:
        try:
            docs.append(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            _fail(f"{f}: not a readable JSON index ({exc})")
    try:
        merged = service.merge_index(docs)
    except service.LoreError as exc:
        _fail(str(exc))
    text = json.dumps(merged, ensure_ascii=False, indent=1) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(merged['sessions'])} session(s) from {len(docs)} machine(s) → {out}")
    else:
        sys.stdout.write(text)


@lore_app.command("clients")
def clients_cmd() -> None:
    """The clients and the rules that assign sessions to them ($LORE_ROOT/clients.yaml)."""
    from services.lore import service
    from services.lore.clients import ClientsError

    try:
        c = service.clients(_settings())
    except ClientsError as exc:
        _fail(str(exc))
    typer.echo(f"default: {c.default}")
    for name, cl in sorted(c.clients.items()):
        typer.echo(f"{name}: paths {list(cl.paths)} remotes {list(cl.remotes)} ({cl.access_level}, "
                   f"{cl.data_classification})")


@prices_app.command("update")
def prices_update(source: Annotated[Path | None, typer.Option("--from", help="A LiteLLM-format price JSON "
                                                               "(default: the installed litellm's bundled copy).")]
                  = None,
                  table: Annotated[Path | None, typer.Option("--table", help="The table to write (default: the "
                                                             "pinned services/lore/prices.json).")] = None) -> None:
    """Refresh the pinned price table from a LiteLLM price file, offline. Review the diff, then commit it."""
    from services.lore import pricing

    try:
        report = pricing.update_prices(source, table or pricing.DEFAULT_TABLE)
    except (OSError, ValueError) as exc:
        _fail(f"cannot update prices: {exc}")
    typer.echo(str(report))
