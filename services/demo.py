"""Demo data for the offline demo: a believable day of bot activity in a throwaway home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from services.store import events, outbox

DEMO_CHAT = 100001
STRANGER = 666


def seed(engine: Engine, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for hours_ago, command in [(20, "start"), (9, "digest"), (7, "help"), (2, "digest")]:
        events.record_event(engine, kind="command", command=command, outcome="ok", chat_id=DEMO_CHAT,
                            user_id=DEMO_CHAT, username="you", at=now - timedelta(hours=hours_ago))
    events.record_event(engine, kind="command", command="help", outcome="refused", chat_id=STRANGER,
                        user_id=STRANGER, username="curious_stranger", detail="not an admin chat",
                        at=now - timedelta(hours=5))
    outbox.enqueue(engine, "👋 Welcome to the aistack demo. This message came through the outbox, the same way "
                   "hooks and cron jobs reach you. Try /help, /digest, or press a button by its number.",
                   source="demo")
