"""What every `aistack` command needs: settings, the runtime, and one way to fail (one line, exit code 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

from services.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from services.runtime import Runtime


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def runtime(s: Settings | None = None) -> Runtime:
    from services.runtime import bootstrap
    from services.store.db import DatabaseError

    try:
        return bootstrap(s or settings())
    except DatabaseError as exc:
        fail(str(exc))


def text_table(title: str, headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A plain aligned table (the first `left` columns left-aligned, the rest right-aligned).

    For reports that can run to hundreds of rows: rich renders those ~10× slower than the query that fills them.
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        cols = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in cols)

    rule = "  ".join("─" * w for w in widths)
    return "\n".join([title, line(headers), rule, *(line(r) for r in rows)])
