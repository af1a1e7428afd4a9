"""Where wsl-audit keeps its files: WSL_AUDIT_HOME, else $XDG_DATA_HOME/wsl-audit, else ~/.local/share/wsl-audit.

    events/YYYY-MM-DD.jsonl   the event log (one JSON object per line, UTC dates)
    samples.json              what the watch's last tick measured (rates, deltas); written only by the watch
    samples-oneshot.json      what one-shots (wsl-audit, /health) measured: they read samples.json when it is newer
                              but write only here, so a manual run never eats a delta the watch is waiting for
    alerts.json               alert state per (check, subject): survives restarts
    lock                      flock held by a watch tick while it updates samples.json, alerts.json and events/
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


def samples_file(base: Path | None = None, *, watch: bool) -> Path:
    """The watch's samples (written only under the lock) or the one-shots' own: a manual run between two ticks
    must not record the OOM kill or restart count the watch has yet to see as a delta."""
    return (base or data_dir()) / ("samples.json" if watch else "samples-oneshot.json")


def alerts_file(base: Path | None = None) -> Path:
    return (base or data_dir()) / "alerts.json"


def lock_file(base: Path | None = None) -> Path:
    return (base or data_dir()) / "lock"
