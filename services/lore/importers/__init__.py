"""Importer registry: one module per platform, each defining `IMPORTER = Importer(...)`.

Adding a platform: write `services/lore/importers/<platform>.py` with `discover` and `parse`, add its module name
to MODULES below, and add a fixture plus a test. Nothing else needs to know about it.

    discover(root) -> list[Unit]       every unit under a platform's home folder (or in one export file/zip)
    parse(unit, report, offsets) -> Parsed

`offsets` maps a path to the byte offset the last import stopped at (append-only JSONL platforms read only what
follows; others ignore it). `Parsed.offsets` gives the new offsets: always the end of the last *complete* line,
so a line the platform is still writing is read next time. A malformed line is skipped and recorded in `report`
(file:line and why); invalid UTF-8 is replaced and counted; a source that cannot be read at all raises
ImportFailed with one clear sentence, and the other sources still import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..model import Session

MODULES = ("claude_code", "codex", "chatgpt", "gemini")


class ImportFailed(Exception):
    """A whole source could not be imported (truncated export, unreadable file). The message says what to do."""


@dataclass
class Unit:
    """One thing to import: a session's files (Claude Code: the transcript plus its subagent files), a Codex
    rollout, or an export file. `paths[0]` is the primary file."""

    platform: str
    paths: list[Path]
    native_id: str | None = None  # when the file name already tells


@dataclass
class Report:
    bad_lines: list[str] = field(default_factory=list)  # "path:line: why"
    replaced_utf8: int = 0  # lines or strings in which invalid UTF-8 was replaced
    errors: list[str] = field(default_factory=list)  # whole sources that failed

    def bad(self, path: Path | str, line: int, why: str) -> None:
        self.bad_lines.append(f"{path}:{line}: {why}")


@dataclass
class Parsed:
    sessions: list[Session]
    offsets: dict[str, int] = field(default_factory=dict)  # str(path) -> end of the last complete line read


@dataclass(frozen=True)
class Importer:
    platform: str
    version: str  # bump when the same source would now import differently; recorded in each session's provenance
    discover: Callable[[Path], list[Unit]]
    parse: Callable[[Unit, Report, dict[str, int]], Parsed]
    incremental: bool = False  # reads append-only files from a byte offset


def registry() -> dict[str, Importer]:
    out: dict[str, Importer] = {}
    for name in MODULES:
        mod = importlib.import_module(f"{__name__}.{name}")
        imp: Importer = mod.IMPORTER
        out[imp.platform] = imp
    return out
