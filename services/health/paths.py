"""Where wsl-audit keeps its files: WSL_AUDIT_HOME, else $XDG_DATA_HOME/wsl-audit, else ~/.local/share/wsl-audit.

    events/YYYY-MM-DD.jsonl   the event log (one JSON object per line, UTC dates)
    samples.json              what the last run measured (for rates and deltas between runs)
    alerts.json               alert state per (check, subject): survives restarts
    lock                      flock held by a run that updates the two files above
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    env = os.environ.get("WSL_AUDIT_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "wsl-audit"


def events_dir(base: Path | None = None) -> Path:
    return (base or data_dir()) / "events"


def samples_file(base: Path | None = None) -> Path:
    return (base or data_dir()) / "samples.json"


def alerts_file(base: Path | None = None) -> Path:
    return (base or data_dir()) / "alerts.json"


def lock_file(base: Path | None = None) -> Path:
    return (base or data_dir()) / "lock"
