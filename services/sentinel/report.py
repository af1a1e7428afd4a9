"""What SENTINEL did today, from the audit log: for /audit and the digest. Bot side (uses settings)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from services import digest
from services.runtime import Runtime
from services.sentinel import audit
from services.settings import Settings

DECISIONS = ("allow", "warn", "ask", "block")


def state_dirs(settings: Settings) -> tuple[str, str]:
    """(alerts, approvals) directories: the same layout the hooks derive from AISTACK_HOME."""
    base = Path(settings.aistack_home) / "sentinel"
    return str(base / "alerts"), str(base / "approvals")


def summarize(audit_dir: Path, *, now: datetime | None = None, last: int = 5) -> digest.Section:
    now = now or datetime.now(UTC)
    day = now.astimezone(UTC).date().isoformat()
    counts: Counter[str] = Counter()
    blocks: list[dict[str, object]] = []
    approved = 0
    for ev in audit.read_events(str(audit_dir), day=day):
        if ev.get("event") != "pre":
            continue
        decision = str(ev.get("decision"))
        counts[decision] += 1
        if ev.get("approved_by"):
            approved += 1
        if decision == "block":
            blocks.append(ev)
    total = sum(counts.values())
    title = f"SENTINEL today ({day} UTC)"
    if total == 0:
        return digest.Section(title, ["No tool calls logged today."])
    lines = [f"Tool calls: {total} — " + ", ".join(f"{d} {counts.get(d, 0)}" for d in DECISIONS)]
    if approved:
        lines.append(f"Allowed once after approval: {approved}")
    if blocks:
        lines.append("Last blocks:")
        for ev in blocks[-last:]:
            when = str(ev.get("ts", ""))[11:19]
            subject = str(ev.get("subject") or "")[:80]
            lines.append(f"  {when} [{ev.get('rule_id')}] {subject}")
    return digest.Section(title, lines)


def today(settings: Settings) -> digest.Section:
    return summarize(settings.sentinel_audit_dir)


@digest.register("SENTINEL", order=20)
def sentinel_section(rt: Runtime, since: datetime) -> digest.Section | None:
    del since  # the section reports the current UTC day, as /audit does
    return today(rt.settings)
