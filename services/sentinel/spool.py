"""The alert spool: the hook drops one JSON file per block into `$AISTACK_HOME/sentinel/alerts/`; the bot picks
them up (`pending_alerts`), ingests them into the database and Telegram, then `ack`s them.

The hook side (`write_alert_file`) is stdlib only and never touches the network or the database. Files are
written atomically (a dot-named temporary file renamed into place), mode 0600, named
`<UTC timestamp>-<id>.json` so that a plain sort gives arrival order.
"""

from __future__ import annotations

import json
import os
import time

from . import paths
from .atomic import write_json

# Typing names are for the type checker only: importing `typing` costs the hook ~3 ms (mypy honours this flag).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

FIELDS = ("id", "ts", "call_hash", "code", "session_id", "tool_use_id", "tool_name", "rule_id", "severity",
          "reason", "alternative", "subject", "cwd", "approvable")


def new_id() -> str:
    """A uuid4 in hex, without importing `uuid` (which costs the hook several milliseconds)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def write_alert_file(record: dict[str, Any], directory: str | None = None) -> str:
    """Spool one alert (adding `id` and `ts` when missing); returns the file's path as a string."""
    from .audit import utc_iso

    rec = dict(record)
    rec.setdefault("id", new_id())
    now = time.time()
    rec.setdefault("ts", utc_iso(now))
    d = directory if directory is not None else paths.alerts_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1_000_000):06d}"
    name = f"{stamp}-{rec['id']}.json"
    final = os.path.join(d, name)
    write_json(final, rec)
    return final


def write_alert(record: dict[str, Any], directory: str | None = None) -> Path:
    """Spool one alert; returns its file."""
    from pathlib import Path

    return Path(write_alert_file(record, directory))


def pending_alerts(directory: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The spooled alerts, oldest first, each with its file (pass it to `ack` once ingested).

    A file that is not a JSON object (it cannot be produced by `write_alert`, but disks and people err)
    is renamed to `*.bad` so that it stops coming back.
    """
    from pathlib import Path

    d = directory if directory is not None else paths.alerts_dir()
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []
    out: list[tuple[Path, dict[str, Any]]] = []
    for name in names:
        path = os.path.join(d, name)
        try:
            with open(path, "rb") as fh:
                rec = json.loads(fh.read())
        except FileNotFoundError:
            continue  # acked meanwhile
        except (OSError, ValueError):
            rec = None
        if not isinstance(rec, dict):
            try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
                os.replace(path, path + ".bad")
            except OSError:
                pass
            continue
        out.append((Path(path), rec))
    return out


def ack(path: str | os.PathLike[str]) -> None:
    """The alert is safely in the database: remove its file (already gone is fine)."""
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        os.unlink(path)
    except FileNotFoundError:
        pass
