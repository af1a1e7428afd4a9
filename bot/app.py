"""The application factory: wires the gate, every handler, error handling and jobs in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import time

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

import handlers
from bot import jobs
from bot.auth import describe, gate
from bot.context import RUNTIME_KEY, Context, reply, runtime
from bot.render import PARSE_MODE, esc
from handlers import HandlerFn, gateway, lore, sentinel
from handlers.start import QUICK_ACTION_PREFIX
from services.runtime import Runtime
from services.store import events

log = logging.getLogger(__name__)
ERROR_REPLY = "⚠️ Something went wrong while handling that. It has been logged; the bot keeps serving."


async def _record(update: Update, context: Context, outcome: str, detail: str | None = None) -> None:
    rt = runtime(context)
    kind, command, args = describe(update)
    chat, user = update.effective_chat, update.effective_user
    await asyncio.to_thread(
        events.record_event, rt.engine, kind=kind, command=command, outcome=outcome,
        chat_id=chat.id if chat else None, user_id=user.id if user else None,
        username=user.username if user else None, args=args, detail=detail)


def tracked(fn: HandlerFn) -> HandlerFn:
    """Record every handled update in events with its outcome; errors go on to the error handler."""

    async def wrapper(update: Update, context: Context) -> None:
        try:
            await fn(update, context)
        except Exception as exc:
            await _record(update, context, "error", f"{exc.__class__.__name__}: {exc}"[:500])
            raise
        await _record(update, context, "ok")

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    return wrapper


async def quick_action(update: Update, context: Context) -> None:
    """A quick-action button (`cmd:<name>`) runs that command as if it had been typed."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    cmd = handlers.find(query.data.removeprefix(QUICK_ACTION_PREFIX))
    if cmd is None:
        await reply(update, context, "That button is out of date. Send /help for the current commands.")
        return
    await cmd.callback(update, context)


async def stale_button(update: Update, context: Context) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer("This button is no longer active.")


async def unknown(update: Update, context: Context) -> None:
    msg = update.effective_message
    text = msg.text if msg and msg.text else ""
    if text.startswith("/"):
        await reply(update, context, f"Unknown command {esc(text.split()[0])}. Send /help for the list.")
    else:
        await reply(update, context, "I answer commands. Send /help for the list.")


async def on_error(update: object, context: Context) -> None:
    """Log the traceback, tell the user briefly, keep serving."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            await context.bot.send_message(update.effective_chat.id, ERROR_REPLY)
        except Exception:
            log.warning("could not report the error to chat %s", update.effective_chat.id, exc_info=True)


async def _post_init(app: Application) -> None:
    await app.bot.set_my_commands([BotCommand(c.name, c.description) for c in handlers.commands()])


def build_application(rt: Runtime, *, schedule: bool = True) -> Application:
    s = rt.settings
    if not s.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set; set it, or run `aistack demo` for the offline demo")
    app = (
        ApplicationBuilder()
        .token(s.telegram_bot_token)
        .base_url(s.bot_api_base())
        .base_file_url(s.bot_file_base())
        .defaults(Defaults(parse_mode=PARSE_MODE, tzinfo=s.zone,
                           link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .rate_limiter(AIORateLimiter(max_retries=0))
        .post_init(_post_init)
        .build()
    )
    app.bot_data[RUNTIME_KEY] = rt
    app.add_handler(TypeHandler(Update, gate), group=-1)
    for cmd in handlers.commands():
        app.add_handler(CommandHandler(cmd.name, tracked(cmd.callback)))
    app.add_handler(CallbackQueryHandler(tracked(quick_action), pattern=f"^{QUICK_ACTION_PREFIX}"))
    app.add_handler(CallbackQueryHandler(tracked(sentinel.decide), pattern=r"^sx:"))
    app.add_handler(CallbackQueryHandler(tracked(lore.on_button), pattern=f"^{lore.PREFIX}"))
    app.add_handler(CallbackQueryHandler(tracked(gateway.on_button), pattern=f"^{gateway.PREFIX}"))
    app.add_handler(CallbackQueryHandler(tracked(stale_button)))
    app.add_handler(MessageHandler(filters.ALL, tracked(unknown)))
    app.add_error_handler(on_error)
    if schedule and app.job_queue is not None:
        app.job_queue.run_repeating(jobs.outbox_job, interval=s.outbox_interval, first=0.5, name="outbox")
        at = time(s.digest_time.hour, s.digest_time.minute, tzinfo=s.zone)
        app.job_queue.run_daily(jobs.daily_digest, time=at, name="digest")
        lore_at = time(s.lore_import_time.hour, s.lore_import_time.minute, tzinfo=s.zone)
        app.job_queue.run_daily(jobs.daily_lore_import, time=lore_at, name="lore-import")
        if s.health_watch_interval > 0:
            # the first check soon after start, not a whole interval later (an hour, if that is the setting)
            app.job_queue.run_repeating(jobs.health_watch, interval=s.health_watch_interval,
                                        first=min(s.health_watch_interval, 10.0), name="health")
    return app


def run_bot(rt: Runtime) -> None:
    """Run against the configured Bot API server until Ctrl-C (polling)."""
    app = build_application(rt)
    log.info("bot polling %s for admin chats %s", rt.settings.telegram_base_url, rt.settings.admin_chat_id)
    app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)


@asynccontextmanager
async def serving(app: Application, *, poll_timeout: int = 10) -> AsyncIterator[Application]:
    """Run `app` (polling) inside the current event loop for the duration of the block: demo, tests."""
    async with app:
        if app.post_init is not None:  # run_polling() calls it; starting by hand must too
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()
