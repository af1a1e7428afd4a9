"""Parsers for the /proc files the host checks read. Stdlib only; parsers take text so tests need no files."""

from __future__ import annotations

from pathlib import Path


def read(path: Path) -> str:
    with open(path, "rb") as fh:  # binary and one decode: a text wrapper per /proc file costs more than the read
        return fh.read().decode("utf-8", errors="replace")


def read_optional(path: Path) -> str | None:
    """The file's text, or None when it is absent (older kernels lack some /proc files)."""
    try:
        return read(path)
    except FileNotFoundError:
        return None


def meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as {key: bytes} ("MemTotal: 16310404 kB"); unitless counts (HugePages_Total) stay as is."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        n = int(parts[0])
        out[key.strip()] = n * 1024 if parts[1:2] == ["kB"] else n
    return out


def vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat as {counter: value} ("oom_kill 3")."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def psi(text: str) -> dict[str, dict[str, float]]:
    """/proc/pressure/* as {"some": {"avg10": …, "avg60": …, "avg300": …, "total": …}, "full": {…}}."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        values: dict[str, float] = {}
        for f in fields:
            name, _, value = f.partition("=")
            try:
                values[name] = float(value)
            except ValueError:
                continue
        if kind in ("some", "full"):
            out[kind] = values
    return out


def pid_stat(text: str) -> tuple[str, int, int]:
    """(comm, start time, RSS in pages) from /proc/<pid>/stat: everything the process checks need, in one read.

    Field 22 (start time, clock ticks since boot) with the pid names one process even when the pid is reused.
    Field 24 (RSS) is what status calls VmRSS; kernel threads have 0. The command name (field 2) may hold spaces
    and parentheses, so the other fields are counted after the last ")".
    """
    head, _, tail = text.rpartition(")")
    after = tail.split()  # after[0] is field 3 (state)
    return head.partition("(")[2], int(after[19]), int(after[21])
