"""Scheduled work inside the bot: outbox delivery every few seconds, the daily digest, the daily LORE import and
the host health watch."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from telegram.error import RetryAfter, TelegramError

from bot import wsl_audit
from bot.context import Context, runtime, send_html
from bot.render import digest_html, esc, keyboard
from services.digest import build_digest
from services.health import paths as health_paths
from services.health import thresholds as health_thresholds
from services.health import watch
from services.lore import report as lore_report
from services.runtime import Runtime
from services.sentinel import alerts, report, spool
from services.store import outbox

log = logging.getLogger(__name__)


async def deliver_outbox(context: Context) -> int:
    """Send every due outbox row to every admin chat; failures back off and wait in the table."""
    rt = runtime(context)
    admins = rt.settings.admin_chat_id
    if not admins:
        return 0
    delivered = 0
    for item in await asyncio.to_thread(outbox.due, rt.engine):
        text = item.text if item.format == "html" else esc(item.text)
        failed = False
        for chat_id in admins:
            if chat_id in item.delivered_to:
                continue
            try:
                sent = await send_html(context.bot, chat_id, text, item.buttons)
            except RetryAfter as exc:
                retry = exc.retry_after
                seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
                await asyncio.to_thread(outbox.mark_failed, rt.engine, item.id, str(exc), retry_after=seconds)
                failed = True
                break
            except TelegramError as exc:
                log.warning("outbox %s to chat %s failed: %s", item.id, chat_id, exc)
                await asyncio.to_thread(outbox.mark_failed, rt.engine, item.id, str(exc))
                failed = True
                break
            await asyncio.to_thread(outbox.mark_sent_to, rt.engine, item.id, chat_id,
                                    [m.message_id for m in sent])
        if not failed:
            await asyncio.to_thread(outbox.mark_delivered, rt.engine, item.id)
            await _catch_up(context, item)
            delivered += 1
    return delivered


async def _catch_up(context: Context, sent: outbox.OutboxItem) -> None:
    """The item changed while it was being sent (a repeat count, a decision): edit the copies just sent."""
    fresh = await asyncio.to_thread(outbox.get, runtime(context).engine, sent.id)
    if fresh is None or (fresh.text, fresh.buttons) == (sent.text, sent.buttons):
        return
    text = fresh.text if fresh.format == "html" else esc(fresh.text)
    for chat_id, ids in fresh.sent_refs.items():
        if ids:
            try:
                await context.bot.edit_message_text(text, chat_id=chat_id, message_id=ids[-1],
                                                    reply_markup=keyboard(fresh.buttons))
            except TelegramError as exc:  # e.g. identical content, or the admin deleted the message
                log.info("could not update outbox %s in chat %s: %s", sent.id, chat_id, exc)


async def ingest_sentinel_alerts(context: Context) -> int:
    """Move the hooks' spooled block alerts into the database and the outbox; update grouped messages."""
    from handlers.sentinel import refresh_alert_messages  # the Telegram side of an alert lives there

    rt = runtime(context)
    alerts_dir, _ = report.state_dirs(rt.settings)
    n = 0
    for path, record in await asyncio.to_thread(spool.pending_alerts, alerts_dir):
        ingested = await asyncio.to_thread(alerts.ingest, rt.engine, record)
        await asyncio.to_thread(spool.ack, path)
        if ingested.grouped:
            await refresh_alert_messages(context.bot, rt.engine, ingested.alert)
        n += 1
    return n


async def outbox_job(context: Context) -> None:
    try:
        await ingest_sentinel_alerts(context)
    except Exception:  # a bad spool file must not stop ordinary notifications
        log.exception("ingesting SENTINEL alerts failed")
    try:
        await deliver_outbox(context)
    except Exception:  # e.g. the database is briefly unavailable: try again next tick
        log.exception("outbox delivery round failed")


async def daily_digest(context: Context) -> None:
    """Queue the digest in the outbox, so a Telegram outage delays it instead of losing it."""
    rt = runtime(context)
    d = await asyncio.to_thread(build_digest, rt)
    await asyncio.to_thread(outbox.enqueue, rt.engine, digest_html(d, rt.settings.tz),
                            source="digest", format="html")
    await deliver_outbox(context)


async def daily_lore_import(context: Context) -> None:
    """Import new AI sessions into LORE (in a thread) and record the run; the digest reports it."""
    rt = runtime(context)
    try:
        summary = await asyncio.to_thread(lore_report.run_import, rt, "daily")
    except lore_report.ImportBusy:
        log.info("daily LORE import skipped: an import is already running")
        return
    log.info("daily LORE import: %s", "; ".join(lore_report.summary_lines(summary.to_dict())[:1]))


def health_tick(rt: Runtime, *, now: float | None = None) -> watch.TickResult | None:
    """One watch tick (checks, alert state, event log); alerts go into the outbox. None when the tick was skipped."""
    try:
        limits = health_thresholds.load()  # each tick: edits apply without a restart, and tomllib is cheap
    except health_thresholds.ThresholdsError as exc:
        log.error("health tick skipped: %s", exc)
        return None

    def notify(text: str) -> None:  # the outbox retries and reaches every admin chat, like any notification
        outbox.enqueue(rt.engine, text, source="health")

    return watch.tick(root=wsl_audit.root(), thresholds=limits, data_dir=health_paths.data_dir(),
                      now=time.time() if now is None else now, host=wsl_audit.host_name(), notify=notify,
                      docker_host=os.environ.get("DOCKER_HOST"))


async def health_watch(context: Context) -> None:
    """Every HEALTH_WATCH_INTERVAL seconds: a tick in a thread; a failing tick is logged and the next one runs."""
    rt = runtime(context)
    try:
        await asyncio.to_thread(health_tick, rt)
    except Exception:
        log.exception("health tick failed; the next one runs in %g s", rt.settings.health_watch_interval)
