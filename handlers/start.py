"""/start and /help: who the bot is and what it can do."""

from __future__ import annotations

from telegram import Update

from bot.context import Context, reply
from bot.render import esc
from handlers import Command, commands

QUICK_ACTION_PREFIX = "cmd:"


def quick_buttons() -> list[list[tuple[str, str]]]:
    row = [(c.button, QUICK_ACTION_PREFIX + c.name) for c in commands() if c.button]
    return [row[i:i + 3] for i in range(0, len(row), 3)]


async def start(update: Update, context: Context) -> None:
    name = update.effective_user.first_name if update.effective_user else "there"
    text = (f"👋 Hello, {esc(name)}. I run your AI stack: spend, archives, agent safety and machine health.\n"
            "Send /help for every command, or tap a button.")
    await reply(update, context, text, quick_buttons())


def help_text() -> str:
    lines = ["<b>Commands</b>"]
    lines += [f"/{c.name} — {esc(c.description)}" for c in commands()]
    return "\n".join(lines)


async def help_(update: Update, context: Context) -> None:
    await reply(update, context, help_text(), quick_buttons())


COMMANDS = [
    Command("start", "Greeting and quick actions", start),
    Command("help", "List every command", help_, button="❓ Help"),
]
