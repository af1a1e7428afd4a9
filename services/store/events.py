"""The audit trail: one row per command, button press or message the bot handled, and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, insert, select

from services.store.db import transaction
from services.store.models import OUTCOMES, Event
from services.store.types import as_utc, utc_now


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    at: datetime
    kind: str
    command: str
    outcome: str
    chat_id: int | None
    user_id: int | None
    username: str | None
    args: str | None
    detail: str | None


def _clip(value: str | None, limit: int) -> str | None:
    # An audit row must never fail the handler because a user typed something long.
    return value[:limit] if value is not None else None


def record_event(
    engine: Engine,
    *,
    kind: str,
    command: str,
    outcome: str,
    chat_id: int | None = None,
    user_id: int | None = None,
    username: str | None = None,
    args: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> int:
    """Store one event and return its id. `outcome` is one of ok, error, refused."""
    if outcome not in OUTCOMES:
        raise ValueError(f"event outcome {outcome!r} is not one of {', '.join(OUTCOMES)}; pick one of those")
    values = {
        "at": as_utc(at) if at is not None else utc_now(),
        "kind": _clip(kind, 32),
        "command": _clip(command, 64),
        "outcome": outcome,
        "chat_id": chat_id,
        "user_id": user_id,
        "username": _clip(username, 64),
        "args": args,
        "detail": detail,
    }
    with transaction(engine, write=True) as conn:
        result = conn.execute(insert(Event).values(**values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def count_by_outcome(engine: Engine, since: datetime) -> dict[str, int]:
    """{outcome: count} of events at or after `since`."""
    query = select(Event.outcome, func.count()).where(Event.at >= since).group_by(Event.outcome)
    with transaction(engine) as conn:
        return {outcome: int(n) for outcome, n in conn.execute(query)}


def count_commands(engine: Engine, since: datetime) -> list[tuple[str, int]]:
    """(command, times served) since `since`, busiest first; refused requests are not "served"."""
    n = func.count().label("n")
    query = (
        select(Event.command, n)
        .where(Event.at >= since, Event.outcome.in_(("ok", "error")))
        .group_by(Event.command)
        .order_by(n.desc(), Event.command)
    )
    with transaction(engine) as conn:
        return [(command, int(count)) for command, count in conn.execute(query)]


def recent_events(engine: Engine, limit: int = 20, outcome: str | None = None) -> list[EventRow]:
    """The newest events first, optionally only those with `outcome`."""
    query = select(Event).order_by(Event.at.desc(), Event.id.desc()).limit(limit)
    if outcome is not None:
        query = query.where(Event.outcome == outcome)
    with transaction(engine) as conn:
        rows = conn.execute(query).mappings().all()
    return [
        EventRow(
            id=r["id"], at=r["at"], kind=r["kind"], command=r["command"], outcome=r["outcome"],
            chat_id=r["chat_id"], user_id=r["user_id"], username=r["username"], args=r["args"],
            detail=r["detail"],
        )
        for r in rows
    ]


def refused_users(engine: Engine, since: datetime) -> list[tuple[int | None, str | None, int]]:
    """(user_id, a username seen, refusals) for strangers refused since `since`, most persistent first."""
    n = func.count().label("n")
    query = (
        select(Event.user_id, func.max(Event.username), n)
        .where(Event.at >= since, Event.outcome == "refused")
        .group_by(Event.user_id)
        .order_by(n.desc(), Event.user_id)
    )
    with transaction(engine) as conn:
        return [(user_id, username, int(count)) for user_id, username, count in conn.execute(query)]
