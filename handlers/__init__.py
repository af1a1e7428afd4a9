"""Command handlers, one module per command family, all listed in one registry.

A handler parses the update, calls a service, renders the answer. No domain logic, no SQL here.
`commands()` is the single list that the bot registers, `/help` prints and `setMyCommands` publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

HandlerFn = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    callback: HandlerFn
    button: str | None = None  # label when offered as a quick-action button under /start


def commands() -> list[Command]:
    from handlers import digest, gateway, health, lore, sentinel, start

    return [*start.COMMANDS, *digest.COMMANDS, *sentinel.COMMANDS, *lore.COMMANDS, *gateway.COMMANDS,
            *health.COMMANDS]


def find(name: str) -> Command | None:
    return next((c for c in commands() if c.name == name), None)
