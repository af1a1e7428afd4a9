"""Write a JSON file so that readers see all of it or nothing (tmp file + rename). Stdlib only: hook path."""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # importing typing costs the hook ~3 ms; mypy still sees these names
if TYPE_CHECKING:
    from typing import Any


def write_json(path: str, record: dict[str, Any], *, fsync: bool = False) -> str:
    """Write `record` to `path` (mode 0600) atomically; `fsync` when it must survive a crash (approvals)."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, json.dumps(record, ensure_ascii=False).encode("utf-8", "backslashreplace"))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105 - contextlib is not worth its import on the hook path
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
