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

