"""Bot side of SENTINEL's alerts: blocked calls from the hooks' spool become one Telegram message each,
identical repeats within 10 minutes raise a count on that message, and the admin's button press becomes
a single-use approval the hook can consume. Uses the database; never imported by the hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from services.store import outbox
from services.store.db import transaction
from services.store.models import SentinelAlert
from services.store.types import as_utc, utc_now

GROUP_WINDOW = timedelta(minutes=10)
APPROVAL_TTL = timedelta(minutes=15)
ALLOW, KEEP = "allow", "keep"


@dataclass(frozen=True)
class Alert:
    id: int
    call_hash: str
    code: str
    rule_id: str
    severity: str
    reason: str
    alternative: str | None
    subject: str | None
    cwd: str | None
    tool_name: str
    session_id: str | None
    approvable: bool
    count: int
    first_at: datetime
    last_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    outbox_id: int | None


@dataclass(frozen=True)
class Ingested:
    alert: Alert
    grouped: bool  # True: an earlier message got a higher count (edit it), False: a new message was queued


def _alert(row: Any) -> Alert:
    m = row._mapping  # `row.count` would be the tuple method, not the column
    return Alert(**{f: m[f] for f in Alert.__dataclass_fields__})


def buttons(alert: Alert) -> list[list[tuple[str, str]]] | None:
    if not alert.approvable or alert.status != "open":
        return None
    return [[("✅ Allow once", f"sx:{ALLOW}:{alert.id}"), ("⛔ Keep blocked", f"sx:{KEEP}:{alert.id}")]]


def render(alert: Alert) -> str:
    """The alert as plain text (the bot escapes it)."""
    head = "⏳ SENTINEL asks for approval" if alert.severity == "approve" else "🛑 SENTINEL blocked a tool call"
    lines = [head, f"Rule: {alert.rule_id}", f"Why: {alert.reason}"]
    if alert.subject:
        lines.append(f"{'Command' if alert.tool_name == 'Bash' else alert.tool_name}: {alert.subject}")
    if alert.cwd:
        lines.append(f"Where: {alert.cwd}")
    if alert.session_id:
        lines.append(f"Session: {alert.session_id[:8]}")
    if alert.alternative:
        lines.append(f"Safer: {alert.alternative}")
    if alert.count > 1:
        minutes = max(1, round((alert.last_at - alert.first_at).total_seconds() / 60))
        lines.append(f"Repeated: {alert.count}× in {minutes} min")
    if not alert.approvable:
        lines.append("This block protects SENTINEL itself (bad input or an internal error): it cannot be approved.")
    else:
        lines.append(f"Code: {alert.code}")
    if alert.status == "allowed" and alert.decided_at:
        until = (alert.decided_at + APPROVAL_TTL).strftime("%H:%M UTC")
        lines.append(f"✅ Allowed once by {alert.decided_by} — the identical call may run once until {until}.")
    elif alert.status == "kept":
        lines.append(f"⛔ Kept blocked by {alert.decided_by}.")
    return "\n".join(lines)


def _parse_ts(raw: object) -> datetime:
    if isinstance(raw, str):
        try:
            return as_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            pass
    return utc_now()


def ingest(engine: Engine, record: Mapping[str, Any]) -> Ingested:
    """Turn one spooled hook alert into an alert row and an outbox message (or a higher count)."""
    at = _parse_ts(record.get("ts"))
    call_hash = str(record.get("call_hash") or "")
    with transaction(engine, write=True) as conn:
        recent = conn.execute(
            select(SentinelAlert)
            .where(SentinelAlert.call_hash == call_hash, SentinelAlert.status != "allowed",
                   SentinelAlert.last_at >= at - GROUP_WINDOW)
            .order_by(SentinelAlert.id.desc()).limit(1)
        ).first() if call_hash else None
        if recent is not None:
            conn.execute(update(SentinelAlert).where(SentinelAlert.id == recent.id)
                         .values(count=recent._mapping["count"] + 1, last_at=max(at, as_utc(recent.last_at))))
            alert_id, grouped = recent.id, True
        else:
            values = dict(
                call_hash=call_hash, code=str(record.get("code") or call_hash[:6].upper())[:12],
                rule_id=str(record.get("rule_id") or "unknown")[:64], severity=str(record.get("severity") or "block"),
                reason=str(record.get("reason") or ""), alternative=record.get("alternative") or None,
                subject=(str(record["subject"])[:500] if record.get("subject") else None),
                cwd=record.get("cwd") or None, tool_name=str(record.get("tool_name") or "?")[:64],
                session_id=(str(record["session_id"])[:128] if record.get("session_id") else None),
                approvable=bool(record.get("approvable", True)) and bool(call_hash),
                count=1, first_at=at, last_at=at, status="open")
            result = conn.execute(insert(SentinelAlert).values(**values))
            alert_id = result.inserted_primary_key[0]  # type: ignore[index]
            grouped = False
    alert = get(engine, int(alert_id))
    assert alert is not None
    if grouped and alert.outbox_id is not None:
        outbox.set_content(engine, alert.outbox_id, render(alert), buttons(alert))
    elif not grouped:
        oid = outbox.enqueue(engine, render(alert), source="sentinel", buttons=buttons(alert))
        with transaction(engine, write=True) as conn:
            conn.execute(update(SentinelAlert).where(SentinelAlert.id == alert.id).values(outbox_id=oid))
        alert = get(engine, alert.id)
        assert alert is not None
    return Ingested(alert, grouped)


def get(engine: Engine, alert_id: int) -> Alert | None:
    with transaction(engine) as conn:
        row = conn.execute(select(SentinelAlert).where(SentinelAlert.id == alert_id)).first()
    return _alert(row) if row is not None else None


def by_code(engine: Engine, code: str) -> Alert | None:
    """The newest alert the hook labelled with `code` (what the agent was told to quote)."""
    with transaction(engine) as conn:
        row = conn.execute(select(SentinelAlert).where(SentinelAlert.code == code.strip().upper())
                           .order_by(SentinelAlert.id.desc()).limit(1)).first()
    return _alert(row) if row is not None else None


class DecisionError(Exception):
    """The decision cannot be taken (unknown alert, not approvable, already decided); message for the user."""


def decide(engine: Engine, alert_id: int, choice: str, who: str, *, now: datetime | None = None) -> Alert:
    """Record the admin's choice. Granting the approval file is the caller's job (it knows AISTACK_HOME)."""
    if choice not in (ALLOW, KEEP):
        raise DecisionError(f"unknown choice {choice!r}")
    now = as_utc(now) if now else utc_now()
    with transaction(engine, write=True) as conn:
        row = conn.execute(select(SentinelAlert).where(SentinelAlert.id == alert_id)).first()
        if row is None:
            raise DecisionError("this alert no longer exists")
        if not row.approvable and choice == ALLOW:
            raise DecisionError("this block cannot be approved: it protects SENTINEL itself")
        if row.status != "open":
            raise DecisionError(f"already decided: {row.status} by {row.decided_by}")
        conn.execute(update(SentinelAlert).where(SentinelAlert.id == alert_id).values(
            status="allowed" if choice == ALLOW else "kept", decided_by=who[:128], decided_at=now))
    alert = get(engine, alert_id)
    assert alert is not None
    if alert.outbox_id is not None:
        outbox.set_content(engine, alert.outbox_id, render(alert), buttons(alert))
    return alert


def recent(engine: Engine, *, since: datetime, limit: int = 10) -> list[Alert]:
    with transaction(engine) as conn:
        rows = conn.execute(select(SentinelAlert).where(SentinelAlert.last_at >= since)
                            .order_by(SentinelAlert.id.desc()).limit(limit))
        return [_alert(r) for r in rows]
