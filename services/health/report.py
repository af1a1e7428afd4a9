"""The digest's "Host health" section: the worst states, alerts and resolutions the event log holds for the window.

Reads the log of wsl-audit's data dir (WSL_AUDIT_HOME), which the bot's watch job and `wsl-audit watch` both write.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from services import digest
from services.health import events, paths, render

if TYPE_CHECKING:
    from services.runtime import Runtime

TITLE = "Host health"


def section(since: datetime) -> digest.Section | None:
    """Worst level per check, alert counts and resolutions since `since`; None when the log has nothing to say."""
    result = events.query(paths.events_dir(), since=since.timestamp())
    lines = render.day_summary(result.records)
    if not lines:
        return None
    if result.skipped_lines:
        lines.append(f"({result.skipped_lines} unreadable line(s) in {paths.events_dir()} skipped)")
    return digest.Section(TITLE, lines)


@digest.register(TITLE, order=35)  # after LORE, before Gateway
def health_section(rt: Runtime, since: datetime) -> digest.Section | None:
    del rt  # the event log lives in wsl-audit's own data dir, not in the database
    return section(since)
