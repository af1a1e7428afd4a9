"""SENTINEL's audit log: one hash-chained JSON line per hook event, in `$SENTINEL_AUDIT_DIR/YYYY-MM-DD.jsonl`.

Stdlib only (the hooks import it on every tool call).

Writing (`append`): the file is opened `O_WRONLY|O_APPEND|O_CREAT` with mode 0600 and each line goes out in
one `os.write`. Every line carries
- `seq`: its position in the chain (1, 2, … across days), and
- `prev`: the sha256 hex of the previous line's bytes (without the newline); the first line of a day chains to
  the last line of the newest earlier file, the very first line of all to 64 zeros.
Writers hold an exclusive `flock` on `<dir>/.head` while they read the last line and append, so parallel hooks
(and a day change at midnight) cannot fork the chain. After each append `.head` records the newest line's file,
seq and hash, which lets `verify` notice when the last lines are modified or cut off (a chain alone cannot).

Checking (`verify`): reports the first modified, deleted, inserted or reordered line (file + line number +
what is wrong), or ok with counts. `read_events` iterates the events for reports.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

try:  # the builtin module: ~0.2 ms to import, where hashlib (OpenSSL) costs the hook ~3 ms
    from _sha256 import sha256
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import sha256

# Typing names are for the type checker only: importing `typing` costs the hook ~3 ms (mypy honours this flag).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

ZERO = "0" * 64
HEAD = ".head"
SUFFIX = ".jsonl"
_CHUNK = 8192


class AuditError(Exception):
    """The audit line could not be written; the message names the place and what to do."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"cannot write audit log at {path}: {detail}; fix the directory")
        self.path = path


def utc_iso(t: float | None = None) -> str:
    """`2025-01-31T12:34:56.789012+00:00` (what `datetime.isoformat()` gives), without importing datetime."""
    if t is None:
        t = time.time()
    whole = int(t)
    micros = round((t - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}+00:00"


def _is_day_file(name: str) -> bool:
    # YYYY-MM-DD.jsonl, checked without a regex
    return (len(name) == 16 and name.endswith(SUFFIX) and name[4] == "-" and name[7] == "-"
            and name[:4].isdigit() and name[5:7].isdigit() and name[8:10].isdigit())


def day_files(directory: str) -> list[str]:
    """The day files in `directory`, oldest first (names only)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _is_day_file(n))


def sha256_hex(data: bytes) -> str:
    return str(sha256(data).hexdigest())


def line_hash(line: bytes) -> str:
    """The hash the next line's `prev` carries: sha256 hex of the line's bytes without the newline."""
    return str(sha256(line).hexdigest())


def _last_line(path: str) -> tuple[bytes, bool] | None:
    """The last line of `path` (without its newline) and whether it ended with one; None for an empty file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        end = os.fstat(fd).st_size
        if end == 0:
            return None
        pos, buf, size = end, b"", _CHUNK
        while True:
            n = min(size, pos)
            pos -= n
            buf = os.pread(fd, n, pos) + buf
            complete = buf.endswith(b"\n")
            body = buf[:-1] if complete else buf
            cut = body.rfind(b"\n")
            if cut >= 0:
                return body[cut + 1:], complete
            if pos == 0:
                return body, complete
            size *= 2
    finally:
        os.close(fd)


def _seq_of(line: bytes) -> int:
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError, RecursionError):
        return 0
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _previous(directory: str, today: str) -> tuple[bytes, bool] | None:
    """The last line of the newest non-empty day file before `today`."""
    for name in reversed(day_files(directory)):
        if name >= today:
            continue
        last = _last_line(os.path.join(directory, name))
        if last is not None:
            return last
    return None


def append(record: dict[str, Any], directory: str | None = None, *, wait: bool = True) -> dict[str, Any]:
    """Append `record` (plus `ts` if missing, `seq` and `prev`) as one line; returns what was written.

    `wait=False` gives up at once when another writer holds the lock (for the deadline path, which must
    never hang). Raises `AuditError` whenever the line is not on disk.
    """
    if directory is None:
        from . import paths

        directory = paths.audit_dir()
    now = time.time()
    where = directory
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        lock = os.open(os.path.join(directory, HEAD), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditError(where, exc.strerror or str(exc)) from exc
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            raise AuditError(where, f"the log is locked by another writer ({exc.strerror})") from exc
        now = max(now, time.time())
        name = time.strftime("%Y-%m-%d", time.gmtime(now)) + SUFFIX
        where = os.path.join(directory, name)
        out = dict(record)
        out.setdefault("ts", utc_iso(now))
        try:
            fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(where, exc.strerror or str(exc)) from exc
        try:
            lead = b""
            last = _last_line(where)
            if last is None:
                last = _previous(directory, name)
            elif not last[1]:
                lead = b"\n"  # a torn last line (a writer died mid-line): start ours on a fresh line
            out["seq"] = (_seq_of(last[0]) + 1) if last is not None else 1
            out["prev"] = line_hash(last[0]) if last is not None else ZERO
            line = json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)
            data = line.encode("utf-8", "backslashreplace")  # a lone surrogate becomes a valid JSON escape
            written = os.write(fd, lead + data + b"\n")
            if written != len(lead) + len(data) + 1:
                raise AuditError(where, f"short write ({written} of {len(lead) + len(data) + 1} bytes)")
        except OSError as exc:
            raise AuditError(where, exc.strerror or str(exc)) from exc
        finally:
            os.close(fd)
        head = json.dumps({"file": name, "seq": out["seq"], "hash": line_hash(data)}).encode() + b"\n"
        try:
            os.pwrite(lock, head, 0)
            os.ftruncate(lock, len(head))
        except OSError:
            pass  # the line is safely written; a stale head only weakens the tail check of `verify`
        return out
    finally:
        os.close(lock)  # also releases the flock


class VerifyResult:
    """What `verify` found. A plain class: `dataclasses` would cost the hook ~2 ms of import time."""

    __slots__ = ("file", "files", "kind", "line", "lines", "ok", "problem")

    def __init__(self, ok: bool, files: int, lines: int, kind: str | None = None, file: str | None = None,
                 line: int | None = None, problem: str | None = None) -> None:
        self.ok = ok
        self.files = files  # day files checked
        self.lines = lines  # lines checked
        self.kind = kind  # modified | deleted | inserted | reordered | truncated
        self.file = file
        self.line = line  # 1-based line number in `file`
        self.problem = problem

    def __repr__(self) -> str:
        return (f"VerifyResult(ok={self.ok!r}, files={self.files!r}, lines={self.lines!r}, kind={self.kind!r}, "
                f"file={self.file!r}, line={self.line!r}, problem={self.problem!r})")

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain ok: {self.lines} line(s) in {self.files} file(s)"
        return f"audit chain broken: {self.file}:{self.line}: {self.kind}: {self.problem}"


class _Line:
    __slots__ = ("complete", "file", "hash", "no", "raw", "rec")

    def __init__(self, file: str, no: int, raw: bytes, hash: str, rec: dict[str, Any] | None,
                 complete: bool) -> None:
        self.file, self.no, self.raw, self.hash, self.rec, self.complete = file, no, raw, hash, rec, complete

    @property
    def prev(self) -> Any:
        return self.rec.get("prev") if self.rec is not None else None

    @property
    def seq(self) -> Any:
        return self.rec.get("seq") if self.rec is not None else None


def _load(directory: str, names: list[str]) -> list[_Line]:
    lines: list[_Line] = []
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "rb") as fh:
            data = fh.read()
        parts = data.split(b"\n")
        complete_tail = parts[-1] == b""
        if complete_tail:
            parts.pop()
        for i, raw in enumerate(parts, start=1):
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                rec = None
            lines.append(_Line(path, i, raw, line_hash(raw), rec if isinstance(rec, dict) else None,
                               complete_tail or i < len(parts)))
    return lines


def verify(directory: str | None = None, *, allow_missing_start: bool = False) -> VerifyResult:
    """Check the whole chain in `directory`; the first problem found is reported with its file and line.

    `allow_missing_start`: accept a chain whose first line points at a line that is no longer there
    (older files removed on purpose); by default that counts as deleted lines.
    """
    if directory is None:
        from . import paths

        directory = paths.audit_dir()
    names = day_files(directory)
    lines = _load(directory, names)
    total = len(lines)

    def bad(kind: str, at: _Line, problem: str) -> VerifyResult:
        return VerifyResult(False, len(names), total, kind, at.file, at.no, problem)

    later_prev: dict[str, int] = {}  # prev hash -> the last index that names it
    seq_at: dict[int, int] = {}  # seq -> the first index carrying it
    copies: dict[str, list[int]] = {}  # line hash -> the indexes of identical lines
    for i, ln in enumerate(lines):
        copies.setdefault(ln.hash, []).append(i)
        if isinstance(ln.prev, str):
            later_prev[ln.prev] = i
        if isinstance(ln.seq, int) and ln.seq not in seq_at:
            seq_at[ln.seq] = i

    prev_hash, prev_seq = ZERO, 0
    for i, ln in enumerate(lines):
        if not ln.complete:
            return bad("truncated", ln, "the last line has no newline: it was cut off or is being written")
        if ln.rec is None:
            what = "an empty line" if not ln.raw.strip() else "not a valid JSON object"
            return bad("modified", ln, f"{what}: the line was modified or inserted")
        seq, prev = ln.seq, ln.prev
        if not isinstance(seq, int) or not isinstance(prev, str):
            return bad("modified", ln, "the line has no valid `seq`/`prev`: it was modified or inserted")
        if prev == prev_hash and seq == prev_seq + 1:
            prev_hash, prev_seq = ln.hash, seq
            continue
        before = lines[i - 1] if i else None
        after = lines[i + 1] if i + 1 < total else None
        if i == 0:
            if allow_missing_start and prev != ZERO:
                prev_hash, prev_seq = ln.hash, seq
                continue
            return bad("deleted", ln, f"the chain starts at seq {seq} but does not start from the beginning: "
                                      "earlier lines or files were deleted")
        assert before is not None
        # 0. the very same bytes are elsewhere in the log: this is a copy slipped in
        twins = [j for j in copies[ln.hash] if j != i]
        if twins:
            other = lines[twins[0]]
            return bad("inserted", ln, f"a copy of {os.path.basename(other.file)}:{other.no} was inserted here")
        # 1. a later line (other than the very next one) chains to this one: it was moved here
        if later_prev.get(ln.hash, -1) > i + 1:
            return bad("reordered", ln, f"seq {seq} is out of place (expected seq {prev_seq + 1})")
        # 2. the next line chains to the previous one: this line was slipped in between
        if after is not None and after.prev == prev_hash and after.seq == prev_seq + 1:
            return bad("inserted", ln, "this line is not part of the chain: it was inserted")
        # 3. it chains correctly but its own seq was changed
        if prev == prev_hash:
            return bad("modified", ln, f"its seq is {seq}, expected {prev_seq + 1}: the line was modified")
        # 4. right seq, wrong hash: the previous line no longer has the bytes this line chained to
        if seq == prev_seq + 1:
            return bad("modified", before, f"the line does not match the hash recorded by the next line "
                                           f"({os.path.basename(ln.file)}:{ln.no}): it was modified")
        if seq > prev_seq + 1:
            missing = range(prev_seq + 1, seq)
            if any(s in seq_at and seq_at[s] > i for s in missing):
                return bad("reordered", ln, f"seq {seq} comes before seq {prev_seq + 1}: lines were reordered")
            n = seq - prev_seq - 1
            span = f"seq {prev_seq + 1}" if n == 1 else f"seq {prev_seq + 1}–{seq - 1}"
            return bad("deleted", ln, f"{n} line(s) ({span}) were deleted before this line")
        return bad("reordered", ln, f"seq {seq} comes after seq {prev_seq}: lines were reordered")

    # The tail: the head file remembers the newest line written; a chain cannot notice its own end being cut.
    try:
        with open(os.path.join(directory, HEAD), "rb") as fh:
            head = json.loads(fh.read() or b"null")
    except (OSError, ValueError):
        head = None
    if isinstance(head, dict) and isinstance(head.get("seq"), int) and isinstance(head.get("hash"), str):
        hseq, hhash = head["seq"], head["hash"]
        idx = seq_at.get(hseq)
        if idx is None:
            if lines and hseq > prev_seq:
                return bad("deleted", lines[-1], f"the log ends at seq {prev_seq} but seq {hseq} was written: "
                                                 "the last line(s) were deleted")
            if not lines:
                return VerifyResult(False, len(names), 0, "deleted", os.path.join(directory, str(head.get("file"))),
                                    None, f"the log is empty but seq {hseq} was written: it was deleted")
        elif lines[idx].hash != hhash:
            return bad("modified", lines[idx], "the newest line does not match its recorded hash: it was modified")
    return VerifyResult(True, len(names), total)


def read_events(directory: str | None = None, day: object = None) -> Iterator[dict[str, Any]]:
    """The events in the log, oldest first. `day` (a `date` or "YYYY-MM-DD") limits them to that UTC day.

    Lines that are not JSON objects are skipped (`verify` is the place that reports them).
    """
    if directory is None:
        from . import paths

        directory = paths.audit_dir()
    names = day_files(directory)
    if day is not None:
        names = [n for n in names if n == f"{day}{SUFFIX}"]
    for name in names:
        try:
            fh = open(os.path.join(directory, name), "rb")  # noqa: SIM115 - closed below, the generator may pause
        except FileNotFoundError:
            continue
        with fh:
            for raw in fh:
                try:
                    rec = json.loads(raw)
                except (ValueError, RecursionError):
                    continue
                if isinstance(rec, dict):
                    yield rec
