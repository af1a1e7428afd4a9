"""`aistack health …`: wsl-audit (bot/wsl_audit.py) under the aistack CLI, with the very same arguments.

The arguments go straight to wsl-audit's own parser, so both commands accept, refuse and exit alike (0 ok, 1 warn,
2 crit, 3 bad usage); `aistack health --help` is wsl-audit's help.
"""

from __future__ import annotations

import typer

# typer/click must not parse (or answer --help for) what belongs to wsl-audit's parser
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def health(ctx: typer.Context) -> None:
    """Host health (wsl-audit): check now, watch, events, report; `aistack health --help` for the options."""
    from bot import wsl_audit

    raise typer.Exit(wsl_audit.main(ctx.args, prog="aistack health"))
