"""The outbox: messages for the admin chats, written by anyone (CLI, hooks, cron), sent only by the bot.

The bot polls `due()`, sends each item to every admin chat not yet in `delivered_to`
(`mark_sent_to` after each chat, so a partial failure never resends), then `mark_delivered`,
or `mark_failed` to retry later with exponential back-off.

Writing without this package (e.g. a stdlib-only git hook), with Python's sqlite3:

    conn = sqlite3.connect(path, timeout=5)  # timeout: wait for the bot's write lock, don't fail
    with conn:
        conn.execute(
            "INSERT INTO outbox(created_at, source, text, format, status, attempts, next_attempt_at,"
            " delivered_to) VALUES (datetime('now'), 'hook', ?, 'text', 'pending', 0, datetime('now'), '[]')",
            (message,),
        )

Every column but `source` and `text` has a database default, so
`INSERT INTO outbox(source, text) VALUES ('hook', ?)` is equivalent. Rules for such writers:
timestamps are UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (what `datetime('now')` gives; never an
ISO 'T' or a '+00:00' suffix, which would sort wrongly); `format` is 'text' (the bot escapes it)
or 'html' (sent as Telegram HTML, so escape `<`, `>`, `&` yourself); `buttons`, when set, is JSON
`[[["label", "callback_data"], …], …]` (one inner list per keyboard row).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from services.store.db import transaction
from services.store.models import OUTBOX_FORMATS, OutboxMessage
from services.store.types import as_utc, utc_now

MAX_ATTEMPTS = 50
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
CALLBACK_DATA_MAX_BYTES = 64  # Telegram's limit for callback_data
ERROR_MAX_CHARS = 1000

Buttons = list[list[tuple[str, str]]]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    text: str
    format: str  # text (bot escapes) | html
    buttons: Buttons | None  # keyboard rows of (label, callback_data)
    attempts: int
    delivered_to: frozenset[int]  # admin chats that already got it
    created_at: datetime
    source: str
    status: str  # pending | delivered | dead
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    dedupe_key: str | None
    sent_refs: dict[int, tuple[int, ...]]  # chat id → message ids it got (for later edits)


def _validate_buttons(buttons: Sequence[Sequence[Sequence[str]]]) -> Buttons:
    rows: Buttons = []
    for row in buttons:
        if isinstance(row, str) or not isinstance(row, Sequence):
            raise ValueError("outbox buttons must be rows (lists) of [label, callback_data] pairs")
        parsed_row: list[tuple[str, str]] = []
        for button in row:
            if isinstance(button, str) or len(button) != 2 or not all(isinstance(s, str) for s in button):
                raise ValueError(f"outbox button {button!r} must be a [label, callback_data] pair of strings")
            label, data = button
            if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
                raise ValueError(
                    f"callback_data {data!r} is longer than Telegram's {CALLBACK_DATA_MAX_BYTES} bytes; "
                    "shorten it"
                )
            parsed_row.append((label, data))
        rows.append(parsed_row)
    return rows


def _parse_buttons(raw: str | None) -> Buttons | None:
    if not raw:
        return None
    return [[(str(label), str(data)) for label, data in row] for row in json.loads(raw)]


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        text=row.text,
        format=row.format,
        buttons=_parse_buttons(row.buttons),
        attempts=row.attempts,
        delivered_to=frozenset(int(c) for c in json.loads(row.delivered_to or "[]")),
        created_at=row.created_at,
        source=row.source,
        status=row.status,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        dedupe_key=row.dedupe_key,
        sent_refs={int(c): tuple(ids) for c, ids in json.loads(row.sent_refs or "{}").items()},
    )


def enqueue(
    engine: Engine,
    text: str,
    *,
    source: str = "cli",
    format: str = "text",
    buttons: Sequence[Sequence[Sequence[str]]] | None = None,
    dedupe_key: str | None = None,
    dedupe_window: timedelta | None = None,
    now: datetime | None = None,
) -> int | None:
    """Queue a message; return its id, or None when `dedupe_key` was queued within `dedupe_window`."""
    if not text.strip():
        raise ValueError("outbox text is empty; Telegram refuses empty messages, pass some text")
    if format not in OUTBOX_FORMATS:
        raise ValueError(f"outbox format {format!r} is not one of {', '.join(OUTBOX_FORMATS)}")
    buttons_json = json.dumps(_validate_buttons(buttons)) if buttons else None
    now = as_utc(now) if now is not None else utc_now()
    with transaction(engine, write=True) as conn:
        if dedupe_key is not None and dedupe_window is not None:
            if conn.dialect.name == "postgresql":
                # Two writers with the same key must not both see "nothing yet" and both insert.
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(dedupe_key))))
            recent = conn.execute(
                select(OutboxMessage.id)
                .where(OutboxMessage.dedupe_key == dedupe_key, OutboxMessage.created_at > now - dedupe_window)
                .limit(1)
            ).first()
            if recent is not None:
                return None
        result = conn.execute(
            insert(OutboxMessage).values(
                created_at=now, source=source[:32], text=text, format=format, buttons=buttons_json,
                dedupe_key=dedupe_key, status="pending", attempts=0, next_attempt_at=now, delivered_to="[]",
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def due(engine: Engine, *, now: datetime | None = None, limit: int = 20) -> list[OutboxItem]:
    """Pending items whose next attempt time has come, oldest first."""
    now = as_utc(now) if now is not None else utc_now()
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    with transaction(engine) as conn:
        return [_item(row) for row in conn.execute(query)]


def get(engine: Engine, item_id: int) -> OutboxItem | None:
    with transaction(engine) as conn:
        row = conn.execute(select(OutboxMessage).where(OutboxMessage.id == item_id)).first()
    return _item(row) if row is not None else None


def pending_count(engine: Engine) -> int:
    with transaction(engine) as conn:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        return int(conn.execute(query).scalar_one())


def _locked_row(conn: Connection, item_id: int) -> Any:
    row = conn.execute(select(OutboxMessage).where(OutboxMessage.id == item_id).with_for_update()).first()
    if row is None:
        raise LookupError(f"outbox item {item_id} does not exist; it may have been purged")
    return row


def mark_sent_to(engine: Engine, item_id: int, chat_id: int, message_ids: Sequence[int] = ()) -> None:
    """Remember that `chat_id` got the item (as `message_ids`), so a retry skips it and edits can find it."""
    with transaction(engine, write=True) as conn:
        row = _locked_row(conn, item_id)
        chats = set(json.loads(row.delivered_to or "[]"))
        if chat_id in chats:
            return
        chats.add(chat_id)
        refs = json.loads(row.sent_refs or "{}")
        refs[str(chat_id)] = list(message_ids)
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == item_id)
            .values(delivered_to=json.dumps(sorted(chats)), sent_refs=json.dumps(refs))
        )


def set_content(engine: Engine, item_id: int, text: str,
                buttons: Sequence[Sequence[Sequence[str]]] | None = None) -> None:
    """Replace an item's text and buttons (a grouped alert's count, a decision); sent copies get edited."""
    if not text.strip():
        raise ValueError("outbox text is empty; Telegram refuses empty messages, pass some text")
    buttons_json = json.dumps(_validate_buttons(buttons)) if buttons else None
    with transaction(engine, write=True) as conn:
        _locked_row(conn, item_id)
        conn.execute(update(OutboxMessage).where(OutboxMessage.id == item_id)
                     .values(text=text, buttons=buttons_json))


def mark_delivered(engine: Engine, item_id: int, now: datetime | None = None) -> None:
    """The item reached every chat it was for: never send it again."""
    now = as_utc(now) if now is not None else utc_now()
    with transaction(engine, write=True) as conn:
        result = conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == item_id)
            .values(status="delivered", delivered_at=now, last_error=None)
        )
        if result.rowcount == 0:
            raise LookupError(f"outbox item {item_id} does not exist; it may have been purged")


def backoff_seconds(attempts: int) -> float:
    """Delay after the `attempts`-th failure: 2 s, 4 s, 8 s, … capped at 5 minutes."""
    return min(BACKOFF_BASE_SECONDS ** max(attempts, 1), BACKOFF_CAP_SECONDS)


def mark_failed(
    engine: Engine,
    item_id: int,
    error: str,
    *,
    now: datetime | None = None,
    retry_after: float | None = None,
) -> datetime:
    """Count a failed send and schedule the next try (Telegram's `retry_after` wins over back-off).

    After MAX_ATTEMPTS failures the item becomes `dead` and is never due again. Returns the next
    attempt time (meaningless once dead).
    """
    now = as_utc(now) if now is not None else utc_now()
    with transaction(engine, write=True) as conn:
        row = _locked_row(conn, item_id)
        attempts = row.attempts + 1
        delay = retry_after if retry_after is not None else backoff_seconds(attempts)
        next_at = now + timedelta(seconds=max(delay, 0.0))
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == item_id)
            .values(
                attempts=attempts,
                next_attempt_at=next_at,
                last_error=error[:ERROR_MAX_CHARS],
                status="dead" if attempts >= MAX_ATTEMPTS else row.status,
            )
        )
    return next_at
