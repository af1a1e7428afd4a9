"""What the export importers (ChatGPT, Gemini) share: reading a JSON array out of a file or zip with clear errors,
and the provenance record of an export file."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..model import SourceFile
from . import ImportFailed, Report


@contextmanager
def reading(path: Path, redownload: str) -> Iterator[None]:
    """Turn a broken zip or an unreadable file into one ImportFailed sentence that says what to do."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise ImportFailed(f"{path} is a corrupt zip ({e}); {redownload}.") from e
    except OSError as e:
        raise ImportFailed(f"cannot read {path} ({e.strerror or e}); check the path and its permissions.") from e


def load_json_array(where: str, raw: bytes, report: Report, *, items: str, redownload: str) -> list[Any]:
    """The JSON array in `raw`; invalid UTF-8 is replaced and counted, anything else is an ImportFailed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Keep what can be read; the report counts the replacement.
        text = raw.decode("utf-8", errors="replace")
        report.replaced_utf8 += 1
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise ImportFailed(f"{where} is truncated or not valid JSON ({e}); {redownload}.") from e
    if not isinstance(data, list):
        raise ImportFailed(f"{where} is not a list of {items}; {redownload}.")
    return data


def source_file(path: Path) -> SourceFile:
    data = path.read_bytes()
    return SourceFile(path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data))
