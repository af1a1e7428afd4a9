"""Bot activity: what the bot served and who was turned away. Registers the digest's first section."""

from __future__ import annotations

from datetime import datetime

from services import digest
from services.runtime import Runtime
from services.store import events


@digest.register("Bot activity", order=10)
def activity_section(rt: Runtime, since: datetime) -> digest.Section:
    engine = rt.engine
    counts = events.count_by_outcome(engine, since)
    served = counts.get("ok", 0) + counts.get("error", 0)
    lines = [f"Commands served: {served} ({counts.get('error', 0)} failed)"]
    top = events.count_commands(engine, since)[:5]
    if top:
        lines.append("Most used: " + ", ".join(f"/{name} ×{n}" for name, n in top))
    refused = events.refused_users(engine, since)
    total_refused = sum(n for _, _, n in refused)
    lines.append(f"Refused attempts: {total_refused}")
    for user_id, username, n in refused[:5]:
        who = f"@{username}" if username else f"user {user_id}"
        lines.append(f"  {who} (id {user_id}): {n}")
    return digest.Section("Bot activity", lines)
