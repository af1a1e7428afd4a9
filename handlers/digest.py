"""/digest: the daily digest, now."""

from __future__ import annotations

import asyncio

from telegram import Update

from bot.context import Context, reply, runtime
from bot.render import digest_html
from handlers import Command
from services.digest import build_digest


async def digest(update: Update, context: Context) -> None:
    rt = runtime(context)
    d = await asyncio.to_thread(build_digest, rt)
    await reply(update, context, digest_html(d, rt.settings.tz))


COMMANDS = [Command("digest", "Send the daily digest now", digest, button="📋 Digest")]
