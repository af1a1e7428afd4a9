"""Single-use approvals between the bot (the admin pressed a button) and the hook (the agent retries).

Stdlib only (the hook imports it). Files in `$AISTACK_HOME/sentinel/approvals/`, mode 0600, written
atomically (temporary file + rename):
- `<call_hash>.json`       {"call_hash", "approver", "approved_at", "expires_at", "alert_id"}: **Allow once**
- `<call_hash>.deny.json`  {"call_hash", "decider", "decided_at", "expires_at"}: **Keep blocked**, for a hook
  that is waiting on an `approve` rule.
Times are ISO 8601 UTC strings. `consume` renames the approval away before reading it, so of several
identical retries racing for one approval exactly one wins.
"""

from __future__ import annotations

import json
import os
import time

from . import paths
from .atomic import write_json
from .audit import utc_iso

# Typing names are for the type checker only: importing `typing` costs the hook ~3 ms (mypy honours this flag).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TTL = 900  # seconds: an approval is valid for 15 minutes
ALLOW, DENY = "allow", "deny"
_HEX = frozenset("0123456789abcdef")


def _check(call_hash: str) -> str:
    if not isinstance(call_hash, str) or len(call_hash) != 64 or not _HEX.issuperset(call_hash):
        raise ValueError(f"not a call hash: {call_hash!r}")
    return call_hash


def _dir(directory: str | None) -> str:
    return directory if directory is not None else paths.approvals_dir()


def _days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO 8601 string (`…Z`, `…+HH:MM` or naive = UTC) or a number; None if neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or len(value) < 19 or value[10] not in "T ":
        return None
    try:
        y, mo, d = int(value[0:4]), int(value[5:7]), int(value[8:10])
        h, mi, sec = int(value[11:13]), int(value[14:16]), int(value[17:19])
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61):
            return None
        secs: float = _days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec
        rest = value[19:]
        if rest.startswith("."):
            digits = len(rest) - len(rest[1:].lstrip("0123456789"))
            secs += float("0" + rest[:digits]) if digits > 1 else 0
            rest = rest[digits:]
        if rest in ("", "Z", "z"):
            return float(secs)
        if len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
            off = int(rest[1:3]) * 3600 + int(rest[4:6]) * 60
            return float(secs - off if rest[0] == "+" else secs + off)
    except ValueError:
        return None
    return None


def _write(path: str, record: dict[str, Any]) -> str:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return write_json(path, record, fsync=True)  # an approval must survive a crash of the bot


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            rec = json.loads(fh.read())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _unlink(path: str) -> None:
    try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
        os.unlink(path)
    except OSError:
        pass


def _valid(rec: dict[str, Any] | None, call_hash: str, now: float) -> bool:
    if rec is None or rec.get("call_hash", call_hash) != call_hash:
        return False
    expires = parse_time(rec.get("expires_at"))
    return expires is not None and now < expires


def grant(call_hash: str, approver: str, *, ttl: float = TTL, alert_id: Any = None,
          directory: str | None = None) -> str:
    """Record the admin's **Allow once** for the exact call; returns the approval file's path."""
    _check(call_hash)
    now = time.time()
    d = _dir(directory)
    _unlink(os.path.join(d, f"{call_hash}.deny.json"))
    return _write(os.path.join(d, f"{call_hash}.json"), {
        "call_hash": call_hash, "approver": str(approver), "approved_at": utc_iso(now),
        "expires_at": utc_iso(now + ttl), "alert_id": alert_id})


def deny(call_hash: str, decider: str, *, ttl: float = TTL, directory: str | None = None) -> str:
    """Record the admin's **Keep blocked**: a waiting hook blocks at once; any pending approval is withdrawn."""
    _check(call_hash)
    now = time.time()
    d = _dir(directory)
    _unlink(os.path.join(d, f"{call_hash}.json"))
    return _write(os.path.join(d, f"{call_hash}.deny.json"), {
        "call_hash": call_hash, "decider": str(decider), "decided_at": utc_iso(now),
        "expires_at": utc_iso(now + ttl)})


def consume(call_hash: str, *, directory: str | None = None) -> str | None:
    """Use up the approval for `call_hash`: the approver, or None (none, expired or malformed: then removed)."""
    _check(call_hash)
    path = os.path.join(_dir(directory), f"{call_hash}.json")
    taken = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.used"
    try:
        os.rename(path, taken)  # atomic: of several racing retries exactly one gets it
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        rec = _read(taken)
    finally:
        _unlink(taken)
    if not _valid(rec, call_hash, time.time()):
        return None
    assert rec is not None
    approver = rec.get("approver")
    if isinstance(approver, (int, float)) and not isinstance(approver, bool):
        approver = str(approver)
    return approver if isinstance(approver, str) and approver else None


def decision(call_hash: str, *, directory: str | None = None) -> str | None:
    """What the admin decided so far for a waiting hook: "allow", "deny" or None. Expired files are removed."""
    _check(call_hash)
    d = _dir(directory)
    now = time.time()
    for name, verdict in ((f"{call_hash}.deny.json", DENY), (f"{call_hash}.json", ALLOW)):
        path = os.path.join(d, name)
        if not os.path.exists(path):
            continue
        if _valid(_read(path), call_hash, now):
            return verdict
        _unlink(path)
    return None


def clear_denial(call_hash: str, *, directory: str | None = None) -> None:
    """Remove a denial once the waiting hook has acted on it (a denial applies to one wait)."""
    _unlink(os.path.join(_dir(directory), f"{_check(call_hash)}.deny.json"))
